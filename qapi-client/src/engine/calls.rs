//! The call registry: calls waiting for their replies, keyed by request
//! id, each with a oneshot channel and an optional deadline; the deadline
//! task that fails calls whose time is up; ending the session.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;
use tracing::debug;

use crate::error::{Error, Result};

use super::outbox::Progress;
use super::routing::Reply;
use super::Shared;

#[derive(Default)]
pub(super) struct Calls {
    pub(super) waiting: HashMap<u64, Waiting, BuildHasherDefault<IdHasher>>,
    /// The earliest deadline the deadline task is waiting for.
    pub(super) next_deadline: Option<Instant>,
    /// Set once the session has ended; new calls fail with it at once.
    pub(super) closed: Option<Error>,
    /// Calls that gave up after their request went out: the peer may
    /// still answer them.  While any may, an error reply without an id
    /// cannot be pinned on the one call in flight.  Bounded: past
    /// [`MAX_ABANDONED`], `abandoned_overflow` stays set for good.
    pub(super) abandoned: HashSet<u64, BuildHasherDefault<IdHasher>>,
    pub(super) abandoned_overflow: bool,
    /// A guest-agent sync in progress (see `Engine::sync`).
    pub(super) sync: Option<SyncWait>,
    /// The agent answers without ids and a call gave up after its request
    /// went out, so its late reply could be taken for the next call's: the
    /// next call syncs first.
    pub(super) needs_sync: bool,
}

/// The most abandoned calls [`Calls::abandoned`] remembers.
const MAX_ABANDONED: usize = 1024;

/// A guest-agent sync waiting for its reply: the request id it was sent
/// with and the value the reply must carry.  Until it comes, replies
/// without an id that do not carry the value are stale and dropped.
#[derive(Debug, Clone, Copy)]
pub(super) struct SyncWait {
    pub(super) id: u64,
    pub(super) value: i64,
    /// The sync's reply came without an id: the agent does not echo ids.
    pub(super) answered_without_id: bool,
}

/// A call waiting for its reply.
pub(super) struct Waiting {
    pub(super) sender: oneshot::Sender<Reply>,
    /// When the deadline task fails it (with [`timed_out`]).
    pub(super) deadline: Option<Instant>,
}

/// What the deadline task sends a call whose time is up; the call turns
/// it into its own [`Error::Timeout`] (no reply is ever a timeout).
pub(super) fn timed_out() -> Error {
    Error::Timeout {
        command: Arc::from(""),
        after: Duration::ZERO,
        sent: false,
    }
}

/// Hashes request ids, which this side chooses (a reply's id is only
/// looked up), with one multiplication instead of SipHash.
#[derive(Default)]
pub(super) struct IdHasher(u64);

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

/// Forgets a call that ends without its reply (see
/// [`Shared::abandon`]), also when its future is dropped.
pub(super) struct CallGuard<'a> {
    pub(super) shared: &'a Shared,
    pub(super) id: u64,
}

impl Drop for CallGuard<'_> {
    fn drop(&mut self) {
        self.shared.abandon(self.id);
    }
}

/// Fails the calls whose deadline has passed: one timer for the session
/// instead of one per call.  It sleeps until the earliest deadline; calls
/// that end before theirs just leave the map, so it mostly wakes once per
/// time limit, to find the next earliest.
pub(super) async fn watch_deadlines(shared: Arc<Shared>) {
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

/// A call waiting for its reply: the deadline task keeps its time (and
/// kicks a direct call out of `poll`), and the reply, routed by whoever
/// reads the socket, arrives on `receiver`.  Dropping it forgets the call.
pub(super) struct Registration<'a> {
    pub(super) receiver: oneshot::Receiver<Reply>,
    pub(super) deadline: Option<Instant>,
    pub(super) guard: CallGuard<'a>,
}

impl<'a> Registration<'a> {
    /// Registers call `id`; also says how many calls are in flight now.
    pub(super) fn new(
        shared: &'a Shared,
        id: u64,
        deadline: Option<Instant>,
    ) -> Result<(Self, usize)> {
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
    pub(super) fn delivered(self) {
        std::mem::forget(self.guard);
    }

    /// The call took its reply itself (a direct call): it only leaves the
    /// registry.
    pub(super) fn answered(self) {
        let shared = self.guard.shared;
        let id = self.guard.id;
        std::mem::forget(self.guard);
        shared
            .calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .waiting
            .remove(&id);
    }

    /// The call gives up without its reply: see [`Shared::abandon`].
    pub(super) fn abandon(self) -> Progress {
        let progress = self.guard.shared.abandon(self.guard.id);
        std::mem::forget(self.guard);
        progress
    }
}

/// The request id of a guest-agent sync: random, at least 2^40 and below
/// 2^52 (which any JSON peer reads exactly), so that it never meets the
/// session's counter and a stale reply from an earlier client cannot
/// carry it (see `Engine::sync`).
pub(super) fn random_sync_id() -> u64 {
    (random_u64() & ((1 << 52) - 1)) | (1 << 40)
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

impl Shared {
    /// Registers a call waiting for its reply (and its deadline with the
    /// deadline task); returns the number of calls in flight.
    #[inline]
    pub(super) fn register(
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

    /// Forgets call `id`, which ends without its reply (time limit, future
    /// dropped, a no-reply command's grace period over): takes its request
    /// back if none of it was written, so the peer never sees it, and
    /// otherwise remembers that the peer may still answer it.
    pub(super) fn abandon(&self, id: u64) -> Progress {
        self.calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .waiting
            .remove(&id);
        let progress = self.lock_outbox().withdraw(id);
        if progress == Progress::Sent {
            let mut calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
            if calls.closed.is_none() {
                if calls.abandoned.len() < MAX_ABANDONED {
                    calls.abandoned.insert(id);
                } else {
                    calls.abandoned_overflow = true;
                }
                if !self.echoes_ids() {
                    calls.needs_sync = true;
                }
            }
        }
        progress
    }

    pub(super) fn closed_error(&self) -> Error {
        let calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        calls.closed.clone().unwrap_or_else(|| Error::Disconnected {
            reason: "session ended".into(),
        })
    }

    /// Ends the session: fails every waiting call with `error` and ends
    /// the event streams.
    pub(super) fn close(&self, error: Error) {
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
        events.end(&error);
        drop(events);
        self.lock_outbox().failed.get_or_insert(error);
        self.drained.notify_waiters();
        if let Some(lease) = &self.lease {
            lease.kick();
        }
    }
}
