//! The north star: serde_derive from crates.io, unmodified, expands as a wasm
//! component inside stable rustc exactly as the native macro does.

mod support;

use support::{Mode, SERDE_DERIVE, assert_same, compile};

const SERDE: &[(&str, &str)] = &[("serde_derive", SERDE_DERIVE)];

#[test]
fn serde_programs_round_trip_json_exactly_like_native() {
    let native = compile(Mode::Native, "serde_roundtrip", SERDE);
    assert!(
        native.status.success(),
        "native build failed:\n{}",
        native.stderr
    );
    let wasm = compile(Mode::Wasm, "serde_roundtrip", SERDE);
    assert!(wasm.status.success(), "wasm build failed:\n{}", wasm.stderr);
    assert_same("compiler stderr", &native.stderr, &wasm.stderr);

    let (native_run, wasm_run) = (native.run(), wasm.run());
    assert!(native_run.status.success() && wasm_run.status.success());
    let native_out = String::from_utf8_lossy(&native_run.stdout);
    assert!(
        native_out.lines().count() > 25,
        "the program printed too little:\n{native_out}"
    );
    assert_same(
        "program output",
        &native_out,
        &String::from_utf8_lossy(&wasm_run.stdout),
    );
}

#[test]
fn serde_attribute_errors_give_identical_rustc_stderr() {
    let native = compile(Mode::Native, "serde_errors", SERDE);
    let wasm = compile(Mode::Wasm, "serde_errors", SERDE);
    assert!(!native.status.success() && !wasm.status.success());
    assert!(
        native.stderr.matches("error").count() >= 7,
        "expected every misuse to be reported:\n{}",
        native.stderr
    );
    assert_same("compiler stderr", &native.stderr, &wasm.stderr);
}
