//! A QMP session that outlives QEMU: when the connection ends (QEMU
//! exited, was killed, restarted), it connects again to the same socket,
//! negotiates, and goes on.
//!
//! # Semantics
//!
//! - **Calls in flight** when the connection ends fail with
//!   [`Error::Disconnected`], as on any session: whether the command ran
//!   cannot be known, so it is never sent again.  So does a call made
//!   after QEMU went away but before the session read the end of the
//!   stream (usually microseconds).
//! - **Calls made while reconnecting** wait for the next session, within
//!   their time limit (the handle's, [`ReconnectingQmp::with_timeout`]),
//!   then run on it; a call that runs out of time first fails with
//!   [`Error::Timeout`] and was never sent.
//! - **Event subscribers** ([`ReconnectingQmp::events`]) keep their stream
//!   across sessions: each session's events are relayed to them from its
//!   handshake on (nothing a new session sends is missed).  At each
//!   reconnection the stream yields [`Error::Reconnected`] once, before
//!   the new session's events, because what happened while QEMU was away
//!   was not seen: re-read the state you follow (`query-status`,
//!   `query-jobs`).
//! - **Retries**: the first connection must succeed (its error is
//!   returned); after that, connecting is retried until it works, 50 ms
//!   after the end at first, then with the delay doubling up to
//!   [`MAX_RECONNECT_DELAY`].  Errors on the way are logged at `debug`.
//! - Dropping the last handle stops reconnecting and closes the session.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use qapi_types::{AnyEvent, EventMessage, QmpCommand};
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::debug;

use crate::error::{Error, Result};
use crate::events::{EventStream, RawEvent};
use crate::qmp::{Qmp, QmpBuilder};

/// The longest wait between two attempts to connect again.
pub const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(2);
const FIRST_RECONNECT_DELAY: Duration = Duration::from_millis(50);

/// Where the session stands.
#[derive(Clone)]
enum State {
    Connected {
        qmp: Qmp,
        generation: u64,
    },
    /// Between sessions; `generation` is the one that ended.
    Reconnecting {
        generation: u64,
    },
}

/// A QMP session that reconnects after QEMU restarts; see the module docs
/// of what happens to calls and subscribers then.  Clones share it.
#[derive(Clone)]
pub struct ReconnectingQmp {
    inner: Arc<Inner>,
    timeout: Option<Duration>,
}

struct Inner {
    state: watch::Receiver<State>,
    /// Every session's events, and a [`Error::Reconnected`] between two.
    events: broadcast::Sender<Result<Arc<RawEvent>>>,
    task: JoinHandle<()>,
    path: PathBuf,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.task.abort();
        if let State::Connected { qmp, .. } = &*self.state.borrow() {
            qmp.close();
        }
    }
}

impl std::fmt::Debug for ReconnectingQmp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReconnectingQmp")
            .field("path", &self.inner.path)
            .field("generation", &self.generation())
            .field("connected", &self.current().is_some())
            .finish()
    }
}

impl QmpBuilder {
    /// Connects to a QMP Unix socket and keeps connecting to it again
    /// whenever the session ends (see [`ReconnectingQmp`]).  The first
    /// connection must succeed.
    pub async fn connect_unix_reconnecting(
        self,
        path: impl Into<PathBuf>,
    ) -> Result<ReconnectingQmp> {
        let path = path.into();
        let timeout = self.default_timeout();
        // The relay is each session's first subscriber: it gets the events
        // from the handshake on.
        let builder = self.keep_early_events(true);
        let (events, _) = broadcast::channel(builder.events_kept().max(1));
        let qmp = builder.clone().connect_unix(&path).await?;
        tokio::spawn(relay(qmp.events(), events.clone()));
        let (sender, state) = watch::channel(State::Connected {
            qmp: qmp.clone(),
            generation: 0,
        });
        let task = tokio::spawn(keep_connected(
            builder,
            path.clone(),
            sender,
            events.clone(),
            qmp,
        ));
        Ok(ReconnectingQmp {
            inner: Arc::new(Inner {
                state,
                events,
                task,
                path,
            }),
            timeout,
        })
    }
}

/// Waits for each session's end and connects again.
async fn keep_connected(
    builder: QmpBuilder,
    path: PathBuf,
    state: watch::Sender<State>,
    events: broadcast::Sender<Result<Arc<RawEvent>>>,
    mut qmp: Qmp,
) {
    let mut generation = 0;
    loop {
        let reason = qmp.closed().await;
        debug!(path = %path.display(), %reason, generation, "QMP session ended; reconnecting");
        state.send_replace(State::Reconnecting { generation });
        drop(qmp);
        let mut delay = FIRST_RECONNECT_DELAY;
        qmp = loop {
            tokio::time::sleep(delay).await;
            match builder.clone().connect_unix(&path).await {
                Ok(qmp) => break qmp,
                Err(error) => {
                    debug!(path = %path.display(), %error, "reconnecting failed; retrying");
                    delay = (delay * 2).min(MAX_RECONNECT_DELAY);
                }
            }
        };
        generation += 1;
        debug!(path = %path.display(), generation, "QMP session reconnected");
        let _ = events.send(Err(Error::Reconnected { generation }));
        tokio::spawn(relay(qmp.events(), events.clone()));
        state.send_replace(State::Connected {
            qmp: qmp.clone(),
            generation,
        });
    }
}

/// Hands one session's events to the reconnecting session's subscribers.
async fn relay(mut session: EventStream, events: broadcast::Sender<Result<Arc<RawEvent>>>) {
    while let Some(event) = session.recv_raw().await {
        // No subscriber is not an error: nobody asked.
        let _ = events.send(event);
    }
}

impl ReconnectingQmp {
    /// The session now, if connected.
    pub fn current(&self) -> Option<Qmp> {
        match &*self.inner.state.borrow() {
            State::Connected { qmp, .. } if !qmp.is_closed() => Some(qmp.clone()),
            _ => None,
        }
    }

    /// How many times the session has reconnected.
    pub fn generation(&self) -> u64 {
        match &*self.inner.state.borrow() {
            State::Connected { generation, .. } | State::Reconnecting { generation } => *generation,
        }
    }

    /// The session now, or the next one within this handle's time limit
    /// (`Error::Timeout` with command `reconnect` if none comes).  Any
    /// [`Qmp`] method can be called on it; it is not replaced when it ends.
    pub async fn session(&self) -> Result<Qmp> {
        let deadline = self.timeout.map(|after| Instant::now() + after);
        self.session_by(deadline).await
    }

    async fn session_by(&self, deadline: Option<Instant>) -> Result<Qmp> {
        let mut state = self.inner.state.clone();
        let wait = state.wait_for(|state| match state {
            State::Connected { qmp, .. } => !qmp.is_closed(),
            State::Reconnecting { .. } => false,
        });
        let found = match deadline {
            Some(deadline) => {
                tokio::time::timeout_at(deadline, wait)
                    .await
                    .map_err(|_| Error::Timeout {
                        command: "reconnect".into(),
                        after: self.timeout.unwrap_or_default(),
                        sent: false,
                    })?
            }
            None => wait.await,
        };
        match found.as_deref() {
            Ok(State::Connected { qmp, .. }) => Ok(qmp.clone()),
            _ => Err(Error::Disconnected {
                reason: "the reconnecting session stopped".into(),
            }),
        }
    }

    /// Executes a command on the session, waiting for the next one if
    /// between sessions, all within the handle's time limit.
    pub async fn execute<C: QmpCommand>(&self, command: &C) -> Result<C::Returns> {
        let (qmp, timeout) = self.session_for_call().await?;
        qmp.with_timeout(timeout).execute(command).await
    }

    /// [`Qmp::execute_raw`] on the session (see [`execute`](Self::execute)).
    pub async fn execute_raw(
        &self,
        name: &str,
        arguments: Option<&serde_json::Value>,
    ) -> Result<serde_json::Value> {
        let (qmp, timeout) = self.session_for_call().await?;
        qmp.with_timeout(timeout).execute_raw(name, arguments).await
    }

    /// The session for a call, and what is left of its time limit.
    async fn session_for_call(&self) -> Result<(Qmp, Option<Duration>)> {
        let deadline = self.timeout.map(|after| Instant::now() + after);
        let qmp = self.session_by(deadline).await?;
        let left = deadline.map(|deadline| deadline.saturating_duration_since(Instant::now()));
        Ok((qmp, left))
    }

    /// A handle whose calls (and waits for a session) have time limit
    /// `timeout`.
    pub fn with_timeout(&self, timeout: Option<Duration>) -> ReconnectingQmp {
        ReconnectingQmp {
            inner: Arc::clone(&self.inner),
            timeout,
        }
    }

    /// Events of every session from now on (see the module docs).
    pub fn events(&self) -> ReconnectingEvents {
        ReconnectingEvents {
            events: self.inner.events.subscribe(),
        }
    }
}

/// The events of a [`ReconnectingQmp`], across its sessions: each
/// session's, and one [`Error::Reconnected`] between two.  A subscriber
/// that falls more than the builder's `event_capacity` behind is told
/// how many it missed ([`Error::EventsLagged`]).  Ends (`None`) when the
/// reconnecting session is dropped.
#[derive(Debug)]
pub struct ReconnectingEvents {
    events: broadcast::Receiver<Result<Arc<RawEvent>>>,
}

impl ReconnectingEvents {
    /// The next event, undecoded, or [`Error::Reconnected`] after a
    /// reconnection.
    pub async fn recv_raw(&mut self) -> Option<Result<Arc<RawEvent>>> {
        match self.events.recv().await {
            Ok(event) => Some(event),
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                Some(Err(Error::EventsLagged { missed }))
            }
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }

    /// The next event, decoded (see [`RawEvent::decode`]).
    pub async fn recv(&mut self) -> Option<Result<EventMessage<AnyEvent>>> {
        Some(self.recv_raw().await?.and_then(|event| event.decode()))
    }
}
