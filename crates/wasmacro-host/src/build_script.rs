//! Running a build script's component: a `wasi:cli/command` built from the
//! package's `build.rs`, run once with what a build script legitimately
//! has — its package directory to read, its `OUT_DIR` to read and write,
//! the variables cargo gives build scripts — under the same limits, frozen
//! clocks and seeded randomness as a macro.
//!
//! It must never: give the script a path outside those two directories, a
//! socket or a process; let it run without fuel, memory and time limits; or
//! report success for a run that trapped.

use crate::cache::ComponentHash;
use crate::capabilities::HasCapabilities as _;
use crate::error::LoadError;
use crate::instance::{GuestKind, GuestState, Runtime, new_store};
use crate::wasi::build_script_ctx;
use wasmacro_protocol::{Grants, Input, ReadGrant, Root, below, normalize};
use wasmtime_wasi::p2::bindings::sync::CommandPre;

/// One run of a build script.
#[derive(Clone, Debug)]
pub struct BuildScriptRun {
    /// The package whose script it is, as policies name it.
    pub package: String,
    /// The package directory (`CARGO_MANIFEST_DIR`): readable.
    pub manifest_dir: String,
    /// Its `OUT_DIR`: readable and writable.
    pub out_dir: String,
    /// More directories it may read, absolute: those its dependencies'
    /// scripts pass it in `DEP_*` variables (a `-sys` crate's include
    /// directory in its own `OUT_DIR`).
    pub readable: Vec<String>,
    /// The variables the script sees, as cargo set them.
    pub env: Vec<(String, String)>,
}

/// How a run ended.
#[derive(Clone, Debug)]
pub struct BuildScriptOutcome {
    /// The exit code: 0, the code it passed to `exit`, or 101 when it
    /// panicked (what a native build script exits with).
    pub exit_code: i32,
    /// What it printed to stdout (cargo's directives among it).
    pub stdout: Vec<u8>,
    /// What it printed to stderr.
    pub stderr: Vec<u8>,
    /// The files and directories it read (outside its `OUT_DIR`), absolute,
    /// sorted.
    pub reads: Vec<String>,
    /// Why it failed when it did not exit on its own: a limit, a refused
    /// attempt, a trap.
    pub failure: Option<String>,
    /// The fuel the run used.
    pub fuel_used: u64,
}

/// Why a build script could not be run at all.
#[derive(Debug, thiserror::Error)]
pub enum BuildScriptError {
    /// Its component does not load.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// It is not a command component, or its sandbox could not be set up.
    #[error("{0}")]
    Setup(String),
}

impl Runtime {
    /// Runs the build script component `hash` once, as `run` says.
    pub fn run_build_script(
        &self,
        hash: &ComponentHash,
        run: &BuildScriptRun,
    ) -> Result<BuildScriptOutcome, BuildScriptError> {
        let setup = |what: &str, e: &dyn std::fmt::Display| {
            BuildScriptError::Setup(format!("{what}: {e:#}"))
        };
        let component = self.cache().load(&self.engine, hash)?;
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| setup("it imports what the sandbox does not provide", &e))?;
        let pre = CommandPre::new(pre)
            .map_err(|e| setup("it is not a command (a build script has `fn main`)", &e))?;

        let grants = grants(run)?;
        let out_dir = normalize(&run.out_dir).ok_or_else(|| {
            BuildScriptError::Setup(format!("OUT_DIR {} is not absolute", run.out_dir))
        })?;
        let capacity = usize::try_from(self.config.limits.output).unwrap_or(usize::MAX);
        let (wasi, output, capabilities) =
            build_script_ctx(&grants, &[out_dir], &self.sandbox_root, capacity)
                .map_err(|e| setup("the sandbox could not be set up", &e))?;
        let state = GuestState::new(wasi, capabilities, GuestKind::BuildScript);
        let limits = &self.config.limits;
        let mut store = new_store(&self.engine, state, limits)
            .map_err(|e| setup("the sandbox could not be set up", &e))?;

        let ran = pre
            .instantiate(&mut store)
            .and_then(|command| command.wasi_cli_run().call_run(&mut store));
        let fuel_used = limits.fuel.saturating_sub(store.get_fuel().unwrap_or(0));
        // Writes to a full pipe fail: a script's print then panics, or, if it
        // ignored the error, cargo misses what it would have read.
        let overflowed = [&output.stdout, &output.stderr]
            .iter()
            .any(|pipe| pipe.contents().len() >= capacity);
        let (exit_code, failure) = match ran {
            Ok(Ok(())) => (0, None),
            Ok(Err(())) => (1, None),
            Err(error) => match error.downcast_ref::<wasmtime_wasi::I32Exit>() {
                Some(exit) => (exit.0, None),
                None => {
                    let panicked =
                        String::from_utf8_lossy(&output.stderr.contents()).contains("panicked at");
                    let aborted = matches!(
                        error.downcast_ref::<wasmtime::Trap>(),
                        Some(wasmtime::Trap::UnreachableCodeReached)
                    );
                    let why = match store.data_mut().host_error.take() {
                        Some(refused) => Some(refused),
                        None if overflowed => Some(too_much_output(limits)),
                        // A panic prints its message and aborts (wasm has no
                        // unwinding): that is all a native script says.
                        None if panicked && aborted => None,
                        None => Some(crate::instance::describe_trap(
                            &error,
                            limits,
                            GuestKind::BuildScript,
                        )),
                    };
                    // 101: what a native script that panics exits with.
                    (101, why)
                }
            },
        };
        let (exit_code, failure) = match failure {
            None if overflowed => (101, Some(too_much_output(limits))),
            failure => (exit_code, failure),
        };
        let state = store.data_mut();
        let mut reads: Vec<String> = state
            .capabilities()
            .inputs()
            .into_iter()
            .filter_map(|input| match input {
                Input::File { path, .. } | Input::Directory { path, .. } => {
                    grants.path_of(&path).or(Some(path))
                }
                _ => None,
            })
            .filter(|path| below(&run.out_dir, path).is_none())
            .collect();
        reads.sort();
        reads.dedup();
        Ok(BuildScriptOutcome {
            exit_code,
            stdout: output.stdout.contents().to_vec(),
            stderr: output.stderr.contents().to_vec(),
            reads,
            failure,
            fuel_used,
        })
    }
}

/// The failure of a script that filled its stdout or stderr.
fn too_much_output(limits: &crate::limits::Limits) -> String {
    format!(
        "it printed more than {} (the `output` limit){}",
        crate::limits::Size(limits.output),
        crate::limits::raise_hint("output", GuestKind::BuildScript)
    )
}

/// The script's grants: its package directory and the `readable` ones to
/// read (`OUT_DIR` is writable, so readable, apart), and cargo's variables.
fn grants(run: &BuildScriptRun) -> Result<Grants, BuildScriptError> {
    let root = |name: &str, path: &str| {
        normalize(path)
            .filter(|p| p.starts_with('/'))
            .map(|path| Root {
                name: name.to_string(),
                path,
            })
            .ok_or_else(|| BuildScriptError::Setup(format!("{name} {path} is not absolute")))
    };
    let mut env = run.env.clone();
    env.sort();
    let mut roots = vec![
        root("$CARGO_MANIFEST_DIR", &run.manifest_dir)?,
        root("$OUT_DIR", &run.out_dir)?,
    ];
    let mut read = vec![
        ReadGrant {
            root: 0,
            relative: String::new(),
            origin: "a build script's own package".to_string(),
        },
        ReadGrant {
            root: 1,
            relative: String::new(),
            origin: "a build script's `OUT_DIR`".to_string(),
        },
    ];
    for (index, dir) in run.readable.iter().enumerate() {
        read.push(ReadGrant {
            root: u32::try_from(roots.len()).unwrap_or(u32::MAX),
            relative: String::new(),
            origin: "a dependency's `DEP_*` variable".to_string(),
        });
        roots.push(root(&format!("$DEP_{index}"), dir)?);
    }
    Ok(Grants {
        package: run.package.clone(),
        roots,
        read,
        env,
        env_patterns: Vec::new(),
    })
}
