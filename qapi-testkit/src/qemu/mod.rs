//! Real QEMU and qemu-ga processes started for a test or a recording: each
//! in a temporary directory of its own, with its socket there, and gone
//! when the handle is dropped.
//!
//! - [`Qemu`]: `qemu-system-x86_64` with a QMP socket.
//! - [`QemuGa`]: `qemu-ga` on a Unix socket, on this machine, limited to
//!   the commands the test names (a host's agent must not shut the host
//!   down).
//!
//! ```no_run
//! # async fn record() -> Result<(), Box<dyn std::error::Error>> {
//! use qapi_testkit::Qemu;
//!
//! let qemu = Qemu::builder().start()?; // qemu-system-x86_64 from PATH, -machine none
//! let qmp = qapi_client::Qmp::connect_unix(qemu.qmp_socket()).await?;
//! let status = qmp.execute(&qapi_types::commands::QueryStatus {}).await?;
//! assert!(status.running);
//! # Ok(()) }
//! ```

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

mod agent;
pub use agent::{QemuGa, QemuGaBuilder, DEFAULT_AGENT_BINARY};

/// The binary [`QemuBuilder`] starts unless told otherwise, looked up on
/// `PATH` (then in `/usr/sbin` and `/usr/local/sbin`).
pub const DEFAULT_BINARY: &str = "qemu-system-x86_64";

/// How much of QEMU's standard error an error message quotes (its end).
const STDERR_TAIL: usize = 2048;

/// Why QEMU or qemu-ga did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// No such binary (a name is looked up on `PATH`).
    #[error("{binary} not found (install QEMU, or give its path with QemuBuilder::binary)")]
    NotFound {
        /// The name or path tried.
        binary: String,
    },
    /// The process could not be started, or its directory made.
    #[error("cannot start {binary}: {source}")]
    Spawn {
        /// The binary.
        binary: String,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// The process exited before its socket took connections.
    #[error("{binary} exited ({status}) before listening on its socket{}", stderr_suffix(.stderr))]
    Exited {
        /// The binary.
        binary: String,
        /// How it ended.
        status: ExitStatus,
        /// The end of what it wrote to standard error.
        stderr: String,
    },
    /// The process ran, but its socket took no connection in time; it has
    /// been killed.
    #[error("{binary} did not listen on its socket within {after:?}{}", stderr_suffix(.stderr))]
    Timeout {
        /// The binary.
        binary: String,
        /// The time limit.
        after: Duration,
        /// The end of what it wrote to standard error.
        stderr: String,
    },
    /// A guest agent that could not be limited to the commands asked for
    /// is not started.
    #[error("{binary}: cannot limit the agent to the commands asked for: {why}")]
    CannotRestrict {
        /// The binary.
        binary: String,
        /// What failed.
        why: String,
    },
}

fn stderr_suffix(stderr: &str) -> String {
    if stderr.trim().is_empty() {
        String::new()
    } else {
        format!(": {}", stderr.trim_end())
    }
}

/// Starts a [`Qemu`]: the binary, extra arguments, a time limit.
///
/// QEMU runs with `-nodefaults -display none`, `-machine none` unless the
/// arguments choose a machine (`-M`/`-machine`), and
/// `-qmp unix:DIR/qmp.sock,server=on,wait=off`; standard input and output
/// are closed, standard error goes to `DIR/stderr` (quoted in errors).
#[derive(Debug, Clone)]
pub struct QemuBuilder {
    binary: PathBuf,
    args: Vec<OsString>,
    start_timeout: Duration,
    tcp_monitor: bool,
}

impl Default for QemuBuilder {
    fn default() -> Self {
        QemuBuilder {
            binary: PathBuf::from(DEFAULT_BINARY),
            args: Vec::new(),
            start_timeout: Duration::from_secs(10),
            tcp_monitor: false,
        }
    }
}

impl QemuBuilder {
    /// `qemu-system-x86_64` from `PATH`, no extra arguments, 10 s to start.
    pub fn new() -> QemuBuilder {
        QemuBuilder::default()
    }

    /// The binary: a path, or a name looked up on `PATH`.
    pub fn binary(mut self, binary: impl Into<PathBuf>) -> QemuBuilder {
        self.binary = binary.into();
        self
    }

    /// One more argument for QEMU.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> QemuBuilder {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// More arguments for QEMU.
    pub fn args<I, S>(mut self, args: I) -> QemuBuilder
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// How long QEMU may take to listen on its QMP socket.
    pub fn start_timeout(mut self, limit: Duration) -> QemuBuilder {
        self.start_timeout = limit;
        self
    }

    /// A second QMP monitor on a free loopback TCP port as well
    /// ([`Qemu::tcp_monitor`]), for code that connects over TCP.
    pub fn tcp_monitor(mut self) -> QemuBuilder {
        self.tcp_monitor = true;
        self
    }

    /// Starts QEMU and waits until its QMP socket (and its TCP monitor,
    /// if asked for) takes connections.
    pub fn start(self) -> Result<Qemu, StartError> {
        let name = self.binary.display().to_string();
        let tcp_monitor = match self.tcp_monitor {
            // A port free a moment ago; QEMU binds it right after.
            true => Some(free_loopback_port().map_err(|source| StartError::Spawn {
                binary: name.clone(),
                source,
            })?),
            false => None,
        };
        let started = Instant::now();
        let chooses_machine = self
            .args
            .iter()
            .any(|a| a == "-M" || a == "-machine" || a == "--machine");
        let process = Process::launch(
            &self.binary,
            "qmp.sock",
            self.start_timeout,
            |command, socket| {
                command.args(["-nodefaults", "-display", "none"]);
                if !chooses_machine {
                    command.args(["-machine", "none"]);
                }
                command.arg("-qmp").arg(qmp_option(socket));
                if let Some(address) = tcp_monitor {
                    command
                        .arg("-qmp")
                        .arg(format!("tcp:{address},server=on,wait=off"));
                }
                command.args(&self.args);
                Ok(())
            },
        )?;
        let mut qemu = Qemu {
            process,
            tcp_monitor,
        };
        if let Some(address) = tcp_monitor {
            while std::net::TcpStream::connect(address).is_err() {
                if started.elapsed() >= self.start_timeout {
                    qemu.kill();
                    return Err(StartError::Timeout {
                        binary: name,
                        after: self.start_timeout,
                        stderr: qemu.stderr_tail(),
                    });
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        Ok(qemu)
    }
}

/// A loopback address whose port nothing used when asked.
fn free_loopback_port() -> std::io::Result<std::net::SocketAddr> {
    std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()
}

/// `-qmp`'s value for a Unix socket at `path`; QEMU's option syntax
/// doubles a comma inside a value.
fn qmp_option(path: &Path) -> OsString {
    let mut option = OsString::from("unix:");
    option.push(path.as_os_str().to_string_lossy().replace(',', ",,"));
    option.push(",server=on,wait=off");
    option
}

/// `binary` itself when it names a path, else the first match on `PATH`,
/// then in `/usr/sbin` and `/usr/local/sbin` (where distributions put
/// `qemu-ga`, and which a user's `PATH` may lack).
fn find_binary(binary: &Path) -> Option<PathBuf> {
    if binary.components().count() > 1 {
        return binary.is_file().then(|| binary.to_owned());
    }
    let paths = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&paths)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/sbin")])
        .map(|dir| dir.join(binary))
        .find(|candidate| candidate.is_file())
}

/// A running QEMU with a QMP socket in a directory of its own; killed, and
/// the directory removed, when dropped.
#[derive(Debug)]
pub struct Qemu {
    process: Process,
    tcp_monitor: Option<std::net::SocketAddr>,
}

impl Qemu {
    /// A builder with the defaults (see [`QemuBuilder`]).
    pub fn builder() -> QemuBuilder {
        QemuBuilder::new()
    }

    /// The QMP socket, taking connections (one at a time, as QEMU's
    /// monitor does).
    pub fn qmp_socket(&self) -> &Path {
        &self.process.socket
    }

    /// The second QMP monitor's loopback address, when the builder asked
    /// for one ([`QemuBuilder::tcp_monitor`]).
    pub fn tcp_monitor(&self) -> Option<std::net::SocketAddr> {
        self.tcp_monitor
    }

    /// The process's own directory, for more sockets or images; removed
    /// with it.
    pub fn dir(&self) -> &Path {
        self.process.dir.path()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.process.child.id()
    }

    /// What QEMU wrote to standard error so far (its end).
    pub fn stderr_tail(&self) -> String {
        self.process.stderr_tail()
    }

    /// Whether it is still running.
    pub fn is_running(&mut self) -> bool {
        self.process.is_running()
    }

    /// Kills QEMU (if still running) and waits for it.
    pub fn kill(&mut self) {
        self.process.kill();
    }
}

/// A started process with a socket in a temporary directory of its own;
/// killed when dropped, before the directory goes.
#[derive(Debug)]
struct Process {
    child: Child,
    socket: PathBuf,
    stderr: PathBuf,
    // Last: removed after the process is gone.
    dir: tempfile::TempDir,
}

impl Process {
    /// Finds `binary`, makes its directory, lets `configure` add the
    /// arguments (given the socket's path), starts it with standard error
    /// to a file there, and waits until the socket takes a connection.
    fn launch(
        binary: &Path,
        socket_name: &str,
        start_timeout: Duration,
        configure: impl FnOnce(&mut Command, &Path) -> Result<(), StartError>,
    ) -> Result<Process, StartError> {
        let name = binary.display().to_string();
        let found = find_binary(binary).ok_or_else(|| StartError::NotFound {
            binary: name.clone(),
        })?;
        let spawn_error = |source| StartError::Spawn {
            binary: name.clone(),
            source,
        };
        let dir = tempfile::Builder::new()
            .prefix("qapi-testkit-")
            .tempdir()
            .map_err(spawn_error)?;
        let socket = dir.path().join(socket_name);
        let stderr = dir.path().join("stderr");
        let mut command = Command::new(&found);
        configure(&mut command, &socket)?;
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&stderr).map_err(spawn_error)?);
        let child = command.spawn().map_err(spawn_error)?;
        let mut process = Process {
            child,
            socket,
            stderr,
            dir,
        };
        let deadline = Instant::now() + start_timeout;
        loop {
            if std::os::unix::net::UnixStream::connect(&process.socket).is_ok() {
                // QEMU and qemu-ga take the next client once this probe
                // hangs up.
                return Ok(process);
            }
            if let Ok(Some(status)) = process.child.try_wait() {
                return Err(StartError::Exited {
                    binary: name,
                    status,
                    stderr: process.stderr_tail(),
                });
            }
            if Instant::now() >= deadline {
                process.kill();
                return Err(StartError::Timeout {
                    binary: name,
                    after: start_timeout,
                    stderr: process.stderr_tail(),
                });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn stderr_tail(&self) -> String {
        let mut text = Vec::new();
        if let Ok(mut file) = File::open(&self.stderr) {
            let _ = file.read_to_end(&mut text);
        }
        let start = text.len().saturating_sub(STDERR_TAIL);
        String::from_utf8_lossy(&text[start..]).into_owned()
    }

    fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}
