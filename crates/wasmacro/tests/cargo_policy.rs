//! `cargo wasmacro` on a project mixing wasm and native proc macros (the
//! `mixed` fixture): the policy's `deny` list, the fallback of a macro that
//! needs the filesystem, and `--strict`.

mod support;

use support::{Cargo, cargo_in, project_copy, summary, text};

#[test]
fn mixed_project_builds_and_strict_names_the_native_macro() {
    let dir = project_copy("mixed");
    // A fresh target directory: the fallback warning and the summary's
    // reasons are those of units compiled in this run, not found fresh.
    let scratch = tempfile::tempdir().unwrap();
    let target = scratch.path().join("wasm");
    let target = target.to_str().unwrap();
    let run = cargo_in(
        &dir,
        Cargo::Wasmacro,
        &["run", "--locked", "--target-dir", target],
    );
    let stderr = text(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert_eq!(text(&run.stdout), "42 42 hello from a file\n\n");
    let native = cargo_in(&dir, Cargo::Plain, &["run", "--locked"]);
    assert_eq!(run.stdout, native.stdout);

    let rows = summary(&stderr);
    let row = |name: &str| {
        rows.iter()
            .find(|r| r.0.starts_with(name))
            .unwrap_or_else(|| panic!("{name} not in the summary:\n{stderr}"))
            .clone()
    };
    assert_eq!(row("pure-macros").1, "wasm");
    assert_eq!(
        row("denied-macros"),
        (
            "denied-macros v0.1.0".into(),
            "native".into(),
            "denied by the project's policy".into()
        )
    );
    let fs = row("fs-macros");
    assert_eq!(fs.1, "native");
    assert!(fs.2.starts_with("it needs the filesystem"), "{fs:?}");
    assert!(
        stderr.contains("warning: fs-macros v0.1.0 runs natively: it needs the filesystem"),
        "{stderr}"
    );

    // Fresh units: `--strict` checks what the earlier build recorded.
    let strict = cargo_in(
        &dir,
        Cargo::Wasmacro,
        &["--strict", "build", "--locked", "--target-dir", target],
    );
    let stderr = text(&strict.stderr);
    assert!(!strict.status.success(), "{stderr}");
    assert!(
        stderr.contains("`--strict`: these proc macros run natively: fs-macros v0.1.0"),
        "{stderr}"
    );
    assert!(!stderr.contains("denied-macros v0.1.0 ("), "{stderr}");

    // From scratch: the wrapper refuses the fallback while compiling.
    let target = scratch.path().join("strict");
    let target = target.to_str().unwrap();
    let strict = cargo_in(
        &dir,
        Cargo::Wasmacro,
        &["--strict", "build", "--locked", "--target-dir", target],
    );
    let stderr = text(&strict.stderr);
    assert!(!strict.status.success(), "{stderr}");
    assert!(
        stderr.contains("`fs-macros v0.1.0` cannot run as wasm (it needs the filesystem"),
        "{stderr}"
    );
    assert!(
        stderr.contains("`--strict` forbids running it natively"),
        "{stderr}"
    );
}

#[test]
fn a_bad_policy_is_a_clear_error() {
    let dir = project_copy("mixed");
    let bad = dir.join("bad");
    std::fs::create_dir_all(bad.join("src")).unwrap();
    std::fs::write(
        bad.join("Cargo.toml"),
        "[package]\nname = \"bad\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\n\
         [package.metadata.wasmacro]\nrun = \"some\"\n\n[workspace]\n",
    )
    .unwrap();
    std::fs::write(bad.join("src/lib.rs"), "").unwrap();
    let output = cargo_in(&bad, Cargo::Wasmacro, &["build"]);
    let stderr = text(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains(
            "`run` must be \"all\", \"opted-in\" or a list of package names, not `\"some\"`"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("Cargo.toml"), "{stderr}");
}

#[test]
fn a_failed_wasm_build_names_the_compiler_error_and_the_log() {
    let dir = project_copy("unbuildable");
    let scratch = tempfile::tempdir().unwrap();
    let target = scratch.path().join("wasm");
    let run = cargo_in(
        &dir,
        Cargo::Wasmacro,
        &["run", "--locked", "--target-dir", target.to_str().unwrap()],
    );
    let stderr = text(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert_eq!(text(&run.stdout), "42\n");
    let warning = stderr
        .lines()
        .find(|l| l.starts_with("warning: unbuildable-macros v0.1.0 runs natively:"))
        .unwrap_or_else(|| panic!("no fallback warning:\n{stderr}"));
    // rustc's error in full, not cut at some width, in the file the user
    // has, and where the whole component build's output is.
    assert!(
        warning.contains(&format!("{}/macros/src/lib.rs:4:1: ", dir.display())),
        "{warning}"
    );
    assert!(
        warning.contains(
            "error: unbuildable-macros refuses wasm targets, with a reason longer than eighty characters"
        ),
        "{warning}"
    );
    let log = warning
        .split("(the whole log: ")
        .nth(1)
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("no log path in {warning}"));
    let log = std::fs::read_to_string(log).unwrap();
    assert!(log.contains("refuses wasm targets"), "{log}");
}
