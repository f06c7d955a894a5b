//! Events: what the reader task hands to subscribers, and the stream each
//! subscriber reads.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll, Waker};
use std::time::Duration;

use futures_core::Stream;
use qapi_types::{AnyEvent, Event, EventMessage, Timestamp};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::sync::{broadcast, watch};
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::BroadcastStream;

use crate::error::{Error, Result};

/// An event as received: its name and the whole message, decoded only when
/// asked, so that an event the bindings cannot decode is never lost.
#[derive(Debug)]
pub struct RawEvent {
    name: String,
    message: Box<RawValue>,
}

/// An event message with the data of one known event: `E` from `data`
/// (absent for an event without data), and the timestamp.
#[derive(Deserialize)]
#[serde(bound = "E: DeserializeOwned")]
struct Typed<E> {
    data: Option<E>,
    timestamp: Timestamp,
}

impl RawEvent {
    pub(crate) fn new(name: String, message: &[u8]) -> std::result::Result<Self, String> {
        let text = std::str::from_utf8(message).map_err(|e| format!("event is not UTF-8: {e}"))?;
        let message = RawValue::from_string(text.to_owned())
            .map_err(|e| format!("event is not valid JSON: {e}"))?;
        Ok(RawEvent { name, message })
    }

    /// The event's wire name (`STOP`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The whole message as QEMU sent it: `{"event": …, "data": …,
    /// "timestamp": …}`.
    pub fn json(&self) -> &str {
        self.message.get()
    }

    /// Decodes the message as any type, for example
    /// `EventMessage<AnyEvent>`; errors name the JSON path.
    pub fn decode_as<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        let mut deserializer = serde_json::Deserializer::from_str(self.message.get());
        serde_path_to_error::deserialize(&mut deserializer).map_err(|e| Error::Decode {
            command: self.name.as_str().into(),
            path: e.path().to_string(),
            message: e.into_inner().to_string(),
        })
    }

    /// Decodes the message into the bindings' event enum.  An event the
    /// bindings do not know decodes as `AnyEvent::Unrecognized`; a known
    /// event whose data does not fit (a member an older QEMU does not send)
    /// is an [`Error::Decode`].
    pub fn decode(&self) -> Result<EventMessage<AnyEvent>> {
        self.decode_as()
    }

    /// Decodes the message as the one event `E` (a type of
    /// `qapi_types::events`, such as `JobStatusChange`): its data and
    /// timestamp.  An [`Error::Decode`] if the event has another name or
    /// its data does not fit `E`.
    pub fn decode_event<E: Event>(&self) -> Result<EventMessage<E>> {
        if self.name != E::NAME {
            return Err(Error::Decode {
                command: self.name.as_str().into(),
                path: "event".into(),
                message: format!("expected {}", E::NAME),
            });
        }
        let typed: Typed<E> = self.decode_as()?;
        let event = match typed.data {
            Some(data) => data,
            // An event without data: `E` is a struct without members.
            None => serde_json::from_str("{}").map_err(|e| Error::Decode {
                command: self.name.as_str().into(),
                path: "data".into(),
                message: e.to_string(),
            })?,
        };
        Ok(EventMessage {
            event,
            timestamp: typed.timestamp,
        })
    }
}

/// The events of one session, for one subscriber.
///
/// Every subscriber sees every event that arrives after it subscribed
/// (the first one may also get earlier events: see
/// [`QmpBuilder::keep_early_events`](crate::QmpBuilder::keep_early_events)),
/// or only those of some names
/// ([`Qmp::events_named`](crate::Qmp::events_named)).  The session keeps
/// the newest `event_capacity` events (see the builders) for subscribers
/// that are behind; a subscriber that falls further behind is told how
/// many it missed ([`Error::EventsLagged`]) and goes on with the oldest
/// event still kept.  Nothing is dropped silently.  The stream ends
/// (`None`) when the session closes, once the events sent before that
/// have been read.
///
/// Read it with [`recv`](Self::recv) (decoded), [`recv_raw`](Self::recv_raw)
/// or [`try_recv_raw`](Self::try_recv_raw), wait for one event with
/// [`wait_for`](Self::wait_for), or use it as a
/// [`Stream`](futures_core::Stream) of undecoded events (`Item =
/// Result<Arc<RawEvent>>`: an event the bindings cannot decode is still an
/// item) with the combinators of `tokio-stream` or `futures`:
///
/// ```no_run
/// # async fn demo(qmp: qapi_client::Qmp) -> qapi_client::Result<()> {
/// use tokio_stream::StreamExt;
///
/// let mut stops = qmp
///     .events_named(["STOP", "RESUME"])
///     .map(|event| event.and_then(|event| event.decode()));
/// while let Some(message) = stops.next().await {
///     println!("{:?}", message?.event);
/// }
/// # Ok(()) }
/// ```
///
/// All of these read the same stream, in turn; each is cancel-safe (an
/// event is not lost when a `recv` future is dropped).
pub struct EventStream {
    /// `None` once the stream has ended.
    inner: Option<BroadcastStream<Arc<RawEvent>>>,
    /// Events that arrived before the first subscription and were not
    /// kept for it, reported first.
    missed_early: u64,
    /// Only events of these names, if set.
    names: Option<Box<[Box<str>]>>,
    /// Why the session ended, once it has.
    ended: watch::Receiver<Option<Error>>,
}

impl std::fmt::Debug for EventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStream")
            .field("ended", &self.inner.is_none())
            .field("names", &self.names)
            .finish_non_exhaustive()
    }
}

impl EventStream {
    pub(crate) fn new(
        receiver: Option<broadcast::Receiver<Arc<RawEvent>>>,
        missed_early: u64,
        ended: watch::Receiver<Option<Error>>,
    ) -> Self {
        EventStream {
            inner: receiver.map(BroadcastStream::new),
            missed_early,
            names: None,
            ended,
        }
    }

    /// Only the events named `names` from now on.
    pub(crate) fn only<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.names = Some(names.into_iter().map(|name| name.as_ref().into()).collect());
        self
    }

    fn wanted(&self, event: &RawEvent) -> bool {
        self.names
            .as_ref()
            .is_none_or(|names| names.iter().any(|name| **name == *event.name()))
    }

    /// The next event, undecoded; `None` once the session has closed and
    /// every kept event has been read.
    pub async fn recv_raw(&mut self) -> Option<Result<Arc<RawEvent>>> {
        std::future::poll_fn(|cx| self.poll_next_event(cx)).await
    }

    /// The next event, decoded (see [`RawEvent::decode`]).
    pub async fn recv(&mut self) -> Option<Result<EventMessage<AnyEvent>>> {
        Some(self.recv_raw().await?.and_then(|event| event.decode()))
    }

    /// Like [`recv_raw`](Self::recv_raw), without waiting: `None` when no
    /// event is ready (or the stream has ended).
    pub fn try_recv_raw(&mut self) -> Option<Result<Arc<RawEvent>>> {
        match self.poll_next_event(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(next) => next,
            Poll::Pending => None,
        }
    }

    /// Waits at most `timeout` for the next event `E` (a type of
    /// `qapi_types::events`) whose data `matches`, and returns it decoded.
    /// Events of other names, and those that do not match, are read and
    /// skipped, so use a stream of its own for this, made before the
    /// command that causes the event:
    ///
    /// ```no_run
    /// # async fn demo(qmp: qapi_client::Qmp) -> qapi_client::Result<()> {
    /// use std::time::Duration;
    /// use qapi_types::commands::JobFinalize;
    /// use qapi_types::events::JobStatusChange;
    /// use qapi_types::{Event, JobStatus};
    ///
    /// let mut jobs = qmp.events_named([JobStatusChange::NAME]);
    /// qmp.execute(&JobFinalize::new("j1")).await?;
    /// let message = jobs
    ///     .wait_for(Duration::from_secs(30), |change: &JobStatusChange| {
    ///         change.id == "j1" && change.status == JobStatus::Concluded
    ///     })
    ///     .await?;
    /// println!("j1 concluded at {}", message.timestamp.seconds);
    /// # Ok(()) }
    /// ```
    ///
    /// Fails with [`Error::EventTimeout`] when the time is up,
    /// [`Error::Decode`] when an event named `E` does not decode as `E`,
    /// the reason the session ended ([`Error::Disconnected`], …) when it
    /// ends first, and [`Error::EventsLagged`] when the stream fell behind:
    /// the event waited for may have been among those missed, so look at
    /// the state itself (`query-jobs`, say) before waiting again.  The
    /// stream goes on after any of these.
    pub async fn wait_for<E: Event>(
        &mut self,
        timeout: Duration,
        mut matches: impl FnMut(&E) -> bool,
    ) -> Result<EventMessage<E>> {
        let wait = async {
            loop {
                match self.recv_raw().await {
                    Some(Ok(event)) if event.name() == E::NAME => {
                        let message = event.decode_event::<E>()?;
                        if matches(&message.event) {
                            return Ok(message);
                        }
                    }
                    Some(Ok(_)) => {}
                    Some(Err(error)) => return Err(error),
                    None => return Err(self.end_reason()),
                }
            }
        };
        tokio::time::timeout(timeout, wait)
            .await
            .unwrap_or_else(|_| {
                Err(Error::EventTimeout {
                    event: E::NAME.into(),
                    after: timeout,
                })
            })
    }

    /// Why the session ended (for a stream that has ended).
    fn end_reason(&self) -> Error {
        self.ended
            .borrow()
            .clone()
            .unwrap_or_else(crate::engine::dropped)
    }

    fn poll_next_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Arc<RawEvent>>>> {
        if self.missed_early > 0 {
            let missed = std::mem::take(&mut self.missed_early);
            return Poll::Ready(Some(Err(Error::EventsLagged { missed })));
        }
        loop {
            let Some(inner) = self.inner.as_mut() else {
                return Poll::Ready(None);
            };
            match ready!(Pin::new(inner).poll_next(cx)) {
                Some(Ok(event)) => {
                    if self.wanted(&event) {
                        return Poll::Ready(Some(Ok(event)));
                    }
                }
                Some(Err(BroadcastStreamRecvError::Lagged(missed))) => {
                    return Poll::Ready(Some(Err(Error::EventsLagged { missed })));
                }
                None => {
                    self.inner = None;
                    return Poll::Ready(None);
                }
            }
        }
    }
}

/// The events, undecoded, as [`recv_raw`](EventStream::recv_raw) gives
/// them; lag reports are items too.  Ends when the session has closed and
/// every kept event has been read.
impl Stream for EventStream {
    type Item = Result<Arc<RawEvent>>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_next_event(cx)
    }
}
