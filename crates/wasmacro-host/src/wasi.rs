//! The deterministic WASI context every guest gets: only the files and
//! variables its grants name (`capabilities.rs`), no arguments, no network,
//! clocks fixed at the Unix epoch, seeded randomness, stdin closed, stdout
//! and stderr captured.

use crate::capabilities::{Access, Capabilities};
use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;
use std::path::Path;
use wasmacro_protocol::Grants;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx};

/// How much a guest may print during one instance's life before writes trap.
pub(crate) const OUTPUT_CAPACITY: usize = 1 << 20;

/// The seed of the guest's "random" numbers: fixed, so `HashMap` iteration
/// order and any random choice are the same on every run and machine.
const RANDOM_SEED: u64 = 0x7761_736d_6163_726f; // "wasmacro"

/// A wall clock that always reads the Unix epoch.
struct FixedWallClock;

impl HostWallClock for FixedWallClock {
    fn resolution(&self) -> std::time::Duration {
        std::time::Duration::from_secs(1)
    }
    fn now(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }
}

/// A monotonic clock that never advances.
struct FixedMonotonicClock;

impl HostMonotonicClock for FixedMonotonicClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}

/// Builds the context for `grants`; returns it with the pipe that collects
/// stdout+stderr and the record of what the guest reads. `empty` is an empty
/// directory standing in for `/`.
pub(crate) fn deterministic_ctx(
    grants: &Grants,
    empty: &Path,
) -> Result<(WasiCtx, MemoryOutputPipe, Capabilities), String> {
    let output = MemoryOutputPipe::new(OUTPUT_CAPACITY);
    let mut builder = deterministic_builder();
    builder.stdout(output.clone()).stderr(output.clone());
    let capabilities = Capabilities::new(grants, &mut builder, empty)?;
    Ok((builder.build(), output, capabilities))
}

/// What a build script's run prints, kept apart: cargo reads directives
/// from stdout only.
pub(crate) struct ScriptOutput {
    /// Its standard output.
    pub stdout: MemoryOutputPipe,
    /// Its standard error.
    pub stderr: MemoryOutputPipe,
}

/// The context of a build script: [`deterministic_ctx`]'s clocks,
/// randomness and refusals, `grants` to read, `writable` directories to
/// write, and stdout and stderr captured apart, up to `capacity` bytes each.
pub(crate) fn build_script_ctx(
    grants: &Grants,
    writable: &[String],
    empty: &Path,
    capacity: usize,
) -> Result<(WasiCtx, ScriptOutput, Capabilities), String> {
    let output = ScriptOutput {
        stdout: MemoryOutputPipe::new(capacity),
        stderr: MemoryOutputPipe::new(capacity),
    };
    let mut builder = deterministic_builder();
    builder
        .stdout(output.stdout.clone())
        .stderr(output.stderr.clone());
    let capabilities = Capabilities::with_writable(grants, writable, &mut builder, empty)?;
    Ok((builder.build(), output, capabilities))
}

/// Clocks at the epoch, seeded randomness, no network, no stdin.
fn deterministic_builder() -> wasmtime_wasi::WasiCtxBuilder {
    let mut builder = WasiCtx::builder();
    builder
        .wall_clock(FixedWallClock)
        .monotonic_clock(FixedMonotonicClock)
        // Xoshiro256++ is a fixed, documented algorithm: the same seed gives
        // the same stream in every rand version, unlike `StdRng`.
        .secure_random(Xoshiro256PlusPlus::seed_from_u64(RANDOM_SEED))
        .insecure_random(Xoshiro256PlusPlus::seed_from_u64(RANDOM_SEED ^ 1))
        .insecure_random_seed(u128::from(RANDOM_SEED))
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false);
    builder
}

/// A pollable that is always ready: what a guest's sleep subscribes to.
struct ReadyNow;

#[async_trait::async_trait]
impl wasmtime_wasi::p2::Pollable for ReadyNow {
    async fn ready(&mut self) {}
}

/// The `wasi:clocks` version wasmtime-wasi 48 defines (guests importing any
/// 0.2.x are linked to it by semver).
const MONOTONIC_CLOCK: &str = "wasi:clocks/monotonic-clock@0.2.12";

/// Replaces the monotonic clock's `subscribe-duration`/`subscribe-instant`,
/// which wasmtime-wasi backs with real timers: blocked in the host, a guest
/// that sleeps would use no fuel and could hang rustc. With the clock frozen
/// at 0, every sleep is over at once; a loop waiting for time to pass runs out
/// of fuel, the same way on every machine.
pub(crate) fn virtualize_sleep<T: wasmtime_wasi::WasiView + 'static>(
    linker: &mut wasmtime::component::Linker<T>,
) -> wasmtime::Result<()> {
    use wasmtime::component::Resource;
    use wasmtime_wasi::p2::DynPollable;

    fn ready<T: wasmtime_wasi::WasiView>(
        mut store: wasmtime::StoreContextMut<'_, T>,
    ) -> wasmtime::Result<(Resource<DynPollable>,)> {
        let table = store.data_mut().ctx().table;
        let resource = table.push(ReadyNow)?;
        Ok((wasmtime_wasi::p2::subscribe(table, resource)?,))
    }

    linker.allow_shadowing(true);
    let mut clock = linker.instance(MONOTONIC_CLOCK)?;
    clock.func_wrap(
        "subscribe-duration",
        |store: wasmtime::StoreContextMut<'_, T>, (_,): (u64,)| ready(store),
    )?;
    clock.func_wrap(
        "subscribe-instant",
        |store: wasmtime::StoreContextMut<'_, T>, (_,): (u64,)| ready(store),
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

/// Something a guest tried that the sandbox does not provide. Recorded so a
/// failure can say that the macro ran as wasm and what it was denied.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum SandboxAttempt {
    /// Touched a path no grant covers, or tried to write.
    Read {
        /// The path, as the guest named it (absolute).
        path: String,
        /// What it tried.
        action: Access,
        /// The path from its root (`$CARGO_MANIFEST_DIR/…`), when it has
        /// one: what a grant would say.
        suggestion: Option<String>,
        /// The macro's package, as policies name it.
        package: String,
    },
    /// Read its arguments (there are none).
    Arguments,
    /// Created a socket of this kind (refused).
    Socket(&'static str),
    /// Looked up a host name (refused).
    Resolve(String),
}

impl std::fmt::Display for SandboxAttempt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SandboxAttempt::Read { path, action, .. } => match action {
                Access::Read => write!(f, "read `{path}`, which no grant covers"),
                Access::List => write!(f, "list the directory `{path}`, which no grant covers"),
                Access::Write => write!(f, "write to `{path}`, but the sandbox is read-only"),
            },
            SandboxAttempt::Arguments => {
                f.write_str("read command-line arguments, but the sandbox has none")
            }
            SandboxAttempt::Socket(kind) => {
                write!(f, "open a {kind} socket, but the sandbox has no network")
            }
            SandboxAttempt::Resolve(host) => write!(
                f,
                "resolve the host name `{}`, but the sandbox has no network",
                host.escape_debug()
            ),
        }
    }
}

impl SandboxAttempt {
    /// What the user can do about it.
    pub(crate) fn help(&self) -> String {
        match self {
            SandboxAttempt::Read {
                action: Access::Write,
                package,
                ..
            } => format!(
                "help: macros are never granted writing; a macro that must write files can only \
                 run natively: add `{package}` to `deny` in `[workspace.metadata.wasmacro]`"
            ),
            SandboxAttempt::Read {
                suggestion: Some(name),
                package,
                ..
            } => format!(
                "help: to grant it, add to the project's Cargo.toml:\n    \
                 [workspace.metadata.wasmacro.grants]\n    {package} = {{ read = [\"{name}\"] }}"
            ),
            SandboxAttempt::Read {
                suggestion: None, ..
            } => "help: grants name paths below `$CARGO_MANIFEST_DIR`, `$CARGO_WORKSPACE_DIR` or \
                  `$OUT_DIR`; this path is outside all of them (a macro should find its files \
                  through `CARGO_MANIFEST_DIR`)"
                .to_string(),
            SandboxAttempt::Arguments => String::new(),
            SandboxAttempt::Socket(_) | SandboxAttempt::Resolve(_) => "help: a macro that needs \
                the network must run natively: add its package to `deny` in \
                `[workspace.metadata.wasmacro]`"
                .to_string(),
        }
    }
}

impl SandboxAttempt {
    /// What a build script tried, as its error says it.
    pub(crate) fn for_build_script(&self) -> String {
        match self {
            SandboxAttempt::Read {
                path,
                action: Access::Write,
                ..
            } => format!("write to `{path}`, outside its `OUT_DIR`"),
            SandboxAttempt::Read {
                path,
                action: Access::List,
                ..
            } => format!("list the directory `{path}`, outside its package and `OUT_DIR`"),
            SandboxAttempt::Read { path, .. } => {
                format!("read `{path}`, outside its package and `OUT_DIR`")
            }
            other => other.to_string(),
        }
    }

    /// What the user can do about a build script's attempt.
    pub(crate) fn build_script_help(&self, package: &str) -> String {
        let package = if package.is_empty() {
            "its-package"
        } else {
            package
        };
        format!(
            "help: a build script in the sandbox reads its own package and writes its `OUT_DIR`, \
             nothing else; one that needs more can only run natively: add `{package}` to `deny` \
             in `[workspace.metadata.wasmacro]`"
        )
    }
}

/// Where the shadowed WASI functions report to.
pub(crate) trait SandboxLog {
    /// Notes an attempt the guest survives (it sees an empty answer).
    fn attempted(&mut self, attempt: SandboxAttempt);
    /// Notes an attempt and returns the error that ends the expansion.
    fn refuse(&mut self, attempt: SandboxAttempt) -> wasmtime::Error;
}

/// The WASI version wasmtime-wasi 48 defines for every interface.
const WASI_VERSION: &str = "0.2.12";

/// Replaces the WASI functions through which a guest reaches for the network
/// or its arguments, so each attempt is recorded. The answers do not change
/// what the sandbox allows: no arguments, as before; socket creation and name
/// lookups, which the context already denies, end the expansion with an
/// error saying what was tried (a macro that swallowed the socket error would
/// otherwise fail in some confusing way later, or succeed differently than
/// natively). Files and the environment are `capabilities.rs`'.
pub(crate) fn watch_ambient_authority<T: SandboxLog + 'static>(
    linker: &mut wasmtime::component::Linker<T>,
) -> wasmtime::Result<()> {
    use wasmtime::component::Val;

    linker.allow_shadowing(true);
    let mut environment = linker.instance(&format!("wasi:cli/environment@{WASI_VERSION}"))?;
    environment.func_new("get-arguments", |mut store, _, _, results| {
        store.data_mut().attempted(SandboxAttempt::Arguments);
        if let Some(result) = results.first_mut() {
            *result = Val::List(Vec::new());
        }
        Ok(())
    })?;

    for (interface, function, kind) in [
        ("tcp-create-socket", "create-tcp-socket", "TCP"),
        ("udp-create-socket", "create-udp-socket", "UDP"),
    ] {
        let mut instance = linker.instance(&format!("wasi:sockets/{interface}@{WASI_VERSION}"))?;
        instance.func_new(function, move |mut store, _, _, _| {
            Err(store.data_mut().refuse(SandboxAttempt::Socket(kind)))
        })?;
    }
    let mut lookup = linker.instance(&format!("wasi:sockets/ip-name-lookup@{WASI_VERSION}"))?;
    lookup.func_new("resolve-addresses", |mut store, _, params, _| {
        let host = match params.get(1) {
            Some(Val::String(host)) => host.clone(),
            _ => String::new(),
        };
        Err(store.data_mut().refuse(SandboxAttempt::Resolve(host)))
    })?;
    linker.allow_shadowing(false);
    Ok(())
}
