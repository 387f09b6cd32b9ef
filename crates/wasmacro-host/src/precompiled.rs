//! Precompiled code on disk, mapped rather than read.
//!
//! An entry is two files: `KEY.cwasm`, exactly the bytes wasmtime's
//! `precompile_component` produced (so [`Component::deserialize_file`] can
//! map it: ~0.3 ms for serde_derive's 4.4 MB, against ~4 ms to read and copy
//! it and ~1.8 ms only to hash it), and `KEY.cwasm.sum`: the code's BLAKE3
//! checksum and the *stamp* of the file it was last verified against (inode,
//! size, modification and change times).
//!
//! Mapping code that was not checked would let a corrupted file run as native
//! code in rustc's process, and hashing it on every load would cost more than
//! reading it. So the content is hashed when the stamp does not match — the
//! first load after the entry was written, and after anything touched the file
//! — and trusted by its stamp afterwards, as git's index trusts unchanged
//! files. Any write to the file, in place or by replacing it, changes its
//! change time, which no unprivileged program can set back. Marking an entry
//! used for `gc` touches the `.sum` file, never the code.

use crate::maintenance::mark_used;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Magic bytes opening a `.sum` file: format name and version.
const SUM_MAGIC: &[u8; 8] = b"WMCSUM01";

/// The `.sum` file's length: magic, checksum, stamp.
const SUM_LEN: usize = 8 + 32 + Stamp::LEN;

/// One precompiled entry's two files.
pub(crate) struct PrecompiledEntry {
    code: PathBuf,
    sum: PathBuf,
}

/// Why an entry could not be used.
pub(crate) enum Unusable {
    /// There is no entry (or only half of one).
    Missing,
    /// The entry is damaged (a code mismatch has removed it already).
    Corrupt(&'static str),
    /// wasmtime refused the code.
    Refused(String),
}

impl PrecompiledEntry {
    /// The entry `KEY` in `dir`.
    pub(crate) fn new(dir: &Path, key: &str) -> PrecompiledEntry {
        PrecompiledEntry {
            code: dir.join(format!("{key}.cwasm")),
            sum: dir.join(format!("{key}.cwasm.sum")),
        }
    }

    /// The entry `path` is one of the two files of, if it is.
    pub(crate) fn of_file(path: &Path) -> Option<PrecompiledEntry> {
        let name = path.file_name()?.to_str()?;
        let code = name.strip_suffix(".sum").unwrap_or(name);
        code.strip_suffix(".cwasm")?;
        Some(PrecompiledEntry {
            code: path.with_file_name(code),
            sum: path.with_file_name(format!("{code}.sum")),
        })
    }

    /// Its code file.
    pub(crate) fn code_path(&self) -> &Path {
        &self.code
    }

    /// Its checksum file (what `gc` reads the last use from).
    pub(crate) fn sum_path(&self) -> &Path {
        &self.sum
    }

    /// Maps the entry's code into `engine`, verifying its content first
    /// unless its stamp shows it unchanged since the last verification.
    pub(crate) fn load(&self, engine: &Engine) -> Result<Component, Unusable> {
        let sum = Sum::read(&self.sum)?;
        let before = Stamp::of(&self.code).map_err(|_| Unusable::Missing)?;
        if before == Stamp::NONE || before != sum.stamp {
            self.verify_content(&sum)?;
            // Stamped with what was verified; a failure to record it only
            // means the next load verifies again.
            let restamped = Sum {
                stamp: before,
                ..sum
            };
            if let Err(e) = restamped.write(&self.sum) {
                tracing::debug!("could not stamp {}: {e}", self.sum.display());
            }
        }
        // SAFETY: the file holds bytes `precompile_component` produced for an
        // engine with this compatibility hash (part of the key), verified
        // against their checksum now or when the stamp was taken; the stamp
        // is checked again below, so a file replaced meanwhile is not used.
        let component = unsafe { Component::deserialize_file(engine, &self.code) }
            .map_err(|e| Unusable::Refused(format!("{e:#}")))?;
        if Stamp::of(&self.code).ok() != Some(before) {
            return Err(Unusable::Missing);
        }
        mark_used(&self.sum);
        Ok(component)
    }

    /// Writes freshly precompiled `code` with its checksum (stamped by the
    /// first load, which verifies it once).
    pub(crate) fn store(&self, code: &[u8]) -> io::Result<()> {
        crate::cache::write_atomically(&self.code, &[code])?;
        Sum {
            checksum: *blake3::hash(code).as_bytes(),
            stamp: Stamp::NONE,
        }
        .write(&self.sum)
    }

    /// Checks the whole entry by content, ignoring its stamp, for `wasmacro
    /// cache verify`; a corrupt entry is removed.
    pub(crate) fn check(&self) -> Result<(), Unusable> {
        let sum = Sum::read(&self.sum)?;
        self.verify_content(&sum)
    }

    /// Hashes the code against the checksum; a mismatch removes the entry.
    fn verify_content(&self, sum: &Sum) -> Result<(), Unusable> {
        let bytes = fs::read(&self.code).map_err(|_| Unusable::Missing)?;
        if blake3::hash(&bytes).as_bytes() == &sum.checksum {
            return Ok(());
        }
        self.remove();
        Err(Unusable::Corrupt(
            "its code does not match its checksum (truncated or modified?)",
        ))
    }

    /// Removes both files (either may already be gone).
    pub(crate) fn remove(&self) {
        for path in [&self.code, &self.sum] {
            if let Err(e) = fs::remove_file(path)
                && e.kind() != io::ErrorKind::NotFound
            {
                tracing::debug!("could not remove {}: {e}", path.display());
            }
        }
    }
}

/// The contents of a `.sum` file.
#[derive(Clone, Copy)]
struct Sum {
    checksum: [u8; 32],
    stamp: Stamp,
}

impl Sum {
    fn read(path: &Path) -> Result<Sum, Unusable> {
        let bytes = match fs::read(path) {
            Ok(bytes) => bytes,
            Err(_) => return Err(Unusable::Missing),
        };
        Sum::decode(&bytes).ok_or(Unusable::Corrupt("its checksum file is malformed"))
    }

    fn decode(bytes: &[u8]) -> Option<Sum> {
        let rest = bytes.strip_prefix(SUM_MAGIC.as_slice())?;
        let (checksum, stamp) = rest.split_at_checked(32)?;
        Some(Sum {
            checksum: checksum.try_into().ok()?,
            stamp: Stamp::decode(stamp)?,
        })
    }

    fn write(&self, path: &Path) -> io::Result<()> {
        let mut bytes = Vec::with_capacity(SUM_LEN);
        bytes.extend_from_slice(SUM_MAGIC);
        bytes.extend_from_slice(&self.checksum);
        bytes.extend_from_slice(&self.stamp.encode());
        crate::cache::write_atomically(path, &[&bytes])
    }
}

/// What identifies one version of a file without reading it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp([u64; 6]);

impl Stamp {
    const LEN: usize = 6 * 8;

    /// No file's (inode 0 does not exist): an entry stored but not yet
    /// verified from disk, or a platform without change times.
    const NONE: Stamp = Stamp([0; 6]);

    #[cfg(unix)]
    fn of(path: &Path) -> io::Result<Stamp> {
        use std::os::unix::fs::MetadataExt as _;
        let meta = fs::metadata(path)?;
        // Times as raw bits: only equality matters.
        Ok(Stamp([
            meta.ino(),
            meta.len(),
            meta.mtime() as u64,
            meta.mtime_nsec() as u64,
            meta.ctime() as u64,
            meta.ctime_nsec() as u64,
        ]))
    }

    /// Without change times there is no stamp: `NONE` is never trusted, so
    /// every load verifies the content.
    #[cfg(not(unix))]
    fn of(path: &Path) -> io::Result<Stamp> {
        fs::metadata(path).map(|_| Stamp::NONE)
    }

    fn encode(&self) -> [u8; Stamp::LEN] {
        let mut bytes = [0; Stamp::LEN];
        for (chunk, value) in bytes.chunks_exact_mut(8).zip(self.0) {
            chunk.copy_from_slice(&value.to_le_bytes());
        }
        bytes
    }

    fn decode(bytes: &[u8]) -> Option<Stamp> {
        if bytes.len() != Stamp::LEN {
            return None;
        }
        let mut values = [0; 6];
        for (value, chunk) in values.iter_mut().zip(bytes.chunks_exact(8)) {
            *value = u64::from_le_bytes(chunk.try_into().ok()?);
        }
        Some(Stamp(values))
    }
}
