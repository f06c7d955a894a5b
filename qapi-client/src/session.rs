//! The protocol engine both clients share: one reader task that splits the
//! incoming stream into messages and routes replies to waiting calls by
//! `id` (and events to subscribers), and a writer that callers take turns
//! on.  QMP and the guest agent differ only in the handshake and in how
//! much they forgive (see [`Peer`]).

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{broadcast, oneshot};
use tokio::task::JoinHandle;
use tracing::{debug, trace, warn};

use crate::error::{Error, QmpError, Result};
use crate::events::RawEvent;
use crate::framing::{Frame, Splitter};

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
}

/// A message from the peer, as far as routing needs to understand it.
#[derive(Debug, Deserialize)]
struct Incoming {
    #[serde(rename = "return", default, deserialize_with = "present")]
    ret: Option<Box<RawValue>>,
    #[serde(default)]
    error: Option<Box<RawValue>>,
    #[serde(default, deserialize_with = "present")]
    id: Option<Box<RawValue>>,
    #[serde(default)]
    event: Option<String>,
    #[serde(rename = "QMP", default)]
    greeting: Option<Box<RawValue>>,
}

/// Keeps `null` as a present value, so `{"return": null}` is a reply.
fn present<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<Option<Box<RawValue>>, D::Error> {
    Box::<RawValue>::deserialize(deserializer).map(Some)
}

/// What a call receives: the raw `return` value, or the error reply.
pub(crate) type Reply = Result<Box<RawValue>>;

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

impl<R: AsyncRead + Unpin> MessageReader<R> {
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
        loop {
            while let Some(frame) = self.splitter.next_frame() {
                match frame {
                    Frame::Message(range) => {
                        let bytes = self.splitter.buffer()[range].into();
                        return Ok(Read::Message(bytes));
                    }
                    Frame::Sentinel => return Ok(Read::Sentinel),
                    Frame::Garbage { len } => {
                        if self.peer == Peer::Qmp {
                            return Err(Error::Protocol(
                                format!("{len} bytes of data that is not a JSON message").into(),
                            ));
                        }
                        warn!(
                            bytes = len,
                            "guest agent sent data that is not JSON; skipped"
                        );
                    }
                    Frame::TooLarge { limit } => return Err(Error::MessageTooLarge { limit }),
                }
            }
            self.splitter.compact();
            let in_message = self.splitter.in_message();
            let buf = self.splitter.buffer_mut();
            // Small reads while idle keep an idle session small; big ones
            // once data flows (a long message, a pipelined burst).
            let want = if self.busy || in_message {
                BUSY_READ
            } else {
                if buf.is_empty() && buf.capacity() > 2 * IDLE_READ {
                    buf.shrink_to(IDLE_READ);
                }
                IDLE_READ
            };
            buf.reserve(want);
            let spare = buf.capacity() - buf.len();
            let n = self
                .stream
                .read_buf(buf)
                .await
                .map_err(|e| Error::Disconnected {
                    reason: format!("read failed: {e}").into(),
                })?;
            self.busy = n == spare;
            if n == 0 {
                let reason = if self.splitter.in_message() {
                    "end of stream in the middle of a message"
                } else {
                    "end of stream"
                };
                return Err(Error::Disconnected {
                    reason: reason.into(),
                });
            }
        }
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
    Unix(tokio::net::unix::OwnedWriteHalf),
    /// Any other stream.
    Stream(Box<dyn AsyncWrite + Send + Unpin>),
}

impl Writer {
    async fn write(&mut self, bytes: &[u8], fds: &[BorrowedFd<'_>]) -> Result<()> {
        match self {
            Writer::Unix(half) if !fds.is_empty() => {
                crate::fds::send_with_fds(half.as_ref(), bytes, fds).await?;
            }
            Writer::Unix(half) => half.write_all(bytes).await?,
            Writer::Stream(_) if !fds.is_empty() => {
                return Err(Error::Unsupported(
                    "file descriptors can only be passed over a Unix socket".into(),
                ))
            }
            Writer::Stream(stream) => {
                stream.write_all(bytes).await?;
                stream.flush().await?;
            }
        }
        Ok(())
    }
}

#[derive(Default)]
struct Calls {
    waiting: HashMap<u64, oneshot::Sender<Reply>>,
    /// Set once the session has ended; new calls fail with it at once.
    closed: Option<Error>,
}

/// Event subscribers.  The channel is made on the first subscription, so
/// a session nobody listens to costs nothing for events (a broadcast
/// channel allocates all its slots up front).
struct Events {
    sender: Option<broadcast::Sender<Arc<RawEvent>>>,
    capacity: usize,
    closed: bool,
}

/// State shared by the handles and the reader task.
pub(crate) struct Shared {
    calls: Mutex<Calls>,
    next_id: AtomicU64,
    writer: tokio::sync::Mutex<Writer>,
    events: Mutex<Events>,
    peer: Peer,
}

/// The engine: shared state plus the reader task, which it stops when
/// the last handle is dropped.
pub(crate) struct Engine {
    pub(crate) shared: Arc<Shared>,
    reader: JoinHandle<()>,
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.reader.abort();
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
        R: AsyncRead + Unpin + Send + 'static,
    {
        let shared = Arc::new(Shared {
            calls: Mutex::new(Calls::default()),
            next_id: AtomicU64::new(random_id_base()),
            writer: tokio::sync::Mutex::new(writer),
            events: Mutex::new(Events {
                sender: None,
                capacity: config.event_capacity.max(1),
                closed: false,
            }),
            peer: config.peer,
        });
        let task = tokio::spawn(read_loop(reader, Arc::clone(&shared)));
        Engine {
            shared,
            reader: task,
        }
    }

    /// Sends a request and waits for its reply (or only for the write, for
    /// a command that does not answer on success).
    pub(crate) async fn call(&self, request: Request<'_>) -> Reply {
        match request.timeout {
            Some(after) => tokio::time::timeout(after, self.call_untimed(&request))
                .await
                .unwrap_or_else(|_| {
                    Err(Error::Timeout {
                        command: request.name.into(),
                        after,
                    })
                }),
            None => self.call_untimed(&request).await,
        }
    }

    async fn call_untimed(&self, request: &Request<'_>) -> Reply {
        let shared = &self.shared;
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
        let bytes = encode_request(request, id)?;
        let receiver = if request.expect_reply {
            let (sender, receiver) = oneshot::channel();
            let mut calls = shared.calls.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(error) = &calls.closed {
                return Err(error.clone());
            }
            calls.waiting.insert(id, sender);
            Some(receiver)
        } else {
            None
        };
        // Forgets the call if this future is dropped (timeout, cancel).
        let _guard = CallGuard { shared, id };
        trace!(
            peer = shared.peer.name(),
            id,
            request = %String::from_utf8_lossy(&bytes[request.prefix.len()..]),
            "send"
        );
        shared
            .writer
            .lock()
            .await
            .write(&bytes, request.fds)
            .await?;
        match receiver {
            Some(receiver) => receiver
                .await
                .unwrap_or_else(|_| Err(shared.closed_error())),
            None => Ok(RawValue::from_string("{}".to_owned()).expect("literal JSON")),
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
        for (_, sender) in waiting {
            let _ = sender.send(Err(error.clone()));
        }
        let mut events = self.events.lock().unwrap_or_else(|e| e.into_inner());
        events.closed = true;
        events.sender = None;
    }

    fn deliver(&self, id: u64, reply: Reply) {
        let sender = {
            let mut calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
            calls.waiting.remove(&id)
        };
        match sender {
            Some(sender) => {
                let _ = sender.send(reply);
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
        let incoming: Incoming = match serde_json::from_slice(bytes) {
            Ok(incoming) => incoming,
            Err(error) => return self.malformed(format!("message is not valid JSON: {error}")),
        };
        if let Some(event) = incoming.event {
            let raw = RawEvent::new(event, bytes);
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
            (Some(ret), None) => Ok(ret),
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

async fn read_loop<R: AsyncRead + Unpin>(mut reader: MessageReader<R>, shared: Arc<Shared>) {
    let error = loop {
        match reader.next().await {
            Ok(Read::Message(bytes)) => {
                if let Err(error) = shared.route(&bytes) {
                    break error;
                }
            }
            Ok(Read::Sentinel) => {
                if shared.peer == Peer::Qmp {
                    break Error::Protocol("unexpected 0xFF byte".into());
                }
                trace!("guest agent sync sentinel");
            }
            Err(error) => break error,
        }
    };
    shared.close(error);
}

fn encode_request(request: &Request<'_>, id: u64) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(64 + request.arguments.map_or(0, <[u8]>::len));
    out.extend_from_slice(request.prefix);
    out.extend_from_slice(if request.oob {
        b"{\"exec-oob\":"
    } else {
        b"{\"execute\":"
    });
    serde_json::to_writer(&mut out, request.name).map_err(|e| Error::Encode {
        command: request.name.into(),
        message: e.to_string(),
    })?;
    if let Some(arguments) = request.arguments {
        out.extend_from_slice(b",\"arguments\":");
        out.extend_from_slice(arguments);
    }
    out.extend_from_slice(b",\"id\":");
    out.extend_from_slice(id.to_string().as_bytes());
    out.extend_from_slice(b"}\n");
    Ok(out)
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
