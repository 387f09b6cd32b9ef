#!/usr/bin/env bash
# The tests, as CI runs them, from a fresh machine: installs the wasm target,
# rust-analyzer with the standard library's sources (tests/editor.rs) and
# sccache from crates.io (tests/sccache.rs), builds the workspace (it makes
# the in-process runtime library, which `cargo test` alone does not build),
# then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target add wasm32-wasip2
rustup component add rust-analyzer rust-src
# sccache builds while the workspace does: on 2 cores each fills the other's
# single-crate stretches. Its own release profile asks for fat LTO in one
# codegen unit, which costs a minute the tests do not need.
installing=
if ! command -v sccache >/dev/null; then
    CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
        cargo install sccache --locked --no-default-features &
    installing=$!
fi
cargo build --workspace --locked
if [ -n "$installing" ]; then
    wait "$installing"
fi
cargo test --workspace --locked
