//! `wasmacro build`: reproducible components, and clear errors for packages
//! it cannot build.

mod support;

use std::path::Path;
use support::{SERDE_DERIVE, component, copy_dir, fixtures, wasmacro};

/// The registry directory of serde_derive, as cargo resolved it for the
/// fixtures.
fn serde_derive_source() -> std::path::PathBuf {
    let output = std::process::Command::new(env!("CARGO"))
        .current_dir(fixtures().join("deps"))
        .args(["metadata", "--format-version", "1"])
        .output()
        .unwrap();
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let package = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "serde_derive")
        .expect("serde_derive is a fixture dependency");
    Path::new(package["manifest_path"].as_str().unwrap())
        .parent()
        .unwrap()
        .to_path_buf()
}

#[test]
fn serde_derive_builds_to_the_same_bytes_from_two_directories() {
    let from_registry = std::fs::read(component(SERDE_DERIVE)).unwrap();
    let source = serde_derive_source();
    let mut hashes = Vec::new();
    let mut components = Vec::new();
    for place in ["first", "second/nested/deeper"] {
        let root = tempfile::tempdir().unwrap();
        let package = root.path().join(place).join("serde_derive");
        copy_dir(&source, &package);
        let out = root.path().join("out");
        let output = wasmacro()
            .arg("build")
            .arg(&package)
            .arg("--out-dir")
            .arg(&out)
            .current_dir(root.path())
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        hashes.push(String::from_utf8(output.stdout).unwrap().trim().to_string());
        components.push(std::fs::read(out.join("serde_derive.wasm")).unwrap());
    }
    println!("component hash: {}", hashes[0]);
    assert_eq!(hashes[0].len(), 64, "the build prints the component hash");
    assert_eq!(hashes[0], hashes[1]);
    assert!(
        components[0] == components[1],
        "components differ byte for byte"
    );
    assert!(
        components[0] == from_registry,
        "the path build differs from the registry build"
    );
}

#[test]
fn listing_names_every_macro_and_import() {
    let wasm = component("api-macros");
    let listing: serde_json::Value =
        serde_json::from_slice(&std::fs::read(wasm.with_extension("macros.json")).unwrap())
            .unwrap();
    // The table is in a fixed order (by the recorded declarations), not
    // source order: compare as a set.
    let mut names: Vec<_> = listing["macros"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["name"].as_str().unwrap(), m["kind"].as_str().unwrap()))
        .collect();
    names.sort();
    let mut expected = [
        ("Inspect", "derive"),
        ("construct", "attribute"),
        ("shadow", "function"),
        ("point_at", "function"),
        ("counter", "function"),
        ("sleepy", "function"),
        ("keep_span", "function"),
        ("use_kept_span", "function"),
    ];
    expected.sort();
    assert_eq!(names, expected);
    let imports = listing["imports"].as_array().unwrap();
    assert!(
        imports.iter().all(|i| {
            let i = i.as_str().unwrap();
            [
                "wasi:cli/",
                "wasi:io/",
                "wasi:random/",
                "wasi:clocks/",
                "wasi:filesystem/",
                "wasmacro:proc-macro/",
            ]
            .iter()
            .any(|p| i.starts_with(p))
        }),
        "unexpected import in {imports:?}"
    );
    // `inspect` reads the same declarations from the component itself.
    let output = wasmacro().arg("inspect").arg(&wasm).output().unwrap();
    assert!(output.status.success());
    let inspected: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(inspected["macros"], listing["macros"]);
    assert_eq!(inspected["component"], listing["component"]);
}

#[test]
fn a_crate_that_is_not_a_proc_macro_is_a_clear_error() {
    let output = wasmacro()
        .args(["build", "--crate", "itoa@1.0.15", "--out-dir"])
        .arg(tempfile::tempdir().unwrap().path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("itoa@1.0.15") && stderr.contains("not a proc-macro crate"),
        "{stderr}"
    );
}

#[test]
fn invalid_component_bytes_are_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let bogus = dir.path().join("bogus.wasm");
    std::fs::write(&bogus, b"\0asm\x0d\0\x01\0truncated").unwrap();
    let output = wasmacro().arg("inspect").arg(&bogus).output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("is not a valid wasmacro proc-macro component"),
        "{stderr}"
    );
}

#[test]
fn the_component_does_not_depend_on_where_the_cache_lives() {
    // Two machines differ in where their caches are: build in two fresh caches
    // at different absolute paths (so nothing is shared) and compare bytes.
    let roots = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let mut components = Vec::new();
    for (index, root) in roots.iter().enumerate() {
        let cache = root.path().join("a".repeat(index + 1)).join("cache");
        let out = root.path().join("out");
        let output = wasmacro()
            .env("WASMACRO_CACHE_DIR", &cache)
            .arg("build")
            .arg(fixtures().join("api-macros"))
            .arg("--out-dir")
            .arg(&out)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        components.push(std::fs::read(out.join("api-macros.wasm")).unwrap());
    }
    assert!(
        components[0] == components[1],
        "the component's bytes depend on the cache location"
    );
    // The package is only read: cargo would have left a lockfile beside it.
    assert!(!fixtures().join("api-macros/Cargo.lock").exists());
}

#[test]
fn expand_runs_one_macro_on_source_text() {
    let wasm = component("api-macros");
    let run = |args: &[&str], stdin: &str| {
        let mut child = wasmacro()
            .arg("expand")
            .arg(&wasm)
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), stdin.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    // The macro looks at its input's second token: spans and printing work
    // outside rustc too.
    let output = run(&["point_at"], "first second third");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("pointing at `second`"));
    // The observations the derive makes include source text and positions.
    let output = run(&["Inspect"], "struct S {\n    field: u8,\n}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success()
            && stdout.contains("@2:5-2:10")
            && stdout.contains("Some(\\\"field\\\")"),
        "{stdout}"
    );
    // Unknown macros name the ones that exist.
    let output = run(&["nope"], "");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success()
            && stderr.contains("no macro named `nope`")
            && stderr.contains("point_at"),
        "{stderr}"
    );
}

#[test]
fn a_crate_whose_features_declare_no_macro_builds_an_empty_component() {
    let out = tempfile::tempdir().unwrap();
    let mut declared = Vec::new();
    for features in [&[][..], &["--features", "on"][..]] {
        let output = wasmacro()
            .arg("build")
            .arg(fixtures().join("feature-gated-macros"))
            .args(features)
            .arg("--out-dir")
            .arg(out.path())
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let listing =
            std::fs::read_to_string(out.path().join("feature-gated-macros.macros.json")).unwrap();
        let listing: serde_json::Value = serde_json::from_str(&listing).unwrap();
        declared.push(listing["macros"].as_array().unwrap().len());
    }
    assert_eq!(declared, [0, 1]);
    assert!(!fixtures().join("feature-gated-macros/Cargo.lock").exists());
}
