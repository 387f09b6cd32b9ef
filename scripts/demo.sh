#!/usr/bin/env bash
# The main job: a real cargo project whose proc macros run as WebAssembly
# components inside stable rustc. Builds wasmacro, runs the project with plain
# `cargo run` and with `cargo wasmacro run`, compares the two outputs, and
# prints the summary of which proc macros ran where.
#
#   ./scripts/demo.sh                 # examples/serde-demo (serde_derive)
#   ./scripts/demo.sh path/to/project # any binary project: `cargo run` in both modes
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PROJECT=$(cd "${1:-examples/serde-demo}" && pwd)

rustup target add wasm32-wasip2
# The runtime library goes beside `wasmacro`, where shims load it into rustc.
cargo build --release --locked -p wasmacro -p wasmacro-runtime
# `cargo wasmacro` is the `cargo-wasmacro` executable on the PATH.
export PATH="$ROOT/target/release:$PATH"
OUT=$ROOT/target/demo
mkdir -p "$OUT"
export WASMACRO_CACHE_DIR=${WASMACRO_CACHE_DIR:-$ROOT/target/wasmacro-cache}

cd "$PROJECT"
echo "== cargo run (native proc macros)"
cargo run --quiet --target-dir "$OUT/target" > "$OUT/native.txt"
echo "== cargo wasmacro run (proc macros as wasm components)"
cargo wasmacro run --target-dir "$OUT/target" > "$OUT/wasm.txt"
cat "$OUT/wasm.txt"
if diff -u "$OUT/native.txt" "$OUT/wasm.txt"; then
  echo "== identical output with native and wasm proc macros"
else
  echo "== OUTPUT DIFFERS between native and wasm proc macros" >&2
  exit 1
fi
