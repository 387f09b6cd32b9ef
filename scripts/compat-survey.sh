#!/usr/bin/env bash
# Compatibility survey: builds the most-used proc-macro crates of crates.io as
# wasmacro components, one at a time, and prints one TSV row per crate:
#
#   crate  version  outcome  seconds  reason
#
# outcome is `wasm` (it builds and imports nothing ambient), `needs-fs` /
# `needs-net` (it builds, but imports wasi:filesystem/* or wasi:sockets/*: it
# runs in the sandbox too, reading what its grants allow; a socket fails its
# expansion), or `fails` (no component: the reason is rustc's first error, or
# why the version could not be resolved). A last line, starting with `#`, sums
# it up.
#
#   scripts/compat-survey.sh                      # the whole list below
#   scripts/compat-survey.sh paste serde_derive   # only these (NAME[@REQ][+FEATURES])
#   scripts/compat-survey.sh --limit 3            # the first 3 of the list
#   scripts/compat-survey.sh --list               # print the list and exit
#   scripts/compat-survey.sh --resume             # keep the rows already in the
#                                                 # TSV, build only what is missing
#
# Environment:
#   WASMACRO            the wasmacro binary (default: target/release/wasmacro
#                       of this checkout; build it with
#                       `cargo build --release -p wasmacro`)
#   WASMACRO_CACHE_DIR  the component cache and shared wasm target directory
#                       (default: target/compat-survey-cache; never the user's)
#   SURVEY_OUT          the TSV, written row by row (default:
#                       target/compat-survey.tsv); full build logs go to
#                       ${SURVEY_OUT%.tsv}-logs/, components to
#                       ${SURVEY_OUT%.tsv}-out/
#   SURVEY_TIMEOUT      seconds one crate's build may take (default 3600)
#
# Versions are the newest of each crate on the crates.io index, as cargo
# resolves `NAME = "*"` in a throwaway project (no pre-releases); NAME@REQ
# resolves `NAME = "REQ"` instead (e.g. thiserror-impl@1).
# Each crate is built with its default features, plus FEATURES (comma
# separated) when the entry is NAME+FEATURES. Builds run one after
# another: cargo parallelises inside each one.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)

# The most-downloaded proc-macro crates on crates.io (all-time downloads,
# roughly in that order), written from memory on 2026-11-30 without access to
# the live ranking: treat the order as approximate. Only crates whose library
# is `proc-macro = true` (e.g. `ctor-proc-macro`, not the `ctor` facade;
# `derive_more-impl`, not `derive_more`; `askama_macros`: `askama_derive`
# 0.16 is a plain library). NAME@REQ pins a major version;
# NAME+FEATURES adds features, for crates that declare no macro by default
# (derive_more-impl, sqlx-macros: their users enable the macros through the
# facade crate's features). Lines starting with # are comments.
CRATES=$(cat <<'EOF'
serde_derive
thiserror-impl
thiserror-impl@1
zerocopy-derive
tokio-macros
futures-macro
pin-project-internal
async-trait
tracing-attributes
paste
rustversion
clap_derive
displaydoc
yoke-derive
zerofrom-derive
zerovec-derive
# derive_more-impl declares nothing without features (derive_more's users
# pick derives): `full` is all of them.
derive_more-impl+full
strum_macros
proc-macro-error-attr
wasm-bindgen-macro
num_enum_derive
darling_macro
time-macros
prost-derive
bytemuck_derive
async-stream-impl
openssl-macros
windows-implement
windows-interface
indoc
const-random-macro
ctor-proc-macro
derive_builder_macro
ref-cast-impl
serde_repr
pest_derive
enum-as-inner
proc-macro-hack
structopt-derive
num-derive
serde_with_macros
derivative
const_format_proc_macros
document-features
zeroize_derive
foreign-types-macros
miette-derive
enumflags2_derive
schemars_derive
snafu-derive
async-recursion
getset
derive-new
smart-default
mockall_derive
phf_macros
typed-builder-macro
educe
rstest_macros
auto_impl
test-case-macros
enum_dispatch
rkyv_derive
bytecheck_derive
ptr_meta_derive
pyo3-macros
include_dir_macros
rust-embed-impl
askama_macros
cxxbridge-macro
axum-macros
diesel_derives
# sqlx-macros declares nothing without features: these are what
# `sqlx = { features = ["runtime-tokio", "postgres"] }` enables.
sqlx-macros+_rt-tokio,derive,macros,migrate,json,postgres
actix-macros
napi-derive
EOF
)

usage() { sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

LIMIT=
RESUME=
SELECTED=()
while [ $# -gt 0 ]; do
  case $1 in
    --limit) LIMIT=$2; shift 2 ;;
    --limit=*) LIMIT=${1#--limit=}; shift ;;
    --resume) RESUME=1; shift ;;
    --list) printf '%s\n' "$CRATES" | grep -vE '^[[:space:]]*(#|$)'; exit 0 ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "unknown option $1" >&2; usage >&2; exit 2 ;;
    *) SELECTED+=("$1"); shift ;;
  esac
done
if [ ${#SELECTED[@]} -eq 0 ]; then
  mapfile -t SELECTED < <(printf '%s\n' "$CRATES" | grep -vE '^[[:space:]]*(#|$)')
fi
if [ -n "$LIMIT" ]; then
  SELECTED=("${SELECTED[@]:0:$LIMIT}")
fi

WASMACRO=${WASMACRO:-$ROOT/target/release/wasmacro}
if [ ! -x "$WASMACRO" ]; then
  echo "no wasmacro binary at $WASMACRO: build it (cargo build --release -p wasmacro) or set WASMACRO" >&2
  exit 2
fi
WASMACRO=$(cd "$(dirname "$WASMACRO")" && pwd)/$(basename "$WASMACRO")
export WASMACRO_CACHE_DIR=${WASMACRO_CACHE_DIR:-$ROOT/target/compat-survey-cache}
OUT=${SURVEY_OUT:-$ROOT/target/compat-survey.tsv}
TIMEOUT=${SURVEY_TIMEOUT:-3600}
LOGS=${OUT%.tsv}-logs
COMPONENTS=${OUT%.tsv}-out
mkdir -p "$WASMACRO_CACHE_DIR" "$LOGS" "$COMPONENTS" "$(dirname "$OUT")"
# Neither the caller's cargo settings nor a surrounding cargo invocation may
# change what is built.
unset RUSTFLAGS CARGO_ENCODED_RUSTFLAGS RUSTC_WRAPPER RUSTC_WORKSPACE_WRAPPER CARGO_TARGET_DIR
if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx wasm32-wasip2; then
  rustup target add wasm32-wasip2 >&2
fi

# Versions are resolved the way cargo resolves a dependency: a throwaway
# project outside any workspace depends on `NAME = "REQ"` and cargo writes its
# lock file. (`cargo info` picks 0.8.0-alpha.15 for zerocopy-derive, whose
# newest version is a pre-release; `cargo search` does not work through this
# machine's registry mirror.)
RESOLVE_DIR=$(mktemp -d)
trap 'rm -rf "$RESOLVE_DIR"' EXIT
mkdir -p "$RESOLVE_DIR/src"
: >"$RESOLVE_DIR/src/lib.rs"

# One line, tabs and carriage returns made spaces.
oneline() { tr '\t\r\n' '   ' | tr -s ' ' | sed 's/^ //; s/ $//'; }

# The newest version matching SPEC (NAME or NAME@REQ, REQ defaulting to `*`,
# which excludes pre-releases), or cargo's error on stdout and status 1.
resolve() {
  local spec=${1%%+*} name req text version
  name=${spec%%@*}
  req='*'
  case $spec in *@*) req=${spec#*@} ;; esac
  printf '[package]\nname = "compat-survey-resolve"\nversion = "0.0.0"\nedition = "2021"\npublish = false\n\n[dependencies]\n%s = "%s"\n\n[workspace]\n' \
    "$name" "$req" >"$RESOLVE_DIR/Cargo.toml"
  rm -f "$RESOLVE_DIR/Cargo.lock"
  if ! text=$(cd "$RESOLVE_DIR" && cargo generate-lockfile --quiet 2>&1); then
    printf '%s\n' "$text" | grep -m1 '^error' || printf '%s\n' "$text" | head -n1
    return 1
  fi
  version=$(cd "$RESOLVE_DIR" && cargo pkgid --quiet "$name" 2>&1 | sed -n 's/.*[#@]\([0-9][^@#]*\)$/\1/p')
  if [ -z "$version" ]; then
    echo "cargo pkgid $name did not give a version"
    return 1
  fi
  printf '%s\n' "$version"
}

# The first real error of a failed `wasmacro build` log: rustc's first error
# (`path:line:col: error[E…]: …` in cargo's short format, or `error: …`), not
# wasmacro's wrapper line nor cargo's "could not compile" summary. A failed
# build script or link step also gets the line that says why.
first_error() {
  local log=$1 line extra=
  line=$(grep -E '^error(\[E[0-9]+\])?: |: error(\[E[0-9]+\])?: ' "$log" |
    grep -vE '^error: building `[^`]*` for wasm32-wasip2 failed|^error: could not compile|^error: aborting due to|^error: build failed|^error: failed to compile' |
    head -n1)
  if [ -z "$line" ]; then
    line=$(grep -m1 -iE 'error' "$log" || tail -n1 "$log")
  fi
  case $line in
    *"failed to run custom build command"*)
      extra=$(sed -n '/--- stderr/,$p' "$log" | sed '1d' | grep -v '^[[:space:]]*$' | head -n1) ;;
    *"linking with"*)
      extra=$(grep -m1 -E 'rust-lld: error|wasm-component-ld|undefined symbol|error: ' "$log" | grep -v "linking with") ;;
  esac
  if [ -n "$extra" ]; then
    line="$line — $extra"
  fi
  printf '%s\n' "$line" | oneline
}

elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b - a) / 1e9 }'; }

if [ -n "$RESUME" ] && [ -s "$OUT" ]; then
  echo "# resumed $(date -u +%FT%TZ): rows above this line are kept" | tee -a "$OUT"
else
  printf 'crate\tversion\toutcome\tseconds\treason\n' | tee "$OUT"
fi
COMMIT=$(git -C "$(dirname "$WASMACRO")" rev-parse --short HEAD 2>/dev/null || echo "not in a git checkout")
echo "# wasmacro: $WASMACRO ($("$WASMACRO" --version 2>/dev/null || echo unknown version), commit $COMMIT); $(rustc --version); cache: $WASMACRO_CACHE_DIR; started $(date -u +%FT%TZ)" | tee -a "$OUT"

# Whether OUT already has a row for NAME VERSION built with FEATURES.
have_row() {
  awk -F'\t' -v n="$1" -v v="$2" -v f="${3:+features $3: }" '
    !/^#/ && $1 == n && $2 == v && (f == "" ? $5 !~ /^features / : index($5, f) == 1) { found = 1 }
    END { exit !found }' "$OUT"
}

RUN_START=$(date +%s)
for spec in "${SELECTED[@]}"; do
  [ -n "$spec" ] || continue
  name=${spec%%[@+]*}
  features=
  case $spec in *+*) features=${spec#*+} ;; esac
  start=$(date +%s%N)
  if ! version=$(resolve "$spec"); then
    reason="cannot resolve a version of $spec: $(printf '%s' "$version" | oneline)"
    printf '%s\t%s\t%s\t%s\t%s\n' "$name" "?" fails "$(elapsed "$start" "$(date +%s%N)")" "$reason" | tee -a "$OUT"
    continue
  fi
  if [ -n "$RESUME" ] && have_row "$name" "$version" "$features"; then
    continue
  fi
  log=$LOGS/$name-$version${features:+-$features}.log
  dir=$COMPONENTS/$name-$version${features:+-$features}
  rm -rf "$dir"
  timeout "$TIMEOUT" "$WASMACRO" build --crate "$name@$version" ${features:+--features "$features"} \
    --out-dir "$dir" >"$log" 2>&1 </dev/null
  status=$?
  seconds=$(elapsed "$start" "$(date +%s%N)")
  listing=$dir/$name.macros.json
  if [ $status -eq 0 ] && [ -f "$listing" ]; then
    macros=$(grep -c '"kind":' "$listing")
    fs=$(grep -o '"wasi:filesystem/[^"]*"' "$listing" | tr -d '"' | paste -sd, -)
    net=$(grep -o '"wasi:sockets/[^"]*"' "$listing" | tr -d '"' | paste -sd, -)
    if [ -n "$net" ]; then
      outcome=needs-net
      reason="imports $net${fs:+,$fs}"
    elif [ -n "$fs" ]; then
      outcome=needs-fs
      reason="imports $fs"
    else
      outcome=wasm
      reason="$macros macros, component $(tail -n1 "$log" | cut -c1-16)"
    fi
  else
    outcome=fails
    if [ $status -eq 124 ]; then
      reason="timed out after ${TIMEOUT}s"
    else
      reason=$(first_error "$log")
    fi
  fi
  if [ -n "$features" ]; then
    reason="features $features: $reason"
  fi
  printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$version" "$outcome" "$seconds" "$reason" | tee -a "$OUT"
done

RUN_SECONDS=$(($(date +%s) - RUN_START))
# The summary counts every row of the TSV (with --resume, earlier ones too).
awk -F'\t' -v run="$RUN_SECONDS" '
  !/^#/ && NR > 1 { total++; count[$3]++; seconds += $4 }
  END {
    built = count["wasm"] + count["needs-fs"] + count["needs-net"]
    pct = total ? 100 * built / total : 0
    wpct = total ? 100 * count["wasm"] / total : 0
    printf "# summary: %d of %d build as components (%.1f%%); %d of %d import nothing ambient (%.1f%%): wasm %d, needs-fs %d, needs-net %d, fails %d; builds took %.0fs, this run %ds\n",
      built, total, pct, count["wasm"], total, wpct, count["wasm"], count["needs-fs"], count["needs-net"], count["fails"], seconds, run
  }' "$OUT" | tee -a "$OUT"
