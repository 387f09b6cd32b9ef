#!/usr/bin/env bash
# Regenerates the export glue's WIT bindings (crates/wasmacro-guest-glue/src/
# bindings.rs) from wit/wasmacro.wit with the wit-bindgen CLI, at the version
# the glue's runtime crate is pinned to, and records the WIT file's BLAKE3
# (bindings.wit-digest) that a unit test compares with the WIT file.
#
# Why generated ahead of time rather than by `wit_bindgen::generate!`: the
# macro's crate graph (heck, wit-parser, serde, …) would be built inside every
# component build, where a project's `[patch]` of one of those crates reaches
# it (a patched heck broke it); pre-generated, the glue needs only the
# dependency-free runtime crate.
#
#   scripts/generate-bindings.sh          # regenerate
#   scripts/generate-bindings.sh --check  # fail if the committed files are stale
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=0.61.1
TOOLS=${WASMACRO_TOOLS:-target/tools}
if ! "$TOOLS/bin/wit-bindgen" --version 2>/dev/null | grep -q "$VERSION"; then
  cargo install --locked wit-bindgen-cli --version "$VERSION" --root "$TOOLS"
fi
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
"$TOOLS/bin/wit-bindgen" rust wit/ --world proc-macro-component \
  --pub-export-macro --export-macro-name export_component \
  --default-bindings-module wasmacro_guest_glue::bindings \
  --format --out-dir "$OUT" > /dev/null
GLUE=crates/wasmacro-guest-glue/src
python3 -c 'import blake3' 2>/dev/null || python3 -m pip install --quiet blake3
DIGEST=$(python3 -c 'import blake3,sys; print(blake3.blake3(open(sys.argv[1],"rb").read()).hexdigest())' wit/wasmacro.wit)
if [ "${1:-}" = "--check" ]; then
  cmp "$OUT/proc_macro_component.rs" "$GLUE/bindings.rs"
  [ "$(cat "$GLUE/bindings.wit-digest")" = "$DIGEST" ]
  echo "bindings are up to date"
else
  cp "$OUT/proc_macro_component.rs" "$GLUE/bindings.rs"
  echo "$DIGEST" > "$GLUE/bindings.wit-digest"
  echo "wrote $GLUE/bindings.rs"
fi
