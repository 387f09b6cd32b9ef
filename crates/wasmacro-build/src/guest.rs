//! The guest `proc_macro` rlib every crate of a component build is given as
//! `--extern proc_macro=…`: built with rustc once per guest source and rustc
//! version, published into the cache with one rename.

use crate::key::Key;
use crate::{BuildError, BuildOptions, WASM_TARGET, embedded, files::write_if_changed, io_error};
use std::path::{Path, PathBuf};
use std::process::Command;
use wasmacro_host::Section;
use wasmacro_host::maintenance::mark_used;

/// How the guest is compiled (but the path remap, which names the staging
/// directory). Part of its key: a guest compiled with other flags is
/// another guest (a cache kept from a version with other flags once gave
/// components other bytes than a fresh cache).
const GUEST_FLAGS: &[&str] = &[
    "--crate-name",
    "proc_macro",
    "--edition",
    "2024",
    "--crate-type",
    "rlib",
    "--target",
    WASM_TARGET,
    "-C",
    "opt-level=3",
    "-C",
    "debuginfo=0",
    "--cap-lints",
    "allow",
];

/// What names the guest rlib `ensure_guest` returned: the rustc version,
/// the flags and the guest sources, through its directory's name.
pub(crate) fn key_of(rlib: &Path) -> String {
    rlib.parent()
        .and_then(Path::file_name)
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The guest rlib, built if needed.
pub(crate) fn ensure_guest(options: &BuildOptions) -> Result<PathBuf, BuildError> {
    let version = crate::cargo::rustc_version(&options.rustc).map_err(io_error(format!(
        "running `{} -vV`",
        options.rustc.display()
    )))?;
    let flags = GUEST_FLAGS.join(" ");
    let parts = [version.as_slice(), flags.as_bytes()].into_iter().chain(
        embedded::GUEST
            .iter()
            .flat_map(|(p, t)| [p.as_bytes(), t.as_bytes()]),
    );
    let guest_root = options.cache.section(Section::Guest);
    let dir = guest_root.join(Key::of("guest", parts).short());
    let rlib = dir.join("libproc_macro.rlib");
    if rlib.is_file() {
        mark_used(&dir);
        return Ok(rlib);
    }
    std::fs::create_dir_all(&guest_root)
        .map_err(io_error(format!("creating {}", guest_root.display())))?;
    let staging = tempfile::Builder::new()
        .prefix(".building-")
        .tempdir_in(&guest_root)
        .map_err(io_error("creating a guest build directory"))?;
    for (file, text) in embedded::GUEST {
        write_if_changed(&staging.path().join("src").join(file), text.as_bytes())?;
    }
    let output = Command::new(&options.rustc)
        .current_dir(staging.path())
        .args(GUEST_FLAGS)
        .args([
            "--remap-path-prefix",
            &format!("{}=/wasmacro/guest", staging.path().display()),
        ])
        .args(["src/lib.rs", "--out-dir", "."])
        .output()
        .map_err(io_error(format!("running {}", options.rustc.display())))?;
    if !output.status.success() {
        return Err(BuildError::Guest(
            String::from_utf8_lossy(&output.stderr).into_owned(),
        ));
    }
    let staged = staging.keep();
    if std::fs::rename(&staged, &dir).is_err() {
        // Another process published the same rlib first.
        let _ = std::fs::remove_dir_all(&staged);
    }
    Ok(rlib)
}
