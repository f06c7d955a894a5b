//! Routing: what a message from the peer is (a reply to which call, an
//! event, or something malformed) and where it goes.  Replies of the plain
//! form QEMU writes are recognised without parsing (see
//! [`plain_reply_parts`]).

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;
use tracing::{debug, trace, warn};

use crate::error::{Error, QmpError, Result};
use crate::events::RawEvent;

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
        let waiting = {
            let mut calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
            calls.waiting.remove(&id)
        };
        match waiting {
            Some(waiting) => {
                let _ = waiting.sender.send(reply);
            }
            None => debug!(
                peer = self.peer.name(),
                id, "reply for no waiting call (abandoned, duplicate or unsolicited); dropped"
            ),
        }
    }

    /// Routes one message.  An error means the session must close.
    pub(super) fn route(&self, bytes: &[u8]) -> Result<()> {
        trace!(peer = self.peer.name(), message = %String::from_utf8_lossy(bytes), "receive");
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
