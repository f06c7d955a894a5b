#!/usr/bin/env bash
# capture-replies.sh [OUT_DIR]
#
# Captures real QMP output from the installed QEMU for the decoding benchmark
# (qapi-types/benches/decode.rs) and writes it to OUT_DIR (default
# qapi-types/benches/data/):
#
#   query-qmp-schema.json         the reply line of `query-qmp-schema`
#   query-block.json              the reply line of `query-block`
#   query-named-block-nodes.json  the reply line of `query-named-block-nodes`
#                                 with `flat: false`
#   query-blockstats.json         the reply line of `query-blockstats`
#   events.jsonl                  every event QEMU sent while the script
#                                 drove it, one line each, in arrival order
#
# Each file holds QEMU's lines as they came off the socket, less the CRLF,
# one per line.
#
# QEMU (`$QEMU`, default qemu-system-x86_64, and `$QEMU_IMG`, default
# qemu-img) runs with `-M none`, no accelerator or guest, and its QMP
# monitor on a Unix socket in a temporary directory; its drives are small
# qcow2 images (with backing files) and null-co drives in that directory.
# The socket talk is Python 3 (standard library only).
#
# Knobs: DRIVES (default 48) qcow2 drives with a two-image backing chain, plus
# as many null-co drives; STOP_CONT (default 400) stop/cont rounds and JOBS
# (default 16) rounds of block jobs (blockdev-create, blockdev-backup,
# blockdev-mirror) for the event burst, which also holds 8 system_reset and
# system_powerdown and 8 migrations to a file.
set -euo pipefail

die() { echo "capture-replies: $*" >&2; exit 1; }

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${1:-$root/qapi-types/benches/data}
qemu=${QEMU:-qemu-system-x86_64}
qemu_img=${QEMU_IMG:-qemu-img}
drives=${DRIVES:-48}
stop_cont=${STOP_CONT:-400}
jobs=${JOBS:-16}
command -v "$qemu" >/dev/null || die "$qemu is not installed"
command -v "$qemu_img" >/dev/null || die "$qemu_img is not installed"
command -v python3 >/dev/null || die "python3 is not installed"
mkdir -p "$out"

tmp=$(mktemp -d)
qemu_pid=
cleanup() {
  if [ -n "$qemu_pid" ]; then kill "$qemu_pid" 2>/dev/null || true; wait "$qemu_pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

# Images: for each qcow2 drive a base with a qcow2 overlay on it, so the
# reply carries nested image info (`backing-image`, qcow2 `format-specific`).
args=()
for i in $(seq 0 $((drives - 1))); do
  "$qemu_img" create -q -f qcow2 "$tmp/base$i.qcow2" 16M
  "$qemu_img" create -q -f qcow2 -F qcow2 -b "$tmp/base$i.qcow2" "$tmp/top$i.qcow2"
  args+=(-drive "if=none,id=disk$i,file=$tmp/top$i.qcow2,format=qcow2")
  args+=(-drive "if=none,id=null$i,driver=null-co,size=$((i + 1))M,read-only=on")
done
# Nodes for the jobs of the event burst: raw images to back up and mirror,
# and empty files for blockdev-create.
for i in 0 1 2 3; do
  "$qemu_img" create -q -f raw "$tmp/src$i.raw" 1M
  "$qemu_img" create -q -f raw "$tmp/dst$i.raw" 1M
  "$qemu_img" create -q -f raw "$tmp/new$i.img" 0
  args+=(-blockdev "driver=file,node-name=src$i,filename=$tmp/src$i.raw")
  args+=(-blockdev "driver=file,node-name=dst$i,filename=$tmp/dst$i.raw")
  args+=(-blockdev "driver=file,node-name=new$i,filename=$tmp/new$i.img")
done

sock=$tmp/qmp.sock
"$qemu" -M none -nodefaults -display none -qmp "unix:$sock,server=on,wait=off" "${args[@]}" \
  >"$tmp/qemu.log" 2>&1 &
qemu_pid=$!

version=$("$qemu" --version | head -n 1)
python3 - "$sock" "$out" "$tmp" "$stop_cont" "$jobs" <<'PY' || { cat "$tmp/qemu.log" >&2; die "the QMP session failed"; }
import json
import os
import socket
import sys
import time

sock_path, out_dir, tmp_dir = sys.argv[1], sys.argv[2], sys.argv[3]
stop_cont, jobs = int(sys.argv[4]), int(sys.argv[5])


class Qmp:
    """One QMP session: replies are returned, events kept in arrival order."""

    def __init__(self, path):
        deadline = time.monotonic() + 30
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise SystemExit(f"no QMP socket at {path}")
                time.sleep(0.1)
        self.file = self.sock.makefile("rb")
        self.events = []  # raw lines
        self.seen = 0  # events already looked at by wait_event
        greeting = json.loads(self.readline())
        if "QMP" not in greeting:
            raise SystemExit(f"not a QMP greeting: {greeting}")

    def readline(self):
        line = self.file.readline()
        if not line:
            raise SystemExit("QEMU closed the socket")
        return line.rstrip(b"\r\n")

    def read_message(self):
        line = self.readline()
        message = json.loads(line)
        if "event" in message:
            self.events.append(line)
            return None, None
        return line, message

    def execute(self, command, **arguments):
        request = {"execute": command}
        if arguments:
            request["arguments"] = arguments
        if os.environ.get("CAPTURE_DEBUG"):
            print("->", request, file=sys.stderr)
        self.sock.sendall(json.dumps(request).encode() + b"\r\n")
        while True:
            line, message = self.read_message()
            if message is None:
                continue
            if "error" in message:
                raise SystemExit(f"{command} failed: {message['error']}")
            return line, message["return"]

    def wait_event(self, name, timeout=30, **data):
        """Waits for an event `name` whose data has the given members."""
        deadline = time.monotonic() + timeout
        while True:
            while self.seen < len(self.events):
                event = json.loads(self.events[self.seen])
                self.seen += 1
                got = event.get("data", {})
                if event["event"] == name and all(got.get(k) == v for k, v in data.items()):
                    return event
            if time.monotonic() > deadline:
                raise SystemExit(f"no {name} event with {data}")
            line, message = self.read_message()
            if message is not None:
                raise SystemExit(f"unexpected reply while waiting for {name}: {message}")


def write(name, lines):
    with open(os.path.join(out_dir, name), "wb") as f:
        for line in lines:
            f.write(line + b"\n")


qmp = Qmp(sock_path)
qmp.execute("qmp_capabilities")

line, _ = qmp.execute("query-qmp-schema")
write("query-qmp-schema.json", [line])
line, _ = qmp.execute("query-block")
write("query-block.json", [line])
line, _ = qmp.execute("query-named-block-nodes", flat=False)
write("query-named-block-nodes.json", [line])
line, _ = qmp.execute("query-blockstats")
write("query-blockstats.json", [line])

# The event burst. STOP and RESUME, as a client pausing a VM often would.
for _ in range(stop_cont):
    qmp.execute("stop")
    qmp.execute("cont")
    qmp.wait_event("RESUME")

# Jobs: JOB_STATUS_CHANGE through each job's life, BLOCK_JOB_* events.
for i in range(jobs):
    job = f"create{i}"
    qmp.execute("blockdev-create", **{"job-id": job,
                "options": {"driver": "qcow2", "file": f"new{i % 4}", "size": 1 << 20}})
    qmp.wait_event("JOB_STATUS_CHANGE", id=job, status="concluded")
    qmp.execute("job-dismiss", id=job)
    qmp.wait_event("JOB_STATUS_CHANGE", id=job, status="null")

    job = f"backup{i}"
    qmp.execute("blockdev-backup", **{"job-id": job, "device": f"src{i % 4}",
                "target": f"dst{i % 4}", "sync": "full"})
    qmp.wait_event("BLOCK_JOB_COMPLETED", device=job)
    qmp.wait_event("JOB_STATUS_CHANGE", id=job, status="null")

    job = f"mirror{i}"
    qmp.execute("blockdev-mirror", **{"job-id": job, "device": f"src{i % 4}",
                "target": f"dst{i % 4}", "sync": "full"})
    qmp.wait_event("BLOCK_JOB_READY", device=job)
    if i % 2:
        qmp.execute("block-job-cancel", device=job, force=True)
        qmp.wait_event("BLOCK_JOB_CANCELLED", device=job)
    else:
        qmp.execute("block-job-complete", device=job)
        qmp.wait_event("BLOCK_JOB_COMPLETED", device=job)
    qmp.wait_event("JOB_STATUS_CHANGE", id=job, status="null")

# Resets and power-downs (the machine has no guest to act on them).
for _ in range(8):
    qmp.execute("system_reset")
    qmp.wait_event("RESET")
    qmp.execute("system_powerdown")
    qmp.wait_event("POWERDOWN")

# Migrations to a file: MIGRATION and MIGRATION_PASS, with STOP and RESUME.
qmp.execute("migrate-set-capabilities",
            capabilities=[{"capability": "events", "state": True}])
for i in range(8):
    qmp.execute("migrate", uri=f"file:{tmp_dir}/migration{i}")
    qmp.wait_event("MIGRATION", status="completed")
    # `cont` is refused until the migration thread has finished.
    while qmp.execute("query-status")[1]["status"] != "postmigrate":
        time.sleep(0.01)
    qmp.execute("cont")
    qmp.wait_event("RESUME")

write("events.jsonl", qmp.events)
qmp.execute("quit")
PY
wait "$qemu_pid" 2>/dev/null || true
qemu_pid=

for f in query-qmp-schema.json query-block.json query-named-block-nodes.json query-blockstats.json events.jsonl; do
  printf '%-30s %8d bytes, %5d lines\n' "$f" "$(wc -c <"$out/$f")" "$(wc -l <"$out/$f")"
done
echo "capture-replies: captured from $version into $out"
