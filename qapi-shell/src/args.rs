//! A command line read into a request's arguments, typed by the schema.
//!
//! After the command name comes either one JSON object (the arguments
//! whole) or qmp-shell's `key=value` pairs: dotted keys nest
//! (`file.driver=file file.filename=/tmp/a.img`), a value starting with
//! `{` or `[` is JSON, and any other value is read by the type the schema
//! gives that member: `size=1048576` is an integer and `read-only=true` a
//! boolean where the schema says so, a string where it says string.  A
//! member the schema does not know is read as JSON when it parses, else as
//! a string; the check that follows reports it.

use qapi_introspect::{Entity, Meta, Schema};
use serde_json::{Map, Value};

/// Splits a line into words at whitespace outside quotes and outside
/// JSON brackets, so `tags=["a", "b"]` is one word.
pub fn words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in line.chars() {
        if let Some(q) = quote {
            current.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '"' | '\'' => {
                quote = Some(c);
                current.push(c);
            }
            '{' | '[' => {
                depth += 1;
                current.push(c);
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                current.push(c);
            }
            c if c.is_whitespace() && depth == 0 => {
                if !current.is_empty() {
                    words.push(std::mem::take(&mut current));
                }
            }
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

/// Why a command line could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgError(pub String);

impl std::fmt::Display for ArgError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The entity a command's arguments have, if the schema knows the command.
pub fn arguments_type<'a>(schema: &'a Schema, command: &str) -> Option<&'a Entity> {
    match &schema.get(command)?.meta {
        Meta::Command { arg_type, .. } => schema.get(arg_type),
        _ => None,
    }
}

/// The type of the member at `path` below `root`, given the value built so
/// far (it chooses union branches), looking through alternates to their
/// object alternative when the path goes further.
pub fn type_at<'a>(
    schema: &'a Schema,
    root: &'a Entity,
    value: &Value,
    path: &[&str],
) -> Option<&'a Entity> {
    let mut entity = root;
    let mut value = value;
    for (i, name) in path.iter().enumerate() {
        entity = object_of(schema, entity)?;
        let member = schema
            .members_for(entity, value)
            .into_iter()
            .find(|m| m.name == *name)?;
        entity = schema.get(&member.type_)?;
        value = value.get(*name).unwrap_or(&Value::Null);
        if i + 1 == path.len() {
            return Some(entity);
        }
    }
    Some(entity)
}

/// `entity` if it is an object type, or its object alternative if it is an
/// alternate that has one.
pub fn object_of<'a>(schema: &'a Schema, entity: &'a Entity) -> Option<&'a Entity> {
    match &entity.meta {
        Meta::Object { .. } => Some(entity),
        Meta::Alternate { members } => members
            .iter()
            .filter_map(|m| schema.get(&m.type_))
            .find(|e| matches!(e.meta, Meta::Object { .. })),
        _ => None,
    }
}

/// Reads `raw` as a value of `entity` (see the module documentation).
pub fn coerce(schema: &Schema, entity: Option<&Entity>, raw: &str) -> Value {
    if raw.starts_with('{') || raw.starts_with('[') {
        if let Ok(value) = serde_json::from_str(raw) {
            return value;
        }
    }
    let as_json = || serde_json::from_str::<Value>(raw).unwrap_or_else(|_| unquote(raw));
    let Some(entity) = entity else {
        return as_json();
    };
    let kinds: Vec<&str> = match &entity.meta {
        Meta::Builtin { json_type } => vec![json_type.as_str()],
        Meta::Alternate { members } => members
            .iter()
            .filter_map(|m| schema.get(&m.type_))
            .map(|e| match &e.meta {
                Meta::Builtin { json_type } => json_type.as_str(),
                Meta::Enum { .. } => "string",
                _ => "json",
            })
            .collect(),
        Meta::Enum { .. } => vec!["string"],
        _ => vec!["json"],
    };
    // Numbers and booleans before strings: `aio=3` is an integer where an
    // alternate allows both.
    for kind in ["int", "number", "boolean", "null"] {
        if !kinds.contains(&kind) {
            continue;
        }
        let parsed = match kind {
            "int" => raw
                .parse::<i64>()
                .map(Value::from)
                .or_else(|_| raw.parse::<u64>().map(Value::from))
                .ok(),
            "number" => raw
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map(Value::Number),
            "boolean" => match raw {
                "true" => Some(Value::Bool(true)),
                "false" => Some(Value::Bool(false)),
                _ => None,
            },
            _ => (raw == "null").then_some(Value::Null),
        };
        if let Some(value) = parsed {
            return value;
        }
    }
    if kinds.contains(&"string") {
        return unquote(raw);
    }
    if kinds.contains(&"value") || kinds.contains(&"json") {
        return as_json();
    }
    unquote(raw)
}

/// A string value, without the quotes a user may have put around it.
fn unquote(raw: &str) -> Value {
    for q in ['"', '\''] {
        if raw.len() >= 2 && raw.starts_with(q) && raw.ends_with(q) {
            if q == '"' {
                if let Ok(Value::String(s)) = serde_json::from_str(raw) {
                    return Value::String(s);
                }
            }
            return Value::String(raw[1..raw.len() - 1].to_owned());
        }
    }
    Value::String(raw.to_owned())
}

/// Reads the words after a command into its arguments.
pub fn parse(schema: Option<&Schema>, command: &str, words: &[String]) -> Result<Value, ArgError> {
    let root = schema.and_then(|s| Some((s, arguments_type(s, command)?)));
    parse_as(root, words)
}

/// Reads `key=value` words (or one JSON object) into a value of the type
/// `root` gives, when there is one.
pub fn parse_as(root: Option<(&Schema, &Entity)>, words: &[String]) -> Result<Value, ArgError> {
    let rest = words.join(" ");
    if rest.trim_start().starts_with('{') {
        return serde_json::from_str(&rest)
            .map_err(|e| ArgError(format!("the arguments are not a JSON object: {e}")));
    }
    // First the structure, values as written; then each value typed by
    // the member it lands in, which may depend on a union tag given
    // anywhere on the line.
    let mut object = Value::Object(Map::new());
    let mut raws: Vec<(Vec<String>, String)> = Vec::new();
    for word in words {
        let Some((key, raw)) = word.split_once('=') else {
            return Err(ArgError(format!(
                "'{word}' is not key=value (or give the arguments as one JSON object)"
            )));
        };
        if key.is_empty() || key.split('.').any(str::is_empty) {
            return Err(ArgError(format!("'{key}' is not a member name")));
        }
        let path: Vec<String> = key.split('.').map(str::to_owned).collect();
        set(&mut object, &path, Value::String(raw.to_owned()))
            .map_err(|at| ArgError(format!("{key}: {at} is given a value and members both")))?;
        raws.push((path, raw.to_owned()));
    }
    for (path, raw) in raws {
        let value = match root {
            Some((schema, root)) => {
                let steps: Vec<&str> = path.iter().map(String::as_str).collect();
                coerce(schema, type_at(schema, root, &object, &steps), &raw)
            }
            None => serde_json::from_str(&raw).unwrap_or_else(|_| unquote(&raw)),
        };
        // The structure was checked above.
        let _ = set(&mut object, &path, value);
    }
    Ok(object)
}

/// Sets the member at `path`, making the objects on the way; `Err` names
/// the part of the path that already holds something else.
fn set(object: &mut Value, path: &[String], value: Value) -> Result<(), String> {
    let mut at = object;
    for (i, name) in path.iter().enumerate() {
        let Value::Object(members) = at else {
            return Err(path[..i].join("."));
        };
        if i + 1 == path.len() {
            if members.get(name).is_some_and(Value::is_object) && !value.is_object() {
                return Err(path.join("."));
            }
            members.insert(name.clone(), value);
            return Ok(());
        }
        at = members
            .entry(name.clone())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    Ok(())
}

/// The entity of a `transaction`'s actions (`TransactionAction`), from the
/// schema's `transaction` command.
pub fn transaction_action(schema: &Schema) -> Option<&Entity> {
    let arguments = object_of(schema, arguments_type(schema, "transaction")?)?;
    let actions = type_at(schema, arguments, &Value::Null, &["actions"])?;
    match &actions.meta {
        Meta::Array { element_type } => schema.get(element_type),
        _ => None,
    }
}

/// One line of qmp-shell's transaction mode, `ACTION key=value…`, as a
/// `transaction` action: `{"type": ACTION, "data": {…}}`, the data typed
/// by the action's branch.
pub fn transaction_line(schema: &Schema, words: &[String]) -> Result<Value, ArgError> {
    let Some((action, rest)) = words.split_first() else {
        return Err(ArgError("an action: ACTION key=value…".into()));
    };
    let root = transaction_action(schema).map(|e| (schema, e));
    parse_as(root, &action_words(action, rest))
}

/// An action line's words as words of its `TransactionAction` value:
/// `type=ACTION`, then each `key=value` under `data`.
pub fn action_words(action: &str, rest: &[String]) -> Vec<String> {
    let mut wrapped = vec![format!("type={action}")];
    wrapped.extend(rest.iter().map(|w| format!("data.{w}")));
    wrapped
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn bindings() -> Schema {
        Schema::from_json(qapi_types::introspection::SCHEMA).unwrap()
    }

    fn line(schema: &Schema, text: &str) -> Result<Value, ArgError> {
        let words = words(text);
        parse(Some(schema), &words[0], &words[1..])
    }

    #[test]
    fn words_keep_json_and_quotes_whole() {
        assert_eq!(
            words(r#"a x=1  tags=["a", "b"] s="two words" o={"k": [1, 2]}"#),
            [
                "a",
                "x=1",
                r#"tags=["a", "b"]"#,
                r#"s="two words""#,
                r#"o={"k": [1, 2]}"#
            ]
        );
    }

    #[test]
    fn values_are_typed_by_the_schema_and_the_branch() {
        let schema = bindings();
        assert_eq!(
            line(
                &schema,
                "blockdev-add driver=null-co node-name=n0 size=1048576 read-only=true"
            )
            .unwrap(),
            json!({"driver": "null-co", "node-name": "n0", "size": 1048576, "read-only": true})
        );
        // The tag comes after the member its branch defines.
        assert_eq!(
            line(
                &schema,
                "blockdev-add size=4096 driver=null-co node-name=123"
            )
            .unwrap(),
            json!({"driver": "null-co", "node-name": "123", "size": 4096})
        );
        assert_eq!(
            line(
                &schema,
                "blockdev-add driver=qcow2 node-name=q file.driver=file file.filename=/tmp/a.img"
            )
            .unwrap(),
            json!({"driver": "qcow2", "node-name": "q", "file": {"driver": "file", "filename": "/tmp/a.img"}})
        );
        assert_eq!(
            line(
                &schema,
                r#"blockdev-add {"driver": "null-co", "node-name": "j"}"#
            )
            .unwrap(),
            json!({"driver": "null-co", "node-name": "j"})
        );
    }

    #[test]
    fn transaction_lines_are_typed_actions() {
        let schema = bindings();
        let action = transaction_line(
            &schema,
            &words("block-dirty-bitmap-add node=n0 name=b0 granularity=65536 persistent=false"),
        )
        .unwrap();
        assert_eq!(
            action,
            json!({"type": "block-dirty-bitmap-add",
                   "data": {"node": "n0", "name": "b0", "granularity": 65536, "persistent": false}})
        );
        let arguments = json!({ "actions": [action] });
        assert!(schema.check_arguments("transaction", &arguments).is_empty());
    }

    #[test]
    fn malformed_lines_say_what_is_wrong() {
        let schema = bindings();
        assert_eq!(
            line(&schema, "query-status verbose").unwrap_err().0,
            "'verbose' is not key=value (or give the arguments as one JSON object)"
        );
        assert_eq!(
            line(&schema, "blockdev-add file=x file.driver=file")
                .unwrap_err()
                .0,
            "file.driver: file is given a value and members both"
        );
    }
}
