//! Starting real QEMU and qemu-ga processes for the integration tests.
//!
//! The binaries are found on `PATH`, or through `QAPI_TEST_QEMU` /
//! `QAPI_TEST_QEMU_GA` (full paths).  When one is missing, a test prints a
//! visible SKIPPED line and passes, unless `QAPI_TEST_REQUIRE_QEMU=1` (set
//! by `.ci/run`), in which case it fails.  The same goes for files of the
//! repository outside this crate (`docs/`), which a packaged crate lacks.
//! Skips are written to the stderr handle itself, not with `eprintln!`,
//! which libtest captures: a plain `cargo test` shows them.

#![allow(dead_code)] // each test binary uses a different part

pub mod matrix;
pub mod wire;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A binary from the environment variable, else from `PATH`.
fn find(env: &str, name: &str) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(env) {
        return Some(PathBuf::from(path));
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    })
}

/// Whether a test that cannot run must fail instead of skipping (CI).
fn required() -> bool {
    std::env::var("QAPI_TEST_REQUIRE_QEMU").as_deref() == Ok("1")
}

/// Prints a SKIPPED line in one write, so that it is not interleaved with
/// libtest's output.
fn skip(line: &str) {
    let _ = std::io::stderr().write_all(format!("SKIPPED {line}\n").as_bytes());
}

/// The binary, or `None` after printing why the test is skipped.  Panics
/// instead when `QAPI_TEST_REQUIRE_QEMU=1`.
pub fn require(env: &str, name: &str, test: &str) -> Option<PathBuf> {
    match find(env, name) {
        Some(path) => Some(path),
        None if required() => {
            panic!("{test}: {name} not found (set {env} or PATH) and QAPI_TEST_REQUIRE_QEMU=1")
        }
        None => {
            skip(&format!(
                "{test}: {name} not found (set {env} or put it on PATH)"
            ));
            None
        }
    }
}

/// The file `path` (relative to the workspace root, such as `docs/…`), or
/// `None` after printing why `what` is skipped: the file is in the
/// repository but not in this crate's package.  Panics instead when
/// `QAPI_TEST_REQUIRE_QEMU=1`.
pub fn repository_file(path: &str, what: &str) -> Option<PathBuf> {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path);
    if file.exists() {
        return Some(file);
    }
    if required() {
        panic!(
            "{what}: {} is missing (QAPI_TEST_REQUIRE_QEMU=1): it needs the repository's {path}",
            file.display()
        );
    }
    skip(&format!(
        "{what}: {path} is only in the qapi-rs repository, not in the packaged crate \
         (looked for {}); run the tests from a clone to include this.",
        file.display()
    ));
    None
}

/// A process killed when dropped.
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

impl Process {
    /// Sends a signal by name (`STOP`, `CONT`, `KILL`) with kill(1).
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} failed");
    }
}

/// Waits until the process accepts connections on `path`.  The socket file
/// appears at bind(), a moment before listen(): a connection then is
/// refused, so probe with one (QEMU and qemu-ga take the next client
/// after it closes).
pub fn wait_for_socket(path: &Path, child: &mut Child, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::os::unix::net::UnixStream::connect(path).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited before listening on its socket: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not listen on {path:?} in 10 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Starts `qemu-system-x86_64` with a QMP socket in a fresh temp dir and
/// the given extra arguments; `None` when the binary is absent (skip).
pub fn qemu(test: &str, extra: &[&str]) -> Option<Process> {
    let binary = require("QAPI_TEST_QEMU", "qemu-system-x86_64", test)?;
    Some(qemu_at(&binary, extra))
}

/// `qemu-system-x86_64 -machine none` with a second QMP monitor on a free
/// loopback TCP port (`qapi_testkit::Qemu`), and that port; `None` when the
/// binary is absent (skip).
pub fn qemu_with_tcp_monitor(test: &str) -> Option<(qapi_testkit::Qemu, u16)> {
    let binary = require("QAPI_TEST_QEMU", "qemu-system-x86_64", test)?;
    let qemu = qapi_testkit::Qemu::builder()
        .binary(binary)
        .tcp_monitor()
        .start()
        .unwrap_or_else(|e| panic!("{e}"));
    let port = qemu.tcp_monitor().expect("asked for").port();
    Some((qemu, port))
}

/// Starts the given QEMU binary (see [`qemu`]).
pub fn qemu_at(binary: &Path, extra: &[&str]) -> Process {
    let dir = tempfile::tempdir().expect("temp dir");
    let socket = dir.path().join("qmp.sock");
    let qmp = format!("unix:{},server=on,wait=off", socket.display());
    let mut child = spawn_qemu(binary, &qmp, extra);
    wait_for_socket(&socket, &mut child, "QEMU");
    Process { child, dir, socket }
}

/// Starts the given QEMU binary with `-qmp QMP` (for example a socket it
/// connects to, `unix:PATH,server=off`) and the extra arguments, without
/// waiting for anything.
pub fn spawn_qemu(binary: &Path, qmp: &str, extra: &[&str]) -> Child {
    Command::new(binary)
        .args(firmware_dirs(binary))
        .args(["-nodefaults", "-display", "none", "-qmp", qmp])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("start {binary:?}: {e}"))
}

/// `-L` options for a QEMU unpacked outside the system (`.ci/run`'s 7.2):
/// its own data directory, then the system's SeaBIOS, which its packages
/// would have pulled in.
fn firmware_dirs(binary: &Path) -> Vec<String> {
    let Some(prefix) = binary.parent().and_then(Path::parent) else {
        return Vec::new();
    };
    let own = prefix.join("share/qemu");
    if prefix == Path::new("/usr") || !own.is_dir() {
        return Vec::new();
    }
    let mut dirs = vec![own];
    dirs.extend(
        ["/usr/share/seabios", "/usr/share/qemu"]
            .map(PathBuf::from)
            .into_iter()
            .filter(|d| d.is_dir()),
    );
    dirs.into_iter()
        .flat_map(|d| ["-L".to_owned(), d.display().to_string()])
        .collect()
}

/// The read-only guest-agent commands the tests may run against the host.
/// Never add one that changes the host (shutdown, suspend, fsfreeze,
/// set-time, passwords, vcpus, ssh keys, exec, file writes).
pub const QGA_READ_ONLY: &[&str] = &[
    "guest-sync-delimited",
    "guest-sync",
    "guest-ping",
    "guest-info",
    "guest-get-osinfo",
    "guest-get-host-name",
    "guest-get-timezone",
    "guest-network-get-interfaces",
];

/// Starts `qemu-ga` listening on a Unix socket, restricted to
/// [`QGA_READ_ONLY`]; `None` when absent (skip).
pub fn qemu_ga(test: &str) -> Option<qapi_testkit::QemuGa> {
    let binary = require("QAPI_TEST_QEMU_GA", "qemu-ga", test)?;
    Some(qemu_ga_at(&binary))
}

/// Starts the given qemu-ga binary (see [`qemu_ga`]) through
/// `qapi_testkit::QemuGa`, which limits it to the commands named (with
/// `--block-rpcs` where the release has no `--allow-rpcs`, as 7.2).
pub fn qemu_ga_at(binary: &Path) -> qapi_testkit::QemuGa {
    qapi_testkit::QemuGa::builder(QGA_READ_ONLY.iter().copied())
        .binary(binary)
        .start()
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Every QEMU to run the compatibility tests against: (label, binary,
/// qemu-ga binary).  The one on PATH (required), plus the older and newer
/// ones `.ci/run` unpacks (`QAPI_TEST_QEMU_OLD` / `_NEW`, each with its
/// `QAPI_TEST_QEMU_GA_…`), required too when `QAPI_TEST_REQUIRE_QEMU=1`.
pub fn qemus(test: &str) -> Vec<(&'static str, PathBuf, Option<PathBuf>)> {
    let mut out = Vec::new();
    if let Some(qemu) = require("QAPI_TEST_QEMU", "qemu-system-x86_64", test) {
        out.push(("default", qemu, find("QAPI_TEST_QEMU_GA", "qemu-ga")));
    }
    let required = std::env::var("QAPI_TEST_REQUIRE_QEMU").as_deref() == Ok("1");
    for (label, env, ga_env) in [
        ("old", "QAPI_TEST_QEMU_OLD", "QAPI_TEST_QEMU_GA_OLD"),
        ("new", "QAPI_TEST_QEMU_NEW", "QAPI_TEST_QEMU_GA_NEW"),
    ] {
        match std::env::var_os(env).map(PathBuf::from) {
            Some(path) if path.is_file() => {
                let ga = std::env::var_os(ga_env)
                    .map(PathBuf::from)
                    .filter(|p| p.is_file());
                out.push((label, path, ga));
            }
            _ if required => {
                panic!("{test}: {env} must name a QEMU binary (QAPI_TEST_REQUIRE_QEMU=1)")
            }
            _ => skip(&format!("{test} for the {label} QEMU: {env} not set")),
        }
    }
    out
}

/// Creates a 1 MiB raw image file at `image` with `blockdev-create` job
/// `j1`, awaits the job's `concluded` status through the typed event wait
/// on `jobs` (subscribed to `JOB_STATUS_CHANGE` before the call), and
/// dismisses the job.
pub async fn create_image_with_a_job(
    qmp: &qapi_client::Qmp,
    jobs: &mut qapi_client::EventStream,
    image: &str,
) -> qapi_types::EventMessage<qapi_types::events::JobStatusChange> {
    use qapi_types::commands as c;
    use qapi_types::events::JobStatusChange;
    use qapi_types::{BlockdevCreateOptionsBranch, BlockdevCreateOptionsFile, JobStatus};
    let file = BlockdevCreateOptionsFile::new(image, 1 << 20);
    qmp.execute(&c::BlockdevCreate::new(
        "j1",
        BlockdevCreateOptionsBranch::File(file),
    ))
    .await
    .unwrap();
    let concluded = jobs
        .wait_for::<JobStatusChange>(Duration::from_secs(30), |change| {
            change.id == "j1" && change.status == JobStatus::Concluded
        })
        .await
        .unwrap();
    qmp.execute(&c::JobDismiss::new("j1")).await.unwrap();
    concluded
}
