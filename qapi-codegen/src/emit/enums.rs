//! Enums: one variant per value, plus `Unrecognized`, encoded by the
//! core's `enumeration!` macro.

use std::collections::HashMap;

use proc_macro2::TokenStream;
use quote::quote;

use super::*;
use crate::model::EntityId;

impl Emitter<'_> {
    pub(super) fn enum_type(
        &mut self,
        id: EntityId,
        values: &[crate::model::EnumValue],
    ) -> Result<TokenStream, GenerateError> {
        let entity = self.schema.entity(id);
        let rust = names::type_name(&entity.name);
        self.claim(&rust, &entity.name, "types")?;
        let name = ident(&rust);
        let docs = doc_attrs(&self.item_docs(id));
        let doc = self.schema.doc(id);
        let mut seen: HashMap<String, String> = HashMap::new();
        let mut variants = Vec::new();
        // The methods and serde impls, by the core's `enumeration!` (see
        // `object_codec`).
        let mut codec = vec![
            format!("{}::private::enumeration! {{", self.options.core_path),
            format!("    {rust} {{"),
        ];
        for v in values {
            let variant = names::camel(&v.name);
            if variant == "Unrecognized" {
                return Err(GenerateError::NameClash {
                    what: format!("values of enum '{}'", entity.name),
                    first: v.name.clone(),
                    second: "(the variant for unknown values)".to_owned(),
                    rust: variant,
                });
            }
            if let Some(first) = seen.insert(variant.clone(), v.name.clone()) {
                return Err(GenerateError::NameClash {
                    what: format!("values of enum '{}'", entity.name),
                    first,
                    second: v.name.clone(),
                    rust: variant,
                });
            }
            let vid = ident(&variant);
            let vdocs =
                doc_attrs(&self.member_docs(doc, &v.name, v.ifcond.as_ref(), None, &v.features));
            let deprecated = self.deprecated(
                &v.features,
                doc.and_then(|d| d.feature("deprecated").or_else(|| d.member(&v.name)))
                    .map(|s| s.text.clone()),
            );
            let wire = &v.name;
            variants.push(quote! { #vdocs #deprecated #vid, });
            codec.push(format!("        {variant} = {wire:?},"));
        }
        codec.push("    }".to_owned());
        codec.push("}".to_owned());
        let codec = verbatim(codec);
        let core = &self.core;
        let deprecated = self.deprecated(&entity.features, self.deprecation_text(id));
        Ok(quote! {
            #docs
            #deprecated
            #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
            pub enum #name {
                #( #variants )*
                /// A value these bindings do not know (sent by a newer QEMU), as received.
                Unrecognized(#core::UnknownValue),
            }

            #codec
        })
    }
}
