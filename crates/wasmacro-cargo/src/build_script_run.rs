//! `wasmacro run-build-script`: what a build script's launcher runs, in the
//! environment cargo gives the script. In the sandbox
//! ([`wasmacro_host::build_script`]) the script reads its package directory
//! and the directories its dependencies' scripts name in `DEP_*` (below this
//! build's `build/` directory only), reads and writes its `OUT_DIR`, and
//! sees the variables cargo sets for build scripts and those the project
//! grants it — not the rest of the environment.
//!
//! Its output goes to cargo as it printed it, with two additions: what it
//! read joins its `rerun-if-changed` lines when it printed any (otherwise
//! cargo already reruns it on any change in the package), and a variable it
//! declared but was not given is said. Directives through which a script
//! would run native code when cargo applies them (`rustc-link-arg*`, a
//! `rustc-env` of the loader's, rustc's, cargo's or wasmacro's variables)
//! fail the script instead.
//!
//! It must never: pass on a directive that runs code outside the sandbox;
//! give the script a directory outside the build's `build/` directory but
//! its package; or alter its output but for the lines it adds.

use crate::macro_unit::WORKSPACE_ENV;
use crate::policy::Policy;
use crate::status;
use anyhow::{Context, Result};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use wasmacro_host::build_script::BuildScriptRun;
use wasmacro_host::{CacheDir, ComponentHash, Limits, Runtime, RuntimeConfig};

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
    let policy = match std::env::var_os(WORKSPACE_ENV) {
        Some(workspace) => Some(Policy::in_force(Path::new(&workspace))?),
        None => None,
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
    let readable = dependency_dirs(&env, Path::new(&out_dir));
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

    let stdout_text = String::from_utf8_lossy(&outcome.stdout);
    let directives = Directives::of(&stdout_text);
    // What would run native code once cargo applies it fails the script.
    let (exit_code, failure) = match (&outcome.failure, directives.escapes.first()) {
        (None, Some(escape)) if outcome.exit_code == 0 => (101, Some(escape_error(escape))),
        _ => (outcome.exit_code, outcome.failure.clone()),
    };
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&outcome.stdout)?;
    if exit_code == 0 {
        let mut added = Vec::new();
        added.extend(directives.unrecorded_reads(&outcome.reads, Path::new(&run.manifest_dir)));
        for name in directives.withheld(&withheld) {
            let warning = format!(
                "the build script of {package} reads `{name}`, which is set but not given to \
                 build scripts in the sandbox: it ran as if unset; grant it with \
                 `[workspace.metadata.wasmacro.grants] {package} = {{ env = [\"{name}\"] }}`"
            );
            // cargo shows a registry package's `cargo:warning` only with
            // `-vv`: said on `cargo wasmacro`'s terminal too.
            status::warn(&warning);
            added.push(format!("cargo:warning=wasmacro: {warning}"));
        }
        // A script's last line may lack its newline.
        if !added.is_empty() && !outcome.stdout.is_empty() && !outcome.stdout.ends_with(b"\n") {
            writeln!(stdout)?;
        }
        for line in added {
            writeln!(stdout, "{line}")?;
        }
    }
    stdout.flush()?;
    let mut stderr = std::io::stderr().lock();
    stderr.write_all(&outcome.stderr)?;
    if let Some(why) = &failure {
        writeln!(
            stderr,
            "error: the build script of `{package}` ran as wasm and failed: {why}"
        )?;
    }
    // An exit status is 0 to 255: what does not fit is a failure.
    Ok(ExitCode::from(u8::try_from(exit_code).unwrap_or(1)))
}

/// The directories dependencies' scripts name in `DEP_*` variables (a
/// `-sys` crate's include directory, in its own `OUT_DIR`), where they lie
/// below this build's `build/` directory (`OUT_DIR/../..`): a dependency's
/// script cannot widen its dependents' reads to `/` by saying so, or through
/// a symbolic link (each path is resolved first).
fn dependency_dirs(env: &[(String, String)], out_dir: &Path) -> Vec<String> {
    let Some(build) = out_dir
        .parent()
        .and_then(Path::parent)
        .and_then(|dir| dir.canonicalize().ok())
    else {
        return Vec::new();
    };
    env.iter()
        .filter(|(name, _)| name.starts_with("DEP_"))
        .filter_map(|(_, value)| Path::new(value).canonicalize().ok())
        .filter(|dir| dir.starts_with(&build) && dir != &build && dir.is_dir())
        .filter_map(|dir| dir.to_str().map(str::to_string))
        .collect()
}

/// A directive through which a script would run code outside the sandbox
/// once cargo applies it.
#[derive(Debug, PartialEq, Eq)]
struct Escape(String);

/// The variables a `rustc-env` must not set: cargo sets them on the rustc
/// that compiles the package (through wasmacro's wrapper), and through them
/// the loader, the linker rustc starts, sccache or wasmacro would run or
/// load what the script wrote, and a macro's grants would name other
/// directories (`CARGO_MANIFEST_DIR`).
const GUARDED_ENV: &[&str] = &[
    "PATH",
    "COMPILER_PATH",
    "LIBRARY_PATH",
    "TMPDIR",
    "RUSTC",
    "RUSTC_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
    "RUSTDOC",
];
const GUARDED_ENV_PREFIXES: &[&str] = &["LD_", "DYLD_", "GCC_", "CARGO", "WASMACRO_", "SCCACHE_"];

fn escape_error(escape: &Escape) -> String {
    format!(
        "in the wasmacro sandbox, the build script printed `{}`, through which what it wrote \
         would run outside the sandbox when cargo applies it\nhelp: a build script that needs \
         it can only run natively: add its package to `deny` in `[workspace.metadata.wasmacro]`",
        escape.0
    )
}

/// The directives of a script's output that wasmacro looks at (both
/// `cargo:` and `cargo::` forms).
#[derive(Debug, Default)]
struct Directives {
    changed: Vec<String>,
    env_changed: Vec<String>,
    /// Those that would run code outside the sandbox.
    escapes: Vec<Escape>,
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
            let (key, value) = rest.split_once('=').unwrap_or((rest, ""));
            match key {
                "rerun-if-changed" => directives.changed.push(value.to_string()),
                "rerun-if-env-changed" => directives.env_changed.push(value.to_string()),
                // Linker arguments can make the linker run any program.
                _ if key.starts_with("rustc-link-arg") || key == "rustc-cdylib-link-arg" => {
                    directives.escapes.push(Escape(line.to_string()));
                }
                "rustc-env" => {
                    let name = value.split_once('=').map_or(value, |(name, _)| name);
                    let guarded = GUARDED_ENV.contains(&name)
                        || GUARDED_ENV_PREFIXES.iter().any(|p| name.starts_with(p));
                    if guarded {
                        directives.escapes.push(Escape(line.to_string()));
                    }
                }
                _ => {}
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
    fn directives_that_would_run_code_outside_are_found() {
        let escapes = |out: &str| Directives::of(out).escapes;
        assert!(escapes("cargo::rustc-env=GENERATED=/o/x.rs\ncargo:rustc-link-lib=z\n").is_empty());
        for line in [
            "cargo::rustc-env=LD_PRELOAD=/o/p.so",
            "cargo:rustc-env=PATH=/o",
            "cargo::rustc-env=WASMACRO_CACHE_DIR=/o",
            "cargo::rustc-env=CARGO_MANIFEST_DIR=/",
            "cargo::rustc-link-arg=-Wl,--plugin=/o/p.so",
            "cargo:rustc-link-arg-bins=-fuse-ld=/o/ld",
            "cargo::rustc-cdylib-link-arg=-wrapper",
        ] {
            assert_eq!(escapes(line), [Escape(line.to_string())], "{line}");
        }
    }

    #[test]
    fn dependency_dirs_are_granted_below_the_build_directory_only() {
        let target = tempfile::tempdir().unwrap();
        let build = target.path().join("debug/build");
        let out = build.join("app-1/out");
        let include = build.join("z-sys-2/out/include");
        for dir in [&out, &include] {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::os::unix::fs::symlink("/", build.join("z-sys-2/out/root")).unwrap();
        let env = |value: &Path| vec![("DEP_Z_INCLUDE".to_string(), value.display().to_string())];
        let granted = |value: &Path| dependency_dirs(&env(value), &out);
        assert_eq!(
            granted(&include),
            [include.canonicalize().unwrap().display().to_string()]
        );
        assert!(granted(Path::new("/")).is_empty());
        assert!(granted(&build.join("z-sys-2/out/root")).is_empty());
        assert!(granted(&build).is_empty());
        assert!(granted(&include.join("../../../../..")).is_empty());
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
