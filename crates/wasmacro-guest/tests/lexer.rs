//! Differential test of the guest lexer against rustc's own.
//!
//! The `wasmacro-lexer-oracle` macros run rustc's `TokenStream::from_str`,
//! `Literal::from_str` and `Ident::new` while this test is compiled and embed
//! what they produced as text dumps; here the guest crate (this package's
//! library, whose name `proc_macro` shadows the sysroot crate in this test)
//! runs on the same inputs and its dumps must be identical:
//!
//! - every `.rs` file of the registry sources of syn, serde, serde_derive,
//!   proc-macro2 and quote;
//! - every case of `tests/lexer_cases.txt`.
//!
//! Inputs that rustc rejects with a compile error (rather than an `Err`) can't
//! be compared that way; for those, this test compiles one `probe!` invocation
//! per case with rustc and checks that rustc fails with the message the guest
//! returns in its `Err`.

use proc_macro::{Delimiter, Ident, Literal, Spacing, Span, TokenStream, TokenTree};
use std::fmt::Write as _;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;

static CASES: &[(&str, &str, &str)] = wasmacro_lexer_oracle::oracle_cases!("tests/lexer_cases.txt");

static FILES: &[(&str, &str)] = wasmacro_lexer_oracle::oracle_files!();

// The dump format, shared with the oracle.
include!("common/dump.rs");

/// A readable report of the first difference between two dumps, or `None`.
fn first_difference(expected: &str, actual: &str) -> Option<String> {
    if expected == actual {
        return None;
    }
    let expected: Vec<&str> = expected.lines().collect();
    let actual: Vec<&str> = actual.lines().collect();
    let index = expected
        .iter()
        .zip(&actual)
        .position(|(e, a)| e != a)
        .unwrap_or_else(|| {
            // One is a prefix of the other.
            expected.len().min(actual.len())
        });
    let from = index.saturating_sub(8);
    let context = |lines: &[&str]| {
        let mut out = String::new();
        for (number, line) in lines.iter().enumerate().skip(from).take(index - from + 4) {
            let marker = if number == index { ">" } else { " " };
            let _ = writeln!(out, "  {marker}{number:6} {line}");
        }
        if index >= lines.len() {
            let _ = writeln!(out, "  >{index:6} <end>");
        }
        out
    };
    Some(format!(
        "first difference at dump line {index}\n rustc:\n{} guest:\n{}",
        context(&expected),
        context(&actual)
    ))
}

#[test]
fn registry_sources_lex_like_rustc() {
    let mut tokens = 0;
    let mut failures = Vec::new();
    for (path, expected) in FILES {
        let source = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("{path} was lexed by the oracle but can't be read: {e}"));
        let actual = dump_token_stream(&source);
        tokens += expected.lines().count();
        if let Some(difference) = first_difference(expected, &actual) {
            failures.push(format!("{path}: {difference}"));
        }
    }
    println!("compared {} files, {tokens} tokens with rustc", FILES.len());
    assert!(
        failures.is_empty(),
        "{} files differ; the first:\n{}",
        failures.len(),
        failures[0]
    );
    // The sources come from the cargo registry (`cargo fetch` puts them
    // there); without them this test must not pass by comparing nothing.
    assert!(
        FILES.len() >= 50,
        "only {} registry files were compared: run `cargo fetch` and rebuild the test",
        FILES.len()
    );
}

#[test]
fn cases_lex_like_rustc() {
    let mut compared = 0;
    let mut failures = Vec::new();
    for &(kind, input, expected) in CASES {
        let actual = match kind {
            "ts" => dump_token_stream(input),
            "lit" => dump_literal(input),
            "ident" => dump_ident(input),
            "ident~" => {
                // Known difference (see the case file): only whether each
                // constructor panics must agree.
                let panics = |dump: &str| -> Vec<bool> {
                    dump.lines()
                        .map(|line| line.contains(": panic: "))
                        .collect()
                };
                let actual = dump_ident(input);
                compared += 1;
                if panics(expected) != panics(&actual) {
                    failures.push(format!(
                        "{kind}: {input:?}: rustc:\n{expected}guest:\n{actual}"
                    ));
                } else if expected != actual {
                    println!(
                        "known difference, {kind}: {input:?}: rustc {expected:?}, guest {actual:?}"
                    );
                }
                continue;
            }
            _ => continue,
        };
        compared += 1;
        if let Some(difference) = first_difference(expected, &actual) {
            failures.push(format!("{kind}: {input:?}: {difference}"));
        }
    }
    println!("compared {compared} cases with rustc");
    assert!(
        failures.is_empty(),
        "{} cases differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        compared >= 100,
        "only {compared} cases: is tests/lexer_cases.txt complete?"
    );
}

/// The guest's error for a case rustc rejects at compile time.
fn guest_error(kind: &str, input: &str) -> Option<String> {
    match kind {
        "ts!" | "ts!~" => TokenStream::from_str(input).err().map(|e| e.to_string()),
        _ => Literal::from_str(input).err().map(|e| e.to_string()),
    }
}

#[test]
fn cases_rustc_rejects_are_rejected() {
    let rejected: Vec<_> = CASES
        .iter()
        .filter(|(kind, ..)| kind.contains('!'))
        .collect();
    let mut failures = Vec::new();
    for &&(kind, input, _) in &rejected {
        if guest_error(kind, input).is_none() {
            failures.push(format!("{kind}: {input:?}: the guest accepts it"));
        }
    }
    println!("{} cases rustc rejects are rejected", rejected.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The proc-macro library of the oracle, next to this test's executable.
fn oracle_library() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's path");
    let deps = exe.parent().expect("the test's directory");
    let prefix = format!("{}wasmacro_lexer_oracle-", std::env::consts::DLL_PREFIX);
    let suffix = std::env::consts::DLL_SUFFIX;
    std::fs::read_dir(deps)
        .expect("the test's directory")
        .flatten()
        .filter(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            name.starts_with(&prefix) && name.ends_with(suffix)
        })
        .max_by_key(|entry| entry.metadata().and_then(|m| m.modified()).ok())
        .map(|entry| entry.path())
        .expect("the oracle's proc-macro library next to the test")
}

/// The rustc that built this test: next to the cargo that ran the build.
fn rustc() -> PathBuf {
    let cargo = Path::new(env!("CARGO"));
    let rustc = cargo.with_file_name(format!("rustc{}", std::env::consts::EXE_SUFFIX));
    if rustc.exists() {
        rustc
    } else {
        PathBuf::from("rustc")
    }
}

/// The first error rustc reports, without `error: ` / `error[E…]: `.
fn first_error(stderr: &str) -> Option<String> {
    let line = stderr.lines().find(|line| line.starts_with("error"))?;
    let message = line.split_once(": ").map_or(line, |(_, message)| message);
    Some(message.to_string())
}

/// Compiles `probe!` for every case rustc rejects, one rustc run each: rustc
/// must fail, with the guest's message unless the case says it may differ.
/// This is what shows the `!` cases really are compile errors in rustc.
#[test]
fn cases_rustc_rejects_fail_to_compile_with_the_same_error() {
    let library = oracle_library();
    let deps = library.parent().expect("deps directory").to_path_buf();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("lexer-probes");
    std::fs::create_dir_all(&dir).expect("create the probe directory");
    let mut checked = 0;
    let mut failures = Vec::new();
    for (number, &(kind, input, _)) in CASES.iter().enumerate() {
        if !kind.contains('!') {
            continue;
        }
        let oracle_kind = if kind.starts_with("ts") { "ts" } else { "lit" };
        let file = dir.join(format!("probe{number}.rs"));
        let source = format!(
            "pub const PROBE: &str = wasmacro_lexer_oracle::probe!({oracle_kind:?}, {input:?});\n"
        );
        std::fs::write(&file, source).expect("write a probe");
        let output = Command::new(rustc())
            .args([
                "--edition",
                "2021",
                "--crate-type",
                "lib",
                "--emit",
                "metadata",
            ])
            .arg("--crate-name")
            .arg(format!("probe{number}"))
            .arg("--out-dir")
            .arg(&dir)
            .arg("-L")
            .arg(format!("dependency={}", deps.display()))
            .arg("--extern")
            .arg(format!("wasmacro_lexer_oracle={}", library.display()))
            .arg(&file)
            .output()
            .expect("run rustc");
        checked += 1;
        let stderr = String::from_utf8_lossy(&output.stderr);
        let guest = guest_error(kind, input);
        if output.status.success() {
            failures.push(format!(
                "{kind}: {input:?}: rustc accepts it (guest: {guest:?})"
            ));
            continue;
        }
        if kind.ends_with('~') {
            continue;
        }
        let rustc_error = first_error(&stderr);
        if rustc_error != guest {
            failures.push(format!(
                "{kind}: {input:?}:\n   rustc: {rustc_error:?}\n   guest: {guest:?}"
            ));
        }
    }
    println!("{checked} cases rustc rejects were compiled with rustc");
    assert!(
        failures.is_empty(),
        "{} cases:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
