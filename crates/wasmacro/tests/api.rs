//! The project's own fixture macros (derive, attribute, function-like) use
//! every stable `proc_macro` API item; built natively and as wasm, the
//! programs using them must compile, behave and fail identically.

mod support;

use support::{Mode, assert_same, compile};

const API: &[(&str, &str)] = &[("api_macros", "api-macros")];

#[test]
fn every_proc_macro_api_item_behaves_as_native() {
    let native = compile(Mode::Native, "api", API);
    assert!(
        native.status.success(),
        "native build failed:\n{}",
        native.stderr
    );
    let wasm = compile(Mode::Wasm, "api", API);
    assert!(wasm.status.success(), "wasm build failed:\n{}", wasm.stderr);
    assert_same("compiler stderr", &native.stderr, &wasm.stderr);
    let native_out = String::from_utf8_lossy(&native.run().stdout).into_owned();
    let wasm_out = String::from_utf8_lossy(&wasm.run().stdout).into_owned();
    // Hygiene worked: the macro's private `value` did not capture the caller's.
    assert!(native_out.contains("hygiene=102"), "{native_out}");
    assert_same("macro observations", &native_out, &wasm_out);
}

#[test]
fn compile_error_and_panics_surface_as_native() {
    let native = compile(Mode::Native, "api_errors", API);
    let wasm = compile(Mode::Wasm, "api_errors", API);
    assert!(!native.status.success() && !wasm.status.success());
    assert!(
        native.stderr.contains("pointing at `second`"),
        "{}",
        native.stderr
    );
    assert!(
        native.stderr.contains("proc macro panicked"),
        "{}",
        native.stderr
    );
    assert_same("compiler stderr", &native.stderr, &wasm.stderr);
}

/// With `RUST_BACKTRACE=1` a panicking macro's error shows where in the
/// guest it panicked: function names always (the component keeps its name
/// section), file and line when the component was built with debug info.
/// Without it the error is the native one (the test above).
#[test]
fn a_panic_shows_the_wasm_backtrace_when_asked() {
    let backtrace = [("RUST_BACKTRACE", "1")];
    let named = support::compile_with_env(Mode::Wasm, "api_errors", API, &backtrace);
    assert!(!named.status.success());
    assert!(
        named
            .stderr
            .contains("= help: message: point_at! needs at least two tokens")
            && named.stderr.contains("wasm backtrace of the macro:")
            && named.stderr.contains("api_macros::point_at"),
        "{}",
        named.stderr
    );
    // Trimmed as a native backtrace is: the panic machinery is not shown.
    assert!(
        !named.stderr.contains("core::panicking"),
        "{}",
        named.stderr
    );
    assert!(!named.stderr.contains("src/lib.rs:"), "{}", named.stderr);

    let debug_info = [("api_macros", "api-macros#debug-info")];
    let located = support::compile_with_env(Mode::Wasm, "api_errors", &debug_info, &backtrace);
    let line = std::fs::read_to_string(support::fixtures().join("api-macros/src/lib.rs"))
        .unwrap()
        .lines()
        .position(|l| l.contains("panic!(\"point_at! needs"))
        .unwrap()
        + 1;
    assert!(
        located
            .stderr
            .contains(&format!("at /wasmacro/api-macros-0.1.0/src/lib.rs:{line}:")),
        "{}",
        located.stderr
    );
    // The debug-info component is another component, with its own hash.
    assert_ne!(
        std::fs::read(support::component("api-macros")).unwrap(),
        std::fs::read(support::component("api-macros#debug-info")).unwrap()
    );
}

#[test]
fn macro_state_lives_for_the_compilation_unless_isolated() {
    let native = compile(Mode::Native, "state", API);
    let wasm = compile(Mode::Wasm, "state", API);
    assert!(
        native.status.success() && wasm.status.success(),
        "{}\n{}",
        native.stderr,
        wasm.stderr
    );
    // What the macro printed reaches rustc's stderr, in order.
    assert!(
        native.stderr.contains("counter! expansion 2"),
        "{}",
        native.stderr
    );
    assert_same("compiler stderr", &native.stderr, &wasm.stderr);
    let native_out = String::from_utf8_lossy(&native.run().stdout).into_owned();
    assert_eq!(native_out, "0 1 2\n");
    assert_same(
        "program output",
        &native_out,
        &String::from_utf8_lossy(&wasm.run().stdout),
    );

    let isolated = support::compile_with_env(
        Mode::Wasm,
        "state",
        API,
        &[("WASMACRO_ISOLATION", "per-expansion")],
    );
    assert!(isolated.status.success(), "{}", isolated.stderr);
    assert_eq!(String::from_utf8_lossy(&isolated.run().stdout), "0 0 0\n");
}

#[test]
fn a_sleeping_macro_does_not_hold_up_the_build() {
    // Time is virtual in the sandbox: an hour-long sleep ends at once and the
    // frozen clock says no time passed. The watchdog turns a regression into
    // a failure instead of an hour-long hang.
    let (done, result) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(compile(Mode::Wasm, "sleep", API));
    });
    let compiled = result
        .recv_timeout(std::time::Duration::from_secs(300))
        .expect("compiling with a sleeping macro hung");
    assert!(compiled.status.success(), "{}", compiled.stderr);
    assert_eq!(String::from_utf8_lossy(&compiled.run().stdout), "0\n");
}

#[test]
fn concurrent_compilations_fill_one_cold_cache_safely() {
    // Eight rustc processes race to cache the component, precompile it and
    // build its shim in an empty cache; all must succeed and agree.
    let cache = tempfile::tempdir().unwrap();
    let cache_dir = cache.path().display().to_string();
    let runs: Vec<_> = (0..8)
        .map(|run| {
            let cache_dir = cache_dir.clone();
            std::thread::spawn(move || {
                let env = [
                    ("WASMACRO_CACHE_DIR", cache_dir.as_str()),
                    ("WASMACRO_TEST_RUN", &*run.to_string()),
                ];
                support::compile_with_env(Mode::Wasm, "state", API, &env)
            })
        })
        .collect();
    for run in runs {
        let compiled = run.join().unwrap();
        assert!(compiled.status.success(), "{}", compiled.stderr);
        assert_eq!(String::from_utf8_lossy(&compiled.run().stdout), "0 1 2\n");
    }
    let shims = std::fs::read_dir(cache.path().join("shims"))
        .unwrap()
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .count();
    assert_eq!(shims, 1, "one shim, published once");
}

#[test]
fn a_span_kept_from_an_earlier_expansion_is_rejected_with_a_clear_error() {
    // Natively rustc panics ("use-after-free in `proc_macro` handle"); in wasm
    // the stale handle must not silently name an unrelated span either.
    let wasm = compile(Mode::Wasm, "stale_span", API);
    assert!(!wasm.status.success());
    assert!(
        wasm.stderr
            .contains("`use_kept_span` of `api_macros` (wasm)")
            && wasm.stderr.contains("earlier expansion"),
        "{}",
        wasm.stderr
    );
}

#[test]
fn expansions_are_parsed_in_the_macro_crates_edition() {
    // A 2015 macro emits `try!(…)`; the caller is 2021, where `try` is a
    // keyword. rustc parses the output in the macro's edition, so the shim
    // must carry it.
    const EDITION_2015: &[(&str, &str)] = &[("edition_2015_macros", "edition-2015-macros")];
    let native = compile(Mode::Native, "edition_2015", EDITION_2015);
    assert!(native.status.success(), "{}", native.stderr);
    let wasm = compile(Mode::Wasm, "edition_2015", EDITION_2015);
    assert!(wasm.status.success(), "{}", wasm.stderr);
    assert_same("compiler stderr", &native.stderr, &wasm.stderr);
    let output = String::from_utf8_lossy(&native.run().stdout).into_owned();
    assert_eq!(output, "Ok(42) true\n");
    assert_same(
        "program output",
        &output,
        &String::from_utf8_lossy(&wasm.run().stdout),
    );
}
