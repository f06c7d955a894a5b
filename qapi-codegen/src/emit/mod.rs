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
//! No serde derives: objects (structs, command arguments, event data)
//! encode and decode through one invocation each of the core's `object!`
//! macro, which lists the members with their wire names, and enums through
//! its `enumeration!`, which lists the values; unions, alternates and
//! `AnyEvent` get small hand-shaped impls that call the core.  The generated crates then need neither `serde_derive` nor `syn`,
//! and each type costs the compiler one match over its members instead of
//! serde's several visitors.

mod construct;
pub mod docs;
pub mod names;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use proc_macro2::{Ident, Span, TokenStream};
use quote::quote;

use crate::model::{EntityId, EntityKind, JsonType, ModuleItem, Schema};

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

/// The doc attributes for `parts` (paragraphs), one `///` line each in the
/// output.
///
/// Parsing and printing thousands of doc attributes was much of the cost
/// of formatting, so the tokens carry one placeholder attribute per block
/// (`#[doc = "\u{1}N"]`), which prettyplease prints as `///\u{1}N` at the
/// item's indentation; [`format_file`] puts the lines in its place, exactly
/// as prettyplease would have printed one attribute per line.  The blocks
/// wait in a per-thread list, since a module is generated and formatted on
/// one thread.
fn doc_attrs(parts: &[String]) -> TokenStream {
    let text = parts
        .iter()
        .filter(|p| !p.is_empty())
        .cloned()
        .collect::<Vec<_>>()
        .join("\n\n");
    if text.is_empty() {
        return TokenStream::new();
    }
    let lines: Vec<String> = text
        .lines()
        .map(|l| format!(" {l}").trim_end().to_owned())
        .collect();
    let placeholder = DOC_BLOCKS.with_borrow_mut(|blocks| {
        blocks.push(lines);
        format!("{DOC_MARK}{}", blocks.len() - 1)
    });
    quote! { #[doc = #placeholder] }
}

/// Lines of code to appear as they are, at the indentation of the item
/// they stand for: the tokens carry a placeholder macro call
/// (`__qapi_verbatim_N!();`, in the same numbering as the doc blocks) that
/// [`expand_docs`] replaces.
fn verbatim(lines: Vec<String>) -> TokenStream {
    let placeholder = DOC_BLOCKS.with_borrow_mut(|blocks| {
        blocks.push(lines);
        ident(&format!("{VERBATIM_MARK}{}", blocks.len() - 1))
    });
    quote! { #placeholder!(); }
}

/// Starts a verbatim placeholder (see [`verbatim`]).
const VERBATIM_MARK: &str = "__qapi_verbatim_";

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

/// Starts a doc placeholder (see [`doc_attrs`]).
const DOC_MARK: char = '\u{1}';

thread_local! {
    /// The doc blocks of the file being generated on this thread, by
    /// placeholder number.
    static DOC_BLOCKS: std::cell::RefCell<Vec<Vec<String>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Replaces each doc placeholder line of `text` by the lines of its block,
/// at the same indentation.
fn expand_docs(text: &str, blocks: &[Vec<String>]) -> String {
    let mut out = String::with_capacity(text.len() + blocks.len() * 160);
    for line in text.lines() {
        let code = line.trim_start();
        let block = code
            .strip_prefix("///")
            .and_then(|rest| rest.strip_prefix(DOC_MARK))
            .and_then(|n| n.parse::<usize>().ok())
            .and_then(|n| blocks.get(n));
        let indent = &line[..line.len() - code.len()];
        if let Some(block) = block {
            for doc in block {
                out.push_str(indent);
                out.push_str("///");
                out.push_str(doc);
                out.push('\n');
            }
        } else if let Some(block) = verbatim_block(code, blocks) {
            for text in block {
                out.push_str(indent);
                out.push_str(text);
                out.push('\n');
            }
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// The block of a verbatim placeholder line (see [`verbatim`]).
fn verbatim_block<'b>(code: &str, blocks: &'b [Vec<String>]) -> Option<&'b Vec<String>> {
    code.strip_prefix(VERBATIM_MARK)?
        .strip_suffix("!();")?
        .parse::<usize>()
        .ok()
        .and_then(|n| blocks.get(n))
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

    /// Docs for a definition: its documentation, its condition and its
    /// features.
    fn item_docs(&self, id: EntityId) -> Vec<String> {
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

    fn deprecated(
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
    fn deprecation_text(&self, id: EntityId) -> Option<String> {
        let doc = self.schema.doc(id)?;
        Some(match doc.feature("deprecated") {
            Some(section) => section.text.clone(),
            None => doc.body().text.clone(),
        })
    }

    /// The doc block that describes the members of `id`.
    fn member_doc_block(&self, id: EntityId) -> Option<&crate::doc::DocBlock> {
        crate::since::member_doc_block(self.schema, id)
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

    /// The fields of the members of `id` (all, base first), leaving out
    /// `skip`.
    fn fields(
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
            let mut doc = Vec::new();
            let text = block
                .and_then(|b| b.member(&m.name))
                .map(|s| docs::markdown(&s.text, self.links));
            if let Some(t) = &text {
                doc.push(t.clone());
            }
            if let Some(cond) = &m.ifcond {
                doc.push(format!(
                    "**Availability:** only when QEMU is built with {}.",
                    docs::describe_condition(cond)
                ));
            }
            if let Some((major, minor)) = self.late.get(&(m.defined_in, m.name.clone())) {
                doc.push(format!(
                    "**Absent before QEMU {major}.{minor}:** the schema requires this member, \
                     but it appeared in {major}.{minor}, so it is `None` in replies from older \
                     releases."
                ));
            }
            for f in &m.features {
                let ftext = block
                    .and_then(|b| b.feature(&f.name))
                    .map(|s| docs::markdown(&s.text, self.links).replace('\n', " "))
                    .unwrap_or_default();
                doc.push(format!("Feature `{}`: {ftext}", f.name));
            }
            let docs = doc_attrs(&doc);
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
    fn object_codec(
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
    fn can_be_null(&self, ty: EntityId) -> bool {
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

    fn enum_type(
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
            let mut vdoc = Vec::new();
            let text = doc
                .and_then(|d| d.member(&v.name))
                .map(|s| docs::markdown(&s.text, self.links));
            if let Some(t) = &text {
                vdoc.push(t.clone());
            }
            if let Some(cond) = &v.ifcond {
                vdoc.push(format!(
                    "**Availability:** only when QEMU is built with {}.",
                    docs::describe_condition(cond)
                ));
            }
            for f in &v.features {
                let ftext = doc
                    .and_then(|d| d.feature(&f.name))
                    .map(|s| docs::markdown(&s.text, self.links).replace('\n', " "))
                    .unwrap_or_default();
                vdoc.push(format!("Feature `{}`: {ftext}", f.name));
            }
            let vdocs = doc_attrs(&vdoc);
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

    fn struct_type(&mut self, id: EntityId) -> Result<TokenStream, GenerateError> {
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

    fn union_type(&mut self, id: EntityId) -> Result<TokenStream, GenerateError> {
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
    fn union_deserialize(
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

    fn alternate_type(&mut self, id: EntityId) -> Result<TokenStream, GenerateError> {
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

    /// The type named after a command or event, for its data: fields when
    /// the schema gives them inline, a wrapper around a named type, or
    /// empty.
    fn data_type(
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

    fn command(&mut self, id: EntityId) -> Result<TokenStream, GenerateError> {
        let entity = self.schema.entity(id);
        let EntityKind::Command(cmd) = &entity.kind else {
            unreachable!("a command");
        };
        let cmd = cmd.clone();
        let rust = names::camel(&entity.name);
        // A command whose arguments are a named type of the same Rust name
        // (`drive-backup` takes `DriveBackup`) is that type: it implements
        // `Command` itself.
        let same_named = cmd.arg_type.filter(|&a| {
            !self.schema.name(a).starts_with("q_obj_")
                && names::type_name(self.schema.name(a)) == rust
        });
        let data = if let Some(arg) = same_named {
            self.uses(arg);
            TokenStream::new()
        } else {
            self.claim(&rust, &entity.name, "commands")?;
            let docs = doc_attrs(&self.item_docs(id));
            let deprecated = self.deprecated(&entity.features, self.deprecation_text(id));
            self.data_type(id, &rust, cmd.arg_type, !cmd.gen, docs, deprecated)?
        };
        let name_path = {
            let name = ident(&rust);
            quote! { #name }
        };
        let data = match same_named {
            Some(_) => {
                let name = ident(&rust);
                let prefix = &self.prefix;
                quote! { pub use #prefix #name; }
            }
            None => data,
        };
        let wire = &entity.name;
        let core = self.core.clone();
        {
            let module = names::module(&self.schema.modules[self.current_module].name);
            self.codec_arms.push(CodecArm {
                module,
                wire: wire.clone(),
                rust: rust.clone(),
            });
        }
        let returns = match cmd.ret_type {
            Some(r) => self.type_ref(r),
            None => quote! { #core::Empty },
        };
        let mut consts = Vec::new();
        if cmd.allow_oob {
            consts.push(quote! { const ALLOW_OOB: bool = true; });
        }
        if !cmd.success_response {
            consts.push(quote! { const SUCCESS_RESPONSE: bool = false; });
        }
        if cmd.allow_preconfig {
            consts.push(quote! { const ALLOW_PRECONFIG: bool = true; });
        }
        if entity.features.iter().any(|f| f.name == "deprecated") {
            consts.push(quote! { const DEPRECATED: bool = true; });
        }
        if entity.features.iter().any(|f| f.name == "unstable") {
            consts.push(quote! { const UNSTABLE: bool = true; });
        }
        if cmd.arg_type.is_none() && cmd.gen {
            consts.push(quote! { const HAS_ARGUMENTS: bool = false; });
        }
        let marker = match self.options.protocol {
            Protocol::Qmp => quote! { #core::QmpCommand },
            Protocol::GuestAgent => quote! { #core::QgaCommand },
        };
        let name_doc = format!(" `{wire}`");
        Ok(quote! {
            #data

            impl #core::Command for #name_path {
                #[doc = #name_doc]
                const NAME: &'static str = #wire;
                type Returns = #returns;
                #( #consts )*
            }

            impl #marker for #name_path {}
        })
    }

    fn event(&mut self, id: EntityId) -> Result<TokenStream, GenerateError> {
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
    fn event_enum(
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

/// A member of an object type as its codec sees it.
struct FieldSpec {
    ident: Ident,
    wire: String,
    /// The type of the value (inside the `Option` of an optional member).
    ty: TokenStream,
    /// The type inside `ty` when `ty` is a `Box` (see `member_type`).
    unboxed: Option<TokenStream>,
    optional: bool,
    /// `null` is one of the type's values.
    nullable: bool,
}

/// The statements of a `Members::members` that write `specs` from `self`.
fn member_writes(core: &TokenStream, specs: &[FieldSpec]) -> Vec<TokenStream> {
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

/// Formats a module with prettyplease under a header comment.
///
/// Takes this thread's doc blocks (see [`doc_attrs`]).
fn format_file(module: &str, header: &str, tokens: TokenStream) -> Result<String, GenerateError> {
    let blocks = DOC_BLOCKS.with_borrow_mut(std::mem::take);
    let file: syn::File = syn::parse2(tokens).map_err(|e| GenerateError::Unparsable {
        module: module.to_owned(),
        message: e.to_string(),
    })?;
    let body = expand_docs(&space_items(&prettyplease::unparse(&file)), &blocks);
    let mut out = String::new();
    for line in header.lines() {
        out.push_str("//");
        out.push_str(line);
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&body);
    Ok(out)
}

/// A blank line after each item that closes at the top or the first
/// nesting level, so items do not run together (prettyplease leaves none).
fn space_items(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = String::with_capacity(text.len() + text.len() / 20);
    for (i, line) in lines.iter().enumerate() {
        out.push_str(line);
        out.push('\n');
        let closes =
            matches!(*line, "}" | "};" | "    }") || line.trim_start().starts_with(VERBATIM_MARK);
        if let (true, Some(next)) = (closes, lines.get(i + 1)) {
            let indent = line.len() - line.trim_start().len();
            let next_indent = next.len() - next.trim_start().len();
            if !next.trim().is_empty()
                && next_indent == indent
                && !next.trim_start().starts_with('}')
            {
                out.push('\n');
            }
        }
    }
    out
}

impl Generated {
    /// Writes every file into `dir` (created if missing).
    pub fn write_to(&self, dir: &std::path::Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        for (name, text) in &self.files {
            std::fs::write(dir.join(name), text)?;
        }
        Ok(())
    }

    /// The `[features]` table for the crate's Cargo.toml: `default` turns
    /// every module on, each module turns on those it uses.
    pub fn features_table(&self) -> String {
        let quoted = |names: &mut dyn Iterator<Item = &String>| {
            names
                .map(|n| format!("\"{n}\""))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut table = String::from("[features]\n");
        table.push_str(&format!(
            "default = [{}]\n",
            quoted(&mut self.features.keys())
        ));
        for (feature, deps) in &self.features {
            table.push_str(&format!("{feature} = [{}]\n", quoted(&mut deps.iter())));
        }
        table
    }
}

impl fmt::Display for Generated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, text) in &self.files {
            writeln!(f, "// ===== {name} =====")?;
            f.write_str(text)?;
        }
        Ok(())
    }
}
