//! A workspace's own proc-macro crate, in the shapes real ones have
//! (`fixtures/workspace-tree`: inherited fields, dependencies and lints, a
//! renamed sibling `-internals` crate, build scripts, a patched dependency,
//! a symlinked source file, a path dependency outside the workspace root,
//! proc-macro-error's `#[proc_macro_error]` before and after the macro
//! attribute): everything runs as wasm under `--strict`, with the results
//! and diagnostics of plain cargo; components do not depend on where the
//! workspace lives; an edit rebuilds exactly the component it changes.

mod support;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use support::{
    Cargo, cache_dir, cargo_in, cargo_in_with, cargo_report, compile_fail_examples, project_copy,
    project_copy_at, text, unit_record,
};

/// The tests share one project copy and its target directory.
static PROJECT: Mutex<()> = Mutex::new(());

fn lock() -> std::sync::MutexGuard<'static, ()> {
    PROJECT.lock().unwrap_or_else(|e| e.into_inner())
}

/// The fixture's workspace root in a copy of the tree.
fn root(tree: &Path) -> PathBuf {
    tree.join("root")
}

/// The component `cargo wasmacro` recorded for a macro crate, asserting that
/// it ran as wasm.
fn component_of(project: &Path, crate_name: &str) -> String {
    let record = unit_record(project, crate_name)
        .unwrap_or_else(|| panic!("no unit record for {crate_name}"));
    assert_eq!(
        record["placement"]["runs"], "wasm",
        "{crate_name}: {record}"
    );
    record["component"]
        .as_str()
        .expect("a wasm unit names its component")
        .to_string()
}

/// Whether a `cargo wasmacro` run built `package`'s component (rather than
/// finding it in the cache).
fn built_component(output: &std::process::Output, package: &str) -> bool {
    text(&output.stderr).contains(&format!("(wasm, for {package})"))
}

#[test]
fn every_macro_runs_as_wasm_with_the_same_results_and_diagnostics() {
    let _guard = lock();
    let project = root(&project_copy("workspace-tree"));
    let test = [
        "test",
        "--locked",
        "--message-format=json",
        "--",
        "--test-threads=1",
    ];
    let native = cargo_in(&project, Cargo::Plain, &test);
    assert!(native.status.success(), "{}", text(&native.stderr));
    let strict: Vec<&str> = ["--strict"].iter().chain(&test).copied().collect();
    let wasm = cargo_in(&project, Cargo::Wasmacro, &strict);
    assert!(wasm.status.success(), "{}", text(&wasm.stderr));
    let (native, wasm) = (cargo_report(&native), cargo_report(&wasm));
    assert!(
        native
            .other
            .iter()
            .any(|l| l.starts_with("test result: ok. 2 passed")),
        "{:#?}",
        native.other
    );
    assert_eq!(native.other, wasm.other, "test output differs");
    assert_eq!(native.diagnostics, wasm.diagnostics, "diagnostics differ");
    for crate_name in ["app_derive", "proc_macro_error_attr2"] {
        component_of(&project, crate_name);
    }

    // The errors the macros report, through proc-macro-error and syn.
    let (native, wasm) = compile_fail_examples(&project);
    for example in ["example cf_enum", "example cf_route"] {
        assert!(
            native.errors(example) > 0,
            "{example} compiled without errors"
        );
    }
    assert_eq!(
        native.diagnostics, wasm.diagnostics,
        "compile errors differ"
    );
}

#[test]
fn components_do_not_depend_on_where_the_workspace_lives() {
    let _guard = lock();
    let scratch = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("wasmacro-tests/checkouts");
    // The other checkouts start without a target directory, so cargo builds
    // their macro crates rather than finding them fresh from an earlier run.
    let _ = std::fs::remove_dir_all(&scratch);
    let build = ["build", "--locked"];
    let first = root(&project_copy("workspace-tree"));
    let output = cargo_in(&first, Cargo::Wasmacro, &build);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let component = component_of(&first, "app_derive");

    // Another path, the same cache: the component is found, not rebuilt.
    let second = root(&project_copy_at(
        "workspace-tree",
        &scratch.join("second/deeper/tree"),
    ));
    let output = cargo_in(&second, Cargo::Wasmacro, &build);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        !built_component(&output, "app-derive"),
        "{}",
        text(&output.stderr)
    );
    assert_eq!(component_of(&second, "app_derive"), component);

    // Another path and an empty cache: rebuilt, to the same bytes.
    let third = root(&project_copy_at("workspace-tree", &scratch.join("third")));
    let fresh_cache = tempfile::tempdir().unwrap();
    let output = cargo_in_with(
        &third,
        Cargo::Wasmacro,
        &build,
        &[("WASMACRO_CACHE_DIR", fresh_cache.path())],
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        built_component(&output, "app-derive"),
        "{}",
        text(&output.stderr)
    );
    assert_eq!(component_of(&third, "app_derive"), component);
    assert_ne!(fresh_cache.path(), cache_dir());
}

/// Puts a file back however the test ends.
struct Restore(PathBuf, String);

impl Drop for Restore {
    fn drop(&mut self) {
        let _ = std::fs::write(&self.0, &self.1);
    }
}

fn edit(path: &Path, from: &str, to: &str) -> Restore {
    let original = std::fs::read_to_string(path).unwrap();
    assert!(
        original.contains(from),
        "{} has no {from:?}",
        path.display()
    );
    std::fs::write(path, original.replace(from, to)).unwrap();
    Restore(path.to_path_buf(), original)
}

#[test]
fn an_edit_rebuilds_exactly_the_component_it_changes() {
    let _guard = lock();
    let project = root(&project_copy("workspace-tree"));
    let show = ["run", "--locked", "--example", "show"];
    let before = cargo_in(&project, Cargo::Wasmacro, &show);
    assert!(before.status.success(), "{}", text(&before.stderr));
    assert!(
        text(&before.stdout).contains("(internals v1)"),
        "{}",
        text(&before.stdout)
    );
    let component = component_of(&project, "app_derive");

    // Edits elsewhere: a file the macro crate does not compile, a file its
    // package excludes (through `[workspace.package]`), and the workspace's
    // lints, which make cargo recompile the macro crate but do not change
    // what its component is built from.
    for (file, from, to) in [
        ("app/src/lib.rs", "A server's settings.", "Settings."),
        ("app-derive/notes/design.md", "Not part", "Never part"),
        (
            "Cargo.toml",
            "unused_qualifications = \"warn\"",
            "unused_qualifications = \"allow\"",
        ),
    ] {
        let _restore = edit(&project.join(file), from, to);
        let output = cargo_in(&project, Cargo::Wasmacro, &show);
        assert!(output.status.success(), "{}", text(&output.stderr));
        assert!(
            !built_component(&output, "app-derive"),
            "{file}: {}",
            text(&output.stderr)
        );
        assert_eq!(component_of(&project, "app_derive"), component);
    }

    // An edit to the sibling crate the macro uses: a new component, and its
    // new behaviour in both modes.
    let _restore = edit(
        &project.join("app-internals/src/lib.rs"),
        "internals v1",
        "internals v2",
    );
    let wasm = cargo_in(&project, Cargo::Wasmacro, &show);
    assert!(wasm.status.success(), "{}", text(&wasm.stderr));
    // (Built now, or found from an earlier run of this test: the cache lives
    // as long as the target directory.)
    assert_ne!(component_of(&project, "app_derive"), component);
    let native = cargo_in(&project, Cargo::Plain, &show);
    assert_eq!(text(&native.stdout), text(&wasm.stdout));
    assert!(
        text(&wasm.stdout).contains("(internals v2)"),
        "{}",
        text(&wasm.stdout)
    );
}
