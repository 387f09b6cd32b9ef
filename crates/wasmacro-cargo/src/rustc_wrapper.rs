//! `wasmacro rustc`: the rustc-level interface build systems use. Every
//! `--extern NAME=PATH.wasm` becomes `--extern NAME=SHIM` where SHIM is a
//! native proc-macro crate forwarding to the component; everything else is
//! passed to rustc untouched, and rustc's exit code is returned as is.

use crate::summary::{self, SummaryRow};
use anyhow::{Context, Result};
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use wasmacro_host::{CacheDir, Runtime, RuntimeConfig, Section};
use wasmacro_shim::ShimSpec;

/// Whether an argument names a rustc executable (cargo's wrapper convention;
/// under `cargo clippy` the "rustc" is `clippy-driver`).
pub fn looks_like_rustc(arg: &OsStr) -> bool {
    Path::new(arg)
        .file_stem()
        .and_then(OsStr::to_str)
        .is_some_and(|stem| stem == "rustc" || stem.ends_with("-rustc") || stem == "clippy-driver")
}

/// The line the wrapper adds to `rustc -vV`. cargo hashes that output into
/// every unit's metadata, so builds through the wrapper get their own
/// artifacts and fingerprints and never overwrite a native build's; the
/// digests make a wasmacro that builds different components or shims
/// rebuild everything, as a new rustc would.
pub fn version_line() -> String {
    format!(
        "wasmacro: {} ({}@{}, components {}, shims {})",
        env!("CARGO_PKG_VERSION"),
        wasmacro_protocol::CONTRACT_PACKAGE,
        wasmacro_protocol::CONTRACT_VERSION,
        wasmacro_build::embedded_sources_digest(),
        wasmacro_shim::embedded_sources_digest()
    )
}

/// Runs rustc (`args[0]`) with `args[1..]`, wasm externs replaced.
pub fn run(args: Vec<OsString>) -> Result<ExitCode> {
    let Some((rustc, rest)) = args.split_first() else {
        anyhow::bail!(
            "`wasmacro rustc` needs the rustc to run, e.g. `wasmacro rustc rustc main.rs`"
        );
    };
    if rest == ["-vV"] {
        return print_version(rustc);
    }
    if let Some(result) = crate::macro_unit::compile(&args) {
        return result;
    }
    let rustc = PathBuf::from(rustc);
    let cache = CacheDir::from_env();
    let mut runtime: Option<Runtime> = None;
    let mut out: Vec<OsString> = Vec::with_capacity(rest.len());
    let mut iter = rest.iter();
    while let Some(arg) = iter.next() {
        if arg == "--extern" {
            out.push(arg.clone());
            if let Some(value) = iter.next() {
                out.push(rewrite_extern(value, &rustc, &cache, &mut runtime)?);
            }
        } else if let Some(value) = arg.to_str().and_then(|a| a.strip_prefix("--extern=")) {
            let value = rewrite_extern(OsStr::new(value), &rustc, &cache, &mut runtime)?;
            let mut joined = OsString::from("--extern=");
            joined.push(value);
            out.push(joined);
        } else {
            out.push(arg.clone());
        }
    }
    let summary = std::env::var_os(SUMMARY_ENV).is_some_and(|v| !v.is_empty() && v != "0");
    let stats_dir = if summary {
        Some(tempfile::tempdir().context("creating a stats directory")?)
    } else {
        None
    };
    let inputs = tempfile::tempdir().context("creating a directory for macro inputs")?;
    let inputs_file = inputs.path().join("inputs");
    // Whether a build cache may keep this compilation, and what it writes.
    let untracked = crate::next_wrapper::must_bypass(&out);
    crate::next_wrapper::mark_output(&out, untracked)
        .context("marking a library built with a macro that reads files")?;
    let mut command = crate::next_wrapper::command(&rustc, untracked);
    command
        .args(&out)
        .env(wasmacro_protocol::INPUTS_ENV, &inputs_file)
        .env(CacheDir::ENV, cache.root());
    if let Some(dir) = &stats_dir {
        command.env(STATS_ENV, dir.path());
    }
    apply_policy_runtime_settings(&mut command)?;
    // The limits decide whether an expansion fails, and a build cache keys
    // the `CARGO_*` variables (sccache does): name them there.
    let limits = command
        .get_envs()
        .find(|(name, _)| *name == wasmacro_host::Limits::ENV)
        .and_then(|(_, value)| value.map(OsStr::to_os_string))
        .or_else(|| std::env::var_os(wasmacro_host::Limits::ENV))
        .unwrap_or_default();
    command.env("CARGO_WASMACRO_LIMITS", limits);
    crate::transport::Transport::from_env()?.apply(&mut command);
    let status = command
        .status()
        .with_context(|| format!("running {}", rustc.display()))?;
    if status.success()
        && let Some(dep_info) = crate::dep_info::dep_info_path(rest)
    {
        crate::dep_info::add_inputs(&dep_info, &inputs_file)
            .with_context(|| format!("adding what wasm macros read to {}", dep_info.display()))?;
    }
    // A build script the policy selects: its launcher replaces what rustc
    // just linked.
    if status.success() {
        crate::build_script_unit::after_native_compile(&args)?;
    }
    if let Some(dir) = &stats_dir {
        print_summary(rest, dir.path());
    }
    Ok(exit_code(status))
}

/// Under plain cargo with the permanent opt-in, nobody has read the policy
/// for the runtime: its settings are passed here, as `cargo wasmacro` passes
/// them. The runtime in rustc's process has only its environment.
fn apply_policy_runtime_settings(command: &mut Command) -> Result<()> {
    use crate::policy::Policy;
    if std::env::var_os(Policy::ENV).is_some() {
        return Ok(()); // `cargo wasmacro` passed them already.
    }
    if let Some(workspace) = std::env::var_os(crate::macro_unit::WORKSPACE_ENV) {
        Policy::of_workspace(Path::new(&workspace))?.apply_runtime_env(command);
    }
    Ok(())
}

fn print_version(rustc: &OsStr) -> Result<ExitCode> {
    let output = Command::new(rustc)
        .arg("-vV")
        .output()
        .with_context(|| format!("running `{} -vV`", Path::new(rustc).display()))?;
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&output.stdout)?;
    if output.status.success() {
        writeln!(stdout, "{}", version_line())?;
    }
    std::io::stderr().write_all(&output.stderr)?;
    Ok(exit_code(output.status))
}

/// Set to print, after rustc exits, which proc macros ran where.
pub const SUMMARY_ENV: &str = "WASMACRO_SUMMARY";
pub use wasmacro_host::records::{STATS_ENV, read_stats};

/// A child's exit status as this process's exit code: the same code, or
/// failure when it was killed by a signal.
pub fn exit_code(status: std::process::ExitStatus) -> ExitCode {
    match status.code() {
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        None => ExitCode::FAILURE,
    }
}

/// Prints each proc-macro crate of this rustc invocation: wasm or native,
/// and for wasm ones how many expansions ran and how long they took.
fn print_summary(args: &[OsString], stats_dir: &Path) {
    let mut rows: std::collections::BTreeMap<String, SummaryRow> = Default::default();
    fn row(
        rows: &mut std::collections::BTreeMap<String, SummaryRow>,
        name: String,
    ) -> &mut SummaryRow {
        rows.entry(name.clone())
            .or_insert_with(|| SummaryRow::new(name))
    }
    let externs = args
        .windows(2)
        .filter(|w| w[0] == "--extern")
        .filter_map(|w| w[1].to_str());
    for value in externs {
        let Some((name, path)) = value.split_once('=') else {
            continue;
        };
        let name = name.rsplit(':').next().unwrap_or(name).to_string();
        if path.ends_with(".wasm") {
            row(&mut rows, name).runs = "wasm";
        } else if path.ends_with(std::env::consts::DLL_SUFFIX) {
            row(&mut rows, name).runs = "native";
        }
    }
    for stats in read_stats(stats_dir) {
        let row = row(&mut rows, stats.crate_name);
        row.runs = "wasm";
        row.expansions += stats.expansions;
        row.hits += stats.hits;
        row.failures += stats.failures;
        row.micros += stats.micros;
    }
    let rows: Vec<SummaryRow> = rows.into_values().collect();
    summary::report(&rows, false);
}

/// `NAME=PATH.wasm` -> `NAME=SHIM`; anything else unchanged.
fn rewrite_extern(
    value: &OsStr,
    rustc: &Path,
    cache: &CacheDir,
    runtime: &mut Option<Runtime>,
) -> Result<OsString> {
    let Some(text) = value.to_str() else {
        return Ok(value.to_owned());
    };
    let Some((name, path)) = text.split_once('=') else {
        return Ok(value.to_owned());
    };
    if !path.ends_with(".wasm") {
        return Ok(value.to_owned());
    }
    // `--extern priv:name=…` and other modifiers stay in front of the name.
    let crate_name = name.rsplit(':').next().unwrap_or(name);
    let runtime = match runtime {
        Some(runtime) => runtime,
        None => {
            cache.ensure_writable()?;
            runtime.insert(
                Runtime::new(cache.clone(), RuntimeConfig::default())
                    .context("starting the wasm runtime")?,
            )
        }
    };
    let bytes = std::fs::read(path)
        .with_context(|| format!("reading proc-macro component {path} (for `--extern {name}`)"))?;
    let hash = runtime
        .cache()
        .insert(&bytes)
        .with_context(|| format!("caching {path}"))?;
    let loaded = runtime
        .load(&hash)
        .with_context(|| format!("loading proc-macro component {path}"))?;
    // A build system names crates, not packages: the built-in grants of a
    // package whose crate has this name apply.
    let package = crate::grants::BUILT_IN
        .iter()
        .map(|(package, _, _)| *package)
        .find(|package| package.replace('-', "_") == crate_name)
        .unwrap_or(crate_name);
    let grants = crate::grants::effective(package, &Default::default(), None);
    let spec = ShimSpec {
        crate_name,
        component: hash.as_str(),
        macros: loaded.declarations(),
        edition: wasmacro_host::edition::shim_edition(&bytes),
        grants: &grants,
        stateless: crate::stateless::BUILT_IN
            .iter()
            .any(|package| package.replace('-', "_") == crate_name),
    };
    let shim = wasmacro_shim::ensure_shim(rustc, &cache.section(Section::Shims), &spec)
        .with_context(|| format!("making the native shim for {path}"))?;
    crate::next_wrapper::mark(&shim, crate::grants::reads_beyond_cargo(&grants))
        .with_context(|| format!("marking the shim {}", shim.display()))?;
    if let Some(dir) = shim.parent() {
        wasmacro_host::maintenance::mark_used(dir);
    }
    tracing::debug!(%name, component = %hash, shim = %shim.display(), "wasm extern");
    let mut rewritten = OsString::from(format!("{name}="));
    rewritten.push(shim.as_os_str());
    Ok(rewritten)
}
