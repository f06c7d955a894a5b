//! Events: each event's data type, and `AnyEvent` over all of them.

use proc_macro2::TokenStream;
use quote::quote;

use super::*;
use crate::model::{EntityId, EntityKind};

impl Emitter<'_> {
    pub(super) fn event(&mut self, id: EntityId) -> Result<TokenStream, GenerateError> {
        let entity = self.schema.entity(id);
        let EntityKind::Event { arg_type, .. } = &entity.kind else {
            unreachable!("an event");
        };
        let arg_type = *arg_type;
        let rust = names::camel(&entity.name);
        self.claim(&rust, &entity.name, "events")?;
        let docs = doc_attrs(&self.item_docs(id));
        let deprecated = self.deprecated(&entity.features, self.deprecation_text(id));
        let data = self.data_type(id, &rust, arg_type, false, docs, deprecated)?;
        let name = ident(&rust);
        let wire = &entity.name;
        {
            let module = names::module(&self.schema.modules[self.current_module].name);
            self.event_codec_arms.push(CodecArm {
                module,
                wire: wire.clone(),
                rust: rust.clone(),
            });
        }
        let core = &self.core;
        let name_doc = format!(" `{wire}`");
        Ok(quote! {
            #data

            impl #core::Event for #name {
                #[doc = #name_doc]
                const NAME: &'static str = #wire;
            }
        })
    }

    /// One enum over every event, tagged by name, its data as content.
    pub(super) fn event_enum(
        &self,
        events: &[(EntityId, usize)],
        modules: &[(usize, String)],
    ) -> Result<TokenStream, GenerateError> {
        let mut variants = Vec::new();
        let mut names_arms = Vec::new();
        let (mut data_arms, mut unit_arms) = (Vec::new(), Vec::new());
        let mut data_writes = Vec::new();
        let core = &self.core;
        for (id, module) in events {
            let entity = self.schema.entity(*id);
            let EntityKind::Event { arg_type, .. } = &entity.kind else {
                continue;
            };
            let module_name = modules
                .iter()
                .find(|(i, _)| i == module)
                .map(|(_, n)| n.clone())
                .unwrap_or_default();
            let cfg = self.cfg(&module_name);
            let cfg2 = self.cfg(&module_name);
            let rust = names::camel(&entity.name);
            let vid = ident(&rust);
            let data = ident(&rust);
            let wire = &entity.name;
            let doc = format!(" [`events::{rust}`]");
            let deprecated = if entity.is_deprecated() {
                quote! { #[deprecated(note = "deprecated in QEMU's schema")] }
            } else {
                TokenStream::new()
            };
            if arg_type.is_some() {
                variants.push(quote! { #cfg #[doc = #doc] #deprecated #vid(events::#data), });
                data_writes.push(quote! { #cfg2 AnyEvent::#vid(data) => ::serde::ser::SerializeMap::serialize_entry(map, "data", data), });
                names_arms.push(quote! { #cfg2 AnyEvent::#vid(_) => #wire, });
                data_arms.push(
                    quote! { #cfg2 #wire => AnyEvent::#vid(Deserialize::deserialize(data)?), },
                );
            } else {
                variants.push(quote! { #cfg #[doc = #doc] #deprecated #vid, });
                names_arms.push(quote! { #cfg2 AnyEvent::#vid => #wire, });
                data_arms.push(
                    quote! { #cfg2 #wire => #core::private::no_data(data, AnyEvent::#vid)?, },
                );
                unit_arms.push(quote! { #cfg2 #wire => AnyEvent::#vid, });
            }
        }
        if events.is_empty() {
            return Ok(TokenStream::new());
        }
        let message_doc = format!(
            " Decode event messages as `{}::EventMessage<AnyEvent>`.",
            self.options.core_path.trim_start_matches("::")
        );
        Ok(quote! {
            /// Every event of the schema, tagged by its name, with its data.
            ///
            #[doc = #message_doc]
            #[derive(Debug, Clone, PartialEq)]
            pub enum AnyEvent {
                #( #variants )*
                /// An event these bindings do not know (sent by a newer QEMU), as received.
                Unrecognized {
                    /// The event's name.
                    event: ::std::string::String,
                    /// Its data, if any.
                    data: ::std::option::Option<::serde_json::Value>,
                },
            }

            /// Encoded as `event` and `data` (absent for events without data).
            impl ::serde::Serialize for AnyEvent {
                fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> ::std::result::Result<S::Ok, S::Error> {
                    #core::private::serialize_struct(self, serializer)
                }
            }

            impl #core::private::Members for AnyEvent {
                fn members<M: ::serde::ser::SerializeMap>(&self, map: &mut M) -> ::std::result::Result<(), M::Error> {
                    ::serde::ser::SerializeMap::serialize_entry(map, "event", self.name())?;
                    match self {
                        #( #data_writes )*
                        AnyEvent::Unrecognized { data, .. } => #core::private::optional(map, "data", data),
                        #[allow(unreachable_patterns)]
                        _ => ::std::result::Result::Ok(()),
                    }
                }
            }

            impl AnyEvent {
                /// Whether these bindings do not know the event.
                pub fn is_unrecognized(&self) -> bool {
                    matches!(self, AnyEvent::Unrecognized { .. })
                }

                /// The event's name on the wire.
                pub fn name(&self) -> &str {
                    match self {
                        #( #names_arms )*
                        AnyEvent::Unrecognized { event, .. } => event,
                    }
                }
            }

            impl<'de> ::serde::Deserialize<'de> for AnyEvent {
                fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> ::std::result::Result<Self, D::Error> {
                    #core::private::deserialize_event(deserializer)
                }
            }

            /// Decoding by name: the data goes straight to the event's type.
            impl<'de> #core::private::Events<'de> for AnyEvent {
                fn with_data<D: ::serde::Deserializer<'de>>(name: &str, data: D) -> ::std::result::Result<Self, D::Error> {
                    use ::serde::Deserialize;
                    ::std::result::Result::Ok(match name {
                        #( #data_arms )*
                        _ => AnyEvent::Unrecognized {
                            event: ::std::borrow::ToOwned::to_owned(name),
                            data: ::std::option::Option::Some(Deserialize::deserialize(data)?),
                        },
                    })
                }

                fn without_data(name: &str) -> Self {
                    match name {
                        #( #unit_arms )*
                        // Also an event that should have data: kept as received.
                        _ => AnyEvent::Unrecognized {
                            event: ::std::borrow::ToOwned::to_owned(name),
                            data: ::std::option::Option::None,
                        },
                    }
                }
            }
        })
    }
}
