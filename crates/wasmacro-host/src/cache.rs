//! The on-disk cache: components by content hash, and wasmtime's precompiled
//! code for them, keyed by component hash and engine compatibility.
//!
//! Every file is written to a temporary file in the same directory and renamed
//! into place, so concurrent processes filling the cache never see a partial
//! entry (the last rename wins, and the contents are identical). Precompiled
//! entries carry a BLAKE3 checksum; an entry that fails it is rebuilt.

use crate::error::LoadError;
use std::fmt;
use std::fs;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use wasmtime::Engine;
use wasmtime::component::Component;

/// The hex BLAKE3 hash of a component's bytes: its identity everywhere.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ComponentHash(String);

impl ComponentHash {
    /// Hashes component bytes.
    pub fn of(bytes: &[u8]) -> ComponentHash {
        ComponentHash(blake3::hash(bytes).to_hex().to_string())
    }

    /// Accepts a hash written as 64 lowercase hex digits, nothing else (it is
    /// used as a file name).
    pub fn parse(text: &str) -> Option<ComponentHash> {
        let valid =
            text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        valid.then(|| ComponentHash(text.to_string()))
    }

    /// The hash as hex.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ComponentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
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

    /// Where components live, by hash.
    pub fn components(&self) -> PathBuf {
        self.root.join("components")
    }

    /// Where precompiled code lives.
    pub fn precompiled(&self) -> PathBuf {
        self.root.join("precompiled")
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

/// Magic bytes opening a precompiled entry: format name and version.
pub(crate) const PRECOMPILED_MAGIC: &[u8; 8] = b"WMCWASM1";

/// Components and their precompiled code, on disk.
pub struct ComponentCache {
    dir: CacheDir,
    /// Identifies the engine configuration precompiled code is valid for.
    engine_key: String,
}

impl ComponentCache {
    /// Opens the cache for `engine`.
    pub fn new(dir: CacheDir, engine: &Engine) -> ComponentCache {
        let mut hasher = Blake3Hasher(blake3::Hasher::new());
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let engine_key = hasher.0.finalize().to_hex()[..16].to_string();
        ComponentCache { dir, engine_key }
    }

    /// The cache directory.
    pub fn dir(&self) -> &CacheDir {
        &self.dir
    }

    /// Stores component bytes under their hash (idempotent) and returns it.
    pub fn insert(&self, bytes: &[u8]) -> Result<ComponentHash, LoadError> {
        let hash = ComponentHash::of(bytes);
        let path = self.dir.component(&hash);
        let up_to_date = fs::read(&path).is_ok_and(|existing| existing == bytes);
        if !up_to_date {
            write_atomically(&path, &[bytes]).map_err(|source| LoadError::Io {
                path: path.clone(),
                source,
            })?;
        }
        Ok(hash)
    }

    /// The bytes of a cached component, verified against their hash.
    pub fn component_bytes(&self, hash: &ComponentHash) -> Result<Vec<u8>, LoadError> {
        let path = self.dir.component(hash);
        let bytes = fs::read(&path).map_err(|_| LoadError::NotCached {
            hash: hash.to_string(),
            dir: self.dir.components(),
        })?;
        if ComponentHash::of(&bytes) != *hash {
            // A corrupted entry: remove it so the next build writes it again.
            let _ = fs::remove_file(&path);
            return Err(LoadError::Invalid {
                what: path.display().to_string(),
                reason: "its contents do not match its hash (corrupted cache entry, removed)"
                    .into(),
            });
        }
        Ok(bytes)
    }

    /// The compiled component: from precompiled code if a valid entry exists,
    /// else compiled now and cached.
    pub fn load(&self, engine: &Engine, hash: &ComponentHash) -> Result<Component, LoadError> {
        let path = self
            .dir
            .precompiled()
            .join(format!("{hash}-{}.cwasm", self.engine_key));
        if let Ok(entry) = fs::read(&path) {
            match verified_payload(&entry) {
                Some(code) => {
                    // SAFETY: the payload was produced by `precompile_component`
                    // of an engine with the same compatibility hash and its
                    // checksum matches, so it is the bytes wasmtime wrote.
                    match unsafe { Component::deserialize(engine, code) } {
                        Ok(component) => {
                            crate::maintenance::mark_used(&path);
                            crate::maintenance::mark_used(&self.dir.component(hash));
                            return Ok(component);
                        }
                        Err(e) => {
                            tracing::warn!(path = %path.display(), "discarding precompiled entry: {e}")
                        }
                    }
                }
                None => {
                    tracing::warn!(path = %path.display(), "precompiled entry fails its checksum; rebuilding")
                }
            }
        }
        let bytes = self.component_bytes(hash)?;
        let code = engine
            .precompile_component(&bytes)
            .map_err(|e| LoadError::Invalid {
                what: format!("component {hash}"),
                reason: format!("{e:#}"),
            })?;
        let checksum = blake3::hash(&code);
        if let Err(e) = write_atomically(&path, &[PRECOMPILED_MAGIC, checksum.as_bytes(), &code]) {
            // A read-only cache still works, just without reuse.
            tracing::warn!("could not cache precompiled code: {e}");
        }
        // SAFETY: `code` was just produced by `precompile_component` on this engine.
        unsafe { Component::deserialize(engine, &code) }.map_err(|e| LoadError::Invalid {
            what: format!("component {hash}"),
            reason: format!("{e:#}"),
        })
    }
}

/// The payload of a precompiled entry if its magic and checksum are right.
pub(crate) fn verified_payload(entry: &[u8]) -> Option<&[u8]> {
    let rest = entry.strip_prefix(PRECOMPILED_MAGIC.as_slice())?;
    let (checksum, payload) = rest.split_at_checked(32)?;
    (blake3::hash(payload).as_bytes() == checksum).then_some(payload)
}

/// Writes `parts` to `path` through a temporary file and a rename.
///
/// Every file wasmacro shares between processes is written this way: a
/// concurrent reader sees the old file or the new one, never half of one.
pub fn write_atomically(path: &Path, parts: &[&[u8]]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    for part in parts {
        file.write_all(part)?;
    }
    file.as_file().sync_data()?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Feeds `Hash` impls into BLAKE3: stable across processes, unlike
/// `DefaultHasher`, whose keys and algorithm are unspecified.
struct Blake3Hasher(blake3::Hasher);

impl Hasher for Blake3Hasher {
    fn finish(&self) -> u64 {
        let bytes = self.0.finalize();
        u64::from_le_bytes(bytes.as_bytes()[..8].try_into().unwrap_or([0; 8]))
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}
