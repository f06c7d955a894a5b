//! The comparison on small hand-written documents, one behaviour each.

use qapi_introspect::{ChangeKind, Comparison, Named, Presence, Schema};
use serde_json::{json, Value};

/// A document with the built-ins, a `q_empty`, and `extra` entities.
fn doc(extra: Value) -> Schema {
    let mut entities = vec![
        json!({"name": "int", "meta-type": "builtin", "json-type": "int"}),
        json!({"name": "str", "meta-type": "builtin", "json-type": "string"}),
        json!({"name": "bool", "meta-type": "builtin", "json-type": "boolean"}),
        json!({"name": "q_empty", "meta-type": "object", "members": []}),
    ];
    entities.extend(extra.as_array().unwrap().iter().cloned());
    Schema::from_json(&Value::Array(entities).to_string()).unwrap()
}

fn command(name: &str, arg: &str, ret: &str) -> Value {
    json!({"name": name, "meta-type": "command", "arg-type": arg, "ret-type": ret})
}

fn changes(left: &Schema, right: &Schema, command: &str) -> Vec<(String, ChangeKind)> {
    let comparison = Comparison::new(left, right, "left", "right");
    comparison
        .command(command)
        .unwrap()
        .changes
        .iter()
        .map(|c| (c.path.clone(), c.kind.clone()))
        .collect()
}

#[test]
fn identical_documents_with_different_type_names_compare_equal() {
    let left = doc(json!([
        command("c", "A", "q_empty"),
        {"name": "A", "meta-type": "object", "members": [{"name": "x", "type": "int"}]},
    ]));
    let right = doc(json!([
        command("c", "17", "q_empty"),
        {"name": "17", "meta-type": "object", "members": [{"name": "x", "type": "int"}]},
    ]));
    let comparison = Comparison::new(&left, &right, "left", "right");
    assert!(comparison.is_identical(), "{comparison}");
}

#[test]
fn commands_and_events_only_on_one_side() {
    let left = doc(json!([
        command("old", "q_empty", "q_empty"),
        command("both", "q_empty", "q_empty"),
        {"name": "GONE", "meta-type": "event", "arg-type": "q_empty", "if": "CONFIG_X"},
    ]));
    let right = doc(json!([
        command("both", "q_empty", "q_empty"),
        {"name": "new", "meta-type": "command", "arg-type": "q_empty", "ret-type": "q_empty", "features": ["unstable"]},
    ]));
    let comparison = Comparison::new(&left, &right, "left", "right");
    assert_eq!(
        comparison
            .commands_with(Presence::LeftOnly)
            .collect::<Vec<_>>(),
        ["old"]
    );
    assert_eq!(
        comparison
            .commands_with(Presence::RightOnly)
            .collect::<Vec<_>>(),
        ["new"]
    );
    assert_eq!(
        comparison.commands_with(Presence::Both).collect::<Vec<_>>(),
        ["both"]
    );
    assert_eq!(
        comparison
            .events_with(Presence::LeftOnly)
            .collect::<Vec<_>>(),
        ["GONE"]
    );
    assert_eq!(
        comparison.events["GONE"].condition.as_deref(),
        Some("CONFIG_X")
    );
    assert_eq!(comparison.commands["new"].right_features, ["unstable"]);
    let text = comparison.to_string();
    assert!(text.contains("GONE (if CONFIG_X)"), "{text}");
    assert!(text.contains("new (unstable)"), "{text}");
}

#[test]
fn members_removed_added_and_optionality() {
    let left = doc(json!([
        command("c", "A", "R"),
        {"name": "A", "meta-type": "object", "members": [
            {"name": "keep", "type": "int"},
            {"name": "gone", "type": "str", "default": null},
            {"name": "loosened", "type": "int"},
            {"name": "tightened", "type": "int", "default": null},
            {"name": "maybe", "type": "int", "if": "CONFIG_Y"},
        ]},
        {"name": "R", "meta-type": "object", "members": [{"name": "children", "type": "[int]"}]},
        {"name": "[int]", "meta-type": "array", "element-type": "int"},
    ]));
    let right = doc(json!([
        command("c", "1", "2"),
        {"name": "1", "meta-type": "object", "members": [
            {"name": "keep", "type": "int"},
            {"name": "loosened", "type": "int", "default": null},
            {"name": "tightened", "type": "int"},
            {"name": "fresh", "type": "bool"},
        ]},
        {"name": "2", "meta-type": "object", "members": []},
    ]));
    let got = changes(&left, &right, "c");
    let expect = vec![
        (
            "arguments.gone".to_owned(),
            ChangeKind::MemberRemoved {
                optional: true,
                condition: None,
            },
        ),
        ("arguments.loosened".to_owned(), ChangeKind::BecameOptional),
        ("arguments.tightened".to_owned(), ChangeKind::BecameRequired),
        (
            "arguments.maybe".to_owned(),
            ChangeKind::MemberRemoved {
                optional: false,
                condition: Some("CONFIG_Y".into()),
            },
        ),
        (
            "arguments.fresh".to_owned(),
            ChangeKind::MemberAdded { optional: false },
        ),
        (
            "return.children".to_owned(),
            ChangeKind::MemberRemoved {
                optional: false,
                condition: None,
            },
        ),
    ];
    assert_eq!(got, expect);
    assert!(got[3].1.is_conditional());
    assert!(!got[0].1.is_conditional());
}

#[test]
fn enum_values_union_branches_and_nested_paths() {
    let left = doc(json!([
        command("c", "U", "q_empty"),
        {"name": "Kind", "meta-type": "enum", "values": ["a", "b", "c"],
         "members": [{"name": "a"}, {"name": "b"}, {"name": "c", "if": "CONFIG_C"}]},
        {"name": "U", "meta-type": "object", "tag": "kind",
         "members": [{"name": "kind", "type": "Kind"}],
         "variants": [{"case": "a", "type": "BA"}, {"case": "c", "type": "BA", "if": "CONFIG_C"}]},
        {"name": "BA", "meta-type": "object", "members": [{"name": "size", "type": "int"}]},
    ]));
    let right = doc(json!([
        command("c", "9", "q_empty"),
        {"name": "8", "meta-type": "enum", "values": ["a", "b", "d"]},
        {"name": "9", "meta-type": "object", "tag": "kind",
         "members": [{"name": "kind", "type": "8"}],
         "variants": [{"case": "a", "type": "10"}, {"case": "d", "type": "10"}]},
        {"name": "10", "meta-type": "object", "members": [{"name": "size", "type": "str"}]},
    ]));
    let got = changes(&left, &right, "c");
    let c = Named {
        name: "c".into(),
        condition: Some("CONFIG_C".into()),
    };
    assert_eq!(
        got,
        vec![
            (
                "arguments.kind".to_owned(),
                ChangeKind::ValuesRemoved(vec![c.clone()])
            ),
            (
                "arguments.kind".to_owned(),
                ChangeKind::ValuesAdded(vec!["d".into()])
            ),
            ("arguments".to_owned(), ChangeKind::VariantsRemoved(vec![c])),
            (
                "arguments".to_owned(),
                ChangeKind::VariantsAdded(vec!["d".into()])
            ),
            (
                "arguments{kind=a}.size".to_owned(),
                ChangeKind::TypeChanged {
                    left: "int".into(),
                    right: "string".into()
                },
            ),
        ]
    );
    assert!(got[0].1.is_conditional());
}

#[test]
fn alternates_match_alternatives_by_json_type() {
    let left = doc(json!([
        command("c", "Alt", "q_empty"),
        {"name": "Alt", "meta-type": "alternate", "members": [{"type": "str"}, {"type": "O"}]},
        {"name": "O", "meta-type": "object", "members": [{"name": "x", "type": "int"}]},
    ]));
    let right = doc(json!([
        command("c", "5", "q_empty"),
        {"name": "5", "meta-type": "alternate", "members": [{"type": "6"}, {"type": "int"}]},
        {"name": "6", "meta-type": "object", "members": []},
    ]));
    let got = changes(&left, &right, "c");
    assert_eq!(
        got,
        vec![
            (
                "arguments".to_owned(),
                ChangeKind::AlternativesRemoved(vec!["string".into()])
            ),
            (
                "arguments".to_owned(),
                ChangeKind::AlternativesAdded(vec!["int".into()])
            ),
            (
                "arguments<object>.x".to_owned(),
                ChangeKind::MemberRemoved {
                    optional: false,
                    condition: None
                },
            ),
        ]
    );
}

#[test]
fn recursive_types_terminate_and_report_once() {
    let left = doc(json!([
        command("c", "q_empty", "Node"),
        {"name": "Node", "meta-type": "object", "members": [
            {"name": "children", "type": "[Node]"}, {"name": "name", "type": "str"}]},
        {"name": "[Node]", "meta-type": "array", "element-type": "Node"},
    ]));
    let right = doc(json!([
        command("c", "q_empty", "3"),
        {"name": "3", "meta-type": "object", "members": [{"name": "children", "type": "[3]"}]},
        {"name": "[3]", "meta-type": "array", "element-type": "3"},
    ]));
    let got = changes(&left, &right, "c");
    assert_eq!(
        got,
        vec![(
            "return.name".to_owned(),
            ChangeKind::MemberRemoved {
                optional: false,
                condition: None
            }
        )]
    );
}

#[test]
fn features_and_oob_are_compared() {
    let left = doc(json!([
        command("c", "A", "q_empty"),
        {"name": "A", "meta-type": "object", "members": [{"name": "x", "type": "int"}]},
    ]));
    let right = doc(json!([
        {"name": "c", "meta-type": "command", "arg-type": "1", "ret-type": "q_empty",
         "allow-oob": true, "features": ["deprecated"]},
        {"name": "1", "meta-type": "object", "members": [{"name": "x", "type": "int", "features": ["unstable"]}]},
    ]));
    let got = changes(&left, &right, "c");
    assert_eq!(
        got,
        vec![
            (String::new(), ChangeKind::FeatureAdded("deprecated".into())),
            (
                String::new(),
                ChangeKind::OobChanged {
                    left: false,
                    right: true
                }
            ),
            (
                "arguments.x".to_owned(),
                ChangeKind::FeatureAdded("unstable".into())
            ),
        ]
    );
}

#[test]
fn unknown_meta_types_and_missing_types_do_not_panic() {
    let left = doc(json!([command("c", "A", "nowhere")]));
    let right = Schema::from_json(
        r#"[{"name": "c", "meta-type": "command", "arg-type": "1", "ret-type": "2"},
            {"name": "1", "meta-type": "something-new"},
            {"name": "2", "meta-type": "object", "members": []}]"#,
    )
    .unwrap();
    let got = changes(&left, &right, "c");
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got
        .iter()
        .all(|(_, k)| matches!(k, ChangeKind::Undefined(_))));
    assert!(Schema::from_json("{\"not\": \"an array\"}").is_err());
}
