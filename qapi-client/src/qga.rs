//! Guest-agent sessions: qemu-ga, reached through the host side of its
//! virtio-serial (or isa-serial) channel.
//!
//! The agent speaks for the guest, so nothing it sends is trusted: every
//! call has a time limit, messages have a size limit, and junk is skipped
//! rather than believed.  The channel may hold stale or partial data from an
//! earlier client, so a session starts with `guest-sync-delimited`, and
//! [`Qga::sync`] can be called again at any time to resynchronise.

use std::future::Future;
use std::os::unix::net::UnixStream as StdUnixStream;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use qapi_types::QgaCommand;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::ToSocketAddrs;
use tracing::{info_span, Instrument};

use crate::address::Address;
use crate::engine::{Engine, EngineConfig, MessageReader, Peer, Source, Writer};
use crate::error::{Error, Result};

/// Settings for a guest-agent session; [`QgaBuilder::default`] gives the
/// defaults.
#[derive(Debug, Clone)]
pub struct QgaBuilder {
    timeout: Duration,
    no_reply_grace: Duration,
    max_message_size: usize,
    recorder: Option<crate::Recorder>,
    /// Set by the blocking client (see `Engine::call_blocking`).
    direct: bool,
}

impl Default for QgaBuilder {
    fn default() -> Self {
        QgaBuilder {
            timeout: Duration::from_secs(10),
            no_reply_grace: Duration::from_secs(1),
            max_message_size: 16 << 20,
            recorder: None,
            direct: false,
        }
    }
}

impl QgaBuilder {
    /// The defaults: 10 s per command (and for the sync), 1 s of grace for
    /// commands that answer only on failure, 16 MiB per message.
    pub fn new() -> Self {
        Self::default()
    }

    /// Time limit for every command and for the sync.  There is always one:
    /// a guest may be dead or hostile.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Records every message of the session (the syncs included) with `recorder`, as a transcript `qapi-testkit` replays;
    /// secrets hidden as in the `TRACE` log.  See [`Recorder`](crate::Recorder).
    pub fn record(mut self, recorder: crate::Recorder) -> Self {
        self.recorder = Some(recorder);
        self
    }

    /// How long a command that answers only on failure (`guest-shutdown`,
    /// `guest-suspend-*`) waits, once its request is written, for an error
    /// reply before it counts as success.  An error within it fails the
    /// call; so does nothing else: silence, or the channel closing as the
    /// guest goes down, is success.  An error that comes later is not the
    /// call's (see [`Qga::unclaimed_errors`]).
    pub fn no_reply_grace(mut self, grace: Duration) -> Self {
        self.no_reply_grace = grace;
        self
    }

    /// The longest message accepted from the agent; a longer one closes
    /// the session with [`Error::MessageTooLarge`], so a hostile guest
    /// can make the client hold at most this much.
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// Lets blocking calls use the socket themselves (the blocking client).
    pub(crate) fn direct(mut self, direct: bool) -> Self {
        self.direct = direct;
        self
    }

    /// Connects to the host side of the agent's channel (a Unix socket)
    /// and synchronises.
    pub async fn connect_unix(self, path: impl AsRef<Path>) -> Result<Qga> {
        let path = path.as_ref();
        let (read, write) = crate::unix::connect(path)
            .await
            .map_err(|e| Error::connect(path.display(), e))?;
        self.start(read, Writer::Unix(write)).await
    }

    /// Connects to the agent's channel, a Unix or TCP socket as `address`
    /// says (parse one from text with [`Address`]'s `FromStr`), and
    /// synchronises.
    pub async fn connect(self, address: &Address) -> Result<Qga> {
        match address {
            Address::Unix(path) => self.connect_unix(path).await,
            Address::Tcp(host_port) => self.connect_tcp(host_port.as_str()).await,
        }
    }

    /// Connects to an agent's channel exposed as a TCP socket (a chardev
    /// `socket,host=…,port=…,server=on`) and synchronises.
    pub async fn connect_tcp(self, address: impl ToSocketAddrs) -> Result<Qga> {
        let stream = crate::tcp::connect(address).await?;
        let (read, write) = stream.into_split();
        self.start(read, Writer::Stream(Box::new(write))).await
    }

    /// Synchronises on a connected Unix socket, as
    /// [`connect_unix`](Self::connect_unix) does on the socket it
    /// connects.  Must be called inside a runtime.
    pub(crate) async fn connect_std_unix(self, stream: StdUnixStream) -> Result<Qga> {
        let (read, write) = crate::unix::split(stream)?;
        self.start(read, Writer::Unix(write)).await
    }

    /// Synchronises over any byte stream.
    pub async fn connect_stream<S>(self, stream: S) -> Result<Qga>
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (read, write) = tokio::io::split(stream);
        self.start(read, Writer::Stream(Box::new(write))).await
    }

    async fn start<R>(self, read: R, writer: Writer) -> Result<Qga>
    where
        R: Source + Send + 'static,
    {
        let config = EngineConfig {
            peer: Peer::Qga,
            direct: self.direct,
            event_capacity: 1,
            no_reply_grace: self.no_reply_grace,
            keep_early_events: false,
            recorder: self.recorder.clone(),
        };
        if let Some(recorder) = &self.recorder {
            recorder.start("qga");
        }
        let reader = MessageReader::new(read, Peer::Qga, self.max_message_size);
        let qga = Qga {
            inner: Arc::new(Inner {
                engine: Engine::start(reader, writer, &config),
            }),
            timeout: self.timeout,
        };
        qga.sync().await?;
        Ok(qga)
    }
}

/// A guest-agent session.  Clones share the connection; the agent
/// answers one request at a time, in order.  The connection closes when
/// the last clone is dropped, or at once with [`close`](Qga::close).
///
///
/// # Agents with and without request ids
///
/// qemu-ga copies a request's `id` into its reply since QEMU 2.12; older
/// agents, still found in long-lived guests, do not.  The session finds
/// out at every sync, from the sync's own reply ([`Qga::echoes_ids`]),
/// and works with both:
///
/// - with an agent that echoes ids, requests from many tasks are
///   pipelined and replies matched by id;
/// - with one that does not, calls take turns (one request on the wire at
///   a time, the reply belongs to it), and after a call that gave up once
///   its request was out (its reply may still come), the next call syncs
///   first, which drops that reply.
///
/// # Time limits
///
/// Every call has one (the builder's, or [`Qga::with_timeout`]'s).  A call
/// that runs out of time, or whose future is dropped, before any of its
/// request was written takes the request back: the agent never sees it.
/// One whose request had begun to go out is finished (to keep the stream
/// whole), and its [`Error::Timeout`] says the command may still run.
#[derive(Clone)]
pub struct Qga {
    inner: Arc<Inner>,
    /// The time limit of this handle's calls.
    timeout: Duration,
}

struct Inner {
    engine: Engine,
}

impl std::fmt::Debug for Qga {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Qga")
            .field("timeout", &self.timeout)
            .field("echoes_ids", &self.echoes_ids())
            .field("closed", &self.inner.engine.is_closed())
            .finish()
    }
}

impl Qga {
    /// Connects to an agent's Unix socket with the default settings.
    pub async fn connect_unix(path: impl AsRef<Path>) -> Result<Qga> {
        QgaBuilder::new().connect_unix(path).await
    }

    /// Settings for a new session.
    pub fn builder() -> QgaBuilder {
        QgaBuilder::new()
    }

    /// Whether the session has ended.
    pub fn is_closed(&self) -> bool {
        self.inner.engine.is_closed()
    }

    /// Ends the session now, for every clone: calls in flight fail with
    /// [`Error::Disconnected`] ("closed by the client"), later ones at
    /// once, and the connection is shut down.  Does nothing if the session
    /// has ended already.
    pub fn close(&self) {
        self.inner.engine.close();
    }

    /// Resolves when the session ends, with the reason (the channel was
    /// closed, a message over the size limit, [`close`](Self::close)).  It
    /// holds no reference to the session: it also resolves when every
    /// clone has been dropped.
    pub fn closed(&self) -> impl Future<Output = Error> + Send + 'static {
        self.inner.engine.closed()
    }

    /// Resynchronises with the agent: sends the 0xFF byte (which makes the
    /// agent drop any partial request it holds) and `guest-sync-delimited`
    /// with a fresh random value.  The agent puts 0xFF before its reply,
    /// which makes this side drop any partial message it holds; replies
    /// before the one that carries the value are stale and dropped.  Also
    /// finds out whether the agent echoes request ids (see [`Qga`]).
    pub async fn sync(&self) -> Result<()> {
        self.inner
            .engine
            .sync(self.timeout)
            .instrument(info_span!("qga_sync"))
            .await
    }

    /// Whether the agent copied the request id into its reply at the last
    /// sync; when it did not, calls take turns (see [`Qga`]).
    pub fn echoes_ids(&self) -> bool {
        self.inner.engine.echoes_ids()
    }

    /// How many error replies answered no waiting call: replies to calls
    /// that had given up (time limit, dropped future, a no-reply command
    /// after its grace period) and replies without an id that could not
    /// be pinned on one call.  Each is also logged as a warning.
    pub fn unclaimed_errors(&self) -> u64 {
        self.inner.engine.unclaimed_errors()
    }

    /// A handle to the same session whose calls have time limit
    /// `timeout` (this handle keeps its own).
    pub fn with_timeout(&self, timeout: Duration) -> Qga {
        Qga {
            inner: Arc::clone(&self.inner),
            timeout,
        }
    }

    /// What this agent offers compared with the bindings, from its
    /// `guest-info` list.
    pub async fn agent_report(&self) -> Result<crate::AgentReport> {
        let info = self.execute(&qga_types::commands::GuestInfo {}).await?;
        crate::AgentReport::new(&info)
    }

    /// Executes a command with the session's time limit and decodes its
    /// reply.
    ///
    /// Commands that do not answer on success (`guest-shutdown`,
    /// `guest-suspend-*`: `success-response: false`) succeed once their
    /// request is written and no error reply came within the grace period
    /// ([`QgaBuilder::no_reply_grace`]), or the channel closed meanwhile
    /// (the guest going down); an error reply within it fails them.
    pub async fn execute<C: QgaCommand>(&self, command: &C) -> Result<C::Returns> {
        self.execute_with_timeout(command, self.timeout).await
    }

    /// [`execute`](Self::execute) with its own time limit.
    pub async fn execute_with_timeout<C: QgaCommand>(
        &self,
        command: &C,
        timeout: Duration,
    ) -> Result<C::Returns> {
        crate::execute::execute_typed(
            &self.inner.engine,
            command,
            false,
            &[],
            Some(timeout),
            info_span!("qga_execute", command = C::NAME),
        )
        .await
    }

    /// [`execute_with_timeout`](Self::execute_with_timeout) for the
    /// blocking client.
    pub(crate) fn execute_blocking<C: QgaCommand>(
        &self,
        command: &C,
        timeout: Duration,
        runtime: &tokio::runtime::Runtime,
    ) -> Result<C::Returns> {
        let _span = info_span!("qga_execute", command = C::NAME).entered();
        crate::execute::execute_typed_blocking(
            &self.inner.engine,
            command,
            false,
            Some(timeout),
            runtime,
        )
    }

    /// This handle's time limit for each command.
    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Executes a command by name with untyped arguments (for commands
    /// newer than the bindings); returns the raw `return` value.  A
    /// command the bindings know as answering only on failure
    /// (`guest-shutdown`…) is treated as [`execute`](Self::execute) treats
    /// it, and returns `{}` on success.
    pub async fn execute_raw(
        &self,
        name: &str,
        arguments: Option<&serde_json::Value>,
    ) -> Result<serde_json::Value> {
        let expect_reply = qga_types::command_codec(name).is_none_or(|c| c.success_response);
        crate::execute::execute_raw(
            &self.inner.engine,
            name,
            arguments,
            Some(self.timeout),
            expect_reply,
        )
        .await
    }
}
