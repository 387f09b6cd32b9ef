//! Looking after the cache directory: what it holds (`wasmacro cache
//! stats`), whether its entries are intact (`verify`), and removing what has
//! not been used for a while (`gc`).
//!
//! Every entry of the cache can be rebuilt, so removing one is always safe:
//! the next build that needs it makes it again. "Used" is the modification
//! time: loading a component or its precompiled code, and using a shim, mark
//! the entry used ([`mark_used`]).

use crate::cache::{CacheDir, ComponentHash, PRECOMPILED_MAGIC, verified_payload};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// The sections of the cache, and what each holds.
pub const SECTIONS: [(&str, &str); 9] = [
    ("components", "components by content hash"),
    ("precompiled", "native code for components, per engine"),
    ("shims", "native shim proc macros, per rustc"),
    ("built", "records of component builds, by inputs"),
    ("build", "work directories of component builds"),
    ("guest", "the guest `proc_macro` built for wasm, per rustc"),
    ("glue", "the export glue, materialised"),
    ("fetch", "registry packages, unpacked"),
    ("target", "cargo's target directory for wasm builds"),
];

/// The size of one section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SectionStats {
    /// Its directory name.
    pub name: String,
    /// Direct entries.
    pub entries: u64,
    /// Bytes of all files below it.
    pub bytes: u64,
}

/// How many entries and bytes each section holds (sections that do not exist
/// yet count as empty).
pub fn stats(cache: &CacheDir) -> Vec<SectionStats> {
    SECTIONS
        .iter()
        .map(|(name, _)| {
            let dir = cache.root().join(name);
            let entries = fs::read_dir(&dir)
                .map(|e| e.flatten().filter(|e| !is_temporary(&e.path())).count() as u64)
                .unwrap_or(0);
            SectionStats {
                name: name.to_string(),
                entries,
                bytes: size_of(&dir),
            }
        })
        .collect()
}

fn size_of(path: &Path) -> u64 {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return 0;
    };
    if meta.is_dir() {
        fs::read_dir(path)
            .map(|entries| entries.flatten().map(|e| size_of(&e.path())).sum())
            .unwrap_or(0)
    } else {
        meta.len()
    }
}

/// Something `verify` found and removed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The entry.
    pub path: PathBuf,
    /// What was wrong with it.
    pub what: String,
}

/// Checks every component against its hash and every precompiled entry
/// against its checksum, and removes what fails (it is rebuilt on next use),
/// along with temporary files left by interrupted writes.
pub fn verify(cache: &CacheDir) -> io::Result<Vec<Problem>> {
    let mut problems = Vec::new();
    let mut remove = |path: PathBuf, what: String| -> io::Result<()> {
        if path.is_dir() {
            fs::remove_dir_all(&path)?;
        } else {
            fs::remove_file(&path)?;
        }
        problems.push(Problem { path, what });
        Ok(())
    };
    for path in entries(&cache.components())? {
        if is_temporary(&path) {
            remove(path, "a temporary file left by an interrupted write".into())?;
            continue;
        }
        let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        let Some(hash) = ComponentHash::parse(name) else {
            remove(path, "not a component entry".into())?;
            continue;
        };
        let bytes = fs::read(&path)?;
        if ComponentHash::of(&bytes) != hash {
            remove(path, "corrupt: its contents do not match its hash".into())?;
        }
    }
    for path in entries(&cache.precompiled())? {
        if is_temporary(&path) {
            remove(path, "a temporary file left by an interrupted write".into())?;
            continue;
        }
        let entry = fs::read(&path)?;
        if !entry.starts_with(PRECOMPILED_MAGIC) {
            remove(path, "corrupt: not a precompiled entry".into())?;
        } else if verified_payload(&entry).is_none() {
            remove(path, "corrupt: it fails its checksum (truncated?)".into())?;
        }
    }
    Ok(problems)
}

/// What `gc` removed (or would remove).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GcReport {
    /// The entries, by section.
    pub removed: Vec<PathBuf>,
    /// Their size.
    pub bytes: u64,
}

/// Removes every entry of every section not used for `max_age`; with
/// `dry_run`, only reports them.
pub fn gc(cache: &CacheDir, max_age: Duration, dry_run: bool) -> io::Result<GcReport> {
    let now = SystemTime::now();
    let mut report = GcReport::default();
    for (section, _) in SECTIONS {
        for path in entries(&cache.root().join(section))? {
            let used = fs::symlink_metadata(&path)
                .and_then(|m| m.modified())
                .unwrap_or(SystemTime::UNIX_EPOCH);
            if now.duration_since(used).unwrap_or_default() < max_age {
                continue;
            }
            report.bytes += size_of(&path);
            if !dry_run {
                if path.is_dir() {
                    fs::remove_dir_all(&path)?;
                } else {
                    fs::remove_file(&path)?;
                }
            }
            report.removed.push(path);
        }
    }
    Ok(report)
}

/// Marks a cache entry used now, for `gc`. Failure only means the entry may
/// be collected earlier than it should; it is never fatal.
pub fn mark_used(path: &Path) {
    let touched = fs::File::open(path).and_then(|file| file.set_modified(SystemTime::now()));
    if let Err(e) = touched {
        tracing::debug!(path = %path.display(), "could not mark the cache entry used: {e}");
    }
}

fn entries(dir: &Path) -> io::Result<Vec<PathBuf>> {
    match fs::read_dir(dir) {
        Ok(entries) => {
            let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
            paths.sort();
            Ok(paths)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// `tempfile`'s names start with `.tmp`.
fn is_temporary(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with(".tmp"))
}
