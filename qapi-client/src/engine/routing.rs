//! Routing: what a message from the peer is (a reply to which call, an
//! event, or something malformed) and where it goes.  Replies of the plain
//! form QEMU writes are recognised without parsing (see
//! [`plain_reply_parts`]).

use std::borrow::Cow;
use std::sync::atomic::Ordering;

use serde::Deserialize;
use serde_json::value::RawValue;
use tracing::{debug, trace, warn};

use crate::error::{Error, QmpError, Result};
use crate::events::RawEvent;
use crate::redact::Redacted;

use super::{Peer, Shared};

/// A message from the peer, as far as routing needs to understand it;
/// it borrows from the read buffer, so routing copies only the `return`
/// value it hands on.
#[derive(Debug, Deserialize)]
pub(super) struct Incoming<'a> {
    #[serde(rename = "return", borrow, default, deserialize_with = "present")]
    pub(super) ret: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub(super) error: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    pub(super) id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub(super) event: Option<Cow<'a, str>>,
    #[serde(rename = "QMP", borrow, default)]
    pub(super) greeting: Option<&'a RawValue>,
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
pub(super) fn plain_reply(bytes: &[u8]) -> Option<(&RawValue, u64)> {
    let (value, id) = plain_reply_parts(bytes)?;
    let value = serde_json::from_slice(value).ok()?;
    Some((value, id))
}

/// [`plain_reply`] without the check of VALUE: its bytes and the id.
#[inline]
pub(super) fn plain_reply_parts(bytes: &[u8]) -> Option<(&[u8], u64)> {
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
pub(super) fn present<'de, D: serde::Deserializer<'de>>(
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
pub(super) const SHORT_MESSAGE: usize = 48;

impl PlainReply {
    pub(super) fn new(message: &[u8], value: &[u8]) -> PlainReply {
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
    pub(super) fn message(&self) -> &[u8] {
        match self {
            PlainReply::Short { len, bytes, .. } => &bytes[..usize::from(*len)],
            PlainReply::Long { message, .. } => message,
        }
    }

    /// The value's bytes (after `{"return": `, before `, "id": `).
    pub(super) fn value(&self) -> &[u8] {
        let end = match self {
            PlainReply::Short { value_end, .. } => usize::from(*value_end),
            PlainReply::Long { value_end, .. } => *value_end,
        };
        &self.message()[PLAIN_REPLY_START.len()..end]
    }
}

/// How a plain reply starts.
pub(super) const PLAIN_REPLY_START: &[u8] = b"{\"return\": ";

impl ReturnValue {
    /// The value's text, when it can be had without parsing the message.
    pub(super) fn text(&self) -> Option<&str> {
        match self {
            ReturnValue::Parsed(value) => Some(value.get()),
            ReturnValue::Plain(plain) => std::str::from_utf8(plain.value()).ok(),
        }
    }
}

impl Shared {
    pub(super) fn deliver(&self, id: u64, reply: Reply) {
        let (waiting, abandoned, syncing) = {
            let mut calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
            match calls.waiting.remove(&id) {
                Some(waiting) => (Some(waiting), false, false),
                None => (None, calls.abandoned.remove(&id), calls.sync.is_some()),
            }
        };
        match (waiting, reply) {
            (Some(waiting), reply) => {
                let _ = waiting.sender.send(reply);
            }
            // An earlier client's, which the sync drops.
            (None, Err(_)) if syncing && !abandoned => {
                debug!(
                    peer = self.peer.name(),
                    id, "stale error reply before the sync's; dropped"
                )
            }
            (None, Err(error)) => self.unclaimed_error(
                &error,
                if abandoned {
                    "error reply to a call that gave up"
                } else {
                    "error reply to no call of this session"
                },
            ),
            (None, Ok(_)) => debug!(
                peer = self.peer.name(),
                id,
                abandoned,
                "reply for no waiting call (one that gave up, or unsolicited); dropped"
            ),
        }
    }

    /// A guest-agent sync is waiting for its reply.
    fn syncing(&self) -> bool {
        let calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        calls.sync.is_some()
    }

    /// An error reply that answers no waiting call: never dropped
    /// silently, but logged and counted (see `Engine::unclaimed_errors`).
    fn unclaimed_error(&self, error: &Error, what: &str) {
        self.unclaimed_errors.fetch_add(1, Ordering::Relaxed);
        warn!(peer = self.peer.name(), %error, "{what}");
    }

    /// Routes a reply without an id (or with one that is not ours):
    ///
    /// - during a guest-agent sync, it is the sync's reply if it carries
    ///   the sync's value, and stale otherwise (see the `agent` module);
    /// - with an agent that does not echo ids, it is the reply of the one
    ///   call in flight;
    /// - otherwise, an error reply (QEMU's answer to a request it could not
    ///   take apart) fails the one call in flight when no other request is
    ///   still unanswered, and is [unclaimed](Self::unclaimed_error) when
    ///   that is not certain.
    fn route_without_id(&self, reply: Reply) {
        let mut calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(sync) = &mut calls.sync {
            let value = reply
                .as_ref()
                .ok()
                .and_then(|value| value.text())
                .and_then(|text| text.trim().parse::<i64>().ok());
            if value == Some(sync.value) {
                sync.answered_without_id = true;
                let id = sync.id;
                drop(calls);
                self.deliver(id, reply);
            } else {
                debug!(
                    peer = self.peer.name(),
                    "stale reply before the sync's; dropped"
                );
            }
            return;
        }
        let only = match calls.waiting.keys().next() {
            Some(&id) if calls.waiting.len() == 1 => Some(id),
            _ => None,
        };
        let certain = if !self.echoes_ids() {
            // Calls take turns, and a call that gave up is followed by a
            // sync: the one in flight is the one answered.
            only
        } else if reply.is_err() && calls.abandoned.is_empty() && !calls.abandoned_overflow {
            only.filter(|&id| !self.lock_outbox().is_queued(id))
        } else {
            None
        };
        drop(calls);
        match (certain, reply) {
            (Some(id), reply) => self.deliver(id, reply),
            (None, Err(error)) => self.unclaimed_error(
                &error,
                "error reply without an id that no call can be sure of",
            ),
            (None, Ok(_)) => {
                debug!(
                    peer = self.peer.name(),
                    "reply without an id to no certain call; dropped"
                )
            }
        }
    }

    /// Routes one message.  An error means the session must close.
    pub(super) fn route(&self, bytes: &[u8]) -> Result<()> {
        trace!(peer = self.peer.name(), message = %Redacted(bytes), "receive");
        self.record(false, bytes);
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
            match RawEvent::new(event.into_owned(), bytes) {
                Ok(raw) => self.publish_event(raw),
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
        match incoming.id.map(|id| id.get().parse::<u64>()) {
            Some(Ok(id)) => self.deliver(id, reply),
            // Not an id this session sends: an earlier client's.
            Some(Err(_)) => match reply {
                Err(error) if !self.syncing() => {
                    self.unclaimed_error(&error, "error reply to no call of this session")
                }
                _ => debug!(peer = self.peer.name(), "reply with a foreign id; dropped"),
            },
            // QEMU answers a request it cannot parse without an id, and
            // the guest agent our 0xFF; old agents answer everything so.
            None => self.route_without_id(reply),
        }
        Ok(())
    }

    /// The general parse of a message delivered as a plain reply whose
    /// value did not decode: its `return` value, or the protocol error the
    /// reader task would have found (which ends a QMP session, as there).
    pub(super) fn reparse(&self, message: &[u8]) -> Result<Box<RawValue>> {
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

    pub(super) fn malformed(&self, what: String) -> Result<()> {
        match self.peer {
            Peer::Qmp => Err(Error::Protocol(what.into())),
            Peer::Qga => {
                warn!("guest agent sent a bad message ({what}); dropped");
                Ok(())
            }
        }
    }
}
