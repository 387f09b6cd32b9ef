//! Looking after the cache directory: what it holds (`wasmacro cache
//! stats`), whether its entries are intact (`verify`), and removing what has
//! not been used for a while (`gc`).
//!
//! Every entry can be rebuilt, with one exception: a component is the identity
//! that `cargo wasmacro` target directories refer to (their shims hold only
//! its hash), so `gc` keeps components unless asked to collect them too.
//! "Used" is the modification time: loading a component or its precompiled
//! code, using a shim, and every component build mark what they use
//! ([`mark_used`]), so nothing a running build needs is old enough to collect.

use crate::cache::{CacheDir, ComponentHash, PRECOMPILED_MAGIC, verified_payload};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// The sections of the cache, and what each holds.
pub const SECTIONS: [(&str, &str); 8] = [
    ("components", "components by content hash"),
    ("precompiled", "native code for components, per engine"),
    ("shims", "native shim proc macros, per rustc"),
    ("built", "records of component builds, by inputs"),
    ("build", "work directories of component builds"),
    ("guest", "the guest `proc_macro` built for wasm, per rustc"),
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
    let mut found = |path: PathBuf, what: String| -> io::Result<()> {
        remove(&path)?;
        problems.push(Problem { path, what });
        Ok(())
    };
    for path in entries(&cache.components())? {
        if is_temporary(&path) {
            if is_leftover(&path) {
                found(path, "a temporary file left by an interrupted write".into())?;
            }
            continue;
        }
        let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        let Some(hash) = ComponentHash::parse(name) else {
            found(path, "not a component entry".into())?;
            continue;
        };
        // Entries are replaced by rename: one may vanish under us.
        let Some(bytes) = read_if_present(&path)? else {
            continue;
        };
        if ComponentHash::of(&bytes) != hash {
            found(path, "corrupt: its contents do not match its hash".into())?;
        }
    }
    for path in entries(&cache.precompiled())? {
        if is_temporary(&path) {
            if is_leftover(&path) {
                found(path, "a temporary file left by an interrupted write".into())?;
            }
            continue;
        }
        let Some(entry) = read_if_present(&path)? else {
            continue;
        };
        if !entry.starts_with(PRECOMPILED_MAGIC) {
            found(path, "corrupt: not a precompiled entry".into())?;
        } else if verified_payload(&entry).is_none() {
            found(path, "corrupt: it fails its checksum (truncated?)".into())?;
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

/// Removes every entry not used for `max_age` (components only with
/// `components`); with `dry_run`, only reports them.
pub fn gc(
    cache: &CacheDir,
    max_age: Duration,
    components: bool,
    dry_run: bool,
) -> io::Result<GcReport> {
    let now = SystemTime::now();
    let mut report = GcReport::default();
    for (section, _) in SECTIONS {
        if section == "components" && !components {
            continue;
        }
        for path in entries(&cache.root().join(section))? {
            let used = fs::symlink_metadata(&path)
                .and_then(|m| m.modified())
                .unwrap_or(SystemTime::UNIX_EPOCH);
            if now.duration_since(used).unwrap_or_default() < max_age {
                continue;
            }
            report.bytes += size_of(&path);
            if !dry_run {
                remove(&path)?;
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

/// Removes a file or directory; one already gone is fine.
fn remove(path: &Path) -> io::Result<()> {
    let removed = if path.is_dir() {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    };
    match removed {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn read_if_present(path: &Path) -> io::Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether a temporary file was left by an interrupted write: it is older
/// than an hour (a younger one may belong to a write in progress).
fn is_leftover(path: &Path) -> bool {
    fs::symlink_metadata(path)
        .and_then(|m| m.modified())
        .is_ok_and(|t| t.elapsed().unwrap_or_default() > Duration::from_secs(3600))
}

/// `tempfile`'s names start with `.tmp`.
fn is_temporary(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with(".tmp"))
}
