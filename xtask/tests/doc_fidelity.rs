//! Every sentence of QEMU's documentation reaches rustdoc, on the page of
//! the item it documents.
//!
//! For each doc block of the vendored QMP and guest-agent schemas, each
//! section (body, members, features, notes, Returns, Errors, Since,
//! examples, …) is cut into sentences, and each sentence must appear in the
//! generated documentation of the block's item: a type's page (its docs,
//! its fields' and variants', its branch enum's), a command's or an event's
//! page, or, for free-form blocks (module introductions and section
//! headings), the module's docs.  Comparison is by words, in order: markup
//! (rST on one side, Markdown and links on the other) is not text.
//!
//! Sentences that are meant not to reach rustdoc are listed in
//! `doc_fidelity.allow`, each with the reason; an entry that no longer
//! matches anything fails the test too, so the list cannot go stale.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use qapi_codegen::doc::DocBlock;
use qapi_codegen::emit::names;
use qapi_codegen::model::{EntityKind, Schema};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Generated documentation, by page: `type:Name`, `command:Name`,
/// `event:Name`, `module:name`.  Each page's text is its words, separated
/// and surrounded by single spaces.
struct Pages {
    words: HashMap<String, String>,
}

impl Pages {
    fn read(dir: &Path) -> Pages {
        let mut text: BTreeMap<String, String> = BTreeMap::new();
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.expect("a directory entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "rs"))
            .collect();
        files.sort();
        for file in files {
            let source = std::fs::read_to_string(&file).expect("a generated file");
            let parsed = syn::parse_file(&source)
                .unwrap_or_else(|e| panic!("{} does not parse: {e}", file.display()));
            collect_items(&parsed.items, "type", &mut text);
        }
        // A union's branch enum is on the union's page.
        let branches: Vec<(String, String)> = text
            .iter()
            .filter_map(|(page, docs)| {
                let union = page.strip_prefix("type:")?.strip_suffix("Branch")?;
                let union_page = format!("type:{union}");
                text.contains_key(&union_page)
                    .then(|| (union_page, docs.clone()))
            })
            .collect();
        for (page, docs) in branches {
            text.entry(page).or_default().push_str(&docs);
        }
        Pages {
            words: text
                .into_iter()
                .map(|(k, v)| (k, words(&strip_link_targets(&v))))
                .collect(),
        }
    }

    fn contains(&self, page: &str, sentence: &str) -> bool {
        self.words
            .get(page)
            .is_some_and(|text| text.contains(sentence))
    }
}

/// Docs of `items` into `pages`: structs and enums (with their fields and
/// variants) under `kind:Name`, modules under `module:name`; the items of
/// `commands` and `events` modules are commands and events.
fn collect_items(items: &[syn::Item], kind: &str, pages: &mut BTreeMap<String, String>) {
    for item in items {
        match item {
            syn::Item::Struct(s) => {
                let page = pages.entry(format!("{kind}:{}", s.ident)).or_default();
                push_docs(&s.attrs, page);
                for field in &s.fields {
                    push_docs(&field.attrs, page);
                }
            }
            syn::Item::Enum(e) => {
                let page = pages.entry(format!("{kind}:{}", e.ident)).or_default();
                push_docs(&e.attrs, page);
                for variant in &e.variants {
                    push_docs(&variant.attrs, page);
                }
            }
            syn::Item::Mod(m) => {
                let name = m.ident.to_string();
                push_docs(&m.attrs, pages.entry(format!("module:{name}")).or_default());
                if let Some((_, inner)) = &m.content {
                    let kind = match name.as_str() {
                        "commands" => "command",
                        "events" => "event",
                        _ => kind,
                    };
                    collect_items(inner, kind, pages);
                }
            }
            _ => {}
        }
    }
}

fn push_docs(attrs: &[syn::Attribute], out: &mut String) {
    for attr in attrs {
        if let syn::Meta::NameValue(nv) = &attr.meta {
            if nv.path.is_ident("doc") {
                if let syn::Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(s),
                    ..
                }) = &nv.value
                {
                    out.push_str(&s.value());
                    out.push('\n');
                }
            }
        }
    }
    out.push('\n');
}

/// Markdown links without their targets: `[text](path)` → `[text]`.
fn strip_link_targets(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("](") {
        out.push_str(&rest[..=at]);
        rest = &rest[at + 2..];
        match rest.find(')') {
            Some(end) => rest = &rest[end + 1..],
            None => break,
        }
    }
    out.push_str(rest);
    out
}

/// rST roles' targets: `` :doc:`Title </path>` `` shows only its title.
fn strip_role_targets(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(" <") {
        let after = &rest[at + 2..];
        match after.find(">`") {
            Some(end) if !after[..end].contains(char::is_whitespace) => {
                out.push_str(&rest[..at]);
                rest = &after[end + 1..];
            }
            _ => {
                out.push_str(&rest[..at + 2]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The words of `text` (runs of letters and digits), each followed and the
/// first preceded by a space.
fn words(text: &str) -> String {
    let mut out = String::from(" ");
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        out.push_str(word);
        out.push(' ');
    }
    out
}

/// rST markup that is not text: directive names (`.. note::`), directive
/// options but for a title's text (`:widths: auto`, `:annotated:`) and role
/// names (`` :ref:`…` ``).
fn strip_rst_markup(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let trimmed = line.trim_start();
        let line = if let Some(directive) = trimmed.strip_prefix(".. ") {
            directive.split_once("::").map_or(directive, |(_, arg)| arg)
        } else if let Some(title) = trimmed.strip_prefix(":title:") {
            title
        } else if trimmed.starts_with(':')
            && trimmed[1..]
                .split_once(':')
                .is_some_and(|(name, _)| !name.contains(' '))
        {
            // Another directive option (`:widths: auto`, `:annotated:`).
            ""
        } else {
            line
        };
        out.push_str(&strip_roles(line));
        out.push('\n');
    }
    out
}

/// `` :role:`text` `` → `` `text` ``.
fn strip_roles(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(tick) = rest.find(":`") {
        let before = &rest[..tick];
        let start = before
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == ':' || c == '-'))
            .map_or(0, |i| i + 1);
        if before[start..].starts_with(':') {
            out.push_str(&before[..start]);
        } else {
            out.push_str(&rest[..=tick]);
        }
        rest = &rest[tick + 1..];
    }
    out.push_str(rest);
    out
}

/// The sentences of a section's text: cut at blank lines, list items and
/// sentence ends; each as its words.
fn sentences(text: &str) -> Vec<(String, String)> {
    let text = strip_rst_markup(&strip_role_targets(text));
    let mut out = Vec::new();
    for paragraph in text.split("\n\n") {
        let mut current = String::new();
        let mut chars = paragraph.chars().peekable();
        while let Some(c) = chars.next() {
            current.push(c);
            let ends = matches!(c, '.' | '?' | '!' | ';')
                && chars.peek().is_none_or(|n| n.is_whitespace());
            let item = c == '\n' && chars.peek().is_some_and(|n| *n == '-' || *n == '*');
            if ends || item {
                push_sentence(&mut out, &current);
                current.clear();
            }
        }
        push_sentence(&mut out, &current);
    }
    out
}

fn push_sentence(out: &mut Vec<(String, String)>, text: &str) {
    let w = words(text);
    if w.trim().is_empty() {
        return;
    }
    let shown = text.split_whitespace().collect::<Vec<_>>().join(" ");
    out.push((shown, w));
}

/// Where a doc block's text belongs.
fn page_of(schema: &Schema, doc: usize) -> Option<String> {
    if let Some(module) = schema.modules.iter().find(|m| m.free_docs.contains(&doc)) {
        return Some(format!(
            "module:{}",
            names::module(&module.name).trim_start_matches("r#")
        ));
    }
    let entity = schema.entities.iter().find(|e| e.doc == Some(doc))?;
    Some(match &entity.kind {
        EntityKind::Command(cmd) => {
            let rust = names::camel(&entity.name);
            let same_named = cmd.arg_type.is_some_and(|arg| {
                let arg = schema.name(arg);
                !arg.starts_with("q_obj_") && names::type_name(arg) == rust
            });
            if same_named {
                format!("type:{rust}")
            } else {
                format!("command:{rust}")
            }
        }
        EntityKind::Event { .. } => format!("event:{}", names::camel(&entity.name)),
        _ => format!("type:{}", names::type_name(&entity.name)),
    })
}

/// One allowed miss: a doc block's symbol (or `*`), a section kind (or
/// `*`), the start of the sentence (or `*`), and why.
struct Allowed {
    symbol: String,
    kind: String,
    sentence: String,
    reason: String,
    used: bool,
}

impl Allowed {
    fn matches(&self, symbol: &str, kind: &str, sentence: &str) -> bool {
        (self.symbol == "*" || self.symbol == symbol)
            && (self.kind == "*" || self.kind == kind)
            && (self.sentence == "*" || sentence.starts_with(&self.sentence))
    }
}

fn allow_list() -> Vec<Allowed> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/doc_fidelity.allow");
    let text = std::fs::read_to_string(&path).expect("tests/doc_fidelity.allow");
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|line| {
            let fields: Vec<&str> = line.split(" | ").map(str::trim).collect();
            assert!(
                fields.len() == 4 && !fields[3].is_empty(),
                "doc_fidelity.allow: want `symbol | kind | sentence start | reason`, got: {line}"
            );
            Allowed {
                symbol: fields[0].to_owned(),
                kind: fields[1].to_owned(),
                sentence: fields[2].to_owned(),
                reason: fields[3].to_owned(),
                used: false,
            }
        })
        .collect()
}

/// Checks one schema against its generated folder; returns the tally line
/// and the misses not allowed.
fn check(
    name: &str,
    schema_file: &str,
    generated: &str,
    allowed: &mut [Allowed],
) -> (String, Vec<String>) {
    let schema = qapi_codegen::Config::new()
        .load(root().join(schema_file))
        .unwrap_or_else(|e| panic!("{schema_file}: {e}"));
    let pages = Pages::read(&root().join(generated));
    let (mut total, mut found, mut excused) = (0, 0, 0);
    let mut missing = Vec::new();
    for (index, block) in schema.docs.iter().enumerate() {
        let symbol = block
            .symbol
            .clone()
            .unwrap_or_else(|| "(free-form)".to_owned());
        let Some(page) = page_of(&schema, index) else {
            missing.push(format!("{name}: doc block of {symbol}: no generated item"));
            continue;
        };
        for section in sections(block) {
            let kind = section.0;
            for (shown, sentence) in sentences(&section.1) {
                total += 1;
                if pages.contains(&page, &sentence) {
                    found += 1;
                } else if let Some(entry) = allowed
                    .iter_mut()
                    .find(|a| a.matches(&symbol, &kind, &shown))
                {
                    entry.used = true;
                    excused += 1;
                } else {
                    missing.push(format!("{name}: {symbol} ({kind}, page {page}): {shown}"));
                }
            }
        }
    }
    let tally = format!(
        "{name}: {found} of {total} sentences on their item's page ({:.2}%), {excused} allowed, {} missing",
        100.0 * found as f64 / total.max(1) as f64,
        missing.len()
    );
    (tally, missing)
}

/// A block's sections as written (not the stubs the checker inserts for
/// undocumented members): (kind, text).
fn sections(block: &DocBlock) -> Vec<(String, String)> {
    block
        .sections
        .iter()
        .filter(|s| s.written)
        .map(|s| (s.kind.to_string(), s.text.clone()))
        .collect()
}

#[test]
fn every_sentence_of_the_schema_docs_is_on_its_items_page() {
    let mut allowed = allow_list();
    let mut report = Vec::new();
    let mut missing = Vec::new();
    for (name, schema, generated) in [
        (
            "QMP",
            "schemas/qmp/qapi-schema.json",
            "qapi-types/src/generated",
        ),
        (
            "QGA",
            "schemas/qga/qapi-schema.json",
            "qga-types/src/generated",
        ),
    ] {
        let (tally, misses) = check(name, schema, generated, &mut allowed);
        report.push(tally);
        missing.extend(misses);
    }
    // Printed outside libtest's capture, so a plain `cargo test` shows it.
    use std::io::Write;
    let mut stderr = std::io::stderr();
    for line in &report {
        let _ = writeln!(stderr, "doc fidelity: {line}");
    }
    let stale: Vec<String> = allowed
        .iter()
        .filter(|a| !a.used)
        .map(|a| format!("{} | {} | {} ({})", a.symbol, a.kind, a.sentence, a.reason))
        .collect();
    assert!(
        missing.is_empty(),
        "{} sentences of the schema docs are not on their item's page:\n{}",
        missing.len(),
        missing.join("\n")
    );
    assert!(
        stale.is_empty(),
        "doc_fidelity.allow has entries that match nothing (remove them):\n{}",
        stale.join("\n")
    );
}

#[test]
fn sentences_are_compared_by_words_in_order() {
    let page = words(&strip_link_targets(
        "Once the tray opens, a [`DEVICE_TRAY_MOVED`](crate::events::DeviceTrayMoved) event is emitted.",
    ));
    let found = |text: &str| {
        sentences(text)
            .iter()
            .all(|(_, s)| page.contains(s.as_str()))
    };
    assert!(found(
        "Once the tray opens, a @DEVICE_TRAY_MOVED event is emitted."
    ));
    assert!(!found(
        "Once the tray closes, a @DEVICE_TRAY_MOVED event is emitted."
    ));
    assert!(!found("a @DEVICE_TRAY_MOVED event is emitted. Then more."));
    assert_eq!(
        strip_role_targets("see :doc:`QMP spec </interop/qmp-spec>` for more"),
        "see :doc:`QMP spec` for more"
    );
}
