//! The macros every generated type is written with: `object!` for
//! structs and argument types, `enumeration!` for enums.

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
