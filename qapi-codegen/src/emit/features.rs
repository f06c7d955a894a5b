//! What an item's docs say beyond its own text: its features, the
//! `#[deprecated]` attribute and its note, build conditions, and the
//! command a type also is.

use proc_macro2::TokenStream;
use quote::quote;

use super::*;
use crate::model::EntityId;

impl Emitter<'_> {
    /// Docs for a definition: its documentation, its condition and its
    /// features.
    pub(super) fn item_docs(&self, id: EntityId) -> Vec<String> {
        let entity = self.schema.entity(id);
        let doc = self.schema.doc(id);
        let mut parts = docs::definition(doc, self.links);
        if let Some(cond) = &entity.ifcond {
            parts.push(format!(
                "**Availability:** only when QEMU is built with {}.",
                docs::describe_condition(cond)
            ));
        }
        if !entity.features.is_empty() {
            let mut list = String::from("# Features\n");
            for f in &entity.features {
                let text = doc
                    .and_then(|d| d.feature(&f.name))
                    .map(|s| docs::markdown(&s.text, self.links).replace('\n', " "))
                    .unwrap_or_default();
                let marker = match f.name.as_str() {
                    "unstable" => " (**unstable**: may change or go away without notice)",
                    "deprecated" => " (**deprecated**)",
                    _ => "",
                };
                list.push_str(&format!("\n- `{}`{marker}: {text}", f.name));
            }
            parts.push(list);
        }
        if let Some(&command) = self.commands_of_types.get(&id) {
            let wire = self.schema.name(command);
            parts.push(format!(
                "# The command `{wire}`\n\nThis type is the command `{wire}` (it implements [`Command`]({}::Command)), which QEMU documents as follows.",
                self.options.core_path.trim_start_matches("::")
            ));
            parts.extend(self.item_docs(command));
        }
        parts
    }

    pub(super) fn deprecated(
        &self,
        features: &[crate::model::Feature],
        doc_text: Option<String>,
    ) -> TokenStream {
        if features.iter().any(|f| f.name == "deprecated") {
            // Compiler warnings show the note as it is: Markdown code
            // spans, but no rustdoc links.
            let note = doc_text
                .map(|t| docs::markdown(&t, &docs::Links::new()))
                .map(|t| t.split("\n\n").next().unwrap_or("").replace('\n', " "))
                .filter(|t| !t.is_empty())
                .unwrap_or_else(|| "deprecated in QEMU's schema".to_owned());
            quote! { #[deprecated(note = #note)] }
        } else {
            TokenStream::new()
        }
    }

    /// What a `#[deprecated]` note says: the schema's description of the
    /// `deprecated` feature, else the first paragraph of the docs.
    pub(super) fn deprecation_text(&self, id: EntityId) -> Option<String> {
        let doc = self.schema.doc(id)?;
        Some(match doc.feature("deprecated") {
            Some(section) => section.text.clone(),
            None => doc.body().text.clone(),
        })
    }

    /// The doc block that describes the members of `id`.
    pub(super) fn member_doc_block(&self, id: EntityId) -> Option<&crate::doc::DocBlock> {
        crate::since::member_doc_block(self.schema, id)
    }

    /// The docs of a member or an enum value `name` described in `block`:
    /// its description, the condition QEMU builds it under, `note` (a
    /// remark of the generator's), and its features.
    pub(super) fn member_docs(
        &self,
        block: Option<&crate::doc::DocBlock>,
        name: &str,
        ifcond: Option<&crate::model::Condition>,
        note: Option<String>,
        features: &[crate::model::Feature],
    ) -> Vec<String> {
        let mut parts = Vec::new();
        if let Some(section) = block.and_then(|b| b.member(name)) {
            parts.push(docs::markdown(&section.text, self.links));
        }
        if let Some(cond) = ifcond {
            parts.push(format!(
                "**Availability:** only when QEMU is built with {}.",
                docs::describe_condition(cond)
            ));
        }
        parts.extend(note);
        for f in features {
            let text = block
                .and_then(|b| b.feature(&f.name))
                .map(|s| docs::markdown(&s.text, self.links).replace('\n', " "))
                .unwrap_or_default();
            parts.push(format!("Feature `{}`: {text}", f.name));
        }
        parts
    }
}
