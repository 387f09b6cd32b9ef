//! Engines, loaded components and the instances that run expansions.

use crate::bindings::wasmacro::proc_macro::{host, types as wit};
use crate::bindings::{ProcMacroComponent, ProcMacroComponentPre};
use crate::cache::{ComponentCache, ComponentHash};
use crate::capabilities::{Capabilities, HasCapabilities};
use crate::error::{ExpandError, LoadError};
use crate::expansion_cache::ExpansionCache;
use crate::generation::Generation;
use crate::layout::CacheDir;
use crate::limits::{Limits, Size};
use crate::wasi::{SandboxAttempt, deterministic_ctx};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use wasmacro_protocol::{
    CONTRACT_PACKAGE, CONTRACT_VERSION, Delimiter, ExpandRequest, Grants, Input, MacroDecl,
    MacroKind, SpanAnswer, SpanHandle, SpanQuery, Token,
};
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store, StoreLimits, StoreLimitsBuilder, Trap};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// How long guest state lives.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
pub enum Isolation {
    /// One instance for all expansions of a component in one compilation, as
    /// native proc macros share one address space (macros such as
    /// enum_dispatch keep state between expansions). Expansion order inside
    /// one rustc is fixed, so this stays deterministic.
    #[default]
    PerCompilation,
    /// A fresh instance for every expansion: for macros known to be stateless.
    PerExpansion,
}

/// What turns a component's wasm into code this machine runs.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
pub enum Backend {
    /// Cranelift compiles to native code: the fast one.
    #[default]
    Cranelift,
    /// wasmtime's Pulley interpreter (Cranelift compiles to its portable
    /// bytecode): for hosts Cranelift has no native backend for, at a
    /// fraction of the speed. Expansions, fuel use and errors are the same.
    Pulley,
}

impl Backend {
    /// The environment variable that selects the backend (`cranelift` or
    /// `pulley`) for `wasmacro serve` and the other commands.
    pub const ENV: &'static str = "WASMACRO_BACKEND";

    /// The backend `WASMACRO_BACKEND` names, Cranelift when it is unset.
    pub fn from_env() -> Result<Backend, LoadError> {
        match std::env::var(Self::ENV) {
            Err(std::env::VarError::NotPresent) => Ok(Backend::default()),
            Ok(value) => value.parse(),
            Err(std::env::VarError::NotUnicode(value)) => Err(LoadError::Setting(format!(
                "{} must be `cranelift` or `pulley`, not {value:?}",
                Self::ENV
            ))),
        }
    }

    /// The name used in settings and messages.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Cranelift => "cranelift",
            Backend::Pulley => "pulley",
        }
    }
}

impl std::str::FromStr for Backend {
    type Err = LoadError;

    fn from_str(text: &str) -> Result<Backend, LoadError> {
        match text {
            "cranelift" => Ok(Backend::Cranelift),
            "pulley" => Ok(Backend::Pulley),
            _ => Err(LoadError::Setting(format!(
                "{} must be `cranelift` or `pulley`, not `{text}`",
                Self::ENV
            ))),
        }
    }
}

/// Limits and policies of a runtime. The defaults are generous enough for
/// real macros; a macro that exceeds them fails with an error naming the limit.
#[derive(Clone, Debug, Default)]
pub struct RuntimeConfig {
    /// Per-expansion limits.
    pub limits: Limits,
    /// Instance lifetime.
    pub isolation: Isolation,
    /// Native code or the Pulley interpreter.
    pub backend: Backend,
    /// Whether sessions look expansions up in, and add them to, the
    /// expansion cache. Off in `RuntimeConfig::default()`; on in
    /// [`RuntimeConfig::from_env`] unless `WASMACRO_EXPANSION_CACHE=off`.
    pub expansion_cache: bool,
}

impl RuntimeConfig {
    /// The configuration whoever runs rustc set: limits from
    /// `WASMACRO_LIMITS`, the backend from `WASMACRO_BACKEND`, the instance
    /// lifetime from `WASMACRO_ISOLATION` (`per-compilation`, the default, or
    /// `per-expansion`), the expansion cache from `WASMACRO_EXPANSION_CACHE`
    /// (`on`, the default, or `off`).
    pub fn from_env() -> Result<RuntimeConfig, LoadError> {
        let limits = Limits::from_env()
            .map_err(|e| LoadError::Setting(format!("reading `{}`: {e}", Limits::ENV)))?;
        let isolation = match std::env::var_os("WASMACRO_ISOLATION") {
            None => Isolation::PerCompilation,
            Some(value) => match value.to_str() {
                Some("per-compilation") => Isolation::PerCompilation,
                Some("per-expansion") => Isolation::PerExpansion,
                _ => {
                    return Err(LoadError::Setting(format!(
                        "WASMACRO_ISOLATION must be `per-compilation` (the default) or \
                         `per-expansion`, not {value:?}"
                    )));
                }
            },
        };
        Ok(RuntimeConfig {
            limits,
            isolation,
            backend: Backend::from_env()?,
            expansion_cache: crate::expansion_cache::enabled_by_env()
                .map_err(LoadError::Setting)?,
        })
    }
}

/// How often the engine's epoch advances: the resolution of the wall-clock
/// backstop.
const EPOCH_TICK: Duration = Duration::from_millis(50);

/// Answers the span queries of a running guest. In rustc that is the shim,
/// which holds the real spans; a standalone tool can answer from a source file.
pub trait SpanOracle: Send {
    /// Answers one query.
    fn query(&mut self, query: SpanQuery) -> Result<SpanAnswer, SpanOracleError>;
}

/// The oracle could not answer.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SpanOracleError(pub String);

/// One wasmtime engine and the component cache that goes with it.
pub struct Runtime {
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<GuestState>,
    cache: ComponentCache,
    expansion_cache: Option<ExpansionCache>,
    pub(crate) config: RuntimeConfig,
    pub(crate) sandbox_root: std::path::PathBuf,
}

impl Runtime {
    /// Creates the engine (Cranelift, fuel metering) and the linker that
    /// defines exactly the imports a component may have.
    pub fn new(cache_dir: CacheDir, config: RuntimeConfig) -> Result<Runtime, LoadError> {
        let mut wasm_config = Config::new();
        wasm_config.consume_fuel(true);
        // Only a backstop: fuel stops runaway code first on any machine.
        wasm_config.epoch_interruption(true);
        let stack = usize::try_from(config.limits.stack).unwrap_or(usize::MAX);
        // Guests are called synchronously, on the calling thread's stack, but
        // wasmtime requires `max_wasm_stack <= async_stack_size` whenever its
        // async support is compiled in (wasmtime-wasi turns it on).
        wasm_config.async_stack_size(stack.saturating_add(1 << 20));
        wasm_config.max_wasm_stack(stack);
        // NaN bit patterns and relaxed SIMD differ between CPUs; a macro's
        // output must not.
        wasm_config.cranelift_nan_canonicalization(true);
        wasm_config.relaxed_simd_deterministic(true);
        // Said here, not left to `WASMTIME_BACKTRACE_DETAILS`: the engine's
        // settings are part of every cache key. A component without debug
        // info costs nothing; one built with it keeps its line tables.
        wasm_config.wasm_backtrace_details(wasmtime::WasmBacktraceDetails::Enable);
        wasm_config
            .wasm_backtrace_max_frames(std::num::NonZeroUsize::new(crate::backtrace::MAX_FRAMES));
        if config.backend == Backend::Pulley {
            // Precompiled code is cached under the engine's compatibility
            // hash, which covers the target: the two backends never mix.
            wasm_config
                .target("pulley64")
                .map_err(|e| LoadError::Engine(format!("{e:#}")))?;
        }
        if std::env::var_os("WASMACRO_PERFMAP").is_some() {
            // For `perf`: names the JIT-compiled guest functions in
            // /tmp/perf-<pid>.map. Never changes what runs.
            wasm_config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        let engine = Engine::new(&wasm_config).map_err(|e| LoadError::Engine(format!("{e:#}")))?;
        start_epoch_ticker(&engine);
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(|e| LoadError::Engine(format!("{e:#}")))?;
        crate::wasi::virtualize_sleep(&mut linker)
            .map_err(|e| LoadError::Engine(format!("{e:#}")))?;
        crate::wasi::watch_ambient_authority(&mut linker)
            .map_err(|e| LoadError::Engine(format!("{e:#}")))?;
        crate::capabilities::watch(&mut linker).map_err(|e| LoadError::Engine(format!("{e:#}")))?;
        ProcMacroComponent::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)
            .map_err(|e| LoadError::Engine(format!("{e:#}")))?;
        // What backs the guest's `/`: every path through it is refused, so
        // it only has to exist. A cache that cannot hold it fails each
        // instantiation with the reason, not the runtime.
        let sandbox_root = cache_dir.section(crate::Section::SandboxRoot);
        if let Err(e) = std::fs::create_dir_all(&sandbox_root) {
            tracing::debug!("cannot create {}: {e}", sandbox_root.display());
        }
        let expansion_cache = config
            .expansion_cache
            .then(|| ExpansionCache::new(cache_dir.section(crate::Section::Expansions)));
        let cache = ComponentCache::new(cache_dir, &engine);
        Ok(Runtime {
            engine,
            linker,
            cache,
            expansion_cache,
            config,
            sandbox_root,
        })
    }

    /// The limits and policies in force.
    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }

    /// The limits each expansion runs under.
    pub fn limits(&self) -> &Limits {
        &self.config.limits
    }

    /// The component cache.
    pub fn cache(&self) -> &ComponentCache {
        &self.cache
    }

    /// The expansion cache, when the configuration turns it on.
    pub fn expansion_cache(&self) -> Option<&ExpansionCache> {
        self.expansion_cache.as_ref()
    }

    /// Loads a cached component: precompiled code, pre-instantiation, and its
    /// declarations (read by instantiating it once).
    pub fn load(&self, hash: &ComponentHash) -> Result<LoadedComponent, LoadError> {
        let component = self.cache.load(&self.engine, hash)?;
        self.prepare(component, hash.to_string())
    }

    /// Compiles component bytes without touching the cache (for inspection
    /// and for checking a fresh build).
    pub fn load_bytes(&self, bytes: &[u8], what: &str) -> Result<LoadedComponent, LoadError> {
        let component = Component::new(&self.engine, bytes).map_err(|e| LoadError::Invalid {
            what: what.to_string(),
            reason: format!("{e:#}"),
        })?;
        self.prepare(component, what.to_string())
    }

    /// The imports of a component, as `namespace:package/interface@version`.
    pub fn imports(&self, bytes: &[u8], what: &str) -> Result<Vec<String>, LoadError> {
        let component = Component::new(&self.engine, bytes).map_err(|e| LoadError::Invalid {
            what: what.to_string(),
            reason: format!("{e:#}"),
        })?;
        let ty = component.component_type();
        let mut imports: Vec<String> = ty
            .imports(&self.engine)
            .map(|(name, _)| name.to_string())
            .collect();
        imports.sort();
        Ok(imports)
    }

    fn prepare(&self, component: Component, what: String) -> Result<LoadedComponent, LoadError> {
        let invalid = |reason: String| LoadError::Invalid {
            what: what.clone(),
            reason,
        };
        self.check_contract(&component, &what)?;
        let instance_pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| invalid(format!("{e:#}")))?;
        let pre =
            ProcMacroComponentPre::new(instance_pre).map_err(|e| invalid(format!("{e:#}")))?;
        let mut loaded = LoadedComponent {
            engine: self.engine.clone(),
            pre: Arc::new(pre),
            config: self.config.clone(),
            declarations: Vec::new(),
            sandbox_root: self.sandbox_root.clone(),
        };
        let mut instance = loaded.instantiate().map_err(|e| invalid(e.to_string()))?;
        loaded.declarations = instance
            .declarations()
            .map_err(|e| invalid(e.to_string()))?;
        Ok(loaded)
    }
}

impl Runtime {
    /// Names the contract version a component was built against when it is
    /// not ours: otherwise the linker's complaint would be about a missing
    /// import, which says nothing about what to do.
    fn check_contract(&self, component: &Component, what: &str) -> Result<(), LoadError> {
        let ty = component.component_type();
        let names: Vec<String> = ty
            .imports(&self.engine)
            .map(|(name, _)| name.to_string())
            .chain(ty.exports(&self.engine).map(|(name, _)| name.to_string()))
            .collect();
        let prefix = format!("{CONTRACT_PACKAGE}/");
        let versions: BTreeSet<&str> = names
            .iter()
            .filter_map(|name| name.strip_prefix(&prefix))
            .map(|rest| {
                rest.split_once('@')
                    .map_or("(unversioned)", |(_, version)| version)
            })
            .collect();
        if versions.is_empty() {
            return Err(LoadError::Invalid {
                what: what.to_string(),
                reason: format!(
                    "it neither imports nor exports any `{CONTRACT_PACKAGE}` interface \
                     (an empty component, or one made for another host)"
                ),
            });
        }
        match versions.iter().find(|v| **v != CONTRACT_VERSION) {
            None => Ok(()),
            Some(found) => Err(LoadError::Contract {
                what: what.to_string(),
                found: format!("{CONTRACT_PACKAGE}@{found}"),
            }),
        }
    }
}

/// A component ready to instantiate.
#[derive(Clone)]
pub struct LoadedComponent {
    engine: Engine,
    pre: Arc<ProcMacroComponentPre<GuestState>>,
    config: RuntimeConfig,
    declarations: Vec<MacroDecl>,
    sandbox_root: std::path::PathBuf,
}

impl LoadedComponent {
    /// The macros the component exports.
    pub fn declarations(&self) -> &[MacroDecl] {
        &self.declarations
    }

    /// The component's imports, as `namespace:package/interface@version`,
    /// sorted: read from the loaded code, so asking costs no compilation.
    pub fn imports(&self) -> Vec<String> {
        let ty = self.pre.instance_pre().component().component_type();
        let mut imports: Vec<String> = ty
            .imports(&self.engine)
            .map(|(name, _)| name.to_string())
            .collect();
        imports.sort();
        imports
    }

    /// A new instance with its own memory, that can read nothing.
    pub fn instantiate(&self) -> Result<MacroInstance, ExpandError> {
        self.instantiate_with(&Grants::default())
    }

    /// A new instance with its own memory, that can read what `grants` name.
    pub fn instantiate_with(&self, grants: &Grants) -> Result<MacroInstance, ExpandError> {
        let (wasi, output, capabilities) =
            deterministic_ctx(grants, &self.sandbox_root).map_err(|e| {
                ExpandError::Instantiate(format!("the sandbox could not be set up: {e}"))
            })?;
        let state = GuestState::new(wasi, capabilities, GuestKind::Macro);
        let mut store = new_store(&self.engine, state, &self.config.limits).map_err(trap_text)?;
        let bindings = self
            .pre
            .instantiate(&mut store)
            .map_err(|e| ExpandError::Instantiate(format!("{e:#}")))?;
        Ok(MacroInstance {
            limits: self.config.limits.clone(),
            store,
            bindings,
            output,
            output_read: 0,
            poisoned: false,
            fuel_used: 0,
            next_generation: Generation::FIRST,
            backtrace: String::new(),
        })
    }
}

/// A live instance: the guest's memory and statics, reused across expansions.
pub struct MacroInstance {
    limits: Limits,
    store: Store<GuestState>,
    bindings: ProcMacroComponent,
    output: MemoryOutputPipe,
    output_read: usize,
    poisoned: bool,
    fuel_used: u64,
    next_generation: Generation,
    /// Where the latest expansion trapped, or empty.
    backtrace: String,
}

impl MacroInstance {
    /// The fuel the latest expansion used: the wasm instructions it ran, the
    /// same on every machine and backend (a measure the benchmark can trust
    /// on a noisy machine).
    pub fn fuel_used(&self) -> u64 {
        self.fuel_used
    }

    /// What the latest expansion read: files, directories, missing paths and
    /// environment variables, named from their roots, sorted.
    pub fn inputs(&self) -> Vec<Input> {
        self.store.data().capabilities.inputs()
    }

    /// The span queries the latest expansion made, with the answers, in
    /// order: handles as the shim numbers them (without the generation).
    pub fn take_queries(&mut self) -> Vec<(SpanQuery, SpanAnswer)> {
        std::mem::take(&mut self.store.data_mut().queries)
    }

    /// Where the latest expansion trapped (a panic included), innermost
    /// frame first; empty if it did not.
    pub fn take_backtrace(&mut self) -> String {
        std::mem::take(&mut self.backtrace)
    }

    /// Whether the latest expansion's outcome followed from its inputs alone:
    /// not when the wall clock stopped it, or the compiler failed to answer
    /// a span query.
    pub fn was_deterministic(&self) -> bool {
        !self.store.data().nondeterministic
    }

    /// Whether a trap left the instance unusable (wasmtime refuses to enter
    /// it again); the caller makes a new one.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    fn declarations(&mut self) -> Result<Vec<MacroDecl>, ExpandError> {
        let decls = self
            .bindings
            .wasmacro_proc_macro_macros()
            .call_declarations(&mut self.store)
            .map_err(|e| ExpandError::Trapped(format!("{e:#}")))?;
        Ok(decls
            .into_iter()
            .map(|d| MacroDecl {
                name: d.name,
                kind: match d.kind {
                    wit::MacroKind::Derive => MacroKind::Derive,
                    wit::MacroKind::Attribute => MacroKind::Attribute,
                    wit::MacroKind::Function => MacroKind::Function,
                },
                helper_attributes: d.helper_attributes,
            })
            .collect())
    }

    /// Runs one expansion under the instance's limits. Returns the tokens (or
    /// why there are none) and whatever the guest printed meanwhile.
    pub fn expand(
        &mut self,
        request: &ExpandRequest,
        oracle: Box<dyn SpanOracle>,
    ) -> (Result<Vec<Token>, ExpandError>, String, Box<dyn SpanOracle>) {
        let generation = self.next_generation;
        self.next_generation = generation.next();
        let wit_request = wit::ExpansionRequest {
            macro_name: request.macro_name.clone(),
            input: tokens_to_wit(&request.input, generation),
            attribute_args: request
                .attribute_args
                .as_deref()
                .map(|args| tokens_to_wit(args, generation)),
            call_site: generation.tag(request.call_site),
            mixed_site: generation.tag(request.mixed_site),
        };
        self.backtrace.clear();
        let state = self.store.data_mut();
        state.oracle = Some(oracle);
        state.generation = generation;
        state.queries.clear();
        state.nondeterministic = false;
        state.panic = None;
        state.capabilities.begin();
        // Attempts are kept for the instance's life: wasi-libc asks for the
        // environment and the preopened directories once per instance, so a
        // later expansion failing for lack of them makes no call of its own.
        state.host_error = None;
        self.store
            .set_epoch_deadline(epoch_ticks(self.limits.timeout));
        let result = match self.store.set_fuel(self.limits.fuel) {
            Ok(()) => self
                .bindings
                .wasmacro_proc_macro_macros()
                .call_expand(&mut self.store, &wit_request),
            Err(e) => Err(e),
        };
        self.fuel_used = self
            .limits
            .fuel
            .saturating_sub(self.store.get_fuel().unwrap_or(0));
        let state = self.store.data_mut();
        let oracle = state.oracle.take().expect("the oracle is only taken here");
        if matches!(
            result.as_ref().err().and_then(|e| e.downcast_ref::<Trap>()),
            Some(Trap::Interrupt)
        ) {
            // Stopped by the wall clock: another run may finish.
            state.nondeterministic = true;
        }
        let result = match result {
            Ok(Ok(tokens)) => tokens_from_wit(tokens, generation),
            Ok(Err(wit::ExpansionError::UnknownMacro(name))) => {
                Err(ExpandError::UnknownMacro(name))
            }
            Ok(Err(wit::ExpansionError::InvalidInput(why))) => Err(ExpandError::InvalidInput(why)),
            Err(error) => {
                self.poisoned = true;
                self.backtrace = crate::backtrace::describe(&error);
                if let Some(message) = state.panic.take() {
                    Err(ExpandError::Panicked(message))
                } else if let Some(host_error) = state.host_error.take() {
                    Err(ExpandError::Trapped(host_error))
                } else {
                    Err(ExpandError::Trapped(describe_trap(
                        &error,
                        &self.limits,
                        GuestKind::Macro,
                    )))
                }
            }
        };
        let result = result.map_err(|e| explain_attempts(e, &state.attempts, &state.capabilities));
        let contents = self.output.contents();
        let output = String::from_utf8_lossy(contents.get(self.output_read..).unwrap_or_default())
            .into_owned();
        self.output_read = contents.len();
        (result, output, oracle)
    }
}

/// Adds to a failure what the macro tried that the sandbox refused, or
/// lacked: a macro usually fails *because* something was not there, and its
/// own message (an `unwrap` on an I/O error) does not say that it ran as wasm.
fn explain_attempts(
    error: ExpandError,
    attempts: &BTreeSet<SandboxAttempt>,
    capabilities: &Capabilities,
) -> ExpandError {
    let unsupported = |m: &str| m.contains("operation not supported on this platform");
    let mut notes: Vec<String> = attempts.iter().map(|a| a.to_string()).collect();
    let grants = capabilities.grants();
    let environment = capabilities.environment_read().then(|| {
        let package = if grants.package.is_empty() {
            "its-package"
        } else {
            grants.package.as_str()
        };
        format!(
            "\nnote: it read its environment, which in the sandbox holds only the variables \
             granted to it ({})\nhelp: to grant another, add to the project's Cargo.toml:\n    \
             [workspace.metadata.wasmacro.grants]\n    {package} = {{ env = [\"NAME\"] }}",
            if grants.env_patterns.is_empty() {
                "none".to_string()
            } else {
                grants.env_patterns.join(", ")
            }
        )
    });
    let missing = capabilities.missing();
    let missing = (!missing.is_empty()).then(|| {
        format!(
            "\nnote: it looked for {}, which does not exist (in the sandbox a relative path is \
             resolved from `/`, not from rustc's working directory)",
            missing
                .iter()
                .map(|p| format!("`{p}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    });
    let note = |text: &str, notes: &[String]| {
        let mut text = text.to_string();
        text.push_str(missing.as_deref().unwrap_or_default());
        if !notes.is_empty() {
            text.push_str(&format!(
                "\nnote: in the wasmacro sandbox, the macro tried to {}",
                notes.join(", and to ")
            ));
        }
        text.push_str(environment.as_deref().unwrap_or_default());
        text
    };
    match error {
        ExpandError::Panicked(Some(message)) => {
            if unsupported(&message) {
                notes.push(
                    "use something WASI does not have (processes, threads or signals)".into(),
                );
            }
            ExpandError::Panicked(Some(note(&message, &notes)))
        }
        ExpandError::Trapped(text) if !notes.is_empty() => {
            ExpandError::Trapped(note(&text, &notes))
        }
        other => other,
    }
}

/// A user-facing explanation of a trap, naming the limit hit and the
/// setting that raises it.
pub(crate) fn describe_trap(error: &wasmtime::Error, limits: &Limits, guest: GuestKind) -> String {
    let raise = |key: &str| crate::limits::raise_hint(key, guest);
    match error.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => format!(
            "it ran out of fuel: it executed more than {} wasm instructions (the `fuel` limit), \
             which usually means an endless loop{}",
            limits.fuel,
            raise("fuel")
        ),
        Some(Trap::StackOverflow) => format!(
            "it overflowed its {} wasm stack (the `stack` limit), which usually means unbounded \
             recursion{}",
            Size(limits.stack),
            raise("stack")
        ),
        Some(Trap::Interrupt) => format!(
            "it was stopped after running for {} s of wall-clock time (the `timeout` limit) \
             without running out of fuel{}",
            limits.timeout.as_secs_f64(),
            raise("timeout")
        ),
        Some(Trap::UnreachableCodeReached) => "it aborted without reporting a panic (a panic \
             inside a panic hook, `std::process::abort`, or an allocation failure); what it \
             printed is above"
            .to_string(),
        Some(trap) => format!("it trapped: {trap}"),
        None => {
            let text = format!("{error:#}");
            if text.contains("growing memory") {
                format!(
                    "it tried to grow its memory past {} (the `memory` limit){}",
                    Size(limits.memory),
                    raise("memory")
                )
            } else {
                format!("it failed: {text}")
            }
        }
    }
}

/// A store for `state` under `limits`: memory, tables and instances bounded
/// (`memory_size` is per memory, so how many there can be is bounded too),
/// fuel set, the wall-clock backstop armed.
pub(crate) fn new_store(
    engine: &Engine,
    mut state: GuestState,
    limits: &Limits,
) -> wasmtime::Result<Store<GuestState>> {
    state.limits = StoreLimitsBuilder::new()
        .memory_size(usize::try_from(limits.memory).unwrap_or(usize::MAX))
        .memories(16)
        .tables(64)
        .table_elements(1 << 20)
        .instances(64)
        .trap_on_grow_failure(true)
        .build();
    let mut store = Store::new(engine, state);
    store.limiter(|state| &mut state.limits);
    store.set_fuel(limits.fuel)?;
    store.epoch_deadline_trap();
    store.set_epoch_deadline(epoch_ticks(limits.timeout));
    Ok(store)
}

/// The epoch deadline for a timeout, in ticks of [`EPOCH_TICK`]: one more
/// than the timeout holds, since the first tick may come at once.
fn epoch_ticks(timeout: Duration) -> u64 {
    let ticks = timeout.as_millis() / EPOCH_TICK.as_millis() + 1;
    u64::try_from(ticks).unwrap_or(u64::MAX / 2)
}

/// Advances the engine's epoch every [`EPOCH_TICK`] for as long as the engine
/// lives (the thread holds only a weak reference).
fn start_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    let spawned = std::thread::Builder::new()
        .name("wasmacro-epoch".into())
        .spawn(move || {
            loop {
                std::thread::sleep(EPOCH_TICK);
                match weak.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => break,
                }
            }
        });
    if let Err(e) = spawned {
        // Without the ticker the deadline is never reached: fuel still stops
        // runaway code, only the backstop for blocking calls is lost.
        tracing::warn!("could not start the epoch thread: {e}");
    }
}

fn trap_text(error: wasmtime::Error) -> ExpandError {
    ExpandError::Trapped(format!("{error:#}"))
}

/// What a guest is, for the errors that name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum GuestKind {
    /// A proc-macro component.
    Macro,
    /// A build script's component.
    BuildScript,
}

/// The store's data: WASI state, limits, and the span oracle of the running
/// expansion.
pub(crate) struct GuestState {
    kind: GuestKind,
    wasi: WasiCtx,
    table: ResourceTable,
    limits: StoreLimits,
    oracle: Option<Box<dyn SpanOracle>>,
    /// The running expansion's generation, for the handles of span queries.
    generation: Generation,
    /// The running expansion's span queries and their answers, untagged.
    queries: Vec<(SpanQuery, SpanAnswer)>,
    /// Whether something outside the guest's inputs decided the outcome.
    nondeterministic: bool,
    /// Set by `report-panic`: `Some(message)` once the guest panicked.
    panic: Option<Option<String>>,
    /// Why a host call failed (a span query, a refused socket), reported
    /// instead of the trap it causes.
    pub(crate) host_error: Option<String>,
    /// What the guest tried that the sandbox refused, over the instance's life.
    pub(crate) attempts: BTreeSet<SandboxAttempt>,
    /// What it may read, and what it read.
    pub(crate) capabilities: Capabilities,
}

impl GuestState {
    /// The state of a new instance (limits are set by [`new_store`]).
    pub(crate) fn new(wasi: WasiCtx, capabilities: Capabilities, kind: GuestKind) -> GuestState {
        GuestState {
            kind,
            wasi,
            table: ResourceTable::new(),
            limits: StoreLimitsBuilder::new().build(),
            oracle: None,
            generation: Generation::FIRST,
            queries: Vec::new(),
            nondeterministic: false,
            panic: None,
            host_error: None,
            attempts: BTreeSet::new(),
            capabilities,
        }
    }
}

impl HasCapabilities for GuestState {
    fn capabilities(&mut self) -> &mut Capabilities {
        &mut self.capabilities
    }
}

impl crate::wasi::SandboxLog for GuestState {
    fn attempted(&mut self, attempt: SandboxAttempt) {
        self.attempts.insert(attempt);
    }

    fn refuse(&mut self, attempt: SandboxAttempt) -> wasmtime::Error {
        // Said here, in full; not repeated by `explain_attempts`.
        let message = match self.kind {
            GuestKind::Macro => format!(
                "in the wasmacro sandbox, the macro tried to {attempt}\n{}",
                attempt.help()
            ),
            GuestKind::BuildScript => format!(
                "in the wasmacro sandbox, the build script tried to {}\n{}",
                attempt.for_build_script(),
                attempt.build_script_help(&self.capabilities.grants().package)
            ),
        };
        self.host_error = Some(message.clone());
        wasmtime::Error::msg(message)
    }
}

impl WasiView for GuestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl GuestState {
    fn ask(&mut self, query: SpanQuery) -> wasmtime::Result<SpanAnswer> {
        let generation = self.generation;
        let untag = |handle: SpanHandle| generation.untag(handle).ok_or(handle);
        let untagged = match query {
            SpanQuery::SourceText(s) => untag(s).map(SpanQuery::SourceText),
            SpanQuery::Start(s) => untag(s).map(SpanQuery::Start),
            SpanQuery::End(s) => untag(s).map(SpanQuery::End),
            SpanQuery::Line(s) => untag(s).map(SpanQuery::Line),
            SpanQuery::Column(s) => untag(s).map(SpanQuery::Column),
            SpanQuery::File(s) => untag(s).map(SpanQuery::File),
            SpanQuery::LocalFile(s) => untag(s).map(SpanQuery::LocalFile),
            SpanQuery::ResolvedAt(s, o) => {
                untag(s).and_then(|s| Ok(SpanQuery::ResolvedAt(s, untag(o)?)))
            }
            SpanQuery::Debug(s) => untag(s).map(SpanQuery::Debug),
        };
        let query = match untagged {
            Ok(query) => query,
            Err(handle) => return Err(self.never_handed_out(handle)),
        };
        let Some(oracle) = self.oracle.as_mut() else {
            return Err(self.fail("span query outside an expansion".to_string()));
        };
        let answered = oracle.query(query.clone());
        if let Ok(answer) = &answered {
            self.queries.push((query.clone(), answer.clone()));
        }
        match answered {
            Ok(SpanAnswer::InvalidHandle(handle)) => Err(self.never_handed_out(handle)),
            Ok(answer) => Ok(match answer {
                SpanAnswer::Span(index) => SpanAnswer::Span(generation.tag(index)),
                other => other,
            }),
            Err(e) => {
                self.nondeterministic = true;
                Err(self.fail(format!("the span query {query:?} failed: {e}")))
            }
        }
    }

    fn never_handed_out(&mut self, handle: SpanHandle) -> wasmtime::Error {
        self.fail(format!(
            "the macro used span handle {handle:#x}, which the compiler never handed out"
        ))
    }

    fn fail(&mut self, message: String) -> wasmtime::Error {
        self.host_error = Some(message.clone());
        wasmtime::Error::msg(message)
    }

    fn span(&mut self, query: SpanQuery) -> wasmtime::Result<SpanHandle> {
        match self.ask(query)? {
            SpanAnswer::Span(handle) => Ok(handle),
            other => Err(self.fail(format!("expected a span from the compiler, got {other:?}"))),
        }
    }

    fn number(&mut self, query: SpanQuery) -> wasmtime::Result<u32> {
        match self.ask(query)? {
            SpanAnswer::Number(n) => Ok(n),
            other => Err(self.fail(format!(
                "expected a number from the compiler, got {other:?}"
            ))),
        }
    }

    fn text(&mut self, query: SpanQuery) -> wasmtime::Result<String> {
        match self.ask(query)? {
            SpanAnswer::Text(text) => Ok(text),
            other => Err(self.fail(format!("expected text from the compiler, got {other:?}"))),
        }
    }

    fn maybe_text(&mut self, query: SpanQuery) -> wasmtime::Result<Option<String>> {
        match self.ask(query)? {
            SpanAnswer::MaybeText(text) => Ok(text),
            other => Err(self.fail(format!("expected text from the compiler, got {other:?}"))),
        }
    }
}

impl wit::Host for GuestState {}

impl host::Host for GuestState {
    fn source_text(&mut self, span: SpanHandle) -> wasmtime::Result<Option<String>> {
        self.maybe_text(SpanQuery::SourceText(span))
    }
    fn start(&mut self, span: SpanHandle) -> wasmtime::Result<SpanHandle> {
        self.span(SpanQuery::Start(span))
    }
    fn end(&mut self, span: SpanHandle) -> wasmtime::Result<SpanHandle> {
        self.span(SpanQuery::End(span))
    }
    fn line(&mut self, span: SpanHandle) -> wasmtime::Result<u32> {
        self.number(SpanQuery::Line(span))
    }
    fn column(&mut self, span: SpanHandle) -> wasmtime::Result<u32> {
        self.number(SpanQuery::Column(span))
    }
    fn file(&mut self, span: SpanHandle) -> wasmtime::Result<String> {
        self.text(SpanQuery::File(span))
    }
    fn local_file(&mut self, span: SpanHandle) -> wasmtime::Result<Option<String>> {
        self.maybe_text(SpanQuery::LocalFile(span))
    }
    fn resolved_at(&mut self, span: SpanHandle, other: SpanHandle) -> wasmtime::Result<SpanHandle> {
        self.span(SpanQuery::ResolvedAt(span, other))
    }
    fn debug(&mut self, span: SpanHandle) -> wasmtime::Result<String> {
        self.text(SpanQuery::Debug(span))
    }
    fn report_panic(&mut self, message: Option<String>) -> wasmtime::Result<()> {
        self.panic = Some(message);
        Ok(())
    }
}

/// The guest's tokens for the shim's, handles tagged with the expansion's
/// generation.
fn tokens_to_wit(tokens: &[Token], generation: Generation) -> Vec<wit::Token> {
    let tag = |handle: SpanHandle| generation.tag(handle);
    tokens
        .iter()
        .map(|token| match token {
            Token::Group {
                delimiter,
                span,
                open,
                close,
                len,
            } => wit::Token::Group(wit::Group {
                delimiter: match delimiter {
                    Delimiter::Parenthesis => wit::Delimiter::Parenthesis,
                    Delimiter::Brace => wit::Delimiter::Brace,
                    Delimiter::Bracket => wit::Delimiter::Bracket,
                    Delimiter::None => wit::Delimiter::None,
                },
                span: tag(*span),
                span_open: tag(*open),
                span_close: tag(*close),
                len: *len,
            }),
            Token::Ident { name, is_raw, span } => wit::Token::Ident(wit::Ident {
                name: name.clone(),
                is_raw: *is_raw,
                span: tag(*span),
            }),
            Token::Punct { ch, joint, span } => wit::Token::Punct(wit::Punct {
                ch: *ch,
                spacing: if *joint {
                    wit::Spacing::Joint
                } else {
                    wit::Spacing::Alone
                },
                span: tag(*span),
            }),
            Token::Literal { text, span } => wit::Token::Literal(wit::Literal {
                text: text.clone(),
                span: tag(*span),
            }),
        })
        .collect()
}

/// The shim's tokens for what the guest returned: every handle must be one
/// this expansion handed out (a span kept from an earlier expansion is not).
fn tokens_from_wit(
    tokens: Vec<wit::Token>,
    generation: Generation,
) -> Result<Vec<Token>, ExpandError> {
    let untag = |handle: SpanHandle| {
        generation.untag(handle).ok_or_else(|| {
            ExpandError::InvalidOutput(format!(
                "span handle {handle:#x}, which this expansion never handed out (a span kept \
                 from an earlier expansion?)"
            ))
        })
    };
    tokens
        .into_iter()
        .map(|token| {
            Ok(match token {
                wit::Token::Group(g) => Token::Group {
                    delimiter: match g.delimiter {
                        wit::Delimiter::Parenthesis => Delimiter::Parenthesis,
                        wit::Delimiter::Brace => Delimiter::Brace,
                        wit::Delimiter::Bracket => Delimiter::Bracket,
                        wit::Delimiter::None => Delimiter::None,
                    },
                    span: untag(g.span)?,
                    open: untag(g.span_open)?,
                    close: untag(g.span_close)?,
                    len: g.len,
                },
                wit::Token::Ident(i) => Token::Ident {
                    name: i.name,
                    is_raw: i.is_raw,
                    span: untag(i.span)?,
                },
                wit::Token::Punct(p) => Token::Punct {
                    ch: p.ch,
                    joint: p.spacing == wit::Spacing::Joint,
                    span: untag(p.span)?,
                },
                wit::Token::Literal(l) => Token::Literal {
                    text: l.text,
                    span: untag(l.span)?,
                },
            })
        })
        .collect()
}
