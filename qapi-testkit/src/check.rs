//! Every message of a transcript decoded with the bindings.
//!
//! Requests decode as their command's arguments (and must encode back to
//! the same JSON), replies as the return type of the request with their
//! `id` (or of the request before them), events as typed events;
//! `qapi-types` for QMP, `qga-types` for the guest agent.  Commands and
//! events the bindings do not know (an older or newer QEMU's) are counted
//! as unknown, not as failures.

use serde_json::Value;

pub use qapi_types::transcript::{Failure, Report};

use crate::transcript::{Protocol, Transcript};

/// Checks a transcript against the bindings of its protocol (QMP when it
/// names none).
pub fn check(transcript: &Transcript) -> Report {
    let messages = transcript.messages();
    match transcript.protocol.unwrap_or(Protocol::Qmp) {
        Protocol::Qmp => {
            qapi_types::transcript::validate(&messages, qapi_types::command_codec, decode_event)
        }
        // The guest agent has no events.
        Protocol::Qga => {
            qapi_types::transcript::validate(&messages, qga_types::command_codec, |_| Ok(false))
        }
    }
}

/// Decodes an event message (without timestamp) with the event's own
/// type: `Ok(false)` when the bindings do not know the event.
pub fn decode_event(message: Value) -> Result<bool, String> {
    let name = message["event"].as_str().unwrap_or_default();
    match qapi_types::event_codec(name) {
        Some(codec) => codec
            .decode_data(
                message
                    .get("data")
                    .cloned()
                    .unwrap_or_else(|| serde_json::json!({})),
            )
            .map(|()| true),
        None => Ok(false),
    }
}
