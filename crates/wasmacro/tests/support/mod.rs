//! Shared machinery of the differential tests: the native dependencies built
//! once by cargo, components built once by `wasmacro build`, and rustc run on
//! the same program in both modes — directly with the native macro, and
//! through `wasmacro rustc` with the wasm component.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, OnceLock};

pub const SERDE_DERIVE: &str = "serde_derive@1.0.229";

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("fixtures")
}

fn scratch() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("wasmacro-tests")
}

/// A directory for files a test generates.
pub fn generated() -> PathBuf {
    let dir = scratch().join("generated");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The component cache every test shares (rebuilt from nothing on a clean
/// checkout; reused between test binaries of one run).
pub fn cache_dir() -> PathBuf {
    scratch().join("cache")
}

/// Selects the server for the shims `command`'s rustc loads (the default
/// is the runtime in process when its library is there). A test that picks
/// a transport wants the guest to run through it, so the expansion cache is
/// off: a result another test cached would answer without running.
pub fn server(command: &mut Command) -> &mut Command {
    command
        .env("WASMACRO_TRANSPORT", "server")
        .env("WASMACRO_EXPANSION_CACHE", "off")
        .env_remove("WASMACRO_RUNTIME")
}

/// Makes `command`'s rustc runs load the runtime library into rustc's
/// process, insisting on it (the library the tests' `wasmacro` has beside
/// it, built if missing); the expansion cache off, as for [`server`].
pub fn in_process(command: &mut Command) -> &mut Command {
    command
        .env("WASMACRO_TRANSPORT", "in-process")
        .env("WASMACRO_EXPANSION_CACHE", "off")
        .env("WASMACRO_RUNTIME", runtime_library())
}

/// The runtime library beside the `wasmacro` under test (built with the
/// workspace's libraries if it is not there: `cargo test` builds test
/// harnesses, not cdylibs).
pub fn runtime_library() -> PathBuf {
    static LIBRARY: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    LIBRARY
        .get_or_init(|| {
            let library = Path::new(env!("CARGO_BIN_EXE_wasmacro")).with_file_name(format!(
                "{}wasmacro_runtime{}",
                std::env::consts::DLL_PREFIX,
                std::env::consts::DLL_SUFFIX
            ));
            if !library.is_file() {
                let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
                // Beside a benchmark's `wasmacro`, the release build.
                let release = library.parent().is_some_and(|dir| dir.ends_with("release"));
                let status = Command::new(env!("CARGO"))
                    .current_dir(&root)
                    .args(["build", "--workspace", "--lib", "--locked"])
                    .args(release.then_some("--release"))
                    .status()
                    .expect("cargo runs");
                assert!(status.success(), "building the runtime library failed");
            }
            assert!(
                library.is_file(),
                "no runtime library at {}",
                library.display()
            );
            library
        })
        .clone()
}

pub fn wasmacro() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wasmacro"));
    command
        .env("WASMACRO_CACHE_DIR", cache_dir())
        .env_remove("RUSTC_WRAPPER")
        // A backtrace is shown only when asked for: not in comparisons.
        .env_remove("RUST_BACKTRACE");
    command
}

/// The native libraries and proc macros, from the fixture `deps` project.
pub struct NativeDeps {
    pub deps_dir: PathBuf,
    pub artifacts: BTreeMap<String, PathBuf>,
}

pub fn native() -> &'static NativeDeps {
    static DEPS: OnceLock<NativeDeps> = OnceLock::new();
    DEPS.get_or_init(|| {
        let target = scratch().join("native-target");
        let output = Command::new(env!("CARGO"))
            .current_dir(fixtures().join("deps"))
            .args(["build", "--message-format=json", "--target-dir"])
            .arg(&target)
            .env_remove("RUSTFLAGS")
            .env_remove("RUSTC_WRAPPER")
            .output()
            .expect("cargo runs");
        assert!(
            output.status.success(),
            "building the native fixtures failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        NativeDeps {
            deps_dir: target.join("debug").join("deps"),
            artifacts: cargo_artifacts(&output),
        }
    })
}

/// The library or proc-macro file of each crate a `cargo build
/// --message-format=json` built, by crate name (`-` as `_`).
pub fn cargo_artifacts(output: &Output) -> BTreeMap<String, PathBuf> {
    let mut artifacts = BTreeMap::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if message["reason"] != "compiler-artifact" {
            continue;
        }
        let name = message["target"]["name"]
            .as_str()
            .unwrap_or_default()
            .replace('-', "_");
        let file = message["filenames"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| f.as_str())
            .find(|f| {
                f.ends_with(".rlib")
                    || f.ends_with(".so")
                    || f.ends_with(".dylib")
                    || f.ends_with(".dll")
            });
        if let Some(file) = file {
            artifacts.insert(name, PathBuf::from(file));
        }
    }
    artifacts
}

/// Builds a component once per test binary: `spec` is `NAME@VERSION` from the
/// registry or a fixture directory name, with `#debug-info` for a component
/// that keeps its line tables.
pub fn component(spec: &str) -> PathBuf {
    static BUILT: Mutex<BTreeMap<String, PathBuf>> = Mutex::new(BTreeMap::new());
    let mut built = BUILT.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(path) = built.get(spec) {
        return path.clone();
    }
    let out = scratch()
        .join("components")
        .join(spec.replace(['@', '/', '#'], "-"));
    let mut command = wasmacro();
    command.arg("build").arg("--out-dir").arg(&out);
    let (spec_key, spec) = (spec, spec.trim_end_matches("#debug-info"));
    if spec != spec_key {
        command.arg("--debug-info");
    }
    let name = match spec.split_once('@') {
        Some((name, _)) => {
            command.args(["--crate", spec]);
            name.to_string()
        }
        None => {
            command.arg(fixtures().join(spec));
            // A package inside a fixture project: `project/package`.
            spec.rsplit('/').next().unwrap_or(spec).to_string()
        }
    };
    let output = command.output().expect("wasmacro runs");
    assert!(
        output.status.success(),
        "wasmacro build {spec} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let path = out.join(format!("{name}.wasm"));
    built.insert(spec_key.to_string(), path.clone());
    path
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    Native,
    Wasm,
}

pub struct Compiled {
    pub status: std::process::ExitStatus,
    /// rustc's stderr with the macro's path replaced by `$MACRO`.
    pub stderr: String,
    pub executable: PathBuf,
}

impl Compiled {
    pub fn run(&self) -> Output {
        Command::new(&self.executable)
            .output()
            .expect("the compiled program runs")
    }
}

/// Compiles `programs/<program>.rs` with the macro crates in `macros`
/// (crate name -> component spec) as native dylibs or as wasm components.
pub fn compile(mode: Mode, program: &str, macros: &[(&str, &str)]) -> Compiled {
    compile_with_env(mode, program, macros, &[])
}

/// [`compile`] with extra environment variables for rustc / wasmacro.
pub fn compile_with_env(
    mode: Mode,
    program: &str,
    macros: &[(&str, &str)],
    env: &[(&str, &str)],
) -> Compiled {
    compile_in(&fixtures().join("programs"), mode, program, macros, env)
}

/// [`compile_with_env`] for `<dir>/<program>.rs` (e.g. a generated program).
pub fn compile_in(
    dir: &Path,
    mode: Mode,
    program: &str,
    macros: &[(&str, &str)],
    env: &[(&str, &str)],
) -> Compiled {
    let deps = native();
    let out_dir = scratch().join("programs");
    std::fs::create_dir_all(&out_dir).unwrap();
    let variant: String = env
        .iter()
        .map(|(k, v)| format!("-{k}-{v}"))
        .collect::<String>()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let executable = out_dir.join(format!("{program}-{mode:?}{variant}").to_lowercase());
    let mut args: Vec<String> = vec![
        "--edition".into(),
        "2021".into(),
        "--crate-type".into(),
        "bin".into(),
        format!("{program}.rs"),
        "-o".into(),
        executable.display().to_string(),
        "-L".into(),
        format!("dependency={}", deps.deps_dir.display()),
    ];
    for lib in ["serde", "serde_json"] {
        args.push("--extern".into());
        args.push(format!("{lib}={}", deps.artifacts[lib].display()));
    }
    let mut replaced = Vec::new();
    for (crate_name, spec) in macros {
        let path = match mode {
            Mode::Native => deps.artifacts[*crate_name].clone(),
            Mode::Wasm => component(spec),
        };
        replaced.push(path.display().to_string());
        args.push("--extern".into());
        args.push(format!("{crate_name}={}", path.display()));
    }
    let mut command = match mode {
        Mode::Native => Command::new("rustc"),
        Mode::Wasm => {
            let mut command = wasmacro();
            command.args(["rustc", "rustc"]);
            command
        }
    };
    let output = command
        .current_dir(dir)
        .args(&args)
        .env_remove("RUSTC_WRAPPER")
        .envs(env.iter().copied())
        .output()
        .expect("rustc runs");
    let mut stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    for path in replaced {
        stderr = stderr.replace(&path, "$MACRO");
    }
    Compiled {
        status: output.status,
        stderr,
        executable,
    }
}

/// Asserts two texts are equal, showing the first differing line.
pub fn assert_same(what: &str, native: &str, wasm: &str) {
    if native == wasm {
        return;
    }
    let line = native
        .lines()
        .zip(wasm.lines())
        .position(|(a, b)| a != b)
        .unwrap_or(native.lines().count().min(wasm.lines().count()));
    panic!(
        "{what} differs at line {}:\n  native: {:?}\n  wasm:   {:?}\n--- native ---\n{native}\n--- wasm ---\n{wasm}",
        line + 1,
        native.lines().nth(line),
        wasm.lines().nth(line),
    );
}

/// Copies a directory tree, leaving out `target` directories.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        if entry.file_name() == "target" {
            continue;
        }
        let to = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to);
        } else {
            std::fs::copy(entry.path(), to).unwrap();
        }
    }
}

/// How `cargo_in` runs cargo: plainly, or as `cargo wasmacro`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cargo {
    Plain,
    Wasmacro,
}

/// A copy of a fixture project under the test scratch directory. Files are
/// written only when they differ, so cargo's fingerprints in the copy's
/// `target/` survive from one test run to the next.
pub fn project_copy(fixture: &str) -> PathBuf {
    let to = scratch().join("projects").join(fixture);
    sync_tree(&fixtures().join(fixture), &to);
    to
}

/// A copy of a fixture at `to`, for tests that need the same project at
/// several paths.
pub fn project_copy_at(fixture: &str, to: &Path) -> PathBuf {
    sync_tree(&fixtures().join(fixture), to);
    to.to_path_buf()
}

/// Makes `to` hold what `from` holds (but `target`), writing only what
/// differs; symlinks stay symlinks (fixtures use them as real projects do).
fn sync_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == "target" {
            continue;
        }
        let (from, to) = (entry.path(), to.join(&name));
        let file_type = entry.file_type().unwrap();
        if file_type.is_symlink() {
            let link = std::fs::read_link(&from).unwrap();
            if std::fs::read_link(&to).ok() != Some(link.clone()) {
                let _ = std::fs::remove_file(&to);
                std::os::unix::fs::symlink(&link, &to).unwrap();
            }
        } else if file_type.is_dir() {
            sync_tree(&from, &to);
        } else {
            let bytes = std::fs::read(&from).unwrap();
            if std::fs::read(&to).ok().as_deref() != Some(&bytes[..]) {
                std::fs::write(&to, bytes).unwrap();
            }
        }
    }
}

/// Runs `cargo ARGS` (or `cargo wasmacro ARGS`) in `dir`, isolated from the
/// environment of the cargo running the tests.
pub fn cargo_in(dir: &Path, mode: Cargo, args: &[&str]) -> Output {
    cargo_in_with::<&str>(dir, mode, args, &[])
}

/// [`cargo_in`] with more environment variables (a cache of its own, …).
pub fn cargo_in_with<V: AsRef<std::ffi::OsStr>>(
    dir: &Path,
    mode: Cargo,
    args: &[&str],
    env: &[(&str, V)],
) -> Output {
    let mut command = match mode {
        Cargo::Plain => Command::new(env!("CARGO")),
        Cargo::Wasmacro => {
            let mut command = wasmacro();
            command
                .arg("cargo")
                .env("WASMACRO_SUMMARY_JSON", summary_file(dir));
            command
        }
    };
    command
        .current_dir(dir)
        .args(args)
        .env("CARGO", env!("CARGO"))
        .env("CARGO_TERM_COLOR", "never")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTC_WRAPPER")
        .env_remove("WASMACRO_POLICY")
        .env_remove("WASMACRO_WORKSPACE");
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("cargo runs")
}

/// What a `--message-format=json` cargo run said: each target's rendered
/// compiler diagnostics (keyed `kind name`, in the order rustc gave them),
/// and every line that is not JSON (test harness output), with timings cut.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct CargoReport {
    pub diagnostics: BTreeMap<String, Vec<String>>,
    pub other: Vec<String>,
}

pub fn cargo_report(output: &Output) -> CargoReport {
    let mut report = CargoReport::default();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        match serde_json::from_str::<serde_json::Value>(line) {
            Ok(message) if message["reason"] == "compiler-message" => {
                let target = format!(
                    "{} {}",
                    message["target"]["kind"][0].as_str().unwrap_or("?"),
                    message["target"]["name"].as_str().unwrap_or("?")
                );
                let rendered = message["message"]["rendered"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                report.diagnostics.entry(target).or_default().push(rendered);
            }
            Ok(_) => {}
            Err(_) => {
                let line = match line.find("finished in ") {
                    Some(at) => &line[..at],
                    None => line,
                };
                report.other.push(line.to_string());
            }
        }
    }
    report
}

/// Builds a fixture's compile-fail examples (feature `compile-fail`, each
/// example one error a macro reports) with plain cargo and with `cargo
/// wasmacro`, and returns both reports; both builds must fail.
pub fn compile_fail_examples(dir: &Path) -> (CargoReport, CargoReport) {
    let args = [
        "build",
        "--locked",
        "--examples",
        "--features",
        "compile-fail",
        "--keep-going",
        "--message-format=json",
    ];
    let native = cargo_in(dir, Cargo::Plain, &args);
    let wasm = cargo_in(dir, Cargo::Wasmacro, &args);
    assert!(!native.status.success(), "{}", text(&native.stderr));
    assert!(!wasm.status.success(), "{}", text(&wasm.stderr));
    (cargo_report(&native), cargo_report(&wasm))
}

impl CargoReport {
    /// How many errors rustc reported for `target` (`kind name`).
    pub fn errors(&self, target: &str) -> usize {
        self.diagnostics
            .get(target)
            .map_or(0, |d| d.iter().filter(|d| d.starts_with("error")).count())
    }
}

/// Where [`cargo_in_with`] has `cargo wasmacro` in `dir` write its summary
/// as JSON: beside the project, where no build script's change detection
/// sees it.
fn summary_file(dir: &Path) -> PathBuf {
    let name = dir.file_name().unwrap_or_default().to_string_lossy();
    dir.with_file_name(format!("{name}.wasmacro-summary.json"))
}

/// Asserts that the summary of the last `cargo wasmacro` run in `dir` lists
/// each package of `names` as running as wasm.
pub fn assert_runs_as_wasm(dir: &Path, names: &[&str]) {
    let rows = summary(dir);
    for name in names {
        let row = rows
            .iter()
            .find(|(krate, _, _)| krate.split(" v").next() == Some(*name))
            .unwrap_or_else(|| panic!("{name} is not in the summary: {rows:#?}"));
        assert_eq!(row.1, "wasm", "{name}: {row:?}");
    }
}

/// The proc-macro rows of the last `cargo wasmacro` run's summary in `dir`,
/// read from its JSON: (crate, runs, why).
pub fn summary(dir: &Path) -> Vec<(String, String, String)> {
    summary_of_kind(dir, "proc-macro")
}

/// The rows of one kind (`proc-macro`, `build-script`) of the last `cargo
/// wasmacro` run's summary in `dir`: (crate, runs, why).
pub fn summary_of_kind(dir: &Path, kind: &str) -> Vec<(String, String, String)> {
    let path = summary_file(dir);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("no summary at {}: {e}", path.display()));
    let rows: Vec<serde_json::Value> = serde_json::from_str(&text).expect("the summary is JSON");
    rows.iter()
        .filter(|row| row["kind"] == kind)
        .map(|row| {
            let field = |name: &str| row[name].as_str().unwrap_or_default().to_string();
            (field("crate"), field("runs"), field("why"))
        })
        .collect()
}

/// The summary's (crate, expansions, hits) for the crates that ran as wasm,
/// from the summary `cargo_in` had written for `dir`.
pub fn summary_hits(dir: &Path) -> Vec<(String, u64, u64)> {
    summary_hits_at(&summary_file(dir))
}

/// [`summary_hits`] from the summary JSON at `path`.
pub fn summary_hits_at(path: &Path) -> Vec<(String, u64, u64)> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("no summary at {}: {e}", path.display()));
    let rows: Vec<serde_json::Value> = serde_json::from_str(&text).expect("the summary is JSON");
    rows.iter()
        .filter(|row| row["runs"] == "wasm" && row["kind"] == "proc-macro")
        .map(|row| {
            (
                row["crate"].as_str().unwrap_or_default().to_string(),
                row["expansions"].as_u64().unwrap_or(0),
                row["hits"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// What `cargo wasmacro` last recorded for a proc-macro crate (the JSON
/// record beside its artifact in `target/debug/deps`; cargo builds a crate
/// once per dependency graph, so there may be several): `None` if it was never
/// built under wasmacro.
pub fn unit_record(project: &Path, crate_name: &str) -> Option<serde_json::Value> {
    let deps = project.join("target/debug/deps");
    let prefix = format!("{crate_name}-");
    let newest = std::fs::read_dir(&deps)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "wasmacro")
                && p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(&prefix))
        })
        .max_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())?;
    let text = std::fs::read_to_string(newest).ok()?;
    Some(serde_json::from_str(&text).expect("a unit record is JSON"))
}
