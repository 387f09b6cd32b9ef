//! The editor runs a project's macros as wasm too. The real rust-analyzer
//! loads a project with wasmacro's *permanent opt-in* (the `editor`
//! fixture, with `.cargo/config.toml` naming the wasmacro under test): its
//! `cargo check` goes through the wrapper, which gives it shims, and its
//! proc-macro server, loading those, has `wasmacro serve` expand serde's
//! derives and the fixture's own macros in the sandbox. What shows it:
//! names only the wasm build of a macro defines resolve, serde's derived
//! methods resolve, the expansion log written while rust-analyzer ran names
//! every macro, a macro's printing reaches stderr and not the server's
//! protocol, spans rust-analyzer cannot place degrade instead of failing,
//! and a panicking macro is one diagnostic with its message while the
//! server goes on expanding.

mod support;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Instant, SystemTime};
use support::{cache_dir, generated, project_copy, text};

const INSTALL: &str = "run `rustup component add rust-analyzer rust-src` \
                       (the README's test command does)";

#[test]
fn rust_analyzer_expands_the_projects_macros_as_wasm() {
    let started = Instant::now();
    let version = rust_analyzer_version();
    let dir = project_copy("editor");
    require_rust_src(&dir);
    write_if_changed(&dir.join(".cargo/config.toml"), &opt_in());

    // Plain cargo, as the user builds: the wrapper builds the components
    // (the slow part, found in the cache when rust-analyzer's own `cargo
    // check` asks for them again) and rustc expands as wasm too (a native
    // `generated!()` would leave `generated_by_wasm` undefined).
    // The local macro crate is built by this run's wrapper (a project copy
    // kept from an earlier run would be fresh), so the freshness check
    // below sees what it writes.
    let clean = in_project(&dir, env!("CARGO"))
        .args(["clean", "-p", "editor-macros"])
        .output()
        .expect("cargo runs");
    assert!(clean.status.success(), "{}", text(&clean.stderr));
    let check = in_project(&dir, env!("CARGO"))
        .args(["check", "--workspace", "--all-targets", "--locked"])
        .output()
        .expect("cargo runs");
    assert!(check.status.success(), "{}", text(&check.stderr));
    let checked = started.elapsed();
    // And the next `cargo check` is fresh: what the wrapper adds to a macro
    // unit's dep-info holds under plain cargo too (it once recorded the
    // unset policy variable as empty, so every run rebuilt every macro).
    let again = in_project(&dir, env!("CARGO"))
        .args(["check", "--workspace", "--all-targets", "--locked"])
        .arg("--message-format=json")
        .output()
        .expect("cargo runs");
    assert!(again.status.success(), "{}", text(&again.stderr));
    let stale: Vec<String> = text(&again.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["fresh"] != true)
        .map(|m| m["target"]["name"].to_string())
        .collect();
    assert!(
        stale.is_empty(),
        "a second `cargo check` under the permanent opt-in rebuilt {stale:?}"
    );

    let log = generated().join("editor-expansions.log");
    std::fs::write(&log, "").unwrap();
    let before = editor_metadata(&dir);
    let analyzer_started = Instant::now();
    let analyzer = in_project(&dir, "rust-analyzer")
        .arg("diagnostics")
        .arg(&dir)
        .env("WASMACRO_EXPANSION_LOG", &log)
        // Every expansion runs in the guest, none is answered from the
        // expansion cache's entries of the check above.
        .env("WASMACRO_EXPANSION_CACHE", "off")
        .output()
        .expect("rust-analyzer runs");
    let analyzed = analyzer_started.elapsed();
    let (stdout, stderr) = (text(&analyzer.stdout), text(&analyzer.stderr));
    let report = format!("{version}--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}");
    eprintln!(
        "cargo check {checked:.1?}, rust-analyzer diagnostics {analyzed:.1?}\n{}",
        stderr
            .lines()
            .filter(|l| l.starts_with("editor-macros spans:"))
            .collect::<Vec<_>>()
            .join("\n")
    );

    // The log below holds the editor's expansions only: rust-analyzer's own
    // `cargo check` builds proc macros and build scripts
    // (`--compile-time-deps`), not the crate that uses them, so no rustc
    // expanded them through the wrapper meanwhile.
    assert!(before.len() >= 2, "{before:?}");
    assert_eq!(
        before,
        editor_metadata(&dir),
        "rust-analyzer's `cargo check` checked `editor`: rustc's expansions are in the log too\n{report}"
    );

    // rust-analyzer read every file, and exits with an error because the
    // panic below is an error diagnostic.
    assert!(stdout.contains("diagnostic scan complete"), "{report}");
    assert!(
        !analyzer.status.success() && stderr.contains("Error: diagnostic error detected"),
        "{report}"
    );
    assert!(
        !stderr.contains("can't load standard library"),
        "rust-analyzer has no standard library sources: {INSTALL}\n{report}"
    );
    // rust-analyzer logs its own errors here: a macro that wrote to the
    // proc-macro server's stdout ("proc-macro tried to print"), a server it
    // cannot talk to; and so would wasmacro.
    assert!(
        !stderr.lines().any(|l| l.contains("ERROR")),
        "errors logged\n{report}"
    );

    let diagnostics = diagnostics(&stdout);
    let panic = "proc-macro panicked: editor-macros refuses to define `boom`";
    // Nothing else is an error. Had the expansions not run as wasm, or
    // failed: E0425 for `generated_by_wasm` (a native `generated!()` defines
    // `generated_natively`), for `spans_inspected` and `after_the_panic`;
    // E0599 for `point.serialize` and `Point::deserialize`; a `macro-error`
    // naming wasmacro's reason for each macro.
    let errors: Vec<&String> = diagnostics
        .iter()
        .filter(|d| d.contains(": Error ") && !d.contains(panic))
        .collect();
    assert!(
        errors.is_empty(),
        "unexpected errors: {errors:#?}\n{report}"
    );

    // The panic is reported where the macro was called, with its message,
    // as rustc reports a native macro's panic.
    let panics: Vec<&String> = diagnostics.iter().filter(|d| d.contains(panic)).collect();
    assert!(
        panics.len() == 1 && panics[0].contains("src/panics.rs: Error Ra(\"macro-error\""),
        "the panic is not one `macro-error` in src/panics.rs\n{report}"
    );

    // What the guest printed to stdout and stderr, the shim passed on to the
    // proc-macro server's stderr, which rust-analyzer shows; none of it
    // reached the server's stdout, its protocol.
    for stream in ["stdout", "stderr"] {
        let line =
            format!("editor-macros printed to {stream}: generated!() defines generated_by_wasm");
        assert!(stderr.contains(&line), "{line:?} not shown\n{report}");
    }
    assert!(!stdout.contains("editor-macros printed"), "{report}");

    // Every macro ran in wasmacro's runtime while rust-analyzer ran: the
    // expansion log's lines are `crate\tmacro\trequest\tresult\tread`.
    let log = std::fs::read_to_string(&log).unwrap();
    let expanded: Vec<(&str, &str)> = log
        .lines()
        .filter_map(|line| {
            let mut fields = line.split('\t');
            Some((fields.next()?, fields.next()?))
        })
        .collect();
    let count = |krate: &str, name: &str| expanded.iter().filter(|e| **e == (krate, name)).count();
    for (krate, name, at_least) in [
        ("serde_derive", "Serialize", 1),
        ("serde_derive", "Deserialize", 1),
        ("editor_macros", "generated", 1),
        ("editor_macros", "inspect_spans", 1),
        // `calm!(boom)`, which panicked, and `calm!(after_the_panic)`.
        ("editor_macros", "calm", 2),
    ] {
        assert!(
            count(krate, name) >= at_least,
            "{krate}'s `{name}` is not in the expansion log {at_least} times:\n{log}\n{report}"
        );
    }
    // The panic did not end the server: it expanded macros after both `calm`
    // expansions (rust-analyzer expands in the order of the source, and
    // `panics.rs` comes first).
    let last_calm = expanded.iter().rposition(|e| e.1 == "calm").unwrap();
    assert!(
        last_calm + 1 < expanded.len(),
        "nothing was expanded after the panic:\n{log}"
    );
    eprintln!("editor test took {:.1?}", started.elapsed());
}

/// rust-analyzer's version line; the test fails, never skips, without it.
fn rust_analyzer_version() -> String {
    match Command::new("rust-analyzer").arg("--version").output() {
        Ok(output) if output.status.success() => text(&output.stdout),
        Ok(output) => panic!(
            "rust-analyzer does not run: {INSTALL}\n{}",
            text(&output.stderr)
        ),
        Err(e) => panic!("rust-analyzer does not run ({e}): {INSTALL}"),
    }
}

/// rust-analyzer needs the standard library's sources: without them it
/// cannot resolve `derive` or `println!`, and every expansion fails.
fn require_rust_src(dir: &Path) {
    let output = Command::new("rustc")
        .current_dir(dir)
        .args(["--print", "sysroot"])
        .output()
        .expect("rustc runs");
    let sysroot = PathBuf::from(text(&output.stdout).trim());
    assert!(
        sysroot.join("lib/rustlib/src/rust/library/core").is_dir(),
        "no standard library sources in {}: {INSTALL}",
        sysroot.display()
    );
}

/// The project's permanent opt-in, as the README gives it, with the
/// wasmacro under test.
fn opt_in() -> String {
    let wasmacro = serde_json::to_string(env!("CARGO_BIN_EXE_wasmacro")).unwrap();
    format!(
        "[build]\nrustc-wrapper = {wasmacro}\n\
         [env]\nWASMACRO_WORKSPACE = {{ value = \".\", relative = true }}\n\
         WASMACRO_SERVER = {wasmacro}\n"
    )
}

/// `program` in `dir`, with the environment of [`support::cargo_in_with`]
/// and nothing of wasmacro's or rust-analyzer's settings but the shared
/// component cache (rust-analyzer runs `cargo check` itself, in this
/// environment too).
fn in_project(dir: &Path, program: impl AsRef<OsStr>) -> Command {
    let mut command = Command::new(program);
    command
        .current_dir(dir)
        .env("CARGO", env!("CARGO"))
        .env("CARGO_TERM_COLOR", "never")
        .env("WASMACRO_CACHE_DIR", cache_dir());
    for name in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET_DIR",
        "RUSTC_WRAPPER",
        "CARGO_BUILD_RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "RA_LOG",
    ] {
        command.env_remove(name);
    }
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("WASMACRO_") && name != "WASMACRO_CACHE_DIR" {
            command.env_remove(name);
        }
    }
    command
}

/// The diagnostics `rust-analyzer diagnostics` printed, one line each
/// (`at crate C, file F: SEVERITY CODE from … to …: MESSAGE`); its progress
/// display shares the lines.
fn diagnostics(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|line| line.find("at crate ").map(|at| line[at..].to_string()))
        .collect()
}

/// The metadata rustc wrote for the `editor` crate (library and test
/// harness) with its modification times: a rustc checking it again, and
/// so expanding its macros, writes them anew.
fn editor_metadata(dir: &Path) -> BTreeMap<PathBuf, SystemTime> {
    std::fs::read_dir(dir.join("target/debug/deps"))
        .unwrap()
        .flatten()
        .filter(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            name.starts_with("libeditor-") && name.ends_with(".rmeta")
        })
        .map(|entry| (entry.path(), entry.metadata().unwrap().modified().unwrap()))
        .collect()
}

/// Writes `text` to `path` unless it already holds it (cargo's
/// fingerprints in the project copy survive from one run to the next).
fn write_if_changed(path: &Path, text: &str) {
    if std::fs::read_to_string(path).ok().as_deref() != Some(text) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}
