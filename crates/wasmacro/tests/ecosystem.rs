//! `cargo wasmacro` on a real project: the `ecosystem` fixture uses the
//! typical features of popular proc-macro crates from crates.io, plus one
//! proc-macro crate of its own. Everything is compared with plain cargo:
//! test results, compiler diagnostics (warnings included), the documented
//! compile errors of each macro, and what a rebuild redoes.

mod support;

use std::sync::Mutex;
use support::{
    Cargo, assert_runs_as_wasm, cargo_in, cargo_in_with, cargo_report, compile_fail_examples,
    project_copy, summary, summary_hits, text,
};

/// The tests share one project copy and its target directory.
static PROJECT: Mutex<()> = Mutex::new(());

/// Proc-macro crates that must run as wasm (at least 15 popular ones).
const WASM: &[&str] = &[
    "async-trait",
    "bytemuck_derive",
    "clap_derive",
    "darling_macro",
    "derivative",
    "derive_builder_macro",
    "derive_more-impl",
    "displaydoc",
    "futures-macro",
    "local-macros",
    "paste",
    "pin-project-internal",
    "ref-cast-impl",
    "rustversion",
    "serde_derive",
    "strum_macros",
    "thiserror-impl",
    "tokio-macros",
    "tracing-attributes",
    "zerocopy-derive",
];

fn lock() -> std::sync::MutexGuard<'static, ()> {
    PROJECT.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn tests_pass_with_the_same_output_and_diagnostics() {
    let _guard = lock();
    let dir = project_copy("ecosystem");
    let args = [
        "test",
        "--locked",
        "--message-format=json",
        "--",
        "--test-threads=1",
    ];
    let native = cargo_in(&dir, Cargo::Plain, &args);
    assert!(native.status.success(), "{}", text(&native.stderr));
    let wasm = cargo_in(&dir, Cargo::Wasmacro, &args);
    let stderr = text(&wasm.stderr);
    assert!(wasm.status.success(), "{stderr}");

    let (native, wasm_report) = (cargo_report(&native), cargo_report(&wasm));
    assert!(
        native
            .other
            .iter()
            .any(|l| l.starts_with("test result: ok. 19 passed")),
        "{:#?}",
        native.other
    );
    assert_eq!(native.other, wasm_report.other, "test output differs");
    // The fixture warns on purpose, through macros (async-trait, tracing).
    assert!(
        native
            .diagnostics
            .values()
            .flatten()
            .any(|d| d.contains("unused variable: `unused`")),
        "{:#?}",
        native.diagnostics
    );
    assert_eq!(
        native.diagnostics, wasm_report.diagnostics,
        "diagnostics differ"
    );

    eprintln!("{stderr}");
    assert_runs_as_wasm(&dir, WASM);
    let rows = summary(&dir);
    // num_enum_derive finds its crate through proc-macro-crate, which reads
    // the crate's Cargo.toml: its built-in grant lets it, in the sandbox.
    let num_enum = rows
        .iter()
        .find(|(krate, _, _)| krate.starts_with("num_enum_derive "))
        .expect("num_enum_derive in the summary");
    assert_eq!(num_enum.1, "wasm", "{num_enum:?}");
    assert!(!stderr.contains("runs natively"), "{stderr}");
}

#[test]
fn compile_fail_corpus_gives_the_same_errors() {
    let _guard = lock();
    let dir = project_copy("ecosystem");
    let (native, wasm) = compile_fail_examples(&dir);
    let examples: Vec<&String> = native
        .diagnostics
        .keys()
        .filter(|k| k.starts_with("example cf_"))
        .collect();
    assert_eq!(examples.len(), 17, "{examples:?}");
    for example in examples {
        assert!(
            native.errors(example) > 0,
            "{example} compiled without errors"
        );
        assert_eq!(
            native.diagnostics.get(example),
            wasm.diagnostics.get(example),
            "{example}: stderr differs"
        );
    }
    assert_eq!(native.diagnostics, wasm.diagnostics);
}

/// The files of the fixture package's own artifacts a `--message-format=json`
/// build wrote (library, test harnesses, examples), with their bytes.
fn own_artifacts(output: &std::process::Output) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut files = std::collections::BTreeMap::new();
    for line in text(&output.stdout).lines() {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let own = message["package_id"]
            .as_str()
            .is_some_and(|id| id.contains("ecosystem"));
        if message["reason"] != "compiler-artifact" || !own {
            continue;
        }
        let paths = message["filenames"]
            .as_array()
            .into_iter()
            .flatten()
            .chain(
                message["executable"]
                    .as_str()
                    .map(|_| &message["executable"]),
            )
            .filter_map(|p| p.as_str());
        for path in paths {
            files.insert(path.to_string(), std::fs::read(path).unwrap());
        }
    }
    files
}

#[test]
fn a_warm_expansion_cache_gives_byte_identical_binaries_and_diagnostics() {
    let _guard = lock();
    let dir = project_copy("ecosystem");
    let args = ["test", "--locked", "--no-run", "--message-format=json"];
    // Each build recompiles the fixture crate and what uses it (its
    // dependencies stay fresh); without incremental state, so two builds of
    // the same expansions are the same bytes.
    let build = |cache: &str| {
        let source = dir.join("src/lib.rs");
        let file = std::fs::File::options().append(true).open(&source).unwrap();
        file.set_modified(std::time::SystemTime::now()).unwrap();
        let output = cargo_in_with(
            &dir,
            Cargo::Wasmacro,
            &args,
            &[
                ("WASMACRO_EXPANSION_CACHE", cache),
                ("CARGO_INCREMENTAL", "0"),
            ],
        );
        assert!(output.status.success(), "{}", text(&output.stderr));
        output
    };
    // Every expansion runs.
    let uncached = build("off");
    let artifacts = own_artifacts(&uncached);
    assert!(artifacts.len() >= 3, "{:?}", artifacts.keys());
    // Fills the cache (or finds it filled by an earlier run).
    build("on");
    // Every expansion is a hit.
    let warm = build("on");
    let rows = summary_hits(&dir);
    let expanded: u64 = rows.iter().map(|(_, expansions, _)| expansions).sum();
    // The library and its test harness: 100 expansions of 19 macro crates.
    assert!(expanded >= 50, "{rows:?}");
    for (krate, expansions, hits) in &rows {
        assert_eq!(hits, expansions, "{krate}: {rows:?}");
    }
    let warm_artifacts = own_artifacts(&warm);
    assert_eq!(
        artifacts.keys().collect::<Vec<_>>(),
        warm_artifacts.keys().collect::<Vec<_>>()
    );
    for (path, bytes) in &artifacts {
        assert!(warm_artifacts[path] == *bytes, "{path} differs");
    }
    // The library and its test harness compile at once, and their messages
    // interleave by timing, which the cache changes: compare each target's
    // diagnostics as a sorted list.
    let sorted = |output: &std::process::Output| {
        let mut diagnostics = cargo_report(output).diagnostics;
        diagnostics.values_mut().for_each(|d| d.sort());
        diagnostics
    };
    assert_eq!(sorted(&uncached), sorted(&warm), "diagnostics differ");
}

/// The `Compiling …` lines of a `cargo build -v`: which units were redone.
fn compiled(output: &std::process::Output) -> Vec<String> {
    let mut units: Vec<String> = text(&output.stderr)
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("Compiling "))
        .map(str::to_string)
        .collect();
    units.sort();
    units
}

#[test]
fn rebuilds_redo_what_cargo_redoes() {
    let _guard = lock();
    let dir = project_copy("ecosystem");
    let build = ["build", "--locked", "-v"];
    for mode in [Cargo::Plain, Cargo::Wasmacro] {
        let first = cargo_in(&dir, mode, &build);
        assert!(first.status.success(), "{}", text(&first.stderr));
        let again = cargo_in(&dir, mode, &build);
        assert!(again.status.success());
        assert_eq!(
            compiled(&again),
            Vec::<String>::new(),
            "{mode:?}: nothing changed, nothing to do"
        );
    }
    let source = dir.join("src/lib.rs");
    let mut redone = Vec::new();
    for mode in [Cargo::Plain, Cargo::Wasmacro] {
        let file = std::fs::File::options().append(true).open(&source).unwrap();
        file.set_modified(std::time::SystemTime::now()).unwrap();
        let output = cargo_in(&dir, mode, &build);
        assert!(output.status.success(), "{}", text(&output.stderr));
        redone.push(compiled(&output));
    }
    assert_eq!(redone[0], redone[1], "after touching src/lib.rs");
    assert_eq!(redone[0].len(), 1, "{:?}", redone[0]);
}

/// Puts a file back however the test ends.
struct Restore(std::path::PathBuf, String);

impl Drop for Restore {
    fn drop(&mut self) {
        let _ = std::fs::write(&self.0, &self.1);
    }
}

#[test]
fn editing_a_workspace_macro_rebuilds_its_component() {
    let _guard = lock();
    let dir = project_copy("ecosystem");
    let macro_source = dir.join("local-macros/src/lib.rs");
    let original = std::fs::read_to_string(&macro_source).unwrap();
    let _restore = Restore(macro_source.clone(), original.clone());
    std::fs::write(
        &macro_source,
        original.replace("has {fields} fields", "holds {fields} fields"),
    )
    .unwrap();
    let args = ["test", "--locked", "--lib", "--", "local_macro"];
    let native = cargo_in(&dir, Cargo::Plain, &args);
    let wasm = cargo_in(&dir, Cargo::Wasmacro, &args);
    for output in [&native, &wasm] {
        assert!(!output.status.success());
        assert!(
            text(&output.stdout).contains("\"Sample holds 2 fields\""),
            "{}",
            text(&output.stdout)
        );
    }
    assert!(
        text(&wasm.stderr).contains("Compiling local-macros v0.1.0 (wasm)"),
        "{}",
        text(&wasm.stderr)
    );
}
