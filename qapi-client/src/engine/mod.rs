mod calls;
mod direct;
mod lifecycle;
mod outbox;
mod reader;
mod routing;
#[cfg(test)]
mod tests;

use std::any::Any;
use std::os::fd::BorrowedFd;
use std::os::unix::net::UnixStream as StdUnixStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::unix::UnixReader;

pub(crate) use self::calls::random_u64;
use self::calls::{random_id_base, watch_deadlines, Calls, Registration};
pub(crate) use self::direct::Direct;
use self::direct::{read_loop_direct, Lease};
pub(crate) use self::lifecycle::dropped;
use self::lifecycle::{socket_of, Events};
pub(crate) use self::outbox::Writer;
use self::outbox::{flush_loop, IdText, Outbox};
use self::reader::read_loop;
pub(crate) use self::reader::{MessageReader, Read, Source};
pub(crate) use self::routing::{Reply, ReturnValue};

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
    /// Keeps the events that arrive before the first subscription for it.
    pub keep_early_events: bool,
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
    /// A Unix socket's stream, for [`Engine::close`] to shut down.
    socket: Option<Arc<StdUnixStream>>,
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
        let socket = socket_of(&writer);
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
            events: Mutex::new(Events::new(config)),
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
            socket,
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
