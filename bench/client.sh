#!/usr/bin/env bash
# client.sh [ROUNDS]
#
# Benchmarks qapi-client side by side with baselines and with the other
# Rust clients (the "peers"), in one run:
#
#   real QEMU (qemu-system-x86_64 -M none, QMP on a Unix socket):
#     qmp-seq     query-status, one at a time      ours vs raw      goal >= 1.0x
#                                                  blocking vs raw  goal >= 1.0x
#                                                  peers vs raw     (no goal)
#     qmp-pipe    query-status, WINDOW in flight   ours vs raw      goal >= 0.9x
#   real qemu-ga (Unix socket, read-only allow list):
#     qga-seq     guest-ping, one at a time        ours vs raw      goal >= 0.95x
#                                                  blocking vs raw  goal >= 0.95x
#                                                  tokio-raw vs raw (no goal)
#                                                  tokio-mux vs raw (no goal)
#                                                  arcnmx async and sync vs raw
#                                                  (no goal; lvillis's crate has
#                                                  no guest-agent client)
#     qga-pipe    guest-ping, WINDOW in flight     ours vs raw      goal >= 0.9x
#                                                  tokio-raw vs raw (no goal)
#                                                  tokio-mux vs raw (no goal)
#   again with the client on a CPU of its own (the *-2cpu rows):
#     qmp-pipe-2cpu, qga-pipe-2cpu                 ours vs raw      goal >= 0.9x
#     qga-seq-2cpu                                 ours vs raw      (reference)
#                                                  blocking vs raw  (reference)
#                                                  raw-poll vs raw  (reference)
#   the bench's fake QMP server (answers at once; client cost alone):
#     fake-seq    query-status, one at a time      ours vs raw      goal >= 0.8x
#                                                  blocking vs raw  goal >= 0.9x
#                                                  ours vs qemu.qmp goal >= 5x
#                                                  tokio-raw vs raw (no goal: the
#                                                  raw loop on tokio's UnixStream)
#                                                  tokio-mux vs raw (no goal: a
#                                                  bare session many tasks share,
#                                                  on tokio's UnixStream)
#                                                  raw-poll vs raw  (no goal: the
#                                                  raw loop waiting in poll, as
#                                                  a non-blocking socket must)
#                                                  peers vs raw     (no goal)
#     fake-pipe   query-status, WINDOW in flight,  ours vs raw      goal >= 0.8x
#                 the clients free to use both     blocking (WINDOW threads),
#                 CPUs (not pinned; the fake       tokio-mux, arcnmx async,
#                 server stays on its CPU)         lvillis, and ours with the
#                                                  WINDOW calls made by one
#                                                  task (multi-threaded and
#                                                  current-thread runtime)
#                                                  vs raw           (no goal)
#   idle memory: 1000 negotiated QMP sessions, fake server, per session:
#                 ours (one runtime)                          goal <= 8 KiB
#                 blocking (each session as the blocking API makes it)
#                                                             goal <= 8 KiB
#                 arcnmx async (one runtime), arcnmx sync, lvillis (one
#                 runtime)                                    (no goal)
#
# "ours" is qapi-client's async API on a multi-threaded tokio runtime;
# "blocking" its blocking API (qapi_client::blocking) called from the main
# thread, whose sequential calls read the socket on the calling thread
# (direct calls); "raw" a blocking std socket loop writing the least a
# request can be, the bytes our client writes
# ({"execute":"query-status","id":N}, N counting up from 0 in each session,
# nothing after the closing brace) and reading until the reply line ends
# (QEMU and qemu-ga end each reply with \r\n); "tokio-raw" the same loop on
# a tokio socket; "tokio-mux" the bare bones of a session shared by tasks
# (calls register a oneshot by id and queue their request for a writer
# task; a reader task matches reply lines by their id), without parsing,
# checks or time limits; "qemu.qmp" QEMU's Python library (async
# QMPClient, execute('query-status') in a loop), installed with pip into a
# venv under the target directory.  All of them are in
# qapi-client/benches/client.rs except qemu.qmp.
#
# The peers are the other Rust clients, in bench/peers (a crate of its own,
# outside the workspace, with its own lock file; built here in release):
# arcnmx's qapi crate through its tokio client (qapi::futures; "arcnmx
# async") and its blocking one (qapi::Qmp and qapi::Qga on a std
# UnixStream; "arcnmx sync", one call at a time), and lvillis's qmp crate
# (async, QMP only).  Where a peer cannot do what a row measures, the
# table says so instead of a number.
#
# Each round runs every side of every comparison back to back (the order
# alternates between rounds), so the sides of a ratio see the same machine
# state.  ROUNDS (default 5, or $BENCH_ROUNDS).  Counts are fixed (override
# with the variables below) and chosen for at least a second per
# measurement on a 2-CPU machine.  Prints mean ± σ per side, the ratios,
# the load average, and markdown rows for BENCHMARKS.md.
#
# Every process (servers and clients) runs on one CPU, the last one, or
# $BENCH_CPU (`BENCH_CPU=none` lets the scheduler place them), except the
# clients of the *-2cpu rows, which run on another CPU ($BENCH_CLIENT_CPU,
# by default the one before), and those of the fake-pipe rows, which are
# not pinned: there the client's work overlaps the server's, as when QEMU
# or a guest has CPUs of its own, while on one CPU it adds to the
# server's.  On the VM
# these numbers come from, waking a process on another vCPU costs about
# 150 µs, and unpinned runs swing between the two placements from one run
# to the next (0.1× to 2.4× for the same pair).  On one CPU a round trip
# is client time + server time + two context switches, as it is on any
# machine where wake-ups are cheap.
#
# BENCH_ONLY=PREFIX measures only the sides whose names start with PREFIX
# (`fake-pipe`, `qga-seq`, `idle` for the idle-memory runs alone), and
# prints only their rows.
#
# Only Unix sockets in a temporary directory; QEMU, qemu-ga and the fake
# server are killed on exit.  qemu-ga may run guest-ping,
# guest-sync-delimited and guest-info only.
set -euo pipefail

die() { echo "client.sh: $*" >&2; exit 1; }
say() { echo "client.sh: $*" >&2; }

cd "$(dirname "${BASH_SOURCE[0]}")/.."
rounds=${1:-${BENCH_ROUNDS:-5}}
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive number, not '$rounds'"
qmp_seq_n=${QMP_SEQ_N:-15000}
qmp_pipe_n=${QMP_PIPE_N:-15000}
qga_seq_n=${QGA_SEQ_N:-60000}
qga_seq_2cpu_n=${QGA_SEQ_2CPU_N:-20000}
qga_pipe_n=${QGA_PIPE_N:-150000}
fake_n=${FAKE_N:-300000}
fake_pipe_n=${FAKE_PIPE_N:-2000000}
fake_pipe_blocking_n=${FAKE_PIPE_BLOCKING_N:-300000}
peer_fake_n=${PEER_FAKE_N:-100000}
peer_fake_pipe_n=${PEER_FAKE_PIPE_N:-200000}
python_n=${PYTHON_N:-10000}
window=${WINDOW:-32}
only=${BENCH_ONLY:-}
connections=${CONNECTIONS:-1000}
target_dir=${CARGO_TARGET_DIR:-target}

qemu=${QAPI_TEST_QEMU:-$(command -v qemu-system-x86_64 || true)}
qemu_ga=${QAPI_TEST_QEMU_GA:-$(command -v qemu-ga || true)}
[ -n "$qemu" ] || die "qemu-system-x86_64 is not on PATH (or set QAPI_TEST_QEMU)"
[ -n "$qemu_ga" ] || die "qemu-ga is not on PATH (or set QAPI_TEST_QEMU_GA)"
command -v python3 >/dev/null || die "python3 is not installed"
cpu=${BENCH_CPU:-$(($(nproc) - 1))}
if [ "$cpu" = none ]; then
  pin=()
else
  command -v taskset >/dev/null || die "taskset (util-linux) is missing; or set BENCH_CPU=none"
  pin=(taskset -c "$cpu")
fi
client_cpu=${BENCH_CLIENT_CPU:-$(( cpu > 0 ? cpu - 1 : 1 ))}
if [ "$cpu" = none ] || [ "$(nproc)" -lt 2 ]; then
  split=0  # no second CPU to put the clients on: no *-2cpu rows
else
  split=1
  client_pin=(taskset -c "$client_cpu")
fi

# Enough descriptors for the idle-memory runs (the fake server is a child;
# a blocking session holds a few: its socket, its runtime's, an eventfd).
want_fds=$((connections * 8 + 256))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$want_fds" ]; then
  ulimit -n "$want_fds" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
  [ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge "$want_fds" ] \
    || die "need $want_fds file descriptors, the hard limit is $(ulimit -Hn)"
fi

# The bench binary, built in release by cargo bench.
say "cargo bench -p qapi-client --bench client --no-run"
bench=$(cargo bench --quiet -p qapi-client --bench client --no-run --message-format=json \
  | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "client" \
            and m.get("executable"):
        print(m["executable"])')
[ -x "$bench" ] || die "no bench executable from cargo"

# The peers' binary (bench/peers, outside the workspace), in release.
say "cargo build --release --manifest-path bench/peers/Cargo.toml"
peers=$(cargo build --quiet --release --locked --manifest-path bench/peers/Cargo.toml \
  --target-dir "$target_dir" --message-format=json \
  | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable"):
        print(m["executable"])')
[ -x "$peers" ] || die "no peers executable from cargo"
peer_versions=$(python3 -c '
import sys, tomllib
with open(sys.argv[1], "rb") as f:
    lock = tomllib.load(f)
versions = {p["name"]: p["version"] for p in lock["package"]}
print(versions["qapi"], versions["qmp"])' bench/peers/Cargo.lock)

# qemu.qmp in a venv, made once and reused.
venv=$target_dir/qapi-client-bench-venv
if ! "$venv/bin/python" -c 'import qemu.qmp' 2>/dev/null; then
  say "making $venv with qemu.qmp (pip)"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check qemu.qmp
fi
qmp_version=$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("qemu.qmp"))')

work=$(mktemp -d)
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_for_socket() { # PATH PID WHAT
  local i
  for i in $(seq 1 100); do
    [ -S "$1" ] && return 0
    kill -0 "$2" 2>/dev/null || die "$3 exited before opening $1"
    sleep 0.05
  done
  die "$3 did not open $1"
}

"${pin[@]}" "$qemu" -M none -nodefaults -display none \
  -qmp "unix:$work/qmp.sock,server=on,wait=off" 2>"$work/qemu.log" &
pids+=($!)
wait_for_socket "$work/qmp.sock" $! QEMU
mkdir "$work/qga-state"
"${pin[@]}" "$qemu_ga" -m unix-listen -p "$work/qga.sock" -t "$work/qga-state" \
  --allow-rpcs=guest-ping,guest-sync-delimited,guest-info 2>"$work/qemu-ga.log" &
pids+=($!)
wait_for_socket "$work/qga.sock" $! qemu-ga
"${pin[@]}" "$bench" fake-server "$work/fake.sock" &
pids+=($!)
wait_for_socket "$work/fake.sock" $! "the fake server"

cat >"$work/qemu_qmp.py" <<'EOF'
import asyncio, sys, time
from qemu.qmp import QMPClient

async def main(path, count):
    qmp = QMPClient("bench")
    await qmp.connect(path)
    for _ in range(200):  # the same warm-up as the Rust sides
        await qmp.execute("query-status")
    started = time.perf_counter()
    for _ in range(count):
        await qmp.execute("query-status")
    elapsed = time.perf_counter() - started
    await qmp.disconnect()
    print(f"commands_per_second={count / elapsed:.1f}")

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
EOF

# One measurement: NAME then the command; appends the rate to $work/NAME.
measure() {
  local name=$1 out
  shift
  if [[ "$name" == *-2cpu ]]; then
    out=$("${client_pin[@]}" "$@") || die "$name failed: $*"
  elif [[ "$name" == fake-pipe-* ]]; then
    out=$("$@") || die "$name failed: $*"
  else
    out=$("${pin[@]}" "$@") || die "$name failed: $*"
  fi
  out=${out#commands_per_second=}
  echo "$out" >>"$work/$name"
  printf '  %-19s %12.0f /s\n' "$name" "$out" >&2
}

# The sides of each comparison, grouped ("--" ends a group), in the order
# of the first round.
sides=(
  "qmp-seq-ours      $bench qmp $work/qmp.sock ours $qmp_seq_n"
  "qmp-seq-raw       $bench qmp $work/qmp.sock raw $qmp_seq_n"
  "qmp-seq-blocking  $bench qmp $work/qmp.sock blocking $qmp_seq_n"
  "qmp-seq-arcnmx-async $peers qmp $work/qmp.sock arcnmx-async $qmp_seq_n"
  "qmp-seq-arcnmx-sync $peers qmp $work/qmp.sock arcnmx-sync $qmp_seq_n"
  "qmp-seq-lvillis   $peers qmp $work/qmp.sock lvillis $qmp_seq_n"
  --
  "qmp-pipe-ours     $bench qmp $work/qmp.sock ours $qmp_pipe_n --window $window"
  "qmp-pipe-raw      $bench qmp $work/qmp.sock raw $qmp_pipe_n --window $window"
  --
  "qga-seq-ours      $bench qga $work/qga.sock ours $qga_seq_n"
  "qga-seq-raw       $bench qga $work/qga.sock raw $qga_seq_n"
  "qga-seq-tokio-raw $bench qga $work/qga.sock tokio-raw $qga_seq_n"
  "qga-seq-blocking  $bench qga $work/qga.sock blocking $qga_seq_n"
  "qga-seq-raw-poll  $bench qga $work/qga.sock raw-poll $qga_seq_n"
  "qga-seq-tokio-mux $bench qga $work/qga.sock tokio-mux $qga_seq_n"
  "qga-seq-arcnmx-async $peers qga $work/qga.sock arcnmx-async $qga_seq_n"
  "qga-seq-arcnmx-sync $peers qga $work/qga.sock arcnmx-sync $qga_seq_n"
  --
  "qga-pipe-ours     $bench qga $work/qga.sock ours $qga_pipe_n --window $window"
  "qga-pipe-raw      $bench qga $work/qga.sock raw $qga_pipe_n --window $window"
  "qga-pipe-tokio-raw $bench qga $work/qga.sock tokio-raw $qga_pipe_n --window $window"
  "qga-pipe-tokio-mux $bench qga $work/qga.sock tokio-mux $qga_pipe_n --window $window"
  --
)
((split)) && sides+=(
  "qmp-pipe-ours-2cpu $bench qmp $work/qmp.sock ours $qmp_pipe_n --window $window"
  "qmp-pipe-raw-2cpu $bench qmp $work/qmp.sock raw $qmp_pipe_n --window $window"
  --
  "qga-pipe-ours-2cpu $bench qga $work/qga.sock ours $qga_pipe_n --window $window"
  "qga-pipe-raw-2cpu $bench qga $work/qga.sock raw $qga_pipe_n --window $window"
  --
  "qga-seq-ours-2cpu $bench qga $work/qga.sock ours $qga_seq_2cpu_n"
  "qga-seq-raw-2cpu  $bench qga $work/qga.sock raw $qga_seq_2cpu_n"
  "qga-seq-blocking-2cpu $bench qga $work/qga.sock blocking $qga_seq_2cpu_n"
  "qga-seq-raw-poll-2cpu $bench qga $work/qga.sock raw-poll $qga_seq_2cpu_n"
  --
)
sides+=(
  "fake-ours         $bench qmp $work/fake.sock ours $fake_n"
  "fake-raw          $bench qmp $work/fake.sock raw $fake_n"
  "fake-tokio-raw    $bench qmp $work/fake.sock tokio-raw $fake_n"
  "fake-blocking     $bench qmp $work/fake.sock blocking $fake_n"
  "fake-raw-poll     $bench qmp $work/fake.sock raw-poll $fake_n"
  "fake-tokio-mux    $bench qmp $work/fake.sock tokio-mux $fake_n"
  "fake-qemu.qmp     $venv/bin/python $work/qemu_qmp.py $work/fake.sock $python_n"
  "fake-arcnmx-async $peers qmp $work/fake.sock arcnmx-async $peer_fake_n"
  "fake-arcnmx-sync  $peers qmp $work/fake.sock arcnmx-sync $peer_fake_n"
  "fake-lvillis      $peers qmp $work/fake.sock lvillis $peer_fake_n"
  --
  "fake-pipe-ours    $bench qmp $work/fake.sock ours $fake_pipe_n --window $window"
  "fake-pipe-raw     $bench qmp $work/fake.sock raw $fake_pipe_n --window $window"
  "fake-pipe-blocking $bench qmp $work/fake.sock blocking $fake_pipe_blocking_n --window $window"
  "fake-pipe-tokio-mux $bench qmp $work/fake.sock tokio-mux $fake_pipe_n --window $window"
  "fake-pipe-one-task $bench qmp $work/fake.sock ours-one-task $fake_pipe_n --window $window"
  "fake-pipe-one-task-current $bench qmp $work/fake.sock ours-one-task $fake_pipe_n --window $window --runtime current"
  "fake-pipe-arcnmx-async $peers qmp $work/fake.sock arcnmx-async $peer_fake_pipe_n --window $window"
  "fake-pipe-lvillis $peers qmp $work/fake.sock lvillis $peer_fake_pipe_n --window $window"
  --
)

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
say "load average before: $load_before; $rounds rounds; CPU: $cpu"
for round in $(seq 1 "$rounds"); do
  say "round $round/$rounds"
  # The sides of a group run back to back: odd rounds in the order
  # above, even rounds in reverse.
  group=()
  for side in "${sides[@]}"; do
    if [ "$side" != -- ]; then
      [[ "$side" == "$only"* ]] && group+=("$side")
      continue
    fi
    if ((round % 2 == 0)); then
      for ((i = ${#group[@]} - 1; i >= 0; i--)); do
        # shellcheck disable=SC2086
        measure ${group[i]}
      done
    else
      for member in "${group[@]}"; do
        # shellcheck disable=SC2086
        measure $member
      done
    fi
    group=()
  done
done
if [ -z "$only" ] || [ "$only" = idle ]; then
  say "idle memory: $connections sessions, 3 runs each"
fi
idle_sides=(
  "ours         $bench idle-memory $work/fake.sock $connections"
  "blocking     $bench idle-memory $work/fake.sock $connections --client blocking"
  "arcnmx-async $peers idle-memory $work/fake.sock arcnmx-async $connections"
  "arcnmx-sync  $peers idle-memory $work/fake.sock arcnmx-sync $connections"
  "lvillis      $peers idle-memory $work/fake.sock lvillis $connections"
)
[ -z "$only" ] || [ "$only" = idle ] || idle_sides=()
for _ in 1 2 3; do
  for side in "${idle_sides[@]}"; do
    # shellcheck disable=SC2086
    set -- $side
    name=$1
    shift
    out=$("$@" 2>>"$work/memory.log") || die "idle-memory $name failed: $*"
    echo "${out#kib_per_connection=}" >>"$work/memory-$name"
    printf '  %-22s %12s KiB\n' "idle $name" "${out#kib_per_connection=}" >&2
  done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# Summary and markdown rows.
commit=$(git rev-parse --short HEAD 2>/dev/null || echo "${BENCH_COMMIT:-unknown}")
[ -z "$(git status --porcelain -- qapi-client bench/client.sh bench/peers 2>/dev/null)" ] || commit="$commit+changes"
machine="$(nproc) CPUs, $(uname -m)"
# shellcheck disable=SC2086
python3 - "$work" "$commit" "$qmp_version" "$rounds" "$window" "$connections" \
  "$load_before" "$load_after" "$machine" "$cpu" "$client_cpu" $peer_versions <<'EOF'
import datetime, os, statistics, sys

(work, commit, qmp_version, rounds, window, connections, load_before, load_after,
 machine, cpu, client_cpu, arcnmx_version, lvillis_version) = sys.argv[1:]

def values(name):
    with open(os.path.join(work, name)) as f:
        return [float(line) for line in f if line.strip()]

def fmt_rate(xs):
    m = statistics.mean(xs)
    s = statistics.stdev(xs) if len(xs) > 1 else 0.0
    return f"{m:,.0f} ± {s:,.0f}/s"

qmp_seq = "real QEMU, query-status, sequential"
qga_seq = "real qemu-ga, guest-ping, sequential"
fake_seq = "fake server, query-status, sequential"
fake_pipe = f"fake server, query-status, {window} in flight, clients not pinned"
# (measurement, side, baseline side, baseline label, goal: a minimum ratio or None)
# A side of None is a peer that cannot take part: its row says why.
rows = [
    (qmp_seq, "qmp-seq-ours", "qmp-seq-raw", "raw loop", 1.0),
    (qmp_seq, "qmp-seq-blocking", "qmp-seq-raw", "raw loop", 1.0),
    (qmp_seq, "qmp-seq-arcnmx-async", "qmp-seq-raw", "raw loop", None),
    (qmp_seq, "qmp-seq-arcnmx-sync", "qmp-seq-raw", "raw loop", None),
    (qmp_seq, "qmp-seq-lvillis", "qmp-seq-raw", "raw loop", None),
    (f"real QEMU, query-status, {window} in flight", "qmp-pipe-ours", "qmp-pipe-raw", "raw loop", 0.9),
    (qga_seq, "qga-seq-ours", "qga-seq-raw", "raw loop", 0.95),
    (qga_seq, "qga-seq-blocking", "qga-seq-raw", "raw loop", 0.95),
    (qga_seq, "qga-seq-tokio-raw", "qga-seq-raw", "raw loop", None),
    (qga_seq, "qga-seq-raw-poll", "qga-seq-raw", "raw loop", None),
    (qga_seq, "qga-seq-tokio-mux", "qga-seq-raw", "raw loop", None),
    (qga_seq, "qga-seq-arcnmx-async", "qga-seq-raw", "raw loop", None),
    (qga_seq, "qga-seq-arcnmx-sync", "qga-seq-raw", "raw loop", None),
    (qga_seq, ("lvillis", "no guest-agent client"), "qga-seq-raw", "raw loop", None),
    (f"real qemu-ga, guest-ping, {window} in flight", "qga-pipe-ours", "qga-pipe-raw", "raw loop", 0.9),
    (f"real qemu-ga, guest-ping, {window} in flight", "qga-pipe-tokio-raw", "qga-pipe-raw", "raw loop", None),
    (f"real qemu-ga, guest-ping, {window} in flight", "qga-pipe-tokio-mux", "qga-pipe-raw", "raw loop", None),
    (f"real qemu-ga, guest-ping, {window} in flight", ("arcnmx-async", "no overlapping calls: on a guest agent it sends no ids and holds its write lock until the reply"), "qga-pipe-raw", "raw loop", None),
    (f"real QEMU, query-status, {window} in flight, client on its own CPU", "qmp-pipe-ours-2cpu", "qmp-pipe-raw-2cpu", "raw loop", 0.9),
    (f"real qemu-ga, guest-ping, {window} in flight, client on its own CPU", "qga-pipe-ours-2cpu", "qga-pipe-raw-2cpu", "raw loop", 0.9),
    ("real qemu-ga, guest-ping, sequential, client on its own CPU", "qga-seq-ours-2cpu", "qga-seq-raw-2cpu", "raw loop", None),
    ("real qemu-ga, guest-ping, sequential, client on its own CPU", "qga-seq-blocking-2cpu", "qga-seq-raw-2cpu", "raw loop", None),
    ("real qemu-ga, guest-ping, sequential, client on its own CPU", "qga-seq-raw-poll-2cpu", "qga-seq-raw-2cpu", "raw loop", None),
    (fake_seq, "fake-ours", "fake-raw", "raw loop", 0.8),
    (fake_seq, "fake-blocking", "fake-raw", "raw loop", 0.9),
    (fake_seq, "fake-ours", "fake-qemu.qmp", f"qemu.qmp {qmp_version}", 5.0),
    (fake_seq, "fake-tokio-raw", "fake-raw", "raw loop", None),
    (fake_seq, "fake-raw-poll", "fake-raw", "raw loop", None),
    (fake_seq, "fake-tokio-mux", "fake-raw", "raw loop", None),
    (fake_seq, "fake-arcnmx-async", "fake-raw", "raw loop", None),
    (fake_seq, "fake-arcnmx-sync", "fake-raw", "raw loop", None),
    (fake_seq, "fake-lvillis", "fake-raw", "raw loop", None),
    (fake_pipe, "fake-pipe-ours", "fake-pipe-raw", "raw loop", 0.8),
    (fake_pipe, "fake-pipe-blocking", "fake-pipe-raw", "raw loop", None),
    (fake_pipe, "fake-pipe-tokio-mux", "fake-pipe-raw", "raw loop", None),
    (fake_pipe, "fake-pipe-one-task", "fake-pipe-raw", "raw loop", None),
    (fake_pipe, "fake-pipe-one-task-current", "fake-pipe-raw", "raw loop", None),
    (fake_pipe, "fake-pipe-arcnmx-async", "fake-pipe-raw", "raw loop", None),
    (fake_pipe, ("arcnmx-sync", "one call at a time, `execute` takes `&mut self`"), "fake-pipe-raw", "raw loop", None),
    (fake_pipe, "fake-pipe-lvillis", "fake-pipe-raw", "raw loop", None),
]

PEERS = {
    "arcnmx-async": f"arcnmx qapi {arcnmx_version} async (`qapi::futures`)",
    "arcnmx-sync": f"arcnmx qapi {arcnmx_version} sync (`qapi::Qmp`/`Qga`)",
    "lvillis": f"lvillis qmp {lvillis_version}",
}

def label(side):
    """The label of a side, and its verdict when it has no goal."""
    for peer, name in PEERS.items():
        if side.endswith(peer):
            return name, "— (peer)"
    if side.endswith("tokio-raw"):
        return "tokio-raw", "— (reference: the raw loop on tokio's UnixStream)"
    if side.endswith("raw-poll") or side.endswith("raw-poll-2cpu"):
        return "raw loop waiting in poll", "— (reference: not woken when the peer reads the request)"
    if side.endswith("one-task"):
        return f"qapi-client async API, the {window} calls from one task", "— (reference: no task per call)"
    if side.endswith("one-task-current"):
        return (f"qapi-client async API, the {window} calls from one task, current-thread runtime",
                "— (reference: no task per call, one thread)")
    if side.endswith("tokio-mux"):
        return "tokio-mux", "— (reference: a bare session many tasks share, on tokio's UnixStream)"
    if side.endswith("blocking") or side.endswith("blocking-2cpu"):
        if side.startswith("fake-pipe"):
            return f"qapi-client blocking API, {window} threads", "— (reference)"
        return "qapi-client blocking API", "— (reference; see the text)"
    return "qapi-client async API", "— (reference; see the text)"

def r(x):
    return f"{x:.3f}" if x < 2 else f"{x:.1f}"

def fmt_goal(goal):
    """0.95, 0.9, 1.0, 5.0."""
    text = f"{goal:.2f}".rstrip("0")
    return text + "0" if text.endswith(".") else text

date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
print()
if cpu == "none":
    where = "unpinned"
else:
    where = (f"everything on CPU {cpu} but the clients of the 'own CPU' rows "
             f"(CPU {client_cpu}) and of the fake-pipe rows (not pinned)")
print(f"{rounds} rounds, {where}; load average {load_before} before, {load_after} after")
print()
print("| Date (UTC) | Commit | Machine | Measurement | Ours (mean ± σ) | Baseline (mean ± σ) | Ratio (per-round min–max) | Goal |")
print("| --- | --- | --- | --- | --- | --- | --- | --- |")
for measurement, side, base, base_label, goal in rows:
    if not os.path.exists(os.path.join(work, base)):
        continue  # the *-2cpu rows on a machine with one CPU, or not in BENCH_ONLY
    if isinstance(side, str) and not os.path.exists(os.path.join(work, side)):
        continue
    b = values(base)
    if isinstance(side, tuple):
        peer, why = side
        print(f"| {date} | `{commit}` | {machine} | {measurement} | {PEERS[peer]}: cannot: {why} "
              f"| {base_label}: {fmt_rate(b)} | — | — (peer) |")
        continue
    a = values(side)
    ratio = statistics.mean(a) / statistics.mean(b)
    per_round = [x / y for x, y in zip(a, b)]
    side_label, no_goal = label(side)
    if goal is None:
        verdict = no_goal
    elif ratio >= goal:
        verdict = f"≥ {fmt_goal(goal)}× — met"
    else:
        verdict = f"≥ {fmt_goal(goal)}× — **not met**"
    print(f"| {date} | `{commit}` | {machine} | {measurement} | {side_label}: {fmt_rate(a)} "
          f"| {base_label}: {fmt_rate(b)} | {r(ratio)}× ({r(min(per_round))}–{r(max(per_round))}) | {verdict} |")
if os.path.exists(os.path.join(work, "memory-ours")):
    print()
    print("| Date (UTC) | Commit | Machine | Idle QMP sessions | Client | Memory per session (mean ± σ, 3 runs) | Goal |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
for name, client, where, goal in [
    ("ours", "qapi-client async API", "on one runtime", 8),
    ("blocking", "qapi-client blocking API", "each as the blocking API makes it", 8),
    ("arcnmx-async", PEERS["arcnmx-async"], "on one runtime", None),
    ("arcnmx-sync", PEERS["arcnmx-sync"], "on std sockets", None),
    ("lvillis", PEERS["lvillis"], "on one runtime, default options", None),
]:
    if not os.path.exists(os.path.join(work, f"memory-{name}")):
        continue  # not in BENCH_ONLY
    mem = values(f"memory-{name}")
    m = statistics.mean(mem)
    s = statistics.stdev(mem) if len(mem) > 1 else 0.0
    if goal is None:
        verdict = "— (peer)"
    else:
        verdict = f"≤ {goal} KiB — " + ("met" if m <= goal else "**not met**")
    print(f"| {date} | `{commit}` | {machine} | {connections} {where}, fake server | {client} "
          f"| {m:.1f} ± {s:.1f} KiB | {verdict} |")
EOF
