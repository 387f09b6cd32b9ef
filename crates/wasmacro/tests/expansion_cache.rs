//! The expansion cache is sound: an expansion is taken from it only where
//! running the macro would give the same bytes, and everything else runs.
//! Each case compiles the same program natively and as wasm and compares what
//! the programs print and what rustc says, while the summary's JSON tells
//! which expansions were hits.
//!
//! Each test has a cache directory of its own, so "cold" means cold.

mod support;

use std::path::{Path, PathBuf};
use support::{Compiled, Mode, assert_same, compile_in, summary_hits_at as hits, text};

const API: &[(&str, &str)] = &[("api_macros", "api-macros")];
const API_AND_SERDE: &[(&str, &str)] = &[
    ("api_macros", "api-macros"),
    ("serde_derive", support::SERDE_DERIVE),
];

/// A directory of its own under the scratch directory, emptied.
fn workdir(name: &str) -> PathBuf {
    let dir = support::generated().join("expansion-cache").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Compiles `dir/program.rs` as wasm with the expansion cache in `cache`,
/// returning the result and the (crate, expansions, hits) rows. `build`
/// tells apart builds of one program that run at once (it names the
/// executable).
fn wasm(
    dir: &Path,
    program: &str,
    macros: &[(&str, &str)],
    cache: &Path,
    build: &str,
) -> (Compiled, Vec<(String, u64, u64)>) {
    let summary = dir.join(format!("{program}{build}.summary.json"));
    let _ = std::fs::remove_file(&summary);
    let cache = cache.display().to_string();
    let summary_path = summary.display().to_string();
    let compiled = compile_in(
        dir,
        Mode::Wasm,
        program,
        macros,
        &[
            ("WASMACRO_CACHE_DIR", cache.as_str()),
            ("WASMACRO_SUMMARY", "1"),
            ("WASMACRO_SUMMARY_JSON", summary_path.as_str()),
            ("WASMACRO_TEST_BUILD", build),
        ],
    );
    assert!(compiled.status.success(), "{}", compiled.stderr);
    (compiled, hits(&summary))
}

/// The program's output and rustc's stderr, natively and as wasm, must be
/// the same; returns the wasm build's rows.
fn same_as_native(
    dir: &Path,
    program: &str,
    macros: &[(&str, &str)],
    cache: &Path,
) -> Vec<(String, u64, u64)> {
    let native = compile_in(dir, Mode::Native, program, macros, &[]);
    assert!(native.status.success(), "{}", native.stderr);
    let (wasm, rows) = wasm(dir, program, macros, cache, "");
    assert_same(
        "program output",
        &text(&native.run().stdout),
        &text(&wasm.run().stdout),
    );
    // The summary table is wasmacro's own addition to stderr.
    let wasm_stderr: String = wasm
        .stderr
        .lines()
        .take_while(|l| !l.trim_start().starts_with("wasmacro"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_same("compiler stderr", &native.stderr, &wasm_stderr);
    rows
}

fn row<'a>(rows: &'a [(String, u64, u64)], krate: &str) -> &'a (String, u64, u64) {
    rows.iter()
        .find(|(name, _, _)| name == krate)
        .unwrap_or_else(|| panic!("no row for {krate} in {rows:?}"))
}

const INSPECTED: &str = "use api_macros::Inspect;\n\
    use serde_derive::Serialize;\n\
    #[derive(Inspect)]\n\
    pub struct Inspected { pub field: u8 }\n\
    #[derive(Serialize)]\n\
    pub struct Plain { pub a: u32, pub b: String }\n\
    fn main() { println!(\"{}\", inspect_report()); }\n";

#[test]
fn a_macro_reading_its_spans_reruns_when_they_change_and_hits_when_not() {
    const PROGRAM: &str = "spans";
    let dir = workdir("spans");
    let cache = tempfile::tempdir().unwrap();
    let write = |text: &str| std::fs::write(dir.join("spans.rs"), text).unwrap();

    // Cold: everything runs.
    write(INSPECTED);
    let rows = same_as_native(&dir, PROGRAM, API_AND_SERDE, cache.path());
    assert_eq!(row(&rows, "api_macros").2, 0, "{rows:?}");
    assert_eq!(row(&rows, "serde_derive").2, 0, "{rows:?}");

    // Warm, unchanged: every expansion is a hit.
    let rows = same_as_native(&dir, PROGRAM, API_AND_SERDE, cache.path());
    for (krate, expansions, hits) in &rows {
        assert!(*expansions > 0 && hits == expansions, "{krate}: {rows:?}");
    }

    // The items move down a line: `Inspect` reports lines, columns and
    // source text, so its recorded answers no longer hold and it runs again;
    // serde_derive asked nothing and hits.
    write(&format!("\n{INSPECTED}"));
    let rows = same_as_native(&dir, PROGRAM, API_AND_SERDE, cache.path());
    assert_eq!(row(&rows, "api_macros").2, 0, "{rows:?}");
    assert_eq!(row(&rows, "serde_derive").2, 1, "{rows:?}");

    // The inspected item changes: a new request.
    write(&INSPECTED.replace("pub field: u8", "pub field: u16"));
    let rows = same_as_native(&dir, PROGRAM, API_AND_SERDE, cache.path());
    assert_eq!(row(&rows, "api_macros").2, 0, "{rows:?}");

    // Back as it was: one entry per key, and the moved item's replaced the
    // first, so `Inspect` runs once more; then it hits again.
    write(INSPECTED);
    let rows = same_as_native(&dir, PROGRAM, API_AND_SERDE, cache.path());
    assert_eq!(row(&rows, "api_macros").2, 0, "{rows:?}");
    assert_eq!(row(&rows, "serde_derive").2, 1, "{rows:?}");
    let rows = same_as_native(&dir, PROGRAM, API_AND_SERDE, cache.path());
    assert_eq!(row(&rows, "api_macros").2, 1, "{rows:?}");
}

fn counters(names: &[&str]) -> String {
    let calls: Vec<String> = names.iter().map(|n| format!("counter!({n})")).collect();
    format!(
        "use api_macros::counter;\nfn main() {{ println!(\"{}\", {}); }}\n",
        vec!["{}"; names.len()].join(" "),
        calls.join(", ")
    )
}

#[test]
fn a_stateful_macro_is_cached_as_a_sequence() {
    // `counter!` keeps a count in a `static`: its result depends on every
    // expansion before it in the compilation.
    let dir = workdir("state");
    let cache = tempfile::tempdir().unwrap();
    let write = |names: &[&str]| std::fs::write(dir.join("counters.rs"), counters(names)).unwrap();

    write(&["a", "b", "c"]);
    let rows = same_as_native(&dir, "counters", API, cache.path());
    assert_eq!(row(&rows, "api_macros").2, 0, "{rows:?}");
    let rows = same_as_native(&dir, "counters", API, cache.path());
    assert_eq!(row(&rows, "api_macros").2, 3, "{rows:?}");

    // One more at the end: the first three are hits, and the fourth runs in
    // an instance that has run them (replayed), so it counts 3.
    write(&["a", "b", "c", "d"]);
    let rows = same_as_native(&dir, "counters", API, cache.path());
    assert_eq!(row(&rows, "api_macros").2, 3, "{rows:?}");

    // One more at the start: every later expansion has another history, so
    // nothing hits, and every count is what native gives.
    write(&["z", "a", "b", "c"]);
    let rows = same_as_native(&dir, "counters", API, cache.path());
    assert_eq!(row(&rows, "api_macros").2, 0, "{rows:?}");
}

fn entries(cache: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(cache.join("expansions"))
        .map(|e| e.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p| {
        !p.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with(".tmp"))
    });
    files.sort();
    files
}

fn verify(cache: &Path) -> std::process::Output {
    support::wasmacro()
        .env("WASMACRO_CACHE_DIR", cache)
        .args(["cache", "verify"])
        .output()
        .unwrap()
}

#[test]
fn a_corrupt_entry_is_ignored_and_replaced() {
    const PROGRAM: &str = "corrupt";
    let dir = workdir("corrupt");
    let cache = tempfile::tempdir().unwrap();
    std::fs::write(dir.join("corrupt.rs"), INSPECTED).unwrap();
    same_as_native(&dir, PROGRAM, API_AND_SERDE, cache.path());
    let files = entries(cache.path());
    assert_eq!(files.len(), 2, "{files:?}");
    let originals: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    // One bit flipped in each, in different places.
    for (i, file) in files.iter().enumerate() {
        let mut bytes = originals[i].clone();
        let at = bytes.len() * (i + 1) / 3;
        bytes[at] ^= 0x10;
        std::fs::write(file, bytes).unwrap();
    }
    let rows = same_as_native(&dir, PROGRAM, API_AND_SERDE, cache.path());
    for (krate, _, hits) in &rows {
        assert_eq!(*hits, 0, "{krate} trusted a corrupt entry: {rows:?}");
    }
    // Replaced by what the expansions gave again, byte for byte.
    let now: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    assert_eq!(now, originals);
    let verified = verify(cache.path());
    assert!(verified.status.success(), "{}", text(&verified.stdout));

    // `cache verify` finds a corrupt entry and removes it.
    std::fs::write(&files[0], b"WMXC0001 not an entry").unwrap();
    let verified = verify(cache.path());
    let report = text(&verified.stdout) + &text(&verified.stderr);
    assert!(
        !verified.status.success() && report.contains("corrupt"),
        "{report}"
    );
    assert!(!files[0].exists());
}

#[test]
fn concurrent_builds_filling_one_cache_agree() {
    let cache = tempfile::tempdir().unwrap();
    // Warm the component's precompiled code first: the race under test is
    // the expansions'.
    let warm = workdir("concurrent-warm");
    std::fs::write(warm.join("warm.rs"), counters(&["x"])).unwrap();
    wasm(&warm, "warm", API, cache.path(), "");

    // The same program in the same place (`Inspect` asks for absolute
    // paths), built twice at once.
    let dir = workdir("concurrent");
    std::fs::write(dir.join("concurrent.rs"), INSPECTED).unwrap();
    let outputs: Vec<String> = std::thread::scope(|scope| {
        let builds: Vec<_> = (0..2)
            .map(|i| {
                let (cache, dir) = (cache.path(), &dir);
                scope.spawn(move || {
                    let build = i.to_string();
                    let (compiled, _) = wasm(dir, "concurrent", API_AND_SERDE, cache, &build);
                    text(&compiled.run().stdout)
                })
            })
            .collect();
        builds.into_iter().map(|b| b.join().unwrap()).collect()
    });
    assert_same("the two builds' output", &outputs[0], &outputs[1]);
    let verified = verify(cache.path());
    assert!(verified.status.success(), "{}", text(&verified.stdout));
    // And what they stored answers a third build entirely.
    let (compiled, rows) = wasm(&dir, "concurrent", API_AND_SERDE, cache.path(), "third");
    for (krate, expansions, hits) in &rows {
        assert_eq!(hits, expansions, "{krate}: {rows:?}");
    }
    assert_same(
        "the third build's output",
        &outputs[0],
        &text(&compiled.run().stdout),
    );
}

#[test]
fn the_cache_can_be_turned_off() {
    let dir = workdir("off");
    let cache = tempfile::tempdir().unwrap();
    std::fs::write(dir.join("off.rs"), INSPECTED).unwrap();
    wasm(&dir, "off", API_AND_SERDE, cache.path(), "");
    let summary = dir.join("off-again.summary.json");
    let compiled = compile_in(
        &dir,
        Mode::Wasm,
        "off",
        API_AND_SERDE,
        &[
            ("WASMACRO_CACHE_DIR", &cache.path().display().to_string()),
            ("WASMACRO_SUMMARY", "1"),
            ("WASMACRO_SUMMARY_JSON", &summary.display().to_string()),
            ("WASMACRO_EXPANSION_CACHE", "off"),
        ],
    );
    assert!(compiled.status.success(), "{}", compiled.stderr);
    for (krate, expansions, hits) in hits(&summary) {
        assert!(expansions > 0 && hits == 0, "{krate}: {expansions} {hits}");
    }
}

#[test]
fn a_refused_read_is_not_taken_from_the_cache_once_the_file_is_gone() {
    // `read_file_in_manifest_dir!` reads `$CARGO_MANIFEST_DIR/Cargo.toml`,
    // which nothing grants: refused while the file exists, "not found" once
    // it is gone. That it existed is what the refusal depended on.
    let dir = workdir("refused");
    let cache = tempfile::tempdir().unwrap();
    let manifest_dir = dir.join("crate");
    std::fs::create_dir_all(&manifest_dir).unwrap();
    let manifest = manifest_dir.join("Cargo.toml");
    std::fs::write(&manifest, "[package]\nname = \"x\"\n").unwrap();
    std::fs::write(
        dir.join("refused.rs"),
        "hostile_macros::read_file_in_manifest_dir!();\nfn main() {}\n",
    )
    .unwrap();
    let summary = dir.join("refused.summary.json");
    let compile = || {
        let compiled = compile_in(
            &dir,
            Mode::Wasm,
            "refused",
            &[("hostile_macros", "hostile/hostile-macros")],
            &[
                ("WASMACRO_CACHE_DIR", &cache.path().display().to_string()),
                ("WASMACRO_SUMMARY", "1"),
                ("WASMACRO_SUMMARY_JSON", &summary.display().to_string()),
                ("CARGO_MANIFEST_DIR", &manifest_dir.display().to_string()),
            ],
        );
        assert!(!compiled.status.success());
        let rows = hits(&summary);
        // rustc's own stderr, without the summary table after it.
        let stderr = compiled
            .stderr
            .split("    wasmacro crate")
            .next()
            .unwrap_or_default()
            .to_string();
        (stderr, rows[0].2)
    };
    let (first, hits_first) = compile();
    assert!(first.contains("which no grant covers"), "{first}");
    assert_eq!(hits_first, 0);
    let (again, hits_again) = compile();
    assert_eq!(hits_again, 1, "{again}");
    assert_same("the cached refusal", &first, &again);
    std::fs::remove_file(&manifest).unwrap();
    let (gone, hits_gone) = compile();
    assert_eq!(
        hits_gone, 0,
        "a refusal of a file that is gone was taken: {gone}"
    );
    assert!(gone.contains("does not exist"), "{gone}");
}
