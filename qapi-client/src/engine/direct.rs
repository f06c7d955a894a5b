//! Direct calls: a blocking call that uses the socket itself.
//!
//! A blocking call on an async engine costs the thread it runs on a wake-up
//! from the runtime's worker, and the worker an `epoll_wait` before it can
//! read: for a fast peer most of a round trip.  A blocking session on a Unix
//! socket can instead hand the socket over to the calling thread, which
//! writes its request and waits in `poll` itself, as a plain blocking loop
//! would, routing whatever arrives (other calls' replies, events) through
//! the same [`Shared::route`] as the reader task.
//!
//! The socket is then out of the runtime altogether (deregistered from its
//! epoll), because a worker parked in `epoll_wait` on it would be woken by
//! every message too, which costs more than direct calls save.  So:
//!
//! - The reader task hands the socket over only when asked by a blocking
//!   call while the session is quiet (nothing queued to write, no call in
//!   flight, no file descriptors being sent); it gives its read buffer with
//!   it, so a partial message carries over.
//! - It stays handed over while blocking calls keep coming (one each time:
//!   a [`Holder::InCall`] at a time; a second thread meanwhile goes the
//!   async way, and the thread that has the socket routes its reply).
//!   When calls compete (a second thread, a call through the runtime, a
//!   refused handover), blocking calls go through the runtime for
//!   [`DIRECT_BACKOFF`] rather than pass the socket back and forth.
//! - The reader task takes it back, with the read buffer, once no direct
//!   call has run for a tick ([`DIRECT_TICK`]), so events and the end of
//!   the stream are noticed at most a few milliseconds later than with the
//!   reader task alone; and at once when anything needs the runtime to have
//!   it: an async call, a write that would wait, file descriptors to send.
//! - A direct call waits in `poll` on the socket and an eventfd, which is
//!   kicked when the socket is wanted back (it then hands it back and waits
//!   for its reply the async way), when the call's deadline passes (the
//!   session's deadline task keeps time for direct calls too) and when the
//!   session closes.
//!
//! Why this is safe:
//!
//! - One reader at a time: the reader task or the one direct call that
//!   holds the [`DirectSide`], and the read buffer moves with the socket, so
//!   messages are split and routed in stream order, each once; events and
//!   replies keep their order, and the same size limit bounds the buffer.
//! - Writes keep going through the outbox under its lock, whoever has the
//!   socket; a direct call's request is written at once or, if the socket
//!   is full, left to the flusher, and the call gives the socket back so
//!   that the runtime can wait for room.
//! - A direct call holds the socket through a [`Lent`] guard that gives it
//!   back on every exit, a panic included, and the reader task can always
//!   take it back from [`Holder::Idle`]; a blocking call cannot be
//!   cancelled, and its time limit is the deadline task's, as for async
//!   calls, so a peer that floods the socket or falls silent cannot hold it
//!   past its time (the call looks at its channel after every read).
//! - The socket is only deregistered and registered again by the reader
//!   task, in the runtime; a direct call uses it only through `poll`,
//!   `recv` and (via the outbox) `send`, all non-blocking but the `poll`.
//!
//! Lock order: `Lease::state`, then `Shared::outbox` and `Shared::calls`;
//! `Lease::writer_waker` is taken with nothing else (a leaf).

use std::os::unix::net::UnixStream as StdUnixStream;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::Waker;
use std::time::Duration;

use tokio::runtime::Runtime;
use tokio::sync::{oneshot, Notify};
use tokio::time::Instant;
use tracing::trace;

use crate::error::{Error, Result};
use crate::framing::Splitter;
use crate::redact::Redacted;
use crate::unix::{UnixReader, UnixWriter};

use super::calls::{timed_out, Registration};
use super::outbox::{IdText, Writer};
use super::reader::{
    accept_frame, end_of_stream, prepare_read, read_one, sentinel, Accepted, MessageReader,
};
use super::routing::{ReturnValue, PLAIN_REPLY_START};
use super::{finish, Engine, Peer, Request, Shared};

/// How often the reader task looks whether direct calls still use the
/// socket; it takes it back once a tick has passed without one.
pub(super) const DIRECT_TICK: Duration = Duration::from_millis(2);

/// How long blocking calls go through the runtime after they found the
/// socket contended (see [`LeaseState::contended`]).
pub(super) const DIRECT_BACKOFF: Duration = Duration::from_millis(20);

/// How long a blocking call waits for the reader task to hand the socket
/// over before it goes the async way.
pub(super) const HANDOVER_WAIT: Duration = Duration::from_millis(200);

/// Who has a direct session's socket; see above.
pub(crate) struct Lease {
    pub(super) state: Mutex<LeaseState>,
    /// Told when the reader task has answered a request for the socket.
    pub(super) answered: Condvar,
    /// Wakes the reader task: the socket is asked for or wanted back.
    pub(super) wake_reader: Notify,
    /// The runtime needs the socket back.
    pub(super) release: std::sync::atomic::AtomicBool,
    /// The flusher, waiting for the socket to come back.
    pub(super) writer_waker: Mutex<Option<Waker>>,
    /// An eventfd that wakes a direct call from its `poll`: the socket is
    /// wanted back, a deadline passed, or the session closed.
    pub(super) kick: rustix::fd::OwnedFd,
}

pub(super) struct LeaseState {
    pub(super) holder: Holder,
    /// A direct call ran since the reader task last looked.
    pub(super) used: bool,
    /// No direct calls until then (see [`LeaseState::contended`]).
    pub(super) backoff_until: Option<std::time::Instant>,
}

pub(super) enum Holder {
    /// The reader task reads; `asked` when a blocking call wants the socket.
    Engine { asked: bool },
    /// Handed over; no call is using it.
    Idle(Box<DirectSide>),
    /// A direct call is using it.
    InCall,
}

/// The socket and read state while direct calls have them.
pub(super) struct DirectSide {
    pub(super) stream: Arc<StdUnixStream>,
    pub(super) splitter: Splitter,
    pub(super) busy: bool,
    pub(super) peer: Peer,
}

impl Lease {
    pub(super) fn new() -> std::io::Result<Lease> {
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
    pub(super) fn kick(&self) {
        let _ = rustix::io::write(&self.kick, &1u64.to_ne_bytes());
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, LeaseState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Asks for the socket back in the runtime (a no-op while it is
    /// there); `waker` is woken once it is.  Takes no lock but the leaf
    /// `writer_waker`, so it may be called with the outbox locked.
    pub(super) fn want_back(&self, waker: Option<&Waker>) {
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
    pub(super) fn want_back_if_lent(&self) {
        let mut state = self.lock();
        if !matches!(state.holder, Holder::Engine { .. }) {
            state.contended();
            drop(state);
            self.want_back(None);
        }
    }

    /// The socket for one direct call, if the session is quiet and the
    /// reader task hands it over (or already has).
    pub(super) fn take<'a>(&'a self, shared: &'a Shared) -> Option<Lent<'a>> {
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
                // The session has ended, and the reader task with it: no
                // one would answer (the call then fails the async way).
                Holder::Engine { .. } if shared.has_ended() => return None,
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
    pub(super) fn contended(&mut self) {
        self.backoff_until = Some(std::time::Instant::now() + DIRECT_BACKOFF);
    }
}

/// The socket lent to one direct call; given back when dropped, also on
/// an early return or a panic, so the reader task can always take it back.
pub(super) struct Lent<'a> {
    pub(super) lease: &'a Lease,
    pub(super) shared: &'a Shared,
    pub(super) side: Option<Box<DirectSide>>,
}

impl Lent<'_> {
    pub(super) fn side(&mut self) -> Option<&mut DirectSide> {
        self.side.as_deref_mut()
    }

    /// Gives the socket back (idle), asking the reader task to take it if
    /// the runtime needs it: other calls wait for replies, or it was asked.
    pub(super) fn give_back(&mut self) {
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
    pub(super) fn read_some(
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
pub(super) enum DirectRead {
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
    pub(super) fn recv_now(&mut self) -> Result<Option<usize>> {
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
    pub(super) fn wait(&self, lease: &Lease) -> Result<bool> {
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

impl Shared {
    /// Nothing is queued or being written and no call is in flight.
    pub(super) fn quiet(&self) -> bool {
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
            // Calls that take turns (an agent without ids) go the async
            // way, where turns are kept.
            Some(lease) if request.expect_reply && request.fds.is_empty() && !shared.serial() => {
                lease.take(shared)
            }
            _ => None,
        };
        let Some(mut lent) = lent else {
            return runtime.block_on(self.call(request)).map(Direct::Raw);
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
        let written = shared.send(&request, id, &id_text, false)?;
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
                // `Some` once the call is over: its reply, or `None` when
                // the session ended without one.
                let over = match registered.receiver.try_recv() {
                    Err(oneshot::error::TryRecvError::Empty) => None,
                    Ok(reply) => Some(Some(reply)),
                    Err(oneshot::error::TryRecvError::Closed) => Some(None),
                };
                if let Some(reply) = over {
                    if let Some(registered) = registration.take() {
                        return finish(shared, &request, registered, reply).map(Direct::Raw);
                    }
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
                if decoded.is_none() && take_reply(bytes, &reply_end, &decode, &mut decoded, shared)
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
                if let Some(registered) = registration.take() {
                    registered.answered();
                }
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
        let reply = runtime.block_on(wait).ok();
        finish(shared, &request, registered, reply).map(Direct::Raw)
    }
}

/// Decodes `bytes` into `slot` if it is the plain reply to call `id` and
/// `decode` takes its value (see [`Engine::call_blocking`]).  A `true`
/// means `bytes` is one valid JSON message (the plain form around a value
/// that parsed, from UTF-8), as [`Splitter::take_line`] requires.
pub(super) fn take_reply<T>(
    bytes: &[u8],
    reply_end: &ReplyEnd,
    decode: &impl Fn(&str) -> Option<T>,
    slot: &mut Option<T>,
    shared: &Shared,
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
        trace!(peer = shared.peer.name(), message = %Redacted(bytes), "receive");
        shared.record(false, bytes);
    }
    slot.is_some()
}

/// How the plain reply to a call ends: `, "id": ID}`.
pub(super) struct ReplyEnd {
    pub(super) bytes: [u8; 32],
    pub(super) len: usize,
}

impl ReplyEnd {
    pub(super) fn new(id: &IdText) -> ReplyEnd {
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

    pub(super) fn as_bytes(&self) -> &[u8] {
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
pub(super) async fn read_loop_direct(mut reader: MessageReader<UnixReader>, shared: Arc<Shared>) {
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

/// Hands the socket over to direct calls if one asked and the session is
/// quiet: `Ok` when handed over, `Err(Ok(reader))` when kept, `Err(Err)`
/// when the session must end.
#[allow(clippy::result_large_err)]
pub(super) fn hand_over(
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
pub(super) fn take_back(
    shared: &Shared,
    lease: &Lease,
) -> Result<Option<MessageReader<UnixReader>>> {
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
