//! Builds an unmodified proc-macro package into a `wasm32-wasip2` component,
//! or a package's build script into a command component ([`Goal`],
//! `build_script`).
//!
//! The steps, one module each, in the order [`build_component_with_progress`]
//! takes them:
//!
//! 1. `locate`: `cargo metadata` of the workspace the package is used from
//!    finds it and the local packages it builds with (path dependencies,
//!    git checkouts, patched dependencies), each manifest normalised by cargo.
//! 2. `workdir`: the work directory, planned in memory: copies of those
//!    packages with generated manifests (`manifest`), the crate root's
//!    [`rewrite`], the embedded glue and register macros, the wrapper. Its
//!    content is its key (`key`); a build with the same key is found in the
//!    cache without running cargo.
//! 3. `guest`: the guest `proc_macro` rlib, once per rustc and guest source.
//! 4. `cargo`: cargo builds the wrapper for `wasm32-wasip2` in a shared
//!    target directory from the project's [`lockfile`] slice, with the guest
//!    `proc_macro` passed to every crate as `--extern proc_macro=…` (syn 1 is
//!    patched first: `syn1`).
//! 5. The component is stored in the cache by content hash, loaded through
//!    the runtime's linker (it may import nothing the deterministic host does
//!    not provide) and checked against the declarations recorded while it
//!    compiled (`decls`).
//!
//! It must never: modify the package it was given (it works on a copy), let an
//! absolute path or a timestamp reach the component's bytes (paths are
//! remapped, the work directory is named by content), or report success for a
//! component whose declarations differ from the crate root's.

#![warn(missing_docs)]

mod build_script;
mod cargo;
mod decls;
mod embedded;
mod files;
mod guest;
mod key;
mod locate;
pub mod lockfile;
mod manifest;
pub mod rewrite;
mod selection;
mod spawns;
mod syn1;
mod workdir;

pub use build_script::{BuiltBuildScript, build_script_component};
pub use embedded::embedded_sources_digest;

use std::path::{Path, PathBuf};
use wasmacro_host::maintenance::mark_used;
use wasmacro_host::{CacheDir, ComponentHash, Runtime, Section};
use wasmacro_protocol::MacroDecl;

/// The target every component is built for.
pub const WASM_TARGET: &str = "wasm32-wasip2";

/// Where the package comes from.
#[derive(Clone, Debug)]
pub enum PackageSource {
    /// A directory containing the package's `Cargo.toml`.
    Path(PathBuf),
    /// A package from the registry.
    Registry {
        /// The package name.
        name: String,
        /// The exact version.
        version: String,
    },
}

/// What to build and where.
#[derive(Clone, Debug)]
pub struct BuildOptions {
    /// The package.
    pub source: PackageSource,
    /// Features to enable.
    pub features: Vec<String>,
    /// Whether to turn off default features.
    pub no_default_features: bool,
    /// The cache (work directories, shared target directory, components).
    pub cache: CacheDir,
    /// The cargo to run.
    pub cargo: PathBuf,
    /// The rustc for the guest crate (the one cargo will use).
    pub rustc: PathBuf,
    /// The consuming project's lock entries for the package and its
    /// dependencies ([`lockfile::dependency_closure`]): the build starts from
    /// them, so it uses the versions the native build uses.
    pub lockfile: Option<String>,
    /// The manifest of the workspace the package is used from (`cargo
    /// wasmacro`: the consuming project's root). Its `[patch]`, `[replace]`
    /// and lockfile decide what the package's dependencies resolve to; by
    /// default, the package's own workspace (or, from the registry, a
    /// project depending on just it).
    pub workspace: Option<PathBuf>,
    /// Where the workspace's `cargo metadata` may be kept and reused: every
    /// proc-macro crate of one `cargo wasmacro` run sees the same workspace,
    /// and asking cargo costs ~0.3 s each time.
    pub metadata_cache: Option<PathBuf>,
    /// Whether the component keeps DWARF line tables, so a backtrace of a
    /// trap gives file and line (off by default: without it, a component
    /// keeps only function names).
    pub debug_info: bool,
    /// What to build from the package: its proc macros (the default) or its
    /// build script.
    pub goal: Goal,
}

/// What a build makes of a package.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Goal {
    /// Its proc-macro library, as a proc-macro component.
    #[default]
    ProcMacro,
    /// Its build script, as a `wasi:cli/command` component
    /// ([`build_script_component`]).
    BuildScript {
        /// The crate names of the build-dependencies cargo passed the native
        /// script (`--extern NAME=…`): exactly those are built with it.
        externs: std::collections::BTreeSet<String>,
        /// Whether cargo compiled the native script with debug assertions
        /// (`cfg!(debug_assertions)` in it must agree).
        debug_assertions: bool,
        /// Whether it compiled it with overflow checks.
        overflow_checks: bool,
        /// The script's source files, relative to the package (from the
        /// native compilation's dep-info): those asked for host `cfg`s. Empty:
        /// its root file, and every file beside a root in a directory.
        sources: Vec<String>,
    },
}

impl BuildOptions {
    /// Options with cargo and rustc from `$CARGO`/`$RUSTC` or the `PATH`.
    pub fn new(source: PackageSource, cache: CacheDir) -> BuildOptions {
        let tool = |var: &str, default: &str| {
            std::env::var_os(var)
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(default))
        };
        BuildOptions {
            source,
            features: Vec::new(),
            no_default_features: false,
            cache,
            cargo: tool("CARGO", "cargo"),
            rustc: tool("RUSTC", "rustc"),
            lockfile: None,
            workspace: None,
            metadata_cache: None,
            debug_info: false,
            goal: Goal::ProcMacro,
        }
    }
}

/// A built component.
#[derive(Clone, Debug)]
pub struct BuiltComponent {
    /// The package name.
    pub package: String,
    /// The package version.
    pub version: String,
    /// The component's content hash.
    pub hash: ComponentHash,
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// The macros it exports.
    pub macros: Vec<MacroDecl>,
    /// What it imports (all provided by the deterministic host).
    pub imports: Vec<String>,
}

impl BuiltComponent {
    /// The listing written next to the component: what it exports and imports.
    pub fn listing(&self) -> serde_json::Value {
        let macros = macros_json(&self.macros);
        serde_json::json!({
            "package": self.package,
            "version": self.version,
            "component": self.hash.as_str(),
            "contract": format!(
                "{}@{}",
                wasmacro_protocol::CONTRACT_PACKAGE,
                wasmacro_protocol::CONTRACT_VERSION
            ),
            "macros": macros,
            "imports": self.imports,
        })
    }
}

/// The macros of a component as they appear in listings: name, kind
/// (`derive`, `attribute`, `function`) and helper attributes.
pub fn macros_json(macros: &[MacroDecl]) -> serde_json::Value {
    macros
        .iter()
        .map(|m| {
            serde_json::json!({
                "name": m.name,
                "kind": format!("{:?}", m.kind).to_lowercase(),
                "helper_attributes": m.helper_attributes,
            })
        })
        .collect()
}

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// cargo could not locate or resolve the package.
    #[error("cannot find package {what}: {reason}")]
    Locate {
        /// The package asked for.
        what: String,
        /// Why.
        reason: String,
    },
    /// The package is not a proc-macro crate wasmacro can rewrite.
    #[error("cannot rewrite the crate root of `{package}` ({path}): {source}")]
    Rewrite {
        /// The package.
        package: String,
        /// The crate root.
        path: String,
        /// What went wrong.
        source: rewrite::RewriteError,
    },
    /// The guest `proc_macro` crate failed to build.
    #[error("building the guest proc_macro crate failed:\n{0}")]
    Guest(String),
    /// cargo failed to build the component.
    #[error(
        "building `{package}` for {WASM_TARGET} failed (is the target installed? `rustup target add {WASM_TARGET}`; the whole log: {}):\n{stderr}", log.display()
    )]
    Cargo {
        /// The package.
        package: String,
        /// cargo's diagnostics.
        stderr: String,
        /// Where they are kept.
        log: PathBuf,
    },
    /// The component does not load in the runtime, or imports too much.
    #[error("the component built from `{package}` is not usable: {reason}")]
    Invalid {
        /// The package.
        package: String,
        /// Why.
        reason: String,
    },
    /// A file operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was attempted.
        what: String,
        /// The error.
        source: std::io::Error,
    },
}

fn io_error(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> BuildError {
    let what = what.into();
    move |source| BuildError::Io { what, source }
}

/// What a build reports while it runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BuildEvent {
    /// The same package, options, dependency versions and toolchain were
    /// built before: the component comes from the cache without running cargo.
    Cached,
    /// cargo started compiling a crate of the component (`name vX.Y.Z`).
    Compiling(String),
}

/// Builds the component for `options` and stores it in the cache.
pub fn build_component(
    options: &BuildOptions,
    runtime: &Runtime,
) -> Result<BuiltComponent, BuildError> {
    build_component_with_progress(options, runtime, &|_| {})
}

/// [`build_component`], reporting progress to `progress`.
pub fn build_component_with_progress(
    options: &BuildOptions,
    runtime: &Runtime,
    progress: &dyn Fn(BuildEvent),
) -> Result<BuiltComponent, BuildError> {
    let located = locate::locate(options)?;
    let plan = workdir::plan(&located, options)?;
    tracing::info!(package = %plan.name, version = %plan.version, "building component");
    let guest_rlib = guest::ensure_guest(options)?;
    let key = plan.key(options);
    // Found again by everything the component depends on: the work
    // directory's content and the guest rlib (named by rustc's version and
    // the guest sources).
    let record = options.cache.section(Section::Built).join(format!(
        "{}-{}-{}",
        plan.name,
        plan.version,
        key::Key::of("built", [key.as_str(), &guest::key_of(&guest_rlib)]).short()
    ));
    if let Some(built) = cached_build(&record, &plan, runtime) {
        mark_used(&record);
        progress(BuildEvent::Cached);
        return Ok(built);
    }
    let work = plan.work_dir(options, &key);
    // `cache gc` must not collect what a running build uses.
    mark_used(&work);
    plan.write(options, &work)?;
    let decls_dir = work.join(decls::DECLS_DIR);
    // A crate whose features declare no macro records nothing: an empty
    // table, as native cargo builds an empty proc-macro crate.
    std::fs::create_dir_all(&decls_dir)
        .map_err(io_error(format!("creating {}", decls_dir.display())))?;
    let wasm = cargo::build(
        options,
        &work,
        (&plan.name, &plan.version),
        cargo::Wasm::Component {
            guest_rlib: &guest_rlib,
            decls_dir: &decls_dir,
        },
        progress,
    )?;
    // The shim must be compiled with the macro crate's edition.
    let bytes = wasmacro_host::edition::with_edition(&wasm, &plan.edition);

    let invalid = |reason: String| BuildError::Invalid {
        package: plan.name.clone(),
        reason,
    };
    // Into the cache first, so that loading compiles the component once and
    // keeps the precompiled code for every rustc that runs it. Loading
    // through the runtime's linker is the import check: it defines exactly
    // what the deterministic host provides, nothing more.
    let hash = runtime
        .cache()
        .insert(&bytes)
        .map_err(|e| invalid(e.to_string()))?;
    let loaded = runtime.load(&hash).map_err(|e| invalid(e.to_string()))?;
    let imports = loaded.imports();
    let macros = loaded.declarations().to_vec();
    let recorded = decls::recorded_declarations(&decls_dir)?;
    let mut declared = macros.clone();
    declared.sort_by(|a, b| a.name.cmp(&b.name));
    if declared != recorded {
        return Err(invalid(format!(
            "it declares {declared:?}, but compiling the crate declared {recorded:?}"
        )));
    }
    files::write_if_changed(&record, hash.as_str().as_bytes())?;
    Ok(BuiltComponent {
        package: plan.name,
        version: plan.version,
        hash,
        bytes,
        macros,
        imports,
    })
}

/// The component a previous build recorded under `record`, if it is still in
/// the cache and loads; anything else means "build again".
fn cached_build(record: &Path, plan: &workdir::Plan, runtime: &Runtime) -> Option<BuiltComponent> {
    let text = std::fs::read_to_string(record).ok()?;
    let hash = ComponentHash::parse(text.trim())?;
    let bytes = runtime.cache().component_bytes(&hash).ok()?;
    // Precompiled code from the cache: no compilation on this path.
    let loaded = runtime.load(&hash).ok()?;
    let imports = loaded.imports();
    Some(BuiltComponent {
        package: plan.name.clone(),
        version: plan.version.clone(),
        hash,
        macros: loaded.declarations().to_vec(),
        bytes,
        imports,
    })
}
