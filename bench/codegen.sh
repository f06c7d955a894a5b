#!/usr/bin/env bash
# codegen.sh [RUNS]
#
# Compares, as whole processes and side by side in one hyperfine run, our
# code generator
#   target/release/qapi-codegen generate --features --out DIR schemas/qmp/qapi-schema.json
# (the Rust bindings, one file per schema module plus mod.rs) with QEMU's
#   python3 scripts/qapi-gen.py -o DIR schemas/qmp/qapi-schema.json
# from QEMU 10.2.2 (its C code), on the vendored QMP schema. Each writes into
# its own scratch directory, emptied before every run (hyperfine --prepare,
# not timed), so neither gains from files already there.
#
# Prints hyperfine's summary, the ratio of the means (ours / QEMU's) and a
# markdown row for the "Code generation" table of BENCHMARKS.md.
#
# RUNS (default 10, or $BENCH_RUNS) is the number of timed runs of each,
# after 2 warm-up runs. QEMU's scripts come from
# $QAPI_QEMU_SOURCE_DIR/10.2.2/scripts when that exists, else from
# ../shared/tools/qemu-source 10.2.2. hyperfine is required (installed with
# apt-get when missing and the script runs as root).
set -euo pipefail

die() { echo "codegen: $*" >&2; exit 1; }

cd "$(dirname "${BASH_SOURCE[0]}")/.."
runs=${1:-${BENCH_RUNS:-10}}
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive number, not '$runs'"
qemu_version=10.2.2
schema=schemas/qmp/qapi-schema.json
[ -f "$schema" ] || die "$schema is missing; run 'cargo xtask import-schemas' first"

if [ -n "${QAPI_QEMU_SOURCE_DIR:-}" ] && [ -d "$QAPI_QEMU_SOURCE_DIR/$qemu_version/scripts/qapi" ]; then
  scripts=$QAPI_QEMU_SOURCE_DIR/$qemu_version/scripts
elif [ -x ../shared/tools/qemu-source ]; then
  scripts=$(../shared/tools/qemu-source "$qemu_version")/scripts
else
  die "no QEMU $qemu_version source tree: set QAPI_QEMU_SOURCE_DIR (see README.md)"
fi
[ -f "$scripts/qapi-gen.py" ] || die "$scripts/qapi-gen.py is missing"
command -v python3 >/dev/null || die "python3 is not installed"
if ! command -v hyperfine >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "codegen: installing hyperfine" >&2
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hyperfine; } >/dev/null 2>&1 || true
fi
command -v hyperfine >/dev/null || die "hyperfine is not installed"

echo "codegen: cargo build --release -p qapi-rs-codegen" >&2
cargo build --quiet --release -p qapi-rs-codegen
binary=${CARGO_TARGET_DIR:-target}/release/qapi-codegen

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
rust_cmd="$(printf '%q ' "$binary" generate --features --out "$tmp/rust" "$schema")"
python_cmd="$(printf '%q ' python3 "$scripts/qapi-gen.py" -o "$tmp/c" "$schema")"

# Both must succeed, or there is nothing to compare.
eval "$rust_cmd" >/dev/null || die "'$rust_cmd' failed; nothing to compare"
eval "$python_cmd" >/dev/null || die "'$python_cmd' failed; nothing to compare"
rust_files=$(find "$tmp/rust" -name '*.rs' | wc -l)
rust_bytes=$(cat "$tmp/rust"/*.rs | wc -c)
c_bytes=$(find "$tmp/c" -type f -exec cat {} + | wc -c)

hyperfine --style basic --warmup 2 --runs "$runs" --export-json "$tmp/hf.json" \
  -n qapi-codegen --prepare "rm -rf $tmp/rust" "$rust_cmd" \
  -n qapi-gen.py --prepare "rm -rf $tmp/c" "$python_cmd" >&2
read -r rust_mean rust_sd py_mean py_sd rust_user < <(python3 - "$tmp/hf.json" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
ms = lambda v: f"{v * 1000:.1f}"
print(ms(r["qapi-codegen"]["mean"]), ms(r["qapi-codegen"]["stddev"] or 0),
      ms(r["qapi-gen.py"]["mean"]), ms(r["qapi-gen.py"]["stddev"] or 0),
      ms(r["qapi-codegen"]["user"] + r["qapi-codegen"]["system"]))
PY
)
ratio=$(awk -v p="$py_mean" -v r="$rust_mean" 'BEGIN { printf "%.3f", r / p }')
verdict=$(awk -v x="$ratio" 'BEGIN { if (x <= 0.1) print "met"; else print "**goal not met**" }')
commit=$(git describe --always --dirty 2>/dev/null || echo unknown)
date=$(date -u +%Y-%m-%d)
machine="$(nproc) CPUs, $(uname -m), $(python3 -c 'import platform; print("Python", platform.python_version())')"
method="hyperfine $(hyperfine --version | awk '{print $2}'), $runs runs, 2 warm-up"

cat <<TXT

Schema: $schema; ours writes $rust_files files ($rust_bytes bytes), QEMU's $c_bytes bytes of C
Method: $method
  qapi-codegen generate   $rust_mean ± $rust_sd ms (CPU time $rust_user ms)
  qapi-gen.py (10.2.2)    $py_mean ± $py_sd ms
  ratio                   ${ratio}× (goal ≤ 0.1×)

| $date | \`$commit\` | $machine | $rust_mean ± $rust_sd ms | $py_mean ± $py_sd ms | ${ratio}× — $verdict | $method |
TXT
