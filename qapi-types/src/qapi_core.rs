//! The hand-written core shared by all generated bindings (QMP here, the
//! guest agent in `qga-types`): what a command and an event are, and the
//! few types every protocol message uses.

use std::fmt;

use serde::de::{DeserializeOwned, Deserializer};
use serde::ser::{SerializeMap, Serializer};
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
    /// False when the command takes no arguments at all (its type is an
    /// empty struct), so a client can leave `arguments` out without
    /// encoding the value.
    const HAS_ARGUMENTS: bool = true;
}

/// A command of QEMU's machine protocol (QMP): what a QMP session
/// executes.
///
/// Every command in this crate implements it; the guest agent's commands
/// (`qga-types`) implement [`QgaCommand`] instead, so that sending one to
/// the wrong peer is a compile error rather than QEMU's `CommandNotFound`.
/// A command type of your own (one these bindings do not know) implements
/// [`Command`] and this.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a QMP command",
    label = "not a command of QEMU's machine protocol",
    note = "guest-agent commands (`qga_types::commands`) run on a guest-agent session (`Qga`), QMP commands (`qapi_types::commands`) on a `Qmp` one"
)]
pub trait QmpCommand: Command {}

/// A command of the QEMU guest agent's protocol: what a guest-agent
/// session executes.  See [`QmpCommand`].
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a guest-agent command",
    label = "not a command of the QEMU guest agent",
    note = "guest-agent commands (`qga_types::commands`) run on a guest-agent session (`Qga`), QMP commands (`qapi_types::commands`) on a `Qmp` one"
)]
pub trait QgaCommand: Command {}

/// An event's data type: its wire name.
pub trait Event: DeserializeOwned {
    /// The event's name on the wire (`BLOCK_JOB_COMPLETED`).
    const NAME: &'static str;
}

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

/// Helpers the generated code calls; not a stable API.
#[doc(hidden)]
pub mod private {
    use std::borrow::Cow;
    use std::fmt;
    use std::marker::PhantomData;

    use serde::de::value::{CowStrDeserializer, MapAccessDeserializer, StrDeserializer};
    use serde::de::{
        self, Deserialize, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor,
    };
    use serde::ser::{Serialize, SerializeMap, Serializer};
    use serde_json::{Map, Value};

    use super::{EventMessage, Timestamp};

    pub use crate::__qapi_enumeration as enumeration;
    pub use crate::__qapi_object as object;
    pub use content::{Content, ContentDeserializer};
    pub use serde;
    pub use serde_json;

    /// Reads a string, borrowing it when the input allows.
    pub fn enum_str<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Cow<'de, str>, D::Error> {
        Key::deserialize(deserializer).map(|s| s.0)
    }

    /// An object type (a struct, a union, a command's arguments, an
    /// event's data) as the generated code describes it for encoding: it
    /// writes its members into a map that the caller opened, so that a
    /// union can add its branch's members to its own.
    pub trait Members {
        /// Writes the members, leaving out optional ones that are `None`.
        fn members<M: SerializeMap>(&self, map: &mut M) -> Result<(), M::Error>;
    }

    impl<T: Members + ?Sized> Members for Box<T> {
        fn members<M: SerializeMap>(&self, map: &mut M) -> Result<(), M::Error> {
            (**self).members(map)
        }
    }

    /// Encodes `value` as one JSON object of its members.
    pub fn serialize_struct<T: Members + ?Sized, S: Serializer>(
        value: &T,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        value.members(&mut map)?;
        map.end()
    }

    /// Writes an optional member when it is present.
    #[inline]
    pub fn optional<M: SerializeMap, T: Serialize>(
        map: &mut M,
        key: &'static str,
        value: &Option<T>,
    ) -> Result<(), M::Error> {
        match value {
            Some(value) => map.serialize_entry(key, value),
            None => Ok(()),
        }
    }

    /// Writes every entry of `members` (kept members of an unknown branch,
    /// further arguments of an open-ended command).
    pub fn entries<M: SerializeMap>(
        map: &mut M,
        members: &Map<String, Value>,
    ) -> Result<(), M::Error> {
        for (key, value) in members {
            map.serialize_entry(key, value)?;
        }
        Ok(())
    }

    /// A struct type as the generated code describes it for decoding, for
    /// [`deserialize_struct`]: one slot per member, filled as the members
    /// arrive in any order, then checked and assembled.  Members the type
    /// does not have are ignored (a newer QEMU's additions); when a member
    /// comes twice, the last one counts.
    pub trait Struct<'de>: Sized {
        /// The type's name, for error messages.
        const NAME: &'static str;
        /// The members while they are read (each `None` until it comes).
        type Slots: Default;

        /// Decodes the value of member `key` into `slots` if the type has
        /// it, and says whether it did; otherwise the value is left unread.
        fn member<A: MapAccess<'de>>(
            slots: &mut Self::Slots,
            key: &str,
            map: &mut A,
        ) -> Result<bool, A::Error> {
            let _ = (slots, key, map);
            Ok(false)
        }

        /// The value, or an error when a required member is missing.
        fn assemble<E: de::Error>(slots: Self::Slots) -> Result<Self, E>;
    }

    /// A required member's value, or the error that names it.
    #[inline]
    pub fn required<T, E: de::Error>(slot: Option<T>, key: &'static str) -> Result<T, E> {
        slot.ok_or_else(|| E::missing_field(key))
    }

    /// Keeps a member an open-ended type does not list.
    pub fn extra_member<'de, A: MapAccess<'de>>(
        extra: &mut Map<String, Value>,
        key: &str,
        map: &mut A,
    ) -> Result<bool, A::Error> {
        extra.insert(key.to_owned(), map.next_value()?);
        Ok(true)
    }

    /// Decodes a struct `T` (see [`Struct`]).
    pub fn deserialize_struct<'de, T: Struct<'de>, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<T, D::Error> {
        deserializer.deserialize_map(StructVisitor(PhantomData))
    }

    struct StructVisitor<T>(PhantomData<T>);

    impl<'de, T: Struct<'de>> Visitor<'de> for StructVisitor<T> {
        type Value = T;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            write!(f, "an object ({})", T::NAME)
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<T, A::Error> {
            let mut slots = T::Slots::default();
            while let Some(Key(key)) = map.next_key()? {
                if !T::member(&mut slots, &key, &mut map)? {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            T::assemble(slots)
        }
    }

    /// A map key or string value, borrowed from the input when it allows.
    struct Key<'de>(Cow<'de, str>);

    impl<'de> Deserialize<'de> for Key<'de> {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            struct KeyVisitor;
            impl<'de> Visitor<'de> for KeyVisitor {
                type Value = Key<'de>;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("a string")
                }
                fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                    Ok(Key(Cow::Borrowed(v)))
                }
                fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                    Ok(Key(Cow::Owned(v.to_owned())))
                }
                fn visit_string<E: de::Error>(self, v: String) -> Result<Key<'de>, E> {
                    Ok(Key(Cow::Owned(v)))
                }
            }
            deserializer.deserialize_str(KeyVisitor)
        }
    }

    /// Reads the rest of `map`, ignoring it.
    fn drain<'de, A: MapAccess<'de>>(map: &mut A) -> Result<(), A::Error> {
        while map.next_key::<IgnoredAny>()?.is_some() {
            map.next_value::<IgnoredAny>()?;
        }
        Ok(())
    }

    /// A flat union as the generated code describes it, for
    /// [`deserialize_union`].
    ///
    /// The union's members arrive in any order (QEMU's come in hash order).
    /// Base members are decoded as they come; other members that come before
    /// the discriminator are kept as [`Content`]; once the discriminator is
    /// read, the branch's type decodes those and then the rest of the map
    /// directly, while base members in the rest are still taken out for the
    /// base.  A known branch must decode (the error names the member); an
    /// unknown discriminator value, or none at all, gives the `Unrecognized`
    /// branch with the members as received.
    pub trait Union<'de>: Sized {
        /// The type's name, for error messages.
        const NAME: &'static str;
        /// The discriminator's wire name.
        const TAG: &'static str;
        /// The base members other than the discriminator, while they are
        /// read (each `None` until it comes).
        type Base: Default;
        /// The enum of the branches.
        type Branch;

        /// Decodes the value of member `key` into `base` if `key` is a base
        /// member, and says whether it was; otherwise the value is left
        /// unread.
        fn base_member<A: MapAccess<'de>>(
            base: &mut Self::Base,
            key: &str,
            map: &mut A,
        ) -> Result<bool, A::Error> {
            let _ = (base, key, map);
            Ok(false)
        }

        /// Decodes the branch for discriminator value `tag` from the
        /// members in `rest` (neither base members nor the discriminator).
        /// [`branch`], [`unit_branch`] and [`unrecognized`] do it.
        fn branch<A: MapAccess<'de>>(tag: &str, rest: A) -> Result<Self::Branch, A::Error>;

        /// The branch for members these bindings do not understand (the
        /// discriminator's value is unknown, or there is none).
        fn unrecognized(members: Map<String, Value>) -> Self::Branch;

        /// The value, or an error when a required base member is missing.
        fn assemble<E: de::Error>(base: Self::Base, branch: Self::Branch) -> Result<Self, E>;
    }

    /// Decodes a flat union `U` (see [`Union`]).
    pub fn deserialize_union<'de, U: Union<'de>, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<U, D::Error> {
        deserializer.deserialize_map(UnionVisitor(PhantomData))
    }

    /// Decodes a branch's type from the members of the union after the
    /// discriminator (and those kept from before it).
    pub fn branch<'de, T: Deserialize<'de>, A: MapAccess<'de>>(rest: A) -> Result<T, A::Error> {
        T::deserialize(MapAccessDeserializer::new(rest))
    }

    /// A branch without members of its own: further members are ignored.
    pub fn unit_branch<'de, B, A: MapAccess<'de>>(mut rest: A, branch: B) -> Result<B, A::Error> {
        drain(&mut rest)?;
        Ok(branch)
    }

    /// A branch these bindings do not know: its members, the discriminator
    /// (`tag`) included.
    pub fn unrecognized<'de, U: Union<'de>, A: MapAccess<'de>>(
        tag: &str,
        mut rest: A,
    ) -> Result<U::Branch, A::Error> {
        let mut members = Map::new();
        members.insert(U::TAG.to_owned(), Value::String(tag.to_owned()));
        while let Some(key) = rest.next_key::<String>()? {
            let value = rest.next_value::<Value>()?;
            members.insert(key, value);
        }
        Ok(U::unrecognized(members))
    }

    struct UnionVisitor<U>(PhantomData<U>);

    impl<'de, U: Union<'de>> Visitor<'de> for UnionVisitor<U> {
        type Value = U;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            write!(f, "an object ({})", U::NAME)
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<U, A::Error> {
            let mut base = U::Base::default();
            let mut early = Vec::new();
            while let Some(Key(key)) = map.next_key()? {
                if key == U::TAG {
                    let Key(tag) = map.next_value()?;
                    let mut rest = Rest::<U, A> {
                        early: early.into_iter(),
                        early_key: None,
                        early_value: None,
                        map,
                        base: &mut base,
                        done: false,
                    };
                    let branch = U::branch(&tag, &mut rest)?;
                    drain(&mut rest)?;
                    return U::assemble(base, branch);
                }
                if !U::base_member(&mut base, &key, &mut map)? {
                    early.push((key, map.next_value::<Content<'de>>()?));
                }
            }
            // No discriminator (an older QEMU's reply, say): the members
            // are kept as they came, like those of an unknown branch.
            let mut members = Map::new();
            for (key, value) in early {
                let value = Value::deserialize(ContentDeserializer::<A::Error>::new(value))?;
                members.insert(key.into_owned(), value);
            }
            U::assemble(base, U::unrecognized(members))
        }
    }

    /// The members of a union after its discriminator, as the branch's type
    /// sees them: first those that came before the discriminator, then the
    /// rest of the map less the base members (decoded into `base` on the
    /// way) and any repeated discriminator.
    struct Rest<'a, 'de, U: Union<'de>, A> {
        early: std::vec::IntoIter<(Cow<'de, str>, Content<'de>)>,
        early_key: Option<Cow<'de, str>>,
        early_value: Option<Content<'de>>,
        map: A,
        base: &'a mut U::Base,
        /// `map` has ended.
        done: bool,
    }

    impl<'de, U: Union<'de>, A: MapAccess<'de>> MapAccess<'de> for Rest<'_, 'de, U, A> {
        type Error = A::Error;

        fn next_key_seed<K: DeserializeSeed<'de>>(
            &mut self,
            seed: K,
        ) -> Result<Option<K::Value>, A::Error> {
            if let Some((key, value)) = self.early.next() {
                self.early_value = Some(value);
                let key = self.early_key.insert(key);
                return seed.deserialize(StrDeserializer::new(key)).map(Some);
            }
            while !self.done {
                let Some(Key(key)) = self.map.next_key()? else {
                    self.done = true;
                    break;
                };
                if key == U::TAG {
                    self.map.next_value::<IgnoredAny>()?;
                } else if !U::base_member(self.base, &key, &mut self.map)? {
                    return seed.deserialize(CowStrDeserializer::new(key)).map(Some);
                }
            }
            Ok(None)
        }

        fn next_value_seed<V: DeserializeSeed<'de>>(
            &mut self,
            seed: V,
        ) -> Result<V::Value, A::Error> {
            match self.early_value.take() {
                Some(value) => seed
                    .deserialize(ContentDeserializer::<A::Error>::new(value))
                    .map_err(|e| {
                        // The path tracking of `serde_path_to_error` does not see
                        // into kept values: name the member at least.
                        let key = self.early_key.take().unwrap_or_default();
                        de::Error::custom(format_args!("in member `{key}`: {e}"))
                    }),
                None => self.map.next_value_seed(seed),
            }
        }
    }

    /// The generated enum of all events, for [`deserialize_event`].
    pub trait Events<'de>: Sized {
        /// The event `name` with its `data` (the whole of it is read).
        fn with_data<D: Deserializer<'de>>(name: &str, data: D) -> Result<Self, D::Error>;

        /// The event `name`, which came without data.
        fn without_data(name: &str) -> Self;
    }

    /// Decodes an event (`event` and `data`; other members are ignored)
    /// without buffering `data`, unless it comes before `event`.
    pub fn deserialize_event<'de, E: Events<'de>, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<E, D::Error> {
        deserializer.deserialize_map(EventVisitor(PhantomData))
    }

    /// Unit events ignore any data they come with.
    pub fn no_data<'de, E, D: Deserializer<'de>>(data: D, event: E) -> Result<E, D::Error> {
        IgnoredAny::deserialize(data)?;
        Ok(event)
    }

    struct EventVisitor<E>(PhantomData<E>);

    impl<'de, E: Events<'de>> Visitor<'de> for EventVisitor<E> {
        type Value = E;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an event (an object with `event` and `data`)")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<E, A::Error> {
            let mut name = None;
            let mut event = None;
            let mut early_data = None;
            while let Some(Key(key)) = map.next_key()? {
                match &*key {
                    "event" => name = Some(map.next_value::<Key>()?.0),
                    "data" => match &name {
                        Some(name) => {
                            event = Some(map.next_value_seed(DataSeed(name, PhantomData))?)
                        }
                        None => early_data = Some(map.next_value::<Content<'de>>()?),
                    },
                    _ => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
            }
            let name = name.ok_or_else(|| de::Error::missing_field("event"))?;
            match (event, early_data) {
                (Some(event), _) => Ok(event),
                (None, Some(data)) => {
                    E::with_data(&name, ContentDeserializer::<A::Error>::new(data))
                        .map_err(|e| de::Error::custom(format_args!("in member `data`: {e}")))
                }
                (None, None) => Ok(E::without_data(&name)),
            }
        }
    }

    /// Decodes the data of the event named `.0`.
    struct DataSeed<'a, E>(&'a str, PhantomData<E>);

    impl<'de, E: Events<'de>> DeserializeSeed<'de> for DataSeed<'_, E> {
        type Value = E;

        fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<E, D::Error> {
            E::with_data(self.0, deserializer)
        }
    }

    /// Decodes an [`EventMessage`]: `E` from its members but `timestamp`.
    pub(super) struct EventMessageVisitor<E>(pub(super) PhantomData<E>);

    impl<'de, E: Deserialize<'de>> Visitor<'de> for EventMessageVisitor<E> {
        type Value = EventMessage<E>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an event message")
        }

        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<EventMessage<E>, A::Error> {
            let mut rest = Timestamped {
                map,
                timestamp: None,
                done: false,
            };
            let event = E::deserialize(MapAccessDeserializer::new(&mut rest))?;
            drain(&mut rest)?;
            let timestamp = rest
                .timestamp
                .ok_or_else(|| de::Error::missing_field("timestamp"))?;
            Ok(EventMessage { event, timestamp })
        }
    }

    /// An event message's members less `timestamp`, which is decoded on the
    /// way.
    struct Timestamped<A> {
        map: A,
        timestamp: Option<Timestamp>,
        /// `map` has ended.
        done: bool,
    }

    impl<'de, A: MapAccess<'de>> MapAccess<'de> for Timestamped<A> {
        type Error = A::Error;

        fn next_key_seed<K: DeserializeSeed<'de>>(
            &mut self,
            seed: K,
        ) -> Result<Option<K::Value>, A::Error> {
            while !self.done {
                let Some(Key(key)) = self.map.next_key()? else {
                    self.done = true;
                    break;
                };
                if key == "timestamp" {
                    self.timestamp = Some(self.map.next_value()?);
                } else {
                    return seed.deserialize(CowStrDeserializer::new(key)).map(Some);
                }
            }
            Ok(None)
        }

        fn next_value_seed<V: DeserializeSeed<'de>>(
            &mut self,
            seed: V,
        ) -> Result<V::Value, A::Error> {
            self.map.next_value_seed(seed)
        }
    }

    /// Values kept while decoding, to be decoded later: a self-describing
    /// tree borrowing strings from the input where it can (much like
    /// serde's own private `Content`).
    mod content {
        use std::fmt;
        use std::marker::PhantomData;

        use serde::de::value::{MapAccessDeserializer, MapDeserializer, SeqDeserializer};
        use serde::de::{
            self, Deserialize, Deserializer, EnumAccess, IntoDeserializer, MapAccess, SeqAccess,
            Unexpected, Visitor,
        };

        /// A value kept for later.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Content<'de> {
            /// `null` (and an absent option).
            Unit,
            /// A boolean.
            Bool(bool),
            /// A non-negative integer.
            U64(u64),
            /// A negative integer.
            I64(i64),
            /// Any other number.
            F64(f64),
            /// A string borrowed from the input.
            Str(&'de str),
            /// A string that could not be borrowed.
            String(String),
            /// Bytes (not in JSON).
            Bytes(Vec<u8>),
            /// An array.
            Seq(Vec<Content<'de>>),
            /// An object, its members in order.
            Map(Vec<(Content<'de>, Content<'de>)>),
        }

        impl<'de> Deserialize<'de> for Content<'de> {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                deserializer.deserialize_any(ContentVisitor)
            }
        }

        struct ContentVisitor;

        impl<'de> Visitor<'de> for ContentVisitor {
            type Value = Content<'de>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any value")
            }
            fn visit_bool<E>(self, v: bool) -> Result<Content<'de>, E> {
                Ok(Content::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Content<'de>, E> {
                Ok(Content::I64(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Content<'de>, E> {
                Ok(Content::U64(v))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Content<'de>, E> {
                Ok(Content::F64(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Content<'de>, E> {
                Ok(Content::String(v.to_owned()))
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Content<'de>, E> {
                Ok(Content::Str(v))
            }
            fn visit_string<E>(self, v: String) -> Result<Content<'de>, E> {
                Ok(Content::String(v))
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<Content<'de>, E> {
                Ok(Content::Bytes(v.to_owned()))
            }
            fn visit_unit<E>(self) -> Result<Content<'de>, E> {
                Ok(Content::Unit)
            }
            fn visit_none<E>(self) -> Result<Content<'de>, E> {
                Ok(Content::Unit)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Content<'de>, D::Error> {
                Content::deserialize(d)
            }
            fn visit_newtype_struct<D: Deserializer<'de>>(
                self,
                d: D,
            ) -> Result<Content<'de>, D::Error> {
                Content::deserialize(d)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Content<'de>, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Content::Seq(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Content<'de>, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                Ok(Content::Map(entries))
            }
            fn visit_enum<A: EnumAccess<'de>>(self, _: A) -> Result<Content<'de>, A::Error> {
                Err(de::Error::custom("enums cannot be kept for later"))
            }
        }

        /// Decodes a kept [`Content`]; errors are `E`, the error type of
        /// the deserializer it came from.
        pub struct ContentDeserializer<'de, E> {
            content: Content<'de>,
            error: PhantomData<E>,
        }

        impl<'de, E> ContentDeserializer<'de, E> {
            /// A deserializer for `content`.
            pub fn new(content: Content<'de>) -> Self {
                ContentDeserializer {
                    content,
                    error: PhantomData,
                }
            }
        }

        impl<'de, E: de::Error> IntoDeserializer<'de, E> for Content<'de> {
            type Deserializer = ContentDeserializer<'de, E>;
            fn into_deserializer(self) -> Self::Deserializer {
                ContentDeserializer::new(self)
            }
        }

        impl<'de, E: de::Error> Deserializer<'de> for ContentDeserializer<'de, E> {
            type Error = E;

            fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, E> {
                match self.content {
                    Content::Unit => visitor.visit_unit(),
                    Content::Bool(v) => visitor.visit_bool(v),
                    Content::U64(v) => visitor.visit_u64(v),
                    Content::I64(v) => visitor.visit_i64(v),
                    Content::F64(v) => visitor.visit_f64(v),
                    Content::Str(v) => visitor.visit_borrowed_str(v),
                    Content::String(v) => visitor.visit_string(v),
                    Content::Bytes(v) => visitor.visit_byte_buf(v),
                    Content::Seq(items) => {
                        let mut seq = SeqDeserializer::new(items.into_iter());
                        let value = visitor.visit_seq(&mut seq)?;
                        seq.end()?;
                        Ok(value)
                    }
                    Content::Map(entries) => {
                        let mut map = MapDeserializer::new(entries.into_iter());
                        let value = visitor.visit_map(&mut map)?;
                        map.end()?;
                        Ok(value)
                    }
                }
            }

            fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, E> {
                match self.content {
                    Content::Unit => visitor.visit_none(),
                    _ => visitor.visit_some(self),
                }
            }

            fn deserialize_newtype_struct<V: Visitor<'de>>(
                self,
                _name: &'static str,
                visitor: V,
            ) -> Result<V::Value, E> {
                visitor.visit_newtype_struct(self)
            }

            fn deserialize_enum<V: Visitor<'de>>(
                self,
                _name: &'static str,
                _variants: &'static [&'static str],
                visitor: V,
            ) -> Result<V::Value, E> {
                match self.content {
                    // A unit variant by name, or `{ variant: content }`.
                    Content::Str(v) => visitor.visit_enum(v.into_deserializer()),
                    Content::String(v) => visitor.visit_enum(v.into_deserializer()),
                    Content::Map(entries) if entries.len() == 1 => visitor.visit_enum(
                        MapAccessDeserializer::new(MapDeserializer::new(entries.into_iter())),
                    ),
                    _ => Err(de::Error::invalid_type(
                        Unexpected::Other("a value that is not an enum"),
                        &visitor,
                    )),
                }
            }

            fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, E> {
                drop(self);
                visitor.visit_unit()
            }

            serde::forward_to_deserialize_any! {
                bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
                bytes byte_buf unit unit_struct seq tuple tuple_struct map struct
                identifier
            }
        }
    }
}

/// The wire names of one enum type, as the generated code states them:
/// `Variant = "wire-name"` for each value.  The enum has an
/// `Unrecognized(UnknownValue)` variant besides; the macro implements
/// `as_str`, `from_wire` and serde's traits (a JSON string; unknown strings
/// decode as `Unrecognized`, keeping the string).
#[doc(hidden)]
#[macro_export]
macro_rules! __qapi_enumeration {
    ($name:ident { $( $variant:ident = $wire:literal ),* $(,)? }) => {
        impl $name {
            /// The value as it appears on the wire.
            pub fn as_str(&self) -> &str {
                match self {
                    $( $name::$variant => $wire, )*
                    $name::Unrecognized(value) => &value.0,
                }
            }

            /// The value for a wire string; unknown strings are kept.
            pub fn from_wire(s: &str) -> Self {
                match s {
                    $( $wire => $name::$variant, )*
                    other => $name::Unrecognized($crate::UnknownValue(
                        ::std::borrow::ToOwned::to_owned(other),
                    )),
                }
            }
        }

        impl $crate::private::serde::Serialize for $name {
            fn serialize<S: $crate::private::serde::Serializer>(
                &self,
                serializer: S,
            ) -> ::core::result::Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> $crate::private::serde::Deserialize<'de> for $name {
            fn deserialize<D: $crate::private::serde::Deserializer<'de>>(
                deserializer: D,
            ) -> ::core::result::Result<Self, D::Error> {
                $crate::private::enum_str(deserializer).map(|s| $name::from_wire(&s))
            }
        }
    };
}

/// The encoding and decoding of one object type, as the generated code
/// states it: the type, its wire name, and each member as
/// `KIND field "wire-name": Type` in the schema's order, where `KIND` is
/// `required`, `optional` (the field is an `Option<Type>`; `null` decodes
/// as `None`) or `nullable` (an `Option<Type>` where `null` is a value of
/// `Type`, so present `null` is `Some`).  A trailing `+ field` names a
/// `serde_json::Map` field that keeps members the schema does not list
/// (open-ended arguments).
///
/// It implements `Serialize` and [`private::Members`] (the members in order,
/// `None` left out) and `Deserialize` through [`private::Struct`] (members
/// in any order; unknown ones ignored, or kept in the `+` field; a missing
/// required member is an error naming it).  One macro rather than serde's
/// derives keeps the generated crates quick to compile: each type adds one
/// match over its members instead of several visitors.
#[doc(hidden)]
#[macro_export]
macro_rules! __qapi_object {
    ($name:ident = $wire:literal {
        $( $kind:ident $field:ident $key:literal : $ty:ty ),* $(,)?
    } $( + $extra:ident )?) => {
        impl $crate::private::serde::Serialize for $name {
            fn serialize<S: $crate::private::serde::Serializer>(
                &self,
                serializer: S,
            ) -> ::core::result::Result<S::Ok, S::Error> {
                $crate::private::serialize_struct(self, serializer)
            }
        }

        impl $crate::private::Members for $name {
            fn members<M: $crate::private::serde::ser::SerializeMap>(
                &self,
                map: &mut M,
            ) -> ::core::result::Result<(), M::Error> {
                let _ = &map;
                $( $crate::__qapi_object!(@write $kind map $key &self.$field); )*
                $( $crate::private::entries(map, &self.$extra)?; )?
                ::core::result::Result::Ok(())
            }
        }

        impl<'de> $crate::private::serde::Deserialize<'de> for $name {
            fn deserialize<D: $crate::private::serde::Deserializer<'de>>(
                deserializer: D,
            ) -> ::core::result::Result<Self, D::Error> {
                $crate::private::deserialize_struct(deserializer)
            }
        }

        const _: () = {
            /// The members while they are read.
            #[derive(::core::default::Default)]
            pub struct Slots {
                $( $field: ::core::option::Option<$ty>, )*
                $( $extra: $crate::private::serde_json::Map<::std::string::String, $crate::private::serde_json::Value>, )?
            }

            impl<'de> $crate::private::Struct<'de> for $name {
                const NAME: &'static str = $wire;
                type Slots = Slots;

                fn member<A: $crate::private::serde::de::MapAccess<'de>>(
                    slots: &mut Slots,
                    key: &str,
                    map: &mut A,
                ) -> ::core::result::Result<bool, A::Error> {
                    match key {
                        $( $key => {
                            slots.$field = $crate::__qapi_object!(@read $kind map);
                            ::core::result::Result::Ok(true)
                        } )*
                        _ => $crate::__qapi_object!(@other slots key map $( $extra )?),
                    }
                }

                fn assemble<E: $crate::private::serde::de::Error>(
                    slots: Slots,
                ) -> ::core::result::Result<Self, E> {
                    let _ = &slots;
                    ::core::result::Result::Ok($name {
                        $( $field: $crate::__qapi_object!(@take $kind slots.$field, $key), )*
                        $( $extra: slots.$extra, )?
                    })
                }
            }
        };
    };
    (@write required $map:ident $key:literal $value:expr) => {
        $crate::private::serde::ser::SerializeMap::serialize_entry($map, $key, $value)?
    };
    (@write optional $map:ident $key:literal $value:expr) => {
        $crate::private::optional($map, $key, $value)?
    };
    (@write nullable $map:ident $key:literal $value:expr) => {
        $crate::private::optional($map, $key, $value)?
    };
    (@read required $map:ident) => {
        ::core::option::Option::Some($crate::private::serde::de::MapAccess::next_value($map)?)
    };
    (@read optional $map:ident) => {
        $crate::private::serde::de::MapAccess::next_value($map)?
    };
    (@read nullable $map:ident) => {
        ::core::option::Option::Some($crate::private::serde::de::MapAccess::next_value($map)?)
    };
    (@take required $slot:expr, $key:literal) => {
        $crate::private::required::<_, E>($slot, $key)?
    };
    (@take optional $slot:expr, $key:literal) => {
        $slot
    };
    (@take nullable $slot:expr, $key:literal) => {
        $slot
    };
    (@other $slots:ident $key:ident $map:ident) => {{
        let _ = (&$slots, &$map);
        ::core::result::Result::Ok(false)
    }};
    (@other $slots:ident $key:ident $map:ident $extra:ident) => {
        $crate::private::extra_member(&mut $slots.$extra, $key, $map)
    };
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

#[cfg(all(
    test,
    feature = "introspect",
    feature = "run_state",
    feature = "job",
    feature = "sockets"
))]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::{
        AnyEvent, SchemaInfo, SchemaInfoBranch, SchemaInfoObject, SchemaInfoObjectMember,
        SocketAddress, SocketAddressBranch,
    };

    fn object(members: Vec<SchemaInfoObjectMember>) -> SchemaInfoBranch {
        SchemaInfoBranch::Object(SchemaInfoObject {
            members,
            tag: None,
            variants: None,
        })
    }

    fn member(name: &str, ty: &str) -> SchemaInfoObjectMember {
        SchemaInfoObjectMember {
            name: name.into(),
            r#type: ty.into(),
            default: None,
            features: None,
        }
    }

    #[test]
    fn union_members_decode_in_any_order() {
        let expected = SchemaInfo {
            name: "o".into(),
            features: Some(vec!["f".into()]),
            branch: object(vec![member("m", "int")]),
        };
        // As QEMU sends it (branch members before the discriminator), with
        // the discriminator first, and with a base member last.
        for text in [
            r#"{"name": "o", "members": [{"name": "m", "type": "int"}], "meta-type": "object", "features": ["f"]}"#,
            r#"{"meta-type": "object", "features": ["f"], "members": [{"name": "m", "type": "int"}], "name": "o"}"#,
            r#"{"members": [{"type": "int", "name": "m"}], "features": ["f"], "name": "o", "meta-type": "object"}"#,
        ] {
            let info: SchemaInfo = serde_json::from_str(text).unwrap();
            assert_eq!(info, expected, "{text}");
            let back = serde_json::to_value(&info).unwrap();
            assert_eq!(
                back,
                serde_json::from_str::<serde_json::Value>(text).unwrap()
            );
        }
    }

    #[test]
    fn union_ignores_extra_members_and_a_repeated_discriminator() {
        let text = r#"{"new": {"x": [1]}, "name": "o", "meta-type": "object", "members": [],
                       "meta-type": "object", "newer": null}"#;
        let info: SchemaInfo = serde_json::from_str(text).unwrap();
        assert_eq!(info.branch, object(vec![]));
        assert_eq!(info.name, "o");
    }

    #[test]
    fn union_unknown_branch_keeps_members_from_before_and_after_the_discriminator() {
        let value = json!({ "type": "quantum", "qubits": 3, "entangled": [true] });
        let text = r#"{"qubits": 3, "type": "quantum", "entangled": [true]}"#;
        let addr: SocketAddress = serde_json::from_str(text).unwrap();
        let SocketAddressBranch::Unrecognized(members) = &addr.branch else {
            panic!("decoded as a known branch: {addr:?}");
        };
        assert_eq!(members.len(), 3);
        assert_eq!(serde_json::to_value(&addr).unwrap(), value);
    }

    #[test]
    fn union_without_discriminator_is_unrecognized() {
        let info: SchemaInfo =
            serde_json::from_value(json!({ "name": "x", "json-type": "int" })).unwrap();
        assert_eq!(info.name, "x");
        let SchemaInfoBranch::Unrecognized(members) = &info.branch else {
            panic!("decoded as a known branch: {info:?}");
        };
        assert_eq!(members.get("json-type"), Some(&json!("int")));
        assert!(
            !members.contains_key("name"),
            "base members are not repeated"
        );
    }

    #[test]
    fn union_errors_name_the_member() {
        // decode_with_path reads a `Value`, whose members come in name order:
        // `json-type` before `meta-type` (kept, then decoded), `variants`
        // after it (decoded directly).
        let early = json!({ "name": "b", "meta-type": "builtin", "json-type": 5 });
        let err = decode_with_path::<SchemaInfo>(early).unwrap_err();
        assert!(err.contains("in member `json-type`"), "{err}");
        assert!(err.contains("invalid type: integer `5`"), "{err}");
        let late = json!({ "name": "o", "meta-type": "object", "members": [],
                           "variants": [{ "case": 1, "type": "t" }] });
        let err = decode_with_path::<SchemaInfo>(late).unwrap_err();
        assert!(
            err.starts_with("at variants[0].case: invalid type"),
            "{err}"
        );
        let nameless = json!({ "meta-type": "builtin", "json-type": "int" });
        let err = decode_with_path::<SchemaInfo>(nameless).unwrap_err();
        assert_eq!(err, "missing field `name`");
        let err = decode_with_path::<SchemaInfo>(json!([1])).unwrap_err();
        assert!(err.contains("expected an object (SchemaInfo)"), "{err}");
    }

    fn event(text: &str) -> EventMessage<AnyEvent> {
        serde_json::from_str(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn event_members_decode_in_any_order() {
        let stamp = r#""timestamp": {"seconds": 1, "microseconds": 2}"#;
        let data = r#""data": {"id": "j", "status": "running"}"#;
        let name = r#""event": "JOB_STATUS_CHANGE""#;
        for text in [
            format!("{{{stamp}, {name}, {data}}}"),
            format!("{{{data}, {name}, {stamp}}}"),
            format!("{{{name}, {stamp}, \"extra\": 1, {data}}}"),
        ] {
            let message = event(&text);
            assert_eq!(message.timestamp.microseconds, 2, "{text}");
            let AnyEvent::JobStatusChange(change) = &message.event else {
                panic!("{text}: {message:?}");
            };
            assert_eq!(change.id, "j");
        }
    }

    #[test]
    fn events_without_data_and_unknown_events() {
        let stop = r#"{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "STOP"}"#;
        assert_eq!(event(stop).event, AnyEvent::Stop);
        let stop =
            r#"{"event": "STOP", "data": {}, "timestamp": {"seconds": 1, "microseconds": 2}}"#;
        assert_eq!(event(stop).event, AnyEvent::Stop);
        let new = r#"{"event": "NEW", "timestamp": {"seconds": 1, "microseconds": 2}}"#;
        let message = event(new);
        assert_eq!(
            message.event,
            AnyEvent::Unrecognized {
                event: "NEW".into(),
                data: None
            }
        );
        assert_eq!(
            serde_json::to_value(&message).unwrap(),
            serde_json::from_str::<serde_json::Value>(new).unwrap()
        );
        let early =
            r#"{"data": [1], "event": "NEW", "timestamp": {"seconds": 1, "microseconds": 2}}"#;
        let AnyEvent::Unrecognized { data, .. } = event(early).event else {
            panic!("NEW is known");
        };
        assert_eq!(data, Some(json!([1])));
    }

    #[test]
    fn event_errors() {
        let no_stamp = json!({ "event": "STOP" });
        let err = decode_with_path::<EventMessage<AnyEvent>>(no_stamp).unwrap_err();
        assert_eq!(err, "missing field `timestamp`");
        let no_name = json!({ "timestamp": { "seconds": 1, "microseconds": 2 } });
        let err = decode_with_path::<EventMessage<AnyEvent>>(no_name).unwrap_err();
        assert_eq!(err, "missing field `event`");
        // From a `Value`, `data` comes before `event` and is kept.
        let bad = json!({ "event": "JOB_STATUS_CHANGE", "data": { "id": 5, "status": "null" },
                          "timestamp": { "seconds": 1, "microseconds": 2 } });
        let err = decode_with_path::<EventMessage<AnyEvent>>(bad.clone()).unwrap_err();
        assert!(err.starts_with("in member `data`: invalid type"), "{err}");
        // As QEMU sends it, `data` is decoded directly.
        let text = r#"{"timestamp": {"seconds": 1, "microseconds": 2},
                       "event": "JOB_STATUS_CHANGE", "data": {"id": 5, "status": "null"}}"#;
        let de = &mut serde_json::Deserializer::from_str(text);
        let err = serde_path_to_error::deserialize::<_, EventMessage<AnyEvent>>(de).unwrap_err();
        assert_eq!(err.path().to_string(), "data.id", "{text}");
    }

    #[test]
    fn kept_values_decode_as_they_came() {
        use private::{Content, ContentDeserializer};
        let text = r#"{"a": [1, -2, 3.5, "s\n", "t", null, true, {}], "b": {"c": []}}"#;
        let kept: Content = serde_json::from_str(text).unwrap();
        let de = ContentDeserializer::<serde_json::Error>::new(kept.clone());
        let value = serde_json::Value::deserialize(de).unwrap();
        assert_eq!(
            value,
            serde_json::from_str::<serde_json::Value>(text).unwrap()
        );
        let de = ContentDeserializer::<serde_json::Error>::new(Content::Str("running"));
        assert_eq!(
            crate::RunState::deserialize(de).unwrap(),
            crate::RunState::Running
        );
        let de = ContentDeserializer::<serde_json::Error>::new(kept);
        assert!(Option::<Vec<u8>>::deserialize(de).is_err());
    }
}

/// The captures of the decoding benchmark (real QEMU output, members in
/// QEMU's order) decode and encode again to the same JSON: the decoders
/// lose nothing, whatever the order of members.
#[cfg(all(test, feature = "introspect", feature = "block_core"))]
mod capture_tests {
    use std::path::Path;

    use serde::de::DeserializeOwned;
    use serde_json::Value;

    use crate::commands::{QueryBlockstats, QueryQmpSchema};
    use crate::{AnyEvent, Command, EventMessage};

    fn capture(name: &str) -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("benches/data")
            .join(name);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    fn round_trip<T: DeserializeOwned + serde::Serialize>(what: &str, text: &str) {
        let value: Value = serde_json::from_str(text).unwrap();
        let typed: T = serde_json::from_str(text).unwrap_or_else(|e| panic!("{what}: {e}"));
        let again = serde_json::to_value(&typed).unwrap();
        assert!(again == value, "{what} does not encode back to its JSON");
    }

    /// The text of a reply's return value, as it came.
    fn return_of(file: &str) -> String {
        let reply = capture(file);
        let ret = reply
            .trim_end()
            .strip_prefix(r#"{"return": "#)
            .and_then(|r| r.strip_suffix('}'));
        ret.unwrap_or_else(|| panic!("{file} is not a reply"))
            .to_owned()
    }

    #[test]
    fn captured_replies_and_events_round_trip() {
        let file = "query-qmp-schema.json";
        round_trip::<<QueryQmpSchema as Command>::Returns>(file, &return_of(file));
        let file = "query-blockstats.json";
        round_trip::<<QueryBlockstats as Command>::Returns>(file, &return_of(file));
        for (n, line) in capture("events.jsonl").lines().enumerate() {
            round_trip::<EventMessage<AnyEvent>>(&format!("events.jsonl:{}", n + 1), line);
        }
    }
}
