#!/usr/bin/env bash
# The main job: a real program whose `#[derive(Serialize, Deserialize)]` runs
# as a WebAssembly component inside stable rustc. Builds serde_derive from
# crates.io into a component, compiles examples/serde-demo through
# `wasmacro rustc`, runs it, and compares it with the same program built by
# cargo with the native serde_derive. Prints which proc macros ran where.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

rustup target add wasm32-wasip2
cargo build --release --locked -p wasmacro
WASMACRO=$ROOT/target/release/wasmacro
OUT=$ROOT/target/demo
mkdir -p "$OUT"
export WASMACRO_CACHE_DIR=${WASMACRO_CACHE_DIR:-$ROOT/target/wasmacro-cache}

echo "== building serde_derive 1.0.229 from crates.io into a component"
"$WASMACRO" build --crate serde_derive@1.0.229 --out-dir "$OUT"

echo "== building the demo's libraries (and its native build, for comparison)"
cd "$ROOT/examples/serde-demo"
cargo build --locked --message-format=json --target-dir "$OUT/target" > "$OUT/cargo.json"
rlib() {
  grep '"reason":"compiler-artifact"' "$OUT/cargo.json" | grep "\"name\":\"$1\"" \
    | grep -o '"[^"]*\.rlib"' | head -n 1 | tr -d '"'
}

echo "== compiling src/main.rs through wasmacro rustc (serde_derive as wasm)"
WASMACRO_SUMMARY=1 "$WASMACRO" rustc rustc --edition 2021 --crate-type bin src/main.rs \
  -o "$OUT/serde-demo-wasm" \
  --extern serde="$(rlib serde)" --extern serde_json="$(rlib serde_json)" \
  --extern serde_derive="$OUT/serde_derive.wasm" \
  -L dependency="$OUT/target/debug/deps"

"$OUT/serde-demo-wasm" | tee "$OUT/wasm.txt"
"$OUT/target/debug/serde-demo" > "$OUT/native.txt"
if diff -u "$OUT/native.txt" "$OUT/wasm.txt"; then
  echo "== identical output with native and wasm serde_derive"
else
  echo "== OUTPUT DIFFERS between native and wasm serde_derive" >&2
  exit 1
fi
