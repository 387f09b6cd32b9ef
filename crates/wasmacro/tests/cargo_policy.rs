//! `cargo wasmacro` on a project mixing wasm and native proc macros (the
//! `mixed` fixture): the policy's `deny` list, a macro reading what its
//! author and the project grant (and cargo rebuilding when that changes),
//! and `--strict`.

mod support;

use support::{Cargo, cargo_in, cargo_in_with, project_copy, summary, text};

#[test]
fn mixed_project_builds_and_macros_read_only_what_is_granted() {
    let dir = project_copy("mixed");
    // A fresh target directory: the summary's reasons are those of units
    // compiled in this run, not found fresh.
    let scratch = tempfile::tempdir().unwrap();
    let target = scratch.path().join("wasm");
    let target = target.to_str().unwrap();
    let run_wasm = |env: &[(&str, &str)]| {
        cargo_in_with(
            &dir,
            Cargo::Wasmacro,
            &["--strict", "run", "--locked", "--target-dir", target],
            env,
        )
    };
    let run = run_wasm(&[]);
    let stderr = text(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert_eq!(text(&run.stdout), "42 42 hello from a file\n\n");
    let native = cargo_in(&dir, Cargo::Plain, &["run", "--locked"]);
    assert_eq!(run.stdout, native.stdout);

    let rows = summary(&dir);
    let row = |name: &str| {
        rows.iter()
            .find(|r| r.0.starts_with(name))
            .unwrap_or_else(|| panic!("{name} not in the summary:\n{stderr}"))
            .clone()
    };
    assert_eq!(row("pure-macros").1, "wasm");
    // It imports the filesystem, and runs as wasm anyway: `--strict`
    // accepts the run.
    assert_eq!(row("fs-macros").1, "wasm");
    assert_eq!(
        row("denied-macros"),
        (
            "denied-macros v0.1.0".into(),
            "native".into(),
            "denied by the project's policy".into()
        )
    );

    // The file the macro read is in the crate's dep-info: an edit rebuilds
    // the crate and the new text shows. Plain cargo, whose native macro
    // cannot tell rustc what it read, keeps the stale text.
    std::fs::write(dir.join("greeting.txt"), "hello again\n").unwrap();
    let run = run_wasm(&[]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    assert_eq!(text(&run.stdout), "42 42 hello again\n\n");
    let native = cargo_in(&dir, Cargo::Plain, &["run", "--locked"]);
    assert_eq!(text(&native.stdout), "42 42 hello from a file\n\n");

    // So is the granted variable: setting it rebuilds; an ungranted one is
    // never seen.
    let run = run_wasm(&[("MIXED_GREETING_NAME", "Ferris")]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    assert_eq!(text(&run.stdout), "42 42 hello again, Ferris\n");
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

    // The policy can make the fallback an error, as `--strict` does.
    let manifest = dir.join("Cargo.toml");
    let original = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        format!("{original}\n[workspace.metadata.wasmacro]\nstrict = true\n"),
    )
    .unwrap();
    let target = scratch.path().join("strict");
    let strict = cargo_in(
        &dir,
        Cargo::Wasmacro,
        &[
            "build",
            "--locked",
            "--target-dir",
            target.to_str().unwrap(),
        ],
    );
    std::fs::write(&manifest, original).unwrap();
    let stderr = text(&strict.stderr);
    assert!(!strict.status.success(), "{stderr}");
    assert!(
        stderr.contains("`unbuildable-macros v0.1.0` cannot run as wasm (its wasm build failed"),
        "{stderr}"
    );
}

#[test]
fn the_policy_command_shows_what_each_macro_may_read_and_who_granted_it() {
    let dir = project_copy("mixed");
    let output = support::wasmacro()
        .current_dir(&dir)
        .args(["policy", "--json"])
        .env("CARGO", env!("CARGO"))
        .output()
        .expect("wasmacro runs");
    assert!(output.status.success(), "{}", text(&output.stderr));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let package = |name: &str| {
        report["packages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["package"] == name)
            .unwrap_or_else(|| panic!("{name} not in {report:#}"))
            .clone()
    };
    let fs = package("fs-macros");
    assert_eq!(fs["placement"]["runs"], "wasm");
    assert_eq!(
        fs["read"],
        serde_json::json!([{
            "path": "$CARGO_MANIFEST_DIR/greeting.txt",
            "origin": "declared by fs-macros's author"
        }])
    );
    let env: Vec<&str> = fs["env"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert!(env.contains(&"MIXED_GREETING_NAME"), "{env:?}");
    assert!(env.contains(&"CARGO_PKG_*"), "{env:?}");
    assert_eq!(package("pure-macros")["read"], serde_json::json!([]));
    assert_eq!(package("denied-macros")["placement"]["runs"], "native");
    let built_in = report["built_in"].as_array().unwrap();
    assert!(
        built_in.iter().any(|b| b[0] == "askama_macros"),
        "{built_in:?}"
    );
}
