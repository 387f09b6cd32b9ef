//! wasmacro's cargo integration, under the `wasmacro` command line: `cargo
//! wasmacro` (run cargo with this as its `RUSTC_WRAPPER`), the wrapper
//! itself (proc-macro units become components and shims, `--extern NAME=…wasm`
//! becomes a shim), the project's policy and the grants it gives, what
//! macros read added to rustc's dep-info, where shims find the runtime, and
//! the summary of a run.
//!
//! It must never swallow an error, change a rustc or cargo exit code, write to
//! the user's `Cargo.lock`, or let a macro out of the sandbox without the
//! project's policy or the macro author's declaration saying so.

pub mod build_script_run;
pub mod build_script_unit;
pub mod cargo_command;
mod dep_info;
pub mod grants;
pub mod macro_unit;
pub mod next_wrapper;
pub mod policy;
pub mod policy_command;
mod rustc_args;
pub mod rustc_wrapper;
pub mod stateless;
mod status;
pub mod summary;
mod transport;
