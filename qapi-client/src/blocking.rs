//! The same clients for programs without an async runtime.
//!
//! Every blocking session of a process runs on one tokio runtime with one
//! worker thread, started by the first session and kept until the process
//! exits.  The worker reads from every session's socket in the
//! background, so events and replies are routed while the program is busy
//! elsewhere; each method blocks the calling thread until its result is
//! there (decoding it on that thread).  So an idle session costs no thread
//! of its own, about as much memory as an async session, and one or two
//! descriptors: its socket, and on a Unix socket an eventfd (see below).
//! Sessions can be cloned and used from many threads at once, and any
//! number of threads can wait on sessions at the same time.
//!
//! On a Unix socket, a command executed while no other call is in flight
//! (the usual case for a program calling one command at a time) is a
//! *direct call*: the calling thread writes the request and waits for the
//! reply in `poll` itself, routing any events that arrive meanwhile, which
//! saves the two thread wake-ups of going through the runtime.  The socket
//! goes back to the runtime once no direct call has run for 2–4 ms, or at
//! once when a call that goes through the runtime needs it; so an event
//! that arrives while the program does not call is delivered at most a
//! few milliseconds later than on an async session (one that arrives
//! during a call is routed by the calling thread at once).
//! Calls from several threads at once (and, for 20 ms after such
//! contention, every call), [`Qmp::execute_with_fds`], `execute_raw`,
//! [`Qga::sync`] and the reports go through the runtime as before.  A
//! session on a Unix socket holds one more file descriptor (an eventfd)
//! for this.
//!
//! A session can also start on a socket that is connected already
//! ([`Qmp::connect_stream`], [`Qga::connect_stream`]): a Unix socket (one
//! end of a socket pair whose other end QEMU was given, a descriptor
//! inherited from a supervisor), which keeps direct calls and file
//! descriptor passing, or a TCP connection.  Both are the standard
//! library's blocking sockets; the session makes them non-blocking and
//! moves them into the shared runtime.  Other byte streams need the async
//! API.
//!
//! Do not call the methods that wait (connecting, calls, `closed`, the
//! event streams' `recv…` and `wait_for`) from inside an async runtime
//! (in a task, or in a future given to `block_on`): tokio refuses to block
//! on a future there and panics, and a direct call would hold up the
//! runtime's thread.  Async code uses the crate root's
//! [`Qmp`](crate::Qmp) and [`Qga`](crate::Qga).  Dropping a session or an
//! event stream is fine anywhere, inside an async runtime too: dropping
//! the last clone of a session only stops its tasks on the shared
//! runtime, whose worker then closes the socket, without waiting for it.
//!
//! After `fork`, a child process that opens blocking sessions gets a
//! runtime of its own (the parent's worker thread is not copied into the
//! child).  Sessions opened before the fork belong to the parent: the
//! child must not call them, as their calls would wait for that missing
//! worker (dropping them there closes nothing: their tasks and sockets
//! stay behind in the parent's runtime until the child exits or execs).
//!
//! ```no_run
//! use qapi_client::blocking::Qmp;
//! use qapi_types::commands::QueryStatus;
//!
//! let qmp = Qmp::connect_unix("/run/vm1/qmp.sock")?;
//! let status = qmp.execute(&QueryStatus {})?;
//! println!("running: {}", status.running);
//! # Ok::<(), qapi_client::Error>(())
//! ```

use std::net::TcpStream;
use std::os::fd::BorrowedFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use qapi_types::{AnyEvent, Event, EventMessage, QgaCommand, QmpCommand};
use tokio::runtime::Runtime;

use crate::error::{Error, Result};
use crate::events::RawEvent;
use crate::qmp::Greeting;

/// The runtime every blocking session of this process runs on (see the
/// module docs): started by the first session, kept until the process
/// exits, and started anew in a child process after `fork`, which
/// inherits the parent's runtime without its worker thread.
fn runtime() -> Result<&'static Runtime> {
    /// The process that started the runtime, and the runtime, leaked:
    /// sessions and event streams hold plain references to it, and
    /// dropping it would wait for its worker (blocking, and in a forked
    /// child a worker that does not exist).
    ///
    /// The lock is held only to look or to swap, never while a runtime
    /// starts, so that a `fork` while another thread starts one does not
    /// leave it held in the child.
    static SHARED: Mutex<Option<(u32, &'static Runtime)>> = Mutex::new(None);
    fn current(pid: u32) -> Option<&'static Runtime> {
        match *SHARED.lock().unwrap_or_else(|e| e.into_inner()) {
            Some((owner, runtime)) if owner == pid => Some(runtime),
            _ => None,
        }
    }
    let pid = std::process::id();
    if let Some(runtime) = current(pid) {
        return Ok(runtime);
    }
    // One worker: it reads and routes for every session, which is little
    // work per message (decoding happens on the calling threads, in
    // `block_on`), and sequential calls on a Unix socket skip it anyway
    // (direct calls).
    let fresh = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("qapi-client")
        .enable_all()
        .build()?;
    let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    match *shared {
        // Another thread started one meanwhile: use that one.  Stopping
        // ours without waiting for its worker is allowed anywhere, even
        // inside an async runtime.
        Some((owner, runtime)) if owner == pid => {
            drop(shared);
            fresh.shutdown_background();
            Ok(runtime)
        }
        _ => {
            let runtime: &'static Runtime = Box::leak(Box::new(fresh));
            *shared = Some((pid, runtime));
            Ok(runtime)
        }
    }
}

/// A connected socket for [`Qmp::connect_stream`] and
/// [`Qga::connect_stream`]: the standard library's blocking sockets, which
/// the session makes non-blocking and moves into its runtime.
#[derive(Debug)]
#[non_exhaustive]
pub enum Socket {
    /// A Unix socket: the session works as on
    /// [`Qmp::connect_unix`] (direct calls, file descriptor passing).
    Unix(UnixStream),
    /// A TCP connection (Nagle's algorithm is turned off).
    Tcp(TcpStream),
}

impl From<UnixStream> for Socket {
    fn from(stream: UnixStream) -> Self {
        Socket::Unix(stream)
    }
}

impl From<TcpStream> for Socket {
    fn from(stream: TcpStream) -> Self {
        Socket::Tcp(stream)
    }
}

/// A non-blocking tokio TCP stream from a standard one; inside a runtime.
fn tokio_tcp(stream: TcpStream) -> Result<tokio::net::TcpStream> {
    stream.set_nonblocking(true)?;
    stream.set_nodelay(true)?;
    Ok(tokio::net::TcpStream::from_std(stream)?)
}

/// A blocking QMP session; see [`crate::Qmp`] for what each method does.
#[derive(Clone, Debug)]
pub struct Qmp {
    session: crate::Qmp,
    runtime: &'static Runtime,
}

impl Qmp {
    /// Connects to a QMP Unix socket with the default settings.
    pub fn connect_unix(path: impl AsRef<Path>) -> Result<Qmp> {
        Self::connect_unix_with(crate::QmpBuilder::new(), path)
    }

    /// Connects to a QMP Unix socket with the given settings.
    pub fn connect_unix_with(builder: crate::QmpBuilder, path: impl AsRef<Path>) -> Result<Qmp> {
        let runtime = runtime()?;
        let session = runtime.block_on(builder.direct(true).connect_unix(path))?;
        Ok(Qmp { session, runtime })
    }

    /// Connects to a QMP socket, Unix or TCP as `address` says, with the
    /// given settings.
    pub fn connect_with(builder: crate::QmpBuilder, address: &crate::Address) -> Result<Qmp> {
        match address {
            crate::Address::Unix(path) => Self::connect_unix_with(builder, path),
            crate::Address::Tcp(host_port) => Self::connect_tcp_with(builder, host_port.as_str()),
        }
    }

    /// Connects to a QMP TCP socket with the given settings.
    pub fn connect_tcp_with(
        builder: crate::QmpBuilder,
        address: impl tokio::net::ToSocketAddrs,
    ) -> Result<Qmp> {
        let runtime = runtime()?;
        let session = runtime.block_on(builder.connect_tcp(address))?;
        Ok(Qmp { session, runtime })
    }

    /// Negotiates on a connected socket with the default settings (see
    /// [`Socket`]).
    pub fn connect_stream(socket: impl Into<Socket>) -> Result<Qmp> {
        Self::connect_stream_with(crate::QmpBuilder::new(), socket)
    }

    /// Negotiates on a connected socket with the given settings.
    pub fn connect_stream_with(
        builder: crate::QmpBuilder,
        socket: impl Into<Socket>,
    ) -> Result<Qmp> {
        let runtime = runtime()?;
        let session = runtime.block_on(async {
            match socket.into() {
                Socket::Unix(stream) => builder.direct(true).connect_std_unix(stream).await,
                Socket::Tcp(stream) => builder.connect_stream(tokio_tcp(stream)?).await,
            }
        })?;
        Ok(Qmp { session, runtime })
    }

    /// The greeting QEMU sent.
    pub fn greeting(&self) -> &Greeting {
        self.session.greeting()
    }

    /// Whether the session has ended.
    pub fn is_closed(&self) -> bool {
        self.session.is_closed()
    }

    /// See [`crate::Qmp::close`].
    pub fn close(&self) {
        self.session.close();
    }

    /// A handle whose every call has time limit `timeout`; see
    /// [`crate::Qmp::with_timeout`].
    pub fn with_timeout(&self, timeout: Option<Duration>) -> Qmp {
        Qmp {
            session: self.session.with_timeout(timeout),
            runtime: self.runtime,
        }
    }

    /// See [`crate::Qmp::unclaimed_errors`].
    pub fn unclaimed_errors(&self) -> u64 {
        self.session.unclaimed_errors()
    }

    /// Blocks until the session ends and returns the reason; see
    /// [`crate::Qmp::closed`].
    pub fn closed(&self) -> Error {
        self.runtime.block_on(self.session.closed())
    }

    /// See [`crate::Qmp::execute`].
    pub fn execute<C: QmpCommand>(&self, command: &C) -> Result<C::Returns> {
        self.session
            .execute_blocking(command, false, None, self.runtime)
    }

    /// See [`crate::Qmp::execute_with_timeout`].
    pub fn execute_with_timeout<C: QmpCommand>(
        &self,
        command: &C,
        timeout: Duration,
    ) -> Result<C::Returns> {
        self.session
            .execute_blocking(command, false, Some(timeout), self.runtime)
    }

    /// See [`crate::Qmp::execute_oob`].
    pub fn execute_oob<C: QmpCommand>(&self, command: &C) -> Result<C::Returns> {
        self.session
            .execute_blocking(command, true, None, self.runtime)
    }

    /// See [`crate::Qmp::execute_with_fds`].
    pub fn execute_with_fds<C: QmpCommand>(
        &self,
        command: &C,
        fds: &[BorrowedFd<'_>],
    ) -> Result<C::Returns> {
        self.runtime
            .block_on(self.session.execute_with_fds(command, fds))
    }

    /// See [`crate::Qmp::execute_raw`].
    pub fn execute_raw(
        &self,
        name: &str,
        arguments: Option<&serde_json::Value>,
    ) -> Result<serde_json::Value> {
        self.runtime
            .block_on(self.session.execute_raw(name, arguments))
    }

    /// See [`crate::Qmp::schema_report`].
    pub fn schema_report(&self) -> Result<Arc<crate::SchemaReport>> {
        self.runtime.block_on(self.session.schema_report())
    }

    /// See [`crate::Qmp::supports`].
    pub fn supports<C: QmpCommand>(&self) -> Result<bool> {
        self.runtime.block_on(self.session.supports::<C>())
    }

    /// A new subscription to the session's events (see
    /// [`crate::EventStream`]).
    pub fn events(&self) -> EventStream {
        EventStream {
            stream: self.session.events(),
            runtime: self.runtime,
        }
    }

    /// See [`crate::Qmp::events_named`].
    pub fn events_named<I, S>(&self, names: I) -> EventStream
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        EventStream {
            stream: self.session.events_named(names),
            runtime: self.runtime,
        }
    }
}

/// A blocking subscription to a session's events; see
/// [`crate::EventStream`] for the buffering policy.
#[derive(Debug)]
pub struct EventStream {
    stream: crate::EventStream,
    runtime: &'static Runtime,
}

impl EventStream {
    /// Waits for the next event; `None` once the session has closed.
    pub fn recv(&mut self) -> Option<Result<EventMessage<AnyEvent>>> {
        self.runtime.block_on(self.stream.recv())
    }

    /// Waits for the next event, undecoded.
    pub fn recv_raw(&mut self) -> Option<Result<Arc<RawEvent>>> {
        self.runtime.block_on(self.stream.recv_raw())
    }

    /// Waits at most `timeout` for the next event: `Err(Error::Timeout)`
    /// when none came.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Option<Result<EventMessage<AnyEvent>>> {
        self.runtime
            .block_on(async { tokio::time::timeout(timeout, self.stream.recv()).await })
            .unwrap_or_else(|_| {
                Some(Err(Error::Timeout {
                    command: "event".into(),
                    after: timeout,
                    sent: false,
                }))
            })
    }

    /// The next event if one is ready, without waiting.
    pub fn try_recv_raw(&mut self) -> Option<Result<Arc<RawEvent>>> {
        self.stream.try_recv_raw()
    }

    /// Waits at most `timeout` for the next event `E` whose data
    /// `matches`; see [`crate::EventStream::wait_for`].
    pub fn wait_for<E: Event>(
        &mut self,
        timeout: Duration,
        matches: impl FnMut(&E) -> bool,
    ) -> Result<EventMessage<E>> {
        self.runtime
            .block_on(self.stream.wait_for(timeout, matches))
    }
}

/// A blocking guest-agent session; see [`crate::Qga`].
#[derive(Clone, Debug)]
pub struct Qga {
    session: crate::Qga,
    runtime: &'static Runtime,
}

impl Qga {
    /// Connects to an agent's Unix socket with the default settings and
    /// synchronises.
    pub fn connect_unix(path: impl AsRef<Path>) -> Result<Qga> {
        Self::connect_unix_with(crate::QgaBuilder::new(), path)
    }

    /// Connects with the given settings and synchronises.
    pub fn connect_unix_with(builder: crate::QgaBuilder, path: impl AsRef<Path>) -> Result<Qga> {
        let runtime = runtime()?;
        let session = runtime.block_on(builder.direct(true).connect_unix(path))?;
        Ok(Qga { session, runtime })
    }

    /// Connects to an agent's channel, Unix or TCP as `address` says, with the
    /// given settings.
    pub fn connect_with(builder: crate::QgaBuilder, address: &crate::Address) -> Result<Qga> {
        match address {
            crate::Address::Unix(path) => Self::connect_unix_with(builder, path),
            crate::Address::Tcp(host_port) => Self::connect_tcp_with(builder, host_port.as_str()),
        }
    }

    /// Connects to an agent's channel exposed as a TCP socket with the
    /// given settings and synchronises.
    pub fn connect_tcp_with(
        builder: crate::QgaBuilder,
        address: impl tokio::net::ToSocketAddrs,
    ) -> Result<Qga> {
        let runtime = runtime()?;
        let session = runtime.block_on(builder.connect_tcp(address))?;
        Ok(Qga { session, runtime })
    }

    /// Synchronises on a connected socket with the default settings (see
    /// [`Socket`]).
    pub fn connect_stream(socket: impl Into<Socket>) -> Result<Qga> {
        Self::connect_stream_with(crate::QgaBuilder::new(), socket)
    }

    /// Synchronises on a connected socket with the given settings.
    pub fn connect_stream_with(
        builder: crate::QgaBuilder,
        socket: impl Into<Socket>,
    ) -> Result<Qga> {
        let runtime = runtime()?;
        let session = runtime.block_on(async {
            match socket.into() {
                Socket::Unix(stream) => builder.direct(true).connect_std_unix(stream).await,
                Socket::Tcp(stream) => builder.connect_stream(tokio_tcp(stream)?).await,
            }
        })?;
        Ok(Qga { session, runtime })
    }

    /// See [`crate::Qga::sync`].
    pub fn sync(&self) -> Result<()> {
        self.runtime.block_on(self.session.sync())
    }

    /// See [`crate::Qga::agent_report`].
    pub fn agent_report(&self) -> Result<crate::AgentReport> {
        self.runtime.block_on(self.session.agent_report())
    }

    /// See [`crate::Qga::execute`].
    pub fn execute<C: QgaCommand>(&self, command: &C) -> Result<C::Returns> {
        self.session
            .execute_blocking(command, self.session.timeout(), self.runtime)
    }

    /// See [`crate::Qga::execute_with_timeout`].
    pub fn execute_with_timeout<C: QgaCommand>(
        &self,
        command: &C,
        timeout: Duration,
    ) -> Result<C::Returns> {
        self.session
            .execute_blocking(command, timeout, self.runtime)
    }

    /// See [`crate::Qga::execute_raw`].
    pub fn execute_raw(
        &self,
        name: &str,
        arguments: Option<&serde_json::Value>,
    ) -> Result<serde_json::Value> {
        self.runtime
            .block_on(self.session.execute_raw(name, arguments))
    }

    /// Whether the session has ended.
    pub fn is_closed(&self) -> bool {
        self.session.is_closed()
    }

    /// See [`crate::Qga::close`].
    pub fn close(&self) {
        self.session.close();
    }

    /// A handle whose every call has time limit `timeout`; see
    /// [`crate::Qga::with_timeout`].
    pub fn with_timeout(&self, timeout: Duration) -> Qga {
        Qga {
            session: self.session.with_timeout(timeout),
            runtime: self.runtime,
        }
    }

    /// See [`crate::Qga::echoes_ids`].
    pub fn echoes_ids(&self) -> bool {
        self.session.echoes_ids()
    }

    /// See [`crate::Qga::unclaimed_errors`].
    pub fn unclaimed_errors(&self) -> u64 {
        self.session.unclaimed_errors()
    }

    /// Blocks until the session ends and returns the reason; see
    /// [`crate::Qga::closed`].
    pub fn closed(&self) -> Error {
        self.runtime.block_on(self.session.closed())
    }
}
