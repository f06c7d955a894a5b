//! Events: what the reader task hands to subscribers, and the stream each
//! subscriber reads.

use std::sync::Arc;

use qapi_types::{AnyEvent, EventMessage};
use serde_json::value::RawValue;
use tokio::sync::broadcast;

use crate::error::{Error, Result};

/// An event as received: its name and the whole message, decoded only when
/// asked, so that an event the bindings cannot decode is never lost.
#[derive(Debug)]
pub struct RawEvent {
    name: String,
    message: Box<RawValue>,
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
}

/// The events of one session, for one subscriber.
///
/// Every subscriber sees every event that arrives after it subscribed.  The
/// session keeps the newest `event_capacity` events (see the builders) for
/// subscribers that are behind; a subscriber that falls further behind is
/// told how many it missed ([`Error::EventsLagged`]) and goes on with the
/// oldest event still kept.  Nothing is dropped silently.  The stream ends
/// (`None`) when the session closes.
#[derive(Debug)]
pub struct EventStream {
    receiver: Option<broadcast::Receiver<Arc<RawEvent>>>,
}

impl EventStream {
    pub(crate) fn new(receiver: Option<broadcast::Receiver<Arc<RawEvent>>>) -> Self {
        EventStream { receiver }
    }

    /// The next event, undecoded; `None` once the session has closed and
    /// every kept event has been read.
    pub async fn recv_raw(&mut self) -> Option<Result<Arc<RawEvent>>> {
        let receiver = self.receiver.as_mut()?;
        match receiver.recv().await {
            Ok(event) => Some(Ok(event)),
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                Some(Err(Error::EventsLagged { missed }))
            }
            Err(broadcast::error::RecvError::Closed) => {
                self.receiver = None;
                None
            }
        }
    }

    /// The next event, decoded (see [`RawEvent::decode`]).
    pub async fn recv(&mut self) -> Option<Result<EventMessage<AnyEvent>>> {
        Some(self.recv_raw().await?.and_then(|event| event.decode()))
    }

    /// Like [`recv_raw`](Self::recv_raw), without waiting: `None` when no
    /// event is ready (or the stream has ended).
    pub fn try_recv_raw(&mut self) -> Option<Result<Arc<RawEvent>>> {
        let receiver = self.receiver.as_mut()?;
        match receiver.try_recv() {
            Ok(event) => Some(Ok(event)),
            Err(broadcast::error::TryRecvError::Lagged(missed)) => {
                Some(Err(Error::EventsLagged { missed }))
            }
            Err(broadcast::error::TryRecvError::Empty) => None,
            Err(broadcast::error::TryRecvError::Closed) => {
                self.receiver = None;
                None
            }
        }
    }
}
