//! Sources of the guest `proc_macro` crate, the export glue and the register
//! macros, embedded so an installed `wasmacro` builds components without a
//! source checkout.

use crate::key::Key;

/// The guest `proc_macro` crate's `src/` files.
pub(crate) const GUEST: &[(&str, &str)] = &[
    ("lib.rs", include_str!("../../wasmacro-guest/src/lib.rs")),
    (
        "bridge.rs",
        include_str!("../../wasmacro-guest/src/bridge.rs"),
    ),
    (
        "escape.rs",
        include_str!("../../wasmacro-guest/src/escape.rs"),
    ),
    (
        "lexer.rs",
        include_str!("../../wasmacro-guest/src/lexer.rs"),
    ),
    (
        "print.rs",
        include_str!("../../wasmacro-guest/src/print.rs"),
    ),
    (
        "unicode_ident.rs",
        include_str!("../../wasmacro-guest/src/unicode_ident.rs"),
    ),
];

/// The export glue package, relative to its directory in the work directory.
pub(crate) const GLUE: &[(&str, &str)] = &[
    (
        "Cargo.toml",
        include_str!("../../wasmacro-guest-glue/Cargo.toml"),
    ),
    (
        "src/lib.rs",
        include_str!("../../wasmacro-guest-glue/src/lib.rs"),
    ),
    (
        "src/bindings.rs",
        include_str!("../../wasmacro-guest-glue/src/bindings.rs"),
    ),
    (
        "src/size_classes.rs",
        include_str!("../../wasmacro-guest-glue/src/size_classes.rs"),
    ),
];

/// The register macros package, likewise.
pub(crate) const REGISTER: &[(&str, &str)] = &[
    (
        "Cargo.toml",
        include_str!("../../wasmacro-register/Cargo.toml"),
    ),
    (
        "src/lib.rs",
        include_str!("../../wasmacro-register/src/lib.rs"),
    ),
    (
        "src/record.rs",
        include_str!("../../wasmacro-register/src/record.rs"),
    ),
];

/// A digest of every source the build puts into a component besides the
/// package: what changes when a new wasmacro builds different components.
pub fn embedded_sources_digest() -> String {
    let parts = GUEST
        .iter()
        .chain(GLUE)
        .chain(REGISTER)
        .flat_map(|(path, text)| [path.as_bytes(), text.as_bytes()]);
    Key::of("embedded sources", parts).short().to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_glue_bindings_were_generated_from_this_contract() {
        let digest = blake3::hash(include_bytes!("../../../wit/wasmacro.wit"));
        assert_eq!(
            include_str!("../../wasmacro-guest-glue/src/bindings.wit-digest").trim(),
            digest.to_hex().as_str(),
            "wit/wasmacro.wit changed: run scripts/generate-bindings.sh"
        );
    }
}
