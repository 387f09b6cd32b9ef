//! What the rustc wrapper does with a proc-macro crate under `cargo wasmacro`:
//! cargo asks for `lib<name><extra>.so`; the wrapper builds (or finds) the
//! package's component and puts a shim forwarding to it in that place, so
//! cargo's scheduling, fingerprints and `--extern` flags all stay cargo's own.
//!
//! The macro crate itself is still checked by the real rustc
//! (`--emit=dep-info,metadata`): its own diagnostics and the dep-info cargo
//! fingerprints with are exactly the native build's.

use crate::grants;
use crate::policy::{Placement, Policy, author_opted_in};
use crate::rustc_wrapper::exit_code;
use crate::status;
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use wasmacro_build::{BuildEvent, BuildOptions, PackageSource};
use wasmacro_host::{CacheDir, Limits, Runtime, RuntimeConfig, Section};

/// Set (to the workspace root) when proc-macro crates should become
/// components: by `cargo wasmacro`, or by a `.cargo/config.toml` opt-in.
pub const WORKSPACE_ENV: &str = "WASMACRO_WORKSPACE";
/// Set to fail, rather than fall back to native, when a macro cannot run as wasm.
pub const STRICT_ENV: &str = "WASMACRO_STRICT";
/// A directory where this `cargo wasmacro` run collects unit records.
pub const SESSION_ENV: &str = "WASMACRO_SESSION";

/// What a unit builds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UnitKind {
    /// A proc-macro crate.
    #[default]
    ProcMacro,
    /// A build script.
    BuildScript,
}

/// What became of one proc-macro or build-script unit; kept next to its
/// artifact so later runs that find the unit fresh can still report it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UnitRecord {
    /// What the unit builds (records written before build scripts existed
    /// are proc macros).
    #[serde(default)]
    pub kind: UnitKind,
    /// The package name.
    pub package: String,
    /// The package version.
    pub version: String,
    /// The crate name (what `--extern` calls it).
    pub crate_name: String,
    /// Where its macros run.
    pub placement: Placement,
    /// The component's hash, when wasm.
    pub component: Option<String>,
}

impl UnitRecord {
    /// The record file's extension.
    pub const EXTENSION: &'static str = "wasmacro";

    /// The unit as messages name it: `serde_derive v1.0.229`, `the build
    /// script of libc v0.2.191`.
    pub fn describe(&self) -> String {
        let what = match self.kind {
            UnitKind::ProcMacro => "",
            UnitKind::BuildScript => "the build script of ",
        };
        format!("{what}{} v{}", self.package, self.version)
    }
}

/// A proc-macro crate as cargo asks rustc to build it.
struct MacroUnit {
    crate_name: String,
    out_dir: PathBuf,
    extra_filename: String,
    features: Vec<String>,
    package: String,
    version: String,
    manifest_dir: PathBuf,
}

impl MacroUnit {
    /// The unit, if `args` build a proc-macro library cargo-style.
    fn from_args(args: &[OsString]) -> Option<MacroUnit> {
        let args = crate::rustc_args::RustcArgs::parse(args)?;
        if args.value("--crate-type") != Some("proc-macro") || !args.links() {
            return None;
        }
        let env = |name: &str| std::env::var(name).ok();
        Some(MacroUnit {
            crate_name: args.value("--crate-name")?.to_string(),
            out_dir: PathBuf::from(args.value("--out-dir")?),
            extra_filename: args.extra_filename().to_string(),
            features: args.features(),
            package: env("CARGO_PKG_NAME")?,
            version: env("CARGO_PKG_VERSION")?,
            manifest_dir: PathBuf::from(env("CARGO_MANIFEST_DIR")?),
        })
    }

    fn stem(&self) -> String {
        format!("{}{}", self.crate_name, self.extra_filename)
    }

    fn dylib(&self) -> PathBuf {
        self.out_dir.join(format!(
            "{}{}{}",
            std::env::consts::DLL_PREFIX,
            self.stem(),
            std::env::consts::DLL_SUFFIX
        ))
    }

    fn describe(&self) -> String {
        format!("{} v{}", self.package, self.version)
    }
}

/// Handles the invocation if it builds a proc-macro crate under a wasmacro
/// workspace; `None` means "not ours, run rustc as is".
pub fn compile(command: &[OsString]) -> Option<Result<ExitCode>> {
    let workspace = PathBuf::from(std::env::var_os(WORKSPACE_ENV)?);
    let unit = MacroUnit::from_args(command.get(1..)?)?;
    Some(compile_unit(command, &unit, &workspace))
}

fn compile_unit(command: &[OsString], unit: &MacroUnit, workspace: &Path) -> Result<ExitCode> {
    let policy = Policy::in_force(workspace)?;
    let manifest = std::fs::read_to_string(unit.manifest_dir.join("Cargo.toml"))
        .with_context(|| format!("reading the manifest of {}", unit.describe()))?;
    let placement = policy.place(&unit.package, author_opted_in(&manifest));
    if !matches!(placement, Placement::Wasm(_)) {
        return compile_native(command, unit, placement);
    }

    let cache = CacheDir::from_env();
    cache.ensure_writable()?;
    status::print("Compiling", &format!("{} (wasm)", unit.describe()));
    let author = grants::declared_by_author(&manifest).with_context(|| {
        format!(
            "{}: its `[package.metadata.wasmacro]` declares invalid grants",
            unit.describe()
        )
    })?;
    let grants = grants::effective(&unit.package, &author, policy.grants_of(&unit.package));
    let (stateless, _) = crate::stateless::effective(
        &unit.package,
        crate::stateless::declared_by_author(&manifest),
        &policy,
    );
    let debug_info = policy.debug_info_for(&unit.package);
    let component = match component_for(
        command, unit, workspace, &cache, &grants, stateless, debug_info,
    ) {
        Ok(component) => component,
        Err(reason) => {
            if std::env::var_os(STRICT_ENV).is_some() || policy.strict {
                bail!(
                    "`{}` cannot run as wasm ({reason}); `--strict` (or the policy's `strict = true`) \
                     forbids running it natively",
                    unit.describe()
                );
            }
            status::warn(&format!("{} runs natively: {reason}", unit.describe()));
            return compile_native(command, unit, Placement::Fallback(reason));
        }
    };

    // The macro crate's own diagnostics and dep-info come from the real
    // rustc; only the dylib is the shim.
    let mut check = command.to_vec();
    for arg in &mut check[1..] {
        if arg.to_str().is_some_and(|a| a.starts_with("--emit=")) {
            *arg = OsString::from("--emit=dep-info,metadata");
        }
    }
    let status = run(&check, unit)?;
    let rmeta = unit.out_dir.join(format!("lib{}.rmeta", unit.stem()));
    let _ = std::fs::remove_file(&rmeta);
    if !status.success() {
        return Ok(exit_code(status));
    }
    let dylib = unit.dylib();
    let bytes = std::fs::read(&component.shim)
        .with_context(|| format!("reading the shim {}", component.shim.display()))?;
    wasmacro_host::write_atomically(&dylib, &[&bytes])
        .with_context(|| format!("writing {}", dylib.display()))?;
    crate::next_wrapper::mark(&dylib, grants::reads_beyond_cargo(&grants))
        .with_context(|| format!("marking {}", dylib.display()))?;
    finish(unit, placement, Some(component.hash))?;
    Ok(ExitCode::SUCCESS)
}

struct UnitComponent {
    hash: String,
    shim: PathBuf,
}

/// The component and shim for `unit`, or the one-line reason it cannot run as
/// wasm.
fn component_for(
    command: &[OsString],
    unit: &MacroUnit,
    workspace: &Path,
    cache: &CacheDir,
    grants: &wasmacro_shim::ShimGrants,
    stateless: bool,
    debug_info: bool,
) -> Result<UnitComponent, String> {
    let rustc = real_rustc(command);
    let runtime = Runtime::new(cache.clone(), RuntimeConfig::default())
        .map_err(|e| format!("the wasm runtime did not start: {e}"))?;
    let mut options = project_build_options(
        &unit.manifest_dir,
        (&unit.package, &unit.version),
        &unit.features,
        workspace,
        cache,
        &rustc,
    );
    options.debug_info = debug_info;
    let for_unit = format!("wasm, for {}", unit.package);
    let progress = |event: BuildEvent| {
        if let BuildEvent::Compiling(crate_) = event {
            status::print("Compiling", &format!("{crate_} ({for_unit})"));
        }
    };
    let built = wasmacro_build::build_component_with_progress(&options, &runtime, &progress)
        .map_err(|e| {
            let package = format!("{}-{}", unit.package, unit.version);
            one_line_reason(&e, &package, &unit.manifest_dir)
        })?;
    // A component that imports the filesystem or sockets still runs here:
    // the sandbox gives it what its grants name, and refuses the rest with
    // an error naming the path.
    let spec = wasmacro_shim::ShimSpec {
        crate_name: &unit.crate_name,
        component: built.hash.as_str(),
        macros: &built.macros,
        edition: wasmacro_host::edition::shim_edition(&built.bytes),
        grants,
        stateless,
    };
    let shim = wasmacro_shim::ensure_shim(&rustc, &cache.section(Section::Shims), &spec)
        .map_err(|e| format!("its shim did not compile: {e}"))?;
    Ok(UnitComponent {
        hash: built.hash.as_str().to_string(),
        shim,
    })
}

/// The options of a component build for a package of the project at
/// `workspace`: built from its directory with exactly cargo's features, the
/// project's `[patch]`es and path dependencies, and the versions of its
/// `Cargo.lock`.
pub(crate) fn project_build_options(
    manifest_dir: &Path,
    (package, version): (&str, &str),
    features: &[String],
    workspace: &Path,
    cache: &CacheDir,
    rustc: &Path,
) -> BuildOptions {
    let mut options = BuildOptions::new(
        PackageSource::Path(manifest_dir.to_path_buf()),
        cache.clone(),
    );
    // cargo's `--cfg feature=…` flags are the complete resolved set.
    options.features = features.to_vec();
    options.no_default_features = true;
    options.rustc = rustc.to_path_buf();
    options.workspace = Some(workspace.join("Cargo.toml"));
    options.metadata_cache =
        std::env::var_os(SESSION_ENV).map(|dir| Path::new(&dir).join("cargo-metadata.json"));
    let lock = workspace.join("Cargo.lock");
    if let Ok(text) = std::fs::read_to_string(&lock) {
        match wasmacro_build::lockfile::dependency_closure(&text, package, version) {
            Ok(closure) => options.lockfile = Some(closure),
            Err(e) => tracing::warn!("{}: {e}; resolving its dependencies afresh", lock.display()),
        }
    }
    options
}

/// What went wrong, for the fallback warning: rustc's first error in full
/// (cargo's summary of it says nothing a user can act on) and where the
/// component build's whole log is.
/// `package` is `NAME-VERSION`, `package_dir` where its sources are.
pub(crate) fn one_line_reason(
    error: &wasmacro_build::BuildError,
    package: &str,
    package_dir: &Path,
) -> String {
    let wasmacro_build::BuildError::Cargo { stderr, log, .. } = error else {
        // The summary line, and rustc's first error when one follows it
        // (a guest build that failed says why only below its first line).
        let text = error.to_string();
        let mut lines = text.lines();
        let first = lines.next().unwrap_or("");
        return match lines.find(|l| l.trim_start().starts_with("error")) {
            Some(cause) => format!("its wasm build failed: {first} {}", cause.trim()),
            None => format!("its wasm build failed: {first}"),
        };
    };
    let is_error = |l: &str| {
        (l.starts_with("error") || l.contains(": error"))
            && !l.starts_with("error: could not compile")
    };
    let lines: Vec<&str> = stderr.lines().collect();
    let cause = match lines.iter().position(|l| is_error(l)) {
        // The error and what cargo printed under it (its context lines).
        Some(start) => lines[start..]
            .iter()
            .take_while(|l| *l == &lines[start] || l.starts_with(' ') || l.starts_with('|'))
            .map(|l| l.trim())
            .collect::<Vec<_>>()
            .join(" "),
        None => lines
            .iter()
            .rev()
            .find(|l| !l.trim().is_empty())
            .map_or("", |l| l.trim())
            .to_string(),
    };
    // The build compiles a copy, whose paths it remaps to
    // `/wasmacro/NAME-VERSION/`: name the file the user can open.
    let copy = format!("/wasmacro/{}/", package);
    let cause = match cause.strip_prefix(copy.as_str()) {
        Some(rest) => format!("{}/{rest}", package_dir.display()),
        None => cause,
    };
    format!(
        "its wasm build failed: {cause} (the whole log: {})",
        log.display()
    )
}

/// The rustc that cargo's command runs: under clippy the command is
/// `clippy-driver rustc …`.
pub(crate) fn real_rustc(command: &[OsString]) -> PathBuf {
    let is_driver = Path::new(&command[0])
        .file_stem()
        .is_some_and(|s| s == OsStr::new("clippy-driver"));
    match command.get(1) {
        Some(next) if is_driver => PathBuf::from(next),
        _ => PathBuf::from(&command[0]),
    }
}

fn compile_native(
    command: &[OsString],
    unit: &MacroUnit,
    placement: Placement,
) -> Result<ExitCode> {
    let status = run(command, unit)?;
    if status.success() {
        finish(unit, placement, None)?;
    }
    Ok(exit_code(status))
}

/// Records the unit and makes cargo track the policy and limits.
fn finish(unit: &MacroUnit, placement: Placement, component: Option<String>) -> Result<()> {
    let record = UnitRecord {
        kind: UnitKind::ProcMacro,
        package: unit.package.clone(),
        version: unit.version.clone(),
        crate_name: unit.crate_name.clone(),
        placement,
        component,
    };
    record_unit(&unit.out_dir, &unit.stem(), &record, Policy::ENV)
}

/// Makes cargo track the policy (the variable `policy_env` names: the whole
/// of it, or its part for build scripts) and limits for the unit whose files
/// in `out_dir` are named `stem`, and records it there (and in this run's
/// session). The `env-dep` line is how rustc tells cargo about `env!`, so
/// cargo rebuilds the unit when that variable changes.
pub(crate) fn record_unit(
    out_dir: &Path,
    stem: &str,
    record: &UnitRecord,
    policy_env: &str,
) -> Result<()> {
    let dep_info = out_dir.join(format!("{stem}.d"));
    let mut text = std::fs::read_to_string(&dep_info)
        .with_context(|| format!("reading {}", dep_info.display()))?;
    if !text.ends_with('\n') {
        text.push('\n');
    }
    // Unset (plain cargo under the permanent opt-in) is not empty: cargo
    // would find `WASMACRO_POLICY=` changed on every run and rebuild.
    match std::env::var(policy_env) {
        Ok(policy) => text.push_str(&format!("# env-dep:{policy_env}={policy}\n")),
        Err(_) => text.push_str(&format!("# env-dep:{policy_env}\n")),
    }
    // The servers' limits (set from the policy, or by whoever runs cargo).
    match std::env::var(Limits::ENV) {
        Ok(limits) => text.push_str(&format!("# env-dep:{}={limits}\n", Limits::ENV)),
        Err(_) => text.push_str(&format!("# env-dep:{}\n", Limits::ENV)),
    }
    std::fs::write(&dep_info, text).with_context(|| format!("writing {}", dep_info.display()))?;

    let json = serde_json::to_string(record)? + "\n";
    let path = out_dir.join(format!("{stem}.{}", UnitRecord::EXTENSION));
    wasmacro_host::write_atomically(&path, &[json.as_bytes()])
        .with_context(|| format!("writing {}", path.display()))?;
    if let Some(session) = std::env::var_os(SESSION_ENV) {
        let path = Path::new(&session).join(format!("{stem}.json"));
        wasmacro_host::write_atomically(&path, &[json.as_bytes()])
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// Runs rustc for `unit`; what wasm macros read while it compiles the macro
/// crate itself (a derive crate using thiserror) joins its dep-info.
fn run(command: &[OsString], unit: &MacroUnit) -> Result<std::process::ExitStatus> {
    let inputs = tempfile::tempdir().context("creating a directory for macro inputs")?;
    let inputs_file = inputs.path().join("inputs");
    let status = Command::new(&command[0])
        .args(&command[1..])
        .env(wasmacro_protocol::INPUTS_ENV, &inputs_file)
        .status()
        .with_context(|| format!("running {}", Path::new(&command[0]).display()))?;
    if status.success() {
        let dep_info = unit.out_dir.join(format!("{}.d", unit.stem()));
        crate::dep_info::add_inputs(&dep_info, &inputs_file)
            .with_context(|| format!("adding what wasm macros read to {}", dep_info.display()))?;
    }
    Ok(status)
}
