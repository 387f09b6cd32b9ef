//! Build scripts as wasm. The `build-scripts` fixture depends on real
//! crates.io packages whose build scripts only compute (cfg emitters, code
//! generators) and has a generator of its own: `cargo wasmacro test` runs
//! those as wasm and must give what `cargo test` gives — the same test
//! results and diagnostics, byte-identical `OUT_DIR`s, also from a copy of
//! the project at another path. The `hostile-build-scripts` fixture's
//! scripts each reach out of the sandbox one way and must fail saying how,
//! having written nothing outside their `OUT_DIR`.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use support::{
    Cargo, cargo_in, cargo_in_with, cargo_report, generated, project_copy, project_copy_at,
    summary_of_kind, text,
};

/// The fixture's packages whose build scripts are pure.
const RUN_AS_WASM: &[&str] = &[
    "borsh",
    "build-scripts-app",
    "crossbeam-utils",
    "crunchy",
    "gen-sys",
    "mime_guess",
    "parking_lot_core",
    "serde_json",
    "target-triple",
    "typenum",
];

/// Those whose build scripts run rustc.
const RUN_NATIVELY: &[&str] = &["libc", "serde_core", "zmij"];

/// Builds of the `build-scripts` copy share its target directories.
static PROJECT: Mutex<()> = Mutex::new(());

/// Every `OUT_DIR` under `target`'s `debug/build`, by package: each file's
/// path below it and bytes. (A package's latest run: a copy kept between
/// test runs keeps the runs of earlier versions of its scripts too.)
fn out_dirs(target: &Path) -> BTreeMap<String, BTreeMap<String, Vec<u8>>> {
    let mut latest: BTreeMap<String, (std::time::SystemTime, PathBuf)> = BTreeMap::new();
    for entry in std::fs::read_dir(target.join("debug/build")).unwrap() {
        let dir = entry.unwrap().path();
        let Ok(ran) = std::fs::metadata(dir.join("output")).and_then(|m| m.modified()) else {
            continue;
        };
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let package = name.rsplit_once('-').unwrap().0.to_string();
        if latest.get(&package).is_none_or(|(time, _)| *time < ran) {
            latest.insert(package, (ran, dir.join("out")));
        }
    }
    latest
        .into_iter()
        .map(|(package, (_, out))| {
            let mut files = BTreeMap::new();
            collect(&out, &out, &mut files);
            (package, files)
        })
        .collect()
}

fn collect(root: &Path, dir: &Path, files: &mut BTreeMap<String, Vec<u8>>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect(root, &path, files);
        } else {
            let relative = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            files.insert(relative, std::fs::read(&path).unwrap());
        }
    }
}

/// The files that differ between two sets of `OUT_DIR`s, for a message.
fn differences(
    a: &BTreeMap<String, BTreeMap<String, Vec<u8>>>,
    b: &BTreeMap<String, BTreeMap<String, Vec<u8>>>,
) -> Vec<String> {
    let packages: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    let mut differ = Vec::new();
    for package in packages {
        let (x, y) = (a.get(package), b.get(package));
        let files: std::collections::BTreeSet<&String> =
            x.into_iter().chain(y).flat_map(|f| f.keys()).collect();
        for file in files {
            if x.and_then(|f| f.get(file)) != y.and_then(|f| f.get(file)) {
                differ.push(format!("{package}: {file}"));
            }
        }
    }
    differ
}

/// The build script executable cargo runs for `package` under `target`
/// (`build-script-build`, or `build-script-main` for typenum's
/// `build/main.rs`).
fn executable(target: &Path, package: &str) -> PathBuf {
    std::fs::read_dir(target.join("debug/build"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|dir| {
            let name = dir.file_name().unwrap().to_string_lossy().into_owned();
            name.rsplit_once('-').unwrap().0 == package
        })
        .flat_map(|dir| std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()))
        .find(|file| {
            let name = file.file_name().unwrap().to_string_lossy();
            name.starts_with("build-script-")
        })
        .unwrap_or_else(|| panic!("no build script of {package} under {}", target.display()))
}

#[test]
fn pure_build_scripts_run_as_wasm_and_generate_the_same_out_dirs() {
    let _guard = PROJECT.lock().unwrap_or_else(|e| e.into_inner());
    let dir = project_copy("build-scripts");
    let args = |target: &str| {
        [
            "test",
            "--locked",
            "--message-format=json",
            "--target-dir",
            target,
            // The test harness's lines in a fixed order.
            "--",
            "--test-threads=1",
        ]
        .map(str::to_string)
    };
    let native = cargo_in(
        &dir,
        Cargo::Plain,
        &args("target/native").each_ref().map(String::as_str),
    );
    assert!(native.status.success(), "{}", text(&native.stderr));
    let wasm = cargo_in(
        &dir,
        Cargo::Wasmacro,
        &args("target/wasm").each_ref().map(String::as_str),
    );
    let stderr = text(&wasm.stderr);
    assert!(wasm.status.success(), "{stderr}");

    // The same tests passed with the same diagnostics.
    let (native_report, wasm_report) = (cargo_report(&native), cargo_report(&wasm));
    assert!(
        wasm_report
            .other
            .iter()
            .any(|l| l.contains("test result: ok. 5 passed")),
        "{:#?}",
        wasm_report.other
    );
    assert_eq!(native_report, wasm_report);

    // Byte for byte the same generated files, scripts that ran as wasm and
    // natively alike.
    let native_out = out_dirs(&dir.join("target/native"));
    let wasm_out = out_dirs(&dir.join("target/wasm"));
    assert_eq!(differences(&native_out, &wasm_out), Vec::<String>::new());
    for package in RUN_AS_WASM {
        assert!(
            wasm_out.contains_key(*package),
            "{package} generated nothing"
        );
    }
    assert!(wasm_out["typenum"]["consts.rs"].len() > 100_000);

    // The summary says which ran where, and why.
    let rows = summary_of_kind(&dir, "build-script");
    let row = |name: &str| {
        rows.iter()
            .find(|(krate, _, _)| krate.split(" v").next() == Some(name))
            .unwrap_or_else(|| panic!("{name} is not in the summary: {rows:#?}"))
    };
    for package in RUN_AS_WASM {
        assert_eq!(row(package).1, "wasm", "{:?}", row(package));
    }
    for package in RUN_NATIVELY {
        let (_, runs, why) = row(package);
        assert_eq!(runs, "native");
        assert!(
            why.contains("runs processes (it calls `std::process::Command::"),
            "{package}: {why}"
        );
        assert!(
            stderr.contains(&format!("warning: the build script of {package} v")),
            "{stderr}"
        );
    }
    // What cargo ran is the launcher of the component, not a native script.
    for package in RUN_AS_WASM {
        let script = std::fs::read(executable(&dir.join("target/wasm"), package)).unwrap();
        assert!(script.starts_with(b"#!/bin/sh\n# wasmacro"), "{package}");
    }
    let native_script = std::fs::read(executable(&dir.join("target/wasm"), "libc")).unwrap();
    assert!(native_script.starts_with(b"\x7fELF"));

    // The same project elsewhere generates the same bytes.
    let elsewhere = project_copy_at(
        "build-scripts",
        &generated().join("elsewhere/build-scripts"),
    );
    let again = cargo_in(&elsewhere, Cargo::Wasmacro, &["build", "--locked"]);
    assert!(again.status.success(), "{}", text(&again.stderr));
    let elsewhere_out = out_dirs(&elsewhere.join("target"));
    assert_eq!(differences(&wasm_out, &elsewhere_out), Vec::<String>::new());
}

#[test]
fn what_a_script_read_and_its_variables_rerun_it() {
    let _guard = PROJECT.lock().unwrap_or_else(|e| e.into_inner());
    let dir = project_copy("build-scripts");
    let build_with = |env: &[(&str, &str)]| {
        let args = ["build", "--locked", "--target-dir", "target/wasm"];
        let output = cargo_in_with(&dir, Cargo::Wasmacro, &args, env);
        let stderr = text(&output.stderr);
        assert!(output.status.success(), "{stderr}");
        let out = out_dirs(&dir.join("target/wasm"))
            .remove("build-scripts-app")
            .unwrap();
        (out, stderr)
    };
    let build = |greeting: Option<&str>| {
        let env: Vec<(&str, &str)> = greeting
            .map(|g| ("BUILD_SCRIPTS_GREETING", g))
            .into_iter()
            .collect();
        build_with(&env).0
    };
    let words = |out: &BTreeMap<String, Vec<u8>>| text(&out["words.rs"]);
    // Whatever an earlier run of a copy kept between runs left, the script
    // runs now, under this wasmacro.
    touch(&dir.join("build.rs"));
    let before = build(None);
    assert!(!words(&before).contains("zebra"));
    assert_eq!(
        text(&before["nested/greeting.rs"]),
        "pub const GREETING: &str = \"hello\";\n"
    );

    // The script says only `rerun-if-changed=build.rs`, but it read the
    // words: the sandbox saw that and cargo reruns it when they change
    // (natively the edit would go unnoticed).
    let data = dir.join("data/words.txt");
    let original = std::fs::read_to_string(&data).unwrap();
    std::fs::write(&data, format!("{original}zebra\n")).unwrap();
    let edited = build(None);
    std::fs::write(&data, original).unwrap();
    assert!(
        words(&edited).contains("(\"zebra\", 5)"),
        "{}",
        words(&edited)
    );

    // A variable the project granted, which the script declared.
    let greeted = build(Some("bonjour"));
    assert!(!words(&greeted).contains("zebra"));
    assert_eq!(
        text(&greeted["nested/greeting.rs"]),
        "pub const GREETING: &str = \"bonjour\";\n"
    );

    // A variable it declared but the project did not grant: it runs as if
    // unset, and says so where the user sees it.
    let (_, stderr) = build_with(&[("BUILD_SCRIPTS_UNGRANTED", "1")]);
    assert!(
        stderr.contains(
            "warning: the build script of build-scripts-app reads `BUILD_SCRIPTS_UNGRANTED`, \
             which is set but not given to build scripts in the sandbox"
        ),
        "{stderr}"
    );
}

/// Sets `path`'s modification time to now: cargo then compiles and runs
/// its build script again.
fn touch(path: &Path) {
    std::fs::File::options()
        .write(true)
        .open(path)
        .and_then(|file| file.set_modified(std::time::SystemTime::now()))
        .unwrap();
}

/// Each hostile package, and what its failure must say.
const HOSTILE: &[(&str, &[&str])] = &[
    (
        "write-package",
        &[
            "the build script of `write-package` ran as wasm and failed",
            "tried to write to `",
            "write-package/src/written.rs`, outside its `OUT_DIR`",
            "help: a build script in the sandbox reads its own package and writes its `OUT_DIR`",
        ],
    ),
    (
        "write-outside",
        &[
            "tried to write to `",
            "/escaped.txt`, outside its `OUT_DIR`",
        ],
    ),
    (
        "read-outside",
        &[
            "tried to read `",
            "/secret.txt`, outside its package and `OUT_DIR`",
        ],
    ),
    (
        "read-home",
        &["tried to read `", "outside its package and `OUT_DIR`"],
    ),
    (
        "socket",
        &[
            "tried to open a TCP socket, but the sandbox has no network",
            "add `socket` to `deny`",
        ],
    ),
    (
        "ld-preload",
        &[
            "the build script printed `cargo::rustc-env=LD_PRELOAD=",
            "would run outside the sandbox when cargo applies it",
        ],
    ),
    (
        "link-arg",
        &["printed `cargo::rustc-link-arg=-Wl,--plugin=/tmp/not-there.so`"],
    ),
    (
        "widened",
        &[
            "tried to read `",
            "/secret.txt`, outside its package and `OUT_DIR`",
        ],
    ),
    (
        "spins",
        &[
            "it ran out of fuel: it executed more than 200000000 wasm instructions",
            "if the build script needs more, raise `fuel`",
        ],
    ),
];

#[test]
fn hostile_build_scripts_are_contained() {
    let dir = project_copy("hostile-build-scripts");
    let planted = [
        dir.join("escaped.txt"),
        dir.join("write-package/src/written.rs"),
    ];
    for path in &planted {
        let _ = std::fs::remove_file(path);
    }
    for (package, expected) in HOSTILE {
        let output = cargo_in(&dir, Cargo::Wasmacro, &["build", "--locked", "-p", package]);
        let stderr = text(&output.stderr);
        assert!(!output.status.success(), "{package} built:\n{stderr}");
        assert!(
            stderr.contains(&format!(
                "failed to run custom build command for `{package} v0.1.0"
            )),
            "{stderr}"
        );
        for text in *expected {
            assert!(stderr.contains(text), "{package}: no `{text}` in\n{stderr}");
        }
    }
    let home = std::env::var("HOME").unwrap();
    let read_home = cargo_in(
        &dir,
        Cargo::Wasmacro,
        &["build", "--locked", "-p", "read-home"],
    );
    assert!(text(&read_home.stderr).contains(&format!("tried to read `{home}`")));
    for path in &planted {
        assert!(!path.exists(), "{} was written", path.display());
    }

    // Frozen clocks and seeded randomness: the time is the epoch's, and a
    // HashMap's order is the same on every run.
    let stamp = || {
        let output = cargo_in(&dir, Cargo::Wasmacro, &["build", "--locked", "-p", "clock"]);
        assert!(output.status.success(), "{}", text(&output.stderr));
        let target = dir.join("target");
        let out = out_dirs(&target).remove("clock").unwrap();
        let clean = cargo_in(&dir, Cargo::Plain, &["clean", "-p", "clock"]);
        assert!(clean.status.success());
        text(&out["stamp.txt"])
    };
    let first = stamp();
    assert!(first.starts_with("0ns 0ns ["), "{first}");
    assert_eq!(first, stamp());

    // A script that runs a process cannot run as wasm: `--strict` refuses
    // it; otherwise it runs natively, and says why. (Touched, so that the
    // wrapper decides again, whatever an earlier run left.)
    touch(&dir.join("spawns/build.rs"));
    let strict = cargo_in(
        &dir,
        Cargo::Wasmacro,
        &["--strict", "build", "--locked", "-p", "spawns"],
    );
    let stderr = text(&strict.stderr);
    assert!(!strict.status.success(), "{stderr}");
    assert!(
        stderr.contains(
            "the build script of `spawns v0.1.0` cannot run as wasm (it runs processes (it calls \
             `std::process::Command::output`), which WASI cannot); `--strict`"
        ),
        "{stderr}"
    );
    let allowed = cargo_in(
        &dir,
        Cargo::Wasmacro,
        &["build", "--locked", "-p", "spawns"],
    );
    let stderr = text(&allowed.stderr);
    assert!(allowed.status.success(), "{stderr}");
    assert!(
        stderr.contains(
            "warning: the build script of spawns v0.1.0 runs natively: it runs processes"
        ),
        "{stderr}"
    );
}
