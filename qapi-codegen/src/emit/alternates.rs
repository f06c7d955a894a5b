//! Alternates: an enum decoded by dispatching on the JSON type.

use proc_macro2::TokenStream;
use quote::quote;

use super::*;
use crate::model::{EntityId, EntityKind, JsonType};

impl Emitter<'_> {
    pub(super) fn alternate_type(&mut self, id: EntityId) -> Result<TokenStream, GenerateError> {
        let entity = self.schema.entity(id);
        let EntityKind::Alternate { alternatives } = &entity.kind else {
            unreachable!("an alternate");
        };
        let alternatives = alternatives.clone();
        let rust = names::type_name(&entity.name);
        self.claim(&rust, &entity.name, "types")?;
        let name = ident(&rust);
        let docs = doc_attrs(&self.item_docs(id));
        let doc = self.schema.doc(id);
        let mut variants = Vec::new();
        let mut conversions = Vec::new();
        let mut ser_arms = Vec::new();
        let mut visits = Vec::new();
        let mut expecting = Vec::new();
        for v in &alternatives {
            let vid = ident(&names::camel(&v.name));
            let ty = self.member_type(id, v.ty);
            let vdoc: Vec<String> = doc
                .and_then(|d| d.member(&v.name))
                .map(|s| vec![docs::markdown(&s.text, self.links)])
                .unwrap_or_default();
            let vdocs = doc_attrs(&vdoc);
            variants.push(quote! { #vdocs #vid(#ty), });
            ser_arms.push(quote! { #name::#vid(v) => v.serialize(serializer), });
            let boxed = type_text(&ty).starts_with("::std::boxed::Box<");
            let inner = self.type_ref(v.ty);
            conversions.push(construct::alternative_conversions(
                &name, &vid, &inner, boxed,
            ));
            let target = self.schema.entity(v.ty);
            let json = match &target.kind {
                EntityKind::Builtin(j) => *j,
                EntityKind::Enum { .. } => JsonType::String,
                EntityKind::Array { .. } => JsonType::Value, // marker: array
                _ => JsonType::Null,                         // marker: object
            };
            let de = |d: TokenStream| quote! { Deserialize::deserialize(#d).map(#name::#vid) };
            match (&target.kind, json) {
                (EntityKind::Array { .. }, _) => {
                    expecting.push("an array");
                    let body = de(quote! { ::serde::de::value::SeqAccessDeserializer::new(seq) });
                    visits.push(quote! {
                        fn visit_seq<A: ::serde::de::SeqAccess<'de>>(self, seq: A) -> ::std::result::Result<Self::Value, A::Error> { #body }
                    });
                }
                (EntityKind::Object { .. }, _) => {
                    expecting.push("an object");
                    let body = de(quote! { ::serde::de::value::MapAccessDeserializer::new(map) });
                    visits.push(quote! {
                        fn visit_map<A: ::serde::de::MapAccess<'de>>(self, map: A) -> ::std::result::Result<Self::Value, A::Error> { #body }
                    });
                }
                (_, JsonType::String) => {
                    expecting.push("a string");
                    let body = de(quote! { ::serde::de::value::StrDeserializer::<E>::new(v) });
                    visits.push(quote! {
                        fn visit_str<E: ::serde::de::Error>(self, v: &str) -> ::std::result::Result<Self::Value, E> { #body }
                    });
                }
                (_, JsonType::Boolean) => {
                    expecting.push("a boolean");
                    let body = de(quote! { ::serde::de::value::BoolDeserializer::<E>::new(v) });
                    visits.push(quote! {
                        fn visit_bool<E: ::serde::de::Error>(self, v: bool) -> ::std::result::Result<Self::Value, E> { #body }
                    });
                }
                (_, JsonType::Null) => {
                    expecting.push("null");
                    let body = de(quote! { ::serde::de::value::UnitDeserializer::<E>::new() });
                    visits.push(quote! {
                        fn visit_unit<E: ::serde::de::Error>(self) -> ::std::result::Result<Self::Value, E> { #body }
                    });
                }
                (_, JsonType::Int | JsonType::Number) => {
                    expecting.push("a number");
                    let i = de(quote! { ::serde::de::value::I64Deserializer::<E>::new(v) });
                    let u = de(quote! { ::serde::de::value::U64Deserializer::<E>::new(v) });
                    let f = if json == JsonType::Number {
                        de(quote! { ::serde::de::value::F64Deserializer::<E>::new(v) })
                    } else {
                        quote! { ::std::result::Result::Err(E::invalid_type(::serde::de::Unexpected::Float(v), &self)) }
                    };
                    visits.push(quote! {
                        fn visit_i64<E: ::serde::de::Error>(self, v: i64) -> ::std::result::Result<Self::Value, E> { #i }
                        fn visit_u64<E: ::serde::de::Error>(self, v: u64) -> ::std::result::Result<Self::Value, E> { #u }
                        fn visit_f64<E: ::serde::de::Error>(self, v: f64) -> ::std::result::Result<Self::Value, E> { #f }
                    });
                }
                (_, JsonType::Value) => {}
            }
        }
        let expecting = format!("{} ({})", entity.name, expecting.join(" or "));
        let deprecated = self.deprecated(&entity.features, self.deprecation_text(id));
        Ok(quote! {
            #docs
            #deprecated
            #[derive(Debug, Clone, PartialEq)]
            pub enum #name {
                #( #variants )*
            }

            #( #conversions )*

            impl Serialize for #name {
                fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> ::std::result::Result<S::Ok, S::Error> {
                    match self {
                        #( #ser_arms )*
                    }
                }
            }

            impl<'de> Deserialize<'de> for #name {
                fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> ::std::result::Result<Self, D::Error> {
                    // The alternatives differ by JSON type: dispatch on it.
                    struct Visitor;
                    impl<'de> ::serde::de::Visitor<'de> for Visitor {
                        type Value = #name;
                        fn expecting(&self, f: &mut ::std::fmt::Formatter) -> ::std::fmt::Result {
                            f.write_str(#expecting)
                        }
                        #( #visits )*
                    }
                    deserializer.deserialize_any(Visitor)
                }
            }
        })
    }
}
