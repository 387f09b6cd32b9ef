//! `cargo bench -p wasmacro --bench macros [-- --runs N]`: how fast macros
//! run as wasm, measured side by side in one run, printed as medians and
//! ratios. Never a timed test: nothing here fails on a number.
//!
//! 1. **Expansion.** A generated corpus of 500 structs and enums of realistic
//!    shapes, each deriving `Serialize` and `Deserialize` (1,000 expansions),
//!    is compiled by rustc (`--emit=metadata`) with serde_derive native
//!    (optimised, and as cargo builds proc macros by default: `opt-level = 0`), as a
//!    wasmacro component, and — for serde_derive 1.0.137 — as watt's
//!    `wa-serde-derive`. rustc's own `-Z time-passes` (`RUSTC_BOOTSTRAP=1`,
//!    for measuring only) reports `expand_crate`, the phase that runs the
//!    macros; the same corpus without derives gives the baseline subtracted.
//!    The wasmacro component also runs on wasmtime's Pulley interpreter
//!    (`WASMACRO_BACKEND=pulley`).
//! 2. **Whole builds.** `cargo build` of a project whose library is that
//!    corpus, from an empty target directory: plain cargo against `cargo
//!    wasmacro build` with the component cache warm, and (`--cold`) once with
//!    an empty cache.
//! 3. **Fixed costs**, in process with `wasmacro-host`: starting the runtime,
//!    loading precompiled code from the cache, instantiating, one minimal
//!    expansion.
//! 4. **The server's side alone**, in process: the corpus's 1,000 expansions
//!    through `MacroInstance::expand` (lowering, guest, lifting) on Cranelift
//!    and on Pulley, and as framed messages through the server loop. Section
//!    1 minus this is what the shim, the pipe and the second process cost.
//!
//! `--only expansion|builds|fixed|server` runs one section (`server` takes
//! `--component PATH` to measure another build of serde_derive 1.0.229, and
//! `--backend cranelift|pulley`).
//!
//! Runs are interleaved across variants so that drift of the machine hits
//! all of them alike.

// The tests' shared machinery: how native dependencies are found.
#[path = "../tests/support/mod.rs"]
mod support;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use support::NativeDeps;

const TYPES: usize = 500;

/// Where section 1's baselines (the corpus without derives) sit among its
/// variants.
const BASE_229: usize = 0;
const BASE_137: usize = 4;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let runs: usize = args
        .iter()
        .position(|a| a == "--runs")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(7);
    let work = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bench");
    std::fs::create_dir_all(&work).expect("a work directory");
    let cache = work.join("cache");

    print_machine();
    println!("\nsetting up (native dependencies, components; the first run builds them)…");
    let projects = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("benches")
        .join("projects");
    let deps_229 = build_native_deps(
        &projects.join("serde-1.0.229"),
        &work.join("target-229"),
        Profile::Optimised,
    );
    let deps_229_default = build_native_deps(
        &projects.join("serde-1.0.229"),
        &work.join("target-229-default"),
        Profile::CargoDefault,
    );
    let deps_137 = build_native_deps(
        &projects.join("serde-1.0.137"),
        &work.join("target-137"),
        Profile::Optimised,
    );
    let component_229 = component("serde_derive@1.0.229", &work, &cache);
    let component_137 = component("serde_derive@1.0.137", &work, &cache);

    let corpus = work.join("corpus");
    std::fs::create_dir_all(&corpus).unwrap();
    std::fs::write(
        corpus.join("derives.rs"),
        corpus_source("serde_derive", true),
    )
    .unwrap();
    std::fs::write(
        corpus.join("watt.rs"),
        corpus_source("wa_serde_derive", true),
    )
    .unwrap();
    std::fs::write(
        corpus.join("plain.rs"),
        corpus_source("serde_derive", false),
    )
    .unwrap();

    let component_229 = component_229.unwrap_or_else(|e| panic!("serde_derive 1.0.229: {e}"));
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .map(String::as_str);
    match only {
        None | Some("expansion") => {}
        Some("builds") => {
            let cold = args.iter().any(|a| a == "--cold");
            return whole_builds(&projects, &work, &cache, runs.min(3), cold);
        }
        Some("fixed") => return fixed_costs(&cache, &component_229),
        Some("server") => {
            let component = args
                .iter()
                .position(|a| a == "--component")
                .and_then(|i| args.get(i + 1))
                .map_or(component_229, PathBuf::from);
            let backend = args
                .iter()
                .position(|a| a == "--backend")
                .and_then(|i| args.get(i + 1))
                .map(|b| b.parse().expect("--backend takes cranelift or pulley"));
            return server_side(&cache, &component, runs, backend);
        }
        Some(other) => panic!("--only takes expansion, builds, fixed or server, not {other}"),
    }
    let mut variants = vec![
        Variant::new(
            "baseline (no derives), 1.0.229",
            &deps_229,
            "plain.rs",
            Macro::None,
        ),
        Variant::new(
            "native serde_derive 1.0.229",
            &deps_229,
            "derives.rs",
            Macro::Native("serde_derive"),
        ),
        Variant::new(
            "wasmacro serde_derive 1.0.229",
            &deps_229,
            "derives.rs",
            Macro::Wasm(component_229.clone(), "cranelift"),
        ),
        Variant::new(
            "native 1.0.229, cargo's opt-level 0",
            &deps_229_default,
            "derives.rs",
            Macro::Native("serde_derive"),
        ),
        Variant::new(
            "baseline (no derives), 1.0.137",
            &deps_137,
            "plain.rs",
            Macro::None,
        ),
        Variant::new(
            "native serde_derive 1.0.137",
            &deps_137,
            "derives.rs",
            Macro::Native("serde_derive"),
        ),
        Variant::new(
            "watt wa-serde-derive 0.1.137",
            &deps_137,
            "watt.rs",
            Macro::Native("wa_serde_derive"),
        ),
    ];
    match component_137 {
        Ok(component) => variants.push(Variant::new(
            "wasmacro serde_derive 1.0.137",
            &deps_137,
            "derives.rs",
            Macro::Wasm(component, "cranelift"),
        )),
        Err(e) => println!("wasmacro serde_derive 1.0.137 cannot be built: {e}"),
    }
    variants.push(Variant::new(
        "wasmacro 1.0.229 in process",
        &deps_229,
        "derives.rs",
        Macro::WasmInProcess(component_229.clone()),
    ));
    variants.push(Variant::new(
        "wasmacro 1.0.229, all cached",
        &deps_229,
        "derives.rs",
        Macro::WasmCached(component_229.clone()),
    ));
    variants.push(Variant::new(
        "wasmacro 1.0.229 on Pulley",
        &deps_229,
        "derives.rs",
        Macro::Wasm(component_229.clone(), "pulley"),
    ));
    // One unmeasured run each: shims, precompiled code and the page cache.
    for variant in &variants {
        variant.compile(&corpus, &cache);
    }
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); variants.len()];
    for run in 0..runs {
        eprint!("\rrun {}/{runs}", run + 1);
        for (variant, samples) in variants.iter().zip(&mut samples) {
            samples.push(variant.compile(&corpus, &cache));
        }
    }
    eprintln!();
    let medians: Vec<(Duration, Duration)> = samples
        .iter()
        .map(|s| {
            (
                median(s.iter().map(|s| s.expand).collect()),
                median(s.iter().map(|s| s.total).collect()),
            )
        })
        .collect();

    let expansions = 2 * TYPES;
    println!(
        "\n1. Expansion: {TYPES} types x (Serialize + Deserialize) = {expansions} expansions; \
         medians of {runs} runs\n"
    );
    println!(
        "{:<32} {:>12} {:>14} {:>16} {:>12}",
        "variant", "expand_crate", "net of base", "per expansion", "rustc total"
    );
    let net = |i: usize, base: usize| medians[i].0.saturating_sub(medians[base].0);
    // Each variant is measured net of the baseline of its serde version.
    let base_of = |variant: &Variant| {
        if variant.deps.deps_dir == deps_137.deps_dir {
            BASE_137
        } else {
            BASE_229
        }
    };
    for (i, variant) in variants.iter().enumerate() {
        let base = base_of(variant);
        let (per, net_text) = if i == base {
            ("-".to_string(), "-".to_string())
        } else {
            let net = net(i, base);
            (
                format!("{:.1} µs", net.as_secs_f64() * 1e6 / expansions as f64),
                ms(net),
            )
        };
        println!(
            "{:<32} {:>12} {:>14} {:>16} {:>12}",
            variant.name,
            ms(medians[i].0),
            net_text,
            per,
            ms(medians[i].1)
        );
    }
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64().max(1e-9);
    println!();
    println!(
        "wasmacro / native, serde_derive 1.0.229: {:.2}",
        ratio(net(2, 0), net(1, 0))
    );
    println!(
        "wasmacro / native at cargo's default opt-level 0, 1.0.229: {:.2}",
        ratio(net(2, 0), net(3, 0))
    );
    println!(
        "watt / native,     serde_derive 1.0.137: {:.2}",
        ratio(net(6, BASE_137), net(5, BASE_137))
    );
    println!(
        "watt / wasmacro,   serde_derive 1.0.137 vs 1.0.229: {:.1}",
        ratio(net(6, BASE_137), net(2, 0))
    );
    let index = |name: &str| variants.iter().position(|v| v.name == name);
    if let Some(i) = index("wasmacro serde_derive 1.0.137") {
        println!(
            "wasmacro / native, serde_derive 1.0.137: {:.2}",
            ratio(net(i, BASE_137), net(5, BASE_137))
        );
        println!(
            "watt / wasmacro,   serde_derive 1.0.137: {:.1}",
            ratio(net(6, BASE_137), net(i, BASE_137))
        );
    }
    if let Some(i) = index("wasmacro 1.0.229 in process") {
        println!(
            "in process / native, serde_derive 1.0.229: {:.2}",
            ratio(net(i, 0), net(1, 0))
        );
        println!(
            "in process / native at opt-level 0, 1.0.229: {:.2}",
            ratio(net(i, 0), net(3, 0))
        );
        println!(
            "in process / server, serde_derive 1.0.229: {:.2}",
            ratio(net(i, 0), net(2, 0))
        );
    }
    if let Some(i) = index("wasmacro 1.0.229, all cached") {
        println!(
            "all cached / native, serde_derive 1.0.229: {:.2}",
            ratio(net(i, 0), net(1, 0))
        );
        // rustc's own work on a macro's result (parsing it, expanding
        // what it contains) is part of every variant's `expand_crate`; the
        // shim times its side of the bridge (flatten, runtime, rebuild), so
        // the rest of a cached run is rustc's, and the native macro's own
        // time is what native spends beyond that.
        let shim = shim_time(&variants[i], &corpus, &cache, runs);
        let rustc_own = net(i, 0).saturating_sub(shim);
        let native_macro = net(1, 0).saturating_sub(rustc_own);
        let native_default_macro = net(3, 0).saturating_sub(rustc_own);
        let per = |d: Duration| format!("{:.1} µs", d.as_secs_f64() * 1e6 / expansions as f64);
        println!(
            "  a hit, the macro's side of the bridge: {} per expansion; rustc's own work on \
             the result: {}; so the native macro's side: {} optimised, {} at opt-level 0",
            per(shim),
            per(rustc_own),
            per(native_macro),
            per(native_default_macro)
        );
        println!(
            "  a hit / the native macro, its side of the bridge: {:.2} optimised, {:.2} at \
             opt-level 0",
            ratio(shim, native_macro),
            ratio(shim, native_default_macro)
        );
    }
    if let Some(i) = index("wasmacro 1.0.229 on Pulley") {
        println!(
            "Pulley / native,   serde_derive 1.0.229: {:.1}",
            ratio(net(i, 0), net(1, 0))
        );
        println!(
            "Pulley / Cranelift, serde_derive 1.0.229: {:.1}",
            ratio(net(i, 0), net(2, 0))
        );
    }

    if only.is_some() {
        return;
    }
    whole_builds(
        &projects,
        &work,
        &cache,
        runs.min(3),
        args.iter().any(|a| a == "--cold"),
    );
    fixed_costs(&cache, &component_229);
    server_side(&cache, &component_229, runs, None);
}

/// Section 2: whole `cargo build`s of the corpus as a crate.
/// How a whole build runs its macros.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Plain cargo, native serde_derive.
    Native,
    /// `cargo wasmacro`, a server per rustc.
    Server,
    /// `cargo wasmacro`, the runtime in rustc's process.
    InProcess,
    /// `cargo wasmacro` as a user runs it: in process, the expansion cache
    /// on (the other wasm modes turn it off, to measure running macros).
    Cached,
}

const MODES: [Mode; 4] = [Mode::Native, Mode::Server, Mode::InProcess, Mode::Cached];

fn whole_builds(projects: &Path, work: &Path, cache: &Path, runs: usize, cold: bool) {
    let project = work.join("build-corpus");
    let source = projects.join("serde-1.0.229");
    std::fs::create_dir_all(project.join("src")).unwrap();
    for file in ["Cargo.toml", "Cargo.lock"] {
        std::fs::copy(source.join(file), project.join(file)).unwrap();
    }
    let lib = project.join("src/lib.rs");
    let corpus = corpus_source("serde_derive", true);
    std::fs::write(&lib, &corpus).unwrap();
    let target = |mode: Mode| work.join(format!("build-corpus-target-{mode:?}"));
    let summary = work.join("build-corpus-summary.json");
    // One build of `mode` in its own target directory; `clean` empties it
    // first.
    let build = |mode: Mode, cache: &Path, clean: bool| -> Duration {
        let target = target(mode);
        if clean {
            let _ = std::fs::remove_dir_all(&target);
        }
        let mut command = match mode {
            Mode::Native => Command::new(env!("CARGO")),
            Mode::Server | Mode::InProcess | Mode::Cached => {
                let mut command = wasmacro(cache);
                command.arg("cargo");
                match mode {
                    Mode::Server => support::server(&mut command),
                    Mode::InProcess => support::in_process(&mut command),
                    _ => support::in_process(&mut command)
                        .env("WASMACRO_EXPANSION_CACHE", "on")
                        .env("WASMACRO_SUMMARY_JSON", &summary),
                };
                command
            }
        };
        command
            .current_dir(&project)
            .args(["build", "--locked", "--quiet", "--target-dir"])
            .arg(&target)
            .env("CARGO", env!("CARGO"))
            .env_remove("RUSTC_WRAPPER")
            .env_remove("RUSTFLAGS");
        let started = Instant::now();
        let output = command.output().expect("cargo runs");
        let elapsed = started.elapsed();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        elapsed
    };
    // Warm the component cache (and cargo's registry) once.
    build(Mode::Server, cache, true);
    let mut whole: Vec<Vec<Duration>> = vec![Vec::new(); MODES.len()];
    for _ in 0..runs {
        for (mode, samples) in MODES.iter().zip(&mut whole) {
            samples.push(build(*mode, cache, true));
        }
    }
    // The loop users live in: one type edited, the crate rebuilt (every
    // derive expanded again, natively), dependencies fresh.
    let mut edits: Vec<Vec<Duration>> = vec![Vec::new(); MODES.len()];
    let (mut hits, mut expansions) = (0, 0);
    for run in 0..runs.max(5) {
        for (mode, samples) in MODES.iter().zip(&mut edits) {
            // A field added to one type in the middle: everything after it
            // moves.
            let edited = corpus.replacen(
                "pub struct Record250 {\n",
                &format!("pub struct Record250 {{\n    pub edit_{run}_{mode:?}: u8,\n"),
                1,
            );
            assert_ne!(edited, corpus, "the corpus has no Record250");
            std::fs::write(&lib, edited).unwrap();
            samples.push(build(*mode, cache, false));
            if *mode == Mode::Cached {
                let rows: Vec<serde_json::Value> =
                    serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
                for row in rows {
                    hits += row["hits"].as_u64().unwrap_or(0);
                    expansions += row["expansions"].as_u64().unwrap_or(0);
                }
            }
        }
    }
    std::fs::write(&lib, &corpus).unwrap();
    let print = |title: String, samples: Vec<Vec<Duration>>| {
        println!("\n{title}\n");
        let medians: Vec<Duration> = samples.iter().map(|s| median(s.clone())).collect();
        for (i, mode) in MODES.iter().enumerate() {
            let name = match mode {
                Mode::Native => "plain cargo build",
                Mode::Server => "cargo wasmacro build, server",
                Mode::InProcess => "cargo wasmacro build, in process",
                Mode::Cached => "cargo wasmacro build, expansion cache",
            };
            let (low, high) = range(&samples[i]);
            println!(
                "{name:<44} {:>10}   {:.2} x native   (range {:.2}–{:.2} s)",
                format!("{:.2} s", medians[i].as_secs_f64()),
                medians[i].as_secs_f64() / medians[0].as_secs_f64(),
                low.as_secs_f64(),
                high.as_secs_f64()
            );
        }
    };
    print(
        format!(
            "2. Whole `cargo build` (dev profile) of the corpus crate from an empty target \
             directory, warm component cache (and, for the last, warm expansion cache), \
             medians of {runs}"
        ),
        whole,
    );
    print(
        format!(
            "2b. Edit -> rebuild: one type of src/lib.rs edited, the crate rebuilt, medians of {}",
            runs.max(5)
        ),
        edits,
    );
    println!(
        "expansion cache hits in the loop: {hits} of {expansions} ({:.1}%)",
        100.0 * hits as f64 / expansions.max(1) as f64
    );
    if cold {
        let empty = tempfile::tempdir().unwrap();
        let cold = build(Mode::Server, empty.path(), true);
        println!(
            "{:<44} {:>10}",
            "cargo wasmacro build, empty component cache",
            format!("{:.2} s (one run)", cold.as_secs_f64()),
        );
    }
}

fn range(samples: &[Duration]) -> (Duration, Duration) {
    let low = samples.iter().min().copied().unwrap_or_default();
    let high = samples.iter().max().copied().unwrap_or_default();
    (low, high)
}

fn print_machine() {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let rustc = Command::new("rustc")
        .arg("-V")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    println!("machine: {cpu}, {cores} cores; {rustc}; wasmtime 48 (Cranelift)");
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values.get(values.len() / 2).copied().unwrap_or_default()
}

/// How the native proc macros are compiled.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Profile {
    /// `opt-level = 3`, the fastest native macro (the bench projects set it).
    Optimised,
    /// What cargo builds by default, in debug and release alike: proc macros
    /// and their dependencies under `build-override`, `opt-level = 0`.
    CargoDefault,
}

/// Native libraries and proc macros built by cargo from a fixed lockfile.
fn build_native_deps(project: &Path, target: &Path, profile: Profile) -> NativeDeps {
    let mut command = Command::new(env!("CARGO"));
    if profile == Profile::CargoDefault {
        command.args(["--config", "profile.release.build-override.opt-level=0"]);
    }
    let output = command
        .current_dir(project)
        .args([
            "build",
            "--release",
            "--locked",
            "--message-format=json",
            "--target-dir",
        ])
        .arg(target)
        .env_remove("RUSTC_WRAPPER")
        .env_remove("RUSTFLAGS")
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "building {}:\n{}",
        project.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    NativeDeps {
        deps_dir: target.join("release").join("deps"),
        artifacts: support::cargo_artifacts(&output),
    }
}

fn artifact<'a>(deps: &'a NativeDeps, name: &str) -> &'a Path {
    deps.artifacts
        .get(name)
        .unwrap_or_else(|| panic!("no artifact {name}"))
}

fn wasmacro(cache: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wasmacro"));
    command
        .env("WASMACRO_CACHE_DIR", cache)
        .env_remove("RUSTC_WRAPPER")
        .env_remove("WASMACRO_LIMITS");
    command
}

/// `wasmacro build --crate SPEC` into the bench's cache (once), or the first
/// error of a build that fails.
fn component(spec: &str, work: &Path, cache: &Path) -> Result<PathBuf, String> {
    let out = work.join("components").join(spec.replace('@', "-"));
    let output = wasmacro(cache)
        .args(["build", "--crate", spec, "--out-dir"])
        .arg(&out)
        .output()
        .expect("wasmacro runs");
    if output.status.success() {
        return Ok(out.join("serde_derive.wasm"));
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    Err(stderr
        .lines()
        .find(|l| l.contains(": error:"))
        .unwrap_or("the build failed")
        .trim()
        .to_string())
}

enum Macro {
    None,
    Native(&'static str),
    /// A component, and the `WASMACRO_BACKEND` that runs it.
    Wasm(PathBuf, &'static str),
    /// A component, run by the runtime library inside rustc's process.
    WasmInProcess(PathBuf),
    /// The same, with the expansion cache on: after the unmeasured first
    /// run, every expansion is a hit.
    WasmCached(PathBuf),
}

struct Variant<'a> {
    name: &'static str,
    deps: &'a NativeDeps,
    source: &'static str,
    macro_crate: Macro,
}

#[derive(Clone, Copy)]
struct Sample {
    expand: Duration,
    total: Duration,
}

impl<'a> Variant<'a> {
    fn new(
        name: &'static str,
        deps: &'a NativeDeps,
        source: &'static str,
        macro_crate: Macro,
    ) -> Self {
        Variant {
            name,
            deps,
            source,
            macro_crate,
        }
    }

    fn compile(&self, corpus: &Path, cache: &Path) -> Sample {
        self.compile_with(corpus, cache, &[])
    }

    fn compile_with(&self, corpus: &Path, cache: &Path, env: &[(&str, &Path)]) -> Sample {
        let mut command = match &self.macro_crate {
            Macro::Wasm(_, backend) => {
                let mut command = wasmacro(cache);
                support::server(&mut command);
                command.env("WASMACRO_BACKEND", backend);
                command.args(["rustc", "rustc"]);
                command
            }
            Macro::WasmInProcess(_) => {
                let mut command = wasmacro(cache);
                support::in_process(&mut command);
                command.args(["rustc", "rustc"]);
                command
            }
            Macro::WasmCached(_) => {
                let mut command = wasmacro(cache);
                support::in_process(&mut command);
                command
                    .env("WASMACRO_EXPANSION_CACHE", "on")
                    .args(["rustc", "rustc"]);
                command
            }
            _ => Command::new("rustc"),
        };
        let out = corpus.join(format!(
            "out-{}",
            self.name.replace([' ', ',', '(', ')'], "_")
        ));
        command
            .current_dir(corpus)
            .env("RUSTC_BOOTSTRAP", "1")
            .args([
                "--edition",
                "2021",
                "--crate-type",
                "lib",
                "--emit=metadata",
                "-Z",
                "time-passes",
            ])
            .arg(self.source)
            .arg("--out-dir")
            .arg(&out)
            .arg("-L")
            .arg(format!("dependency={}", self.deps.deps_dir.display()))
            .arg("--extern")
            .arg(format!("serde={}", artifact(self.deps, "serde").display()));
        match &self.macro_crate {
            Macro::None => {}
            Macro::Native(name) => {
                command
                    .arg("--extern")
                    .arg(format!("{name}={}", artifact(self.deps, name).display()));
            }
            Macro::Wasm(component, _)
            | Macro::WasmInProcess(component)
            | Macro::WasmCached(component) => {
                command
                    .arg("--extern")
                    .arg(format!("serde_derive={}", component.display()));
            }
        }
        command.envs(env.iter().copied());
        let started = Instant::now();
        let output = command.output().expect("rustc runs");
        let total = started.elapsed();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{}:\n{stderr}", self.name);
        let expand = stderr
            .lines()
            .find(|l| {
                l.trim_end().ends_with("\texpand_crate") || l.trim_end().ends_with(" expand_crate")
            })
            .and_then(|l| l.strip_prefix("time:"))
            .and_then(|l| l.split(';').next())
            .and_then(|secs| secs.trim().parse::<f64>().ok())
            .unwrap_or_else(|| panic!("no expand_crate time in:\n{stderr}"));
        Sample {
            expand: Duration::from_secs_f64(expand),
            total,
        }
    }
}

/// The median total over `runs` compilations of the time the shim reports
/// for its side of each expansion (`WASMACRO_SHIM_TIMES`).
fn shim_time(variant: &Variant, corpus: &Path, cache: &Path, runs: usize) -> Duration {
    let times = tempfile::NamedTempFile::new().unwrap();
    let mut totals = Vec::new();
    for _ in 0..runs {
        std::fs::write(times.path(), "").unwrap();
        variant.compile_with(corpus, cache, &[("WASMACRO_SHIM_TIMES", times.path())]);
        let nanos: u64 = std::fs::read_to_string(times.path())
            .unwrap()
            .lines()
            .filter_map(|l| l.parse::<u64>().ok())
            .sum();
        totals.push(Duration::from_nanos(nanos));
    }
    median(totals)
}

/// A deterministic generator (64-bit LCG): the corpus is the same on every
/// machine and run.
struct Shapes(u64);

impl Shapes {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// 500 types the way serde users write them: plain structs, structs with
/// renames, defaults, skips, options and collections, generic and borrowing
/// structs, newtypes, and enums with every variant kind and tagging style.
fn corpus_source(macro_crate: &str, derive: bool) -> String {
    const FIELD_TYPES: [&str; 10] = [
        "u32",
        "i64",
        "bool",
        "String",
        "f64",
        "Option<String>",
        "Vec<u8>",
        "Vec<String>",
        "std::collections::BTreeMap<String, u64>",
        "Option<Vec<(u16, char)>>",
    ];
    let mut shapes = Shapes(0x5eed);
    let mut out =
        String::from("#![allow(dead_code)]\n//! Generated by benches/macros.rs: do not edit.\n");
    if derive {
        writeln!(out, "use {macro_crate}::{{Deserialize, Serialize}};").unwrap();
    }
    let derives = if derive {
        "#[derive(Serialize, Deserialize)]\n"
    } else {
        ""
    };
    let serde = |attr: &str| {
        if derive {
            format!("#[serde({attr})]\n")
        } else {
            String::new()
        }
    };
    for i in 0..TYPES {
        match i % 10 {
            0..=4 => {
                // A record struct, sometimes renamed as a whole.
                out.push_str(derives);
                if shapes.next(3) == 0 {
                    out.push_str(&serde("rename_all = \"camelCase\""));
                }
                writeln!(out, "pub struct Record{i} {{").unwrap();
                for f in 0..3 + shapes.next(12) {
                    let ty = FIELD_TYPES[shapes.next(FIELD_TYPES.len() as u64) as usize];
                    match shapes.next(8) {
                        0 => out.push_str(&serde("default")),
                        1 if ty.starts_with("Option") => {
                            out.push_str(&serde("skip_serializing_if = \"Option::is_none\""))
                        }
                        2 => out.push_str(&serde(&format!("rename = \"field-{f}\""))),
                        _ => {}
                    }
                    writeln!(out, "    pub field_{f}: {ty},").unwrap();
                }
                out.push_str("}\n");
            }
            5 => {
                out.push_str(derives);
                writeln!(out, "pub struct Borrowed{i}<'a> {{").unwrap();
                out.push_str(&serde("borrow"));
                out.push_str(
                    "    pub name: &'a str,\n    pub id: u64,\n    pub tags: Vec<String>,\n}\n",
                );
            }
            6 => {
                out.push_str(derives);
                writeln!(
                    out,
                    "pub struct Generic{i}<T> {{\n    pub items: Vec<T>,\n    pub count: usize,\n    pub label: Option<String>,\n}}"
                )
                .unwrap();
            }
            7 => {
                out.push_str(derives);
                writeln!(out, "pub struct Id{i}(pub u64);").unwrap();
            }
            8 => {
                // An enum with every variant kind, externally or internally tagged.
                out.push_str(derives);
                if shapes.next(2) == 0 {
                    out.push_str(&serde("tag = \"type\""));
                    writeln!(
                        out,
                        "pub enum Event{i} {{\n    Started,\n    Progress {{ done: u32, total: u32 }},\n    Failed {{ reason: String, code: Option<i32> }},\n}}"
                    )
                    .unwrap();
                } else {
                    writeln!(
                        out,
                        "pub enum Event{i} {{\n    Started,\n    Progress(u32, u32),\n    Named {{ name: String }},\n    Wrapped(Vec<String>),\n}}"
                    )
                    .unwrap();
                }
            }
            _ => {
                out.push_str(derives);
                out.push_str(&serde("untagged"));
                writeln!(
                    out,
                    "pub enum Value{i} {{\n    Number(f64),\n    Text(String),\n    List(Vec<u32>),\n}}"
                )
                .unwrap();
            }
        }
    }
    out
}

/// Section 3 of the issue: the costs every rustc process or every expansion
/// pays whatever the macro does.
fn fixed_costs(cache: &Path, component: &Path) {
    use wasmacro_host::{CacheDir, Runtime, RuntimeConfig};

    let component = std::fs::read(component).expect("the serde_derive component");
    let runs = 21;
    let mut start = Vec::new();
    let mut load = Vec::new();
    let mut instantiate = Vec::new();
    let mut round_trip = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let runtime = Runtime::new(CacheDir::new(cache), RuntimeConfig::default()).unwrap();
        start.push(t.elapsed());
        let hash = runtime.cache().insert(&component).unwrap();
        let t = Instant::now();
        let loaded = runtime.load(&hash).unwrap();
        load.push(t.elapsed());
        let t = Instant::now();
        let mut instance = loaded.instantiate().unwrap();
        instantiate.push(t.elapsed());
        let t = Instant::now();
        let request = wasmacro_protocol::ExpandRequest {
            macro_name: "Serialize".into(),
            input: unit_struct_tokens(),
            attribute_args: None,
            call_site: 0,
            mixed_site: 1,
        };
        let (result, _, _) = instance.expand(&request, Box::new(NoSpans));
        round_trip.push(t.elapsed());
        assert!(result.is_ok(), "{:?}", result.err());
    }
    println!("\n3. Fixed costs, in process (medians of {runs})\n");
    for (what, samples) in [
        ("start the runtime (engine, linker)", start),
        ("load precompiled serde_derive from the cache", load),
        ("instantiate", instantiate),
        ("one small expansion (`struct A;`, Serialize)", round_trip),
    ] {
        println!(
            "{what:<48} {:>10.3} ms",
            median(samples).as_secs_f64() * 1e3
        );
    }
}

/// `struct A;` as protocol tokens.
fn unit_struct_tokens() -> Vec<wasmacro_protocol::Token> {
    use wasmacro_protocol::Token;
    vec![
        Token::Ident {
            name: "struct".into(),
            is_raw: false,
            span: 0,
        },
        Token::Ident {
            name: "A".into(),
            is_raw: false,
            span: 0,
        },
        Token::Punct {
            ch: ';',
            joint: false,
            span: 0,
        },
    ]
}

/// serde_derive asks no span questions for `struct A;`.
struct NoSpans;

impl wasmacro_host::SpanOracle for NoSpans {
    fn query(
        &mut self,
        query: wasmacro_protocol::SpanQuery,
    ) -> Result<wasmacro_protocol::SpanAnswer, wasmacro_host::SpanOracleError> {
        Err(wasmacro_host::SpanOracleError(format!(
            "unexpected {query:?}"
        )))
    }
}

/// Section 4: the server's side of each corpus expansion, in process and
/// without rustc: lowering the tokens into the guest, running serde_derive,
/// lifting its output, on each backend. What section 1 adds to this is the
/// shim's side and the pipe.
fn server_side(cache: &Path, component: &Path, runs: usize, only: Option<wasmacro_host::Backend>) {
    use wasmacro_host::{Backend, CacheDir, Runtime, RuntimeConfig};

    let requests = corpus_requests();
    let component = std::fs::read(component).expect("the serde_derive component");
    println!(
        "\n4. The server's side alone, in process: {} expansions of serde_derive 1.0.229 \
         ({} tokens in), medians\n",
        requests.len(),
        requests.iter().map(|r| r.input.len()).sum::<usize>()
    );
    let mut cranelift = None;
    // Pulley is an order of magnitude slower: fewer runs.
    for (backend, runs) in [(Backend::Cranelift, runs), (Backend::Pulley, runs.min(3))] {
        if only.is_some_and(|only| only != backend) {
            continue;
        }
        let config = RuntimeConfig {
            backend,
            ..RuntimeConfig::default()
        };
        let runtime = Runtime::new(CacheDir::new(cache), config).unwrap();
        let hash = runtime.cache().insert(&component).unwrap();
        let loaded = runtime.load(&hash).unwrap();
        let mut instance = loaded.instantiate().unwrap();
        let mut samples = Vec::new();
        let mut fuel = 0;
        // One unmeasured pass: the guest's allocator and lazy statics warm
        // up the way they do over a compilation.
        for pass in 0..=runs {
            let started = Instant::now();
            fuel = 0;
            for request in &requests {
                let (result, _, _) = instance.expand(request, Box::new(AnySpans));
                result.unwrap_or_else(|e| panic!("{e}"));
                fuel += instance.fuel_used();
            }
            if pass > 0 {
                samples.push(started.elapsed());
            }
        }
        let expanded = median(samples);
        let ratio = match cranelift {
            None => {
                cranelift = Some(expanded);
                String::new()
            }
            Some(base) => format!(
                "{:.1} x Cranelift",
                expanded.as_secs_f64() / Duration::as_secs_f64(&base)
            ),
        };
        println!(
            "{:<40} {:>10} {:>12} {:>18}",
            format!("{} (median of {runs})", backend.name()),
            ms(expanded),
            format!(
                "{:.1} µs",
                expanded.as_secs_f64() * 1e6 / requests.len() as f64
            ),
            ratio
        );
        // The same count on both backends: fuel is what makes limits
        // deterministic.
        println!(
            "{:<40} {:>10}",
            "  wasm instructions (fuel) per expansion",
            fuel / requests.len() as u64
        );
        if backend == Backend::Cranelift {
            // The same expansions as framed messages through the server's
            // loop, in memory: adds decoding, validating and encoding.
            let mut stream = Vec::new();
            let hello = wasmacro_protocol::ShimMessage::Hello(wasmacro_protocol::Hello {
                version: wasmacro_protocol::PROTOCOL_VERSION,
                component: hash.to_string(),
                crate_name: "serde_derive".into(),
                grants: Default::default(),
                stateless: false,
            });
            wasmacro_protocol::write_frame(&mut stream, &hello.encode()).unwrap();
            for request in &requests {
                let message = wasmacro_protocol::ShimMessage::Expand(request.clone());
                wasmacro_protocol::write_frame(&mut stream, &message.encode()).unwrap();
            }
            let mut served = Vec::new();
            for pass in 0..=runs {
                let input = std::io::Cursor::new(stream.clone());
                let started = Instant::now();
                wasmacro_host::server::serve(&runtime, input, std::io::sink()).unwrap();
                if pass > 0 {
                    served.push(started.elapsed());
                }
            }
            let served = median(served);
            println!(
                "{:<40} {:>10} {:>12}",
                format!("through `serve`, in memory (median of {runs})"),
                ms(served),
                format!(
                    "{:.1} µs",
                    served.as_secs_f64() * 1e6 / requests.len() as f64
                ),
            );
        }
    }
}

/// Every `Serialize` and `Deserialize` expansion of the corpus, as the shim
/// would send it: each item without its `#[derive]`, as rustc passes it.
fn corpus_requests() -> Vec<wasmacro_protocol::ExpandRequest> {
    use proc_macro2::{TokenStream, TokenTree};
    use std::str::FromStr;

    let source = corpus_source("serde_derive", true);
    let trees: Vec<TokenTree> = TokenStream::from_str(&source)
        .expect("the corpus lexes")
        .into_iter()
        .collect();
    let mut requests = Vec::new();
    let mut item: Vec<TokenTree> = Vec::new();
    let mut trees = trees.into_iter().peekable();
    while let Some(tree) = trees.next() {
        // `#` `[derive(...)]` is dropped; an item ends at a top-level `;` or
        // braced body.
        if matches!(&tree, TokenTree::Punct(p) if p.as_char() == '#')
            && matches!(trees.peek(), Some(TokenTree::Group(attr))
                if attr.stream().to_string().starts_with("derive"))
        {
            trees.next();
            continue;
        }
        let ends = match &tree {
            TokenTree::Punct(p) => p.as_char() == ';',
            TokenTree::Group(g) => g.delimiter() == proc_macro2::Delimiter::Brace,
            _ => false,
        };
        item.push(tree);
        if ends {
            let stream: TokenStream = std::mem::take(&mut item).into_iter().collect();
            let is_type = stream
                .clone()
                .into_iter()
                .any(|t| matches!(&t, TokenTree::Ident(i) if i == "struct" || i == "enum"));
            if is_type {
                // Every span is the call site, handle 0.
                let tokens = wasmacro::protocol_tokens(stream, &mut |_| 0);
                for name in ["Serialize", "Deserialize"] {
                    requests.push(wasmacro_protocol::ExpandRequest {
                        macro_name: name.into(),
                        input: tokens.clone(),
                        attribute_args: None,
                        call_site: 0,
                        mixed_site: 1,
                    });
                }
            }
        }
    }
    assert_eq!(
        requests.len(),
        2 * TYPES,
        "the corpus splits into its items"
    );
    requests
}

/// Answers span queries the way a shim would for spans with no source.
struct AnySpans;

impl wasmacro_host::SpanOracle for AnySpans {
    fn query(
        &mut self,
        query: wasmacro_protocol::SpanQuery,
    ) -> Result<wasmacro_protocol::SpanAnswer, wasmacro_host::SpanOracleError> {
        use wasmacro_protocol::{SpanAnswer, SpanQuery};
        Ok(match query {
            SpanQuery::Start(h) | SpanQuery::End(h) | SpanQuery::ResolvedAt(h, _) => {
                SpanAnswer::Span(h)
            }
            SpanQuery::Line(_) | SpanQuery::Column(_) => SpanAnswer::Number(1),
            SpanQuery::SourceText(_) | SpanQuery::LocalFile(_) => SpanAnswer::MaybeText(None),
            SpanQuery::File(_) => SpanAnswer::Text("corpus.rs".into()),
            SpanQuery::Debug(h) => SpanAnswer::Text(format!("#{h} bytes(0..0)")),
        })
    }
}
