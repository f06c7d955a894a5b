//! Real QEMU and qemu-ga for the shell's tests: found on `PATH` or
//! through `QAPI_TEST_QEMU` / `QAPI_TEST_QEMU_GA` (and `…_NEW` for the
//! newest release); a missing one skips the test with a visible SKIPPED
//! line, or fails it when `QAPI_TEST_REQUIRE_QEMU=1` (CI).

#![allow(dead_code)] // each test binary uses a different part

use std::io::Write;
use std::path::{Path, PathBuf};
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

/// `qemu-ga` on a Unix socket, allowed read-only commands only
/// (`qapi_testkit::QemuGa`).
pub fn qemu_ga(binary: &Path) -> qapi_testkit::QemuGa {
    qapi_testkit::QemuGa::builder(["guest-ping", "guest-info", "guest-get-host-name"])
        .binary(binary)
        .start()
        .unwrap_or_else(|e| panic!("{e}"))
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
