//! The schemas vendored in `schemas/` load with the default rules, and the
//! documentation model holds what the files say.
//!
//! `schemas/` is in the repository, not in the published package: from an
//! unpacked `.crate` these tests skip, saying so (see `common`).

mod common;

use qapi_codegen::model::EntityKind;
use qapi_codegen::Config;

#[test]
fn vendored_schemas_check() {
    for root in [
        "schemas/qmp/qapi-schema.json",
        "schemas/qga/qapi-schema.json",
    ] {
        let Some(file) = common::repository_file(root) else {
            return;
        };
        let schema = Config::new()
            .load(file)
            .unwrap_or_else(|e| panic!("{root}: {e}"));
        assert!(schema.commands().count() > 40, "{root}");
    }
}

#[test]
fn every_qmp_example_directive_becomes_an_example() {
    let Some(root) = common::repository_file("schemas/qmp/qapi-schema.json") else {
        return;
    };
    let schema = Config::new()
        .load(&root)
        .expect("the vendored schema is valid");
    let examples: Vec<_> = schema.docs.iter().flat_map(|d| d.examples()).collect();
    let mut directives = 0;
    let dir = root.parent().expect("schemas/qmp");
    for entry in std::fs::read_dir(dir).expect("schemas/qmp") {
        let text = std::fs::read_to_string(entry.expect("entry").path()).expect("readable");
        directives += text.matches(".. qmp-example::").count();
    }
    assert!(directives > 100);
    assert_eq!(examples.len(), directives);
    for example in examples.iter().filter(|e| !e.annotated) {
        assert!(
            example.text.starts_with("->") || example.text.starts_with("<-"),
            "a transcript starts with a message: {:?}",
            example.text
        );
    }
}

/// Reply members the vendored schema requires but documents as newer than
/// QEMU 7.2 (`since::late_reply_members`, which the generator makes
/// optional): the known ones are found, and only required members are.
#[test]
fn late_members_of_the_vendored_schema_include_the_known_ones() {
    let Some(root) = common::repository_file("schemas/qmp/qapi-schema.json") else {
        return;
    };
    let schema = Config::new().load(root).unwrap();
    let late = qapi_codegen::since::late_reply_members(&schema, (7, 2));
    let find = |ty: &str, member: &str| {
        let id = schema.lookup_id(ty).unwrap();
        late.get(&(id, member.to_owned())).copied()
    };
    // query-block's children, query-cpus-fast's qom-type (in a base).
    assert_eq!(find("BlockDeviceInfo", "children"), Some((10, 1)));
    assert_eq!(find("q_obj_CpuInfoFast-base", "qom-type"), Some((10, 1)));
    assert_eq!(find("MachineInfo", "acpi"), Some((8, 0)));
    // Old members and optional ones are not late.
    assert_eq!(find("BlockDeviceInfo", "file"), None);
    assert!(late.keys().all(|(id, member)| {
        let EntityKind::Object { local_members, .. } = &schema.entity(*id).kind else {
            return false;
        };
        local_members
            .iter()
            .any(|m| &m.name == member && !m.optional)
    }));
    // Nothing is late against the newest release.
    assert!(qapi_codegen::since::late_reply_members(&schema, (10, 2)).is_empty());
}
