//! Typed errors of the runtime. Messages are complete sentences a rustc user
//! can act on: they name what was attempted and, where one exists, a fix.

use std::path::PathBuf;

/// A component could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The component is not in the cache and no bytes were given.
    #[error(
        "component {hash} is not in the wasmacro cache at {}; rebuild it with `wasmacro build` \
         (under `cargo wasmacro`: `cargo clean -p` the macro crate, then build again)",
        dir.display()
    )]
    NotCached {
        /// The hash asked for.
        hash: String,
        /// The cache directory searched.
        dir: PathBuf,
    },
    /// The bytes are not a valid component, or were built for another
    /// contract version.
    #[error("{what} is not a valid wasmacro proc-macro component: {reason}")]
    Invalid {
        /// What was loaded (a path or a hash).
        what: String,
        /// wasmtime's explanation.
        reason: String,
    },
    /// The component implements another version of the contract.
    #[error(
        "{what} was built against {found}, but this wasmacro runs components built against \
         {}@{}; rebuild it with this wasmacro (`wasmacro build`, or `cargo wasmacro` does it)",
        wasmacro_protocol::CONTRACT_PACKAGE,
        wasmacro_protocol::CONTRACT_VERSION
    )]
    Contract {
        /// What was loaded.
        what: String,
        /// The contract it implements.
        found: String,
    },
    /// The cache directory cannot be created or written.
    #[error(
        "the wasmacro cache directory {} cannot be written: {source}; set WASMACRO_CACHE_DIR \
         to a writable directory",
        dir.display()
    )]
    CacheUnwritable {
        /// The cache root.
        dir: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Reading or writing the cache failed.
    #[error("wasmacro cache I/O failed at {path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The engine could not be created.
    #[error("could not create the wasmtime engine: {0}")]
    Engine(String),
    /// A setting (an environment variable) has a value wasmacro does not know.
    #[error("{0}")]
    Setting(String),
}

/// An expansion did not produce tokens.
#[derive(Debug, thiserror::Error)]
pub enum ExpandError {
    /// The macro panicked; rustc reports this like a native macro's panic.
    #[error("proc macro panicked{}", .0.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Panicked(Option<String>),
    /// The guest trapped or hit a limit.
    #[error("{0}")]
    Trapped(String),
    /// The component does not export the macro.
    #[error("the component does not export a macro named `{0}`")]
    UnknownMacro(String),
    /// The guest rejected the tokens it was given.
    #[error("the component rejected its input tokens: {0}")]
    InvalidInput(String),
    /// The guest returned tokens rustc would reject.
    #[error(
        "the macro returned {0}\nhelp: rustc cannot accept these tokens; this is a bug in the \
         macro or its component (`proc_macro` itself cannot make them)"
    )]
    InvalidOutput(String),
    /// The instance could not be created.
    #[error("could not instantiate the component: {0}")]
    Instantiate(String),
}
