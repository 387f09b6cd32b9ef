//! Where shims find the runtime, chosen once for every rustc this process
//! starts: the runtime library loaded into rustc's process, or a `wasmacro
//! serve` child per macro crate and rustc.
//!
//! In process is the default: an expansion is a call, not a round trip to
//! another process (the serde corpus: 0.64 × the server's expansion time,
//! README *Performance*). It needs `libwasmacro_runtime` beside this
//! executable (the README's commands put it there) or where
//! `WASMACRO_RUNTIME` says; without one the server is used.
//! `WASMACRO_TRANSPORT=server` chooses the child process, which isolates
//! rustc from a crash of the runtime; `in-process` insists on the library.
//! Unless insisted on, a library a shim cannot load (from another wasmacro
//! build) also means the server: the shim checks (`wasmacro-client`).

use anyhow::{Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;
use wasmacro_protocol::runtime_abi::{RUNTIME_ENV, library_file_name};

/// The environment variable that chooses.
pub const TRANSPORT_ENV: &str = "WASMACRO_TRANSPORT";

/// How shims reach the runtime.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transport {
    /// A `wasmacro serve` process (this executable).
    Server(PathBuf),
    /// This runtime library, loaded into rustc.
    InProcess {
        /// The library.
        library: PathBuf,
        /// The server, for rustdoc and anything else that cannot load it.
        server: PathBuf,
    },
}

impl Transport {
    /// The transport the environment selects.
    pub fn from_env() -> Result<Transport> {
        let server = std::env::current_exe()?;
        let named = std::env::var_os(RUNTIME_ENV).filter(|p| !p.is_empty());
        // Absolute: rustc, which loads it, runs in another directory.
        let library = match &named {
            Some(path) => std::path::absolute(path)?,
            None => beside(&server),
        };
        match std::env::var(TRANSPORT_ENV).as_deref() {
            Ok("server") => Ok(Transport::Server(server)),
            // Loading it is implemented on Unix only.
            Err(_) | Ok("") if !cfg!(unix) => Ok(Transport::Server(server)),
            Err(_) | Ok("") if !library.is_file() => {
                if named.is_some() {
                    crate::status::warn(&format!(
                        "{RUNTIME_ENV} names {}, which does not exist: shims start `wasmacro \
                         serve` instead",
                        library.display()
                    ));
                }
                tracing::debug!(
                    "no runtime library at {}: shims start `wasmacro serve`",
                    library.display()
                );
                Ok(Transport::Server(server))
            }
            Err(_) | Ok("") => Ok(Transport::InProcess { library, server }),
            Ok("in-process") => {
                if !library.is_file() {
                    bail!(
                        "{TRANSPORT_ENV}=in-process, but there is no runtime library at {} \
                         (build it with `cargo build --release -p wasmacro-runtime` and put it \
                         beside `wasmacro`, or name it in {RUNTIME_ENV})",
                        library.display()
                    );
                }
                Ok(Transport::InProcess { library, server })
            }
            Ok(other) => bail!("{TRANSPORT_ENV} must be `server` or `in-process`, not `{other}`"),
        }
    }

    /// Sets what shims in `command`'s rustc read to find the runtime.
    pub fn apply(&self, command: &mut Command) {
        match self {
            Transport::Server(server) => {
                command
                    .env(wasmacro_protocol::SERVER_ENV, server)
                    .env_remove(RUNTIME_ENV);
            }
            Transport::InProcess { library, server } => {
                command
                    .env(wasmacro_protocol::SERVER_ENV, server)
                    .env(RUNTIME_ENV, library);
            }
        }
    }
}

fn beside(executable: &Path) -> PathBuf {
    executable.with_file_name(library_file_name())
}
