//! Real macros from crates.io that read files (the `file-macros` fixture:
//! askama, rust-embed, pest_derive, include_dir and automod) run as wasm under
//! the default policy, reading through their built-in grants: the same test
//! results and diagnostics as plain cargo, and an edit to anything they read
//! is picked up by the next build — also where plain cargo misses it.

mod support;

use std::path::Path;
use std::sync::Mutex;
use support::{Cargo, assert_runs_as_wasm, cargo_in, cargo_report, project_copy, text};

/// The tests share one project copy and its target directory.
static PROJECT: Mutex<()> = Mutex::new(());

const FILE_MACROS: &[&str] = &[
    "askama_macros",
    "automod",
    "include_dir_macros",
    "pest_derive",
    "rust-embed-impl",
];

fn lock() -> std::sync::MutexGuard<'static, ()> {
    PROJECT.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn file_reading_macros_run_as_wasm_with_the_same_results() {
    let _guard = lock();
    let dir = project_copy("file-macros");
    let args = [
        "test",
        "--locked",
        "--message-format=json",
        "--",
        "--test-threads=1",
    ];
    let native = cargo_in(&dir, Cargo::Plain, &args);
    assert!(native.status.success(), "{}", text(&native.stderr));
    let strict: Vec<&str> = ["--strict"].into_iter().chain(args).collect();
    let wasm = cargo_in(&dir, Cargo::Wasmacro, &strict);
    let stderr = text(&wasm.stderr);
    assert!(wasm.status.success(), "{stderr}");
    let (native, wasm_report) = (cargo_report(&native), cargo_report(&wasm));
    assert!(
        native
            .other
            .iter()
            .any(|l| l.starts_with("test result: ok. 6 passed")),
        "{:#?}",
        native.other
    );
    assert_eq!(native.other, wasm_report.other, "test output differs");
    assert_eq!(native.diagnostics, wasm_report.diagnostics);
    assert_runs_as_wasm(&dir, FILE_MACROS);
}

/// Replaces `from` with `to` in `path`, or creates it with `to` if `from` is
/// empty.
fn edit(path: &Path, from: &str, to: &str) {
    if from.is_empty() {
        std::fs::write(path, to).unwrap();
        return;
    }
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{} has no {from:?}", path.display());
    std::fs::write(path, text.replace(from, to)).unwrap();
}

fn show(dir: &Path, mode: Cargo) -> String {
    let output = cargo_in(dir, mode, &["run", "--locked", "--example", "show"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    text(&output.stdout)
}

#[test]
fn edits_to_what_macros_read_rebuild_under_wasmacro() {
    let _guard = lock();
    let dir = project_copy("file-macros");
    // Files an earlier, interrupted run may have left (the copy is synced
    // from the fixture, which does not remove extra files).
    for extra in ["data/c.txt", "src/parts/third.rs"] {
        let _ = std::fs::remove_file(dir.join(extra));
    }
    let before = show(&dir, Cargo::Wasmacro);
    assert_eq!(before, show(&dir, Cargo::Plain));
    assert!(before.contains("data a.txt: data a"), "{before}");

    // Each edit, and the line that must show it.
    let edits = [
        (
            "templates/greeting.html",
            "Hello",
            "Howdy",
            "Howdy, Ferris!",
        ),
        (
            "assets/one.txt",
            "asset one",
            "asset uno",
            "asset one.txt: asset uno",
        ),
        (
            "src/list.pest",
            "ASCII_ALPHANUMERIC+",
            "ASCII_DIGIT+",
            "list: Err(",
        ),
        ("data/a.txt", "data a", "data A", "data a.txt: data A"),
        ("data/c.txt", "", "data c\n", "data c.txt: data c"),
    ];
    let mut native_missed = Vec::new();
    for (file, from, to, expected) in edits {
        edit(&dir.join(file), from, to);
        let wasm = show(&dir, Cargo::Wasmacro);
        assert!(wasm.contains(expected), "after editing {file}:\n{wasm}");
        // Plain cargo, for the record: its native macros decide themselves
        // whether cargo hears about what they read.
        if !show(&dir, Cargo::Plain).contains(expected) {
            native_missed.push(file);
        }
    }
    eprintln!("plain cargo missed edits to: {native_missed:?}");
    // include_dir names each file it embeds in `include_bytes!`, so rustc
    // tracks those, but nothing tells cargo about a new file in the
    // directory (include_dir#77).
    assert!(native_missed.contains(&"data/c.txt"), "{native_missed:?}");

    // A new file in automod's directory is a new module: listing the
    // directory made it an input, so the next build compiles the new file.
    std::fs::write(
        dir.join("src/parts/third.rs"),
        "compile_error!(\"the third part is compiled\");\n",
    )
    .unwrap();
    let output = cargo_in(&dir, Cargo::Wasmacro, &["build", "--locked"]);
    let stderr = text(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("the third part is compiled"), "{stderr}");
    std::fs::remove_file(dir.join("src/parts/third.rs")).unwrap();
    std::fs::remove_file(dir.join("data/c.txt")).unwrap();
}
