//! Unions: a struct with the base's members and a `branch` enum tagged by
//! the discriminator.

use std::collections::HashMap;

use proc_macro2::{Ident, TokenStream};
use quote::quote;

use super::*;
use crate::model::{EntityId, EntityKind};

impl Emitter<'_> {
    pub(super) fn union_type(&mut self, id: EntityId) -> Result<TokenStream, GenerateError> {
        let entity = self.schema.entity(id);
        let EntityKind::Object {
            branches: Some(branches),
            ..
        } = &entity.kind
        else {
            unreachable!("a union");
        };
        let rust = names::type_name(&entity.name);
        self.claim(&rust, &entity.name, "types")?;
        let branch_rust = format!("{rust}Branch");
        self.claim(
            &branch_rust,
            &format!("{} (branches)", entity.name),
            "types",
        )?;
        let name = ident(&rust);
        let branch_name = ident(&branch_rust);
        let docs = doc_attrs(&self.item_docs(id));
        let deprecated = self.deprecated(&entity.features, self.deprecation_text(id));
        let tag = branches.tag.clone();
        let (fields, specs) = self.fields(id, id, Some(&tag))?;
        let core = self.core.clone();
        let mut variants = Vec::new();
        let mut branch_types = Vec::new();
        let mut branch_writes = Vec::new();
        let mut seen: HashMap<String, String> = HashMap::new();
        for v in branches.variants.clone() {
            let variant = names::camel(&v.name);
            if let Some(first) = seen.insert(variant.clone(), v.name.clone()) {
                return Err(GenerateError::NameClash {
                    what: format!("branches of union '{}'", entity.name),
                    first,
                    second: v.name.clone(),
                    rust: variant,
                });
            }
            let vid = ident(&variant);
            let wire = &v.name;
            let mut vdoc = vec![format!("`{tag}` is `{wire}`.")];
            if let Some(cond) = &v.ifcond {
                vdoc.push(format!(
                    "**Availability:** only when QEMU is built with {}.",
                    docs::describe_condition(cond)
                ));
            }
            let vdocs = doc_attrs(&vdoc);
            if self.schema.name(v.ty) == "q_empty" {
                variants.push(quote! { #vdocs #vid, });
                branch_writes.push(quote! {
                    #branch_name::#vid => ::serde::ser::SerializeMap::serialize_entry(map, #tag, #wire),
                });
            } else {
                let ty = self.member_type(id, v.ty);
                let boxed = type_text(&ty).starts_with("::std::boxed::Box<");
                branch_types.push((vid.clone(), self.type_ref(v.ty), boxed));
                variants.push(quote! { #vdocs #vid(#ty), });
                branch_writes.push(quote! {
                    #branch_name::#vid(branch) => {
                        ::serde::ser::SerializeMap::serialize_entry(map, #tag, #wire)?;
                        #core::private::Members::members(branch, map)
                    }
                });
            }
        }
        let base_writes = member_writes(&core, &specs);
        let mut tag_doc = vec![format!(
            "The branch, selected by the discriminator `{tag}`."
        )];
        if let Some(text) = self
            .schema
            .members(id)
            .into_iter()
            .find(|m| m.name == tag)
            .and_then(|m| self.member_doc_block(m.defined_in)?.member(&tag))
            .map(|s| docs::markdown(&s.text, self.links))
        {
            tag_doc.push(format!("`{tag}`: {text}"));
        }
        let tag_doc = doc_attrs(&tag_doc);
        let branch_doc = format!(" The branches of [`{rust}`], tagged by `{tag}`.");
        let deserialize = self.union_deserialize(id, &name, &branch_name)?;
        let constructor = construct::constructor(&name, &specs, Some(&branch_name), false);
        let conversions = construct::union_conversions(&name, &branch_name, &specs, &branch_types);
        Ok(quote! {
            #docs
            #deprecated
            #[derive(Debug, Clone, PartialEq)]
            pub struct #name {
                #( #fields )*
                #tag_doc
                pub branch: #branch_name,
            }

            impl Serialize for #name {
                fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> ::std::result::Result<S::Ok, S::Error> {
                    #core::private::serialize_struct(self, serializer)
                }
            }

            impl #core::private::Members for #name {
                fn members<M: ::serde::ser::SerializeMap>(&self, map: &mut M) -> ::std::result::Result<(), M::Error> {
                    #( #base_writes )*
                    #core::private::Members::members(&self.branch, map)
                }
            }

            #deserialize
            #constructor
            #conversions

            #[doc = #branch_doc]
            #[derive(Debug, Clone, PartialEq)]
            pub enum #branch_name {
                #( #variants )*
                /// A branch these bindings do not know (sent by a newer QEMU): its members, the discriminator included.
                Unrecognized(::serde_json::Map<::std::string::String, ::serde_json::Value>),
            }

            /// Encodes the discriminator and the branch's members.
            impl Serialize for #branch_name {
                fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> ::std::result::Result<S::Ok, S::Error> {
                    #core::private::serialize_struct(self, serializer)
                }
            }

            impl #core::private::Members for #branch_name {
                fn members<M: ::serde::ser::SerializeMap>(&self, map: &mut M) -> ::std::result::Result<(), M::Error> {
                    match self {
                        #( #branch_writes )*
                        #branch_name::Unrecognized(members) => #core::private::entries(map, members),
                    }
                }
            }
        })
    }

    /// A union's `Deserialize`: the core's `deserialize_union`, told by an
    /// implementation of its `Union` trait which members are the base's and
    /// which type each branch has (decoding the derived way, with serde's
    /// `flatten`, would buffer every member first).
    pub(super) fn union_deserialize(
        &mut self,
        id: EntityId,
        name: &Ident,
        branch_name: &Ident,
    ) -> Result<TokenStream, GenerateError> {
        let entity = self.schema.entity(id);
        let EntityKind::Object {
            branches: Some(branches),
            ..
        } = &entity.kind
        else {
            unreachable!("a union");
        };
        let wire_name = entity.name.clone();
        let tag = branches.tag.clone();
        let variants = branches.variants.clone();
        let core = self.core.clone();
        let members: Vec<_> = self.schema.members(id).into_iter().cloned().collect();
        let (mut slots, mut reads, mut builds) = (Vec::new(), Vec::new(), Vec::new());
        for m in members.iter().filter(|m| m.name != tag) {
            let field = ident(&names::field(&m.name));
            let ty = self.member_type(id, m.ty);
            let wire = &m.name;
            slots.push(quote! { #field: ::std::option::Option<#ty>, });
            // Optional members are `Option`s already; `null` is `None`
            // unless the type has `null` among its values.
            reads.push(if self.optional(m) && !self.can_be_null(m.ty) {
                quote! { #wire => base.#field = ::serde::de::MapAccess::next_value(map)?, }
            } else {
                quote! { #wire => base.#field = ::std::option::Option::Some(::serde::de::MapAccess::next_value(map)?), }
            });
            builds.push(if self.optional(m) {
                quote! { #field: base.#field, }
            } else {
                quote! { #field: base.#field.ok_or_else(|| E::missing_field(#wire))?, }
            });
        }
        let arms = variants.iter().map(|v| {
            let vid = ident(&names::camel(&v.name));
            let wire = &v.name;
            if self.schema.name(v.ty) == "q_empty" {
                quote! { #wire => #core::private::unit_branch(rest, #branch_name::#vid)?, }
            } else {
                quote! { #wire => #branch_name::#vid(#core::private::branch(rest)?), }
            }
        });
        let branch_fn = quote! {
            fn branch<A: ::serde::de::MapAccess<'de>>(tag: &str, rest: A) -> ::std::result::Result<#branch_name, A::Error> {
                ::std::result::Result::Ok(match tag {
                    #( #arms )*
                    _ => #core::private::unrecognized::<Self, A>(tag, rest)?,
                })
            }

            fn unrecognized(members: ::serde_json::Map<::std::string::String, ::serde_json::Value>) -> #branch_name {
                #branch_name::Unrecognized(members)
            }
        };
        let deserialize = quote! {
            impl<'de> Deserialize<'de> for #name {
                fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> ::std::result::Result<Self, D::Error> {
                    #core::private::deserialize_union(deserializer)
                }
            }
        };
        if slots.is_empty() {
            return Ok(quote! {
                #deserialize

                impl<'de> #core::private::Union<'de> for #name {
                    const NAME: &'static str = #wire_name;
                    const TAG: &'static str = #tag;
                    type Base = ();
                    type Branch = #branch_name;

                    #branch_fn

                    fn assemble<E: ::serde::de::Error>(_base: (), branch: #branch_name) -> ::std::result::Result<Self, E> {
                        ::std::result::Result::Ok(#name { branch })
                    }
                }
            });
        }
        let base_doc = format!(" The base members of [`{name}`] but `{tag}`, while they are read.");
        Ok(quote! {
            #deserialize

            const _: () = {
                #[doc = #base_doc]
                #[derive(Default)]
                pub struct Base {
                    #( #slots )*
                }

                impl<'de> #core::private::Union<'de> for #name {
                    const NAME: &'static str = #wire_name;
                    const TAG: &'static str = #tag;
                    type Base = Base;
                    type Branch = #branch_name;

                    fn base_member<A: ::serde::de::MapAccess<'de>>(base: &mut Base, key: &str, map: &mut A) -> ::std::result::Result<bool, A::Error> {
                        match key {
                            #( #reads )*
                            _ => return ::std::result::Result::Ok(false),
                        }
                        ::std::result::Result::Ok(true)
                    }

                    #branch_fn

                    fn assemble<E: ::serde::de::Error>(base: Base, branch: #branch_name) -> ::std::result::Result<Self, E> {
                        ::std::result::Result::Ok(#name {
                            #( #builds )*
                            branch,
                        })
                    }
                }
            };
        })
    }
}
