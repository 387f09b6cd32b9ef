//! Finding the package and the local packages it builds with, the way cargo
//! sees them: `cargo metadata` of the workspace the package is used from
//! gives every manifest normalised (inherited fields and dependencies
//! resolved) and the resolved graph, with the workspace's `[patch]`,
//! `[replace]` and `Cargo.lock` applied.

use crate::{BuildError, BuildOptions, PackageSource, cargo, io_error};
use cargo_metadata::{DependencyKind, Metadata, Package, PackageId};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use wasmacro_host::Section;
use wasmacro_host::maintenance::mark_used;

/// The package to build and what it needs from outside the registry.
pub(crate) struct Located {
    /// The workspace's metadata.
    pub metadata: Metadata,
    /// The proc-macro package.
    pub package: PackageId,
    /// Packages the build must copy: the proc-macro package's dependencies
    /// (and theirs), build-dependencies included, that do not come from a
    /// registry — path dependencies anywhere, git checkouts, and registry
    /// dependencies the workspace patches or replaces with such a package.
    /// Sorted by name and version.
    pub local: Vec<PackageId>,
    /// Every package the proc-macro package builds with, itself included,
    /// from a registry or not.
    pub closure: Vec<PackageId>,
}

impl Located {
    /// A package of the metadata by id.
    pub fn get(&self, id: &PackageId) -> &Package {
        // Every id handed out comes from this metadata.
        self.metadata
            .packages
            .iter()
            .find(|p| &p.id == id)
            .expect("a located package id names a package of its metadata")
    }

    /// The package a dependency of `dependent` resolved to, if it is in the
    /// resolved graph (an inactive optional dependency is not).
    pub fn resolved(
        &self,
        dependent: &PackageId,
        dependency: &cargo_metadata::Dependency,
    ) -> Option<&Package> {
        if let Some(path) = &dependency.path {
            let manifest = path.join("Cargo.toml");
            return self
                .metadata
                .packages
                .iter()
                .find(|p| p.manifest_path == manifest);
        }
        let node = self
            .metadata
            .resolve
            .as_ref()?
            .nodes
            .iter()
            .find(|n| &n.id == dependent)?;
        let extern_name = dependency
            .rename
            .as_deref()
            .unwrap_or(&dependency.name)
            .replace('-', "_");
        let mut candidates = node
            .deps
            .iter()
            .map(|d| (d, self.get(&d.pkg)))
            .filter(|(_, p)| p.name.as_str() == dependency.name);
        let first = candidates.next()?;
        let chosen = match candidates.next() {
            None => first,
            // Two versions of one package: the extern name tells them apart.
            Some(second) => [first, second]
                .into_iter()
                .chain(candidates)
                .find(|(d, _)| d.name == extern_name)?,
        };
        Some(chosen.1)
    }
}

/// Whether cargo reads this package from a directory of its own rather than
/// from a registry's immutable archive.
pub(crate) fn is_local(package: &Package) -> bool {
    package
        .source
        .as_ref()
        .is_none_or(|s| !s.repr.starts_with("registry+") && !s.repr.starts_with("sparse+"))
}

/// Runs `cargo metadata` where the package is used and finds it.
pub(crate) fn locate(options: &BuildOptions) -> Result<Located, BuildError> {
    let (manifest, what) = match &options.source {
        PackageSource::Path(dir) => {
            let manifest = if dir.ends_with("Cargo.toml") {
                dir.clone()
            } else {
                dir.join("Cargo.toml")
            };
            (manifest, dir.display().to_string())
        }
        PackageSource::Registry { name, version } => (
            fetch_project(options, name, version)?,
            format!("{name}@{version}"),
        ),
    };
    let context = options.workspace.as_deref().unwrap_or(&manifest);
    // cargo writes a lockfile where the package's own workspace has none;
    // the package is not ours to change, so one that was not there goes
    // again. (A project building with `cargo wasmacro` has its lockfile.)
    let created = match options.workspace {
        Some(_) => None,
        None => cargo::workspace_root(options, context)
            .map(|root| root.join("Cargo.lock"))
            .filter(|lock| !lock.exists()),
    };
    let kept = options.metadata_cache.as_deref();
    let metadata = match kept.and_then(|path| std::fs::read_to_string(path).ok()) {
        // Written by an earlier macro crate of the same cargo run; a file
        // that does not parse is asked for again.
        Some(json) => cargo_metadata::MetadataCommand::parse(json).ok(),
        None => None,
    };
    let metadata = match metadata {
        Some(metadata) => metadata,
        None => {
            let metadata = cargo::metadata(options, context, &what);
            if let Some(lock) = created {
                let _ = std::fs::remove_file(lock);
            }
            let metadata = metadata?;
            if let (Some(path), Ok(json)) = (kept, serde_json::to_vec(&metadata)) {
                let _ = wasmacro_host::write_atomically(path, &[&json]);
            }
            metadata
        }
    };
    let not_found = |reason: &str| BuildError::Locate {
        what: what.clone(),
        reason: reason.to_string(),
    };
    let package = match &options.source {
        PackageSource::Registry { name, version } => metadata
            .packages
            .iter()
            .find(|p| p.name.as_str() == name && p.version.to_string() == *version && !is_local(p)),
        PackageSource::Path(_) => {
            let wanted = canonical(&manifest);
            metadata
                .packages
                .iter()
                .find(|p| canonical(p.manifest_path.as_std_path()) == wanted)
        }
    }
    .ok_or_else(|| not_found("cargo did not report the package"))?;
    match options.goal {
        crate::Goal::ProcMacro if !package.targets.iter().any(|t| t.is_proc_macro()) => {
            return Err(not_found("it is not a proc-macro crate"));
        }
        crate::Goal::BuildScript { .. } if !package.targets.iter().any(|t| t.is_custom_build()) => {
            return Err(not_found("it has no build script"));
        }
        _ => {}
    }
    let package = package.id.clone();
    let mut located = Located {
        metadata,
        package: package.clone(),
        local: Vec::new(),
        closure: Vec::new(),
    };
    located.closure = closure(&located, &package);
    let mut local: Vec<&Package> = located
        .closure
        .iter()
        .filter(|id| **id != package)
        .map(|id| located.get(id))
        .filter(|p| is_local(p))
        .collect();
    local.sort_by(|a, b| (a.name.as_str(), &a.version).cmp(&(b.name.as_str(), &b.version)));
    located.local = local.into_iter().map(|p| p.id.clone()).collect();
    Ok(located)
}

/// The packages `root` builds with, itself included: through the resolved
/// graph (dev-dependencies excluded), and through declared path dependencies
/// (which cargo loads even where they are inactive). Sorted by id.
fn closure(located: &Located, root: &PackageId) -> Vec<PackageId> {
    let nodes: BTreeMap<&PackageId, &cargo_metadata::Node> = located
        .metadata
        .resolve
        .iter()
        .flat_map(|r| &r.nodes)
        .map(|n| (&n.id, n))
        .collect();
    let mut seen = BTreeSet::from([root.clone()]);
    let mut pending = VecDeque::from([root.clone()]);
    while let Some(id) = pending.pop_front() {
        let package = located.get(&id);
        let through_graph = nodes
            .get(&id)
            .into_iter()
            .flat_map(|n| &n.deps)
            .filter(|d| {
                d.dep_kinds
                    .iter()
                    .any(|k| k.kind != DependencyKind::Development)
            });
        let mut next: Vec<PackageId> = through_graph.map(|d| d.pkg.clone()).collect();
        next.extend(
            package
                .dependencies
                .iter()
                .filter(|d| d.kind != DependencyKind::Development && d.path.is_some())
                .filter_map(|d| located.resolved(&id, d))
                .map(|p| p.id.clone()),
        );
        for id in next {
            if seen.insert(id.clone()) {
                pending.push_back(id);
            }
        }
    }
    seen.into_iter().collect()
}

fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// A throwaway project that depends on exactly `name` `version`, so cargo
/// resolves and downloads it as it would for any build.
fn fetch_project(options: &BuildOptions, name: &str, version: &str) -> Result<PathBuf, BuildError> {
    let fetch = options
        .cache
        .section(Section::Fetch)
        .join(format!("{name}-{version}"));
    std::fs::create_dir_all(fetch.join("src"))
        .map_err(io_error(format!("creating {}", fetch.display())))?;
    mark_used(&fetch);
    let manifest = format!(
        "[package]\nname = \"wasmacro-fetch\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n\
         [lib]\npath = \"src/lib.rs\"\n\n[dependencies]\n{name} = \"={version}\"\n\n[workspace]\n"
    );
    std::fs::write(fetch.join("Cargo.toml"), manifest)
        .map_err(io_error("writing the fetch manifest"))?;
    std::fs::write(fetch.join("src/lib.rs"), "").map_err(io_error("writing the fetch crate"))?;
    Ok(fetch.join("Cargo.toml"))
}
