//! Which macro crates are stateless: their expansions depend on their own
//! input alone, so each runs in a fresh instance and is cached on its own.
//! Every other macro keeps one instance per compilation, as native macros
//! share one address space (enum_dispatch hands a trait's definition to a
//! later expansion through a `static`), and its expansions are cached as a
//! sequence (`wasmacro-host/src/session.rs`).
//!
//! ```toml
//! # The macro's own Cargo.toml: the author's word.
//! [package.metadata.wasmacro]
//! stateless = true
//!
//! # The project's Cargo.toml, which has the last word.
//! [workspace.metadata.wasmacro]
//! stateless = ["my-derive"]
//! stateful = ["serde_derive"]     # overrides the author and the table below
//! ```
//!
//! A wrong declaration cannot make the cache unsound: with the cache on, a
//! stateless macro runs each expansion in a fresh instance, so its results
//! depend on nothing but what is recorded (a macro that needed its state
//! fails instead). With the cache off it keeps one instance, as fresh ones
//! would only cost time.

use crate::policy::Policy;

/// Well-known macro crates whose authors have not declared it: none of them,
/// nor syn, quote or darling, keeps a `static`, `thread_local!` or lazy value
/// (proc-macro2 memoises only whether it runs inside a macro). Checked by
/// searching their sources (`static mut`, `thread_local!`, atomics, locks,
/// `OnceLock`/`Lazy`); the ecosystem fixture expands each the same way as
/// natively.
pub const BUILT_IN: &[&str] = &[
    "async-trait",
    "clap_derive",
    "derive_more-impl",
    "displaydoc",
    "futures-macro",
    "pin-project-internal",
    "ref-cast-impl",
    "serde_derive",
    "serde_with_macros",
    "strum_macros",
    "thiserror-impl",
    "tokio-macros",
    "tracing-attributes",
    "zerocopy-derive",
];

/// Whether the macro's own manifest declares it stateless
/// (`[package.metadata.wasmacro] stateless = true`).
pub fn declared_by_author(manifest: &str) -> bool {
    crate::policy::author_says(manifest, "stateless")
}

/// Whether `package` runs stateless, and who said so (for `wasmacro
/// policy`): the project, else its author, else the built-in table.
pub fn effective(package: &str, author: bool, policy: &Policy) -> (bool, &'static str) {
    if policy.stateful.contains(package) {
        (false, "the project's policy (`stateful`)")
    } else if policy.stateless.contains(package) {
        (true, "the project's policy (`stateless`)")
    } else if author {
        (true, "its author")
    } else if BUILT_IN.contains(&package) {
        (true, "built in")
    } else {
        (false, "the default")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_project_has_the_last_word() {
        let policy = Policy::from_manifest(
            "[workspace.metadata.wasmacro]\nstateless = [\"mine\"]\nstateful = [\"serde_derive\"]\n",
            "test",
        )
        .unwrap();
        assert!(effective("mine", false, &policy).0);
        assert!(!effective("serde_derive", true, &policy).0);
        assert!(effective("thiserror-impl", false, &policy).0);
        assert!(!effective("enum_dispatch", false, &policy).0);
        assert!(effective("theirs", true, &policy).0);
        assert!(declared_by_author(
            "[package]\nname = \"x\"\n[package.metadata.wasmacro]\nstateless = true\n"
        ));
        assert!(!declared_by_author("[package]\nname = \"x\"\n"));
    }
}
