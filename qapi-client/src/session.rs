//! The protocol engine both clients share: one reader task that splits the
//! incoming stream into messages and routes replies to waiting calls by
//! `id` (and events to subscribers), and a writer that callers take turns
//! on.  QMP and the guest agent differ only in the handshake and in how
//! much they forgive (see [`Peer`]).

use std::any::Any;
use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::os::fd::BorrowedFd;
use std::os::unix::net::UnixStream as StdUnixStream;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::task::{ready, Context, Poll, Wake, Waker};
use std::time::Duration;

use rustix::net::SendFlags;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::runtime::Runtime;
use tokio::sync::{broadcast, oneshot, Notify};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, trace, warn};

use crate::error::{Error, QmpError, Result};
use crate::events::RawEvent;
use crate::framing::{Frame, Splitter};
use crate::unix::{UnixReader, UnixWriter};

/// Who is on the other end, which decides what a malformed message means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Peer {
    /// QEMU's monitor: trusted, so anything malformed means the stream is
    /// broken, and the session closes.
    Qmp,
    /// The guest agent: untrusted and resynchronisable, so junk and
    /// unparsable messages are dropped (and logged) and the session goes on;
    /// calls they should have answered time out.
    Qga,
}

impl Peer {
    fn name(self) -> &'static str {
        match self {
            Peer::Qmp => "QMP",
            Peer::Qga => "guest agent",
        }
    }
}

/// Settings the engine needs.
#[derive(Debug, Clone)]
pub(crate) struct EngineConfig {
    pub peer: Peer,
    pub event_capacity: usize,
    /// Lets blocking calls use the socket themselves (see
    /// [`Engine::call_blocking`]); only a Unix socket session can.
    pub direct: bool,
}

/// A message from the peer, as far as routing needs to understand it;
/// it borrows from the read buffer, so routing copies only the `return`
/// value it hands on.
#[derive(Debug, Deserialize)]
struct Incoming<'a> {
    #[serde(rename = "return", borrow, default, deserialize_with = "present")]
    ret: Option<&'a RawValue>,
    #[serde(borrow, default)]
    error: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    event: Option<Cow<'a, str>>,
    #[serde(rename = "QMP", borrow, default)]
    greeting: Option<&'a RawValue>,
}

/// The reply QEMU and qemu-ga send, as they write it:
/// `{"return": VALUE, "id": DIGITS}`.  Gives the value and the id when the
/// message has exactly that form and VALUE is one valid JSON value, so
/// that such a message means what the general parse of [`Incoming`] would
/// make of it; anything else is left to that parse.
/// (The parse of VALUE checks its UTF-8; the rest is ASCII.)  The reader
/// task takes such messages by their form alone ([`plain_reply_parts`])
/// and leaves this check to [`Engine::decode`].
#[cfg(test)]
fn plain_reply(bytes: &[u8]) -> Option<(&RawValue, u64)> {
    let (value, id) = plain_reply_parts(bytes)?;
    let value = serde_json::from_slice(value).ok()?;
    Some((value, id))
}

/// [`plain_reply`] without the check of VALUE: its bytes and the id.
#[inline]
fn plain_reply_parts(bytes: &[u8]) -> Option<(&[u8], u64)> {
    let rest = bytes.strip_prefix(PLAIN_REPLY_START)?.strip_suffix(b"}")?;
    let digits_start = rest.iter().rposition(|b| !b.is_ascii_digit())? + 1;
    let digits = &rest[digits_start..];
    if digits.is_empty() || (digits.len() > 1 && digits[0] == b'0') {
        return None;
    }
    let mut id: u64 = 0;
    for &digit in digits {
        id = id.checked_mul(10)?.checked_add(u64::from(digit - b'0'))?;
    }
    let value = rest[..digits_start].strip_suffix(b", \"id\": ")?;
    Some((value, id))
}

/// Keeps `null` as a present value, so `{"return": null}` is a reply.
fn present<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(deserializer).map(Some)
}

/// What a call receives: the `return` value, or the error reply.
pub(crate) type Reply = Result<ReturnValue>;

/// A successful reply's `return` value as a call receives it.
#[derive(Debug)]
pub(crate) enum ReturnValue {
    /// Taken out of the message by the general parse.
    Parsed(Box<RawValue>),
    /// A plain reply (see [`plain_reply_parts`]), the whole message, not
    /// parsed yet: its value is parsed once, by the caller's decoder, and
    /// only when that fails is the message parsed the general way (see
    /// [`Engine::decode`]), so a message that means something else is
    /// still read as the reader task would have read it.
    Plain(PlainReply),
}

/// A plain reply as the reader task found it (see [`plain_reply_parts`]):
/// a copy of the whole message, and where its value ends, so the caller
/// need not find it again.  A short one (a guest agent's
/// `{"return": {}, "id": N}`) is kept in place, which saves allocating it.
#[derive(Debug)]
pub(crate) enum PlainReply {
    Short {
        len: u8,
        value_end: u8,
        bytes: [u8; SHORT_MESSAGE],
    },
    Long {
        message: Box<[u8]>,
        value_end: usize,
    },
}

/// The longest message [`PlainReply`] keeps in place: a reply is then no
/// bigger than an error.
const SHORT_MESSAGE: usize = 48;

impl PlainReply {
    fn new(message: &[u8], value: &[u8]) -> PlainReply {
        let value_end = PLAIN_REPLY_START.len() + value.len();
        if message.len() <= SHORT_MESSAGE {
            let mut bytes = [0; SHORT_MESSAGE];
            bytes[..message.len()].copy_from_slice(message);
            PlainReply::Short {
                len: message.len() as u8,
                value_end: value_end as u8,
                bytes,
            }
        } else {
            PlainReply::Long {
                message: message.into(),
                value_end,
            }
        }
    }

    /// The whole message.
    fn message(&self) -> &[u8] {
        match self {
            PlainReply::Short { len, bytes, .. } => &bytes[..usize::from(*len)],
            PlainReply::Long { message, .. } => message,
        }
    }

    /// The value's bytes (after `{"return": `, before `, "id": `).
    fn value(&self) -> &[u8] {
        let end = match self {
            PlainReply::Short { value_end, .. } => usize::from(*value_end),
            PlainReply::Long { value_end, .. } => *value_end,
        };
        &self.message()[PLAIN_REPLY_START.len()..end]
    }
}

/// How a plain reply starts.
const PLAIN_REPLY_START: &[u8] = b"{\"return\": ";

impl ReturnValue {
    /// The value's text, when it can be had without parsing the message.
    fn text(&self) -> Option<&str> {
        match self {
            ReturnValue::Parsed(value) => Some(value.get()),
            ReturnValue::Plain(plain) => std::str::from_utf8(plain.value()).ok(),
        }
    }
}

/// What a [`MessageReader`] reads from: any async byte stream, or a Unix
/// socket watched for input only ([`UnixReader`]).
pub(crate) trait Source: Unpin {
    /// Reads into `buf`'s spare room; `Ok(0)` at the end of the stream.
    fn poll_read_into(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut Vec<u8>,
    ) -> Poll<std::io::Result<usize>>;
}

impl<R: AsyncRead + Unpin> Source for R {
    fn poll_read_into(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut Vec<u8>,
    ) -> Poll<std::io::Result<usize>> {
        std::future::Future::poll(std::pin::pin!(self.read_buf(buf)), cx)
    }
}

impl Source for UnixReader {
    fn poll_read_into(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut Vec<u8>,
    ) -> Poll<std::io::Result<usize>> {
        UnixReader::poll_read_into(self, cx, buf)
    }
}

/// Reads messages from the stream; used for the handshake, then moved
/// into the reader task.
pub(crate) struct MessageReader<R> {
    stream: R,
    splitter: Splitter,
    peer: Peer,
    /// The last read filled all the room it had.
    busy: bool,
}

/// One message read by [`MessageReader::next`].
pub(crate) enum Read {
    Message(Box<[u8]>),
    Sentinel,
}

/// One message read by [`MessageReader::next_borrowed`], still in the
/// read buffer.
enum Borrowed<'a> {
    Message(&'a [u8]),
    Sentinel,
}

impl<R: Source> MessageReader<R> {
    pub(crate) fn new(stream: R, peer: Peer, max_message_size: usize) -> Self {
        MessageReader {
            stream,
            splitter: Splitter::new(max_message_size),
            peer,
            busy: false,
        }
    }

    /// The next message or sentinel.  Junk between messages is skipped
    /// for the guest agent and an error for QMP.
    pub(crate) async fn next(&mut self) -> Result<Read> {
        Ok(match self.next_borrowed().await? {
            Borrowed::Message(bytes) => Read::Message(bytes.into()),
            Borrowed::Sentinel => Read::Sentinel,
        })
    }

    /// The next message or sentinel, without copying it out of the buffer.
    async fn next_borrowed(&mut self) -> Result<Borrowed<'_>> {
        loop {
            while let Some(frame) = self.splitter.next_frame() {
                match accept_frame(self.peer, frame)? {
                    Accepted::Message(range) => {
                        return Ok(Borrowed::Message(&self.splitter.buffer()[range]))
                    }
                    Accepted::Sentinel => return Ok(Borrowed::Sentinel),
                    Accepted::Skipped => {}
                }
            }
            let spare = prepare_read(&mut self.splitter, self.busy);
            let buf = self.splitter.buffer_mut();
            let stream = &mut self.stream;
            let n = std::future::poll_fn(|cx| stream.poll_read_into(cx, buf))
                .await
                .map_err(|e| Error::Disconnected {
                    reason: format!("read failed: {e}").into(),
                })?;
            self.busy = n == spare;
            if n == 0 {
                return Err(end_of_stream(&self.splitter));
            }
        }
    }
}

/// What a frame means for a reader.
enum Accepted {
    Message(std::ops::Range<usize>),
    Sentinel,
    /// Junk, skipped (guest agent only).
    Skipped,
}

/// Sorts a frame; an error when the session must close.
#[inline]
fn accept_frame(peer: Peer, frame: Frame) -> Result<Accepted> {
    match frame {
        Frame::Message(range) => Ok(Accepted::Message(range)),
        Frame::Sentinel => Ok(Accepted::Sentinel),
        Frame::Garbage { len } => {
            if peer == Peer::Qmp {
                return Err(Error::Protocol(
                    format!("{len} bytes of data that is not a JSON message").into(),
                ));
            }
            warn!(
                bytes = len,
                "guest agent sent data that is not JSON; skipped"
            );
            Ok(Accepted::Skipped)
        }
        Frame::TooLarge { limit } => Err(Error::MessageTooLarge { limit }),
    }
}

/// Makes room in the splitter's buffer for the next read and returns how
/// much there is.  Small reads while idle keep an idle session small; big
/// ones once data flows (a long message, a pipelined burst).
#[inline]
fn prepare_read(splitter: &mut Splitter, busy: bool) -> usize {
    splitter.compact();
    let in_message = splitter.in_message();
    let buf = splitter.buffer_mut();
    let want = if busy || in_message {
        BUSY_READ
    } else {
        if buf.is_empty() && buf.capacity() > 2 * IDLE_READ {
            buf.shrink_to(IDLE_READ);
        }
        IDLE_READ
    };
    buf.reserve(want);
    buf.capacity() - buf.len()
}

/// The error for a stream that ended.
fn end_of_stream(splitter: &Splitter) -> Error {
    let reason = if splitter.in_message() {
        "end of stream in the middle of a message"
    } else {
        "end of stream"
    };
    Error::Disconnected {
        reason: reason.into(),
    }
}

/// How much to read at a time while idle: most messages fit.
const IDLE_READ: usize = 4 * 1024;
/// How much to read at a time once a read has filled its buffer or a
/// message is unfinished (the 236 KB `query-qmp-schema` takes four).
const BUSY_READ: usize = 64 * 1024;

/// The write side of a connection.
pub(crate) enum Writer {
    /// A Unix socket, which can also carry file descriptors.
    Unix(UnixWriter),
    /// Any other stream.
    Stream(Box<dyn AsyncWrite + Send + Unpin>),
    /// Lent to a request sending file descriptors, which has the socket to
    /// itself meanwhile (nothing writes then).
    Lent,
    /// A Unix socket handed over to direct calls (see [`Lease`]): out of
    /// the runtime, so a write that would wait asks for it back.
    Direct {
        stream: Arc<StdUnixStream>,
        lease: Arc<Lease>,
    },
}

impl Writer {
    fn poll_write(&mut self, cx: &mut Context<'_>, bytes: &[u8]) -> Poll<std::io::Result<usize>> {
        match self {
            Writer::Unix(half) => half.poll_write(cx, bytes),
            Writer::Stream(stream) => Pin::new(stream).poll_write(cx, bytes),
            Writer::Lent => Poll::Ready(Err(std::io::Error::other("the socket is lent"))),
            Writer::Direct { stream, lease } => {
                match rustix::net::send(&**stream, bytes, SendFlags::NOSIGNAL | SendFlags::DONTWAIT)
                {
                    Ok(n) => Poll::Ready(Ok(n)),
                    Err(rustix::io::Errno::AGAIN) => {
                        lease.want_back(Some(cx.waker()));
                        Poll::Pending
                    }
                    Err(rustix::io::Errno::INTR) => {
                        cx.waker().wake_by_ref();
                        Poll::Pending
                    }
                    Err(e) => Poll::Ready(Err(e.into())),
                }
            }
        }
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self {
            Writer::Unix(_) | Writer::Lent | Writer::Direct { .. } => Poll::Ready(Ok(())),
            Writer::Stream(stream) => Pin::new(stream).poll_flush(cx),
        }
    }
}

/// The write side.  Callers encode their requests straight into `queued`.
/// A call with no other call in flight writes at once, without waiting.
/// Otherwise, or when the socket is full, the flusher task takes over
/// until `queued` is empty, and new requests only queue meanwhile: the
/// flusher lets the other ready tasks run first, so calls in flight
/// together share one write.  Bytes are written in the order they were
/// queued, so a request is never split by another, even when the call
/// that queued it is cancelled.
struct Outbox {
    writer: Writer,
    /// Bytes not yet written, oldest first.
    queued: Vec<u8>,
    /// The flusher task owns writing until `queued` is empty.
    handed_over: bool,
    /// A request with file descriptors is being sent on its own; others
    /// queue until it is done.
    exclusive: bool,
    /// Bytes ever queued and ever written: a request is out once
    /// `written` reaches the `queued_total` after it.
    queued_total: u64,
    written: u64,
    /// Set when a write failed; the session is closed then.
    failed: Option<Error>,
}

impl Outbox {
    /// Writes queued bytes until they are all out (`Ready(Ok)`), the
    /// socket is full (`Pending`) or writing fails.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        while !self.queued.is_empty() {
            match self.writer.poll_write(cx, &self.queued) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()))
                }
                Poll::Ready(Ok(n)) => {
                    self.queued.drain(..n);
                    self.written += n as u64;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        if self.queued.capacity() > MAX_IDLE_OUTBOX {
            self.queued = Vec::new();
        }
        self.writer.poll_flush(cx)
    }
}

/// The most an empty outbox keeps allocated (a large request's buffer is
/// given back once written).
const MAX_IDLE_OUTBOX: usize = 4 * 1024;

/// A waker that does nothing, for trying a write without waiting: when
/// the socket is full the flusher task polls again with its own waker.
fn noop_waker() -> &'static Waker {
    struct Noop;
    impl Wake for Noop {
        fn wake(self: Arc<Self>) {}
    }
    static WAKER: OnceLock<Waker> = OnceLock::new();
    WAKER.get_or_init(|| Waker::from(Arc::new(Noop)))
}

#[derive(Default)]
struct Calls {
    waiting: HashMap<u64, Waiting, BuildHasherDefault<IdHasher>>,
    /// The earliest deadline the deadline task is waiting for.
    next_deadline: Option<Instant>,
    /// Set once the session has ended; new calls fail with it at once.
    closed: Option<Error>,
}

/// A call waiting for its reply.
struct Waiting {
    sender: oneshot::Sender<Reply>,
    /// When the deadline task fails it (with [`timed_out`]).
    deadline: Option<Instant>,
}

/// What the deadline task sends a call whose time is up; the call turns
/// it into its own [`Error::Timeout`] (no reply is ever a timeout).
fn timed_out() -> Error {
    Error::Timeout {
        command: Arc::from(""),
        after: Duration::ZERO,
    }
}

/// Hashes request ids, which this side chooses (a reply's id is only
/// looked up), with one multiplication instead of SipHash.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(byte)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, id: u64) {
        self.0 = id.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// Event subscribers.  The channel is made on the first subscription, so
/// a session nobody listens to costs nothing for events (a broadcast
/// channel allocates all its slots up front).
struct Events {
    sender: Option<broadcast::Sender<Arc<RawEvent>>>,
    capacity: usize,
    closed: bool,
}

/// State shared by the handles and the reader and flusher tasks.
pub(crate) struct Shared {
    calls: Mutex<Calls>,
    next_id: AtomicU64,
    outbox: Mutex<Outbox>,
    /// Wakes the flusher task when writing is handed over to it.
    hand_over: Notify,
    /// Wakes the deadline task when a call has a deadline earlier than
    /// the one it waits for.
    earlier_deadline: Notify,
    /// Told when the outbox empties or fails, for calls that wait for
    /// their bytes to be out.
    drained: Notify,
    events: Mutex<Events>,
    peer: Peer,
    /// Set when blocking calls may use the socket directly.
    lease: Option<Arc<Lease>>,
}

/// The engine: shared state plus the reader, flusher and deadline tasks,
/// which it stops when the last handle is dropped.
pub(crate) struct Engine {
    pub(crate) shared: Arc<Shared>,
    reader: JoinHandle<()>,
    flusher: JoinHandle<()>,
    deadlines: JoinHandle<()>,
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.reader.abort();
        self.flusher.abort();
        self.deadlines.abort();
    }
}

/// A request ready to send.
pub(crate) struct Request<'a> {
    pub name: &'a str,
    /// The encoded `arguments` object, if any.
    pub arguments: Option<&'a [u8]>,
    pub oob: bool,
    pub fds: &'a [BorrowedFd<'a>],
    /// Bytes to send first, in the same write (the guest agent's 0xFF).
    pub prefix: &'a [u8],
    /// False for commands that answer only on failure.
    pub expect_reply: bool,
    pub timeout: Option<Duration>,
}

impl Engine {
    /// Starts the reader task on an already-handshaken stream.
    pub(crate) fn start<R>(
        reader: MessageReader<R>,
        writer: Writer,
        config: &EngineConfig,
    ) -> Engine
    where
        R: Source + Send + 'static,
    {
        // A direct session needs the Unix socket's own halves, to take
        // the socket out of the runtime and back, and an eventfd (without
        // one, out of descriptors, it goes without direct calls).
        let mut reader = Some(reader);
        let unix = config.direct
            && matches!(writer, Writer::Unix(_))
            && (&reader as &dyn Any).is::<Option<MessageReader<UnixReader>>>();
        let lease = if unix {
            Lease::new().ok().map(Arc::new)
        } else {
            None
        };
        let unix_reader = if lease.is_some() {
            (&mut reader as &mut dyn Any)
                .downcast_mut::<Option<MessageReader<UnixReader>>>()
                .and_then(Option::take)
        } else {
            None
        };
        let shared = Arc::new(Shared {
            calls: Mutex::new(Calls::default()),
            next_id: AtomicU64::new(random_id_base()),
            outbox: Mutex::new(Outbox {
                writer,
                queued: Vec::new(),
                handed_over: false,
                exclusive: false,
                queued_total: 0,
                written: 0,
                failed: None,
            }),
            hand_over: Notify::new(),
            earlier_deadline: Notify::new(),
            drained: Notify::new(),
            events: Mutex::new(Events {
                sender: None,
                capacity: config.event_capacity.max(1),
                closed: false,
            }),
            peer: config.peer,
            lease,
        });
        let reader = match (unix_reader, reader) {
            (Some(unix_reader), _) => {
                tokio::spawn(read_loop_direct(unix_reader, Arc::clone(&shared)))
            }
            (None, Some(reader)) => tokio::spawn(read_loop(reader, Arc::clone(&shared))),
            // The reader is in exactly one of the two.
            (None, None) => tokio::spawn(async {}),
        };
        let flusher = tokio::spawn(flush_loop(Arc::clone(&shared)));
        let deadlines = tokio::spawn(watch_deadlines(Arc::clone(&shared)));
        Engine {
            shared,
            reader,
            flusher,
            deadlines,
        }
    }

    /// Sends a request and waits for its reply (or only for the write, for
    /// a command that does not answer on success).
    ///
    /// A call that only waits for its reply leaves its time limit to the
    /// session's deadline task, which saves a timer per call; the others
    /// (no reply, file descriptors) also wait to write, under a timer.
    pub(crate) async fn call(&self, request: Request<'_>) -> Reply {
        let timeout = |after| Error::Timeout {
            command: request.name.into(),
            after,
        };
        match request.timeout {
            Some(after) if request.expect_reply && request.fds.is_empty() => {
                match self
                    .call_untimed(&request, Some(Instant::now() + after))
                    .await
                {
                    Err(Error::Timeout { .. }) => Err(timeout(after)),
                    reply => reply,
                }
            }
            // Boxed, like the other rare paths below: a call's future is
            // built and moved on every call, and stays small without them.
            Some(after) => Box::pin(tokio::time::timeout(
                after,
                self.call_untimed(&request, None),
            ))
            .await
            .unwrap_or_else(|_| Err(timeout(after))),
            None => self.call_untimed(&request, None).await,
        }
    }

    async fn call_untimed(&self, request: &Request<'_>, deadline: Option<Instant>) -> Reply {
        let shared = &self.shared;
        if let Some(lease) = &shared.lease {
            // This call waits for the reader task, which must have the
            // socket for that.
            lease.want_back_if_lent();
        }
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
        // Forgets the call if this future is dropped (timeout, cancel).
        let (registration, in_flight) = if request.expect_reply {
            let (registration, in_flight) = Registration::new(shared, id, deadline)?;
            (Some(registration), in_flight)
        } else {
            (None, 0)
        };
        if request.fds.is_empty() {
            let (end, written) = shared.send(request, id, &IdText::new(id), in_flight > 1)?;
            if registration.is_none() && !written {
                Box::pin(shared.wait_written(end)).await?;
            }
        } else {
            Box::pin(shared.send_with_fds(request, id)).await?;
        }
        match registration {
            Some(mut registration) => match (&mut registration.receiver).await {
                Ok(reply) => {
                    registration.delivered();
                    reply
                }
                Err(_) => Err(shared.closed_error()),
            },
            None => Ok(ReturnValue::Parsed(
                RawValue::from_string("{}".to_owned()).expect("literal JSON"),
            )),
        }
    }

    /// A new receiver of events; ends at once if the session has closed.
    pub(crate) fn subscribe(&self) -> Option<broadcast::Receiver<Arc<RawEvent>>> {
        let mut events = self.shared.events.lock().unwrap_or_else(|e| e.into_inner());
        if events.closed {
            return None;
        }
        let capacity = events.capacity;
        let sender = events
            .sender
            .get_or_insert_with(|| broadcast::channel(capacity).0);
        Some(sender.subscribe())
    }

    /// Whether the session has ended.
    pub(crate) fn is_closed(&self) -> bool {
        let calls = self.shared.calls.lock().unwrap_or_else(|e| e.into_inner());
        calls.closed.is_some()
    }
}

impl Engine {
    /// Decodes a call's `return` value as `T`; errors name the command and
    /// the JSON path.
    ///
    /// A plain reply's value is decoded straight from the message.  When
    /// that fails, the message is parsed the general way first, as the
    /// reader task does with any other message: a value that is not JSON,
    /// or a message that only looked like a plain reply, is then what it
    /// would have been there (a protocol error, which ends a QMP session;
    /// members after the value that a newer QEMU might add are ignored).
    pub(crate) fn decode<T: DeserializeOwned>(
        &self,
        command: &str,
        reply: &ReturnValue,
    ) -> Result<T> {
        if let Some(value) = reply
            .text()
            .and_then(|text| serde_json::from_str(text).ok())
        {
            return Ok(value);
        }
        let parsed;
        let value = match reply {
            ReturnValue::Parsed(value) => value,
            ReturnValue::Plain(plain) => {
                parsed = self.shared.reparse(plain.message())?;
                &parsed
            }
        };
        decode_with_path(command, value)
    }
}

/// Decodes `value` as `T`, tracking the JSON path for the error (a second
/// pass, after a plain decode failed).
fn decode_with_path<T: DeserializeOwned>(command: &str, value: &RawValue) -> Result<T> {
    let mut deserializer = serde_json::Deserializer::from_str(value.get());
    serde_path_to_error::deserialize(&mut deserializer).map_err(|e| Error::Decode {
        command: command.into(),
        path: e.path().to_string(),
        message: e.into_inner().to_string(),
    })
}

struct CallGuard<'a> {
    shared: &'a Shared,
    id: u64,
}

impl Drop for CallGuard<'_> {
    fn drop(&mut self) {
        let mut calls = self.shared.calls.lock().unwrap_or_else(|e| e.into_inner());
        calls.waiting.remove(&self.id);
    }
}

impl Shared {
    /// Registers a call waiting for its reply (and its deadline with the
    /// deadline task); returns the number of calls in flight.
    #[inline]
    fn register(
        &self,
        id: u64,
        sender: oneshot::Sender<Reply>,
        deadline: Option<Instant>,
    ) -> Result<usize> {
        let mut calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(error) = &calls.closed {
            return Err(error.clone());
        }
        calls.waiting.insert(id, Waiting { sender, deadline });
        let in_flight = calls.waiting.len();
        if let Some(deadline) = deadline {
            if calls.next_deadline.is_none_or(|next| deadline < next) {
                calls.next_deadline = Some(deadline);
                drop(calls);
                self.earlier_deadline.notify_one();
            }
        }
        Ok(in_flight)
    }

    fn lock_outbox(&self) -> MutexGuard<'_, Outbox> {
        self.outbox.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a request and, unless the flusher owns writing or `batch`
    /// (other calls are in flight) hands it over, writes what is queued
    /// without waiting.  Returns the position the request ends at (see
    /// [`Outbox::written`]) and whether it is written already.
    fn send(
        &self,
        request: &Request<'_>,
        id: u64,
        id_text: &IdText,
        batch: bool,
    ) -> Result<(u64, bool)> {
        let mut outbox = self.lock_outbox();
        if let Some(error) = &outbox.failed {
            return Err(error.clone());
        }
        let before = outbox.queued.len();
        if let Err(error) = encode_request(&mut outbox.queued, request, id_text) {
            outbox.queued.truncate(before);
            return Err(error);
        }
        let added = &outbox.queued[before..];
        trace!(
            peer = self.peer.name(),
            id,
            request = %String::from_utf8_lossy(&added[request.prefix.len()..]),
            "send"
        );
        outbox.queued_total += added.len() as u64;
        let end = outbox.queued_total;
        if outbox.handed_over || outbox.exclusive {
            return Ok((end, false));
        }
        if let Writer::Unix(writer) = &mut outbox.writer {
            // Nothing waits for room: writing is not handed over.
            writer.calls_in_flight(batch);
        }
        if batch {
            outbox.handed_over = true;
            drop(outbox);
            self.hand_over.notify_one();
            return Ok((end, false));
        }
        match outbox.poll_drain(&mut Context::from_waker(noop_waker())) {
            Poll::Ready(Ok(())) => Ok((end, true)),
            Poll::Pending => {
                outbox.handed_over = true;
                drop(outbox);
                self.hand_over.notify_one();
                Ok((end, false))
            }
            Poll::Ready(Err(e)) => {
                drop(outbox);
                Err(self.write_failed(e))
            }
        }
    }

    /// Waits until the bytes up to `end` are written.
    async fn wait_written(&self, end: u64) -> Result<()> {
        loop {
            let drained = self.drained.notified();
            tokio::pin!(drained);
            drained.as_mut().enable();
            {
                let outbox = self.lock_outbox();
                if outbox.written >= end {
                    return Ok(());
                }
                if let Some(error) = &outbox.failed {
                    return Err(error.clone());
                }
            }
            drained.await;
        }
    }

    /// Sends a request with file descriptors in one `sendmsg` of its own,
    /// once everything queued before it is out.
    async fn send_with_fds(&self, request: &Request<'_>, id: u64) -> Result<()> {
        let mut bytes = Vec::new();
        encode_request(&mut bytes, request, &IdText::new(id))?;
        trace!(peer = self.peer.name(), id, request = %String::from_utf8_lossy(&bytes), "send");
        // Take the socket for this request alone.
        loop {
            let drained = self.drained.notified();
            tokio::pin!(drained);
            drained.as_mut().enable();
            {
                let mut outbox = self.lock_outbox();
                if let Some(error) = &outbox.failed {
                    return Err(error.clone());
                }
                if matches!(outbox.writer, Writer::Stream(_)) {
                    return Err(Error::Unsupported(
                        "file descriptors can only be passed over a Unix socket".into(),
                    ));
                }
                if outbox.queued.is_empty()
                    && !outbox.handed_over
                    && !outbox.exclusive
                    && matches!(outbox.writer, Writer::Unix(_))
                {
                    outbox.exclusive = true;
                    break;
                }
                if let Some(lease) = &self.lease {
                    // Handed over to direct calls: the reader task takes
                    // it back and tells `drained`.
                    lease.want_back(None);
                }
            }
            drained.await;
        }
        let writer = std::mem::replace(&mut self.lock_outbox().writer, Writer::Lent);
        // Put back when this is done or cancelled.
        let mut exclusive = Exclusive {
            shared: self,
            writer: Some(writer),
        };
        let Some(Writer::Unix(half)) = &mut exclusive.writer else {
            return Err(Error::Unsupported(
                "file descriptors can only be passed over a Unix socket".into(),
            ));
        };
        half.send_with_fds(&bytes, request.fds)
            .await
            .map_err(|e| self.write_failed(e))
    }

    /// A write failed: the stream is broken, so the session ends; calls
    /// waiting for their bytes or replies fail.
    fn write_failed(&self, error: std::io::Error) -> Error {
        let error = Error::Disconnected {
            reason: format!("write failed: {error}").into(),
        };
        self.lock_outbox().failed.get_or_insert(error.clone());
        self.drained.notify_waiters();
        self.close(error.clone());
        error
    }

    fn closed_error(&self) -> Error {
        let calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        calls.closed.clone().unwrap_or_else(|| Error::Disconnected {
            reason: "session ended".into(),
        })
    }

    /// Ends the session: fails every waiting call with `error` and ends
    /// the event streams.
    fn close(&self, error: Error) {
        debug!(peer = self.peer.name(), %error, "session closed");
        let waiting = {
            let mut calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
            calls.closed.get_or_insert(error.clone());
            std::mem::take(&mut calls.waiting)
        };
        for (_, waiting) in waiting {
            let _ = waiting.sender.send(Err(error.clone()));
        }
        let mut events = self.events.lock().unwrap_or_else(|e| e.into_inner());
        events.closed = true;
        events.sender = None;
        drop(events);
        self.lock_outbox().failed.get_or_insert(error);
        self.drained.notify_waiters();
        if let Some(lease) = &self.lease {
            lease.kick();
        }
    }

    fn deliver(&self, id: u64, reply: Reply) {
        let waiting = {
            let mut calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
            calls.waiting.remove(&id)
        };
        match waiting {
            Some(waiting) => {
                let _ = waiting.sender.send(reply);
            }
            None => debug!(
                peer = self.peer.name(),
                id, "reply for no waiting call (abandoned, duplicate or unsolicited); dropped"
            ),
        }
    }

    /// Routes one message.  An error means the session must close.
    fn route(&self, bytes: &[u8]) -> Result<()> {
        trace!(peer = self.peer.name(), message = %String::from_utf8_lossy(bytes), "receive");
        if let Some((value, id)) = plain_reply_parts(bytes) {
            // Checked when decoded (see `ReturnValue::Plain`).
            self.deliver(id, Ok(ReturnValue::Plain(PlainReply::new(bytes, value))));
            return Ok(());
        }
        // Checked once here, so the parser need not check each string.
        let text = match std::str::from_utf8(bytes) {
            Ok(text) => text,
            Err(error) => return self.malformed(format!("message is not UTF-8: {error}")),
        };
        let incoming: Incoming = match serde_json::from_str(text) {
            Ok(incoming) => incoming,
            Err(error) => return self.malformed(format!("message is not valid JSON: {error}")),
        };
        if let Some(event) = incoming.event {
            let raw = RawEvent::new(event.into_owned(), bytes);
            match raw {
                Ok(raw) => {
                    let events = self.events.lock().unwrap_or_else(|e| e.into_inner());
                    if let Some(events) = &events.sender {
                        // No subscriber is not an error: nobody asked.
                        let _ = events.send(Arc::new(raw));
                    }
                }
                Err(error) => return self.malformed(error),
            }
            return Ok(());
        }
        let reply = match (incoming.ret, incoming.error) {
            (Some(ret), None) => Ok(ReturnValue::Parsed(ret.to_owned())),
            (None, Some(error)) => match serde_json::from_str::<QmpError>(error.get()) {
                Ok(error) => Err(Error::Qmp(error)),
                Err(e) => return self.malformed(format!("malformed error reply: {e}")),
            },
            _ if incoming.greeting.is_some() => {
                return self.malformed("a second greeting".to_owned());
            }
            _ => return self.malformed("neither a reply nor an event".to_owned()),
        };
        let id = incoming.id.and_then(|id| id.get().parse::<u64>().ok());
        match id {
            Some(id) => self.deliver(id, reply),
            None => {
                // QEMU answers a request it cannot parse without an id;
                // the guest agent answers our 0xFF that way.
                debug!(peer = self.peer.name(), reply = ?reply.err(), "reply without our id; dropped");
            }
        }
        Ok(())
    }

    /// The general parse of a message delivered as a plain reply whose
    /// value did not decode: its `return` value, or the protocol error the
    /// reader task would have found (which ends a QMP session, as there).
    fn reparse(&self, message: &[u8]) -> Result<Box<RawValue>> {
        let parsed = std::str::from_utf8(message)
            .map_err(|error| format!("message is not UTF-8: {error}"))
            .and_then(|text| {
                serde_json::from_str::<Incoming>(text)
                    .map_err(|error| format!("message is not valid JSON: {error}"))
            })
            .and_then(|incoming| match incoming {
                Incoming {
                    ret: Some(ret),
                    error: None,
                    event: None,
                    greeting: None,
                    ..
                } => Ok(ret.to_owned()),
                _ => Err("a reply whose members do not fit together".to_owned()),
            });
        parsed.map_err(|what| {
            let error = Error::Protocol(what.into());
            match self.peer {
                Peer::Qmp => self.close(error.clone()),
                Peer::Qga => warn!("guest agent sent a bad reply ({error})"),
            }
            error
        })
    }

    fn malformed(&self, what: String) -> Result<()> {
        match self.peer {
            Peer::Qmp => Err(Error::Protocol(what.into())),
            Peer::Qga => {
                warn!("guest agent sent a bad message ({what}); dropped");
                Ok(())
            }
        }
    }
}

/// Ends a request's exclusive hold of the socket (also when its call is
/// cancelled) and hands what queued meanwhile to the flusher.
struct Exclusive<'a> {
    shared: &'a Shared,
    writer: Option<Writer>,
}

impl Drop for Exclusive<'_> {
    fn drop(&mut self) {
        let mut outbox = self.shared.lock_outbox();
        if let Some(writer) = self.writer.take() {
            outbox.writer = writer;
        }
        outbox.exclusive = false;
        let stalled = !outbox.queued.is_empty();
        outbox.handed_over |= stalled;
        drop(outbox);
        if stalled {
            self.shared.hand_over.notify_one();
        }
        self.shared.drained.notify_waiters();
    }
}

/// Goes to the back of the run queue once.  Unlike
/// `tokio::task::yield_now`, which waits until the runtime has also polled
/// its I/O driver (one more `epoll_wait` for every batch), this only lets
/// the tasks that are ready run first.
fn yield_once() -> impl std::future::Future<Output = ()> {
    let mut yielded = false;
    std::future::poll_fn(move |cx| {
        if yielded {
            return Poll::Ready(());
        }
        yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    })
}

/// Writes what is handed over to it, waiting for room when the socket is
/// full.
async fn flush_loop(shared: Arc<Shared>) {
    loop {
        shared.hand_over.notified().await;
        // Let the other tasks that are ready queue their requests first.
        yield_once().await;
        let drained = std::future::poll_fn(|cx| {
            let mut outbox = shared.lock_outbox();
            if !outbox.handed_over || outbox.exclusive || outbox.failed.is_some() {
                return Poll::Ready(Ok(()));
            }
            let drained = ready!(outbox.poll_drain(cx));
            outbox.handed_over = false;
            Poll::Ready(drained)
        })
        .await;
        match drained {
            Ok(()) => shared.drained.notify_waiters(),
            Err(e) => {
                shared.write_failed(e);
                return;
            }
        }
    }
}

/// Fails the calls whose deadline has passed: one timer for the session
/// instead of one per call.  It sleeps until the earliest deadline; calls
/// that end before theirs just leave the map, so it mostly wakes once per
/// time limit, to find the next earliest.
async fn watch_deadlines(shared: Arc<Shared>) {
    let sleep = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(sleep);
    loop {
        let next = shared
            .calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .next_deadline;
        let Some(next) = next else {
            shared.earlier_deadline.notified().await;
            continue;
        };
        if next > Instant::now() {
            sleep.as_mut().reset(next);
            tokio::select! {
                () = &mut sleep => {}
                () = shared.earlier_deadline.notified() => continue,
            }
        }
        let now = Instant::now();
        let expired: Vec<Waiting> = {
            let mut calls = shared.calls.lock().unwrap_or_else(|e| e.into_inner());
            let mut due = Vec::new();
            let mut earliest: Option<Instant> = None;
            for (&id, waiting) in &calls.waiting {
                match waiting.deadline {
                    Some(deadline) if deadline <= now => due.push(id),
                    Some(deadline) => {
                        earliest = Some(earliest.map_or(deadline, |e| e.min(deadline)));
                    }
                    None => {}
                }
            }
            calls.next_deadline = earliest;
            due.iter()
                .filter_map(|id| calls.waiting.remove(id))
                .collect()
        };
        let any = !expired.is_empty();
        for waiting in expired {
            let _ = waiting.sender.send(Err(timed_out()));
        }
        if let (true, Some(lease)) = (any, &shared.lease) {
            // A direct call may be among them, waiting in `poll`.
            lease.kick();
        }
    }
}

async fn read_loop<R: Source>(mut reader: MessageReader<R>, shared: Arc<Shared>) {
    let error = loop {
        if let Err(error) = read_one(&mut reader, &shared).await {
            break error;
        }
    };
    shared.close(error);
}

// ---- Direct calls --------------------------------------------------------
//
// A blocking call on an async engine costs the thread it runs on a wake-up
// from the runtime's worker, and the worker an `epoll_wait` before it can
// read: for a fast peer most of a round trip.  A blocking session on a Unix
// socket can instead hand the socket over to the calling thread, which
// writes its request and waits in `poll` itself, as a plain blocking loop
// would, routing whatever arrives (other calls' replies, events) through
// the same [`Shared::route`] as the reader task.
//
// The socket is then out of the runtime altogether (deregistered from its
// epoll), because a worker parked in `epoll_wait` on it would be woken by
// every message too, which costs more than direct calls save.  So:
//
// - The reader task hands the socket over only when asked by a blocking
//   call while the session is quiet (nothing queued to write, no call in
//   flight, no file descriptors being sent); it gives its read buffer with
//   it, so a partial message carries over.
// - It stays handed over while blocking calls keep coming (one each time:
//   a [`Holder::InCall`] at a time; a second thread meanwhile goes the
//   async way, and the thread that has the socket routes its reply).
//   When calls compete (a second thread, a call through the runtime, a
//   refused handover), blocking calls go through the runtime for
//   [`DIRECT_BACKOFF`] rather than pass the socket back and forth.
// - The reader task takes it back, with the read buffer, once no direct
//   call has run for a tick ([`DIRECT_TICK`]), so events and the end of
//   the stream are noticed at most a few milliseconds later than with the
//   reader task alone; and at once when anything needs the runtime to have
//   it: an async call, a write that would wait, file descriptors to send.
// - A direct call waits in `poll` on the socket and an eventfd, which is
//   kicked when the socket is wanted back (it then hands it back and waits
//   for its reply the async way), when the call's deadline passes (the
//   session's deadline task keeps time for direct calls too) and when the
//   session closes.
//
// Why this is safe:
//
// - One reader at a time: the reader task or the one direct call that
//   holds the [`DirectSide`], and the read buffer moves with the socket, so
//   messages are split and routed in stream order, each once; events and
//   replies keep their order, and the same size limit bounds the buffer.
// - Writes keep going through the outbox under its lock, whoever has the
//   socket; a direct call's request is written at once or, if the socket
//   is full, left to the flusher, and the call gives the socket back so
//   that the runtime can wait for room.
// - A direct call holds the socket through a [`Lent`] guard that gives it
//   back on every exit, a panic included, and the reader task can always
//   take it back from [`Holder::Idle`]; a blocking call cannot be
//   cancelled, and its time limit is the deadline task's, as for async
//   calls, so a peer that floods the socket or falls silent cannot hold it
//   past its time (the call looks at its channel after every read).
// - The socket is only deregistered and registered again by the reader
//   task, in the runtime; a direct call uses it only through `poll`,
//   `recv` and (via the outbox) `send`, all non-blocking but the `poll`.
//
// Lock order: `Lease::state`, then `Shared::outbox` and `Shared::calls`;
// `Lease::writer_waker` is taken with nothing else (a leaf).

/// How often the reader task looks whether direct calls still use the
/// socket; it takes it back once a tick has passed without one.
const DIRECT_TICK: Duration = Duration::from_millis(2);
/// How long blocking calls go through the runtime after they found the
/// socket contended (see [`LeaseState::contended`]).
const DIRECT_BACKOFF: Duration = Duration::from_millis(20);
/// How long a blocking call waits for the reader task to hand the socket
/// over before it goes the async way.
const HANDOVER_WAIT: Duration = Duration::from_millis(200);

/// Who has a direct session's socket; see above.
pub(crate) struct Lease {
    state: Mutex<LeaseState>,
    /// Told when the reader task has answered a request for the socket.
    answered: Condvar,
    /// Wakes the reader task: the socket is asked for or wanted back.
    wake_reader: Notify,
    /// The runtime needs the socket back.
    release: std::sync::atomic::AtomicBool,
    /// The flusher, waiting for the socket to come back.
    writer_waker: Mutex<Option<Waker>>,
    /// An eventfd that wakes a direct call from its `poll`: the socket is
    /// wanted back, a deadline passed, or the session closed.
    kick: rustix::fd::OwnedFd,
}

struct LeaseState {
    holder: Holder,
    /// A direct call ran since the reader task last looked.
    used: bool,
    /// No direct calls until then (see [`LeaseState::contended`]).
    backoff_until: Option<std::time::Instant>,
}

enum Holder {
    /// The reader task reads; `asked` when a blocking call wants the socket.
    Engine { asked: bool },
    /// Handed over; no call is using it.
    Idle(Box<DirectSide>),
    /// A direct call is using it.
    InCall,
}

/// The socket and read state while direct calls have them.
struct DirectSide {
    stream: Arc<StdUnixStream>,
    splitter: Splitter,
    busy: bool,
    peer: Peer,
}

impl Lease {
    fn new() -> std::io::Result<Lease> {
        use rustix::event::EventfdFlags;
        let kick = rustix::event::eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?;
        Ok(Lease {
            state: Mutex::new(LeaseState {
                holder: Holder::Engine { asked: false },
                used: false,
                backoff_until: None,
            }),
            answered: Condvar::new(),
            wake_reader: Notify::new(),
            release: std::sync::atomic::AtomicBool::new(false),
            writer_waker: Mutex::new(None),
            kick,
        })
    }

    /// Wakes a direct call waiting in `poll` (or makes the next one
    /// return at once, which costs only a second look).
    fn kick(&self) {
        let _ = rustix::io::write(&self.kick, &1u64.to_ne_bytes());
    }

    fn lock(&self) -> MutexGuard<'_, LeaseState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Asks for the socket back in the runtime (a no-op while it is
    /// there); `waker` is woken once it is.  Takes no lock but the leaf
    /// `writer_waker`, so it may be called with the outbox locked.
    fn want_back(&self, waker: Option<&Waker>) {
        if let Some(waker) = waker {
            let mut slot = self.writer_waker.lock().unwrap_or_else(|e| e.into_inner());
            match &*slot {
                Some(old) if old.will_wake(waker) => {}
                _ => *slot = Some(waker.clone()),
            }
        }
        if !self.release.swap(true, Ordering::AcqRel) {
            self.wake_reader.notify_one();
            self.kick();
        }
    }

    /// [`want_back`](Self::want_back) unless the reader task has the
    /// socket.  (Should a direct call take it right after this looked, it
    /// sees this call waiting when it ends and gives the socket back.)
    fn want_back_if_lent(&self) {
        let mut state = self.lock();
        if !matches!(state.holder, Holder::Engine { .. }) {
            state.contended();
            drop(state);
            self.want_back(None);
        }
    }

    /// The socket for one direct call, if the session is quiet and the
    /// reader task hands it over (or already has).
    fn take<'a>(&'a self, shared: &'a Shared) -> Option<Lent<'a>> {
        let mut state = self.lock();
        if let Some(until) = state.backoff_until {
            if std::time::Instant::now() < until {
                return None;
            }
            state.backoff_until = None;
        }
        // Whether the session is quiet enough is the reader task's to
        // judge when it hands the socket over; once handed over, anything
        // that needs the runtime sets `release`.
        if self.release.load(Ordering::Acquire) {
            state.contended();
            return None;
        }
        let mut give_up = None;
        let mut asked = false;
        loop {
            match &mut state.holder {
                Holder::Idle(_) => {
                    let Holder::Idle(side) = std::mem::replace(&mut state.holder, Holder::InCall)
                    else {
                        return None;
                    };
                    state.used = true;
                    return Some(Lent {
                        lease: self,
                        shared,
                        side: Some(side),
                    });
                }
                Holder::Engine { asked: true } => {}
                // Another thread's direct call.
                Holder::InCall => {
                    state.contended();
                    return None;
                }
                // Asked, and refused: the session was not quiet.
                Holder::Engine { asked: false } if asked => {
                    state.contended();
                    return None;
                }
                Holder::Engine { asked: flag } => {
                    *flag = true;
                    asked = true;
                    self.wake_reader.notify_one();
                }
            }
            let now = std::time::Instant::now();
            let give_up = *give_up.get_or_insert(now + HANDOVER_WAIT);
            if now >= give_up {
                if let Holder::Engine { asked } = &mut state.holder {
                    *asked = false;
                }
                state.contended();
                return None;
            }
            state = self
                .answered
                .wait_timeout(state, give_up - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

impl LeaseState {
    /// Calls from other threads or through the runtime compete for the
    /// socket: blocking calls go through the runtime for a while rather
    /// than hand the socket back and forth, which costs more than direct
    /// calls save.
    fn contended(&mut self) {
        self.backoff_until = Some(std::time::Instant::now() + DIRECT_BACKOFF);
    }
}

/// The socket lent to one direct call; given back when dropped, also on
/// an early return or a panic, so the reader task can always take it back.
struct Lent<'a> {
    lease: &'a Lease,
    shared: &'a Shared,
    side: Option<Box<DirectSide>>,
}

impl Lent<'_> {
    fn side(&mut self) -> Option<&mut DirectSide> {
        self.side.as_deref_mut()
    }

    /// Gives the socket back (idle), asking the reader task to take it if
    /// the runtime needs it: other calls wait for replies, or it was asked.
    fn give_back(&mut self) {
        let Some(side) = self.side.take() else {
            return;
        };
        let others_waiting = !self
            .shared
            .calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .waiting
            .is_empty();
        let mut state = self.lease.lock();
        state.holder = Holder::Idle(side);
        state.used = true;
        drop(state);
        if others_waiting {
            self.lease.want_back(None);
        }
    }
}

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        self.give_back();
    }
}

impl DirectSide {
    /// Waits for data or a kick ([`Lease::kick`]), then reads once and
    /// routes every whole message.  An error means the session ends.
    ///
    /// `poll` without a time limit: a time limit would cost a
    /// high-resolution timer per call, which on a VM is dearer than the
    /// rest of the call; deadlines come as kicks from the deadline task.
    /// (`poll` rather than a blocking `recv`: a thread blocked in `recv`
    /// on a Unix socket also wakes whenever the peer reads what this side
    /// wrote, while `poll` for input ignores that.)
    ///
    /// `take` sees every message first; a message it takes (returns true
    /// for) is not routed.  Returns whether it read anything.
    fn read_some(
        &mut self,
        shared: &Shared,
        lease: &Lease,
        how: DirectRead,
        take: &mut impl FnMut(&[u8]) -> bool,
    ) -> Result<bool> {
        let first = match how {
            DirectRead::Wait => None,
            DirectRead::LookFirst | DirectRead::Look => self.recv_now()?,
        };
        let n = match first {
            Some(n) => n,
            None => {
                if how == DirectRead::Look || !self.wait(lease)? {
                    return Ok(false);
                }
                match self.recv_now()? {
                    Some(n) => n,
                    None => return Ok(false),
                }
            }
        };
        if n == 0 {
            return Err(end_of_stream(&self.splitter));
        }
        // The reply this call waits for usually comes alone, on one line:
        // `take` parses it whole, so the structural scan can be skipped
        // (see `Splitter::take_line`).
        self.splitter.take_line(|line| take(line));
        while let Some(frame) = self.splitter.next_frame() {
            match accept_frame(self.peer, frame)? {
                Accepted::Message(range) => {
                    let bytes = &self.splitter.buffer()[range];
                    if !take(bytes) {
                        shared.route(bytes)?;
                    }
                }
                Accepted::Sentinel => sentinel(self.peer)?,
                Accepted::Skipped => {}
            }
        }
        Ok(true)
    }
}

/// How [`DirectSide::read_some`] reads.
#[derive(Clone, Copy, PartialEq, Eq)]
enum DirectRead {
    /// Only what is there already.
    Look,
    /// What is there, or else wait: the reply is often there already (the
    /// peer ran while this thread was sending), and reading before waiting
    /// saves the `poll`.
    LookFirst,
    /// Wait first: a look just found nothing.
    Wait,
}

impl DirectSide {
    /// Reads what the socket holds without waiting: `None` when it holds
    /// nothing (or the read was interrupted), `Some(0)` at the end.
    fn recv_now(&mut self) -> Result<Option<usize>> {
        let spare = prepare_read(&mut self.splitter, self.busy);
        let buf = rustix::buffer::spare_capacity(self.splitter.buffer_mut());
        match rustix::net::recv(&*self.stream, buf, rustix::net::RecvFlags::DONTWAIT) {
            Ok((n, _)) => {
                self.busy = n == spare;
                Ok(Some(n))
            }
            Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR) => Ok(None),
            Err(e) => Err(Error::Disconnected {
                reason: format!("read failed: {e}").into(),
            }),
        }
    }

    /// Waits in `poll` for data or a kick ([`Lease::kick`]); says whether
    /// there is data.
    fn wait(&self, lease: &Lease) -> Result<bool> {
        use rustix::event::{PollFd, PollFlags};
        let mut fds = [
            PollFd::new(&*self.stream, PollFlags::IN),
            PollFd::new(&lease.kick, PollFlags::IN),
        ];
        match rustix::event::poll(&mut fds, None) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => return Ok(false),
            Err(e) => {
                return Err(Error::Disconnected {
                    reason: format!("poll failed: {e}").into(),
                })
            }
        }
        if !fds[1].revents().is_empty() {
            let mut count = [0u8; 8];
            // Resets the counter (non-blocking; nothing to do if empty).
            let _ = rustix::io::read(&lease.kick, &mut count);
        }
        Ok(!fds[0].revents().is_empty())
    }
}

/// What a 0xFF byte from the peer means: the guest agent's sync marker,
/// or a broken stream from QEMU.
fn sentinel(peer: Peer) -> Result<()> {
    if peer == Peer::Qmp {
        return Err(Error::Protocol("unexpected 0xFF byte".into()));
    }
    trace!("guest agent sync sentinel");
    Ok(())
}

impl Shared {
    /// Nothing is queued or being written and no call is in flight.
    fn quiet(&self) -> bool {
        let idle = {
            let calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
            calls.waiting.is_empty() && calls.closed.is_none()
        };
        idle && {
            let outbox = self.lock_outbox();
            outbox.queued.is_empty()
                && !outbox.handed_over
                && !outbox.exclusive
                && outbox.failed.is_none()
        }
    }
}

impl Engine {
    /// [`call`](Self::call) for a blocking caller: on a direct session,
    /// when nothing else is going on, this thread writes the request and
    /// reads the reply itself; otherwise it waits for the async call on
    /// `runtime`.
    ///
    /// A direct call decodes a plain reply (see [`plain_reply`]) straight
    /// from the read buffer with `decode`, which saves checking, copying
    /// and parsing the value a second time.  `decode` succeeding means the
    /// value is valid UTF-8 and one valid JSON value (it parses it whole,
    /// with the same checks), so the message is the plain reply the
    /// general routing would also have found; when it fails the message
    /// is routed as usual and the caller decodes the raw reply, with the
    /// errors that gives.
    pub(crate) fn call_blocking<T>(
        &self,
        request: Request<'_>,
        runtime: &Runtime,
        decode: impl Fn(&str) -> Option<T>,
    ) -> Result<Direct<T>> {
        let shared = &self.shared;
        let lent = match &shared.lease {
            Some(lease) if request.expect_reply && request.fds.is_empty() => lease.take(shared),
            _ => None,
        };
        let Some(mut lent) = lent else {
            return runtime.block_on(self.call(request)).map(Direct::Raw);
        };
        let timed_out = || Error::Timeout {
            command: request.name.into(),
            after: request.timeout.unwrap_or_default(),
        };
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
        let id_text = IdText::new(id);
        let reply_end = ReplyEnd::new(&id_text);
        // The call registers (see `Registration`) only once it has to
        // wait, or before anything else is routed: until then this thread
        // alone reads the socket, so nothing else can take its reply, and
        // most replies are there at the first look.
        let register = || {
            let deadline = request.timeout.map(|after| Instant::now() + after);
            Registration::new(shared, id, deadline).map(|(registration, _)| registration)
        };
        let (_, written) = shared.send(&request, id, &id_text, false)?;
        let mut registration = None;
        if !written {
            // The socket is full: the flusher writes the rest, with the
            // socket back in the runtime (this call is waiting, so giving
            // it back asks for that).
            registration = Some(register()?);
            lent.give_back();
        }
        let mut decoded = None;
        let mut found_nothing = false;
        loop {
            if let Some(registered) = &mut registration {
                match registered.receiver.try_recv() {
                    Ok(Err(Error::Timeout { .. })) => return Err(timed_out()),
                    Ok(reply) => {
                        if let Some(registered) = registration.take() {
                            registered.delivered();
                        }
                        return reply.map(Direct::Raw);
                    }
                    Err(oneshot::error::TryRecvError::Closed) => return Err(shared.closed_error()),
                    Err(oneshot::error::TryRecvError::Empty) => {}
                }
            }
            let (Some(side), Some(lease)) = (lent.side(), &shared.lease) else {
                break;
            };
            if lease.release.load(Ordering::Acquire) {
                break;
            }
            let how = match (&registration, found_nothing) {
                (None, _) => DirectRead::Look,
                (Some(_), true) => DirectRead::Wait,
                (Some(_), false) => DirectRead::LookFirst,
            };
            let mut unregistered = None;
            let read = side.read_some(shared, lease, how, &mut |bytes| {
                if decoded.is_none()
                    && take_reply(bytes, &reply_end, &decode, &mut decoded, shared.peer)
                {
                    return true;
                }
                // Routed: this call's reply may be among what is.
                if registration.is_none() && unregistered.is_none() {
                    match register() {
                        Ok(registered) => registration = Some(registered),
                        Err(error) => unregistered = Some(error),
                    }
                }
                false
            });
            if let Some(value) = decoded.take() {
                // Any registration is removed as it drops: nothing was
                // delivered to it.
                return Ok(Direct::Decoded(value));
            }
            if let Some(error) = unregistered {
                return Err(error);
            }
            match read {
                Ok(read_any) => found_nothing = !read_any,
                Err(error) => shared.close(error),
            }
            if registration.is_none() {
                // The next read may wait, with the deadline task keeping
                // this call's time.
                registration = Some(register()?);
            }
        }
        // The runtime needs the socket: wait the async way.
        let mut registered = match registration {
            Some(registered) => registered,
            None => register()?,
        };
        lent.give_back();
        let deadline = registered.deadline;
        let wait = async {
            match deadline {
                Some(deadline) => tokio::time::timeout_at(deadline, &mut registered.receiver)
                    .await
                    .unwrap_or(Ok(Err(timed_out()))),
                None => (&mut registered.receiver).await,
            }
        };
        match runtime.block_on(wait) {
            Ok(Err(Error::Timeout { .. })) => Err(timed_out()),
            Ok(reply) => reply.map(Direct::Raw),
            Err(_) => Err(shared.closed_error()),
        }
    }
}

/// A call waiting for its reply: the deadline task keeps its time (and
/// kicks a direct call out of `poll`), and the reply, routed by whoever
/// reads the socket, arrives on `receiver`.  Dropping it forgets the call.
struct Registration<'a> {
    receiver: oneshot::Receiver<Reply>,
    deadline: Option<Instant>,
    guard: CallGuard<'a>,
}

impl<'a> Registration<'a> {
    /// Registers call `id`; also says how many calls are in flight now.
    fn new(shared: &'a Shared, id: u64, deadline: Option<Instant>) -> Result<(Self, usize)> {
        let (sender, receiver) = oneshot::channel();
        let in_flight = shared.register(id, sender, deadline)?;
        let registration = Registration {
            receiver,
            deadline,
            guard: CallGuard { shared, id },
        };
        Ok((registration, in_flight))
    }

    /// A reply was delivered, so the call is no longer registered: nothing
    /// for the guard to remove (saves locking the calls again).
    fn delivered(self) {
        std::mem::forget(self.guard);
    }
}

/// Decodes `bytes` into `slot` if it is the plain reply to call `id` and
/// `decode` takes its value (see [`Engine::call_blocking`]).  A `true`
/// means `bytes` is one valid JSON message (the plain form around a value
/// that parsed, from UTF-8), as [`Splitter::take_line`] requires.
fn take_reply<T>(
    bytes: &[u8],
    reply_end: &ReplyEnd,
    decode: &impl Fn(&str) -> Option<T>,
    slot: &mut Option<T>,
    peer: Peer,
) -> bool {
    // The plain form (`plain_reply_parts`) with this call's id, compared
    // as text rather than parsed.
    let Some(value) = bytes
        .strip_prefix(PLAIN_REPLY_START)
        .and_then(|rest| rest.strip_suffix(reply_end.as_bytes()))
    else {
        return false;
    };
    let Ok(text) = std::str::from_utf8(value) else {
        return false;
    };
    *slot = decode(text);
    if slot.is_some() {
        trace!(peer = peer.name(), message = %String::from_utf8_lossy(bytes), "receive");
    }
    slot.is_some()
}

/// How the plain reply to a call ends: `, "id": ID}`.
struct ReplyEnd {
    bytes: [u8; 32],
    len: usize,
}

impl ReplyEnd {
    fn new(id: &IdText) -> ReplyEnd {
        const START: &[u8] = b", \"id\": ";
        let digits = id.as_bytes();
        let mut bytes = [0; 32];
        bytes[..START.len()].copy_from_slice(START);
        bytes[START.len()..START.len() + digits.len()].copy_from_slice(digits);
        bytes[START.len() + digits.len()] = b'}';
        ReplyEnd {
            bytes,
            len: START.len() + digits.len() + 1,
        }
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// What [`Engine::call_blocking`] gives: the reply decoded already, or
/// its raw value.
pub(crate) enum Direct<T> {
    Decoded(T),
    Raw(ReturnValue),
}

/// The reader task of a direct session: reads like [`read_loop`], hands
/// the socket over when a blocking call asks, and takes it back.
async fn read_loop_direct(mut reader: MessageReader<UnixReader>, shared: Arc<Shared>) {
    let Some(lease) = shared.lease.clone() else {
        return;
    };
    loop {
        let error = loop {
            tokio::select! {
                biased;
                () = lease.wake_reader.notified() => {
                    match hand_over(reader, &shared, &lease) {
                        Ok(()) => break None,
                        Err(Ok(kept)) => reader = kept,
                        Err(Err(error)) => break Some(error),
                    }
                }
                result = read_one(&mut reader, &shared) => {
                    if let Err(error) = result {
                        break Some(error);
                    }
                }
            }
        };
        if let Some(error) = error {
            shared.close(error);
            return;
        }
        // Handed over: wait until it can be taken back.
        reader = loop {
            tokio::select! {
                () = tokio::time::sleep(DIRECT_TICK) => {}
                () = lease.wake_reader.notified() => {}
            }
            match take_back(&shared, &lease) {
                Ok(Some(reader)) => break reader,
                Ok(None) => {}
                Err(error) => {
                    shared.close(error);
                    return;
                }
            }
        };
    }
}

/// Reads and routes one message (cancel-safe: nothing is lost if it is
/// dropped while waiting to read).
#[inline]
async fn read_one<R: Source>(reader: &mut MessageReader<R>, shared: &Shared) -> Result<()> {
    match reader.next_borrowed().await? {
        Borrowed::Message(bytes) => shared.route(bytes),
        Borrowed::Sentinel => sentinel(shared.peer),
    }
}

/// Hands the socket over to direct calls if one asked and the session is
/// quiet: `Ok` when handed over, `Err(Ok(reader))` when kept, `Err(Err)`
/// when the session must end.
#[allow(clippy::result_large_err)]
fn hand_over(
    reader: MessageReader<UnixReader>,
    shared: &Shared,
    lease: &Arc<Lease>,
) -> std::result::Result<(), Result<MessageReader<UnixReader>>> {
    let mut state = lease.lock();
    let Holder::Engine { asked: true } = state.holder else {
        // Only the socket wanted back, which it is.
        lease.release.store(false, Ordering::Release);
        return Err(Ok(reader));
    };
    lease.release.store(false, Ordering::Release);
    state.holder = Holder::Engine { asked: false };
    if !shared.quiet() {
        drop(state);
        lease.answered.notify_all();
        return Err(Ok(reader));
    }
    let mut outbox = shared.lock_outbox();
    let Writer::Unix(_) = &outbox.writer else {
        drop(outbox);
        drop(state);
        lease.answered.notify_all();
        return Err(Ok(reader));
    };
    let MessageReader {
        stream,
        splitter,
        peer,
        busy,
    } = reader;
    // Out of the runtime's epoll; the writer, replaced below, takes its
    // registration for output (if it has one) with it.
    let stream = stream.into_stream();
    outbox.writer = Writer::Direct {
        stream: Arc::clone(&stream),
        lease: Arc::clone(lease),
    };
    drop(outbox);
    state.holder = Holder::Idle(Box::new(DirectSide {
        stream,
        splitter,
        busy,
        peer,
    }));
    // Not used yet: taken back after a tick if the asker gave up.
    state.used = false;
    drop(state);
    lease.answered.notify_all();
    Ok(())
}

/// Takes the socket back from direct calls when none is running and
/// either it is wanted back or none ran for a tick; `Ok(None)` while it
/// stays handed over.
fn take_back(shared: &Shared, lease: &Lease) -> Result<Option<MessageReader<UnixReader>>> {
    let mut state = lease.lock();
    let wanted = lease.release.load(Ordering::Acquire);
    match state.holder {
        Holder::Idle(_) if wanted || !state.used => {}
        Holder::Idle(_) => {
            state.used = false;
            return Ok(None);
        }
        Holder::InCall | Holder::Engine { .. } => return Ok(None),
    }
    let Holder::Idle(side) = std::mem::replace(&mut state.holder, Holder::Engine { asked: false })
    else {
        return Ok(None);
    };
    lease.release.store(false, Ordering::Release);
    let DirectSide {
        stream,
        splitter,
        busy,
        peer,
    } = *side;
    let mut outbox = shared.lock_outbox();
    let read = match UnixReader::new(Arc::clone(&stream)) {
        Ok(read) => read,
        Err(error) => {
            outbox.writer = Writer::Lent;
            drop(outbox);
            drop(state);
            lease.answered.notify_all();
            return Err(Error::Disconnected {
                reason: format!("could not take the socket back: {error}").into(),
            });
        }
    };
    outbox.writer = Writer::Unix(UnixWriter::new(stream));
    drop(outbox);
    drop(state);
    lease.answered.notify_all();
    let waker = lease
        .writer_waker
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    if let Some(waker) = waker {
        waker.wake();
    }
    shared.drained.notify_waiters();
    Ok(Some(MessageReader {
        stream: read,
        splitter,
        peer,
        busy,
    }))
}

/// Appends the request's bytes to `out`.
fn encode_request(out: &mut Vec<u8>, request: &Request<'_>, id: &IdText) -> Result<()> {
    out.reserve(64 + request.arguments.map_or(0, <[u8]>::len));
    out.extend_from_slice(request.prefix);
    out.extend_from_slice(if request.oob {
        b"{\"exec-oob\":"
    } else {
        b"{\"execute\":"
    });
    if request.name.bytes().all(|b| NAME_BYTES[usize::from(b)]) {
        // Every QAPI name: nothing to escape.
        out.push(b'"');
        out.extend_from_slice(request.name.as_bytes());
        out.push(b'"');
    } else {
        serde_json::to_writer(&mut *out, request.name).map_err(|e| Error::Encode {
            command: request.name.into(),
            message: e.to_string(),
        })?;
    }
    if let Some(arguments) = request.arguments {
        out.extend_from_slice(b",\"arguments\":");
        out.extend_from_slice(arguments);
    }
    out.extend_from_slice(b",\"id\":");
    out.extend_from_slice(id.as_bytes());
    out.extend_from_slice(b"}\n");
    Ok(())
}

/// The bytes a QAPI name is made of, none of which JSON escapes.
static NAME_BYTES: [bool; 256] = {
    let mut set = [false; 256];
    let mut b = 0;
    while b < 256 {
        set[b] = matches!(b as u8, b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_');
        b += 1;
    }
    set
};

/// A call's id in decimal, worked out once for its request and, in a
/// direct call, for the end of its reply ([`ReplyEnd`]).
struct IdText {
    digits: [u8; 20],
    at: usize,
}

impl IdText {
    fn new(id: u64) -> IdText {
        let mut buffer = itoa::Buffer::new();
        let text = buffer.format(id).as_bytes();
        let mut digits = [0; 20];
        let at = digits.len() - text.len();
        digits[at..].copy_from_slice(text);
        IdText { digits, at }
    }

    fn as_bytes(&self) -> &[u8] {
        &self.digits[self.at..]
    }
}

/// A random start for request ids, so that replies a guest agent still
/// holds for an earlier client can never match this client's calls.  Kept
/// below 2^52 so any JSON peer reads it exactly.
fn random_id_base() -> u64 {
    random_u64() & ((1 << 52) - 1) & !0xFFFF_FFFF
}

/// 64 random bits from the standard library's hasher seeds (fresh per call).
pub(crate) fn random_u64() -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
    );
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framing::{Frame, Splitter};
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

    /// A peer that reads slowly through a tiny pipe, so that writes keep
    /// stalling, and answers every request it can parse.  Returns the
    /// requests it saw.
    async fn slow_peer(mut stream: DuplexStream, expected: usize) -> Vec<serde_json::Value> {
        let mut splitter = Splitter::new(1 << 20);
        let mut seen = Vec::new();
        let mut chunk = [0u8; 16];
        while seen.len() < expected {
            tokio::time::sleep(Duration::from_micros(200)).await;
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "client closed early");
            splitter.buffer_mut().extend_from_slice(&chunk[..n]);
            while let Some(frame) = splitter.next_frame() {
                let Frame::Message(range) = frame else {
                    panic!("not a request: {frame:?}")
                };
                let request: serde_json::Value =
                    serde_json::from_slice(&splitter.buffer()[range]).expect("a whole request");
                let reply = format!("{{\"return\": {{}}, \"id\": {}}}\r\n", request["id"]);
                stream.write_all(reply.as_bytes()).await.unwrap();
                seen.push(request);
            }
            splitter.compact();
        }
        seen
    }

    fn request(name: &str, timeout: Duration) -> Request<'_> {
        Request {
            name,
            arguments: None,
            oob: false,
            fds: &[],
            prefix: b"",
            expect_reply: true,
            timeout: Some(timeout),
        }
    }

    #[tokio::test]
    async fn requests_stay_whole_when_writes_stall_and_calls_are_cancelled() {
        let (ours, theirs) = tokio::io::duplex(24);
        let (read, write) = tokio::io::split(ours);
        let engine = Arc::new(Engine::start(
            MessageReader::new(read, Peer::Qmp, 1 << 20),
            Writer::Stream(Box::new(write)),
            &EngineConfig {
                peer: Peer::Qmp,
                event_capacity: 1,
                direct: false,
            },
        ));
        let peer = tokio::spawn(slow_peer(theirs, 40));
        let mut calls = tokio::task::JoinSet::new();
        for i in 0..40 {
            let engine = Arc::clone(&engine);
            calls.spawn(async move {
                // Every fourth call gives up long before its turn.
                let timeout = Duration::from_millis(if i % 4 == 0 { 1 } else { 20_000 });
                (i, engine.call(request("query-status", timeout)).await)
            });
        }
        let mut answered = 0;
        while let Some(done) = calls.join_next().await {
            match done.unwrap() {
                (i, Ok(_)) => {
                    assert_ne!(i % 4, 0, "call {i} should have timed out");
                    answered += 1;
                }
                (i, Err(Error::Timeout { .. })) if i % 4 == 0 => {}
                (i, Err(error)) => panic!("call {i}: {error}"),
            }
        }
        assert_eq!(answered, 30);
        // Cancelled calls' requests still went out whole, in between.
        let seen = tokio::time::timeout(Duration::from_secs(20), peer)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(seen.len(), 40);
        assert!(seen.iter().all(|r| r["execute"] == "query-status"));
    }

    /// Takes a few bytes, then fails every write.
    struct BreaksAfter(usize);

    impl AsyncWrite for BreaksAfter {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            bytes: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            if self.0 == 0 {
                return Poll::Ready(Err(std::io::ErrorKind::BrokenPipe.into()));
            }
            let n = bytes.len().min(self.0);
            self.0 -= n;
            Poll::Ready(Ok(n))
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn a_write_failure_ends_the_session_and_fails_every_call() {
        // The read side stays open: only writing breaks.
        let (ours, _theirs) = tokio::io::duplex(64);
        let engine = Engine::start(
            MessageReader::new(ours, Peer::Qmp, 1 << 20),
            Writer::Stream(Box::new(BreaksAfter(30))),
            &EngineConfig {
                peer: Peer::Qmp,
                event_capacity: 1,
                direct: false,
            },
        );
        let (first, second) = tokio::join!(
            engine.call(request("query-status", Duration::from_secs(20))),
            engine.call(request("query-status", Duration::from_secs(20))),
        );
        for result in [first, second] {
            let error = result.unwrap_err();
            assert!(
                matches!(&error, Error::Disconnected { reason } if reason.contains("write failed")),
                "unexpected {error}"
            );
        }
        assert!(engine.is_closed());
        let later = engine
            .call(request("query-status", Duration::from_secs(20)))
            .await;
        assert!(matches!(later, Err(Error::Disconnected { .. })));
    }

    #[tokio::test]
    async fn a_shorter_time_limit_after_a_longer_one_still_fires_first() {
        let (ours, theirs) = tokio::io::duplex(4096);
        let (read, write) = tokio::io::split(ours);
        let engine = Engine::start(
            MessageReader::new(read, Peer::Qga, 1 << 20),
            Writer::Stream(Box::new(write)),
            &EngineConfig {
                peer: Peer::Qga,
                event_capacity: 1,
                direct: false,
            },
        );
        let started = Instant::now();
        let long = engine.call(request("guest-ping", Duration::from_secs(30)));
        let short = async {
            // Registered after the long call, with an earlier deadline.
            tokio::time::sleep(Duration::from_millis(20)).await;
            let result = engine
                .call(request("guest-info", Duration::from_millis(100)))
                .await;
            (result, started.elapsed())
        };
        let answer = async {
            let mut theirs = theirs;
            let mut splitter = Splitter::new(1 << 20);
            let mut chunk = [0u8; 256];
            let mut first_id = None;
            while first_id.is_none() {
                let n = theirs.read(&mut chunk).await.unwrap();
                splitter.buffer_mut().extend_from_slice(&chunk[..n]);
                if let Some(Frame::Message(range)) = splitter.next_frame() {
                    let request: serde_json::Value =
                        serde_json::from_slice(&splitter.buffer()[range]).unwrap();
                    first_id = Some(request["id"].clone());
                }
            }
            // Answer the long call only after the short one has given up.
            tokio::time::sleep(Duration::from_millis(1500)).await;
            let reply = format!("{{\"return\": {{}}, \"id\": {}}}\n", first_id.unwrap());
            theirs.write_all(reply.as_bytes()).await.unwrap();
            theirs
        };
        let (long, (short, short_after), _theirs) = tokio::join!(long, short, answer);
        assert!(long.is_ok(), "{long:?}");
        match short {
            Err(Error::Timeout { command, after }) => {
                assert_eq!(&*command, "guest-info");
                assert_eq!(after, Duration::from_millis(100));
            }
            other => panic!("expected a timeout, got {other:?}"),
        }
        assert!(
            short_after >= Duration::from_millis(115) && short_after < Duration::from_millis(1500),
            "timed out after {short_after:?}"
        );
    }

    /// What the general parse makes of a message that is a reply: the
    /// return value's text and the id, if it has one that is ours.
    fn general_parse(text: &str) -> Option<(String, Option<u64>)> {
        let incoming: Incoming = serde_json::from_str(text).ok()?;
        if incoming.event.is_some() || incoming.error.is_some() {
            return None;
        }
        let ret = incoming.ret?;
        Some((
            ret.get().to_owned(),
            incoming.id.and_then(|id| id.get().parse().ok()),
        ))
    }

    #[test]
    fn plain_replies_parse_like_any_reply() {
        for (text, expected) in [
            (r#"{"return": {}, "id": 7}"#, Some(("{}", 7))),
            (
                r#"{"return": {"status": "running", "running": true}, "id": 4222124650659841}"#,
                Some((
                    r#"{"status": "running", "running": true}"#,
                    4_222_124_650_659_841,
                )),
            ),
            (r#"{"return": null, "id": 0}"#, Some(("null", 0))),
            (
                r#"{"return": "x\", \"id\": 5", "id": 6}"#,
                Some((r#""x\", \"id\": 5""#, 6)),
            ),
            (r#"{"return": 1, "id": 2, "id": 3}"#, None),
            (r#"{"return": {}, "x": 1, "id": 3}"#, None),
            (r#"{"return": {}, "id": 03}"#, None),
            (r#"{"return": {}, "id": 99999999999999999999}"#, None),
            (r#"{"return": {}, "id": "7"}"#, None),
            (r#"{"return": {"a" 1}, "id": 7}"#, None),
        ] {
            let got = plain_reply(text.as_bytes()).map(|(value, id)| (value.get(), id));
            assert_eq!(got, expected, "{text}");
            if let Some((value, id)) = got {
                assert_eq!(general_parse(text), Some((value.to_owned(), Some(id))));
            }
        }
    }

    proptest::proptest! {
        /// A direct call's text comparison with its reply's end takes
        /// exactly the plain replies that carry its id.
        #[test]
        fn reply_ends_match_like_parsed_ids(
            value in "[{}\\[\\]\":,a-z0-9 ]{0,10}",
            separator in proptest::sample::select(vec![", \"id\": ", ",\"id\":", ", \"id\": 0"]),
            sent in proptest::prop_oneof![0u64..1000, proptest::num::u64::ANY],
            id in proptest::prop_oneof![0u64..1000, proptest::num::u64::ANY],
        ) {
            let text = format!("{{\"return\": {value}{separator}{sent}}}");
            let by_text = text
                .as_bytes()
                .strip_prefix(b"{\"return\": ")
                .and_then(|rest| rest.strip_suffix(ReplyEnd::new(&IdText::new(id)).as_bytes()));
            let by_parse = plain_reply_parts(text.as_bytes())
                .filter(|&(_, reply_id)| reply_id == id)
                .map(|(value, _)| value);
            proptest::prop_assert_eq!(by_text, by_parse);
        }

        /// Whenever the fast path takes a message, the general parse
        /// agrees with it.
        #[test]
        fn the_fast_path_agrees_with_the_general_parse(
            value in "[{}\\[\\]\":,a-z0-9\\\\ ]{0,14}",
            separator in proptest::sample::select(vec![", \"id\": ", ",\"id\":", ", \"id\": 1, \"id\": ", ", \"x\": {}, \"id\": "]),
            id in "[0-9]{0,22}",
        ) {
            let text = format!("{{\"return\": {value}{separator}{id}}}");
            if let Some((value, id)) = plain_reply(text.as_bytes()) {
                proptest::prop_assert_eq!(general_parse(&text), Some((value.get().to_owned(), Some(id))));
            }
        }
    }

    #[test]
    fn short_replies_are_kept_in_place_without_growing_a_reply() {
        // The in-place copy costs no room a reply does not have anyway.
        let size = std::mem::size_of::<Reply>();
        assert!(size <= std::mem::size_of::<Error>(), "{size}");
        let short = b"{\"return\": {}, \"id\": 4503599627370497}";
        let (value, _) = plain_reply_parts(short).unwrap();
        let plain = PlainReply::new(short, value);
        assert!(matches!(plain, PlainReply::Short { .. }));
        assert_eq!(plain.value(), b"{}");
        let long = format!("{{\"return\": \"{}\", \"id\": 1}}", "x".repeat(80));
        let (value, _) = plain_reply_parts(long.as_bytes()).unwrap();
        let plain = PlainReply::new(long.as_bytes(), value);
        assert!(matches!(plain, PlainReply::Long { .. }));
        assert_eq!(plain.message(), long.as_bytes());
        assert_eq!(plain.value().len(), 82);
    }

    #[test]
    fn requests_encode_like_serde_json() {
        let ids = [
            0,
            7,
            10,
            99,
            100,
            101,
            12_345,
            4_222_124_650_659_841,
            u64::MAX,
        ];
        let names = ["query-status", "x\"y", "q_1-A", "é"];
        for (name, id) in names.iter().flat_map(|&name| ids.map(|id| (name, id))) {
            let mut out = Vec::new();
            let request = Request {
                arguments: Some(br#"{"a":1}"#),
                ..request(name, Duration::ZERO)
            };
            encode_request(&mut out, &request, &IdText::new(id)).unwrap();
            let expected =
                serde_json::json!({ "execute": name, "arguments": { "a": 1 }, "id": id });
            let got: serde_json::Value = serde_json::from_slice(&out).unwrap();
            assert_eq!(got, expected);
            assert!(out.ends_with(b"}\n"));
        }
    }
}
