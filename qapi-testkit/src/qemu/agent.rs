//! `qemu-ga` on this machine, for tests and recordings, limited to the
//! commands a test names.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::{find_binary, Process, StartError};

/// The agent binary [`QemuGaBuilder`] starts unless told otherwise, looked
/// up on `PATH`, then in `/usr/sbin` and `/usr/local/sbin`.
pub const DEFAULT_AGENT_BINARY: &str = "qemu-ga";

/// The sync commands a session needs, allowed whatever the test names.
const SYNC_COMMANDS: &[&str] = &["guest-sync-delimited", "guest-sync"];

/// Starts a [`QemuGa`] that runs only the commands given.
///
/// An agent started here runs on this machine, as this user: the allow
/// list is what keeps `guest-shutdown`, `guest-set-time`, `guest-exec` and
/// the like from acting on the host, so there is no way to start one
/// without it. qemu-ga 8.0 and newer take it as `--allow-rpcs`; older ones
/// get `--block-rpcs` with every other command they list. An agent that
/// can be limited neither way is not started
/// ([`StartError::CannotRestrict`]).
///
/// The agent runs as `qemu-ga -m unix-listen -p DIR/qga.sock -t DIR`.
#[derive(Debug, Clone)]
pub struct QemuGaBuilder {
    binary: PathBuf,
    allowed: Vec<String>,
    start_timeout: Duration,
}

impl QemuGaBuilder {
    /// `qemu-ga` allowed to run `allowed` (and the sync commands), 10 s to
    /// start.
    pub fn new<I, S>(allowed: I) -> QemuGaBuilder
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut allowed: Vec<String> = allowed.into_iter().map(Into::into).collect();
        for sync in SYNC_COMMANDS {
            if !allowed.iter().any(|a| a == sync) {
                allowed.push((*sync).to_owned());
            }
        }
        QemuGaBuilder {
            binary: PathBuf::from(DEFAULT_AGENT_BINARY),
            allowed,
            start_timeout: Duration::from_secs(10),
        }
    }

    /// The binary: a path, or a name looked up as the default one is.
    pub fn binary(mut self, binary: impl Into<PathBuf>) -> QemuGaBuilder {
        self.binary = binary.into();
        self
    }

    /// How long the agent may take to listen on its socket.
    pub fn start_timeout(mut self, limit: Duration) -> QemuGaBuilder {
        self.start_timeout = limit;
        self
    }

    /// Starts the agent and waits until its socket takes connections.
    pub fn start(self) -> Result<QemuGa, StartError> {
        let restriction = match find_binary(&self.binary) {
            Some(found) => {
                restriction(&found, &self.allowed).map_err(|why| StartError::CannotRestrict {
                    binary: self.binary.display().to_string(),
                    why,
                })?
            }
            // `launch` reports it.
            None => String::new(),
        };
        let process = Process::launch(
            &self.binary,
            "qga.sock",
            self.start_timeout,
            |command, socket| {
                let dir = socket.parent().unwrap_or(Path::new("."));
                command
                    .args(["-m", "unix-listen", "-p"])
                    .arg(socket)
                    .arg("-t")
                    .arg(dir)
                    .arg(&restriction);
                Ok(())
            },
        )?;
        Ok(QemuGa { process })
    }
}

/// The option that limits `binary` to `allowed`: `--allow-rpcs=…` where the
/// agent has it, else `--block-rpcs=…` with every other command it lists.
fn restriction(binary: &Path, allowed: &[String]) -> Result<String, String> {
    let help = Command::new(binary)
        .arg("--help")
        .output()
        .map_err(|e| format!("`--help`: {e}"))?;
    if String::from_utf8_lossy(&help.stdout).contains("--allow-rpcs") {
        return Ok(format!("--allow-rpcs={}", allowed.join(",")));
    }
    let listing = Command::new(binary)
        .arg("--block-rpcs=help")
        .output()
        .map_err(|e| format!("`--block-rpcs=help`: {e}"))?;
    let every: Vec<String> = String::from_utf8_lossy(&listing.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    // A listing without the commands that matter most is no listing.
    if !every.iter().any(|c| c == "guest-shutdown") {
        return Err("it has no --allow-rpcs, and --block-rpcs=help lists no commands".into());
    }
    let blocked: Vec<&str> = every
        .iter()
        .filter(|c| !allowed.contains(c))
        .map(String::as_str)
        .collect();
    Ok(format!("--block-rpcs={}", blocked.join(",")))
}

/// A running `qemu-ga` on a Unix socket in a directory of its own, limited
/// to the commands its builder named; killed, and the directory removed,
/// when dropped.
#[derive(Debug)]
pub struct QemuGa {
    process: Process,
}

impl QemuGa {
    /// A builder for an agent that runs only `allowed` (and the sync
    /// commands).
    pub fn builder<I, S>(allowed: I) -> QemuGaBuilder
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        QemuGaBuilder::new(allowed)
    }

    /// The agent's socket (one client at a time).
    pub fn socket(&self) -> &Path {
        &self.process.socket
    }

    /// The process's own directory (also the agent's state directory).
    pub fn dir(&self) -> &Path {
        self.process.dir.path()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.process.child.id()
    }

    /// What the agent wrote to standard error so far (its end).
    pub fn stderr_tail(&self) -> String {
        self.process.stderr_tail()
    }

    /// Kills the agent (if still running) and waits for it.
    pub fn kill(&mut self) {
        self.process.kill();
    }
}
