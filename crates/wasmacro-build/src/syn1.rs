//! syn 1.x for wasm. syn 1 compiles its `proc_macro` integration
//! (`parse_macro_input!`, `From<proc_macro::TokenStream>`, …) only off
//! `wasm32-*-{unknown,wasi}`, from before any `proc_macro` existed there; it
//! hides them from every macro built on syn 1 for `wasm32-wasip2`, where
//! wasmacro provides one. The component build patches in a copy, in the work
//! directory, that differs from the registry's only in that `cfg`.

use crate::files::{package_files, write_if_changed};
use crate::selection::Selection;
use crate::{BuildError, manifest::Patch};
use std::path::Path;

/// The `cfg` syn 1.x puts on its `proc_macro` integration.
const SYN1_WASM_CFG: &str = r#"any(target_os = "unknown", target_os = "wasi")"#;

/// Where the patched copy goes, in the work directory.
pub(crate) const PATCHED_DIR: &str = "patched";

/// The patch for the registry syn 1.x the work directory's build resolves
/// to (`metadata`), if any; the copy is written only when it changes, so
/// rebuilds stay no-ops.
pub(crate) fn patch(
    metadata: &cargo_metadata::Metadata,
    work: &Path,
) -> Result<Option<Patch>, BuildError> {
    let syn1 = metadata.packages.iter().find(|p| {
        p.name.as_str() == "syn"
            && p.version.major == 1
            && p.source.as_ref().is_some_and(|s| s.is_crates_io())
    });
    let Some(syn1) = syn1 else {
        return Ok(None);
    };
    let source = syn1
        .manifest_path
        .parent()
        .map(|p| p.as_std_path())
        .unwrap_or(Path::new("."));
    let relative = format!("{PATCHED_DIR}/syn-{}", syn1.version);
    for (path, bytes) in &package_files(source, &Selection::all())? {
        let contents = if path.ends_with(".rs") {
            String::from_utf8_lossy(bytes)
                .replace(SYN1_WASM_CFG, r#"target_os = "unknown""#)
                .into_bytes()
        } else {
            bytes.clone()
        };
        write_if_changed(&work.join(&relative).join(path), &contents)?;
    }
    tracing::debug!(version = %syn1.version, "patched syn 1 for wasm");
    Ok(Some(Patch {
        registry: None,
        name: "syn".to_string(),
        path: relative,
    }))
}
