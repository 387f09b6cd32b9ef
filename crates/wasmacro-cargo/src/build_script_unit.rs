//! Build scripts as wasm. cargo compiles a build script into
//! `build/PKG-HASH/build_script_build-HASH` and later runs it there; when
//! the policy selects the package (`build-scripts = "all"`, a list, or its
//! author's `wasm-build-script = true`), the wrapper lets rustc compile it
//! natively as usual (its diagnostics and dep-info are cargo's), builds the
//! script for `wasm32-wasip2` with the build-dependencies cargo gave it, and
//! puts at that path a launcher: a two-line script that runs the component
//! with `wasmacro run-build-script`. cargo's scheduling, fingerprints,
//! `OUT_DIR`, directives and `rerun-if-*` handling stay cargo's own.
//!
//! A script whose component calls what WASI cannot do (processes: rustc
//! probes, `cc`, `pkg-config`; threads) keeps its native executable, with
//! the reason in the summary, or fails the build under `--strict`.
//!
//! In the sandbox ([`wasmacro_host::build_script`]) a script reads its
//! package directory, reads and writes its `OUT_DIR`, and sees the variables
//! cargo sets for build scripts (and those the project grants it) — not the
//! rest of the environment. What it read joins its `rerun-if-changed` lines
//! when it printed any (otherwise cargo already reruns it on any change in
//! the package).
//!
//! It must never: leave a launcher where the component could not be built or
//! calls a process; or pass a script's output on altered but for the
//! `rerun-if-changed` lines it adds.

use crate::macro_unit::{
    STRICT_ENV, UnitKind, UnitRecord, WORKSPACE_ENV, one_line_reason, project_build_options,
    real_rustc, record_unit,
};
use crate::policy::{AUTHOR_BUILD_SCRIPT, Placement, Policy, author_says};
use crate::status;
use anyhow::{Context, Result, bail};
use std::collections::BTreeSet;
use std::ffi::OsString;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use wasmacro_build::{BuildEvent, Goal};
use wasmacro_host::build_script::BuildScriptRun;
use wasmacro_host::{CacheDir, ComponentHash, Limits, Runtime, RuntimeConfig};

/// A build script as cargo asks rustc to compile it.
#[derive(Debug, PartialEq, Eq)]
struct ScriptUnit {
    out_dir: PathBuf,
    /// `build_script_build-HASH`: the executable's name, and the stem of
    /// its dep-info.
    stem: String,
    features: Vec<String>,
    /// The crate names of the `--extern`s: its build-dependencies.
    externs: BTreeSet<String>,
}

impl ScriptUnit {
    /// The unit, if `args` (rustc's, without rustc) compile a build script.
    fn from_args(args: &[OsString]) -> Option<ScriptUnit> {
        let args = crate::rustc_args::RustcArgs::parse(args)?;
        let crate_name = args.value("--crate-name")?;
        if !crate_name.starts_with("build_script_")
            || args.value("--crate-type") != Some("bin")
            || !args.links()
        {
            return None;
        }
        Some(ScriptUnit {
            out_dir: PathBuf::from(args.value("--out-dir")?),
            stem: format!("{crate_name}{}", args.extra_filename()),
            features: args.features(),
            externs: args.externs().map(str::to_string).collect(),
        })
    }

    fn executable(&self) -> PathBuf {
        self.out_dir
            .join(format!("{}{}", self.stem, std::env::consts::EXE_SUFFIX))
    }
}

/// After rustc compiled `args` successfully: if they compile a build script
/// of a wasmacro workspace that the policy selects, replace the executable
/// with the launcher of its component. `Ok(false)` means "not ours".
pub fn after_native_compile(command: &[OsString]) -> Result<bool> {
    let Some(workspace) = std::env::var_os(WORKSPACE_ENV) else {
        return Ok(false);
    };
    let Some(unit) = command.get(1..).and_then(ScriptUnit::from_args) else {
        return Ok(false);
    };
    let env = |name: &str| {
        std::env::var(name).with_context(|| format!("cargo did not set {name} for a build script"))
    };
    let package = env("CARGO_PKG_NAME")?;
    let version = env("CARGO_PKG_VERSION")?;
    let manifest_dir = PathBuf::from(env("CARGO_MANIFEST_DIR")?);
    let policy = match std::env::var(Policy::ENV) {
        Ok(value) => Policy::from_env(&value)?,
        Err(_) => Policy::of_workspace(Path::new(&workspace))?,
    };
    let manifest = std::fs::read_to_string(manifest_dir.join("Cargo.toml"))
        .with_context(|| format!("reading the manifest of {package} v{version}"))?;
    let mut placement =
        policy.place_build_script(&package, author_says(&manifest, AUTHOR_BUILD_SCRIPT));
    let mut component = None;
    if matches!(placement, Placement::Wasm(_)) {
        let describe = format!("{package} v{version}");
        status::print("Compiling", &format!("{describe} (build script, wasm)"));
        let built = build(
            command,
            &unit,
            (&package, &version),
            &manifest_dir,
            Path::new(&workspace),
        );
        match built {
            Ok(hash) => {
                write_launcher(&unit.executable(), &hash, &package)?;
                component = Some(hash.as_str().to_string());
            }
            Err(reason) => {
                if std::env::var_os(STRICT_ENV).is_some() || policy.strict {
                    bail!(
                        "the build script of `{describe}` cannot run as wasm ({reason}); \
                         `--strict` (or the policy's `strict = true`) forbids running it natively"
                    );
                }
                status::warn(&format!(
                    "the build script of {describe} runs natively: {reason}"
                ));
                placement = Placement::Fallback(reason);
            }
        }
    }
    let record = UnitRecord {
        kind: UnitKind::BuildScript,
        package,
        version,
        crate_name: "build_script_build".to_string(),
        placement,
        component,
    };
    record_unit(
        &unit.out_dir,
        &unit.stem,
        &record,
        Policy::BUILD_SCRIPTS_ENV,
    )?;
    Ok(true)
}

/// The script's component, or why it cannot run as wasm.
fn build(
    command: &[OsString],
    unit: &ScriptUnit,
    package: (&str, &str),
    manifest_dir: &Path,
    workspace: &Path,
) -> Result<ComponentHash, String> {
    let cache = CacheDir::from_env();
    cache
        .ensure_writable()
        .map_err(|e| format!("the cache is not writable: {e}"))?;
    let runtime = Runtime::new(cache.clone(), RuntimeConfig::default())
        .map_err(|e| format!("the wasm runtime did not start: {e}"))?;
    let rustc = real_rustc(command);
    let mut options = project_build_options(
        manifest_dir,
        package,
        &unit.features,
        workspace,
        &cache,
        &rustc,
    );
    options.goal = Goal::BuildScript {
        externs: unit.externs.clone(),
    };
    let for_unit = format!("wasm, for the build script of {}", package.0);
    let progress = |event: BuildEvent| {
        if let BuildEvent::Compiling(crate_) = event {
            status::print("Compiling", &format!("{crate_} ({for_unit})"));
        }
    };
    let built = wasmacro_build::build_script_component(&options, &runtime, &progress)
        .map_err(|e| one_line_reason(&e, &format!("{}-{}", package.0, package.1), manifest_dir))?;
    match built.unavailable {
        Some(reason) => Err(reason),
        None => Ok(built.hash),
    }
}

/// The launcher cargo runs in place of the native executable.
fn write_launcher(path: &Path, hash: &ComponentHash, package: &str) -> Result<()> {
    let wasmacro = std::env::current_exe().context("finding the wasmacro executable")?;
    let cache = CacheDir::from_env();
    let quote = |text: &str| format!("'{}'", text.replace('\'', r"'\''"));
    let script = format!(
        "#!/bin/sh\n# wasmacro: the build script of {package}, run as wasm.\nexec {} run-build-script \
         --package {} --component {} --cache {}\n",
        quote(&wasmacro.to_string_lossy()),
        quote(package),
        hash.as_str(),
        quote(&cache.root().to_string_lossy()),
    );
    // cargo hard-links the executable to `build-script-build`: replaced
    // whole, never written through.
    let _ = std::fs::remove_file(path);
    wasmacro_host::write_atomically(path, &[script.as_bytes()])
        .with_context(|| format!("writing {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
            .with_context(|| format!("making {} executable", path.display()))?;
    }
    Ok(())
}

/// The variables cargo sets for build scripts (<https://doc.rust-lang.org/
/// cargo/reference/environment-variables.html#environment-variables-cargo-
/// sets-for-build-scripts>): by name, then by prefix.
const CARGO_SETS: &[&str] = &[
    "CARGO",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_MANIFEST_DIR",
    "CARGO_MANIFEST_LINKS",
    "CARGO_MANIFEST_PATH",
    "DEBUG",
    "HOST",
    "NUM_JOBS",
    "OPT_LEVEL",
    "OUT_DIR",
    "PROFILE",
    "RUSTC",
    "RUSTC_LINKER",
    "RUSTC_WORKSPACE_WRAPPER",
    "RUSTC_WRAPPER",
    "RUSTDOC",
    "TARGET",
];
const CARGO_SETS_PREFIXES: &[&str] = &["CARGO_CFG_", "CARGO_FEATURE_", "CARGO_PKG_", "DEP_"];

/// Whether a build script in the sandbox sees `name`.
fn given_to_scripts(name: &str, granted: &[String]) -> bool {
    CARGO_SETS.contains(&name)
        || CARGO_SETS_PREFIXES.iter().any(|p| name.starts_with(p))
        || granted
            .iter()
            .any(|pattern| wasmacro_protocol::env_matches(pattern, name))
}

/// `wasmacro run-build-script --package NAME --component HASH --cache DIR`:
/// what the launcher runs, in cargo's environment for the script.
pub fn run(package: &str, component: &str, cache: &Path) -> Result<ExitCode> {
    let hash = ComponentHash::parse(component)
        .with_context(|| format!("`{component}` is not a component hash"))?;
    let var = |name: &str| {
        std::env::var(name).with_context(|| {
            format!(
                "{name} is not set: `wasmacro run-build-script` is run by cargo, as a build script"
            )
        })
    };
    let manifest_dir = var("CARGO_MANIFEST_DIR")?;
    let out_dir = var("OUT_DIR")?;
    let policy = match std::env::var(Policy::ENV) {
        Ok(value) => Some(Policy::from_env(&value)?),
        Err(_) => match std::env::var_os(WORKSPACE_ENV) {
            Some(workspace) => Some(Policy::of_workspace(Path::new(&workspace))?),
            None => None,
        },
    };
    let granted: Vec<String> = policy
        .as_ref()
        .and_then(|p| p.grants_of(package))
        .map(|grant| grant.grants.env.clone())
        .unwrap_or_default();
    type Variables = Vec<(String, String)>;
    let (env, withheld): (Variables, Variables) =
        std::env::vars().partition(|(name, _)| given_to_scripts(name, &granted));

    let mut config = RuntimeConfig::from_env()?;
    // Under plain cargo nobody passed the policy's limits down.
    if std::env::var_os(Limits::ENV).is_none()
        && let Some(policy) = &policy
        && !policy.limits.is_empty()
    {
        config.limits = Limits::parse(&policy.limits)?;
    }
    let runtime = Runtime::new(CacheDir::new(cache.to_path_buf()), config)
        .context("starting the wasm runtime")?;
    // A `-sys` dependency's script passes its include directory (in its
    // own `OUT_DIR`) as `DEP_NAME_INCLUDE`: readable too.
    let readable = env
        .iter()
        .filter(|(name, _)| name.starts_with("DEP_"))
        .filter(|(_, value)| value.starts_with('/') && Path::new(value).is_dir())
        .map(|(_, value)| value.clone())
        .collect();
    let run = BuildScriptRun {
        package: package.to_string(),
        manifest_dir,
        out_dir,
        readable,
        env,
    };
    let outcome = runtime
        .run_build_script(&hash, &run)
        .with_context(|| format!("running the build script of {package} as wasm"))?;

    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&outcome.stdout)?;
    let stdout_text = String::from_utf8_lossy(&outcome.stdout);
    let directives = Directives::of(&stdout_text);
    if outcome.exit_code == 0 {
        for line in directives.unrecorded_reads(&outcome.reads, Path::new(&run.manifest_dir)) {
            writeln!(stdout, "{line}")?;
        }
        for name in directives.withheld(&withheld) {
            let warning = format!(
                "the build script of {package} reads `{name}`, which is set but not given to \
                 build scripts in the sandbox: it ran as if unset; grant it with \
                 `[workspace.metadata.wasmacro.grants] {package} = {{ env = [\"{name}\"] }}`"
            );
            // cargo shows a registry package's `cargo:warning` only with
            // `-vv`: said on `cargo wasmacro`'s terminal too.
            status::warn(&warning);
            writeln!(stdout, "cargo:warning=wasmacro: {warning}")?;
        }
    }
    stdout.flush()?;
    let mut stderr = std::io::stderr().lock();
    stderr.write_all(&outcome.stderr)?;
    if let Some(why) = &outcome.failure {
        writeln!(
            stderr,
            "error: the build script of `{package}` ran as wasm and failed: {why}"
        )?;
    }
    Ok(ExitCode::from(u8::try_from(outcome.exit_code).unwrap_or(1)))
}

/// The `rerun-if-*` directives a script printed (both `cargo:` and
/// `cargo::` forms).
#[derive(Debug, Default)]
struct Directives {
    changed: Vec<String>,
    env_changed: Vec<String>,
}

impl Directives {
    fn of(stdout: &str) -> Directives {
        let mut directives = Directives::default();
        for line in stdout.lines() {
            let Some(rest) = line
                .strip_prefix("cargo::")
                .or_else(|| line.strip_prefix("cargo:"))
            else {
                continue;
            };
            if let Some(path) = rest.strip_prefix("rerun-if-changed=") {
                directives.changed.push(path.to_string());
            } else if let Some(name) = rest.strip_prefix("rerun-if-env-changed=") {
                directives.env_changed.push(name.to_string());
            }
        }
        directives
    }

    /// `rerun-if-changed` lines for the files the script read that its own
    /// lines do not cover — none when it printed no `rerun-if-*` at all:
    /// cargo then reruns it whenever anything in the package changes.
    fn unrecorded_reads(&self, reads: &[String], manifest_dir: &Path) -> Vec<String> {
        if self.changed.is_empty() && self.env_changed.is_empty() {
            return Vec::new();
        }
        let declared: Vec<PathBuf> = self
            .changed
            .iter()
            .map(|path| manifest_dir.join(path))
            .collect();
        reads
            .iter()
            .filter(|read| !declared.iter().any(|d| Path::new(read).starts_with(d)))
            .map(|read| format!("cargo:rerun-if-changed={read}"))
            .collect()
    }

    /// The variables the script said it depends on that are set but were
    /// not given to it.
    fn withheld<'a>(&self, withheld: &'a [(String, String)]) -> Vec<&'a str> {
        withheld
            .iter()
            .filter(|(name, _)| self.env_changed.contains(name))
            .map(|(name, _)| name.as_str())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn a_build_script_unit_is_recognised_from_cargos_arguments() {
        let unit = ScriptUnit::from_args(&os(&[
            "--crate-name",
            "build_script_build",
            "--edition=2021",
            "build.rs",
            "--crate-type",
            "bin",
            "--emit=dep-info,link",
            "--cfg",
            "feature=\"std\"",
            "-C",
            "extra-filename=-6f87",
            "--out-dir",
            "/t/debug/build/x-6f87",
            "--extern",
            "cfg_aliases=/t/debug/deps/libcfg_aliases-1.rlib",
            "--extern=priv:phf_codegen=/t/debug/deps/libphf_codegen-2.rlib",
        ]))
        .unwrap();
        assert_eq!(unit.stem, "build_script_build-6f87");
        assert_eq!(unit.features, ["std"]);
        assert_eq!(
            unit.externs.iter().collect::<Vec<_>>(),
            ["cfg_aliases", "phf_codegen"]
        );
        assert_eq!(
            unit.executable(),
            Path::new("/t/debug/build/x-6f87/build_script_build-6f87")
        );
        // A library, or a build script's test, is not one.
        assert!(
            ScriptUnit::from_args(&os(&["--crate-name", "x", "--crate-type", "bin"])).is_none()
        );
        assert!(
            ScriptUnit::from_args(&os(&[
                "--crate-name",
                "build_script_build",
                "--crate-type",
                "bin",
                "--test",
                "--out-dir",
                "/t"
            ]))
            .is_none()
        );
    }

    #[test]
    fn reads_join_rerun_if_changed_only_where_the_script_chose_its_own() {
        let dir = Path::new("/p");
        let reads = ["/p/build.rs".to_string(), "/p/data/table.txt".to_string()];
        let silent = Directives::of("cargo:rustc-cfg=x\n");
        assert!(silent.unrecorded_reads(&reads, dir).is_empty());
        let own = Directives::of("cargo::rerun-if-changed=build.rs\ncargo:rustc-cfg=x\n");
        assert_eq!(
            own.unrecorded_reads(&reads, dir),
            ["cargo:rerun-if-changed=/p/data/table.txt"]
        );
        let whole_dir =
            Directives::of("cargo:rerun-if-changed=data\ncargo:rerun-if-changed=build.rs\n");
        assert!(whole_dir.unrecorded_reads(&reads, dir).is_empty());
    }

    #[test]
    fn scripts_see_cargos_variables_and_granted_ones_only() {
        assert!(given_to_scripts("OUT_DIR", &[]));
        assert!(given_to_scripts("CARGO_CFG_TARGET_OS", &[]));
        assert!(given_to_scripts("DEP_Z_INCLUDE", &[]));
        assert!(!given_to_scripts("HOME", &[]));
        assert!(!given_to_scripts("PATH", &[]));
        assert!(!given_to_scripts("CARGO_HOME", &[]));
        assert!(given_to_scripts("MY_FLAG", &["MY_*".to_string()]));
    }
}
