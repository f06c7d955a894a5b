//! Snapshot tests of the emitter: one small schema per construct in
//! `tests/snapshots/NAME.json`, its generated Rust beside it in `NAME.rs`,
//! so a reviewer reads generated code in a diff.  Set
//! `UPDATE_SNAPSHOTS=1` to rewrite the `.rs` files after an intended
//! change.

use std::path::Path;

use qapi_codegen::{emit, Config};

fn check(name: &str) {
    check_with(name, None);
}

fn check_with(name: &str, baseline: Option<qapi_codegen::since::Release>) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots");
    let schema = Config::new()
        .load(dir.join(format!("{name}.json")))
        .unwrap_or_else(|e| panic!("{name}.json: {e}"));
    let generated = emit::generate(
        &schema,
        &emit::Options {
            schema_name: format!("{name}.json"),
            baseline,
            ..emit::Options::default()
        },
    )
    .expect("generation succeeds");
    let text = generated.to_string();
    let snapshot = dir.join(format!("{name}.rs"));
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&snapshot, &text).expect("write the snapshot");
        return;
    }
    let expected = std::fs::read_to_string(&snapshot).unwrap_or_default();
    assert!(
        text == expected,
        "{} differs from the generated code (UPDATE_SNAPSHOTS=1 rewrites it):\n{text}",
        snapshot.display()
    );
}

#[test]
fn enum_snapshot() {
    check("enum");
}

#[test]
fn struct_with_base_optional_keyword_and_recursive_members_snapshot() {
    check("struct");
}

#[test]
fn flat_union_snapshot() {
    check("union");
}

#[test]
fn alternate_snapshot() {
    check("alternate");
}

#[test]
fn commands_snapshot() {
    check("command");
}

#[test]
fn events_snapshot() {
    check("event");
}

#[test]
fn reply_members_newer_than_the_baseline_snapshot() {
    check_with("baseline", Some((7, 2)));
}
