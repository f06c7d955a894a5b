//! Objects: structs, and the data types of commands and events (their
//! members as fields, encoded by the core's `object!` macro).

use std::collections::HashMap;

use proc_macro2::{Ident, TokenStream};
use quote::quote;

use super::*;
use crate::model::{EntityId, EntityKind, JsonType};

/// A member of an object type as its codec sees it.
pub(super) struct FieldSpec {
    /// The Rust field.
    pub(super) ident: Ident,
    /// The member's name on the wire.
    pub(super) wire: String,
    /// The type of the value (inside the `Option` of an optional member).
    pub(super) ty: TokenStream,
    /// The type inside `ty` when `ty` is a `Box` (see `member_type`).
    pub(super) unboxed: Option<TokenStream>,
    /// Generated as an `Option`.
    pub(super) optional: bool,
    /// `null` is one of the type's values.
    pub(super) nullable: bool,
}

/// The statements of a `Members::members` that write `specs` from `self`.
pub(super) fn member_writes(core: &TokenStream, specs: &[FieldSpec]) -> Vec<TokenStream> {
    specs
        .iter()
        .map(|FieldSpec { ident, wire, optional, .. }| {
            if *optional {
                quote! { #core::private::optional(map, #wire, &self.#ident)?; }
            } else {
                quote! { ::serde::ser::SerializeMap::serialize_entry(map, #wire, &self.#ident)?; }
            }
        })
        .collect()
}

impl Emitter<'_> {
    /// The fields of the members of `id` (all, base first), leaving out
    /// `skip`.
    pub(super) fn fields(
        &mut self,
        container: EntityId,
        id: EntityId,
        skip: Option<&str>,
    ) -> Result<(Vec<TokenStream>, Vec<FieldSpec>), GenerateError> {
        let members: Vec<_> = self.schema.members(id).into_iter().cloned().collect();
        let mut seen: HashMap<String, String> = HashMap::new();
        let mut out = Vec::new();
        let mut specs = Vec::new();
        for m in members {
            if Some(m.name.as_str()) == skip {
                continue;
            }
            let field = names::field(&m.name);
            if let Some(first) = seen.insert(field.clone(), m.name.clone()) {
                return Err(GenerateError::NameClash {
                    what: format!("members of '{}'", self.schema.name(id)),
                    first,
                    second: m.name.clone(),
                    rust: field,
                });
            }
            let fid = ident(&field);
            let ty = self.member_type(container, m.ty);
            let block = self.member_doc_block(m.defined_in);
            let late = self
                .late
                .get(&(m.defined_in, m.name.clone()))
                .map(|(major, minor)| {
                    format!(
                        "**Absent before QEMU {major}.{minor}:** the schema requires this member, \
                     but it appeared in {major}.{minor}, so it is `None` in replies from older \
                     releases."
                    )
                });
            let docs =
                doc_attrs(&self.member_docs(block, &m.name, m.ifcond.as_ref(), late, &m.features));
            let deprecated = self.deprecated(
                &m.features,
                block
                    .and_then(|b| b.feature("deprecated"))
                    .map(|s| s.text.clone()),
            );
            let optional = self.optional(&m);
            out.push(if optional {
                quote! {
                    #docs
                    #deprecated
                    pub #fid: ::std::option::Option<#ty>,
                }
            } else {
                quote! {
                    #docs
                    #deprecated
                    pub #fid: #ty,
                }
            });
            let unboxed = type_text(&ty)
                .starts_with("::std::boxed::Box<")
                .then(|| self.type_ref(m.ty));
            specs.push(FieldSpec {
                ident: fid,
                wire: m.name.clone(),
                ty,
                unboxed,
                optional,
                nullable: self.can_be_null(m.ty),
            });
        }
        Ok((out, specs))
    }

    /// Encoding and decoding of an object type with the members `specs`
    /// (and, when `extra`, a map of further members): one invocation of
    /// the core's `object!` macro, which implements `Serialize` and
    /// `Deserialize` through the core's member tables, so that each type
    /// adds one match over its members rather than serde's derived
    /// visitors.  The invocation is written out one member per line (see
    /// [`verbatim`]); prettyplease would fill the lines.
    pub(super) fn object_codec(
        &self,
        name: &Ident,
        wire_name: &str,
        specs: &[FieldSpec],
        extra: bool,
    ) -> TokenStream {
        let mut lines = vec![
            format!("{}::private::object! {{", self.options.core_path),
            format!("    {name} = {wire_name:?} {{"),
        ];
        for spec in specs {
            let kind = match (spec.optional, spec.nullable) {
                (false, _) => "required",
                (true, false) => "optional",
                (true, true) => "nullable",
            };
            lines.push(format!(
                "        {kind} {} {:?}: {},",
                spec.ident,
                spec.wire,
                type_text(&spec.ty)
            ));
        }
        let end = if extra { "} + extra" } else { "}" };
        if specs.is_empty() {
            lines[1].push_str(end);
        } else {
            lines.push(format!("    {end}"));
        }
        lines.push("}".to_owned());
        verbatim(lines)
    }

    /// Whether JSON `null` is a value of the type (so an optional member
    /// of it must tell `null` from absent).
    pub(super) fn can_be_null(&self, ty: EntityId) -> bool {
        match &self.schema.entity(ty).kind {
            EntityKind::Builtin(JsonType::Null | JsonType::Value) => true,
            EntityKind::Alternate { alternatives } => alternatives.iter().any(|v| {
                matches!(
                    self.schema.entity(v.ty).kind,
                    EntityKind::Builtin(JsonType::Null)
                )
            }),
            _ => false,
        }
    }

    pub(super) fn struct_type(&mut self, id: EntityId) -> Result<TokenStream, GenerateError> {
        let entity = self.schema.entity(id);
        let rust = names::type_name(&entity.name);
        self.claim(&rust, &entity.name, "types")?;
        let name = ident(&rust);
        let docs = doc_attrs(&self.item_docs(id));
        let deprecated = self.deprecated(&entity.features, self.deprecation_text(id));
        let (fields, specs) = self.fields(id, id, None)?;
        let codec = self.object_codec(&name, &entity.name.clone(), &specs, false);
        let derives = construct::derives(&specs);
        let constructor = construct::constructor(&name, &specs, None, false);
        Ok(quote! {
            #docs
            #deprecated
            #derives
            pub struct #name {
                #( #fields )*
            }

            #codec
            #constructor
        })
    }

    /// The type named after a command or event, for its data: fields when
    /// the schema gives them inline, a wrapper around a named type, or
    /// empty.
    pub(super) fn data_type(
        &mut self,
        id: EntityId,
        rust: &str,
        arg: Option<EntityId>,
        open_ended: bool,
        docs: TokenStream,
        deprecated: TokenStream,
    ) -> Result<TokenStream, GenerateError> {
        let name = ident(rust);
        let wire_name = self.schema.name(id).to_owned();
        let extra = if open_ended {
            quote! {
                /// Further arguments the schema does not list (QEMU accepts
                /// more than its schema describes for this command).
                pub extra: ::serde_json::Map<::std::string::String, ::serde_json::Value>,
            }
        } else {
            TokenStream::new()
        };
        Ok(match arg {
            Some(arg) if self.schema.entity(arg).name.starts_with("q_obj_") => {
                let (fields, specs) = self.fields(id, arg, None)?;
                let codec = self.object_codec(&name, &wire_name, &specs, open_ended);
                let derives = construct::derives(&specs);
                let constructor = construct::constructor(&name, &specs, None, open_ended);
                quote! {
                    #docs
                    #deprecated
                    #derives
                    pub struct #name {
                        #( #fields )*
                        #extra
                    }

                    #codec
                    #constructor
                }
            }
            Some(arg) => {
                let ty = self.type_ref(arg);
                let from = construct::from(&ty, &name, quote! { Self(value) });
                quote! {
                    #docs
                    #deprecated
                    #[derive(Debug, Clone, PartialEq)]
                    pub struct #name(pub #ty);

                    #from

                    /// Encoded as the wrapped value.
                    impl Serialize for #name {
                        fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> ::std::result::Result<S::Ok, S::Error> {
                            self.0.serialize(serializer)
                        }
                    }

                    impl<'de> Deserialize<'de> for #name {
                        fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> ::std::result::Result<Self, D::Error> {
                            Deserialize::deserialize(deserializer).map(#name)
                        }
                    }
                }
            }
            None => {
                let codec = self.object_codec(&name, &wire_name, &[], open_ended);
                quote! {
                    #docs
                    #deprecated
                    #[derive(Debug, Clone, Default, PartialEq)]
                    pub struct #name {
                        #extra
                    }

                    #codec
                }
            }
        })
    }
}
