//! Names the runtime's own logic for the expansion cache: a digest of the
//! sources that decide what a session returns for an expansion (this crate,
//! the protocol, the guest lexer that checks results, the WIT contract) and
//! of the workspace's `Cargo.lock` (the versions of wasmtime-wasi and the
//! rest), so a wasmacro whose runtime behaves differently never takes
//! another's cached expansions.
//! FNV-1a over sorted paths and contents: stable across builds and machines.

use std::path::{Path, PathBuf};

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs" || e == "wit") {
            out.push(path);
        }
    }
}

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let roots = [
        manifest.join("src"),
        manifest.join("../wasmacro-protocol/src"),
        manifest.join("../wasmacro-guest/src"),
        manifest.join("../../wit"),
    ];
    let mut paths = Vec::new();
    for root in &roots {
        println!("cargo:rerun-if-changed={}", root.display());
        files(root, &mut paths);
    }
    let mut named: Vec<(String, PathBuf)> = paths
        .into_iter()
        .map(|p| {
            let name = p
                .strip_prefix(&manifest)
                .unwrap_or(&p)
                .display()
                .to_string();
            (name.replace('\\', "/"), p)
        })
        .collect();
    named.sort();
    let (mut a, mut b) = (0xcbf2_9ce4_8422_2325u64, 0x6c62_272e_07bb_0142u64);
    let mut feed = |bytes: &[u8]| {
        for &byte in bytes {
            a = (a ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
            b = (b ^ u64::from(byte)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    };
    for (name, path) in &named {
        feed(name.as_bytes());
        feed(&std::fs::read(path).unwrap_or_default());
    }
    let lock = manifest.join("../../Cargo.lock");
    println!("cargo:rerun-if-changed={}", lock.display());
    feed(&std::fs::read(&lock).unwrap_or_default());
    println!("cargo:rustc-env=WASMACRO_RUNTIME_SOURCES={a:016x}{b:016x}");
}
