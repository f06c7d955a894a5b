//! Real QEMU and qemu-ga for the shell's tests: found on `PATH` or
//! through `QAPI_TEST_QEMU` / `QAPI_TEST_QEMU_GA` (and `…_NEW` for the
//! newest release); a missing one skips the test with a visible SKIPPED
//! line, or fails it when `QAPI_TEST_REQUIRE_QEMU=1` (CI).

#![allow(dead_code)] // each test binary uses a different part

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const SHELL: &str = env!("CARGO_BIN_EXE_qapi-shell");

fn required() -> bool {
    std::env::var("QAPI_TEST_REQUIRE_QEMU").as_deref() == Ok("1")
}

/// The binary named by `env`, else `name` on `PATH`; `None` after a
/// SKIPPED line (a panic under `QAPI_TEST_REQUIRE_QEMU=1`).
pub fn require(env: &str, name: &str, test: &str) -> Option<PathBuf> {
    let found = std::env::var_os(env).map(PathBuf::from).or_else(|| {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(name))
                .find(|candidate| candidate.is_file())
        })
    });
    match found {
        Some(path) if path.is_file() => Some(path),
        _ if required() => panic!("{test}: {name} not found ({env}) and QAPI_TEST_REQUIRE_QEMU=1"),
        _ => {
            let _ = std::io::stderr()
                .write_all(format!("SKIPPED {test}: {name} not found (set {env})\n").as_bytes());
            None
        }
    }
}

/// A process killed when dropped, with its socket in a temp dir.
pub struct Process {
    pub child: Child,
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_for_socket_of_child(path: &Path, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::os::unix::net::UnixStream::connect(path).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("exited before listening on {path:?}: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "nothing listens on {path:?} after 10 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `qemu-system-x86_64 -machine none` with QMP on a Unix socket
/// (`qapi_testkit::Qemu`).
pub fn qemu(binary: &Path) -> qapi_testkit::Qemu {
    qemu_with(binary, &[])
}

/// [`qemu`] with more arguments.
pub fn qemu_with(binary: &Path, extra: &[&str]) -> qapi_testkit::Qemu {
    qapi_testkit::Qemu::builder()
        .binary(binary)
        .args(extra)
        .start()
        .unwrap_or_else(|e| panic!("{e}"))
}

/// `qemu-ga` on a Unix socket, allowed read-only commands only.
pub fn qemu_ga(binary: &Path) -> Process {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("qga.sock");
    let mut child = Command::new(binary)
        .args(["-m", "unix-listen", "-p"])
        .arg(&socket)
        .arg("-t")
        .arg(dir.path())
        .arg("--allow-rpcs=guest-sync-delimited,guest-sync,guest-ping,guest-info,guest-get-host-name")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start {binary:?}: {e}"));
    wait_for_socket_of_child(&socket, &mut child);
    Process { child, dir, socket }
}

/// Waits until something listens on `path`.
pub fn wait_for_socket(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::os::unix::net::UnixStream::connect(path).is_err() {
        assert!(
            Instant::now() < deadline,
            "nothing listens on {path:?} after 10 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}
