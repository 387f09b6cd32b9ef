//! Reading a package's files and writing the work directory.

use crate::selection::Selection;
use crate::{BuildError, io_error};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Files by `/`-separated path relative to a root, sorted by path so whatever
/// is computed from them does not depend on directory order.
pub(crate) type Files = BTreeMap<String, Vec<u8>>;

/// Every file of the package at `root` a build may read: what `selection`
/// selects of the whole directory, symlinks followed (serde_derive_internals'
/// `src` is one), but not `target/`, version-control directories, the
/// package's own `Cargo.lock` (a dependency's lockfile is never used) or
/// nested packages (directories with their own `Cargo.toml`, which cargo does
/// not count as part of this one either).
pub(crate) fn package_files(root: &Path, selection: &Selection) -> Result<Files, BuildError> {
    let mut files = Files::new();
    let mut visited = BTreeSet::new();
    let mut pending = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, prefix)) = pending.pop() {
        // A symlink back to an ancestor would otherwise never end.
        let canonical =
            std::fs::canonicalize(&dir).map_err(io_error(format!("reading {}", dir.display())))?;
        if !visited.insert(canonical) {
            continue;
        }
        let entries =
            std::fs::read_dir(&dir).map_err(io_error(format!("reading {}", dir.display())))?;
        for entry in entries {
            let entry = entry.map_err(io_error(format!("reading {}", dir.display())))?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            let relative = format!("{prefix}{name}");
            // `metadata` follows symlinks: a symlinked source file or
            // directory is part of the package like any other.
            let Ok(metadata) = std::fs::metadata(&path) else {
                tracing::debug!(path = %path.display(), "skipping a dangling symlink");
                continue;
            };
            if metadata.is_dir() {
                let skipped = matches!(name.as_str(), "target" | ".git" | ".hg" | ".svn")
                    || path.join("Cargo.toml").is_file()
                    || !selection.selects(&relative, true);
                if !skipped {
                    pending.push((path, format!("{relative}/")));
                }
            } else if metadata.is_file()
                && relative != "Cargo.lock"
                && selection.selects(&relative, false)
            {
                let contents = std::fs::read(&path)
                    .map_err(io_error(format!("reading {}", path.display())))?;
                files.insert(relative, contents);
            }
        }
    }
    Ok(files)
}

/// Writes a file only when its contents change, so cargo's fingerprints stay
/// valid and an unchanged rebuild does no work.
pub(crate) fn write_if_changed(path: &Path, contents: &[u8]) -> Result<(), BuildError> {
    if std::fs::read(path).is_ok_and(|existing| existing == contents) {
        return Ok(());
    }
    // A concurrent build reading the same shared file never sees it
    // half-written.
    wasmacro_host::write_atomically(path, &[contents])
        .map_err(io_error(format!("writing {}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::package_files;
    use crate::selection::Selection;

    #[test]
    fn symlinks_are_followed_and_nested_packages_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("pkg");
        std::fs::create_dir_all(root.join("src")).unwrap();
        std::fs::create_dir_all(root.join("nested/src")).unwrap();
        std::fs::create_dir_all(dir.path().join("shared")).unwrap();
        std::fs::write(root.join("Cargo.toml"), "[package]").unwrap();
        std::fs::write(root.join("Cargo.lock"), "").unwrap();
        std::fs::write(root.join("src/lib.rs"), "mod shared;").unwrap();
        std::fs::write(root.join("nested/Cargo.toml"), "[package]").unwrap();
        std::fs::write(dir.path().join("shared/mod.rs"), "pub fn f() {}").unwrap();
        std::os::unix::fs::symlink("../../shared", root.join("src/shared")).unwrap();
        // A cycle: `src/again` is `src`.
        std::os::unix::fs::symlink(".", root.join("src/again")).unwrap();
        let files = package_files(&root, &Selection::all()).unwrap();
        let paths: Vec<&str> = files.keys().map(String::as_str).collect();
        assert_eq!(paths, ["Cargo.toml", "src/lib.rs", "src/shared/mod.rs"]);
    }
}
