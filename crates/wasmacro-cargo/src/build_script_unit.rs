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
//! What the launcher runs is `build_script_run.rs`.
//!
//! It must never leave a launcher where the component could not be built,
//! calls a process, or where the platform has no `/bin/sh`.

use crate::macro_unit::{
    STRICT_ENV, UnitKind, UnitRecord, WORKSPACE_ENV, one_line_reason, project_build_options,
    real_rustc, record_unit,
};
use crate::policy::{AUTHOR_BUILD_SCRIPT, Placement, Policy, author_says};
use crate::status;
use anyhow::{Context, Result, bail};
use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use wasmacro_build::{BuildEvent, Goal};
use wasmacro_host::{CacheDir, ComponentHash, Runtime, RuntimeConfig};

/// A build script as cargo asks rustc to compile it.
#[derive(Debug, PartialEq, Eq)]
struct ScriptUnit {
    /// `build_script_build`, or `build_script_main` for `build/main.rs`.
    crate_name: String,
    out_dir: PathBuf,
    /// `build_script_build-HASH`: the executable's name, and the stem of
    /// its dep-info.
    stem: String,
    features: Vec<String>,
    /// The crate names of the `--extern`s: its build-dependencies.
    externs: BTreeSet<String>,
    /// `-C debug-assertions` as cargo set it (rustc's default at
    /// `opt-level=0`, where scripts are compiled, is on).
    debug_assertions: bool,
    /// `-C overflow-checks` (by default as debug assertions).
    overflow_checks: bool,
}

impl ScriptUnit {
    /// The unit, if `args` (rustc's, without rustc) compile a build script.
    fn from_args(args: &[OsString]) -> Option<ScriptUnit> {
        let args = crate::rustc_args::RustcArgs::parse(args)?;
        let crate_name = args.value("--crate-name")?;
        let out_dir = PathBuf::from(args.value("--out-dir")?);
        // A build script goes to `build/PKG-HASH/`; a `[[bin]]` named
        // `build-script-…` goes to `deps/`.
        let in_build = out_dir
            .parent()
            .and_then(Path::file_name)
            .is_some_and(|name| name == "build");
        if !crate_name.starts_with("build_script_")
            || args.value("--crate-type") != Some("bin")
            || !args.links()
            || !in_build
        {
            return None;
        }
        let switch = |key: &str| {
            args.codegen(key)
                .map(|value| matches!(value, "on" | "yes" | "y" | "true"))
        };
        let debug_assertions = switch("debug-assertions=").unwrap_or(true);
        Some(ScriptUnit {
            crate_name: crate_name.to_string(),
            out_dir,
            stem: format!("{crate_name}{}", args.extra_filename()),
            features: args.features(),
            externs: args.externs().map(str::to_string).collect(),
            debug_assertions,
            overflow_checks: switch("overflow-checks=").unwrap_or(debug_assertions),
        })
    }

    /// The script's source files below `manifest_dir`, relative to it, from
    /// the dep-info rustc wrote (empty if it cannot be read).
    fn sources(&self, manifest_dir: &Path) -> Vec<String> {
        let dep_info = self.out_dir.join(format!("{}.d", self.stem));
        let Ok(text) = std::fs::read_to_string(dep_info) else {
            return Vec::new();
        };
        let Some((_, deps)) = text.lines().next().and_then(|l| l.split_once(": ")) else {
            return Vec::new();
        };
        // Spaces in paths are escaped with a backslash.
        let deps = deps.replace("\\ ", "\u{0}");
        deps.split(' ')
            .map(|path| path.replace('\u{0}', " "))
            .filter_map(|path| {
                let relative = Path::new(&path).strip_prefix(manifest_dir).ok()?;
                Some(relative.to_str()?.to_string())
            })
            .filter(|path| path.ends_with(".rs"))
            .collect()
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
    let policy = Policy::in_force(Path::new(&workspace))?;
    let manifest = std::fs::read_to_string(manifest_dir.join("Cargo.toml"))
        .with_context(|| format!("reading the manifest of {package} v{version}"))?;
    let mut placement =
        policy.place_build_script(&package, author_says(&manifest, AUTHOR_BUILD_SCRIPT));
    if !cfg!(unix) && matches!(placement, Placement::Wasm(_)) {
        // The launcher is a `/bin/sh` script.
        placement = Placement::Native("build scripts run as wasm on Unix only".into());
    }
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
        crate_name: unit.crate_name.clone(),
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
        debug_assertions: unit.debug_assertions,
        overflow_checks: unit.overflow_checks,
        sources: unit.sources(manifest_dir),
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
    let text = |path: &Path| {
        path.to_str()
            .map(str::to_string)
            .with_context(|| format!("{} is not UTF-8: the launcher names it", path.display()))
    };
    let script = format!(
        "#!/bin/sh\n# wasmacro: the build script of {package}, run as wasm.\nexec {} run-build-script \
         --package {} --component {} --cache {}\n",
        quote(&text(&wasmacro)?),
        quote(package),
        hash.as_str(),
        quote(&text(cache.root())?),
    );
    // Replaced whole (a rename), never written through: cargo hard-links
    // the executable to `build-script-build` after this returns.
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
            "-C",
            "debug-assertions=off",
            "--extern",
            "cfg_aliases=/t/debug/deps/libcfg_aliases-1.rlib",
            "--extern=priv:phf_codegen=/t/debug/deps/libphf_codegen-2.rlib",
        ]))
        .unwrap();
        assert_eq!(unit.stem, "build_script_build-6f87");
        assert!(!unit.debug_assertions && !unit.overflow_checks);
        assert_eq!(unit.features, ["std"]);
        assert_eq!(
            unit.externs.iter().collect::<Vec<_>>(),
            ["cfg_aliases", "phf_codegen"]
        );
        assert_eq!(
            unit.executable(),
            Path::new("/t/debug/build/x-6f87/build_script_build-6f87")
        );
        // A `[[bin]]` named `build-script-gen` is compiled into `deps/`.
        assert!(
            ScriptUnit::from_args(&os(&[
                "--crate-name",
                "build_script_gen",
                "--crate-type",
                "bin",
                "--out-dir",
                "/t/debug/deps"
            ]))
            .is_none()
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
}
