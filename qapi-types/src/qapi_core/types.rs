//! The types every protocol message uses.

use std::fmt;

use serde::de::Deserializer;
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

use super::private;

/// The reply of a command that returns nothing: QEMU sends `{}`.
///
/// Any object decodes into it, so a newer QEMU that starts returning data
/// does not break an older program.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Empty {}

impl Serialize for Empty {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_map(Some(0))?.end()
    }
}

impl<'de> Deserialize<'de> for Empty {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(deserializer)?;
        Ok(Empty {})
    }
}

/// When an event happened, as QEMU's host clock saw it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Timestamp {
    /// Seconds since the Unix epoch.
    pub seconds: i64,
    /// Microseconds within the second.
    pub microseconds: i64,
}

crate::__qapi_object! {
    Timestamp = "Timestamp" {
        required seconds "seconds": i64,
        required microseconds "microseconds": i64,
    }
}

/// An event message: which event, with its data, and when.
///
/// `E` is the generated `AnyEvent` enum of a protocol; an event the bindings
/// do not know decodes to that enum's `Unrecognized` variant with its name
/// and data.  `E` decodes from the message's members other than
/// `timestamp`, without buffering them.  It encodes as QEMU sends it: the
/// members of `E` (the generated `AnyEvent` gives `event` and `data`) and
/// `timestamp`, in one object.
#[derive(Debug, Clone, PartialEq)]
pub struct EventMessage<E> {
    /// The event and its data.
    pub event: E,
    /// When it happened.
    pub timestamp: Timestamp,
}

impl<E: private::Members> Serialize for EventMessage<E> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        private::serialize_struct(self, serializer)
    }
}

impl<E: private::Members> private::Members for EventMessage<E> {
    fn members<M: SerializeMap>(&self, map: &mut M) -> Result<(), M::Error> {
        self.event.members(map)?;
        map.serialize_entry("timestamp", &self.timestamp)
    }
}

impl<'de, E: Deserialize<'de>> Deserialize<'de> for EventMessage<E> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(private::EventMessageVisitor(std::marker::PhantomData))
    }
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
