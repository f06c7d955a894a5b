//! Checking a JSON value against a type of the introspection document:
//! what a QEMU with that schema would accept (arguments) or send (replies,
//! events).  Each problem names the JSON path where it is
//! (`file.driver: unknown value 'nul-co'; expected one of …`), so a tool
//! can say what to fix before anything is sent.

use std::fmt;

use serde_json::Value;

use crate::schema::{Entity, Member, Meta, Schema};

/// Where a value does not fit its type, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The JSON path from the checked value (`file.driver`, `devices[0]`);
    /// empty for the value itself.
    pub path: String,
    /// What is wrong there.
    pub why: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.why)
        } else {
            write!(f, "{}: {}", self.path, self.why)
        }
    }
}

/// The JSON kind of a value, as the schema's `json-type` names it.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "int",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// `a.b`, `a[0]`: a path one step further.
fn join(path: &str, member: &str) -> String {
    if path.is_empty() {
        member.to_owned()
    } else {
        format!("{path}.{member}")
    }
}

/// The builtin's range, for the integer builtins QAPI has.
fn int_range(name: &str) -> Option<(i128, i128)> {
    Some(match name {
        "int8" => (i8::MIN.into(), i8::MAX.into()),
        "int16" => (i16::MIN.into(), i16::MAX.into()),
        "int32" => (i32::MIN.into(), i32::MAX.into()),
        "int" | "int64" => (i64::MIN.into(), i64::MAX.into()),
        "uint8" => (0, u8::MAX.into()),
        "uint16" => (0, u16::MAX.into()),
        "uint32" => (0, u32::MAX.into()),
        "uint64" | "size" => (0, u64::MAX.into()),
        _ => return None,
    })
}

impl Schema {
    /// Checks a command's arguments (`{}` or absent when it takes none).
    pub fn check_arguments(&self, command: &str, arguments: &Value) -> Vec<Problem> {
        match self.get(command).map(|e| &e.meta) {
            Some(Meta::Command { arg_type, .. }) => self.check_type(arg_type, arguments),
            _ => vec![Problem {
                path: String::new(),
                why: format!("no command '{command}' in this schema"),
            }],
        }
    }

    /// Checks a command's return value.
    pub fn check_return(&self, command: &str, value: &Value) -> Vec<Problem> {
        match self.get(command).map(|e| &e.meta) {
            Some(Meta::Command { ret_type, .. }) => self.check_type(ret_type, value),
            _ => vec![Problem {
                path: String::new(),
                why: format!("no command '{command}' in this schema"),
            }],
        }
    }

    /// Checks an event's data (`{}` when it has none).
    pub fn check_event(&self, event: &str, data: &Value) -> Vec<Problem> {
        match self.get(event).map(|e| &e.meta) {
            Some(Meta::Event { arg_type }) => self.check_type(arg_type, data),
            _ => vec![Problem {
                path: String::new(),
                why: format!("no event '{event}' in this schema"),
            }],
        }
    }

    /// Checks `value` against the type called `type_name`.
    pub fn check_type(&self, type_name: &str, value: &Value) -> Vec<Problem> {
        let mut problems = Vec::new();
        self.check(type_name, value, "", &mut problems);
        problems
    }

    fn check(&self, type_name: &str, value: &Value, path: &str, problems: &mut Vec<Problem>) {
        let mut problem = |why: String| {
            problems.push(Problem {
                path: path.to_owned(),
                why,
            })
        };
        let Some(entity) = self.get(type_name) else {
            return problem(format!("type '{type_name}' is not in the schema"));
        };
        match &entity.meta {
            Meta::Builtin { json_type } => {
                let fits = match json_type.as_str() {
                    "value" => true,
                    "int" => match value {
                        Value::Number(n) => {
                            let n = n.as_i64().map(i128::from).or(n.as_u64().map(i128::from));
                            match (n, int_range(type_name)) {
                                (Some(n), Some((low, high))) if n < low || n > high => {
                                    return problem(format!(
                                        "{n} is out of range for {type_name} ({low} to {high})"
                                    ))
                                }
                                (Some(_), _) => true,
                                (None, _) => false,
                            }
                        }
                        _ => false,
                    },
                    "number" => value.is_number(),
                    other => kind(value) == other,
                };
                if !fits {
                    problem(format!(
                        "expected {}, got {}",
                        json_type_name(json_type),
                        describe(value)
                    ));
                }
            }
            Meta::Enum { values, .. } => match value.as_str() {
                Some(s) if values.iter().any(|v| v == s) => {}
                Some(s) => problem(format!(
                    "unknown value '{s}'; expected one of {}",
                    values.join(", ")
                )),
                None => problem(format!(
                    "expected one of {}, got {}",
                    values.join(", "),
                    describe(value)
                )),
            },
            Meta::Array { element_type } => match value.as_array() {
                Some(items) => {
                    for (i, item) in items.iter().enumerate() {
                        self.check(element_type, item, &format!("{path}[{i}]"), problems);
                    }
                }
                None => problem(format!("expected a list, got {}", describe(value))),
            },
            Meta::Object { .. } => self.check_object(entity, value, path, problems),
            Meta::Alternate { members } => {
                let wanted = kind(value);
                let matching = members.iter().find(|m| {
                    let k = self.json_kind(&m.type_);
                    k == wanted || (k == "number" && wanted == "int")
                });
                match matching {
                    Some(alternative) => self.check(&alternative.type_, value, path, problems),
                    None => {
                        let kinds: Vec<&str> =
                            members.iter().map(|m| self.json_kind(&m.type_)).collect();
                        problem(format!(
                            "expected {}, got {}",
                            kinds
                                .iter()
                                .map(|k| json_type_name(k))
                                .collect::<Vec<_>>()
                                .join(" or "),
                            describe(value)
                        ))
                    }
                }
            }
            Meta::Command { .. } | Meta::Event { .. } | Meta::Unknown => {}
        }
    }

    /// The members an object value of `entity` may have: its own, and the
    /// branch its tag selects.
    pub fn members_for<'a>(&'a self, entity: &'a Entity, value: &Value) -> Vec<&'a Member> {
        let Meta::Object {
            members,
            tag,
            variants,
        } = &entity.meta
        else {
            return Vec::new();
        };
        let mut all: Vec<&Member> = members.iter().collect();
        if let Some(tag) = tag {
            let case = value.get(tag).and_then(Value::as_str);
            if let Some(variant) = variants.iter().find(|v| Some(v.case.as_str()) == case) {
                if let Some(Entity {
                    meta: Meta::Object { members, .. },
                    ..
                }) = self.get(&variant.type_)
                {
                    all.extend(members.iter());
                }
            }
        }
        all
    }

    fn check_object(
        &self,
        entity: &Entity,
        value: &Value,
        path: &str,
        problems: &mut Vec<Problem>,
    ) {
        let Some(object) = value.as_object() else {
            problems.push(Problem {
                path: path.to_owned(),
                why: format!("expected an object, got {}", describe(value)),
            });
            return;
        };
        let members = self.members_for(entity, value);
        for member in &members {
            match object.get(&member.name) {
                Some(v) => self.check(&member.type_, v, &join(path, &member.name), problems),
                None if member.optional() => {}
                None => problems.push(Problem {
                    path: join(path, &member.name),
                    why: "missing (it is required)".to_owned(),
                }),
            }
        }
        for name in object.keys() {
            if !members.iter().any(|m| &m.name == name) {
                let known: Vec<&str> = members.iter().map(|m| m.name.as_str()).collect();
                problems.push(Problem {
                    path: join(path, name),
                    why: if known.is_empty() {
                        "unknown member; none is expected here".to_owned()
                    } else {
                        format!("unknown member; expected one of {}", known.join(", "))
                    },
                });
            }
        }
    }

    /// The JSON kind values of a type have (`string` for an enum).
    fn json_kind(&self, type_name: &str) -> &'static str {
        match self.get(type_name).map(|e| &e.meta) {
            Some(Meta::Builtin { json_type }) => match json_type.as_str() {
                "string" => "string",
                "number" => "number",
                "int" => "int",
                "boolean" => "boolean",
                "null" => "null",
                _ => "value",
            },
            Some(Meta::Enum { .. }) => "string",
            Some(Meta::Array { .. }) => "array",
            Some(Meta::Object { .. }) => "object",
            _ => "value",
        }
    }
}

fn json_type_name(json_type: &str) -> &str {
    match json_type {
        "int" => "an integer",
        "number" => "a number",
        "string" => "a string",
        "boolean" => "true or false",
        "null" => "null",
        "array" => "a list",
        "object" => "an object",
        other => other,
    }
}

/// A value as an error message shows it: its kind and, when short, itself.
fn describe(value: &Value) -> String {
    let text = value.to_string();
    let what = match value {
        Value::Null => return "null".to_owned(),
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "object",
    };
    if text.chars().count() <= 40 {
        format!("{what} {text}")
    } else {
        format!("{what} {}…", text.chars().take(37).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::Schema;

    fn schema() -> Schema {
        Schema::from_json(
            r#"[
  {"name": "blockdev-add", "meta-type": "command", "arg-type": "0", "ret-type": "1"},
  {"name": "0", "meta-type": "object", "tag": "driver",
   "members": [{"name": "driver", "type": "2"}, {"name": "node-name", "type": "str", "default": null},
               {"name": "read-only", "type": "bool", "default": null}],
   "variants": [{"case": "null-co", "type": "3"}, {"case": "file", "type": "4"}]},
  {"name": "1", "meta-type": "object", "members": []},
  {"name": "2", "meta-type": "enum", "values": ["file", "null-co"]},
  {"name": "3", "meta-type": "object", "members": [{"name": "size", "type": "int", "default": null}]},
  {"name": "4", "meta-type": "object", "members": [{"name": "filename", "type": "str"},
     {"name": "aio", "type": "5", "default": null}, {"name": "tags", "type": "[str]", "default": null}]},
  {"name": "5", "meta-type": "alternate", "members": [{"type": "int"}, {"type": "2"}]},
  {"name": "[str]", "meta-type": "array", "element-type": "str"},
  {"name": "str", "meta-type": "builtin", "json-type": "string"},
  {"name": "int", "meta-type": "builtin", "json-type": "int"},
  {"name": "bool", "meta-type": "builtin", "json-type": "boolean"}
]"#,
        )
        .unwrap()
    }

    fn problems(arguments: serde_json::Value) -> Vec<String> {
        schema()
            .check_arguments("blockdev-add", &arguments)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn a_good_value_has_no_problem() {
        assert!(
            problems(json!({"driver": "null-co", "size": 1048576, "read-only": true})).is_empty()
        );
        assert!(
            problems(json!({"driver": "file", "filename": "/a", "aio": 3, "tags": ["x"]}))
                .is_empty()
        );
        assert!(problems(json!({"driver": "file", "filename": "/a", "aio": "file"})).is_empty());
    }

    #[test]
    fn problems_name_their_path() {
        assert_eq!(
            problems(json!({"driver": "nul-co"})),
            ["driver: unknown value 'nul-co'; expected one of file, null-co"]
        );
        assert_eq!(
            problems(json!({"driver": "null-co", "size": "big", "filename": "/a"})),
            [
                "size: expected an integer, got string \"big\"",
                "filename: unknown member; expected one of driver, node-name, read-only, size"
            ]
        );
        assert_eq!(
            problems(json!({"driver": "file", "tags": ["a", 2], "aio": true})),
            [
                "filename: missing (it is required)",
                "aio: expected an integer or a string, got boolean true",
                "tags[1]: expected a string, got number 2"
            ]
        );
        assert_eq!(problems(json!([])), ["expected an object, got list []"]);
        assert_eq!(
            schema().check_arguments("nope", &json!({}))[0].to_string(),
            "no command 'nope' in this schema"
        );
    }
}
