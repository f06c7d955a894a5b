//! Event subscribers and the end of a session: the broadcast channel and
//! the events kept for the first subscriber ([`Events`]), publishing an
//! event, subscribing, closing the session from this side
//! ([`Engine::close`]) and waiting for its end ([`Engine::closed`]).

use std::collections::VecDeque;
use std::future::Future;
use std::net::Shutdown;
use std::os::unix::net::UnixStream as StdUnixStream;
use std::sync::Arc;

use tokio::sync::{broadcast, watch};

use crate::error::Error;
use crate::events::{EventStream, RawEvent};

use super::outbox::Writer;
use super::{Engine, EngineConfig, Shared};

/// Event subscribers.  The channel is made on the first subscription, so
/// a session nobody listens to costs nothing for events (a broadcast
/// channel allocates all its slots up front); until then events are
/// dropped, or kept for the first subscriber (`keep_early_events`).
pub(super) struct Events {
    sender: Option<broadcast::Sender<Arc<RawEvent>>>,
    capacity: usize,
    /// The session has ended: no more events, no new channel.
    closed: bool,
    /// Events kept until the first subscription, when asked to.
    early: Option<Early>,
    /// Why the session ended, once it has; for [`Engine::closed`] and for
    /// event streams that need to say why they ended.
    ended: watch::Sender<Option<Error>>,
}

/// The events that arrived before the first subscription: the newest
/// `capacity`, and how many older ones were dropped.
#[derive(Default)]
struct Early {
    kept: VecDeque<Arc<RawEvent>>,
    missed: u64,
}

impl Events {
    pub(super) fn new(config: &EngineConfig) -> Events {
        Events {
            sender: None,
            capacity: config.event_capacity.max(1),
            closed: false,
            early: config.keep_early_events.then(Early::default),
            ended: watch::Sender::new(None),
        }
    }

    /// The session has ended with `error`: streams end once they have
    /// read what they were sent, and [`Engine::closed`] resolves.  Events
    /// still kept for a first subscriber stay for it.
    pub(super) fn end(&mut self, error: &Error) {
        self.closed = true;
        self.sender = None;
        self.ended.send_if_modified(|ended| {
            let first = ended.is_none();
            if first {
                *ended = Some(error.clone());
            }
            first
        });
    }
}

impl Shared {
    /// Hands an event to the subscribers, or keeps it for the first one.
    pub(super) fn publish_event(&self, event: RawEvent) {
        let mut events = self.events.lock().unwrap_or_else(|e| e.into_inner());
        if events.closed {
            return;
        }
        if let Some(sender) = &events.sender {
            // No subscriber left is not an error: nobody asked.
            let _ = sender.send(Arc::new(event));
            return;
        }
        let capacity = events.capacity;
        if let Some(early) = &mut events.early {
            if early.kept.len() >= capacity {
                early.kept.pop_front();
                early.missed += 1;
            }
            early.kept.push_back(Arc::new(event));
        }
    }
}

impl Engine {
    /// A new event subscription.  The first one also gets the events kept
    /// until then (`keep_early_events`), after a lag report for those that
    /// did not fit; no later subscriber sees them.  On a session that has
    /// ended, the stream has only those kept events, if any.
    pub(crate) fn subscribe(&self) -> EventStream {
        let mut events = self.shared.events.lock().unwrap_or_else(|e| e.into_inner());
        let ended = events.ended.subscribe();
        let early = events.early.take().unwrap_or_default();
        let capacity = events.capacity;
        let (receiver, sender) = if events.closed {
            if early.kept.is_empty() && early.missed == 0 {
                return EventStream::new(None, 0, ended);
            }
            // A channel of its own, closed once the kept events are in.
            let (sender, receiver) = broadcast::channel(capacity);
            (receiver, sender)
        } else {
            let sender = events
                .sender
                .get_or_insert_with(|| broadcast::channel(capacity).0);
            (sender.subscribe(), sender.clone())
        };
        // Under the lock, so nothing is published in between; there are
        // at most `capacity` of them, which the channel holds.
        for event in early.kept {
            let _ = sender.send(event);
        }
        EventStream::new(Some(receiver), early.missed, ended)
    }

    /// Ends the session from this side, now: calls in flight fail with
    /// [`Error::Disconnected`] ("closed by the client"), event streams end
    /// once they have read what they were sent, and the connection is shut
    /// down (the peer sees the end of the stream).  Requests still queued
    /// are not sent.  Does nothing more if the session has ended already.
    pub(crate) fn close(&self) {
        self.shared.close(Error::Disconnected {
            reason: "closed by the client".into(),
        });
        if let Some(socket) = &self.socket {
            // Both directions, whoever holds the socket now (the reader
            // task, a direct call, a request sending file descriptors).
            let _ = socket.shutdown(Shutdown::Both);
        }
        // Any other stream closes when both its halves are dropped: the
        // reader task's and the outbox's.
        self.reader.abort();
        let writer = std::mem::replace(&mut self.shared.lock_outbox().writer, Writer::Lent);
        drop(writer);
    }

    /// Resolves with the reason once the session has ended: the peer hung
    /// up, the stream broke, a protocol error, [`close`](Self::close); or
    /// every handle was dropped.  Holds nothing of the session.
    pub(crate) fn closed(&self) -> impl Future<Output = Error> + Send + 'static {
        let ended = self
            .shared
            .events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .ended
            .subscribe();
        end_reason(ended)
    }
}

/// Waits until the session has ended and says why.
async fn end_reason(mut ended: watch::Receiver<Option<Error>>) -> Error {
    let reason = match ended.wait_for(Option::is_some).await {
        Ok(reason) => reason.clone(),
        // The session's state is gone: every handle was dropped.
        Err(_) => None,
    };
    reason.unwrap_or_else(dropped)
}

/// The reason for a session whose handles were all dropped.
pub(crate) fn dropped() -> Error {
    Error::Disconnected {
        reason: "the session was dropped".into(),
    }
}

/// The Unix socket under a writer, which [`Engine::close`] shuts down.
pub(super) fn socket_of(writer: &Writer) -> Option<Arc<StdUnixStream>> {
    match writer {
        Writer::Unix(half) => Some(Arc::clone(half.socket())),
        Writer::Direct { stream, .. } => Some(Arc::clone(stream)),
        Writer::Stream(_) | Writer::Lent | Writer::Busy => None,
    }
}

impl Shared {
    /// Whether the session has ended.
    pub(super) fn has_ended(&self) -> bool {
        let calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        calls.closed.is_some()
    }
}
