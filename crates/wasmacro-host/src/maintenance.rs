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

use crate::cache::ComponentHash;
use crate::layout::{CacheDir, Section};
use crate::precompiled::{PrecompiledEntry, Unusable};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// The size of one section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SectionStats {
    /// The section.
    pub section: Section,
    /// Direct entries.
    pub entries: u64,
    /// Bytes of all files below it.
    pub bytes: u64,
}

/// How many entries and bytes each section holds (sections that do not exist
/// yet count as empty).
pub fn stats(cache: &CacheDir) -> Vec<SectionStats> {
    Section::ALL
        .iter()
        .map(|&section| {
            let dir = cache.section(section);
            let entries = fs::read_dir(&dir)
                .map(|e| e.flatten().filter(|e| !is_temporary(&e.path())).count() as u64)
                .unwrap_or(0);
            SectionStats {
                section,
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

/// Checks every component against its hash, every precompiled entry and
/// every cached expansion against its checksum, and removes what fails (it is rebuilt on next use),
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
        let Some(entry) = PrecompiledEntry::of_file(&path) else {
            found(path, "not a precompiled entry".into())?;
            continue;
        };
        if path != entry.code_path() {
            // A checksum file is checked with its code file, if it has one
            // (and is gone if that one was found corrupt just before).
            if path.exists() && !entry.code_path().exists() {
                found(path, "a checksum file without code".into())?;
            }
            continue;
        }
        let what = match entry.check() {
            Ok(()) => continue,
            // Entries are replaced by rename: one may vanish under us.
            Err(Unusable::Missing) if !path.exists() => continue,
            Err(Unusable::Missing) => "corrupt: it has no checksum file".to_string(),
            Err(Unusable::Corrupt(why)) => format!("corrupt: {why}"),
            Err(Unusable::Refused(why)) => format!("corrupt: {why}"),
        };
        entry.remove();
        found(path, what)?;
    }
    for path in entries(&cache.section(Section::Expansions))? {
        if is_temporary(&path) {
            if is_leftover(&path) {
                found(path, "a temporary file left by an interrupted write".into())?;
            }
            continue;
        }
        match crate::expansion_cache::check_file(&path) {
            Ok(()) => {}
            // Entries are replaced by rename: one may vanish under us.
            Err(_) if !path.exists() => {}
            Err(why) => found(path, format!("corrupt: {why}"))?,
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
    for section in Section::ALL {
        if !section.collectable() || (section == Section::Components && !components) {
            continue;
        }
        for path in entries(&cache.section(section))? {
            if now.duration_since(last_use(&path)).unwrap_or_default() < max_age {
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

/// When an entry was last used: its modification time, and for either file
/// of a precompiled entry the later of the two (loading marks the checksum
/// file), so both go together.
fn last_use(path: &Path) -> SystemTime {
    let modified = |path: &Path| {
        fs::symlink_metadata(path)
            .and_then(|m| m.modified())
            .unwrap_or(SystemTime::UNIX_EPOCH)
    };
    match PrecompiledEntry::of_file(path) {
        Some(entry) => modified(entry.code_path()).max(modified(entry.sum_path())),
        None => modified(path),
    }
}

/// Marks a cache entry used now, for `gc`. Failure only means the entry may
/// be collected earlier than it should; it is never fatal.
pub fn mark_used(path: &Path) {
    let touched = fs::File::open(path).and_then(|file| file.set_modified(SystemTime::now()));
    if let Err(e) = touched {
        tracing::debug!(path = %path.display(), "could not mark the cache entry used: {e}");
    }
}

/// [`mark_used`], but only when the entry was last marked more than a day
/// ago: for entries read on every hit, where a write each time would cost
/// more than the read, and a day is far below any `gc` age.
pub fn mark_used_daily(path: &Path) {
    let recent = fs::metadata(path)
        .and_then(|m| m.modified())
        .is_ok_and(|t| t.elapsed().unwrap_or_default() < Duration::from_secs(86_400));
    if !recent {
        mark_used(path);
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
