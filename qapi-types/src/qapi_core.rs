//! The hand-written core shared by all generated bindings (QMP here, the
//! guest agent in `qga-types`): what a command and an event are, and the
//! few types every protocol message uses.

use std::fmt;

use serde::de::{DeserializeOwned, Deserializer};
use serde::{Deserialize, Serialize};

/// A command: its wire name, flags, and the type of its reply.
///
/// Every generated command type implements it; the value of the type is the
/// command's arguments, serialized as the `arguments` object of an
/// `execute`.
pub trait Command: Serialize {
    /// The command's name on the wire (`query-block`).
    const NAME: &'static str;
    /// What a successful reply's `return` decodes to.
    type Returns: DeserializeOwned;
    /// Whether the command may be executed out of band (`exec-oob`).
    const ALLOW_OOB: bool = false;
    /// False for commands that send no reply when they succeed (such as the
    /// guest agent's `guest-shutdown`).
    const SUCCESS_RESPONSE: bool = true;
    /// Whether the command may run before the machine is created
    /// (`--preconfig`).
    const ALLOW_PRECONFIG: bool = false;
    /// Whether the schema marks the command `deprecated`.
    const DEPRECATED: bool = false;
    /// Whether the schema marks the command `unstable`.
    const UNSTABLE: bool = false;
}

/// An event's data type: its wire name.
pub trait Event: DeserializeOwned {
    /// The event's name on the wire (`BLOCK_JOB_COMPLETED`).
    const NAME: &'static str;
}

/// The reply of a command that returns nothing: QEMU sends `{}`.
///
/// Any object decodes into it, so a newer QEMU that starts returning data
/// does not break an older program.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize)]
pub struct Empty {}

impl<'de> Deserialize<'de> for Empty {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(deserializer)?;
        Ok(Empty {})
    }
}

/// When an event happened, as QEMU's host clock saw it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Timestamp {
    /// Seconds since the Unix epoch.
    pub seconds: i64,
    /// Microseconds within the second.
    pub microseconds: i64,
}

/// An event message: which event, with its data, and when.
///
/// `E` is the generated `Event` enum of a protocol; an event the bindings do
/// not know decodes to that enum's `Unknown` variant with its name and data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventMessage<E> {
    /// The event and its data.
    #[serde(flatten)]
    pub event: E,
    /// When it happened.
    pub timestamp: Timestamp,
}

/// A string value of an enum type that these bindings do not know, kept as
/// received (sent by a newer QEMU).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnknownValue(pub String);

impl fmt::Debug for UnknownValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// Helpers the generated code calls; not a stable API.
#[doc(hidden)]
pub mod private {
    use std::borrow::Cow;

    use serde::de::{Deserialize, Deserializer};

    /// Decodes an optional member whose type can itself be `null`: present
    /// (`null` included) is `Some`, absent is `None` (with `default`).
    pub fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
        deserializer: D,
    ) -> Result<Option<T>, D::Error> {
        T::deserialize(deserializer).map(Some)
    }

    /// Reads a string, borrowing it when the input allows.
    pub fn enum_str<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Cow<'de, str>, D::Error> {
        #[derive(serde::Deserialize)]
        struct Str<'a>(#[serde(borrow)] Cow<'a, str>);
        Str::deserialize(deserializer).map(|s| s.0)
    }
}

/// Type-erased decoding for one command, so programs can check messages
/// whose command is known only by name (a transcript, a log).  Errors name
/// the JSON path of the offending value.
#[derive(Clone, Copy)]
pub struct CommandCodec {
    /// The command's wire name.
    pub name: &'static str,
    decode_arguments: fn(serde_json::Value) -> Result<serde_json::Value, String>,
    decode_return: fn(serde_json::Value) -> Result<(), String>,
}

impl fmt::Debug for CommandCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CommandCodec")
            .field("name", &self.name)
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
