//! Hostile and broken macros: each case of the `hostile` fixture (one example
//! per case) must end in a rustc error naming the macro, what it attempted or
//! which limit it hit, and a hint; nothing may hang, crash rustc or reach
//! outside the sandbox; time, randomness and hash order must come out the same
//! on every run.

mod support;

use std::collections::BTreeMap;
use std::io::Read as _;
use std::io::Write as _;
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use support::{cargo_report, project_copy, text};

/// Every case, and what its diagnostics must say (all of it, in order of
/// appearance within the rendered errors). Each case also names the macro.
const CASES: &[(&str, &[&str])] = &[
    (
        "read_file_absolute",
        &[
            "`read_file` of `hostile_macros` (wasm)",
            "the macro tried to read `/etc/passwd`, which no grant covers",
            "help: grants name paths below `$CARGO_MANIFEST_DIR`",
        ],
    ),
    (
        "read_file_relative",
        &[
            // wasi-libc resolves a relative path from `/`; nothing is there,
            // so the macro gets "not found", as it would natively, and the
            // error says where it looked.
            "proc macro panicked",
            "reading the file",
            "NotFound",
            "note: it looked for `/Cargo.toml`, which does not exist",
        ],
    ),
    (
        "read_file_in_manifest_dir",
        &[
            "`read_file_in_manifest_dir` of `hostile_macros` (wasm)",
            "/Cargo.toml`, which no grant covers",
            // The exact policy line that would grant it.
            "[workspace.metadata.wasmacro.grants]",
            "hostile-macros = { read = [\"$CARGO_MANIFEST_DIR/Cargo.toml\"] }",
        ],
    ),
    (
        "write_file",
        &[
            "`write_file` of `hostile_macros` (wasm)",
            "the macro tried to write to `/tmp/",
            "but the sandbox is read-only",
            "help: macros are never granted writing",
        ],
    ),
    (
        "read_env",
        &[
            "proc macro panicked",
            "reading the variable: NotPresent",
            "it read its environment, which in the sandbox holds only the variables granted to \
             it (CARGO_PKG_*, CARGO_CRATE_NAME",
            "hostile-macros = { env = [\"NAME\"] }",
        ],
    ),
    (
        "tcp_connect",
        &[
            "`tcp_connect` of `hostile_macros` (wasm)",
            "tried to open a TCP socket, but the sandbox has no network",
            "help:",
        ],
    ),
    (
        "resolve_host",
        &[
            "`resolve_host` of `hostile_macros` (wasm)",
            "tried to resolve the host name `localhost`",
            "help:",
        ],
    ),
    (
        "spawn_process",
        &[
            "proc macro panicked",
            "operation not supported on this platform",
            "processes, threads or signals",
        ],
    ),
    (
        "loop_forever",
        &[
            "`loop_forever` of `hostile_macros` (wasm)",
            // The project's limit, from its Cargo.toml.
            "more than 1000000000 wasm instructions (the `fuel` limit)",
            "raise `fuel` in `[workspace.metadata.wasmacro.limits]`",
        ],
    ),
    (
        "allocate_forever",
        &[
            "`allocate_forever` of `hostile_macros` (wasm)",
            "grow its memory past 256MiB (the `memory` limit)",
            "raise `memory`",
        ],
    ),
    (
        "recurse_forever",
        &[
            "`recurse_forever` of `hostile_macros` (wasm)",
            "overflowed its 512KiB wasm stack (the `stack` limit)",
            "raise `stack`",
        ],
    ),
    (
        "just_panic",
        &["proc macro panicked", "message: this macro always panics"],
    ),
    (
        "panic_in_panic_hook",
        &[
            "`panic_in_panic_hook` of `hostile_macros` (wasm)",
            "aborted without reporting a panic (a panic inside a panic hook",
        ],
    ),
    (
        "forged_span",
        &[
            "`forged_span` of `hostile_macros` (wasm)",
            "span handle 0xabcdef, which this expansion never handed out",
            "help: rustc cannot accept these tokens",
        ],
    ),
    (
        "forged_ident",
        &[
            "`forged_ident` of `hostile_macros` (wasm)",
            "an invalid identifier",
            "help: rustc cannot accept these tokens",
        ],
    ),
    (
        "forged_literal",
        &[
            "`forged_literal` of `hostile_macros` (wasm)",
            "an invalid literal",
            "help: rustc cannot accept these tokens",
        ],
    ),
    (
        "forged_punct",
        &[
            "`forged_punct` of `hostile_macros` (wasm)",
            "an invalid punctuation character 'a'",
            "help: rustc cannot accept these tokens",
        ],
    ),
    (
        "huge_output",
        &[
            "`huge_output` of `hostile_macros` (wasm)",
            "returned 100.0 MiB of tokens, more than the `output` limit of 16MiB",
            "raise `output`",
        ],
    ),
];

/// Cases that must compile and print the same on every run.
const DETERMINISTIC: &[&str] = &["clock", "hash_order", "random", "read_granted"];

const SECRET_VAR: &str = "WASMACRO_HOSTILE_SECRET";
/// The paths the examples name, replaced by paths of this run.
const WRITTEN: &str = "/tmp/wasmacro-hostile-write.txt";
const SPAWNED: &str = "/tmp/wasmacro-hostile-spawned.txt";

/// Rewrites an example's source, as the test needs it for this run.
fn rewrite(example: &Path, from: &str, to: &str) {
    let source = std::fs::read_to_string(example).unwrap();
    assert!(source.contains(from), "{}: no {from}", example.display());
    std::fs::write(example, source.replace(from, to)).unwrap();
}

/// The rendered errors of each example, concatenated, keyed by example name.
fn errors_by_example(output: &std::process::Output) -> BTreeMap<String, String> {
    cargo_report(output)
        .diagnostics
        .into_iter()
        .filter_map(|(target, diagnostics)| {
            let name = target.strip_prefix("example ")?.to_string();
            let errors: String = diagnostics
                .into_iter()
                .filter(|d| d.starts_with("error"))
                .collect();
            (!errors.is_empty()).then_some((name, errors))
        })
        .collect()
}

fn first_line_and_notes(rendered: &str) -> String {
    rendered
        .lines()
        .filter(|l| l.starts_with("error") || l.contains("= help") || l.contains("note:"))
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" | ")
}

#[test]
fn every_hostile_macro_gets_a_clear_error_and_nothing_escapes() {
    hostile_cases(false);
}

/// The same cases with the runtime loaded into rustc's process: every trap
/// and limit gives the server's error, and rustc survives them all.
#[test]
fn in_process_every_hostile_macro_gets_the_same_errors() {
    hostile_cases(true);
}

fn hostile_cases(in_process: bool) {
    // One at a time: the cases are heavy (a 100 MiB output, endless loops),
    // and the `timeout` limit is wall-clock time.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    // Each transport has its own copy (the test rewrites examples) and so
    // its own target directory: cargo does not track the transport, and
    // would find the other's artifacts fresh.
    let dir = if in_process {
        support::project_copy_at("hostile", &support::generated().join("hostile-in-process"))
    } else {
        project_copy("hostile")
    };
    let target_dir = dir.join("target");
    // A port that listens for the macro's connection; nothing may arrive.
    let listener = TcpListener::bind("127.0.0.1:0").expect("a local port");
    listener.set_nonblocking(true).unwrap();
    let address = listener.local_addr().unwrap();
    rewrite(
        &dir.join("examples/tcp_connect.rs"),
        "127.0.0.1:9",
        &address.to_string(),
    );
    // Files the macros try to create: none may appear.
    let effects = tempfile::tempdir().unwrap();
    let written = effects.path().join("written.txt");
    let spawned = effects.path().join("spawned.txt");
    rewrite(
        &dir.join("examples/write_file.rs"),
        WRITTEN,
        &written.display().to_string(),
    );
    rewrite(
        &dir.join("examples/spawn_process.rs"),
        SPAWNED,
        &spawned.display().to_string(),
    );
    let secret = format!("secret-{}", std::process::id());

    let started = std::time::Instant::now();
    let output = {
        let mut command = support::wasmacro();
        command
            .current_dir(&dir)
            .args([
                "cargo",
                "build",
                "--locked",
                "--examples",
                "--keep-going",
                "--message-format=json",
            ])
            .arg("--target-dir")
            .arg(&target_dir)
            .env("CARGO", env!("CARGO"))
            .env("CARGO_TERM_COLOR", "never")
            .env(SECRET_VAR, &secret)
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("RUSTC_WRAPPER");
        if in_process {
            support::in_process(&mut command);
        } else {
            support::server(&mut command);
        }
        command.output().expect("cargo wasmacro runs")
    };
    let elapsed = started.elapsed();
    let stderr = text(&output.stderr);
    assert!(!output.status.success(), "the hostile cases must fail");
    // rustc itself never crashed: an internal compiler error or a signal
    // would say so.
    assert!(!stderr.contains("internal compiler error"), "{stderr}");
    assert!(!stderr.contains("SIGSEGV"), "{stderr}");
    assert!(
        stderr.contains("hostile-macros v0.1.0  wasm    policy: all"),
        "{stderr}"
    );

    let errors = errors_by_example(&output);
    // Written past the test harness's capture, so CI logs show every case.
    let mut log = std::io::stderr().lock();
    let _ = writeln!(log, "\n{:<28} outcome", "case");
    let mut failures = Vec::new();
    for (case, expected) in CASES {
        let rendered = errors.get(*case).map(String::as_str).unwrap_or_default();
        let _ = writeln!(log, "{case:<28} {}", first_line_and_notes(rendered));
        let mut rest = rendered;
        for needle in *expected {
            match rest.find(needle) {
                Some(at) => rest = &rest[at + needle.len()..],
                None => failures.push(format!("{case}: expected {needle:?} in:\n{rendered}")),
            }
        }
        // rustc points at the invocation, which names the macro.
        let at = format!("--> examples/{case}.rs");
        if !(rendered.contains(&at) && rendered.contains("hostile_macros::")) {
            failures.push(format!(
                "{case}: the error does not point at the macro:\n{rendered}"
            ));
        }
    }
    for case in DETERMINISTIC {
        let outcome = errors
            .get(*case)
            .map_or("compiles".to_string(), |e| e.clone());
        let _ = writeln!(log, "{case:<28} {outcome}");
    }
    let _ = writeln!(log, "(all cases: {:.1} s)\n", elapsed.as_secs_f64());
    drop(log);
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));

    // Nothing reached outside the sandbox.
    assert!(!written.exists(), "a macro wrote {}", written.display());
    assert!(!spawned.exists(), "a macro spawned a process");
    match listener.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        Ok((mut stream, _)) => {
            let mut bytes = Vec::new();
            let _ = stream.read_to_end(&mut bytes);
            panic!("a macro connected to {address} and sent {bytes:?}");
        }
        Err(e) => panic!("accept failed: {e}"),
    }
    let everything = format!("{}{}", text(&output.stdout), stderr);
    assert!(!everything.contains(&secret), "the secret leaked");

    // Time stands still in the sandbox; randomness and hash order are fixed.
    let clock = run_example(&target_dir, "clock");
    assert!(
        clock.starts_with("wall clock 0 ns since the epoch, 0 ns elapsed"),
        "{clock}"
    );
    for case in DETERMINISTIC {
        assert!(!errors.contains_key(*case), "{case}: {}", errors[*case]);
    }
    // The one file its author grants is read.
    assert_eq!(
        run_example(&target_dir, "read_granted"),
        "granted contents\n\n"
    );
}

fn run_example(target_dir: &Path, name: &str) -> String {
    let output = Command::new(target_dir.join("debug/examples").join(name))
        .output()
        .expect("the example runs");
    assert!(output.status.success());
    text(&output.stdout)
}
