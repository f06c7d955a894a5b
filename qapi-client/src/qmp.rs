//! QMP sessions: QEMU's machine protocol.

use std::future::Future;
use std::os::fd::BorrowedFd;
use std::os::unix::net::UnixStream as StdUnixStream;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use qapi_types::commands::QmpCapabilities;
use qapi_types::{QMPCapability, QmpCommand, VersionInfo};
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::ToSocketAddrs;
use tracing::{debug, info_span, Instrument};

use crate::address::Address;
use crate::engine::{Engine, EngineConfig, MessageReader, Peer, Read, Source, Writer};
use crate::error::{Error, Result};
use crate::events::EventStream;
use crate::report::SchemaReport;

/// The default time limit of a QMP call (see
/// [`QmpBuilder::command_timeout`]).
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// The greeting QEMU sends when a client connects.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct Greeting {
    /// The QEMU version.
    pub version: VersionInfo,
    /// The capabilities this QEMU offers (`oob`, `exec-oob` is only
    /// possible when `oob` is offered and enabled).
    pub capabilities: Vec<QMPCapability>,
}

#[derive(Deserialize)]
struct GreetingMessage {
    #[serde(rename = "QMP")]
    qmp: Greeting,
}

/// Settings for a QMP session; [`QmpBuilder::default`] gives the defaults.
#[derive(Debug, Clone)]
pub struct QmpBuilder {
    handshake_timeout: Duration,
    command_timeout: Option<Duration>,
    no_reply_grace: Duration,
    max_message_size: usize,
    event_capacity: usize,
    oob: bool,
    keep_early_events: bool,
    recorder: Option<crate::Recorder>,
    /// Set by the blocking client (see `Engine::call_blocking`).
    direct: bool,
}

impl Default for QmpBuilder {
    fn default() -> Self {
        QmpBuilder {
            handshake_timeout: Duration::from_secs(10),
            command_timeout: Some(DEFAULT_COMMAND_TIMEOUT),
            no_reply_grace: Duration::from_secs(1),
            max_message_size: 64 << 20,
            event_capacity: 1024,
            oob: false,
            keep_early_events: false,
            recorder: None,
            direct: false,
        }
    }
}

impl QmpBuilder {
    /// The defaults: 10 s for the greeting and negotiation, 60 s per
    /// command ([`command_timeout`](Self::command_timeout)), 64 MiB per
    /// message, 1024 events kept for slow subscribers, no out-of-band, no
    /// events kept before the first subscription.
    pub fn new() -> Self {
        Self::default()
    }

    /// Time limit for reading the greeting and negotiating.
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Time limit for every call of the session: commands, out of band,
    /// with file descriptors, untyped, and the schema report (60 s by
    /// default, long enough for any command QEMU runs synchronously: the
    /// long operations are jobs, which answer at once).  `None` lets calls
    /// wait as long as QEMU takes.  [`Qmp::with_timeout`] gives a handle
    /// with another limit, [`Qmp::execute_with_timeout`] one call.
    ///
    /// A call that runs out of time before any of its request was written
    /// takes the request back: QEMU never sees it.  One whose request had
    /// begun to go out is finished (to keep the stream whole), and its
    /// [`Error::Timeout`] says the command may still run.
    pub fn command_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.command_timeout = timeout;
        self
    }

    /// The time limit calls of the session get ([`command_timeout`](Self::command_timeout)).
    pub(crate) fn default_timeout(&self) -> Option<Duration> {
        self.command_timeout
    }

    /// How many events are kept for slow subscribers.
    pub(crate) fn events_kept(&self) -> usize {
        self.event_capacity
    }

    /// How long a command that answers only on failure waits for an error
    /// reply once its request is written (no QMP command is such today;
    /// see `QgaBuilder::no_reply_grace`).
    pub fn no_reply_grace(mut self, grace: Duration) -> Self {
        self.no_reply_grace = grace;
        self
    }

    /// The longest message accepted from QEMU; a longer one closes the
    /// session with [`Error::MessageTooLarge`].
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// How many events are kept for subscribers that fall behind (see
    /// [`EventStream`]).
    pub fn event_capacity(mut self, events: usize) -> Self {
        self.event_capacity = events;
        self
    }

    /// Enables the `oob` capability when QEMU offers it, which allows
    /// [`Qmp::execute_oob`].
    pub fn oob(mut self, enable: bool) -> Self {
        self.oob = enable;
        self
    }

    /// Keeps the events that arrive before the first subscription
    /// ([`Qmp::events`] or [`Qmp::events_named`]) for it: those sent during
    /// negotiation and between the handshake and that first call.  The
    /// first subscriber reads them first, then what arrives later; no
    /// later subscriber sees them.  At most `event_capacity` are kept (the
    /// newest): if more arrived, the first subscriber's first item is
    /// [`Error::EventsLagged`] with how many were dropped.  If the session
    /// ends before anyone subscribes, the first subscription still gets
    /// the kept events.
    ///
    /// Off by default: events before a subscription are dropped, and a
    /// session that never subscribes keeps nothing.  (QEMU sends no event
    /// before negotiation; after it, events can come at any time.)
    pub fn keep_early_events(mut self, keep: bool) -> Self {
        self.keep_early_events = keep;
        self
    }

    /// Records every message of the session (greeting and negotiation
    /// included) with `recorder`, as a transcript `qapi-testkit` replays;
    /// secrets hidden as in the `TRACE` log.  See [`Recorder`](crate::Recorder).
    pub fn record(mut self, recorder: crate::Recorder) -> Self {
        self.recorder = Some(recorder);
        self
    }

    /// Lets blocking calls use the socket themselves (the blocking client).
    pub(crate) fn direct(mut self, direct: bool) -> Self {
        self.direct = direct;
        self
    }

    /// Connects to a QMP Unix socket and negotiates.
    pub async fn connect_unix(self, path: impl AsRef<Path>) -> Result<Qmp> {
        let path = path.as_ref();
        let (read, write) = crate::unix::connect(path)
            .await
            .map_err(|e| Error::connect(path.display(), e))?;
        self.handshake(read, Writer::Unix(write)).await
    }

    /// Connects to a QMP socket, Unix or TCP as `address` says (parse one
    /// from text with [`Address`]'s `FromStr`), and negotiates.
    pub async fn connect(self, address: &Address) -> Result<Qmp> {
        match address {
            Address::Unix(path) => self.connect_unix(path).await,
            Address::Tcp(host_port) => self.connect_tcp(host_port.as_str()).await,
        }
    }

    /// Connects to a QMP TCP socket and negotiates.
    pub async fn connect_tcp(self, address: impl ToSocketAddrs) -> Result<Qmp> {
        let stream = crate::tcp::connect(address).await?;
        let (read, write) = stream.into_split();
        self.handshake(read, Writer::Stream(Box::new(write))).await
    }

    /// Negotiates on a connected Unix socket (a socket pair, an inherited
    /// descriptor), as [`connect_unix`](Self::connect_unix) does on the
    /// socket it connects.  Must be called inside a runtime.
    pub(crate) async fn connect_std_unix(self, stream: StdUnixStream) -> Result<Qmp> {
        let (read, write) = crate::unix::split(stream)?;
        self.handshake(read, Writer::Unix(write)).await
    }

    /// Negotiates over any byte stream (a pipe, a TLS stream, an
    /// in-memory duplex in tests).  File descriptors cannot be passed.
    pub async fn connect_stream<S>(self, stream: S) -> Result<Qmp>
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (read, write) = tokio::io::split(stream);
        self.handshake(read, Writer::Stream(Box::new(write))).await
    }

    async fn handshake<R>(self, read: R, writer: Writer) -> Result<Qmp>
    where
        R: Source + Send + 'static,
    {
        let limit = self.handshake_timeout;
        let span = info_span!("qmp_handshake");
        tokio::time::timeout(limit, self.handshake_untimed(read, writer).instrument(span))
            .await
            .unwrap_or_else(|_| {
                Err(Error::Timeout {
                    command: "greeting and qmp_capabilities".into(),
                    after: limit,
                    sent: false,
                })
            })
    }

    async fn handshake_untimed<R>(self, read: R, writer: Writer) -> Result<Qmp>
    where
        R: Source + Send + 'static,
    {
        let mut reader = MessageReader::new(read, Peer::Qmp, self.max_message_size);
        if let Some(recorder) = &self.recorder {
            recorder.start("qmp");
        }
        let greeting = match reader.next().await? {
            Read::Message(bytes) => {
                if let Some(recorder) = &self.recorder {
                    recorder.message(false, &bytes);
                }
                serde_json::from_slice::<GreetingMessage>(&bytes)
                    .map_err(|e| Error::Protocol(format!("expected the QMP greeting: {e}").into()))?
                    .qmp
            }
            Read::Sentinel => return Err(Error::Protocol("expected the QMP greeting".into())),
        };
        debug!(version = ?greeting.version.qemu, capabilities = ?greeting.capabilities, "greeting");
        let oob = self.oob && greeting.capabilities.contains(&QMPCapability::Oob);
        let config = EngineConfig {
            peer: Peer::Qmp,
            direct: self.direct,
            event_capacity: self.event_capacity,
            no_reply_grace: self.no_reply_grace,
            keep_early_events: self.keep_early_events,
            recorder: self.recorder.clone(),
        };
        let qmp = Qmp {
            inner: Arc::new(Inner {
                engine: Engine::start(reader, writer, &config),
                greeting,
                oob,
                report: tokio::sync::OnceCell::new(),
            }),
            timeout: self.command_timeout,
        };
        let enable = oob.then(|| vec![QMPCapability::Oob]);
        qmp.execute(&QmpCapabilities { enable }).await?;
        Ok(qmp)
    }
}

/// A negotiated QMP session.  Clone it freely: clones share the connection,
/// and calls from many tasks run concurrently, matched to their replies by
/// `id`.  The connection closes when the last clone is dropped, or at once
/// with [`close`](Qmp::close).
#[derive(Clone)]
pub struct Qmp {
    inner: Arc<Inner>,
    /// The time limit of this handle's calls.
    timeout: Option<Duration>,
}

struct Inner {
    engine: Engine,
    greeting: Greeting,
    oob: bool,
    report: tokio::sync::OnceCell<Arc<SchemaReport>>,
}

impl std::fmt::Debug for Qmp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Qmp")
            .field("version", &self.inner.greeting.version.qemu)
            .field("oob", &self.inner.oob)
            .field("timeout", &self.timeout)
            .field("closed", &self.inner.engine.is_closed())
            .finish()
    }
}

impl Qmp {
    /// Connects to a QMP Unix socket with the default settings.
    pub async fn connect_unix(path: impl AsRef<Path>) -> Result<Qmp> {
        QmpBuilder::new().connect_unix(path).await
    }

    /// Settings for a new session.
    pub fn builder() -> QmpBuilder {
        QmpBuilder::new()
    }

    /// The greeting QEMU sent.
    pub fn greeting(&self) -> &Greeting {
        &self.inner.greeting
    }

    /// Whether out-of-band execution was negotiated.
    pub fn oob_enabled(&self) -> bool {
        self.inner.oob
    }

    /// A handle to the same session whose calls have time limit `timeout`
    /// (`None`: none), every kind of call included; this handle keeps its
    /// own.  Cheap: handles share the connection.
    pub fn with_timeout(&self, timeout: Option<Duration>) -> Qmp {
        Qmp {
            inner: Arc::clone(&self.inner),
            timeout,
        }
    }

    /// This handle's time limit for each call.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// How many error replies answered no waiting call: replies to calls
    /// that had given up, and replies without an id (QEMU's answer to a
    /// request it could not take apart) that could not be pinned on one
    /// call.  Each is also logged as a warning.
    pub fn unclaimed_errors(&self) -> u64 {
        self.inner.engine.unclaimed_errors()
    }

    /// Whether the session has ended (QEMU exited, the socket broke, or
    /// QEMU broke the protocol); every call then fails at once.
    pub fn is_closed(&self) -> bool {
        self.inner.engine.is_closed()
    }

    /// Executes a command and decodes its reply.
    ///
    /// An error reply is [`Error::Qmp`]; a reply that does not fit the
    /// bindings is [`Error::Decode`] with the JSON path.  Dropping the
    /// future abandons the call (its reply, if it comes, is dropped).
    pub async fn execute<C: QmpCommand>(&self, command: &C) -> Result<C::Returns> {
        self.run(command, false, &[], self.timeout).await
    }

    /// [`execute`](Self::execute) with its own time limit.
    pub async fn execute_with_timeout<C: QmpCommand>(
        &self,
        command: &C,
        timeout: Duration,
    ) -> Result<C::Returns> {
        self.run(command, false, &[], Some(timeout)).await
    }

    /// Executes a command out of band (`exec-oob`): QEMU runs it at once,
    /// even while earlier commands are still running.  Needs
    /// [`QmpBuilder::oob`] and a command that allows it.
    pub async fn execute_oob<C: QmpCommand>(&self, command: &C) -> Result<C::Returns> {
        self.check_oob::<C>()?;
        self.run(command, true, &[], self.timeout).await
    }

    /// Executes a command with file descriptors attached (SCM_RIGHTS), as
    /// `getfd` and `add-fd` need.  Only over a Unix socket.  The
    /// descriptors are duplicated into QEMU; the caller keeps its own.
    pub async fn execute_with_fds<C: QmpCommand>(
        &self,
        command: &C,
        fds: &[BorrowedFd<'_>],
    ) -> Result<C::Returns> {
        self.run(command, false, fds, self.timeout).await
    }

    /// Executes a command by name with untyped arguments, for commands
    /// newer than the bindings.  Returns the raw `return` value.
    pub async fn execute_raw(
        &self,
        name: &str,
        arguments: Option<&serde_json::Value>,
    ) -> Result<serde_json::Value> {
        let expect_reply = qapi_types::command_codec(name).is_none_or(|c| c.success_response);
        crate::execute::execute_raw(
            &self.inner.engine,
            name,
            arguments,
            self.timeout,
            expect_reply,
        )
        .await
    }

    /// What this QEMU supports compared with the bindings: fetches
    /// `query-qmp-schema` once per session (about 240 KB) and keeps the
    /// report.  See [`SchemaReport`].
    pub async fn schema_report(&self) -> Result<Arc<SchemaReport>> {
        self.inner
            .report
            .get_or_try_init(|| async {
                let live = self.execute_raw("query-qmp-schema", None).await?;
                let v = &self.inner.greeting.version.qemu;
                let qemu = format!("QEMU {}.{}.{}", v.major, v.minor, v.micro);
                SchemaReport::new(&live.to_string(), &qemu).map(Arc::new)
            })
            .await
            .cloned()
    }

    /// Whether this QEMU has command `C` (from the cached
    /// [`schema_report`](Self::schema_report)).
    pub async fn supports<C: QmpCommand>(&self) -> Result<bool> {
        Ok(self.schema_report().await?.supports::<C>())
    }

    /// A new subscription to the session's events; see [`EventStream`] for
    /// what happens when it falls behind.  Events that arrived before the
    /// subscription are not in it (unless it is the first one and
    /// [`QmpBuilder::keep_early_events`] is on), so subscribe before the
    /// command that causes the events.
    pub fn events(&self) -> EventStream {
        self.inner.engine.subscribe()
    }

    /// [`events`](Self::events), but only those named `names` (wire names,
    /// such as `["STOP", "RESUME"]` or `[JobStatusChange::NAME]` with
    /// `qapi_types::Event` in scope).  Lag reports
    /// ([`Error::EventsLagged`]) still come through: they count events of
    /// every name.
    pub fn events_named<I, S>(&self, names: I) -> EventStream
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.events().only(names)
    }

    /// Ends the session now, for every clone: calls in flight fail with
    /// [`Error::Disconnected`] ("closed by the client"), later ones at
    /// once, event streams end once they have read what arrived before,
    /// and the connection is shut down, so QEMU sees the client go.  Does
    /// nothing if the session has ended already.  (Dropping the last clone
    /// also closes the connection.)
    pub fn close(&self) {
        self.inner.engine.close();
    }

    /// Resolves when the session ends, with the reason: QEMU exited or
    /// hung up ([`Error::Disconnected`]), broke the protocol, or
    /// [`close`](Self::close) was called.  It holds no reference to the
    /// session: it also resolves (`Disconnected`) when every clone has
    /// been dropped, and can be spawned or kept in a `select!`.
    pub fn closed(&self) -> impl Future<Output = Error> + Send + 'static {
        self.inner.engine.closed()
    }

    /// [`execute`](Self::execute) (`oob`: [`execute_oob`](Self::execute_oob))
    /// for the blocking client, with its time limit.
    pub(crate) fn execute_blocking<C: QmpCommand>(
        &self,
        command: &C,
        oob: bool,
        timeout: Option<Duration>,
        runtime: &tokio::runtime::Runtime,
    ) -> Result<C::Returns> {
        if oob {
            self.check_oob::<C>()?;
        }
        let _span = info_span!("qmp_execute", command = C::NAME).entered();
        crate::execute::execute_typed_blocking(
            &self.inner.engine,
            command,
            oob,
            timeout.or(self.timeout),
            runtime,
        )
    }

    fn check_oob<C: QmpCommand>(&self) -> Result<()> {
        if !self.inner.oob {
            return Err(Error::Unsupported(
                "out-of-band execution was not negotiated (QmpBuilder::oob)".into(),
            ));
        }
        if !C::ALLOW_OOB {
            return Err(Error::Unsupported(
                format!("{} cannot be executed out of band", C::NAME).into(),
            ));
        }
        Ok(())
    }

    async fn run<C: QmpCommand>(
        &self,
        command: &C,
        oob: bool,
        fds: &[BorrowedFd<'_>],
        timeout: Option<Duration>,
    ) -> Result<C::Returns> {
        crate::execute::execute_typed(
            &self.inner.engine,
            command,
            oob,
            fds,
            timeout,
            info_span!("qmp_execute", command = C::NAME),
        )
        .await
    }
}
