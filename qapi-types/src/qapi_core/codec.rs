//! Type-erased decoding of commands and events known only by name.

use std::fmt;

use serde::de::DeserializeOwned;

use super::{Command, Event};

/// Type-erased decoding for one command, so programs can check messages
/// whose command is known only by name (a transcript, a log).  Errors name
/// the JSON path of the offending value.
#[derive(Clone, Copy)]
pub struct CommandCodec {
    /// The command's wire name.
    pub name: &'static str,
    /// Whether the command answers on success (false for the guest
    /// agent's `guest-shutdown` and `guest-suspend-*`: see
    /// [`Command::SUCCESS_RESPONSE`]).
    pub success_response: bool,
    /// Whether the command may be executed out of band.
    pub allow_oob: bool,
    decode_arguments: fn(serde_json::Value) -> Result<serde_json::Value, String>,
    decode_return: fn(serde_json::Value) -> Result<(), String>,
}

impl fmt::Debug for CommandCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CommandCodec")
            .field("name", &self.name)
            .field("success_response", &self.success_response)
            .field("allow_oob", &self.allow_oob)
            .finish()
    }
}

/// Decodes `value` as `T`; the error names the JSON path where it failed.
pub fn decode_with_path<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, String> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            e.into_inner().to_string()
        } else {
            format!("at {path}: {}", e.into_inner())
        }
    })
}

impl CommandCodec {
    /// The codec of command type `C`.
    pub fn of<C: Command + DeserializeOwned>() -> Self {
        CommandCodec {
            name: C::NAME,
            success_response: C::SUCCESS_RESPONSE,
            allow_oob: C::ALLOW_OOB,
            decode_arguments: |value| {
                let args: C = decode_with_path(value)?;
                serde_json::to_value(&args).map_err(|e| e.to_string())
            },
            decode_return: |value| decode_with_path::<C::Returns>(value).map(drop),
        }
    }

    /// Decodes `arguments` as this command's arguments and encodes them
    /// again (equal to the input when the bindings understood all of it).
    pub fn decode_arguments(
        &self,
        arguments: serde_json::Value,
    ) -> Result<serde_json::Value, String> {
        (self.decode_arguments)(arguments)
    }

    /// Decodes a successful reply's `return` value as this command's reply.
    pub fn decode_return(&self, value: serde_json::Value) -> Result<(), String> {
        (self.decode_return)(value)
    }
}

/// Type-erased decoding for one event's data (see [`CommandCodec`]).
#[derive(Clone, Copy)]
pub struct EventCodec {
    /// The event's wire name.
    pub name: &'static str,
    decode_data: fn(serde_json::Value) -> Result<(), String>,
}

impl fmt::Debug for EventCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventCodec")
            .field("name", &self.name)
            .finish()
    }
}

impl EventCodec {
    /// The codec of event data type `E`.
    pub fn of<E: Event>() -> Self {
        EventCodec {
            name: E::NAME,
            decode_data: |value| decode_with_path::<E>(value).map(drop),
        }
    }

    /// Decodes an event's `data` (`{}` when the message has none).
    pub fn decode_data(&self, data: serde_json::Value) -> Result<(), String> {
        (self.decode_data)(data)
    }
}
