//! The checked model as stable text.
//!
//! The format is the one QEMU's parser test harness (`test-qapi.py`)
//! prints, so a dump can be compared line for line with QEMU's expected
//! `.out` files: modules in order with their includes and definitions (the
//! built-in scalar types and their arrays are left out), then every
//! documentation block with its sections.

use std::fmt::Write;

use crate::doc::SectionKind;
use crate::model::{Condition, EntityKind, Feature, ModuleItem, Schema, Variant};

/// Prints the schema in QEMU's test-harness format.
pub fn dump(schema: &Schema) -> String {
    let mut out = String::new();
    for module in &schema.modules {
        let _ = writeln!(out, "module {}", module.name);
        for item in &module.items {
            match item {
                ModuleItem::Include(name) => {
                    let _ = writeln!(out, "include {name}");
                }
                ModuleItem::Entity(id) => entity(schema, *id, &mut out),
            }
        }
    }
    for doc in &schema.docs {
        match &doc.symbol {
            Some(symbol) => {
                let _ = writeln!(out, "doc symbol={symbol}");
            }
            None => out.push_str("doc freeform\n"),
        }
        let _ = writeln!(out, "    body=\n{}", doc.body().text);
        for s in doc.members() {
            let _ = writeln!(
                out,
                "    arg={}\n{}",
                s.name.as_deref().unwrap_or(""),
                s.text
            );
        }
        for s in doc.features() {
            let _ = writeln!(
                out,
                "    feature={}\n{}",
                s.name.as_deref().unwrap_or(""),
                s.text
            );
        }
        // QEMU's harness prints the sections as written: a `Returns` stub
        // added for documentation generation is not among them.
        for s in doc.other_sections().filter(|s| s.written) {
            // Sections only older releases have (`Note:`, `Examples:`, …)
            // show their tag as written, as those releases' harnesses did.
            let kind = match (s.kind, &s.tag) {
                (SectionKind::Note | SectionKind::Example, Some(tag)) => tag.clone(),
                (kind, _) => kind.to_string(),
            };
            let _ = writeln!(out, "    section={kind}\n{}", s.text);
        }
    }
    out
}

fn entity(schema: &Schema, id: crate::model::EntityId, out: &mut String) {
    let e = schema.entity(id);
    match &e.kind {
        EntityKind::Builtin(_) => {}
        EntityKind::Enum { values, prefix } => {
            let _ = writeln!(out, "enum {}", e.name);
            if let Some(prefix) = prefix {
                let _ = writeln!(out, "    prefix {prefix}");
            }
            for v in values {
                let _ = writeln!(out, "    member {}", v.name);
                condition(&v.ifcond, 8, out);
                features(&v.features, 8, out);
            }
            condition(&e.ifcond, 4, out);
            features(&e.features, 4, out);
        }
        EntityKind::Array { element } => {
            if e.info.is_none() {
                return;
            }
            let _ = writeln!(out, "array {} {}", e.name, schema.name(*element));
            condition(&e.ifcond, 4, out);
        }
        EntityKind::Object {
            base,
            local_members,
            branches,
        } => {
            let _ = writeln!(out, "object {}", e.name);
            if let Some(base) = base {
                let _ = writeln!(out, "    base {}", schema.name(*base));
            }
            for m in local_members {
                let _ = writeln!(
                    out,
                    "    member {}: {} optional={}",
                    m.name,
                    schema.name(m.ty),
                    if m.optional { "True" } else { "False" }
                );
                condition(&m.ifcond, 8, out);
                features(&m.features, 8, out);
            }
            if let Some(b) = branches {
                variants(schema, &b.tag, &b.variants, out);
            }
            condition(&e.ifcond, 4, out);
            features(&e.features, 4, out);
        }
        EntityKind::Alternate { alternatives } => {
            let _ = writeln!(out, "alternate {}", e.name);
            variants(schema, "type", alternatives, out);
            condition(&e.ifcond, 4, out);
            features(&e.features, 4, out);
        }
        EntityKind::Command(c) => {
            let _ = writeln!(
                out,
                "command {} {} -> {}",
                e.name,
                c.arg_type.map_or("None", |t| schema.name(t)),
                c.ret_type.map_or("None", |t| schema.name(t))
            );
            let _ = writeln!(
                out,
                "    gen={} success_response={} boxed={} oob={} preconfig={}{}",
                py_bool(c.gen),
                py_bool(c.success_response),
                py_bool(c.boxed),
                py_bool(c.allow_oob),
                py_bool(c.allow_preconfig),
                if c.coroutine { " coroutine=True" } else { "" }
            );
            condition(&e.ifcond, 4, out);
            features(&e.features, 4, out);
        }
        EntityKind::Event { arg_type, boxed } => {
            let _ = writeln!(
                out,
                "event {} {}",
                e.name,
                arg_type.map_or("None", |t| schema.name(t))
            );
            let _ = writeln!(out, "    boxed={}", py_bool(*boxed));
            condition(&e.ifcond, 4, out);
            features(&e.features, 4, out);
        }
    }
}

fn py_bool(b: bool) -> &'static str {
    if b {
        "True"
    } else {
        "False"
    }
}

fn variants(schema: &Schema, tag: &str, variants: &[Variant], out: &mut String) {
    let _ = writeln!(out, "    tag {tag}");
    for v in variants {
        let _ = writeln!(out, "    case {}: {}", v.name, schema.name(v.ty));
        condition(&v.ifcond, 8, out);
    }
}

fn condition(cond: &Option<Condition>, indent: usize, out: &mut String) {
    if let Some(c) = cond {
        let _ = writeln!(out, "{:indent$}if {c}", "");
    }
}

fn features(list: &[Feature], indent: usize, out: &mut String) {
    for f in list {
        let _ = writeln!(out, "{:indent$}feature {}", "", f.name);
        condition(&f.ifcond, indent + 4, out);
    }
}
