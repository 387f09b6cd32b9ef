//! `cargo wasmacro <build|check|test|run|bench|doc|clippy|…> [cargo args…]`:
//! runs cargo with wasmacro as its rustc wrapper, then prints which proc
//! macros ran where.
//!
//! cargo stays in charge of everything: resolution, the lockfile (read, never
//! written by wasmacro), scheduling and fingerprints. The wrapper adds a line
//! to `rustc -vV`, so cargo files wasm-macro builds under their own unit
//! hashes: `cargo build` and `cargo wasmacro build` share a target directory
//! without invalidating each other.

use crate::macro_unit::{SESSION_ENV, STRICT_ENV, UnitKind, UnitRecord, WORKSPACE_ENV};
use crate::policy::{Placement, Policy};
use crate::rustc_wrapper::{STATS_ENV, exit_code, read_stats};
use crate::status::{self, COLOR_ENV, STATUS_FD_ENV, inheritable_stderr};
use crate::summary::{self, SummaryRow};
use anyhow::{Context, Result, bail};
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// Options of `cargo wasmacro` itself; everything else goes to cargo.
const USAGE: &str = "\
Run cargo with every proc macro of the project compiled to wasm.

Usage: cargo wasmacro [--strict] <COMMAND> [cargo args…]

  COMMAND    any cargo command that compiles: build, check, test, run, bench, doc, clippy, …
  --strict   fail when a macro cannot run as wasm, instead of running it natively

Policy: [workspace.metadata.wasmacro] in Cargo.toml (run = \"all\" | \"opted-in\" | [names],
deny = [names]). See the README.";

/// Runs `cargo ARGS…` under the wrapper; returns cargo's exit code, or
/// failure when `--strict` finds a macro that ran natively.
pub fn run(args: Vec<OsString>) -> Result<ExitCode> {
    let (strict, args) = take_flag(args, "--strict");
    let Some(subcommand) = args.first().and_then(|a| a.to_str()) else {
        println!("{USAGE}");
        return Ok(ExitCode::FAILURE);
    };
    if matches!(subcommand, "-h" | "--help" | "help") {
        println!("{USAGE}");
        return Ok(ExitCode::SUCCESS);
    }
    let quiet = args.iter().any(|a| a == "-q" || a == "--quiet");
    let cargo = std::env::var_os("CARGO")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("cargo"));
    let metadata = metadata(&cargo, &args)?;
    let workspace = metadata.workspace_root.as_std_path().to_path_buf();
    let policy = Policy::of_workspace(&workspace)?;
    let strict = strict || policy.strict;

    let exe = std::env::current_exe().context("locating the wasmacro executable")?;
    let session = tempfile::tempdir().context("creating a session directory")?;
    let stats = tempfile::tempdir().context("creating a statistics directory")?;
    let color = color(&args);
    let mut command = Command::new(&cargo);
    command
        .args(&args)
        .env("RUSTC_WRAPPER", &exe)
        .env(WORKSPACE_ENV, &workspace)
        .env(Policy::ENV, policy.to_env())
        .env(
            Policy::BUILD_SCRIPTS_ENV,
            policy.build_scripts_env(&packages_with_build_scripts(&metadata)),
        )
        .env(SESSION_ENV, session.path())
        .env(STATS_ENV, stats.path())
        .env(COLOR_ENV, if color { "always" } else { "never" })
        // The run's summary is this process's to print and write, not each
        // rustc's.
        .env_remove(crate::rustc_wrapper::SUMMARY_ENV)
        .env_remove(summary::JSON_ENV);
    // rustdoc loads the shims too, and is not run through the wrapper.
    crate::transport::Transport::from_env()?.apply(&mut command);
    // sccache or another wrapper the user configured keeps running, after us.
    let cwd = std::env::current_dir().context("locating the current directory")?;
    match crate::next_wrapper::configured(&cwd) {
        Some(wrapper) => command.env(crate::next_wrapper::ENV, wrapper),
        None => command.env_remove(crate::next_wrapper::ENV),
    };
    match inheritable_stderr() {
        Some(fd) => command.env(STATUS_FD_ENV, fd.to_string()),
        None => command.env_remove(STATUS_FD_ENV),
    };
    policy.apply_runtime_env(&mut command);
    if strict {
        command.env(STRICT_ENV, "1");
    } else {
        command.env_remove(STRICT_ENV);
    }
    let status = command
        .status()
        .with_context(|| format!("running {}", cargo.display()))?;

    let target_dir = arg_value(&args, "--target-dir")
        .map(PathBuf::from)
        .unwrap_or_else(|| metadata.target_directory.as_std_path().to_path_buf());
    let deps = target_dir.join(profile_dir(subcommand, &args)).join("deps");
    let rows = summary_rows(&metadata, session.path(), &deps, stats.path());
    // cargo replays the warnings of units it finds fresh; so do we, since
    // ours bypass its output cache.
    if !quiet {
        for row in rows.iter().filter(|row| !row.compiled) {
            if let Placement::Fallback(why) = &row.record.placement {
                status::warn_with_color(
                    color,
                    &format!("{} runs natively: {why}", row.record.describe()),
                );
            }
        }
    }
    summary::report(&rows.iter().map(Row::summary).collect::<Vec<_>>(), quiet);
    if strict {
        let fallbacks: Vec<String> = rows
            .iter()
            .filter_map(|row| match &row.record.placement {
                Placement::Fallback(why) => Some(format!("{} ({why})", row.record.describe())),
                _ => None,
            })
            .collect();
        if !fallbacks.is_empty() {
            bail!("`--strict`: these run natively: {}", fallbacks.join(", "));
        }
    }
    Ok(exit_code(status))
}

/// `args` without `flag` (before any `--`), and whether it was there.
fn take_flag(args: Vec<OsString>, flag: &str) -> (bool, Vec<OsString>) {
    let end = args.iter().position(|a| a == "--").unwrap_or(args.len());
    let found = args[..end].iter().any(|a| a == flag);
    let args = args
        .into_iter()
        .enumerate()
        .filter(|(i, a)| *i >= end || a != flag)
        .map(|(_, a)| a)
        .collect();
    (found, args)
}

/// The value of `--flag VALUE` or `--flag=VALUE` before any `--`.
fn arg_value(args: &[OsString], flag: &str) -> Option<OsString> {
    let end = args.iter().position(|a| a == "--").unwrap_or(args.len());
    let args = &args[..end];
    args.iter().enumerate().find_map(|(i, a)| {
        if a == flag {
            args.get(i + 1).cloned()
        } else {
            a.to_str()?
                .strip_prefix(flag)?
                .strip_prefix('=')
                .map(OsString::from)
        }
    })
}

fn metadata(cargo: &Path, args: &[OsString]) -> Result<cargo_metadata::Metadata> {
    let mut command = cargo_metadata::MetadataCommand::new();
    command.cargo_path(cargo);
    if let Some(path) = arg_value(args, "--manifest-path") {
        command.manifest_path(path);
    }
    let mut other = Vec::new();
    for flag in ["--locked", "--offline", "--frozen"] {
        if args.iter().any(|a| a == flag) {
            other.push(flag.to_string());
        }
    }
    command.other_options(other);
    command.exec().context("running `cargo metadata`")
}

/// The directory under the target directory where host artifacts (proc
/// macros) of this command go.
fn profile_dir(subcommand: &str, args: &[OsString]) -> String {
    let profile = arg_value(args, "--profile")
        .and_then(|p| p.into_string().ok())
        .unwrap_or_else(|| {
            if args.iter().any(|a| a == "--release" || a == "-r") || subcommand == "bench" {
                "release".into()
            } else {
                "dev".into()
            }
        });
    match profile.as_str() {
        "dev" | "test" | "check" | "doc" => "debug".into(),
        "bench" => "release".into(),
        other => other.into(),
    }
}

/// The packages of the build's graph that have a build script.
fn packages_with_build_scripts(metadata: &cargo_metadata::Metadata) -> BTreeSet<String> {
    metadata
        .packages
        .iter()
        .filter(|p| p.targets.iter().any(|t| t.is_custom_build()))
        .map(|p| p.name.to_string())
        .collect()
}

fn color(args: &[OsString]) -> bool {
    let choice = arg_value(args, "--color")
        .and_then(|c| c.into_string().ok())
        .or_else(|| std::env::var("CARGO_TERM_COLOR").ok());
    match choice.as_deref() {
        Some("always") => true,
        Some("never") => false,
        _ => std::io::stderr().is_terminal(),
    }
}

struct Row {
    record: UnitRecord,
    /// Whether the unit was compiled in this run (else cargo found it fresh).
    compiled: bool,
    expansions: u64,
    hits: u64,
    failures: u64,
    micros: u128,
}

/// One row per proc-macro crate of the build: from this run's records, else
/// from the newest record cargo's deps directory holds for that package.
fn summary_rows(
    metadata: &cargo_metadata::Metadata,
    session: &Path,
    deps: &Path,
    stats: &Path,
) -> Vec<Row> {
    let read = |path: &Path| -> Option<UnitRecord> {
        serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
    };
    type Key = (UnitKind, String, String);
    let key_of = |record: &UnitRecord| -> Key {
        (record.kind, record.package.clone(), record.version.clone())
    };
    let mut rows: BTreeMap<Key, Row> = BTreeMap::new();
    for entry in std::fs::read_dir(session).into_iter().flatten().flatten() {
        if let Some(record) = read(&entry.path()) {
            rows.insert(key_of(&record), new_row(record, true));
        }
    }
    let units: Vec<Key> = metadata
        .packages
        .iter()
        .flat_map(|p| {
            let name = || (p.name.to_string(), p.version.to_string());
            let proc_macro = p.targets.iter().any(|t| t.is_proc_macro());
            let script = p.targets.iter().any(|t| t.is_custom_build());
            [
                proc_macro.then(|| (UnitKind::ProcMacro, name().0, name().1)),
                script.then(|| (UnitKind::BuildScript, name().0, name().1)),
            ]
        })
        .flatten()
        .collect();
    let mut fresh: BTreeMap<Key, (std::time::SystemTime, UnitRecord)> = BTreeMap::new();
    // Proc macros' records are in `deps/`, build scripts' in `build/*/`.
    let build_dirs = deps
        .parent()
        .map(|profile| profile.join("build"))
        .and_then(|build| std::fs::read_dir(build).ok())
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path());
    let records = std::iter::once(deps.to_path_buf())
        .chain(build_dirs)
        .flat_map(|dir| std::fs::read_dir(dir).into_iter().flatten().flatten());
    for entry in records {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != UnitRecord::EXTENSION) {
            continue;
        }
        let Some(record) = read(&path) else { continue };
        let key = key_of(&record);
        if rows.contains_key(&key) || !units.contains(&key) {
            continue;
        }
        let modified = entry
            .metadata()
            .and_then(|m| m.modified())
            .unwrap_or(std::time::UNIX_EPOCH);
        if fresh.get(&key).is_none_or(|(time, _)| *time < modified) {
            fresh.insert(key, (modified, record));
        }
    }
    for (key, (_, record)) in fresh {
        rows.insert(key, new_row(record, false));
    }
    // Servers record per crate name and process; sum them per crate.
    for stats in read_stats(stats) {
        if let Some(row) = rows.values_mut().find(|row| {
            row.record.crate_name == stats.crate_name
                && row.record.component.as_deref() == Some(stats.component.as_str())
        }) {
            row.expansions += stats.expansions;
            row.hits += stats.hits;
            row.failures += stats.failures;
            row.micros += stats.micros;
        }
    }
    rows.into_values().collect()
}

fn new_row(record: UnitRecord, compiled: bool) -> Row {
    Row {
        record,
        compiled,
        expansions: 0,
        hits: 0,
        failures: 0,
        micros: 0,
    }
}

impl Row {
    fn summary(&self) -> SummaryRow {
        SummaryRow {
            krate: format!("{} v{}", self.record.package, self.record.version),
            kind: self.record.kind,
            runs: self.record.placement.runs_as(),
            why: Some(self.record.placement.why().to_string()),
            fresh: !self.compiled,
            expansions: self.expansions,
            hits: self.hits,
            failures: self.failures,
            micros: self.micros,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn strict_is_ours_until_double_dash() {
        let (strict, rest) = take_flag(os(&["test", "--strict", "--", "--strict"]), "--strict");
        assert!(strict);
        assert_eq!(rest, os(&["test", "--", "--strict"]));
        assert_eq!(
            arg_value(&os(&["build", "--target-dir=x"]), "--target-dir"),
            Some("x".into())
        );
        assert_eq!(profile_dir("test", &os(&["test"])), "debug");
        assert_eq!(profile_dir("build", &os(&["build", "-r"])), "release");
        assert_eq!(profile_dir("bench", &os(&["bench"])), "release");
        assert_eq!(
            profile_dir("build", &os(&["build", "--profile", "ci"])),
            "ci"
        );
    }
}
