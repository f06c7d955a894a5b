//! `help COMMAND`: the command's documentation from QEMU's schema (the
//! bindings' release), its arguments as the connected QEMU's schema has
//! them, with their types and descriptions, and `Since`, deprecation and
//! instability.
//!
//! The descriptions come from `src/generated/{qmp,qga}-docs.json`, which
//! `cargo xtask regen` writes from `schemas/`.  A live QEMU's schema hides
//! type names behind numbers, so descriptions are found through the
//! bindings' own introspection document (real names), by member name.

use std::sync::OnceLock;

use qapi_introspect::{Entity, Meta, Schema};
use serde_json::{Map, Value};

/// The documentation of one protocol's schema.
pub struct Docs {
    symbols: Map<String, Value>,
    bindings: Schema,
}

fn load(docs: &str, introspection: &str) -> Docs {
    // Both are generated and tested: they parse.
    let symbols = match serde_json::from_str(docs) {
        Ok(Value::Object(symbols)) => symbols,
        _ => Map::new(),
    };
    Docs {
        symbols,
        bindings: Schema::from_json(introspection).unwrap_or_default(),
    }
}

impl Docs {
    /// QMP's, read once.
    pub fn qmp() -> &'static Docs {
        static DOCS: OnceLock<Docs> = OnceLock::new();
        DOCS.get_or_init(|| {
            load(
                include_str!("generated/qmp-docs.json"),
                qapi_types::introspection::SCHEMA,
            )
        })
    }

    /// The guest agent's, read once.
    pub fn qga() -> &'static Docs {
        static DOCS: OnceLock<Docs> = OnceLock::new();
        DOCS.get_or_init(|| {
            load(
                include_str!("generated/qga-docs.json"),
                qga_types::introspection::SCHEMA,
            )
        })
    }

    fn entry(&self, symbol: &str) -> Option<&Map<String, Value>> {
        self.symbols.get(symbol)?.as_object()
    }

    fn field(&self, symbol: &str, field: &str) -> Option<&str> {
        self.entry(symbol)?.get(field)?.as_str()
    }

    /// `symbol` and its base types, nearest first.
    fn chain(&self, symbol: &str) -> Vec<String> {
        let mut chain = vec![symbol.to_owned()];
        while let Some(base) = self.field(chain.last().map_or("", String::as_str), "base") {
            if chain.iter().any(|s| s == base) || chain.len() > 16 {
                break;
            }
            chain.push(base.to_owned());
        }
        chain
    }

    /// The description of member `name`, looked up in `symbols` in order.
    fn member(&self, symbols: &[String], name: &str) -> Option<String> {
        symbols.iter().find_map(|symbol| {
            let text = self.entry(symbol)?.get("members")?.get(name)?.as_str()?;
            Some(one_line(text))
        })
    }

    /// Where a command's argument descriptions are: its argument type and
    /// that type's bases (a named type), then the command's own block
    /// (arguments written inline).
    fn argument_symbols(&self, command: &str) -> (Vec<String>, Option<&Entity>) {
        let arg_type = match self.bindings.get(command).map(|e| &e.meta) {
            Some(Meta::Command { arg_type, .. }) => Some(arg_type.as_str()),
            _ => None,
        };
        let mut symbols = arg_type.map(|t| self.chain(t)).unwrap_or_default();
        symbols.push(command.to_owned());
        (symbols, arg_type.and_then(|t| self.bindings.get(t)))
    }
}

/// A description on one line: the schema wraps its text.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A type as help shows it: the builtin's name, an enum's values,
/// "object", "list of …" (live schemas hide type names behind numbers).
fn type_name(schema: &Schema, name: &str) -> String {
    match schema.get(name).map(|e| &e.meta) {
        Some(Meta::Builtin { json_type }) => match json_type.as_str() {
            "value" => "any".into(),
            "int" => "integer".into(),
            other => other.into(),
        },
        Some(Meta::Enum { values, .. }) if values.len() <= 8 => {
            format!("one of {}", values.join(", "))
        }
        Some(Meta::Enum { values, .. }) => format!(
            "one of {} values ({}, …)",
            values.len(),
            values[..4].join(", ")
        ),
        Some(Meta::Array { element_type }) => {
            format!("list of {}", type_name(schema, element_type))
        }
        Some(Meta::Object { members, .. }) if members.is_empty() => "nothing".into(),
        Some(Meta::Object { .. }) => "object".into(),
        Some(Meta::Alternate { members }) => members
            .iter()
            .map(|m| type_name(schema, &m.type_))
            .collect::<Vec<_>>()
            .join(" or "),
        _ => name.into(),
    }
}

/// The text of `help TOPIC` (`TOPIC` may name a branch:
/// `blockdev-add driver=qcow2`).
pub fn help(schema: &Schema, docs: &Docs, topic: &str) -> String {
    let mut words = topic.split_whitespace();
    let Some(command) = words.next() else {
        return "COMMAND key=value… | COMMAND {json}   run a command (Tab completes)\n\
                help COMMAND [TAG=VALUE] | COMMAND?  what a command takes (a union's branch)\n\
                events on | off | NAME…              which events are shown\n\
                quit (or Ctrl-D)                     leave"
            .to_owned();
    };
    let branch = words.next().and_then(|w| w.split_once('='));
    let Some(entity) = schema.get(command) else {
        return format!("no command '{command}'");
    };
    let Meta::Command {
        arg_type, ret_type, ..
    } = &entity.meta
    else {
        return format!("'{command}' is not a command");
    };
    let mut out = command.to_owned();
    if let Some(since) = docs.field(command, "since") {
        out.push_str(&format!(" (since {since})"));
    }
    for feature in &entity.features {
        out.push_str(&format!(" ({feature})"));
    }
    out.push('\n');
    if let Some(text) = docs.field(command, "text").filter(|t| !t.is_empty()) {
        for line in text.lines() {
            out.push_str(&format!("  {line}\n"));
        }
    }
    for feature in &entity.features {
        if let Some(text) = docs
            .entry(command)
            .and_then(|e| e.get("features")?.get(feature)?.as_str())
        {
            out.push_str(&format!("  {feature}: {}\n", one_line(text)));
        }
    }
    let (symbols, bindings_arguments) = docs.argument_symbols(command);
    let mut lines = Vec::new();
    if let Some(arguments) = schema.get(arg_type) {
        if let Meta::Object {
            members,
            tag,
            variants,
        } = &arguments.meta
        {
            for member in members {
                lines.push(member_line(schema, docs, &symbols, member, "  "));
            }
            if let Some(tag) = tag {
                match branch.filter(|(t, _)| t == tag) {
                    Some((_, case)) => match variants.iter().find(|v| v.case == case) {
                        Some(variant) => {
                            let mut branch_symbols = bindings_arguments
                                .and_then(|e| match &e.meta {
                                    Meta::Object { variants, .. } => variants
                                        .iter()
                                        .find(|v| v.case == case)
                                        .map(|v| docs.chain(&v.type_)),
                                    _ => None,
                                })
                                .unwrap_or_default();
                            branch_symbols.extend(symbols.iter().cloned());
                            lines.push(format!("  when {tag}={case}:"));
                            if let Some(Entity {
                                meta: Meta::Object { members, .. },
                                ..
                            }) = schema.get(&variant.type_)
                            {
                                for member in members {
                                    lines.push(member_line(
                                        schema,
                                        docs,
                                        &branch_symbols,
                                        member,
                                        "    ",
                                    ));
                                }
                            }
                        }
                        None => lines.push(format!("  no branch {tag}={case}")),
                    },
                    None => {
                        let cases: Vec<&str> = variants.iter().map(|v| v.case.as_str()).collect();
                        lines.push(format!(
                            "  and the members of the branch {tag} chooses: `help {command} {tag}=VALUE` \
                             shows one ({})",
                            cases.join(", ")
                        ));
                    }
                }
            }
        }
    }
    if lines.is_empty() {
        out.push_str("arguments: none\n");
    } else {
        out.push_str("arguments:\n");
        for line in lines {
            out.push_str(&line);
            out.push('\n');
        }
    }
    out.push_str(&format!("returns: {}", type_name(schema, ret_type)));
    if let Some(returns) = docs.field(command, "returns") {
        out.push_str(&format!(": {}", one_line(returns)));
    }
    if let Some(errors) = docs.field(command, "errors") {
        out.push_str(&format!("\nerrors: {}", one_line(errors)));
    }
    out
}

fn member_line(
    schema: &Schema,
    docs: &Docs,
    symbols: &[String],
    member: &qapi_introspect::Member,
    indent: &str,
) -> String {
    let mut line = format!(
        "{indent}{}: {}",
        member.name,
        type_name(schema, &member.type_)
    );
    if member.optional() {
        line.push_str(" (optional)");
    }
    for feature in &member.features {
        line.push_str(&format!(" ({feature})"));
    }
    if let Some(doc) = docs.member(symbols, &member.name) {
        line.push_str(&format!(" — {doc}"));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_shows_the_docs_the_types_and_one_branch() {
        let schema = Schema::from_json(qapi_types::introspection::SCHEMA).unwrap();
        let text = help(&schema, Docs::qmp(), "blockdev-add");
        assert!(
            text.starts_with("blockdev-add (since 2.9)\n  Creates a new block device."),
            "{text}"
        );
        assert!(
            text.contains("  node-name: string (optional) — the node name of the new node"),
            "{text}"
        );
        assert!(text.contains("`help blockdev-add driver=VALUE`"), "{text}");
        let branch = help(&schema, Docs::qmp(), "blockdev-add driver=qcow2");
        // Described in the branch's base type's block.
        assert!(branch.contains("    file: object or string — reference to or definition of the data source block device"), "{branch}");
        let qga = Schema::from_json(qga_types::introspection::SCHEMA).unwrap();
        let ping = help(&qga, Docs::qga(), "guest-ping");
        assert!(
            ping.starts_with("guest-ping (since 0.15.0)\n  Ping the guest agent"),
            "{ping}"
        );
    }
}
