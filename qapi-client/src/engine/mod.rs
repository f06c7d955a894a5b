//! The protocol engine both clients share.  QMP and the guest agent
//! differ only in the handshake, the sync, and how much they forgive (see
//! [`Peer`]).
//!
//! # Design
//!
//! **Tasks.**  An [`Engine`] runs three tasks on the session's runtime,
//! all aborted when the last handle drops it:
//!
//! - the *reader* ([`reader`]): reads the socket into the splitter's
//!   buffer, cuts it into messages, and hands each to [`routing`], which
//!   delivers a reply to the call waiting for its id, publishes an event
//!   ([`lifecycle`]), or ends the session on a protocol error (QMP only);
//! - the *flusher* ([`outbox`]): writes what calls queued when they could
//!   not write it themselves (other calls in flight, a full socket);
//! - the *deadline task* ([`calls`]): one timer for the session, which
//!   fails each call whose time limit passed.
//!
//! **Who owns the socket when.**  The read side belongs to the reader task
//! (or, handed over, to one direct call, below).  The write side lives in
//! the [`Outbox`] under its mutex: a call encodes its request into the
//! queue and, when nothing else is queued or in flight, writes it at once
//! from its own task; otherwise the flusher writes, each write without
//! the outbox's lock (it takes the queued bytes and the writer out,
//! [`Writer::Busy`], and puts back what did not go), so that calls on
//! other threads queue meanwhile instead of waiting for the system call.
//! A request with file descriptors takes the writer out of the outbox for
//! one `sendmsg` ([`Writer::Lent`]) once the queue is empty.
//!
//! **A call's life** ([`Engine::call`]): it takes an id (a per-session
//! counter from 0, so requests are short: QEMU reads them a byte per
//! system call), registers a oneshot channel and its deadline in the call
//! registry ([`calls::Registration`]), queues its request, and waits.  It
//! ends in one of three ways: its reply is delivered (by id, or by the
//! rules for replies without one in [`routing`]); the deadline task or the
//! session's end fails it; or its future is dropped.  In the last two it
//! *abandons* the call ([`Shared::abandon`]): a request none of whose
//! bytes was written is taken back out of the queue, never to be sent;
//! one that had begun to go out is finished (the stream must stay whole)
//! and remembered, so that a late reply is recognised and a late error
//! counted ([`Engine::unclaimed_errors`]) rather than lost.
//!
//! **Guest agents** ([`agent`]): the sync fences stale replies by value and
//! finds out whether the agent echoes ids; when it does not, calls take
//! turns, and the first after a call that gave up resyncs.
//!
//! **The direct-call lease** ([`direct`]): a blocking call on a Unix
//! socket, when the session is quiet, borrows the socket from the reader
//! task, writes its request and reads the reply on its own thread, routing
//! anything else it reads the same way the reader task would; the reader
//! task takes the socket back when anything needs the runtime.
//!
//! # Invariants a change must keep
//!
//! - One reader at a time (the reader task or the one direct call holding
//!   the lease), and the read buffer moves with the socket: messages are
//!   routed once each, in stream order.
//! - Requests are written whole and in queue order; only a request with
//!   no byte written may leave the queue ([`Outbox::withdraw`]), and not
//!   while the flusher is writing it ([`Outbox::in_write`]).  One writer
//!   at a time: the calls' own writes and the flusher's are exclusive
//!   through `handed_over`.
//! - A call is in the registry from before its request can be written
//!   until it ends, and leaves it exactly once: delivered (the guard is
//!   forgotten), answered by a direct call, or abandoned (the guard runs).
//! - No error reply is dropped silently: it reaches its call, or is
//!   logged and counted.
//! - Every wait has a limit: calls through the deadline task, handshakes
//!   and syncs through their own; nothing waits on the peer without one
//!   unless the caller chose `None`.
//! - Lock order: `Lease::state`, then `Shared::outbox` or `Shared::calls`,
//!   never both of the last two at once except `calls` then `outbox` in
//!   [`routing`]'s rule for replies without an id; `Lease::writer_waker`
//!   is a leaf.

mod agent;
mod calls;
mod direct;
mod lifecycle;
mod outbox;
mod reader;
mod routing;
#[cfg(test)]
mod tests;

use std::any::Any;
use std::collections::VecDeque;
use std::os::fd::BorrowedFd;
use std::os::unix::net::UnixStream as StdUnixStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::debug;

use crate::error::{Error, Result};
use crate::unix::UnixReader;

use self::calls::{random_sync_id, watch_deadlines, Calls, Registration, SyncWait};
pub(crate) use self::direct::Direct;
use self::direct::{read_loop_direct, Lease};
pub(crate) use self::lifecycle::dropped;
use self::lifecycle::{socket_of, Events};
pub(crate) use self::outbox::Writer;
use self::outbox::{flush_loop, IdText, Outbox, Progress};
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
    /// How long a command that answers only on failure waits for an error
    /// reply once its request is written.
    pub no_reply_grace: Duration,
    /// Keeps the events that arrive before the first subscription for it.
    pub keep_early_events: bool,
    /// Where messages are recorded, if anywhere.
    pub recorder: Option<crate::record::Recorder>,
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
    /// Whether the peer copies a request's `id` into its reply: QEMU
    /// always does; a guest agent is asked at every sync (old agents do
    /// not).  Without ids, calls take turns ([`Shared::serial_turn`]).
    echoes_ids: AtomicBool,
    /// Held by the one call in flight while the agent does not echo ids.
    serial_turn: tokio::sync::Mutex<()>,
    /// Error replies that answered no waiting call (see
    /// [`Engine::unclaimed_errors`]).
    unclaimed_errors: AtomicU64,
    no_reply_grace: Duration,
    recorder: Option<crate::record::Recorder>,
}

impl Shared {
    /// Records a message sent (`from_client`) or received, when recording.
    fn record(&self, from_client: bool, bytes: &[u8]) {
        if let Some(recorder) = &self.recorder {
            recorder.message(from_client, bytes);
        }
    }

    /// Whether the peer echoes request ids (see [`Shared::echoes_ids`]).
    fn echoes_ids(&self) -> bool {
        self.echoes_ids.load(Ordering::Acquire)
    }

    /// Calls take turns: the agent answers without ids.
    fn serial(&self) -> bool {
        !self.echoes_ids()
    }
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
            next_id: AtomicU64::new(0),
            outbox: Mutex::new(Outbox {
                writer,
                queued: Vec::new(),
                handed_over: false,
                exclusive: false,
                pending: VecDeque::new(),
                head_written: 0,
                in_write: 0,
                failed: None,
            }),
            hand_over: Notify::new(),
            earlier_deadline: Notify::new(),
            drained: Notify::new(),
            events: Mutex::new(Events::new(config)),
            peer: config.peer,
            lease,
            echoes_ids: AtomicBool::new(true),
            serial_turn: tokio::sync::Mutex::new(()),
            unclaimed_errors: AtomicU64::new(0),
            no_reply_grace: config.no_reply_grace,
            recorder: config.recorder.clone(),
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

    /// Sends a request and waits for its reply; for a command that
    /// answers only on failure, waits for the write and then for an error
    /// reply during the grace period (a closed session then is success,
    /// as after `guest-shutdown`).
    ///
    /// Every call's time limit is kept by the session's deadline task,
    /// which saves a timer per call.  A call that gives up before any of
    /// its request was written takes the request back (see
    /// [`Shared::abandon`]); with an agent that does not echo ids, calls
    /// take turns, and the first after one that gave up resyncs.
    pub(crate) async fn call(&self, request: Request<'_>) -> Reply {
        let deadline = request.timeout.map(|after| Instant::now() + after);
        if !self.shared.serial() {
            let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
            return self.call_with_id(&request, id, deadline).await;
        }
        Box::pin(async {
            let _turn = self.take_turn(&request, deadline).await?;
            if self.needs_sync() {
                self.sync_in_turn(deadline, request.timeout).await?;
            }
            let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
            self.call_with_id(&request, id, deadline).await
        })
        .await
    }

    /// Waits for this call's turn (see [`Shared::serial_turn`]) until
    /// `deadline`.
    async fn take_turn(
        &self,
        request: &Request<'_>,
        deadline: Option<Instant>,
    ) -> Result<tokio::sync::MutexGuard<'_, ()>> {
        let turn = self.shared.serial_turn.lock();
        match deadline {
            None => Ok(turn.await),
            Some(deadline) => tokio::time::timeout_at(deadline, turn)
                .await
                .map_err(|_| timeout_error(request, false)),
        }
    }

    fn needs_sync(&self) -> bool {
        self.lock_calls().needs_sync
    }

    fn lock_calls(&self) -> std::sync::MutexGuard<'_, Calls> {
        self.shared.calls.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// [`call`](Self::call) with request id `id`.
    async fn call_with_id(
        &self,
        request: &Request<'_>,
        id: u64,
        deadline: Option<Instant>,
    ) -> Reply {
        let shared = &self.shared;
        if let Some(lease) = &shared.lease {
            // This call waits for the reader task, which must have the
            // socket for that.
            lease.want_back_if_lent();
        }
        // Forgets the call if this future is dropped (timeout, cancel).
        let (mut registration, in_flight) = Registration::new(shared, id, deadline)?;
        if !request.fds.is_empty() || !request.expect_reply {
            // Rare paths, boxed: a call's future is built and moved on
            // every call, and stays small without them.
            return Box::pin(self.call_unusual(request, id, registration)).await;
        }
        if let Err(error) = shared.send(request, id, &IdText::new(id), in_flight > 1) {
            // Nothing of it was queued: no reply can come.
            registration.answered();
            return Err(error);
        }
        let reply = (&mut registration.receiver).await.ok();
        finish(shared, request, registration, reply)
    }

    /// A request with file descriptors, or one that answers only on
    /// failure.
    async fn call_unusual(
        &self,
        request: &Request<'_>,
        id: u64,
        mut registration: Registration<'_>,
    ) -> Reply {
        let shared = &self.shared;
        let began = AtomicBool::new(false);
        let sending = async {
            if request.fds.is_empty() {
                let written = shared.send(request, id, &IdText::new(id), false)?;
                if !written {
                    shared.wait_written(id).await?;
                }
                Ok(())
            } else {
                shared.send_with_fds(request, id, &began).await
            }
        };
        // The time limit (or the session's end) may come first: the
        // request is then taken back if none of it was written.
        tokio::select! {
            biased;
            reply = &mut registration.receiver => {
                if !request.fds.is_empty() && !began.load(Ordering::Relaxed) {
                    // It gave up waiting for the socket: nothing was sent.
                    registration.answered();
                    return match reply.ok() {
                        Some(Err(Error::Timeout { .. })) => Err(timeout_error(request, false)),
                        Some(reply) => reply,
                        None => Err(shared.closed_error()),
                    };
                }
                return finish(shared, request, registration, reply.ok());
            }
            sent = sending => if let Err(error) = sent {
                // Not queued, or the session ended writing it.
                registration.answered();
                return Err(error);
            },
        }
        if request.expect_reply {
            let reply = (&mut registration.receiver).await.ok();
            return finish(shared, request, registration, reply);
        }
        // No news within the grace period is good news.
        let grace = tokio::time::sleep(shared.no_reply_grace);
        tokio::select! {
            reply = &mut registration.receiver => match reply.ok() {
                Some(Err(Error::Disconnected { .. })) => {
                    debug!(command = request.name, "session closed after a command that does not answer; success");
                    Ok(no_reply())
                }
                reply => finish(shared, request, registration, reply),
            },
            () = grace => {
                registration.abandon();
                Ok(no_reply())
            }
        }
    }

    /// How many error replies answered no waiting call (each also logged
    /// as a warning).
    pub(crate) fn unclaimed_errors(&self) -> u64 {
        self.shared.unclaimed_errors.load(Ordering::Relaxed)
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

/// What a call gets from its registration: a reply or the session's end
/// (delivered), or the deadline task's time-out (the call gives up).
fn finish(
    shared: &Shared,
    request: &Request<'_>,
    registration: Registration<'_>,
    reply: Option<Reply>,
) -> Reply {
    match reply {
        Some(Err(Error::Timeout { .. })) => {
            let progress = registration.abandon();
            Err(timeout_error(request, progress == Progress::Sent))
        }
        Some(reply) => {
            registration.delivered();
            reply
        }
        None => {
            registration.abandon();
            Err(shared.closed_error())
        }
    }
}

/// The time-out of `request`.
fn timeout_error(request: &Request<'_>, sent: bool) -> Error {
    Error::Timeout {
        command: request.name.into(),
        after: request.timeout.unwrap_or_default(),
        sent,
    }
}

/// What a command that answers only on failure returns on success.
fn no_reply() -> ReturnValue {
    ReturnValue::Parsed(RawValue::from_string("{}".to_owned()).expect("literal JSON"))
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
