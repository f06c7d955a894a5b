//! Helpers the generated code calls; not a stable API.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::value::{CowStrDeserializer, MapAccessDeserializer, StrDeserializer};
use serde::de::{self, Deserialize, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
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
pub fn entries<M: SerializeMap>(map: &mut M, members: &Map<String, Value>) -> Result<(), M::Error> {
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

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
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
                    Some(name) => event = Some(map.next_value_seed(DataSeed(name, PhantomData))?),
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
            (None, Some(data)) => E::with_data(&name, ContentDeserializer::<A::Error>::new(data))
                .map_err(|e| de::Error::custom(format_args!("in member `data`: {e}"))),
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

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.map.next_value_seed(seed)
    }
}

mod content;
