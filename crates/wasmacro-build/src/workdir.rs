//! The work directory of one component build, planned in memory before
//! anything is written: the proc-macro package's copy (normalised manifest,
//! rewritten crate root), a copy of each local package it builds with, the
//! export glue, the register macros and the generated wrapper. Its key is
//! its content, so the same package, options and dependency versions build
//! in the same place — and to the same bytes — wherever they were found.
//!
//! Layout, all inside the wrapper's workspace root (cargo hashes a path
//! package's path into symbol names relative to the workspace root only when
//! it lies inside it; outside, the absolute path would reach the bytes):
//!
//! ```text
//! Cargo.toml, lib.rs    the wrapper
//! pkg/                  the proc-macro package
//! local/NAME-VERSION/   each local package
//! glue/ register/       embedded sources
//! patched/              dependencies patched for wasm (syn 1)
//! decls/                declarations recorded by the register macros
//! ```

use crate::files::{Files, package_files, write_if_changed};
use crate::key::Key;
use crate::locate::{Located, is_local};
use crate::manifest::{self, DependencyPath, Patch, Role};
use crate::selection::Selection;
use crate::{BuildError, BuildOptions, Goal, embedded, rewrite, syn1};
use cargo_metadata::{Package, PackageId, Target};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use wasmacro_host::Section;

/// The proc-macro package's directory in the work directory.
pub(crate) const PACKAGE_DIR: &str = "pkg";
/// Where local packages are copied.
const LOCAL_DIR: &str = "local";

/// Changes whenever this crate builds different bytes from the same inputs
/// (2: the edition section, the syn 1 patch; 3: LTO; 4: normalised
/// manifests, local packages; 6: the name section kept, the package's
/// relative paths remapped), so earlier builds recorded in the cache are
/// not reused.
const BUILD_FORMAT: &str = "wasmacro-build 6";

/// Everything a component build compiles, but the lockfile it starts from
/// and the syn 1 patch (both follow from the options and these files).
pub(crate) struct Plan {
    /// What is built.
    pub goal: Goal,
    /// For a build script: the host `cfg` its sources ask about, which as
    /// wasm would describe wasm (`cfg!(windows)`).
    pub host_cfg: Option<String>,
    /// The package's name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// The edition its library is compiled with.
    pub edition: String,
    /// Every file, by path in the work directory.
    files: Files,
    /// The workspace's `[patch]`/`[replace]` entries the build needs.
    patches: Vec<Patch>,
    /// The features the macro is built with, sorted.
    features: Vec<String>,
    default_features: bool,
    /// Whether the component keeps line tables ([`BuildOptions::debug_info`]).
    debug_info: bool,
}

/// Plans the work directory for `located`.
pub(crate) fn plan(located: &Located, options: &BuildOptions) -> Result<Plan, BuildError> {
    let package = located.get(&located.package);
    let mut dirs: BTreeMap<&PackageId, String> = BTreeMap::new();
    dirs.insert(&package.id, PACKAGE_DIR.to_string());
    for id in &located.local {
        let local = located.get(id);
        let dir = format!("{LOCAL_DIR}/{}-{}", local.name, local.version);
        if dirs.values().any(|d| *d == dir) {
            return Err(BuildError::Locate {
                what: package.name.to_string(),
                reason: format!(
                    "two local packages named {} v{} (one is {})",
                    local.name, local.version, local.manifest_path
                ),
            });
        }
        dirs.insert(id, dir);
    }

    let mut files = Files::new();
    let mut features_offered: Option<std::collections::BTreeSet<String>> = None;
    let mut host_cfg = None;
    for (id, dir) in &dirs {
        let copied = located.get(id);
        let role = match (*id == &package.id, &options.goal) {
            (true, Goal::ProcMacro) => Role::Macro,
            (true, Goal::BuildScript { .. }) => Role::BuildScript,
            (false, _) => Role::Dependency,
        };
        let depth = dir.split('/').count();
        let path_of = |dependency: &cargo_metadata::Dependency| {
            let declared_local = dependency.path.is_some()
                || dependency
                    .source
                    .as_ref()
                    .is_some_and(|s| s.repr.starts_with("git+"));
            match located.resolved(id, dependency) {
                Some(target) if declared_local => match dirs.get(&target.id) {
                    Some(target_dir) => {
                        DependencyPath::Copy(format!("{}{target_dir}", "../".repeat(depth)))
                    }
                    None => DependencyPath::Omitted,
                },
                None if declared_local => DependencyPath::Omitted,
                _ => DependencyPath::Registry,
            }
        };
        let selection = Selection::of(copied, &located.metadata)?;
        let mut package_files = package_files(root_of(copied), &selection)?;
        // A build script gets the build-dependencies cargo passed the native
        // one (an optional one some feature turned on, a host-only one).
        let active = |dependency: &cargo_metadata::Dependency| match &options.goal {
            Goal::ProcMacro => true,
            Goal::BuildScript { externs, .. } => {
                let key = dependency.rename.as_deref().unwrap_or(&dependency.name);
                externs.contains(&key.replace('-', "_"))
                    || located
                        .resolved(id, dependency)
                        .and_then(|p| {
                            p.targets
                                .iter()
                                .find(|t| t.is_lib() || t.is_proc_macro() || t.is_rlib())
                        })
                        .is_some_and(|lib| externs.contains(&lib.name.replace('-', "_")))
            }
        };
        let manifest = manifest::normalized(copied, role, depth, path_of, active)?;
        if role == Role::BuildScript {
            features_offered = Some(offered_features(&manifest));
        }
        package_files.insert("Cargo.toml".into(), manifest.into_bytes());
        match role {
            Role::Macro => rewrite_root(copied, &mut package_files)?,
            Role::BuildScript => {
                let sources = match &options.goal {
                    Goal::BuildScript { sources, .. } => sources.as_slice(),
                    Goal::ProcMacro => &[],
                };
                host_cfg = rewrite_build_script(copied, &mut package_files, sources)?;
            }
            Role::Dependency => {}
        }
        files.extend(
            package_files
                .into_iter()
                .map(|(path, bytes)| (format!("{dir}/{path}"), bytes)),
        );
    }
    // Any package of the build may depend on a patched one: syn on a
    // patched proc-macro2 as much as the macro itself.
    let mut patches: Vec<Patch> = located
        .closure
        .iter()
        .flat_map(|id| registry_patches(located, id, &dirs))
        .collect();
    patches.sort_by(|a, b| (&a.registry, &a.name).cmp(&(&b.registry, &b.name)));
    patches.dedup();
    if options.goal == Goal::ProcMacro {
        for (relative, text) in embedded::GLUE {
            files.insert(format!("glue/{relative}"), text.as_bytes().to_vec());
        }
        for (relative, text) in embedded::REGISTER {
            files.insert(format!("register/{relative}"), text.as_bytes().to_vec());
        }
    }
    let target = package
        .targets
        .iter()
        .find(|t| match options.goal {
            Goal::ProcMacro => t.is_proc_macro(),
            Goal::BuildScript { .. } => t.is_custom_build(),
        })
        .ok_or_else(|| BuildError::Locate {
            what: package.name.to_string(),
            reason: match options.goal {
                Goal::ProcMacro => "it is not a proc-macro crate",
                Goal::BuildScript { .. } => "it has no build script",
            }
            .into(),
        })?;
    // The features cargo compiled the native crate with; a build script's
    // package offers only those that do not name its library's dependencies.
    let features: std::collections::BTreeSet<&String> = options
        .features
        .iter()
        .filter(|f| {
            features_offered
                .as_ref()
                .is_none_or(|offered| offered.contains(*f))
        })
        .collect();
    Ok(Plan {
        host_cfg,
        goal: options.goal.clone(),
        name: package.name.to_string(),
        version: package.version.to_string(),
        edition: target.edition.as_str().to_string(),
        files,
        patches,
        features: features.into_iter().cloned().collect(),
        default_features: !options.no_default_features,
        debug_info: options.debug_info,
    })
}

/// The `[patch]` entries for dependencies of `dependent` that are declared
/// from a registry but resolved to a local package: the workspace patches
/// or replaces them, and registry packages of the build must see that too.
fn registry_patches(
    located: &Located,
    dependent: &PackageId,
    dirs: &BTreeMap<&PackageId, String>,
) -> Vec<Patch> {
    located
        .get(dependent)
        .dependencies
        .iter()
        .filter(|d| {
            d.path.is_none()
                && d.source
                    .as_ref()
                    .is_some_and(|s| !s.repr.starts_with("git+"))
        })
        .filter_map(|d| {
            let target = located.resolved(dependent, d).filter(|p| is_local(p))?;
            Some(Patch {
                registry: d.registry.clone(),
                name: target.name.to_string(),
                path: dirs.get(&target.id)?.clone(),
            })
        })
        .collect()
}

fn root_of(package: &Package) -> &Path {
    package
        .manifest_path
        .parent()
        .map(|p| p.as_std_path())
        .unwrap_or(Path::new("."))
}

/// The features a build script's generated manifest offers: its
/// `[features]` and its optional dependencies' implicit ones.
fn offered_features(manifest: &str) -> std::collections::BTreeSet<String> {
    let Ok(doc) = manifest.parse::<toml_edit::DocumentMut>() else {
        return Default::default();
    };
    let declared = doc
        .get("features")
        .and_then(|f| f.as_table_like())
        .into_iter()
        .flat_map(|t| t.iter().map(|(name, _)| name.to_string()));
    let optional = doc
        .get("dependencies")
        .and_then(|d| d.as_table_like())
        .into_iter()
        .flat_map(|t| {
            t.iter()
                .filter(|(_, entry)| entry.get("optional").and_then(|o| o.as_bool()) == Some(true))
                .map(|(name, _)| name.to_string())
        });
    declared.chain(optional).collect()
}

/// The build script's rewrite ([`rewrite::rewrite_build_script`]) on the
/// package's copy; returns the first host `cfg` its `sources` ask about
/// (when none are known: the root's, and every file beside a root in a
/// directory of its own).
fn rewrite_build_script(
    package: &Package,
    files: &mut Files,
    sources: &[String],
) -> Result<Option<String>, BuildError> {
    let root = target_root(package, Target::is_custom_build, "build script")?;
    let dir = root.rsplit_once('/').map(|(dir, _)| format!("{dir}/"));
    let host_cfg = files
        .iter()
        .filter(|(path, _)| match &dir {
            _ if !sources.is_empty() => sources.contains(path),
            Some(dir) => path.starts_with(dir.as_str()) && path.ends_with(".rs"),
            None => **path == root,
        })
        .find_map(|(path, bytes)| {
            let cfg = rewrite::host_cfg(std::str::from_utf8(bytes).ok()?)?;
            Some(format!("{path} asks `{cfg}`"))
        });
    rewrite_file(
        package,
        files,
        &root,
        "build script",
        rewrite::rewrite_build_script,
    )?;
    Ok(host_cfg)
}

/// The crate-root rewrite, on the macro package's copy.
fn rewrite_root(package: &Package, files: &mut Files) -> Result<(), BuildError> {
    let root = target_root(package, Target::is_proc_macro, "crate root")?;
    rewrite_file(package, files, &root, "crate root", rewrite::rewrite_root)
}

/// The root file, relative to the package, of `package`'s target that
/// `which` selects (`what` names it in errors).
fn target_root(
    package: &Package,
    which: fn(&Target) -> bool,
    what: &str,
) -> Result<String, BuildError> {
    package
        .targets
        .iter()
        .find(|t| which(t))
        .and_then(|t| t.src_path.strip_prefix(root_of(package)).ok())
        .map(|p| p.as_str().replace('\\', "/"))
        .ok_or_else(|| BuildError::Locate {
            what: package.name.to_string(),
            reason: format!("its {what} is outside the package"),
        })
}

/// Replaces the file `root` of the copy with what `rewrite` makes of it.
fn rewrite_file(
    package: &Package,
    files: &mut Files,
    root: &str,
    what: &str,
    rewrite: fn(&str) -> Result<String, rewrite::RewriteError>,
) -> Result<(), BuildError> {
    let source = files
        .get(root)
        .and_then(|bytes| std::str::from_utf8(bytes).ok())
        .ok_or_else(|| BuildError::Locate {
            what: package.name.to_string(),
            reason: format!("cannot read its {what} {root}"),
        })?;
    let rewritten = rewrite(source).map_err(|source| BuildError::Rewrite {
        package: package.name.to_string(),
        path: root.to_string(),
        source,
    })?;
    files.insert(root.to_string(), rewritten.into_bytes());
    Ok(())
}

impl Plan {
    /// The key of everything the build compiles from: these files, the
    /// features, the lockfile slice it starts from and the build format.
    pub(crate) fn key(&self, options: &BuildOptions) -> Key {
        let fixed = [
            BUILD_FORMAT.as_bytes().to_vec(),
            // Said only for a build script: a macro's key is unchanged.
            // (with its workspace manifest, which says how it is compiled).
            match &self.goal {
                Goal::ProcMacro => Vec::new(),
                Goal::BuildScript { .. } => self.build_script_workspace(&self.patches).into_bytes(),
            },
            format!("{:?} {}", self.features, self.default_features).into_bytes(),
            // Said only when on, as one more part: the key of a build without
            // debug info does not depend on the option existing.
            if self.debug_info {
                b"debug-info".to_vec()
            } else {
                Vec::new()
            },
            options.lockfile.clone().unwrap_or_default().into_bytes(),
            format!("{:?}", self.patches).into_bytes(),
        ];
        let files = self
            .files
            .iter()
            .flat_map(|(path, bytes)| [path.as_bytes().to_vec(), bytes.clone()]);
        Key::of("component build", fixed.into_iter().chain(files))
    }

    /// Writes the work directory `work` (only files that change, so a
    /// repeated build is a cargo no-op), seeds its lockfile and adds the
    /// syn 1 patch where the build needs it.
    pub(crate) fn write(&self, options: &BuildOptions, work: &Path) -> Result<(), BuildError> {
        for (relative, contents) in &self.files {
            write_if_changed(&work.join(relative), contents)?;
        }
        self.write_wrapper(work, &self.patches)?;
        // Seeded once: cargo then adds the glue's dependencies and keeps the
        // locked versions of everything else.
        if let Some(lock) = &options.lockfile {
            let path = work.join("Cargo.lock");
            if !path.exists() {
                write_if_changed(&path, lock.as_bytes())?;
            }
        }
        let metadata = crate::cargo::metadata(options, &work.join("Cargo.toml"), &self.name)?;
        if let Some(patch) = syn1::patch(&metadata, work)? {
            let mut patches = self.patches.clone();
            patches.push(patch);
            patches.sort_by(|a, b| (&a.registry, &a.name).cmp(&(&b.registry, &b.name)));
            self.write_wrapper(work, &patches)?;
        }
        Ok(())
    }

    fn write_wrapper(&self, work: &Path, patches: &[Patch]) -> Result<(), BuildError> {
        if let Goal::BuildScript { .. } = self.goal {
            let manifest = self.build_script_workspace(patches);
            return write_if_changed(&work.join("Cargo.toml"), manifest.as_bytes());
        }
        let manifest = manifest::wrapper(
            &self.name,
            &self.features,
            self.default_features,
            self.debug_info,
            patches,
            &[
                PACKAGE_DIR,
                LOCAL_DIR,
                "glue",
                "register",
                syn1::PATCHED_DIR,
            ],
        );
        write_if_changed(&work.join("Cargo.toml"), manifest.as_bytes())?;
        write_if_changed(&work.join("lib.rs"), manifest::WRAPPER_LIB.as_bytes())
    }

    fn build_script_workspace(&self, patches: &[Patch]) -> String {
        let (debug_assertions, overflow_checks) = match &self.goal {
            Goal::BuildScript {
                debug_assertions,
                overflow_checks,
                ..
            } => (*debug_assertions, *overflow_checks),
            Goal::ProcMacro => (false, false),
        };
        manifest::build_script_workspace(
            patches,
            &[LOCAL_DIR, syn1::PATCHED_DIR],
            debug_assertions,
            overflow_checks,
        )
    }

    /// The features the build turns on, sorted.
    pub(crate) fn features(&self) -> &[String] {
        &self.features
    }

    /// The work directory for `key` in the cache.
    pub(crate) fn work_dir(&self, options: &BuildOptions, key: &Key) -> PathBuf {
        let kind = match self.goal {
            Goal::ProcMacro => "",
            Goal::BuildScript { .. } => "build-script-",
        };
        options.cache.section(Section::Build).join(format!(
            "{kind}{}-{}-{}",
            self.name,
            self.version,
            key.short()
        ))
    }
}
