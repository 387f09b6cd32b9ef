//! Broken inputs and a broken runtime: each gives a clear error or recovers,
//! and leaves nothing corrupted behind.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use support::{fixtures, text, wasmacro};

const HOSTILE: &str = "hostile/hostile-macros";

/// `wasmacro rustc` on one of the hostile fixture's examples, with the
/// hostile macros as a component and `env` added. Each test writes to a
/// directory of its own (the harness names the thread after the test):
/// tests compiling the same example at once would otherwise link over each
/// other's object files.
fn rustc_hostile_example(example: &str, env: &[(&str, &str)]) -> Command {
    let component = support::component(HOSTILE);
    let test = std::thread::current()
        .name()
        .unwrap_or("main")
        .replace("::", "-");
    let out = support::generated().join("broken").join(test);
    let mut command = wasmacro();
    command
        .current_dir(fixtures().join("hostile"))
        .args(["rustc", "rustc", "--edition", "2021", "--crate-type", "bin"])
        .arg(format!("examples/{example}.rs"))
        .arg("--out-dir")
        .arg(&out)
        .arg("--extern")
        .arg(format!("hostile_macros={}", component.display()))
        .envs(env.iter().copied());
    command
}

fn wait_with_deadline(mut child: std::process::Child, deadline: Duration) -> Output {
    let started = Instant::now();
    loop {
        if child.try_wait().expect("waiting").is_some() {
            return child.wait_with_output().expect("output");
        }
        if started.elapsed() > deadline {
            let _ = child.kill();
            panic!("still running after {deadline:?}: it hangs");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_wall_clock_backstop_stops_what_fuel_does_not() {
    wall_clock_backstop(false);
}

/// In rustc's process there is no server to give up on: the epoch deadline
/// alone ends the guest, with the same error.
#[test]
fn in_process_the_wall_clock_backstop_stops_what_fuel_does_not() {
    wall_clock_backstop(true);
}

fn wall_clock_backstop(in_process: bool) {
    // With fuel effectively unlimited, only the timeout can end the loop.
    let started = Instant::now();
    let mut command = rustc_hostile_example(
        "loop_forever",
        &[("WASMACRO_LIMITS", "fuel=1e15,timeout=2s")],
    );
    if in_process {
        support::in_process(&mut command);
    } else {
        support::server(&mut command);
    }
    let child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let output = wait_with_deadline(child, Duration::from_secs(120));
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("`loop_forever` of `hostile_macros` (wasm)")
            && stderr
                .contains("stopped after running for 2 s of wall-clock time (the `timeout` limit)")
            && stderr.contains("raise `timeout`"),
        "{stderr}"
    );
    eprintln!("stopped after {:.1} s", started.elapsed().as_secs_f64());
}

/// The pid of the `wasmacro serve` whose environment holds `marker`.
#[cfg(target_os = "linux")]
fn find_server(marker: &str) -> Option<u32> {
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let environ = std::fs::read(entry.path().join("environ")).unwrap_or_default();
        let serves = cmdline.split(|b| *b == 0).any(|arg| arg == b"serve");
        let marked = environ
            .split(|b| *b == 0)
            .any(|var| var == format!("WASMACRO_TEST_MARKER={marker}").as_bytes());
        if serves && marked {
            return Some(pid);
        }
    }
    None
}

#[cfg(target_os = "linux")]
#[test]
fn a_server_killed_mid_expansion_is_a_clear_error() {
    let marker = format!("killed-{}", std::process::id());
    let mut command = rustc_hostile_example(
        "loop_forever",
        &[
            ("WASMACRO_LIMITS", "fuel=1e15,timeout=600s"),
            ("WASMACRO_TEST_MARKER", &marker),
        ],
    );
    // Only the server is a process of its own to kill.
    let child = support::server(&mut command)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let server = loop {
        if let Some(pid) = find_server(&marker) {
            break pid;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no server started"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    // Let the expansion start, then kill the runtime under it.
    std::thread::sleep(Duration::from_secs(1));
    let killed = Command::new("kill")
        .args(["-9", &server.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let output = wait_with_deadline(child, Duration::from_secs(60));
    let stderr = text(&output.stderr);
    // A compile error, not a crash of rustc (101 is rustc's ICE exit code).
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("`loop_forever` of `hostile_macros` (wasm)")
            && stderr.contains("lost the connection to the wasmacro server")
            && stderr.contains("SIGKILL"),
        "{stderr}"
    );
}

/// The hostile component's bytes with the contract version changed: the same
/// length, so the component stays valid.
fn other_contract_version(bytes: &[u8]) -> Vec<u8> {
    let from = b"wasmacro:proc-macro/";
    let mut out = bytes.to_vec();
    let mut i = 0;
    let mut replaced = 0;
    while let Some(at) = out[i..].windows(from.len()).position(|w| w == from) {
        let start = i + at;
        let version = out[start..]
            .iter()
            .position(|b| *b == b'@')
            .map(|p| start + p + 1)
            .expect("a versioned name");
        assert_eq!(&out[version..version + 5], b"0.1.0");
        out[version..version + 5].copy_from_slice(b"0.9.0");
        replaced += 1;
        i = version;
    }
    assert!(replaced > 0);
    out
}

#[test]
fn a_component_of_another_contract_version_says_so() {
    let bytes = std::fs::read(support::component(HOSTILE)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("hostile_macros.wasm");
    std::fs::write(&other, other_contract_version(&bytes)).unwrap();
    let output = wasmacro().arg("inspect").arg(&other).output().unwrap();
    let stderr = text(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("was built against wasmacro:proc-macro@0.9.0, but this wasmacro runs components built against wasmacro:proc-macro@0.1.0")
            && stderr.contains("rebuild it"),
        "{stderr}"
    );
}

#[test]
fn broken_components_given_to_rustc_are_clear_errors() {
    let bytes = std::fs::read(support::component(HOSTILE)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("main.rs"), "fn main() {}").unwrap();
    for (name, contents) in [
        ("truncated", &bytes[..bytes.len() / 2]),
        ("header_only", &bytes[..8]),
        ("empty", &bytes[..0]),
        ("not_wasm", b"not wasm at all".as_slice()),
    ] {
        let path = dir.path().join(format!("{name}.wasm"));
        std::fs::write(&path, contents).unwrap();
        let output = wasmacro()
            .current_dir(dir.path())
            .args(["rustc", "rustc", "main.rs", "--extern"])
            .arg(format!("{name}={}", path.display()))
            .output()
            .unwrap();
        let stderr = text(&output.stderr);
        assert!(!output.status.success(), "{name}");
        assert!(
            stderr.contains(&format!("{name}.wasm"))
                && stderr.contains("not a valid wasmacro proc-macro component"),
            "{name}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
    }
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    files
}

#[test]
fn corrupt_cache_entries_are_detected_and_rebuilt() {
    let cache = tempfile::tempdir().unwrap();
    let cache_dir = cache.path().display().to_string();
    let env = [("WASMACRO_CACHE_DIR", cache_dir.as_str())];
    let compile = || {
        rustc_hostile_example("clock", &env)
            .output()
            .expect("rustc runs")
    };
    let first = compile();
    assert!(first.status.success(), "{}", text(&first.stderr));

    // Truncate every precompiled entry and flip a byte of every component.
    let precompiled = files_in(&cache.path().join("precompiled"));
    let components = files_in(&cache.path().join("components"));
    assert!(!precompiled.is_empty() && !components.is_empty());
    for path in &precompiled {
        let bytes = std::fs::read(path).unwrap();
        std::fs::write(path, &bytes[..bytes.len() / 3]).unwrap();
    }
    for path in &components {
        let mut bytes = std::fs::read(path).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0xff;
        std::fs::write(path, bytes).unwrap();
    }
    let verify = wasmacro()
        .env("WASMACRO_CACHE_DIR", cache.path())
        .args(["cache", "verify"])
        .output()
        .unwrap();
    let report = text(&verify.stdout) + &text(&verify.stderr);
    assert!(!verify.status.success(), "{report}");
    assert!(report.contains("corrupt"), "{report}");

    // The next compilation notices, rebuilds, and succeeds.
    let second = compile();
    assert!(second.status.success(), "{}", text(&second.stderr));
    let verify = wasmacro()
        .env("WASMACRO_CACHE_DIR", cache.path())
        .args(["cache", "verify"])
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}{}",
        text(&verify.stdout),
        text(&verify.stderr)
    );

    // `gc` removes what was not used for the given age, and nothing else.
    let cache_command = |args: &[&str]| {
        let output = wasmacro()
            .env("WASMACRO_CACHE_DIR", cache.path())
            .arg("cache")
            .args(args)
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", text(&output.stderr));
        text(&output.stdout)
    };
    let stats = cache_command(&["stats"]);
    assert!(stats.contains("components        1 entries"), "{stats}");
    let kept = cache_command(&["gc", "--max-age-days", "30"]);
    assert!(kept.contains("removed 0 entries"), "{kept}");
    let long_ago = std::time::SystemTime::now() - Duration::from_secs(60 * 86_400);
    for section in ["components", "precompiled", "shims"] {
        for path in files_in(&cache.path().join(section)) {
            std::fs::File::open(&path)
                .and_then(|f| f.set_modified(long_ago))
                .unwrap();
        }
    }
    // Components stay unless asked for: target directories refer to them.
    let collected = cache_command(&["gc", "--max-age-days", "30"]);
    // The shim, and the precompiled code with its checksum file.
    assert!(collected.contains("removed 3 entries"), "{collected}");
    let stats = cache_command(&["stats"]);
    assert!(stats.contains("components        1 entries"), "{stats}");
    let collected = cache_command(&["gc", "--max-age-days", "30", "--include-components"]);
    assert!(collected.contains("removed 1 entries"), "{collected}");
    let stats = cache_command(&["stats"]);
    assert!(stats.contains("components        0 entries"), "{stats}");
    // And what was collected is rebuilt when next needed.
    let third = compile();
    assert!(third.status.success(), "{}", text(&third.stderr));
}

#[test]
fn precompiled_code_changed_in_place_is_verified_again_and_rebuilt() {
    let cache = tempfile::tempdir().unwrap();
    let cache_dir = cache.path().display().to_string();
    let env = [("WASMACRO_CACHE_DIR", cache_dir.as_str())];
    let compile = || {
        let output = rustc_hostile_example("clock", &env)
            .output()
            .expect("rustc runs");
        assert!(output.status.success(), "{}", text(&output.stderr));
    };
    // The first compilation writes the entry, the second verifies it once
    // and from then on trusts it by its stamp: mapped, not hashed.
    compile();
    compile();
    let code: Vec<PathBuf> = files_in(&cache.path().join("precompiled"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .collect();
    assert_eq!(code.len(), 1, "{code:?}");
    let original = std::fs::read(&code[0]).unwrap();
    // Same size, same file, one byte of code changed: only its change time
    // tells.
    let mut flipped = original.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0xff;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&code[0])
        .and_then(|mut f| std::io::Write::write_all(&mut f, &flipped))
        .unwrap();
    compile();
    let now = std::fs::read(&code[0]).unwrap();
    assert_ne!(now, flipped, "the changed code was mapped and kept");
    assert_eq!(now.len(), original.len());
}

#[test]
fn a_runtime_library_that_does_not_load_means_the_server_unless_insisted_on() {
    // What an old build left beside `wasmacro`, say: not a loadable library.
    let dir = tempfile::tempdir().unwrap();
    let library = dir.path().join("libwasmacro_runtime.so");
    std::fs::write(&library, "not a library").unwrap();
    let library = library.display().to_string();
    let by_default = rustc_hostile_example("clock", &[("WASMACRO_RUNTIME", library.as_str())])
        .env_remove("WASMACRO_TRANSPORT")
        .output()
        .unwrap();
    assert!(by_default.status.success(), "{}", text(&by_default.stderr));
    let insisted = rustc_hostile_example(
        "clock",
        &[
            ("WASMACRO_RUNTIME", library.as_str()),
            ("WASMACRO_TRANSPORT", "in-process"),
        ],
    )
    .output()
    .unwrap();
    let stderr = text(&insisted.stderr);
    assert!(!insisted.status.success());
    assert!(
        stderr.contains("could not load the wasmacro runtime") && stderr.contains(&library),
        "{stderr}"
    );
}

#[test]
fn a_cache_that_cannot_be_written_is_a_clear_error() {
    // A cache directory below a regular file cannot be created, even by root.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let cache = file.join("cache");
    let cache_dir = cache.display().to_string();
    let output = rustc_hostile_example("clock", &[("WASMACRO_CACHE_DIR", cache_dir.as_str())])
        .output()
        .unwrap();
    let stderr = text(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains(&cache_dir) && stderr.contains("WASMACRO_CACHE_DIR"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}
