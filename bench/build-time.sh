#!/usr/bin/env bash
# build-time.sh [RUNS_CLEAN] [RUNS_CRATE]
#
# Compares, side by side in one run, the release build time of
#   all      qapi-types with all features (its default),
#   small    qapi-types with one small module feature only ($BENCH_MODULE,
#            default `yank`), and
#   qapi-qmp the newest qapi-qmp from the registry (arcnmx's QMP bindings,
#            whose build script generates its code from the schema at build
#            time; that is part of its build and is timed),
# each as the only dependency of a tiny scratch library crate with its own
# CARGO_TARGET_DIR, with the same toolchain and the default release profile
# (what a user gets). Two quantities are measured:
#   (a) clean build: the whole `cargo build --release` from an empty target
#       directory, dependencies (serde, serde_derive, syn, …) included;
#   (b) the crate alone: dependencies already built, then
#       `cargo clean --release -p CRATE` and `cargo build --release`; for
#       qapi-qmp that includes compiling and running its build script.
# Everything is downloaded first (`cargo fetch`); timed builds run with
# --frozen, so no download is timed. The three commands alternate: each round
# runs each once (hyperfine --runs 1, order rotated every round), so all three
# see the same machine state; the script reports the mean ± σ over rounds,
# the ratios of the means, and a markdown row for each table in
# BENCHMARKS.md.
#
# RUNS_CLEAN (default 5, or $BENCH_RUNS_CLEAN) and RUNS_CRATE (default 10, or
# $BENCH_RUNS_CRATE) are the numbers of rounds for (a) and (b).
# Environment:
#   BENCH_MODULE     the small module feature (default yank)
#   BENCH_REV        the git revision of qapi-types to build (default HEAD; it
#                    is exported with `git archive`, so edits in the working
#                    tree do not leak in), or `worktree` for the working tree
#   QAPI_QMP_VERSION the qapi-qmp version (default: the newest, `cargo info`)
#   BENCH_MAX_BUSY   wait (up to 10 minutes) until other processes keep
#                    fewer CPUs than this busy (measured from /proc/stat over
#                    5 s) before the timed runs (default: half the CPUs; 0 to
#                    not wait)
# Each round also records how many CPUs other processes kept busy (the
# machine's CPU time from /proc/stat less that of the timed builds), and the
# summary reports it: on a shared machine, the alternation keeps the ratios
# fair, but the absolute times are only as good as that figure.
# The dependencies shared with the workspace are pinned to the versions of
# its Cargo.lock (it is copied into each scratch crate before `cargo fetch`).
set -euo pipefail

die() { echo "build-time: $*" >&2; exit 1; }
say() { echo "build-time: $*" >&2; }

cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$PWD
runs_clean=${1:-${BENCH_RUNS_CLEAN:-5}}
runs_crate=${2:-${BENCH_RUNS_CRATE:-10}}
for n in "$runs_clean" "$runs_crate"; do
  [[ "$n" =~ ^[1-9][0-9]*$ ]] || die "the numbers of runs must be positive numbers, not '$n'"
done
module=${BENCH_MODULE:-yank}
rev=${BENCH_REV:-HEAD}
cpus=$(nproc)
max_load=${BENCH_MAX_BUSY:-$(awk -v n="$cpus" 'BEGIN { print n / 2 }')}

command -v cargo >/dev/null || die "cargo is not installed"
command -v python3 >/dev/null || die "python3 is not installed"
grep -q "^$module = \\[" qapi-types/Cargo.toml ||
  die "qapi-types has no feature '$module' (see qapi-types/Cargo.toml)"

# Runs apt-get install for the given packages if we are root and apt-get exists.
apt_install() {
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null || return 1
  say "installing $*"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"; } >/dev/null 2>&1
}
if ! command -v hyperfine >/dev/null; then apt_install hyperfine || true; fi
command -v hyperfine >/dev/null || die "hyperfine is missing and could not be installed"

# The scratch directory; the rustc wrapper and flags of the caller are not wanted.
unset RUSTC_WRAPPER RUSTFLAGS CARGO_BUILD_RUSTFLAGS CARGO_ENCODED_RUSTFLAGS CARGO_TARGET_DIR CARGO_INCREMENTAL
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The source of qapi-types.
if [ "$rev" = worktree ]; then
  src=$repo
  commit=$(git rev-parse --short=7 HEAD)
  [ -z "$(git status --porcelain -- qapi-types Cargo.toml Cargo.lock)" ] || commit="$commit+dirty"
else
  commit=$(git rev-parse --short=7 "$rev^{commit}") || die "unknown revision '$rev'"
  src=$tmp/src
  mkdir "$src"
  git archive "$commit" | tar -x -C "$src"
fi

# The version of qapi-qmp.
qmp_version=${QAPI_QMP_VERSION:-}
if [ -z "$qmp_version" ]; then
  qmp_version=$(cd "$tmp" && cargo info --quiet qapi-qmp 2>/dev/null | awk '$1 == "version:" { print $2; exit }') || true
  [ -n "$qmp_version" ] || die "could not find qapi-qmp's newest version; set QAPI_QMP_VERSION"
fi

# Writes a scratch library crate NAME that re-exports one dependency.
# scratch_crate NAME CRATE DEPENDENCY_SPEC
scratch_crate() {
  mkdir -p "$tmp/$1/src"
  cat >"$tmp/$1/Cargo.toml" <<EOF
[package]
name = "build-time-$1"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
$2 = $3

[workspace]
EOF
  echo "pub use ${2//-/_};" >"$tmp/$1/src/lib.rs"
  cp "$src/Cargo.lock" "$tmp/$1/Cargo.lock"
}
scratch_crate all qapi-types "{ path = \"$src/qapi-types\" }"
scratch_crate small qapi-types "{ path = \"$src/qapi-types\", default-features = false, features = [\"$module\"] }"
scratch_crate qmp qapi-qmp "\"=$qmp_version\""
names=(all small qmp)
declare -A crate_of=([all]=qapi-types [small]=qapi-types [qmp]=qapi-qmp)
declare -A label_of=([all]="qapi-types (all features)" [small]="qapi-types ($module only)" [qmp]="qapi-qmp $qmp_version")

# Shell commands for hyperfine, for scratch crate NAME.
in_crate() { printf 'cd %q && CARGO_TARGET_DIR=%q ' "$tmp/$1" "$tmp/$1/target"; }
build_cmd() { echo "$(in_crate "$1")cargo build --release --frozen --quiet"; }
wipe_cmd() { printf 'rm -rf %q' "$tmp/$1/target"; }
clean_crate_cmd() { echo "$(in_crate "$1")cargo clean --release --frozen --quiet -p ${crate_of[$1]}"; }

# Downloads (not timed), then one untimed build of each: it checks that they
# build, warms the file cache, and leaves the dependencies built for (b).
for name in "${names[@]}"; do
  say "cargo fetch (${label_of[$name]})"
  (cd "$tmp/$name" && cargo fetch --quiet)
done
for name in "${names[@]}"; do
  say "untimed build (${label_of[$name]})"
  bash -c "$(build_cmd "$name")" || die "${label_of[$name]} does not build"
done
# The crate-alone builds must rebuild the crate (and qapi-qmp's build script).
bash -c "$(clean_crate_cmd qmp)"
(cd "$tmp/qmp" && CARGO_TARGET_DIR=$tmp/qmp/target cargo build --release --frozen -v 2>&1) >"$tmp/qmp.log"
grep -q 'Running .*qapi-qmp-.*build-script-build' "$tmp/qmp.log" ||
  die "cargo clean -p qapi-qmp did not make cargo rerun qapi-qmp's build script"

# CPU time used by the whole machine so far, in seconds (/proc/stat: user, nice,
# system, irq, softirq, steal).
hz=$(getconf CLK_TCK)
busy_s() { awk -v hz="$hz" '$1 == "cpu" { printf "%.2f", ($2 + $3 + $4 + $7 + $8 + $9) / hz; exit }' /proc/stat; }
# The number of CPUs kept busy by other processes, over 5 seconds in which
# this script runs nothing.
others_busy() {
  local b0 b1
  b0=$(busy_s); sleep 5; b1=$(busy_s)
  awk -v a="$b0" -v b="$b1" 'BEGIN { printf "%.2f", (b - a) / 5 }'
}
# Waits, up to 10 minutes, until other processes keep fewer than $max_load CPUs busy.
idle_busy=$(others_busy)
if awk -v m="$max_load" 'BEGIN { exit !(m > 0) }'; then
  for _ in $(seq 60); do
    awk -v l="$idle_busy" -v m="$max_load" 'BEGIN { exit !(l >= m) }' || break
    say "other processes keep $idle_busy CPUs busy (>= $max_load); waiting"
    sleep 5
    idle_busy=$(others_busy)
  done
fi
say "CPUs kept busy by other processes before the timed runs: $idle_busy"

# One quantity: ROUNDS rounds, each one hyperfine run of each of the three
# builds (order rotated), after its preparation.
# measure TAG ROUNDS PREPARE_FUNCTION
measure() {
  local tag=$1 rounds=$2 prepare=$3 r i name
  for r in $(seq "$rounds"); do
    local args=()
    for i in 0 1 2; do
      name=${names[$(((r + i) % 3))]}
      args+=(--prepare "$($prepare "$name")" -n "$name" "$(build_cmd "$name")")
    done
    local b0 b1 t0 t1
    b0=$(busy_s); t0=$(date +%s.%N)
    hyperfine --style none --runs 1 --export-json "$tmp/$tag-$r.json" "${args[@]}" >&2
    b1=$(busy_s); t1=$(date +%s.%N)
    # The machine's CPU time and the wall time of the round, for the share of
    # other processes (the machine's CPU time less that of the timed builds).
    echo "$b0 $b1 $t0 $t1" >>"$tmp/$tag-busy"
    python3 - "$tmp/$tag-$r.json" "$r" "$rounds" "$tag" <<'PY' >&2
import json, sys
res = {x["command"]: x["times"][0] for x in json.load(open(sys.argv[1]))["results"]}
print(f"build-time: ({sys.argv[4]}) round {sys.argv[2]}/{sys.argv[3]}: "
      + ", ".join(f"{n} {res[n]:.2f} s" for n in ("all", "small", "qmp")))
PY
  done
}
say "(a) clean builds, dependencies included: $runs_clean rounds"
measure a "$runs_clean" wipe_cmd
say "(b) the crate alone, dependencies prebuilt: $runs_crate rounds"
measure b "$runs_crate" clean_crate_cmd

rustc_version=$(rustc --version | awk '{ print $2 }')
hf_version=$(hyperfine --version | awk '{ print $2 }')
machine="$cpus CPUs, $(uname -m)"
python3 - "$tmp" "$runs_clean" "$runs_crate" "$(date -u +%F)" "$commit" "$machine" \
  "$module" "$qmp_version" "$rustc_version" "$hf_version" "$idle_busy" <<'PY'
import json, statistics, sys
tmp, runs_a, runs_b, date, commit, machine, module, qmp, rustc, hf, idle_busy = sys.argv[1:]
names = ("all", "small", "qmp")
label = {"all": "qapi-types, all features", "small": f"qapi-types, `{module}` only",
         "qmp": f"qapi-qmp {qmp}"}
goal = {"all": 0.5, "small": 0.2}

def collect(tag, rounds):
    t = {n: [] for n in names}
    cpu = {n: [] for n in names}
    others = []  # CPUs kept busy by other processes (and the cleaning), per round
    busy = [list(map(float, l.split())) for l in open(f"{tmp}/{tag}-busy")]
    for r in range(1, int(rounds) + 1):
        ours = 0.0
        for x in json.load(open(f"{tmp}/{tag}-{r}.json"))["results"]:
            t[x["command"]].append(x["times"][0])
            cpu[x["command"]].append(x["user"] + x["system"])
            ours += x["user"] + x["system"]
        b0, b1, t0, t1 = busy[r - 1]
        others.append(max(0.0, (b1 - b0 - ours) / (t1 - t0)))
    return t, cpu, others

def ms(xs):
    m = statistics.mean(xs)
    s = statistics.stdev(xs) if len(xs) > 1 else 0.0
    return f"{m:.2f} ± {s:.2f} s"

print()
rows = []
for tag, rounds, title in (("a", runs_a, "(a) clean build, dependencies included"),
                           ("b", runs_b, "(b) the crate alone, dependencies prebuilt")):
    t, cpu, others = collect(tag, rounds)
    mean = {n: statistics.mean(t[n]) for n in names}
    print(f"{title}: {rounds} rounds; CPUs kept busy by other processes and the "
          f"cleaning, per round: {min(others):.2f}-{max(others):.2f}")
    for n in names:
        print(f"  {label[n]:32} {ms(t[n]):>18}   CPU (user+sys) {statistics.mean(cpu[n]):7.2f} s")
    cells, cpu_cells = [], []
    for n in ("all", "small"):
        ratio = mean[n] / mean["qmp"]
        paired = [a / b for a, b in zip(t[n], t["qmp"])]
        cpu_ratio = statistics.mean(cpu[n]) / statistics.mean(cpu["qmp"])
        met = "met" if ratio <= goal[n] else "**goal not met**"
        print(f"  {label[n]} / qapi-qmp: {ratio:.3f}x (goal <= {goal[n]}x: "
              f"{met.strip('*')}; per round {min(paired):.3f}-{max(paired):.3f}x; "
              f"CPU time {cpu_ratio:.3f}x)")
        cells.append(f"{ratio:.3f}× — {met}")
        cpu_cells.append(f"{cpu_ratio:.3f}×")
    rows.append(f"| {date} | `{commit}` | {machine}, rustc {rustc} | {ms(t['all'])} | "
                f"{ms(t['small'])} | {ms(t['qmp'])} | {cells[0]} | {cells[1]} | "
                f"{cpu_cells[0]} / {cpu_cells[1]} | "
                f"hyperfine {hf}, {rounds} alternating rounds; other processes {max(others):.1f} CPUs at most |")
print(f"CPUs kept busy by other processes just before the timed runs: {idle_busy}")
print()
print("Markdown row for table (a), clean build with dependencies:")
print(rows[0])
print()
print("Markdown row for table (b), the crate alone:")
print(rows[1])
PY
