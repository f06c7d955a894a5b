#!/usr/bin/env bash
# testkit.sh [ROUNDS]
#
# How fast qapi-testkit's replay server answers, next to the bench's raw
# fake QMP server (qapi-client/benches/client.rs `fake-server`: answers at
# once, no matching), with the same client (qapi-client's async API, as
# `client.sh` runs it):
#
#   mock-pipe   query-status, WINDOW (32) in flight   mock vs fake   goal >= 0.5x
#   mock-seq    query-status, one at a time            mock vs fake   goal >= 0.5x
#
# "mock" is `qapi-mock serve` of a JSON-lines transcript holding as many
# recorded query-status exchanges as the client makes (strict matching:
# each request compared with the next recorded one, command and
# arguments, and answered with the recorded reply under the request's id);
# "mock-fallback" the same server with an empty transcript and a
# `--fallback` reply (no recorded exchange to match; reference).  The goal
# says that a test suite replaying a transcript spends at most twice what
# it would against a server that does nothing at all.
#
# Servers run on the last CPU ($BENCH_CPU), the client on the one before
# ($BENCH_CLIENT_CPU).  Each round measures every side back to back,
# alternating the order between rounds.  ROUNDS defaults to 5.  Only Unix
# sockets in a temporary directory.  Prints mean ± σ per side, the ratios
# and markdown rows for BENCHMARKS.md.
set -euo pipefail

die() { echo "testkit.sh: $*" >&2; exit 1; }
say() { echo "testkit.sh: $*" >&2; }

cd "$(dirname "${BASH_SOURCE[0]}")/.."
rounds=${1:-${BENCH_ROUNDS:-5}}
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive number, not '$rounds'"
pipe_n=${MOCK_PIPE_N:-300000}
seq_n=${MOCK_SEQ_N:-100000}
window=${WINDOW:-32}
target_dir=${CARGO_TARGET_DIR:-target}
command -v python3 >/dev/null || die "python3 is not installed"
command -v taskset >/dev/null || die "taskset (util-linux) is missing"
cpu=${BENCH_CPU:-$(($(nproc) - 1))}
client_cpu=${BENCH_CLIENT_CPU:-$(( cpu > 0 ? cpu - 1 : 0 ))}

say "building (release)"
cargo build --release -p qapi-testkit --bin qapi-mock >&2
bench_out=$(cargo bench -p qapi-client --bench client --no-run --message-format=json 2>/dev/null)
bench=$(printf '%s\n' "$bench_out" | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "client" and m.get("executable"):
        print(m["executable"])')
[ -x "$bench" ] || die "could not build the client benchmark"
mock=$target_dir/release/qapi-mock
[ -x "$mock" ] || die "no $mock"

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# A transcript of N query-status exchanges, and the warm-up's (200), and
# one per task of slack: the client rounds its count up to the window.
transcript() {
  python3 - "$1" "$2" <<'EOF'
import json, sys
path, n = sys.argv[1], int(sys.argv[2])
with open(path, "w") as f:
    f.write('{"qapi-transcript":1,"protocol":"qmp"}\n')
    reply = {"return": {"running": True, "status": "running"}}
    for i in range(n):
        f.write(json.dumps({"from": "client", "message": {"execute": "query-status", "id": i + 1}}) + "\n")
        f.write(json.dumps({"from": "server", "message": dict(reply, id=i + 1)}) + "\n")
EOF
}
transcript "$work/pipe.jsonl" $((pipe_n + 200 + window))
transcript "$work/seq.jsonl" $((seq_n + 200))
printf '{"qapi-transcript":1,"protocol":"qmp"}\n' >"$work/empty.jsonl"

taskset -c "$cpu" "$bench" fake-server "$work/fake.sock" &
pids+=($!)
for _ in $(seq 100); do [ -S "$work/fake.sock" ] && break; sleep 0.05; done

# Runs the client against `qapi-mock serve ARGS…` (a new server per run:
# it serves one client) and prints commands per second.
run_mock() {
  local n=$1 win=$2
  shift 2
  rm -f "$work/mock.sock"
  taskset -c "$cpu" "$mock" serve "$@" "$work/mock.sock" >"$work/mock.out" 2>&1 &
  local pid=$!
  for _ in $(seq 200); do [ -S "$work/mock.sock" ] && break; sleep 0.01; done
  taskset -c "$client_cpu" "$bench" qmp "$work/mock.sock" ours "$n" --window "$win" \
    | sed -n 's/^commands_per_second=//p'
  wait "$pid" || true
}
run_fake() {
  taskset -c "$client_cpu" "$bench" qmp "$work/fake.sock" ours "$1" --window "$2" \
    | sed -n 's/^commands_per_second=//p'
}

results=$work/results
: >"$results"
measure() {
  local side=$1 value
  case $side in
    pipe-fake) value=$(run_fake "$pipe_n" "$window") ;;
    pipe-mock) value=$(run_mock "$pipe_n" "$window" "$work/pipe.jsonl") ;;
    pipe-mock-fallback) value=$(run_mock "$pipe_n" "$window" \
      --fallback 'query-status={"running":true,"status":"running"}' "$work/empty.jsonl") ;;
    seq-fake) value=$(run_fake "$seq_n" 1) ;;
    seq-mock) value=$(run_mock "$seq_n" 1 "$work/seq.jsonl") ;;
  esac
  [ -n "$value" ] || die "$side: no result (see $work/mock.out)"
  say "$side: $value/s"
  echo "$side $value" >>"$results"
}

sides=(pipe-fake pipe-mock pipe-mock-fallback seq-fake seq-mock)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for round in $(seq 1 "$rounds"); do
  say "round $round/$rounds"
  if ((round % 2)); then order=("${sides[@]}"); else order=(); for ((i=${#sides[@]}-1; i>=0; i--)); do order+=("${sides[i]}"); done; fi
  for side in "${order[@]}"; do measure "$side"; done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

python3 - "$results" "$window" "$(git rev-parse --short HEAD)" "$load_before" "$load_after" <<'EOF'
import statistics, sys
from collections import defaultdict
path, window, commit, before, after = sys.argv[1:]
runs = defaultdict(list)
for line in open(path):
    side, value = line.split()
    runs[side].append(float(value))
def summary(side):
    v = runs[side]
    return f"{statistics.mean(v):,.0f} ± {statistics.pstdev(v):,.0f}/s"
rows = [
    (f"query-status, {window} in flight", "pipe-mock", "qapi-mock serve, strict, recorded exchanges", "pipe-fake", 0.5),
    (f"query-status, {window} in flight", "pipe-mock-fallback", "qapi-mock serve, --fallback only", "pipe-fake", None),
    ("query-status, one at a time", "seq-mock", "qapi-mock serve, strict, recorded exchanges", "seq-fake", 0.5),
]
print(f"load average {before} -> {after}")
print("| date | commit | what | server | baseline | ratio (per-round range) | goal |")
print("|---|---|---|---|---|---|---|")
import datetime
for what, side, label, base, goal in rows:
    ratios = [a / b for a, b in zip(runs[side], runs[base])]
    mean = statistics.mean(runs[side]) / statistics.mean(runs[base])
    verdict = "—" if goal is None else (f"≥ {goal}× — met" if min(ratios) >= goal else f"≥ {goal}× — **not met**")
    print(f"| {datetime.date.today()} | `{commit}` | {what}, client qapi-client async | {label}: {summary(side)} "
          f"| bench fake server: {summary(base)} | {mean:.3f}× ({min(ratios):.3f}–{max(ratios):.3f}) | {verdict} |")
EOF
