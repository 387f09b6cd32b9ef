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

/// A struct of 500 fields and an enum of 500 variants, of the shapes serde
/// users write (renames, defaults, skips, options, nested collections).
fn wide_program() -> String {
    let mut fields = String::new();
    let mut variants = String::new();
    for i in 0..500 {
        let (ty, attr) = match i % 6 {
            0 => ("u32", ""),
            1 => ("String", "#[serde(rename = \"renamed\")]"),
            2 => (
                "Option<Vec<u8>>",
                "#[serde(skip_serializing_if = \"Option::is_none\")]",
            ),
            3 => ("bool", "#[serde(default)]"),
            4 => ("std::collections::BTreeMap<String, i64>", ""),
            _ => ("(f64, char)", "#[serde(alias = \"other\")]"),
        };
        let attr = attr.replace("renamed", &format!("field-{i}"));
        let attr = attr.replace("other", &format!("alias_{i}"));
        fields.push_str(&format!("    {attr}\n    f{i}: {ty},\n"));
        variants.push_str(&match i % 3 {
            0 => format!("    V{i},\n"),
            1 => format!("    V{i}(u64, String),\n"),
            _ => format!("    V{i} {{ a: Option<u8>, #[serde(default)] b: Vec<bool> }},\n"),
        });
    }
    format!(
        "#![recursion_limit = \"512\"]\n\
         use serde_derive::{{Deserialize, Serialize}};\n\
         #[derive(Serialize, Deserialize, Default, Debug, PartialEq)]\n\
         struct Wide {{\n{fields}}}\n\
         #[derive(Serialize, Deserialize, Debug, PartialEq)]\n\
         enum Many {{\n{variants}}}\n\
         fn main() {{\n\
             let wide = Wide::default();\n\
             let json = serde_json::to_string(&wide).unwrap();\n\
             assert_eq!(serde_json::from_str::<Wide>(&json).unwrap(), wide);\n\
             println!(\"{{json}}\");\n\
             for many in [Many::V0, Many::V1(7, \"x\".into()), Many::V497 {{ a: Some(1), b: vec![true] }}] {{\n\
                 let json = serde_json::to_string(&many).unwrap();\n\
                 assert_eq!(serde_json::from_str::<Many>(&json).unwrap(), many);\n\
                 println!(\"{{json}}\");\n\
             }}\n\
         }}\n"
    )
}

#[test]
fn default_limits_fit_serde_on_a_500_field_struct() {
    let dir = support::generated();
    std::fs::write(dir.join("serde_wide.rs"), wide_program()).unwrap();
    let native = support::compile_in(&dir, Mode::Native, "serde_wide", SERDE, &[]);
    assert!(native.status.success(), "{}", native.stderr);
    // The defaults, whatever the environment of the test run says.
    let wasm = support::compile_in(
        &dir,
        Mode::Wasm,
        "serde_wide",
        SERDE,
        &[("WASMACRO_LIMITS", "")],
    );
    assert!(wasm.status.success(), "{}", wasm.stderr);
    assert_same("compiler stderr", &native.stderr, &wasm.stderr);
    let native_out = String::from_utf8_lossy(&native.run().stdout).into_owned();
    assert!(native_out.contains("\"field-499\""), "{native_out}");
    assert_same(
        "program output",
        &native_out,
        &String::from_utf8_lossy(&wasm.run().stdout),
    );
    // Headroom: a tenth of the default fuel is still enough.
    let tenth = support::compile_in(
        &dir,
        Mode::Wasm,
        "serde_wide",
        SERDE,
        &[("WASMACRO_LIMITS", "fuel=1e9")],
    );
    assert!(tenth.status.success(), "{}", tenth.stderr);
}

/// The second backend: the same programs and the same errors with the guest
/// run by wasmtime's Pulley interpreter instead of Cranelift's native code.
#[test]
fn serde_on_the_pulley_interpreter_matches_native() {
    const PULLEY: &[(&str, &str)] = &[("WASMACRO_BACKEND", "pulley")];
    let native = compile(Mode::Native, "serde_roundtrip", SERDE);
    let pulley = support::compile_with_env(Mode::Wasm, "serde_roundtrip", SERDE, PULLEY);
    assert!(pulley.status.success(), "{}", pulley.stderr);
    assert_same("compiler stderr", &native.stderr, &pulley.stderr);
    assert_same(
        "program output",
        &String::from_utf8_lossy(&native.run().stdout),
        &String::from_utf8_lossy(&pulley.run().stdout),
    );

    let native = compile(Mode::Native, "serde_errors", SERDE);
    let pulley = support::compile_with_env(Mode::Wasm, "serde_errors", SERDE, PULLEY);
    assert!(!pulley.status.success());
    assert_same("compiler stderr", &native.stderr, &pulley.stderr);
}

#[test]
fn an_unknown_backend_is_a_clear_error() {
    let wasm = support::compile_with_env(
        Mode::Wasm,
        "serde_roundtrip",
        SERDE,
        &[("WASMACRO_BACKEND", "llvm")],
    );
    assert!(!wasm.status.success());
    assert!(
        wasm.stderr
            .contains("WASMACRO_BACKEND must be `cranelift` or `pulley`, not `llvm`"),
        "{}",
        wasm.stderr
    );
}
