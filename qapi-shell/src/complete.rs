//! What Tab offers, from the schema: command names; member names of the
//! command and of the branch its tag chose so far, nested dotted paths;
//! enum values and `true`/`false`.  Deprecated and unstable members and
//! values are marked in the list the user sees.

use qapi_introspect::{Entity, Meta, Schema};
use serde_json::Value;

use crate::args::{
    action_words, arguments_type, object_of, parse_as, transaction_action, type_at, words,
};

/// One completion: what replaces the word, and how the list shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The text that replaces the word being completed.
    pub replacement: String,
    /// What the list of candidates shows (with marks).
    pub display: String,
}

fn mark(name: &str, features: &[String]) -> String {
    let mut display = name.to_owned();
    for feature in ["deprecated", "unstable"] {
        if features.iter().any(|f| f == feature) {
            display.push_str(&format!(" ({feature})"));
        }
    }
    display
}

/// Where the word being completed starts in `line` (cut at the cursor),
/// the words before it, and the word itself.
fn split_at_word(line: &str) -> (usize, Vec<String>, &str) {
    // After the last blank, which may be more than one byte (U+00A0).
    let start = line
        .char_indices()
        .rfind(|(_, c)| c.is_whitespace())
        .map_or(0, |(i, c)| i + c.len_utf8());
    (start, words(&line[..start]), &line[start..])
}

/// Where the word being completed starts in `line` (cut at the cursor),
/// and the candidates for it.
pub fn complete(schema: &Schema, extra_commands: &[&str], line: &str) -> (usize, Vec<Candidate>) {
    let (start, before, word) = split_at_word(line);
    let Some(command) = before.first() else {
        let mut names: Vec<Candidate> = schema
            .commands()
            .iter()
            .map(String::as_str)
            .chain(extra_commands.iter().copied())
            .filter(|c| c.starts_with(word))
            .map(|c| Candidate {
                replacement: format!("{c} "),
                display: mark(c, schema.get(c).map_or(&[][..], |e| &e.features)),
            })
            .collect();
        names.sort_by(|a, b| a.replacement.cmp(&b.replacement));
        names.dedup();
        return (start, names);
    };
    let command = command.strip_suffix('?').unwrap_or(command);
    let Some(root) = arguments_type(schema, command) else {
        return (start, Vec::new());
    };
    (start, complete_member(schema, root, &before[1..], word))
}

/// Completion in qmp-shell's transaction mode, where a line is `ACTION
/// key=value…`: action names first, then the members of that action's
/// data, typed as in a command line.
pub fn complete_action(schema: &Schema, line: &str) -> (usize, Vec<Candidate>) {
    let (start, before, word) = split_at_word(line);
    let Some(action) = transaction_action(schema) else {
        return (start, Vec::new());
    };
    let Some(name) = before.first() else {
        let kinds = type_at(schema, action, &Value::Null, &["type"])
            .map(|kind| values_of(schema, &kind.meta))
            .unwrap_or_default();
        let candidates = kinds
            .into_iter()
            .filter(|(v, _)| v.starts_with(word))
            .map(|(v, features)| Candidate {
                display: mark(&v, &features),
                replacement: format!("{v} "),
            })
            .collect();
        return (start, candidates);
    };
    // The action's members live under `data` of `{"type": ACTION, "data":
    // {…}}`: complete there, then drop the prefix the user does not type.
    let wrapped = action_words(name, &before[1..]);
    let candidates = complete_member(schema, action, &wrapped, &format!("data.{word}"))
        .into_iter()
        .filter_map(|c| {
            Some(Candidate {
                replacement: c.replacement.strip_prefix("data.")?.to_owned(),
                display: c.display,
            })
        })
        .collect();
    (start, candidates)
}

/// Candidates for `word`, a member path or `path=value` prefix, in a value
/// of type `root` of which `before` gives the members so far.
fn complete_member(
    schema: &Schema,
    root: &Entity,
    before: &[String],
    word: &str,
) -> Vec<Candidate> {
    // What the line says so far, to choose union branches.
    let so_far = parse_as(Some((schema, root)), before).unwrap_or(Value::Null);
    match word.split_once('=') {
        None => {
            let (parent, prefix) = match word.rfind('.') {
                Some(dot) => (&word[..dot], &word[dot + 1..]),
                None => ("", word),
            };
            let steps: Vec<&str> = if parent.is_empty() {
                Vec::new()
            } else {
                parent.split('.').collect()
            };
            let Some(entity) =
                type_at(schema, root, &so_far, &steps).and_then(|e| object_of(schema, e))
            else {
                return Vec::new();
            };
            let mut here = &so_far;
            for step in &steps {
                here = here.get(*step).unwrap_or(&Value::Null);
            }
            let given: Vec<&str> = here
                .as_object()
                .map(|o| o.keys().map(String::as_str).collect())
                .unwrap_or_default();
            schema
                .members_for(entity, here)
                .into_iter()
                .filter(|m| m.name.starts_with(prefix) && !given.contains(&m.name.as_str()))
                .map(|m| {
                    let full = if parent.is_empty() {
                        m.name.clone()
                    } else {
                        format!("{parent}.{}", m.name)
                    };
                    // An object member continues with a dot, others with
                    // their value.
                    let nests = schema
                        .get(&m.type_)
                        .is_some_and(|e| matches!(e.meta, Meta::Object { .. }));
                    Candidate {
                        replacement: if nests {
                            format!("{full}.")
                        } else {
                            format!("{full}=")
                        },
                        display: mark(&m.name, &m.features)
                            + if m.optional() { "" } else { " (required)" },
                    }
                })
                .collect()
        }
        Some((key, prefix)) => {
            let steps: Vec<&str> = key.split('.').collect();
            let Some(entity) = type_at(schema, root, &so_far, &steps) else {
                return Vec::new();
            };
            values_of(schema, &entity.meta)
                .into_iter()
                .filter(|(v, _)| v.starts_with(prefix))
                .map(|(v, features)| Candidate {
                    replacement: format!("{key}={v} "),
                    display: mark(&v, &features),
                })
                .collect()
        }
    }
}

/// The values a member of this type can take by name, with features.
fn values_of(schema: &Schema, meta: &Meta) -> Vec<(String, Vec<String>)> {
    match meta {
        Meta::Enum { values, members } => values
            .iter()
            .map(|v| {
                let features = members
                    .iter()
                    .find(|m| &m.name == v)
                    .map(|m| m.features.clone())
                    .unwrap_or_default();
                (v.clone(), features)
            })
            .collect(),
        Meta::Builtin { json_type } if json_type == "boolean" => {
            vec![("true".into(), Vec::new()), ("false".into(), Vec::new())]
        }
        Meta::Alternate { members } => members
            .iter()
            .filter_map(|m| schema.get(&m.type_))
            .flat_map(|e| values_of(schema, &e.meta))
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bindings() -> Schema {
        Schema::from_json(qapi_types::introspection::SCHEMA).unwrap()
    }

    fn replacements(line: &str) -> Vec<String> {
        let (_, candidates) = complete(&bindings(), &["help"], line);
        candidates.into_iter().map(|c| c.replacement).collect()
    }

    #[test]
    fn command_names() {
        assert_eq!(
            replacements("query-sta"),
            ["query-stats ", "query-stats-schemas ", "query-status "]
        );
        assert_eq!(replacements("hel"), ["help "]);
    }

    #[test]
    fn deprecated_and_unstable_are_marked_in_the_list() {
        let (_, candidates) = complete(&bindings(), &[], "eject ");
        let device = candidates
            .iter()
            .find(|c| c.replacement == "device=")
            .unwrap();
        assert_eq!(device.display, "device (deprecated)");
        let (_, candidates) = complete(&bindings(), &[], "block-job-pa");
        assert_eq!(candidates[0].display, "block-job-pause (deprecated)");
        let (_, candidates) = complete(&bindings(), &[], "x-query-ji");
        assert_eq!(candidates[0].display, "x-query-jit (unstable)");
    }

    #[test]
    fn enum_values_booleans_and_branch_members() {
        assert_eq!(
            replacements("blockdev-add driver=nul"),
            ["driver=null-aio ", "driver=null-co "]
        );
        assert_eq!(
            replacements("blockdev-add read-only=t"),
            ["read-only=true "]
        );
        let members = replacements("blockdev-add driver=null-co ");
        assert!(
            members.contains(&"size=".to_owned()) && members.contains(&"read-zeroes=".to_owned())
        );
        assert!(
            !members.contains(&"driver=".to_owned()),
            "given already: {members:?}"
        );
        assert!(
            !members.contains(&"filename=".to_owned()),
            "another branch's: {members:?}"
        );
        let nested = replacements("blockdev-add driver=qcow2 file.driver=file file.fil");
        assert_eq!(nested, ["file.filename="]);
    }

    #[test]
    fn transaction_actions_and_their_members() {
        let schema = bindings();
        let actions = |line: &str| -> Vec<String> {
            let (_, candidates) = complete_action(&schema, line);
            candidates.into_iter().map(|c| c.replacement).collect()
        };
        assert_eq!(actions("block-dirty-bitmap-a"), ["block-dirty-bitmap-add "]);
        assert!(actions("").contains(&"blockdev-snapshot-sync ".to_owned()));
        let members = actions("block-dirty-bitmap-add node=n0 ");
        assert!(
            members.contains(&"name=".to_owned()) && members.contains(&"persistent=".to_owned()),
            "{members:?}"
        );
        assert!(
            !members.contains(&"node=".to_owned()),
            "given already: {members:?}"
        );
        assert_eq!(
            actions("block-dirty-bitmap-add persistent=tr"),
            ["persistent=true "]
        );
        // A command name is not an action.
        assert!(actions("query-sta").is_empty());
    }

    /// Lines a person might type, and pieces of them in any order:
    /// commands, members, dots, quotes, brackets, multi-byte text.
    fn line_strategy() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let token = prop::sample::select(vec![
            "blockdev-add",
            "transaction",
            "object-add",
            "query-status",
            "help",
            "driver=",
            "null-co",
            "qcow2",
            "file.",
            "driver",
            "=",
            ".",
            " ",
            "  ",
            "\"",
            "'",
            "{",
            "}",
            "[",
            "]",
            ",",
            ":",
            "é",
            "\u{1F600}",
            "node-name",
            "size=",
            "1",
            "-1",
            "1e400",
            "true",
            "data.",
            "?",
            "\\",
            "\t",
            "type=",
            "block-dirty-bitmap-add",
            "qom-type=",
            "iothread",
            "{\"a\": [1, {\"b\": null}]}",
        ]);
        prop_oneof![
            prop::collection::vec(token, 0..12).prop_map(|t| t.concat()),
            any::<String>(),
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(2000))]

        /// Whatever is typed, completion and parsing answer without
        /// panicking, and completion replaces a word that starts on a
        /// character boundary of the line.
        #[test]
        fn any_line_completes_and_parses_without_panicking(line in line_strategy()) {
            static SCHEMA: std::sync::OnceLock<Schema> = std::sync::OnceLock::new();
            let schema = SCHEMA.get_or_init(bindings);
            for (start, _) in [complete(schema, &["help"], &line), complete_action(schema, &line)] {
                proptest::prop_assert!(start <= line.len() && line.is_char_boundary(start));
            }
            let words = words(&line);
            if let Some((command, rest)) = words.split_first() {
                let _ = crate::args::parse(Some(schema), command, rest);
                let _ = crate::args::transaction_line(schema, &words);
                let _ = crate::help::help(schema, crate::help::Docs::qmp(), &line);
            }
        }
    }
}
