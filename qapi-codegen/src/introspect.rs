//! The introspection document of a schema: what `query-qmp-schema` would
//! return from a QEMU built from it, with every conditional part included
//! (marked with an `if` string) and real type names instead of QEMU's
//! numbers.  [`qapi_introspect`] compares two such documents, or one with
//! a live QEMU's.

use serde_json::{json, Value};

use crate::model::{Condition, EntityId, EntityKind, Feature, JsonType, Schema};

/// The document as JSON: an array of `SchemaInfo` objects, commands and
/// events first in definition order, then every type they use.
pub fn introspection(schema: &Schema) -> Value {
    let mut out = Vec::new();
    let mut used = Vec::new();
    let mut listed = std::collections::HashSet::new();
    let mut use_type = |id: EntityId, used: &mut Vec<EntityId>| -> String {
        let name = wire_name(schema, id);
        if listed.insert(name.clone()) {
            used.push(id);
        }
        name
    };
    let empty = schema.lookup_id("q_empty");
    for entity in schema.entities.iter() {
        let mut object = match &entity.kind {
            EntityKind::Command(command) => {
                let arg = command.arg_type.or(empty).map(|t| use_type(t, &mut used));
                let ret = command.ret_type.or(empty).map(|t| use_type(t, &mut used));
                let mut o = json!({
                    "name": entity.name, "meta-type": "command",
                    "arg-type": arg, "ret-type": ret,
                });
                if command.allow_oob {
                    o["allow-oob"] = Value::Bool(true);
                }
                o
            }
            EntityKind::Event { arg_type, .. } => {
                let arg = arg_type.or(empty).map(|t| use_type(t, &mut used));
                json!({ "name": entity.name, "meta-type": "event", "arg-type": arg })
            }
            _ => continue,
        };
        annotate(&mut object, entity.ifcond.as_ref(), &entity.features);
        out.push(object);
    }
    // Types, breadth first from what commands and events use.
    let mut next = 0;
    while next < used.len() {
        let id = used[next];
        next += 1;
        let entity = schema.entity(id);
        let name = wire_name(schema, id);
        let mut object = match &entity.kind {
            EntityKind::Builtin(json_type) => json!({
                "name": name, "meta-type": "builtin", "json-type": json_type_name(*json_type),
            }),
            EntityKind::Enum { values, .. } => {
                let members: Vec<Value> = values
                    .iter()
                    .map(|v| {
                        let mut m = json!({ "name": v.name });
                        annotate(&mut m, v.ifcond.as_ref(), &v.features);
                        m
                    })
                    .collect();
                let names: Vec<&str> = values.iter().map(|v| v.name.as_str()).collect();
                json!({ "name": name, "meta-type": "enum", "members": members, "values": names })
            }
            EntityKind::Array { element } => {
                let element = use_type(*element, &mut used);
                json!({ "name": name, "meta-type": "array", "element-type": element })
            }
            EntityKind::Object { branches, .. } => {
                let members: Vec<Value> = schema
                    .members(id)
                    .into_iter()
                    .map(|m| {
                        let mut o = json!({ "name": m.name, "type": use_type(m.ty, &mut used) });
                        if m.optional {
                            o["default"] = Value::Null;
                        }
                        annotate(&mut o, m.ifcond.as_ref(), &m.features);
                        o
                    })
                    .collect();
                let mut o = json!({ "name": name, "meta-type": "object", "members": members });
                if let Some(branches) = branches {
                    o["tag"] = Value::String(branches.tag.clone());
                    let variants: Vec<Value> = branches
                        .variants
                        .iter()
                        .map(|v| {
                            let mut o =
                                json!({ "case": v.name, "type": use_type(v.ty, &mut used) });
                            annotate(&mut o, v.ifcond.as_ref(), &[]);
                            o
                        })
                        .collect();
                    o["variants"] = Value::Array(variants);
                }
                o
            }
            EntityKind::Alternate { alternatives } => {
                let members: Vec<Value> = alternatives
                    .iter()
                    .map(|a| {
                        let mut o = json!({ "type": use_type(a.ty, &mut used) });
                        annotate(&mut o, a.ifcond.as_ref(), &[]);
                        o
                    })
                    .collect();
                json!({ "name": name, "meta-type": "alternate", "members": members })
            }
            EntityKind::Command(_) | EntityKind::Event { .. } => continue,
        };
        annotate(&mut object, entity.ifcond.as_ref(), &entity.features);
        out.push(object);
    }
    Value::Array(out)
}

/// The name a type has in the document: every integer type is `int`, an
/// array is `[element]`, other types keep their schema name.
fn wire_name(schema: &Schema, id: EntityId) -> String {
    match &schema.entity(id).kind {
        EntityKind::Builtin(JsonType::Int) => "int".to_owned(),
        EntityKind::Array { element } => format!("[{}]", wire_name(schema, *element)),
        _ => schema.name(id).to_owned(),
    }
}

fn json_type_name(json_type: JsonType) -> &'static str {
    match json_type {
        JsonType::String => "string",
        JsonType::Number => "number",
        JsonType::Int => "int",
        JsonType::Boolean => "boolean",
        JsonType::Null => "null",
        JsonType::Value => "value",
    }
}

fn annotate(object: &mut Value, ifcond: Option<&Condition>, features: &[Feature]) {
    let Value::Object(map) = object else { return };
    if !features.is_empty() {
        let names = features.iter().map(|f| Value::String(f.name.clone()));
        map.insert("features".to_owned(), Value::Array(names.collect()));
    }
    if let Some(condition) = ifcond {
        map.insert("if".to_owned(), Value::String(condition.to_string()));
    }
}

/// The document as text, one entity per line: compact, and it diffs well
/// when the schema changes.
pub fn introspection_text(schema: &Schema) -> String {
    let document = introspection(schema);
    let entities = document.as_array().map(Vec::as_slice).unwrap_or_default();
    let lines: Vec<String> = entities.iter().map(Value::to_string).collect();
    format!("[\n{}\n]\n", lines.join(",\n"))
}

/// The schema's documentation by symbol, for tools that explain commands
/// (the shell's `help`): one JSON object whose members are symbols
/// (commands, events, types), each with its `text` (the body and untagged
/// paragraphs), `members` and `features` (descriptions by name), and
/// `since`, `returns`, `errors` and a struct's or union's `base` type
/// where the schema has them.  Members with no
/// written description are left out.  One symbol per line, in name order,
/// so that a new release's changes read as a diff.
pub fn docs_text(schema: &Schema) -> String {
    use crate::doc::SectionKind;
    let mut symbols = std::collections::BTreeMap::new();
    for doc in &schema.docs {
        let Some(symbol) = &doc.symbol else {
            continue;
        };
        let mut text = String::new();
        let mut members = serde_json::Map::new();
        let mut features = serde_json::Map::new();
        let mut entry = serde_json::Map::new();
        for section in &doc.sections {
            let body = section.text.trim();
            match section.kind {
                SectionKind::Plain | SectionKind::Note if !body.is_empty() => {
                    if !text.is_empty() {
                        text.push_str("\n\n");
                    }
                    text.push_str(body);
                }
                SectionKind::Member | SectionKind::Feature if section.written => {
                    let target = if section.kind == SectionKind::Member {
                        &mut members
                    } else {
                        &mut features
                    };
                    if let Some(name) = &section.name {
                        target.insert(name.clone(), Value::from(body));
                    }
                }
                SectionKind::Since => {
                    entry.insert("since".into(), Value::from(body));
                }
                SectionKind::Returns => {
                    entry.insert("returns".into(), Value::from(body));
                }
                SectionKind::Errors => {
                    entry.insert("errors".into(), Value::from(body));
                }
                _ => {}
            }
        }
        entry.insert("text".into(), Value::from(text));
        // Members a type inherits are described in its base's block.
        if let Some(EntityKind::Object {
            base: Some(base), ..
        }) = schema.lookup(symbol).map(|e| &e.kind)
        {
            entry.insert(
                "base".into(),
                Value::from(schema.entity(*base).name.as_str()),
            );
        }
        if !members.is_empty() {
            entry.insert("members".into(), Value::Object(members));
        }
        if !features.is_empty() {
            entry.insert("features".into(), Value::Object(features));
        }
        symbols.insert(symbol.clone(), Value::Object(entry));
    }
    let lines: Vec<String> = symbols
        .iter()
        .map(|(symbol, entry)| format!("{}: {entry}", Value::from(symbol.as_str())))
        .collect();
    format!("{{\n{}\n}}\n", lines.join(",\n"))
}
