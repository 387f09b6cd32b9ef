//! The wasmacro runtime: loads proc-macro components, keeps a content-addressed
//! cache of their precompiled code, and runs expansions in a deterministic
//! wasmtime sandbox. [`server`] serves one component to a shim inside rustc.
//!
//! Embedding it takes three steps: a [`Runtime`] (one wasmtime `Engine` and the
//! [`ComponentCache`]), a [`LoadedComponent`] per component (precompiled code
//! and an `InstancePre`), and a [`MacroInstance`] that owns the guest's memory
//! for as long as native macro state would live — one compilation.
//!
//! [`build_script`] runs a build script's command component with what a build
//! script legitimately has: its package to read, its `OUT_DIR` to write.
//!
//! It must never: run a guest without its limits (fuel, memory, stack, time,
//! output); give a guest a directory or an environment variable its grants do
//! not name (for a build script: its package, read-only, and its `OUT_DIR`),
//! an argument, a socket, the real clock or real randomness; trust bytes that
//! come from a guest or from the cache without validating them; or let a guest
//! failure escape as a panic of the host.

#![warn(missing_docs)]

mod backtrace;
pub mod build_script;
mod cache;
mod capabilities;
pub mod edition;
mod error;
pub mod expansion_cache;
mod generation;
mod instance;
mod layout;
mod limits;
pub mod maintenance;
mod precompiled;
pub mod records;
pub mod server;
pub mod session;
mod wasi;

pub use cache::{ComponentCache, ComponentHash, write_atomically};
pub use error::{ExpandError, LoadError};
pub use instance::{
    Backend, Isolation, LoadedComponent, MacroInstance, Runtime, RuntimeConfig, SpanOracle,
    SpanOracleError,
};
pub use layout::{CacheDir, Section};
pub use limits::{ApproxSize, LimitError, Limits, Size};

/// Generated bindings for the `wasmacro:proc-macro` world.
mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "proc-macro-component",
        imports: { default: trappable },
    });
}
