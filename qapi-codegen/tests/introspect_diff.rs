//! `qapi-codegen introspect` and `qapi-codegen diff` as a user runs them.

mod common;

use std::process::{Command, Output};

fn qapi_codegen(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_qapi-codegen"))
        .args(args)
        .output()
        .expect("run qapi-codegen")
}

/// The vendored QMP schema's root file, or `None` after saying why not (it
/// is not in the packaged crate).
fn vendored_qmp() -> Option<String> {
    let path = common::repository_file("schemas/qmp/qapi-schema.json")?;
    Some(path.to_str().expect("a UTF-8 path").to_owned())
}

#[test]
fn introspect_prints_a_query_qmp_schema_document() {
    let Some(vendored_qmp) = vendored_qmp() else {
        return;
    };
    let out = qapi_codegen(&["introspect", &vendored_qmp]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let document: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let entities = document.as_array().unwrap();
    let status = entities
        .iter()
        .find(|e| e["name"] == "query-status")
        .expect("query-status listed");
    assert_eq!(status["meta-type"], "command");
    let ret = status["ret-type"].as_str().unwrap();
    let info = entities.iter().find(|e| e["name"] == ret).unwrap();
    let members: Vec<&str> = info["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert!(
        members.contains(&"running") && members.contains(&"status"),
        "{members:?}"
    );
    // Every type a command or event names is defined in the document.
    let schema = qapi_introspect::Schema::from_json(&document.to_string()).unwrap();
    let comparison = qapi_introspect::Comparison::new(&schema, &schema, "a", "b");
    assert!(comparison.is_identical(), "{comparison}");
    assert!(schema.commands().len() > 200);
}

#[test]
fn a_schema_compared_with_itself_has_no_differences() {
    let Some(vendored_qmp) = vendored_qmp() else {
        return;
    };
    let out = qapi_codegen(&["diff", &vendored_qmp, &vendored_qmp]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("0 changed); 0 only in"), "{text}");
    assert!(!text.contains("differ:"), "{text}");
}

#[test]
fn diff_between_releases_7_2_and_10_2_2() {
    let (Some(old), Some(new)) = (common::qemu_source("7.2"), common::qemu_source("10.2.2")) else {
        return;
    };
    let old_schema = old.join("qapi/qapi-schema.json");
    let new_schema = new.join("qapi/qapi-schema.json");
    let out = qapi_codegen(&[
        "diff",
        old_schema.to_str().unwrap(),
        new_schema.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    // Each side checked with its own release's rules (from VERSION).
    assert!(
        text.starts_with("QEMU 7.2.0 schema → QEMU 10.2.2 schema"),
        "{text}"
    );
    let section = |title: &str| -> Vec<String> {
        let Some(start) = text.find(title) else {
            return Vec::new();
        };
        text[start + title.len()..]
            .lines()
            .skip(1)
            .take_while(|l| l.starts_with("  "))
            .map(|l| l.trim().split(' ').next().unwrap().to_owned())
            .collect()
    };
    let added = section("commands only in QEMU 10.2.2 schema:");
    let removed = section("commands only in QEMU 7.2.0 schema:");
    // Facts from the two releases' schema files.
    for command in [
        "query-stats",
        "query-stats-schemas",
        "blockdev-set-active",
        "query-accelerators",
    ] {
        assert_eq!(
            added.contains(&command.to_owned()),
            has_command(&new, command) && !has_command(&old, command),
            "{command}: {added:?}"
        );
    }
    assert!(!added.is_empty() && !removed.is_empty(), "{text}");
    for command in &removed {
        assert!(
            has_command(&old, command) && !has_command(&new, command),
            "{command}"
        );
    }
    eprintln!(
        "7.2 → 10.2.2: {} commands added, {} removed\n{}",
        added.len(),
        removed.len(),
        text.lines().take(3).collect::<Vec<_>>().join("\n")
    );
}

/// Whether any schema file of the tree defines `{ 'command': 'NAME'`.
fn has_command(tree: &std::path::Path, name: &str) -> bool {
    let needle = format!("'command': '{name}'");
    std::fs::read_dir(tree.join("qapi"))
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .any(|e| std::fs::read_to_string(e.path()).unwrap().contains(&needle))
}

#[test]
fn generate_writes_the_introspection_document_beside_the_code() {
    let Some(vendored_qmp) = vendored_qmp() else {
        return;
    };
    let out = tempfile_dir();
    let status = qapi_codegen(&["generate", "--out", out.to_str().unwrap(), &vendored_qmp]);
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let text = std::fs::read_to_string(out.join("introspection.json")).unwrap();
    let schema = qapi_introspect::Schema::from_json(&text).unwrap();
    assert!(schema.commands().iter().any(|c| c == "query-status"));
    std::fs::remove_dir_all(&out).unwrap();
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("qapi-codegen-introspect-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
