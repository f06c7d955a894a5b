#!/usr/bin/env bash
# shell.sh [RUNS]
#
# qapi-shell as a person meets it, against real QEMU (qemu-system-x86_64 on
# PATH, -M none, QMP on a Unix socket), side by side with QEMU's own
# qmp-shell (from the qemu.qmp package, installed with pip into a venv
# under the target directory):
#
#   start-up   from starting the program in a terminal (a pty) until its
#              prompt shows: connecting, negotiating, and for qapi-shell
#              reading the live schema (query-qmp-schema)   goal < 100 ms each
#   complete   from typing Tab after `blockdev-add driver=null-co node-na`
#              until `node-name=` shows (qapi-shell; qmp-shell completes
#              command names only, so its row times Tab after
#              `blockdev-ad` until `blockdev-add` shows)    goal < 100 ms
#
# Each run starts each program afresh, alternating which goes first; RUNS
# defaults to 20.  Whole processes, release build.  Prints mean, median and
# max per measure, and markdown rows for BENCHMARKS.md.
set -euo pipefail

die() { echo "shell.sh: $*" >&2; exit 1; }
say() { echo "shell.sh: $*" >&2; }

cd "$(dirname "${BASH_SOURCE[0]}")/.."
runs=${1:-${BENCH_RUNS:-20}}
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive number, not '$runs'"
target_dir=${CARGO_TARGET_DIR:-target}
qemu=${QAPI_TEST_QEMU:-$(command -v qemu-system-x86_64 || true)}
[ -n "$qemu" ] || die "qemu-system-x86_64 is not on PATH (or set QAPI_TEST_QEMU)"
command -v python3 >/dev/null || die "python3 is not installed"

say "building (release)"
cargo build --release -p qapi-shell >&2
shell=$target_dir/release/qapi-shell

venv=$target_dir/qapi-client-bench-venv
if ! "$venv/bin/python" -c 'import qemu.qmp' 2>/dev/null; then
  say "making $venv with qemu.qmp (pip)"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check qemu.qmp
fi
qmp_shell=$venv/bin/qmp-shell
[ -x "$qmp_shell" ] || die "qemu.qmp installed no qmp-shell in $venv/bin"
qmp_version=$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("qemu.qmp"))')

work=$(mktemp -d)
cleanup() { kill "${qemu_pid:-}" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
"$qemu" -M none -display none -nodefaults -qmp "unix:$work/qmp.sock,server=on,wait=off" &
qemu_pid=$!
for _ in $(seq 200); do [ -S "$work/qmp.sock" ] && break; sleep 0.05; done
qemu_version=$("$qemu" --version | head -1)

QAPI_SHELL_HISTORY=$work/history HOME=$work python3 - "$runs" "$shell" "$qmp_shell" \
  "$work/qmp.sock" "$(git rev-parse --short HEAD)" "$qemu_version" "$qmp_version" <<'EOF'
import os, pty, select, statistics, sys, time, datetime

runs, shell, qmp_shell, sock, commit, qemu_version, qmp_version = sys.argv[1:]
runs = int(runs)

def spawn(argv):
    pid, fd = pty.fork()
    if pid == 0:
        os.environ["TERM"] = "xterm"
        os.execv(argv[0], argv)
    return pid, fd

def read_until(fd, needle, start, limit=10.0):
    seen = b""
    while needle not in seen:
        left = limit - (time.perf_counter() - start)
        if left <= 0:
            raise SystemExit(f"timed out waiting for {needle!r}; saw {seen[-300:]!r}")
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                raise SystemExit(f"the program ended before {needle!r}; saw {seen[-300:]!r}")
            seen += chunk
    return time.perf_counter() - start

def finish(pid, fd):
    try:
        os.write(fd, b"\x04")
    except OSError:
        pass
    deadline = time.time() + 5
    while time.time() < deadline:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.01)
    else:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
    os.close(fd)

def measure_ours():
    start = time.perf_counter()
    pid, fd = spawn([shell, sock])
    startup = read_until(fd, b"(qapi) ", start)
    os.write(fd, b"blockdev-add driver=null-co node-na")
    read_until(fd, b"node-na", time.perf_counter())
    t = time.perf_counter()
    os.write(fd, b"\t")
    complete = read_until(fd, b"me=", t)
    os.write(fd, b"\x15")  # Ctrl-U: clear the line
    finish(pid, fd)
    return startup, complete

def measure_theirs():
    start = time.perf_counter()
    pid, fd = spawn([qmp_shell, sock])
    startup = read_until(fd, b"(QEMU) ", start)
    os.write(fd, b"blockdev-ad")
    read_until(fd, b"blockdev-ad", time.perf_counter())
    t = time.perf_counter()
    os.write(fd, b"\t")
    complete = read_until(fd, b"d", t)  # readline inserts what was missing
    os.write(fd, b"\x15")
    finish(pid, fd)
    return startup, complete

ours, theirs = [], []
for i in range(runs):
    order = [(ours, measure_ours), (theirs, measure_theirs)]
    if i % 2:
        order.reverse()
    for sink, measure in order:
        sink.append(measure())

def summary(values):
    ms = [v * 1000 for v in values]
    return f"mean {statistics.mean(ms):.1f} ms, median {statistics.median(ms):.1f} ms, max {max(ms):.1f} ms"

rows = [
    ("start-up to the first prompt", "qapi-shell", [s for s, _ in ours]),
    ("start-up to the first prompt", f"qmp-shell (qemu.qmp {qmp_version})", [s for s, _ in theirs]),
    ("Tab completes `node-na` to `node-name=` (blockdev-add, null-co branch)", "qapi-shell", [c for _, c in ours]),
    ("Tab completes `blockdev-ad` to `blockdev-add` (command names only)", f"qmp-shell (qemu.qmp {qmp_version})", [c for _, c in theirs]),
]
print(f"{qemu_version}; {runs} runs each, alternating")
print("| date | commit | what | program | time | goal |")
print("|---|---|---|---|---|---|")
for what, program, values in rows:
    if program != "qapi-shell":
        goal = "— (reference)"
    elif max(values) < 0.1:
        goal = "< 100 ms — met"
    else:
        goal = "< 100 ms — **not met** (max)"
    print(f"| {datetime.date.today()} | `{commit}` | {what} | {program} | {summary(values)} | {goal} |")
EOF
