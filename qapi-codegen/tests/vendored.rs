//! The schemas vendored in `schemas/` load with the default rules, and the
//! documentation model holds what the files say.

use std::path::{Path, PathBuf};

use qapi_codegen::Config;

fn schemas() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas")
}

#[test]
fn vendored_schemas_check() {
    for root in ["qmp/qapi-schema.json", "qga/qapi-schema.json"] {
        let schema = Config::new()
            .load(schemas().join(root))
            .unwrap_or_else(|e| panic!("{root}: {e}"));
        assert!(schema.commands().count() > 40, "{root}");
    }
}

#[test]
fn every_qmp_example_directive_becomes_an_example() {
    let schema = Config::new()
        .load(schemas().join("qmp/qapi-schema.json"))
        .expect("the vendored schema is valid");
    let examples: Vec<_> = schema.docs.iter().flat_map(|d| d.examples()).collect();
    let mut directives = 0;
    for entry in std::fs::read_dir(schemas().join("qmp")).expect("schemas/qmp") {
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
