//! The same project built twice — in different directories, with different
//! target directories and different component caches, once through the
//! server and once with the runtime in rustc's process — gives byte-identical
//! components and byte-identical expansions (`WASMACRO_EXPANSION_LOG` records
//! a hash of every expansion's request and result, which includes what it
//! read), including the macros that read the clock, draw random numbers,
//! iterate a `HashMap` and read a granted file.

mod support;

use std::collections::BTreeMap;
use std::process::Command;
use support::{copy_dir, fixtures, text};

struct Build {
    components: BTreeMap<String, Vec<u8>>,
    expansions: Vec<String>,
    outputs: Vec<String>,
}

const EXAMPLES: [&str; 4] = ["clock", "hash_order", "random", "read_granted"];

/// Builds the hostile fixture's deterministic examples under `prefix`, from
/// an empty cache, with the runtime in a server or in rustc's process.
fn build_under(prefix: &str, in_process: bool) -> Build {
    let root = tempfile::Builder::new().prefix(prefix).tempdir().unwrap();
    let project = root.path().join("a").join("project");
    copy_dir(&fixtures().join("hostile"), &project);
    let cache = root.path().join("cache");
    let log = root.path().join("expansions.log");
    let mut command = Command::new(env!("CARGO_BIN_EXE_wasmacro"));
    command
        .current_dir(&project)
        .args(["cargo", "build", "--locked"])
        .args(EXAMPLES.iter().flat_map(|e| ["--example", e]))
        .env("CARGO", env!("CARGO"))
        .env("WASMACRO_CACHE_DIR", &cache)
        .env("WASMACRO_EXPANSION_LOG", &log)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTC_WRAPPER");
    if in_process {
        support::in_process(&mut command);
    } else {
        support::server(&mut command);
    }
    let output = command.output().expect("cargo wasmacro runs");
    assert!(output.status.success(), "{}", text(&output.stderr));

    let mut components = BTreeMap::new();
    for entry in std::fs::read_dir(cache.join("components"))
        .unwrap()
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        components.insert(name, std::fs::read(entry.path()).unwrap());
    }
    let mut expansions: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    expansions.sort();
    let outputs = EXAMPLES
        .iter()
        .map(|example| {
            let run = Command::new(project.join("target/debug/examples").join(example))
                .output()
                .unwrap();
            text(&run.stdout)
        })
        .collect();
    Build {
        components,
        expansions,
        outputs,
    }
}

#[test]
fn builds_in_different_places_give_identical_components_and_expansions() {
    // The second build also runs its macros in rustc's process: the
    // transport must not change a byte either.
    let first = build_under("wasmacro-determinism-", false);
    let second = build_under("wasmacro-determinism-second-place-", true);
    assert_eq!(first.components.len(), 1, "{:?}", first.components.keys());
    assert_eq!(
        first.components.keys().collect::<Vec<_>>(),
        second.components.keys().collect::<Vec<_>>(),
        "component hashes differ"
    );
    assert!(
        first.components == second.components,
        "component bytes differ"
    );
    assert_eq!(
        first.expansions.len(),
        EXAMPLES.len(),
        "{:?}",
        first.expansions
    );
    assert_eq!(first.expansions, second.expansions, "expansions differ");
    // What an expansion read joins its line, named from its root, with the
    // content's digest: the same at both paths.
    let granted = format!(
        "$CARGO_MANIFEST_DIR/examples/granted.txt#{}",
        blake3::hash(b"granted contents\n").to_hex()
    );
    assert!(
        first
            .expansions
            .iter()
            .any(|line| line.starts_with("hostile_macros\tread_granted\t")
                && line.contains(&granted)),
        "{:#?}",
        first.expansions
    );
    assert_eq!(first.outputs, second.outputs);
}
