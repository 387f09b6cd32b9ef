//! The layout of wasmacro's cache directory, owned here alone: every crate
//! that puts something in the cache asks [`CacheDir`] for the place, so the
//! sections `wasmacro cache stats|verify|gc` look after are the ones written.

use crate::cache::ComponentHash;
use crate::error::LoadError;
use std::fs;
use std::path::{Path, PathBuf};

/// A section of the cache: one directory below its root.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    /// Components, by content hash.
    Components,
    /// Native code for components, per engine.
    Precompiled,
    /// Native shim proc macros, per rustc.
    Shims,
    /// Expansions, by what decides them.
    Expansions,
    /// Records of component builds, by inputs.
    Built,
    /// Work directories of component builds.
    Build,
    /// The guest `proc_macro` built for wasm, per rustc.
    Guest,
    /// Registry packages, unpacked.
    Fetch,
    /// Cargo's target directory for wasm builds.
    Target,
    /// The empty directory behind a guest's `/`.
    SandboxRoot,
}

impl Section {
    /// Every section, in the order `wasmacro cache stats` lists them.
    pub const ALL: [Section; 10] = [
        Section::Components,
        Section::Precompiled,
        Section::Shims,
        Section::Expansions,
        Section::Built,
        Section::Build,
        Section::Guest,
        Section::Fetch,
        Section::Target,
        Section::SandboxRoot,
    ];

    /// Its directory name.
    pub fn name(self) -> &'static str {
        match self {
            Section::Components => "components",
            Section::Precompiled => "precompiled",
            Section::Shims => "shims",
            Section::Expansions => "expansions",
            Section::Built => "built",
            Section::Build => "build",
            Section::Guest => "guest",
            Section::Fetch => "fetch",
            Section::Target => "target",
            Section::SandboxRoot => "sandbox-root",
        }
    }

    /// What it holds, for `wasmacro cache stats`.
    pub fn description(self) -> &'static str {
        match self {
            Section::Components => "components by content hash",
            Section::Precompiled => "native code for components, per engine",
            Section::Shims => "native shim proc macros, per rustc",
            Section::Expansions => "expansion results, by what decides them",
            Section::Built => "records of component builds, by inputs",
            Section::Build => "work directories of component builds",
            Section::Guest => "the guest `proc_macro` built for wasm, per rustc",
            Section::Fetch => "registry packages, unpacked",
            Section::Target => "cargo's target directory for wasm builds",
            Section::SandboxRoot => "the empty directory behind a guest's `/`",
        }
    }

    /// Whether `gc` may remove what it holds (the sandbox root is one
    /// directory every runtime shares, never an entry).
    pub fn collectable(self) -> bool {
        self != Section::SandboxRoot
    }
}

/// The layout of wasmacro's cache directory.
#[derive(Clone, Debug)]
pub struct CacheDir {
    root: PathBuf,
}

impl CacheDir {
    /// The environment variable that overrides the cache location.
    pub const ENV: &'static str = "WASMACRO_CACHE_DIR";

    /// A cache rooted at `root`, made absolute (paths into the cache are
    /// remapped in components and handed to rustc).
    pub fn new(root: impl Into<PathBuf>) -> CacheDir {
        let root = root.into();
        CacheDir {
            root: std::path::absolute(&root).unwrap_or(root),
        }
    }

    /// `$WASMACRO_CACHE_DIR`, else `$XDG_CACHE_HOME/wasmacro`, else
    /// `$HOME/.cache/wasmacro`, else `wasmacro-cache` in the temporary
    /// directory — never the current directory, where a cloned repository
    /// could plant shims for rustc to load.
    pub fn from_env() -> CacheDir {
        if let Some(dir) = std::env::var_os(Self::ENV).filter(|d| !d.is_empty()) {
            return CacheDir::new(dir);
        }
        if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
            return CacheDir::new(PathBuf::from(dir).join("wasmacro"));
        }
        if let Some(home) = std::env::var_os("HOME").filter(|d| !d.is_empty()) {
            return CacheDir::new(PathBuf::from(home).join(".cache").join("wasmacro"));
        }
        CacheDir::new(std::env::temp_dir().join("wasmacro-cache"))
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of one section.
    pub fn section(&self, section: Section) -> PathBuf {
        self.root.join(section.name())
    }

    /// Where components live, by hash.
    pub fn components(&self) -> PathBuf {
        self.section(Section::Components)
    }

    /// Where precompiled code lives.
    pub fn precompiled(&self) -> PathBuf {
        self.section(Section::Precompiled)
    }

    /// Creates the cache directory if needed and checks that it can be
    /// written: every command that builds or caches needs to.
    pub fn ensure_writable(&self) -> Result<(), LoadError> {
        fs::create_dir_all(&self.root)
            .and_then(|()| tempfile::NamedTempFile::new_in(&self.root).map(drop))
            .map_err(|source| LoadError::CacheUnwritable {
                dir: self.root.clone(),
                source,
            })
    }

    /// The component with this hash.
    pub fn component(&self, hash: &ComponentHash) -> PathBuf {
        self.components().join(format!("{hash}.wasm"))
    }
}
