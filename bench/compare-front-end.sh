#!/usr/bin/env bash
# compare-front-end.sh [RUNS]
#
# Compares, as whole processes and side by side in one run, our front end
#   target/release/qapi-codegen check schemas/qmp/qapi-schema.json
# with QEMU's Python front end (scripts/qapi of QEMU 10.2.2) on the same file:
#   python3 -c '...; from qapi.schema import QAPISchema; QAPISchema(FILE)'
# Both parse and check the whole QMP schema; neither generates code.
#
# Reports the mean time of each (hyperfine when it is installed or can be
# installed, else a loop timed with `date +%s%N`), the ratio, and each one's
# peak RSS (GNU time's "Maximum resident set size"), and ends with a markdown
# table row for BENCHMARKS.md.
#
# RUNS (default 20, or $BENCH_RUNS) is the number of timed runs of each.
# QEMU's scripts come from $QAPI_QEMU_SOURCE_DIR/10.2.2/scripts when that
# exists, else from ../shared/tools/qemu-source 10.2.2.
set -euo pipefail

die() { echo "compare-front-end: $*" >&2; exit 1; }

cd "$(dirname "${BASH_SOURCE[0]}")/.."
runs=${1:-${BENCH_RUNS:-20}}
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive number, not '$runs'"
qemu_version=10.2.2
schema=schemas/qmp/qapi-schema.json
[ -f "$schema" ] || die "$schema is missing; run 'cargo xtask import-schemas' first"

# Runs apt-get install for the given packages if we are root and apt-get exists.
apt_install() {
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null || return 1
  echo "compare-front-end: installing $*" >&2
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"; } >/dev/null 2>&1
}

# QEMU's front end.
if [ -n "${QAPI_QEMU_SOURCE_DIR:-}" ] && [ -d "$QAPI_QEMU_SOURCE_DIR/$qemu_version/scripts/qapi" ]; then
  scripts=$QAPI_QEMU_SOURCE_DIR/$qemu_version/scripts
elif [ -x ../shared/tools/qemu-source ]; then
  scripts=$(../shared/tools/qemu-source "$qemu_version")/scripts
else
  die "no QEMU $qemu_version source tree: set QAPI_QEMU_SOURCE_DIR (see README.md)"
fi
[ -f "$scripts/qapi/schema.py" ] || die "$scripts/qapi/schema.py is missing"
command -v python3 >/dev/null || die "python3 is not installed"
python_src='import sys; sys.path.insert(0, sys.argv[1]); from qapi.schema import QAPISchema; QAPISchema(sys.argv[2])'
python_cmd=(python3 -c "$python_src" "$scripts" "$schema")

# Ours.
echo "compare-front-end: cargo build --release -p qapi-rs-codegen" >&2
cargo build --quiet --release -p qapi-rs-codegen
rust_cmd=("${CARGO_TARGET_DIR:-target}/release/qapi-codegen" check "$schema")

# Both must accept the schema, or there is nothing to compare.
"${rust_cmd[@]}" >/dev/null || die "'${rust_cmd[*]}' failed; nothing to compare"
"${python_cmd[@]}" >/dev/null || die "QEMU's front end failed on $schema; nothing to compare"

# GNU time for peak RSS.
[ -x /usr/bin/time ] || apt_install time || true
[ -x /usr/bin/time ] || die "/usr/bin/time (GNU time) is missing and could not be installed"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Prints the peak RSS of one run of "$@" in MiB.
peak_rss_mib() {
  /usr/bin/time -v -o "$tmp/time" "$@" >/dev/null 2>&1
  awk -F: '/Maximum resident set size/ { printf "%.1f", $2 / 1024 }' "$tmp/time"
}

# Mean and standard deviation of each, in milliseconds.
if ! command -v hyperfine >/dev/null; then apt_install hyperfine || true; fi
if command -v hyperfine >/dev/null; then
  method="hyperfine $(hyperfine --version | awk '{print $2}'), $runs runs, 3 warm-up"
  hyperfine --style basic --warmup 3 --runs "$runs" --export-json "$tmp/hf.json" \
    -n qapi-codegen "$(printf '%q ' "${rust_cmd[@]}")" \
    -n python "$(printf '%q ' "${python_cmd[@]}")" >&2
  read -r rust_mean rust_sd python_mean python_sd < <(python3 - "$tmp/hf.json" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
ms = lambda v: f"{v * 1000:.2f}"
print(ms(r["qapi-codegen"]["mean"]), ms(r["qapi-codegen"]["stddev"] or 0),
      ms(r["python"]["mean"]), ms(r["python"]["stddev"] or 0))
PY
)
else
  method="date +%s%N loop, $runs runs, 1 warm-up (hyperfine unavailable)"
  # Prints "mean stddev" in ms over $runs runs of "$@", after one warm-up run.
  time_loop() {
    "$@" >/dev/null 2>&1
    local i t0 t1
    : > "$tmp/samples"
    for ((i = 0; i < runs; i++)); do
      t0=$(date +%s%N); "$@" >/dev/null 2>&1; t1=$(date +%s%N)
      echo $((t1 - t0)) >> "$tmp/samples"
    done
    awk '{ s += $1; ss += $1 * $1 } END {
      m = s / NR; v = ss / NR - m * m; if (v < 0) v = 0
      printf "%.2f %.2f\n", m / 1e6, sqrt(v) / 1e6 }' "$tmp/samples"
  }
  read -r rust_mean rust_sd < <(time_loop "${rust_cmd[@]}")
  read -r python_mean python_sd < <(time_loop "${python_cmd[@]}")
fi

rust_rss=$(peak_rss_mib "${rust_cmd[@]}")
python_rss=$(peak_rss_mib "${python_cmd[@]}")
ratio=$(awk -v p="$python_mean" -v r="$rust_mean" 'BEGIN { printf "%.1f", p / r }')
rss_ratio=$(awk -v p="$python_rss" -v r="$rust_rss" 'BEGIN { printf "%.1f", p / r }')

commit=$(git describe --always --dirty 2>/dev/null || echo unknown)
date=$(date -u +%Y-%m-%d)
machine="$(nproc) CPUs, $(uname -m), $(python3 -c 'import platform; print("Python", platform.python_version())')"

cat <<TXT

Schema: $schema (QEMU $(awk -F'|' '/QEMU version/ { gsub(/ /, "", $3); print $3 }' schemas/PROVENANCE.md 2>/dev/null))
Method: $method
                         mean (ms)    stddev (ms)   peak RSS (MiB)
  qapi-codegen check     $(printf '%9s    %11s   %14s' "$rust_mean" "$rust_sd" "$rust_rss")
  QEMU's Python (10.2.2) $(printf '%9s    %11s   %14s' "$python_mean" "$python_sd" "$python_rss")
  Python / qapi-codegen: ${ratio}x the time, ${rss_ratio}x the memory

Markdown row for BENCHMARKS.md:
| $date | \`$commit\` | $machine | $rust_mean ± $rust_sd ms | $python_mean ± $python_sd ms | ${ratio}x | $rust_rss MiB | $python_rss MiB | $method |
TXT
