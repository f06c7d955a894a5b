//! The checked model to Rust source.
//!
//! One Rust module per QAPI schema module, each item generated in schema
//! order with quote, the whole formatted with prettyplease.  The mapping:
//!
//! | QAPI | Rust |
//! | --- | --- |
//! | built-in types | `String`, `i64`, `u8`…, `f64`, `bool`, `()`, `serde_json::Value` |
//! | `['T']` | `Vec<T>` |
//! | `enum` | an enum with the wire names, plus `Unrecognized` for values a newer QEMU sends |
//! | `struct` | a struct with the base's members first (no `flatten`), optional members as `Option` |
//! | `union` | a struct with the base's members and `branch`, an enum tagged by the discriminator, plus `Unrecognized` for branches a newer QEMU sends; decoded by the core's `deserialize_union` (members in any order, none buffered after the discriminator) |
//! | `alternate` | an enum decoded by dispatching on the JSON type |
//! | `command` | an arguments type implementing `Command` |
//! | `event` | a data type implementing `Event`, and one `AnyEvent` enum over all events, decoded by name straight into the event's type |
//!
//! Types that contain themselves (through members, branches or
//! alternatives) are boxed where the cycle closes.
//!
//! One file per construct: `objects.rs` (structs, and the data of commands
//! and events), `enums.rs`, `unions.rs`, `alternates.rs`, `commands.rs`,
//! `events.rs`; beside them `construct.rs` (`Default`, `new` and `From`,
//! how users build values), `features.rs` (features, deprecation and
//! conditions in docs), [`docs`] (QEMU's rST to Markdown), [`names`] (Rust
//! names) and `output.rs` (doc placeholders, formatting, the files).  This
//! file holds the options, the per-module driver and `mod.rs`.
//!
//! No serde derives: objects (structs, command arguments, event data)
//! encode and decode through one invocation each of the core's `object!`
//! macro, which lists the members with their wire names, and enums through
//! its `enumeration!`, which lists the values; unions, alternates and
//! `AnyEvent` get small hand-shaped impls that call the core.  The generated crates then need neither `serde_derive` nor `syn`,
//! and each type costs the compiler one match over its members instead of
//! serde's several visitors.

mod alternates;
mod commands;
mod construct;
pub mod docs;
mod enums;
mod events;
mod features;
pub mod names;
mod objects;
mod output;
mod unions;

use objects::{member_writes, FieldSpec};
use output::{doc_attrs, format_file, verbatim, DOC_BLOCKS};

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use proc_macro2::{Ident, Span, TokenStream};
use quote::quote;

use crate::model::{EntityId, EntityKind, ModuleItem, Schema};

/// How to generate.
#[derive(Debug, Clone)]
pub struct Options {
    /// The path generated code uses for the core traits and types
    /// (`Command`, `Event`, `Empty`, `Timestamp`, `UnknownValue`).
    pub core_path: String,
    /// A name for the schema, shown in each file's header.
    pub schema_name: String,
    /// Put each module behind a cargo feature of the same name.
    pub features: bool,
    /// The oldest QEMU release the bindings should decode replies from.
    /// Required reply members that the schema's "(since X.Y)" notes say
    /// appeared after it are generated as `Option`, so that an older QEMU's
    /// reply, which lacks them, still decodes (see
    /// [`crate::since::late_reply_members`]).  `None` keeps the schema's
    /// optional-ness exactly.
    pub baseline: Option<crate::since::Release>,
    /// Which protocol the schema's commands belong to: each command type
    /// implements the core's marker trait for it (`QmpCommand` or
    /// `QgaCommand`), so that a client session takes only its own.
    pub protocol: Protocol,
}

/// The protocol a schema's commands are sent over.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Protocol {
    /// QEMU's machine protocol: commands implement `QmpCommand`.
    #[default]
    Qmp,
    /// The guest agent's protocol: commands implement `QgaCommand`.
    GuestAgent,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            core_path: "::qapi_types".to_owned(),
            schema_name: "schema".to_owned(),
            features: false,
            baseline: None,
            protocol: Protocol::Qmp,
        }
    }
}

/// What one generated module holds, for `mod.rs`.
struct ModuleContents {
    name: String,
    /// The schema file's name (`block-core.json`).
    schema_file: String,
    types: Vec<String>,
    commands: bool,
    events: bool,
    /// Whether the module has a file (it defines something); a module with
    /// only free-form documentation is an empty module carrying it.
    file: bool,
    /// Its free-form documentation, as Markdown paragraphs.
    intro: Vec<String>,
}

/// Generated source: file names (relative to the `generated/` folder) to
/// their text, and the cargo features with the features each needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Generated {
    /// File name → contents, in name order.
    pub files: BTreeMap<String, String>,
    /// Feature → the features it turns on (when `Options::features`).
    pub features: BTreeMap<String, BTreeSet<String>>,
}

/// Why code could not be generated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GenerateError {
    /// Two names of the schema map to one Rust name.
    #[error("{what}: '{first}' and '{second}' both become `{rust}` in Rust")]
    NameClash {
        /// Where (the definition).
        what: String,
        /// The first wire name.
        first: String,
        /// The second wire name.
        second: String,
        /// The Rust name they share.
        rust: String,
    },
    /// The generated code could not be parsed back (a generator bug).
    #[error("generated code for module {module} does not parse: {message}")]
    Unparsable {
        /// The module.
        module: String,
        /// The parser's message.
        message: String,
    },
}

fn ident(name: &str) -> Ident {
    match name.strip_prefix("r#") {
        Some(raw) => Ident::new_raw(raw, Span::call_site()),
        None => Ident::new(name, Span::call_site()),
    }
}

/// A type as Rust source, without the spaces of `TokenStream`'s display
/// (`:: std :: vec :: Vec < T >` → `::std::vec::Vec<T>`).
fn type_text(ty: &TokenStream) -> String {
    ty.to_string()
        .replace(" :: ", "::")
        .replace(":: ", "::")
        .replace(" < ", "<")
        .replace(" <", "<")
        .replace("< ", "<")
        .replace(" >", ">")
        .replace(" ,", ",")
}

/// What every module's emitter reads: the schema and what is computed from
/// it once.  Shared by the threads that generate the modules.
struct Shared<'s> {
    schema: &'s Schema,
    options: &'s Options,
    /// Entity → its strongly connected component, for boxing cycles.
    scc: Vec<usize>,
    /// Which SCCs have a cycle.
    cyclic: Vec<bool>,
    /// Where `@name` references in docs link.
    links: docs::Links,
    /// Required reply members newer than the baseline release, generated
    /// optional: (defining type, member) → the release that added them.
    late: BTreeMap<(EntityId, String), crate::since::Release>,
    /// Types that are also a command (see [`same_named_commands`]) → the
    /// command.
    commands_of_types: HashMap<EntityId, EntityId>,
}

/// A `command_codec` or `event_codec` match arm: the Rust module, the wire
/// name and the Rust type name.
struct CodecArm {
    module: String,
    wire: String,
    rust: String,
}

/// One module, generated (on its own thread) and formatted.
struct ModuleOutput {
    /// `None` when the module defines nothing.
    file: Option<(String, String)>,
    contents: Option<ModuleContents>,
    /// Every name claimed, in order, for clash detection across modules.
    claims: Vec<(String, String)>,
    uses: Option<BTreeSet<usize>>,
    codec_arms: Vec<CodecArm>,
    event_codec_arms: Vec<CodecArm>,
    events: Vec<(EntityId, usize)>,
    /// The error that stopped the module, after its `claims`.
    error: Option<GenerateError>,
}

struct Emitter<'s> {
    schema: &'s Schema,
    options: &'s Options,
    core: TokenStream,
    /// Entity → its strongly connected component, for boxing cycles.
    scc: &'s [usize],
    /// Which SCCs have a cycle.
    cyclic: &'s [bool],
    /// Rust names taken at the top level, for clash detection.
    taken: HashMap<String, String>,
    /// The names claimed, in order (see [`ModuleOutput::claims`]).
    claims: Vec<(String, String)>,
    /// Per module: the modules whose types it uses.
    uses: BTreeMap<usize, BTreeSet<usize>>,
    current_module: usize,
    /// The path from the item being generated to the generated root, where
    /// every type is re-exported: `super::` from a module, `super::super::`
    /// from its `commands` and `events`.
    prefix: TokenStream,
    /// Rust names of the types the current module defines.
    module_types: Vec<String>,
    /// Where `@name` references in docs link.
    links: &'s docs::Links,
    /// `command_codec` match arms, one per command.
    codec_arms: Vec<CodecArm>,
    /// `event_codec` match arms, one per event.
    event_codec_arms: Vec<CodecArm>,
    /// Required reply members newer than the baseline release, generated
    /// optional: (defining type, member) → the release that added them.
    late: &'s BTreeMap<(EntityId, String), crate::since::Release>,
    /// Types that are also a command → the command.
    commands_of_types: &'s HashMap<EntityId, EntityId>,
}

/// Generates Rust for `schema`.
///
/// The modules are generated and formatted in parallel, on up to as many
/// threads as the machine has CPUs; the output does not depend on it.
pub fn generate(schema: &Schema, options: &Options) -> Result<Generated, GenerateError> {
    let (scc, cyclic) = components(schema);
    let shared = Shared {
        schema,
        options,
        scc,
        cyclic,
        links: links(schema),
        late: options
            .baseline
            .map(|baseline| crate::since::late_reply_members(schema, baseline))
            .unwrap_or_default(),
        commands_of_types: same_named_commands(schema),
    };
    Emitter::new(&shared).generate(modules(&shared))
}

/// The commands whose arguments are a named type of the same Rust name
/// (`drive-backup` takes `DriveBackup`), by that type: the type is the
/// command (it implements `Command`), so its page carries the command's
/// docs too.
fn same_named_commands(schema: &Schema) -> HashMap<EntityId, EntityId> {
    let mut out = HashMap::new();
    for (index, entity) in schema.entities.iter().enumerate() {
        if let EntityKind::Command(cmd) = &entity.kind {
            if let Some(arg) = cmd.arg_type {
                let arg_name = schema.name(arg);
                if !arg_name.starts_with("q_obj_")
                    && names::type_name(arg_name) == names::camel(&entity.name)
                {
                    out.insert(arg, EntityId(index as u32));
                }
            }
        }
    }
    out
}

/// Generates and formats every module but the built-in one, each with its
/// own emitter, on worker threads that take the largest modules first; in
/// module order.
fn modules(shared: &Shared) -> Vec<(usize, ModuleOutput)> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let modules = &shared.schema.modules;
    let mut order: Vec<usize> = (1..modules.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(modules[i].items.len()));
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, order.len().max(1));
    let next = AtomicUsize::new(0);
    let work = || {
        let mut done = Vec::new();
        while let Some(&index) = order.get(next.fetch_add(1, Ordering::Relaxed)) {
            done.push((index, Emitter::new(shared).module(index)));
        }
        done
    };
    // This thread works too, alongside `threads - 1` others.
    let mut outputs = std::thread::scope(|scope| {
        let others: Vec<_> = (1..threads).map(|_| scope.spawn(work)).collect();
        let mut outputs = work();
        for other in others {
            outputs.extend(other.join().expect("a code generation thread panicked"));
        }
        outputs
    });
    outputs.sort_by_key(|(index, _)| *index);
    outputs
}

/// Link targets for every generated type, command and event, relative to
/// the crate root the generated folder is re-exported at.
fn links(schema: &Schema) -> docs::Links {
    let mut out = docs::Links::new();
    for entity in &schema.entities {
        if entity.info.is_none() || entity.name.starts_with("q_") {
            continue;
        }
        let path = match &entity.kind {
            EntityKind::Command(_) => format!("crate::commands::{}", names::camel(&entity.name)),
            EntityKind::Event { .. } => format!("crate::events::{}", names::camel(&entity.name)),
            EntityKind::Enum { .. } | EntityKind::Object { .. } | EntityKind::Alternate { .. } => {
                format!("crate::{}", names::type_name(&entity.name))
            }
            _ => continue,
        };
        out.insert(entity.name.clone(), path.replace("r#", ""));
    }
    out
}

/// Tarjan's strongly connected components over "contains inline" edges
/// (members, branches, alternatives; arrays are on the heap and break
/// cycles).
fn components(schema: &Schema) -> (Vec<usize>, Vec<bool>) {
    let n = schema.entities.len();
    let edges: Vec<Vec<usize>> = (0..n)
        .map(|i| inline_children(schema, EntityId(i as u32)))
        .collect();
    let mut index = vec![usize::MAX; n];
    let mut low = vec![0; n];
    let mut on_stack = vec![false; n];
    let mut stack = Vec::new();
    let mut comp = vec![usize::MAX; n];
    let mut cyclic = Vec::new();
    let mut next = 0;
    for root in 0..n {
        if index[root] != usize::MAX {
            continue;
        }
        // Iterative DFS: (node, next edge).
        let mut work = vec![(root, 0usize)];
        index[root] = next;
        low[root] = next;
        next += 1;
        stack.push(root);
        on_stack[root] = true;
        while let Some(&mut (v, ref mut e)) = work.last_mut() {
            if *e < edges[v].len() {
                let w = edges[v][*e];
                *e += 1;
                if index[w] == usize::MAX {
                    index[w] = next;
                    low[w] = next;
                    next += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    work.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
            } else {
                work.pop();
                if let Some(&(parent, _)) = work.last() {
                    low[parent] = low[parent].min(low[v]);
                }
                if low[v] == index[v] {
                    let id = cyclic.len();
                    let mut size = 0;
                    let mut self_loop = false;
                    loop {
                        let w = stack.pop().expect("on the stack");
                        on_stack[w] = false;
                        comp[w] = id;
                        size += 1;
                        self_loop |= edges[w].contains(&w);
                        if w == v {
                            break;
                        }
                    }
                    cyclic.push(size > 1 || self_loop);
                }
            }
        }
    }
    (comp, cyclic)
}

fn inline_children(schema: &Schema, id: EntityId) -> Vec<usize> {
    let mut out = Vec::new();
    match &schema.entity(id).kind {
        EntityKind::Object { branches, .. } => {
            for m in schema.members(id) {
                out.push(m.ty.0 as usize);
            }
            if let Some(b) = branches {
                out.extend(b.variants.iter().map(|v| v.ty.0 as usize));
            }
        }
        EntityKind::Alternate { alternatives } => {
            out.extend(alternatives.iter().map(|v| v.ty.0 as usize));
        }
        _ => {}
    }
    out.retain(|&t| {
        !matches!(
            schema.entities[t].kind,
            EntityKind::Array { .. } | EntityKind::Builtin(_)
        )
    });
    out
}

impl<'s> Emitter<'s> {
    fn new(shared: &'s Shared<'s>) -> Self {
        Emitter {
            schema: shared.schema,
            options: shared.options,
            core: shared
                .options
                .core_path
                .parse()
                .unwrap_or_else(|_| quote! { ::qapi_types }),
            scc: &shared.scc,
            cyclic: &shared.cyclic,
            taken: HashMap::new(),
            claims: Vec::new(),
            uses: BTreeMap::new(),
            current_module: 0,
            prefix: quote! { super:: },
            module_types: Vec::new(),
            codec_arms: Vec::new(),
            event_codec_arms: Vec::new(),
            links: &shared.links,
            late: &shared.late,
            commands_of_types: &shared.commands_of_types,
        }
    }

    /// Puts the generated modules together and generates `mod.rs`.
    fn generate(
        &mut self,
        outputs: Vec<(usize, ModuleOutput)>,
    ) -> Result<Generated, GenerateError> {
        let mut generated = Generated::default();
        let mut module_names = Vec::new();
        let mut module_contents = Vec::new();
        let mut events = Vec::new();
        for (index, output) in outputs {
            // Name clashes across modules, found in the order a single
            // pass would find them.
            for (rust, wire) in &output.claims {
                if let Some(first) = self.taken.get(rust) {
                    if first != wire {
                        let (what, rust) = rust.split_once(':').unwrap_or(("", rust));
                        return Err(GenerateError::NameClash {
                            what: what.to_owned(),
                            first: first.clone(),
                            second: wire.clone(),
                            rust: rust.to_owned(),
                        });
                    }
                }
                self.taken.insert(rust.clone(), wire.clone());
            }
            if let Some(error) = output.error {
                return Err(error);
            }
            if let Some(uses) = output.uses {
                self.uses.insert(index, uses);
            }
            self.codec_arms.extend(output.codec_arms);
            self.event_codec_arms.extend(output.event_codec_arms);
            events.extend(output.events);
            if let Some((file, text)) = output.file {
                generated.files.insert(file, text);
                if let Some(contents) = &output.contents {
                    module_names.push((index, contents.name.clone()));
                }
            }
            module_contents.extend(output.contents);
        }
        DOC_BLOCKS.with_borrow_mut(Vec::clear);
        let events = self.event_enum(&events, &module_names)?;
        let mod_rs = self.mod_rs(&module_contents, events)?;
        generated.files.insert("mod.rs".to_owned(), mod_rs);
        if self.options.features {
            for (index, name) in &module_names {
                let deps = self
                    .uses
                    .get(index)
                    .into_iter()
                    .flatten()
                    .filter(|m| **m != *index)
                    .filter_map(|m| module_names.iter().find(|(i, _)| i == m))
                    .map(|(_, n)| n.clone())
                    .collect();
                generated.features.insert(name.clone(), deps);
            }
        }
        Ok(generated)
    }

    /// Generates module `index` and formats it.
    fn module(&mut self, index: usize) -> ModuleOutput {
        let mut output = ModuleOutput {
            file: None,
            contents: None,
            claims: Vec::new(),
            uses: None,
            codec_arms: Vec::new(),
            event_codec_arms: Vec::new(),
            events: Vec::new(),
            error: None,
        };
        let result = self.module_file(index, &mut output.events);
        output.claims = std::mem::take(&mut self.claims);
        output.uses = self.uses.remove(&index);
        output.codec_arms = std::mem::take(&mut self.codec_arms);
        output.event_codec_arms = std::mem::take(&mut self.event_codec_arms);
        match result {
            Ok(Some((file, text, contents))) => {
                output.file = Some((file, text));
                output.contents = Some(contents);
            }
            Ok(None) => {
                let module = &self.schema.modules[index];
                let intro = self.module_intro(index);
                if !intro.is_empty() {
                    output.contents = Some(ModuleContents {
                        name: names::module(&module.name),
                        schema_file: module.name.clone(),
                        types: Vec::new(),
                        commands: false,
                        events: false,
                        file: false,
                        intro,
                    });
                }
            }
            Err(error) => output.error = Some(error),
        }
        output
    }

    /// The free-form documentation of module `index` (its introduction and
    /// section headings), as Markdown paragraphs.
    fn module_intro(&self, index: usize) -> Vec<String> {
        self.schema.modules[index]
            .free_docs
            .iter()
            .map(|&doc| docs::free_form(&self.schema.docs[doc], self.links))
            .filter(|text| !text.is_empty())
            .collect()
    }

    /// The file of module `index` (`None` when it defines nothing).
    #[allow(clippy::type_complexity)]
    fn module_file(
        &mut self,
        index: usize,
        events: &mut Vec<(EntityId, usize)>,
    ) -> Result<Option<(String, String, ModuleContents)>, GenerateError> {
        let module = &self.schema.modules[index];
        DOC_BLOCKS.with_borrow_mut(Vec::clear);
        self.current_module = index;
        self.module_types.clear();
        let (mut items, mut commands, mut module_events) = (Vec::new(), Vec::new(), Vec::new());
        for item in &module.items {
            if let ModuleItem::Entity(id) = item {
                match self.schema.entity(*id).kind {
                    EntityKind::Event { .. } => {
                        events.push((*id, index));
                        self.prefix = quote! { super::super:: };
                        module_events.push(self.entity(*id)?);
                    }
                    EntityKind::Command(_) => {
                        self.prefix = quote! { super::super:: };
                        commands.push(self.entity(*id)?);
                    }
                    _ => {
                        self.prefix = quote! { super:: };
                        items.push(self.entity(*id)?);
                    }
                }
            }
        }
        if items
            .iter()
            .chain(&commands)
            .chain(&module_events)
            .all(|t| t.is_empty())
        {
            return Ok(None);
        }
        let module_doc = format!(" The commands of `{}`.", module.name);
        let has_commands = !commands.is_empty();
        let commands = if commands.is_empty() {
            TokenStream::new()
        } else {
            quote! {
                #[doc = #module_doc]
                pub mod commands {
                    use serde::{Deserialize, Serialize};
                    #( #commands )*
                }
            }
        };
        let module_doc = format!(" The events of `{}`.", module.name);
        let has_events = !module_events.is_empty();
        let module_events = if module_events.is_empty() {
            TokenStream::new()
        } else {
            quote! {
                #[doc = #module_doc]
                pub mod events {
                    use serde::{Deserialize, Serialize};
                    #( #module_events )*
                }
            }
        };
        let name = names::module(&module.name);
        let header = format!(
            " Generated by qapi-codegen from the {} schema module `{}`.\n Do not edit: run `cargo xtask regen`.",
            self.options.schema_name, module.name
        );
        let tokens = quote! {
            #![allow(deprecated, unused_imports, missing_docs, clippy::all)]
            use serde::{Deserialize, Serialize};
            #( #items )*
            #commands
            #module_events
        };
        let text = format_file(&name, &header, tokens)?;
        // A module named after a keyword is `r#mod` in Rust, `mod.rs`… on disk.
        let file = name.trim_start_matches("r#");
        let contents = ModuleContents {
            name: name.clone(),
            schema_file: module.name.clone(),
            types: self.module_types.clone(),
            commands: has_commands,
            events: has_events,
            file: true,
            intro: self.module_intro(index),
        };
        Ok(Some((format!("{file}.rs"), text, contents)))
    }

    fn cfg(&self, module: &str) -> TokenStream {
        if self.options.features {
            quote! {
                #[cfg(feature = #module)]
                #[cfg_attr(docsrs, doc(cfg(feature = #module)))]
            }
        } else {
            TokenStream::new()
        }
    }

    fn mod_rs(
        &self,
        modules: &[ModuleContents],
        events: TokenStream,
    ) -> Result<String, GenerateError> {
        DOC_BLOCKS.with_borrow_mut(Vec::clear);
        let mods = modules.iter().map(|m| {
            let id = ident(&m.name);
            let types = m.types.iter().map(|t| ident(t));
            let mut doc = vec![format!(
                "Types, commands and events of the schema module `{}`.",
                m.schema_file
            )];
            doc.extend(m.intro.iter().cloned());
            let doc = doc_attrs(&doc);
            if !m.file {
                return quote! {
                    #doc
                    pub mod #id {}
                };
            }
            let cfg = self.cfg(&m.name);
            let reexport = if m.types.is_empty() {
                TokenStream::new()
            } else {
                let cfg = self.cfg(&m.name);
                quote! { #cfg pub use #id::{ #( #types ),* }; }
            };
            quote! {
                #cfg
                #doc
                pub mod #id;
                #reexport
            }
        });
        let core = &self.core;
        let codec_arms = self.codec_arms.iter().map(|arm| {
            let cfg = self.cfg(&arm.module);
            let (module, name, wire) = (ident(&arm.module), ident(&arm.rust), &arm.wire);
            quote! {
                #cfg
                #wire => ::std::option::Option::Some(#core::CommandCodec::of::<#module::commands::#name>()),
            }
        });
        let codecs = if self.codec_arms.is_empty() {
            TokenStream::new()
        } else {
            quote! {
                /// The codec of the command named `name`, if these bindings know it.
                ///
                /// `#[inline]` so that the decoders of every command are compiled
                /// only in programs that call it, not in every build of this crate.
                #[inline]
                pub fn command_codec(name: &str) -> ::std::option::Option<#core::CommandCodec> {
                    match name {
                        #( #codec_arms )*
                        _ => ::std::option::Option::None,
                    }
                }
            }
        };
        let event_codecs = if self.event_codec_arms.is_empty() {
            TokenStream::new()
        } else {
            let arms = self.event_codec_arms.iter().map(|arm| {
                let cfg = self.cfg(&arm.module);
                let (module, name, wire) = (ident(&arm.module), ident(&arm.rust), &arm.wire);
                quote! {
                    #cfg
                    #wire => ::std::option::Option::Some(#core::EventCodec::of::<#module::events::#name>()),
                }
            });
            quote! {
                /// The codec of the event named `name`, if these bindings know it.
                ///
                /// `#[inline]` for the same reason as `command_codec`.
                #[inline]
                pub fn event_codec(name: &str) -> ::std::option::Option<#core::EventCodec> {
                    match name {
                        #( #arms )*
                        _ => ::std::option::Option::None,
                    }
                }
            }
        };
        let command_uses = modules.iter().filter(|m| m.commands).map(|m| {
            let id = ident(&m.name);
            let cfg = self.cfg(&m.name);
            quote! { #cfg pub use super::#id::commands::*; }
        });
        let event_uses = modules.iter().filter(|m| m.events).map(|m| {
            let id = ident(&m.name);
            let cfg = self.cfg(&m.name);
            quote! { #cfg pub use super::#id::events::*; }
        });
        let header = format!(
            " Generated by qapi-codegen from the {} schema.\n Do not edit: run `cargo xtask regen`.",
            self.options.schema_name
        );
        format_file(
            "mod",
            &header,
            quote! {
                #![allow(deprecated, clippy::all)]
                #( #mods )*

                /// Every command, each a type holding its arguments and implementing `Command`.
                pub mod commands {
                    #( #command_uses )*
                }

                /// Every event's data type, each implementing `Event`.
                pub mod events {
                    #( #event_uses )*
                }

                #events

                #codecs

                #event_codecs
            },
        )
    }

    /// Notes that the current module uses `id`'s module.
    fn uses(&mut self, id: EntityId) {
        let module = self.schema.entity(id).module;
        if module != 0 {
            self.uses
                .entry(self.current_module)
                .or_default()
                .insert(module);
        }
    }

    /// The Rust type of a reference to `id`.
    fn type_ref(&mut self, id: EntityId) -> TokenStream {
        let entity = self.schema.entity(id);
        match &entity.kind {
            EntityKind::Builtin(_) => match entity.name.as_str() {
                "str" => quote! { ::std::string::String },
                "number" => quote! { f64 },
                "int" | "int64" => quote! { i64 },
                "int8" => quote! { i8 },
                "int16" => quote! { i16 },
                "int32" => quote! { i32 },
                "uint8" => quote! { u8 },
                "uint16" => quote! { u16 },
                "uint32" => quote! { u32 },
                "uint64" | "size" => quote! { u64 },
                "bool" => quote! { bool },
                "null" => quote! { () },
                // `any`: whatever JSON QEMU sends.
                _ => quote! { ::serde_json::Value },
            },
            EntityKind::Array { element } => {
                let inner = self.type_ref(*element);
                quote! { ::std::vec::Vec<#inner> }
            }
            EntityKind::Object { .. } if entity.name == "q_empty" => {
                let core = &self.core;
                quote! { #core::Empty }
            }
            _ => {
                self.uses(id);
                let name = ident(&names::type_name(&entity.name));
                let prefix = &self.prefix;
                quote! { #prefix #name }
            }
        }
    }

    /// A reference from inside `container`, boxed when it closes a cycle.
    fn member_type(&mut self, container: EntityId, ty: EntityId) -> TokenStream {
        let inner = self.type_ref(ty);
        let (a, b) = (self.scc[container.0 as usize], self.scc[ty.0 as usize]);
        if a == b && self.cyclic[a] {
            quote! { ::std::boxed::Box<#inner> }
        } else {
            inner
        }
    }

    /// Takes `rust` in namespace `what` (`types`, `commands`, `events`)
    /// for `wire`; two wire names may not share it.
    fn claim(&mut self, rust: &str, wire: &str, what: &str) -> Result<(), GenerateError> {
        if what == "types" {
            self.module_types.push(rust.to_owned());
        }
        let rust_key = format!("{what}:{rust}");
        self.claims.push((rust_key.clone(), wire.to_owned()));
        let rust = rust_key.as_str();
        if let Some(first) = self.taken.get(rust) {
            if first != wire {
                return Err(GenerateError::NameClash {
                    what: what.to_owned(),
                    first: first.clone(),
                    second: wire.to_owned(),
                    rust: rust[what.len() + 1..].to_owned(),
                });
            }
        }
        self.taken.insert(rust.to_owned(), wire.to_owned());
        Ok(())
    }

    fn entity(&mut self, id: EntityId) -> Result<TokenStream, GenerateError> {
        let entity = self.schema.entity(id);
        match &entity.kind {
            EntityKind::Builtin(_) | EntityKind::Array { .. } => Ok(TokenStream::new()),
            EntityKind::Enum { values, .. } => self.enum_type(id, values),
            EntityKind::Object { branches, .. } => {
                if entity.name == "q_empty"
                    || (entity.name.starts_with("q_obj_") && !entity.name.ends_with("-wrapper"))
                {
                    // Argument and base types are generated with their
                    // command, event or union.
                    return Ok(TokenStream::new());
                }
                if branches.is_some() {
                    self.union_type(id)
                } else {
                    self.struct_type(id)
                }
            }
            EntityKind::Alternate { .. } => self.alternate_type(id),
            EntityKind::Command(_) => self.command(id),
            EntityKind::Event { .. } => self.event(id),
        }
    }

    /// Whether a member is generated as an `Option`: optional in the
    /// schema, or a reply member newer than the baseline release.
    fn optional(&self, m: &crate::model::Member) -> bool {
        m.optional || self.late.contains_key(&(m.defined_in, m.name.clone()))
    }
}
