//! `cargo wasmacro` keeps a configured `RUSTC_WRAPPER` (sccache) running
//! after it instead of replacing it, and a second checkout of the same
//! project at another path gets sccache hits: the `sccache-project` fixture
//! (serde and thiserror derives of its own; `url`, whose ICU dependencies use
//! displaydoc, yoke, zerofrom and zerovec derives) built through a private
//! sccache server in two directories. sccache keys a crate by its
//! arguments, its sources' content, the content of the libraries it links
//! (the shims among them), its `CARGO_*` variables and the working
//! directory: the project's own crate never hits across paths (its working
//! directory differs), registry crates can. A third checkout builds with
//! plain cargo under the permanent opt-in, whose `[env]` names sccache.
//!
//! Skipped, saying so, only when sccache is not installed (the README's test
//! command installs it from crates.io).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use support::{Cargo, cargo_in_with, generated, project_copy_at, text};

/// A private sccache server (its own socket and cache directory), stopped
/// when dropped.
struct Sccache {
    dir: PathBuf,
}

impl Sccache {
    /// A server for the test `name` (tests of one binary run at once).
    fn start(name: &str) -> Option<Sccache> {
        let version = Command::new("sccache").arg("--version").output().ok()?;
        if !version.status.success() {
            return None;
        }
        // A unix socket path must be short: not under the target directory.
        let dir =
            std::env::temp_dir().join(format!("wasmacro-sccache-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let sccache = Sccache { dir };
        let started = sccache.command().arg("--start-server").output().unwrap();
        assert!(started.status.success(), "{}", text(&started.stderr));
        Some(sccache)
    }

    fn env(&self) -> Vec<(&'static str, PathBuf)> {
        vec![
            ("SCCACHE_DIR", self.dir.join("cache")),
            ("SCCACHE_SERVER_UDS", self.dir.join("socket")),
            ("SCCACHE_IDLE_TIMEOUT", PathBuf::from("0")),
        ]
    }

    fn command(&self) -> Command {
        let mut command = Command::new("sccache");
        command.envs(self.env());
        command
    }

    /// (hits, misses) of Rust compilations since the last call.
    fn take_stats(&self) -> (u64, u64) {
        let output = self
            .command()
            .args(["--show-stats", "--stats-format=json"])
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", text(&output.stderr));
        let stats: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        let count = |what: &str| stats["stats"][what]["counts"]["Rust"].as_u64().unwrap_or(0);
        let counts = (count("cache_hits"), count("cache_misses"));
        let zeroed = self.command().arg("--zero-stats").output().unwrap();
        assert!(zeroed.status.success(), "{}", text(&zeroed.stderr));
        counts
    }
}

impl Drop for Sccache {
    fn drop(&mut self) {
        let _ = self.command().arg("--stop-server").output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn a_second_checkout_gets_sccache_hits_through_cargo_wasmacro() {
    let Some(sccache) = Sccache::start("checkouts") else {
        eprintln!(
            "skipped: sccache is not installed (`cargo install sccache --locked \
             --no-default-features`, as the README's test command does)"
        );
        return;
    };
    let checkouts = generated().join("sccache");
    // `cargo wasmacro build` with sccache as the configured wrapper, or, with
    // `permanent`, plain `cargo build` under the permanent opt-in, which
    // names sccache in its `[env]`.
    let build = |name: &str, permanent: bool| -> PathBuf {
        let dir = checkouts.join(name);
        // Cold: every crate is compiled or taken from sccache.
        let _ = std::fs::remove_dir_all(dir.join("target"));
        project_copy_at("sccache-project", &dir);
        let config = dir.join(".cargo/config.toml");
        let _ = std::fs::remove_file(&config);
        let mut env = sccache.env();
        // sccache caches no incremental compilation.
        env.push(("CARGO_INCREMENTAL", PathBuf::from("0")));
        let args = ["build", "--offline", "--locked"];
        let output = if permanent {
            let wasmacro = serde_json::to_string(env!("CARGO_BIN_EXE_wasmacro")).unwrap();
            std::fs::create_dir_all(config.parent().unwrap()).unwrap();
            std::fs::write(
                &config,
                format!(
                    "[build]\nrustc-wrapper = {wasmacro}\n[env]\n\
                     WASMACRO_WORKSPACE = {{ value = \".\", relative = true }}\n\
                     WASMACRO_SERVER = {wasmacro}\nWASMACRO_RUSTC_WRAPPER = \"sccache\"\n"
                ),
            )
            .unwrap();
            env.push(("WASMACRO_CACHE_DIR", support::cache_dir()));
            cargo_in_with(&dir, Cargo::Plain, &args, &env)
        } else {
            // The wrapper cargo wasmacro finds configured and keeps.
            env.push(("RUSTC_WRAPPER", PathBuf::from("sccache")));
            let strict = [&args[..], &["--strict"]].concat();
            let output = cargo_in_with(&dir, Cargo::Wasmacro, &strict, &env);
            support::assert_runs_as_wasm(
                &dir,
                &[
                    "serde_derive",
                    "thiserror-impl",
                    "displaydoc",
                    "yoke-derive",
                ],
            );
            output
        };
        assert!(output.status.success(), "{}", text(&output.stderr));
        dir
    };

    let first = build("a", false);
    let (hits, misses) = sccache.take_stats();
    // Every cacheable compilation went through sccache: the wrapper was
    // kept, not replaced.
    assert!(
        hits == 0 && misses >= 30,
        "the first checkout: {hits} hits, {misses} misses"
    );
    let second = build("elsewhere/b", false);
    let (hits, second_misses) = sccache.take_stats();
    eprintln!(
        "sccache, second checkout: {hits} hits, {second_misses} misses of {misses} compilations"
    );
    // The registry crates hit, the derive users among them too (their
    // shims are the same file for both checkouts); what misses is a crate
    // whose key names its build script's `OUT_DIR` (serde, serde_core,
    // serde_json, thiserror), which lies in each checkout's target.
    assert!(
        hits + second_misses == misses && second_misses <= 4,
        "the second checkout: {hits} hits, {second_misses} misses"
    );
    // The permanent opt-in chains to the wrapper its `[env]` names, and
    // shares the entries (the same shims, arguments and `CARGO_*`).
    let third = build("c", true);
    let (hits, third_misses) = sccache.take_stats();
    eprintln!("sccache, permanent opt-in: {hits} hits, {third_misses} misses");
    assert!(
        hits + third_misses == misses && third_misses <= 4,
        "the permanent opt-in's checkout: {hits} hits, {third_misses} misses"
    );

    // The same program: identical but for the debug info and build id,
    // which name each checkout's path.
    let program = |dir: &Path| {
        let executable = dir.join("target/debug/sccache-project");
        let run = Command::new(&executable).output().unwrap();
        assert!(run.status.success(), "{}", text(&run.stderr));
        let stripped = dir.join("target/stripped");
        let status = Command::new("objcopy")
            .args(["--strip-debug", "--remove-section=.note.gnu.build-id"])
            .arg(&executable)
            .arg(&stripped)
            .status()
            .expect("objcopy runs");
        assert!(status.success());
        (text(&run.stdout), std::fs::read(stripped).unwrap())
    };
    let (first_output, first_bytes) = program(&first);
    assert!(
        first_output.contains("https://example.org/a"),
        "{first_output}"
    );
    for other in [&second, &third] {
        let (output, bytes) = program(other);
        assert_eq!(first_output, output);
        assert!(
            first_bytes == bytes,
            "{} built another program",
            other.display()
        );
    }
}

/// A build cache keys a compilation by its sources and the libraries it
/// names, not by the files a macro reads: a compilation loading such a macro
/// runs rustc directly, also when the macro comes through a facade crate
/// (rustc finds it by search, which sccache does not key). Without that, the
/// edited greeting below was an sccache hit and the program printed the old
/// one.
#[test]
fn what_a_macro_reads_is_never_taken_from_sccache() {
    let Some(sccache) = Sccache::start("reads") else {
        eprintln!("skipped: sccache is not installed");
        return;
    };
    let dir = generated().join("sccache-reads");
    let _ = std::fs::remove_dir_all(dir.join("target"));
    project_copy_at("sccache-reads", &dir);
    let mut env = sccache.env();
    env.push(("CARGO_INCREMENTAL", PathBuf::from("0")));
    env.push(("RUSTC_WRAPPER", PathBuf::from("sccache")));
    let run = |expected: &str| {
        let output = cargo_in_with(
            &dir,
            Cargo::Wasmacro,
            &["run", "--offline", "--locked", "--strict"],
            &env,
        );
        assert!(output.status.success(), "{}", text(&output.stderr));
        assert_eq!(text(&output.stdout), format!("{expected}\n"));
    };
    run("hello from the first greeting");
    std::fs::write(dir.join("greeting.txt"), "hello from the second\n").unwrap();
    run("hello from the second");
    // Both compilations here load the macro (the facade directly, the
    // program through it): neither reached sccache.
    assert_eq!(sccache.take_stats(), (0, 0));
}
