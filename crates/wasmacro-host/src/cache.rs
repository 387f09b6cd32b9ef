//! The on-disk cache: components by content hash, and wasmtime's precompiled
//! code for them, keyed by component hash and engine compatibility.
//!
//! Every file is written to a temporary file in the same directory and renamed
//! into place, so concurrent processes filling the cache never see a partial
//! entry (the last rename wins, and the contents are identical). Precompiled
//! entries carry a BLAKE3 checksum; an entry that fails it is rebuilt.

use crate::error::LoadError;
use crate::layout::CacheDir;
use crate::precompiled::{PrecompiledEntry, Unusable};
use std::fmt;
use std::fs;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::Path;
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

    /// What identifies the engine: wasmtime's build and configuration
    /// (backend, fuel, NaN canonicalisation, …), from its precompile
    /// compatibility hash.
    pub fn engine_key(&self) -> &str {
        &self.engine_key
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

    /// The compiled component: mapped from precompiled code if a valid entry
    /// exists, else compiled now and cached.
    pub fn load(&self, engine: &Engine, hash: &ComponentHash) -> Result<Component, LoadError> {
        let entry = PrecompiledEntry::new(
            &self.dir.precompiled(),
            &format!("{hash}-{}", self.engine_key),
        );
        match entry.load(engine) {
            Ok(component) => {
                crate::maintenance::mark_used(&self.dir.component(hash));
                return Ok(component);
            }
            Err(Unusable::Missing) => {}
            Err(Unusable::Corrupt(why)) => {
                tracing::warn!(path = %entry.code_path().display(), "precompiled entry corrupt, rebuilding: {why}");
                entry.remove();
            }
            Err(Unusable::Refused(why)) => {
                tracing::warn!(path = %entry.code_path().display(), "discarding precompiled entry: {why}");
                entry.remove();
            }
        }
        let bytes = self.component_bytes(hash)?;
        let code = engine
            .precompile_component(&bytes)
            .map_err(|e| LoadError::Invalid {
                what: format!("component {hash}"),
                reason: format!("{e:#}"),
            })?;
        if let Err(e) = entry.store(&code) {
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
