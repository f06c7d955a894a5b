//! The crate against the vendored schemas it was generated from.
//!
//! `schemas/` is in the repository, not in the published package: from an
//! unpacked `.crate` these tests skip (see `common`).

mod common;

#[test]
fn version_matches_the_vendored_schemas() {
    let Some(path) = common::repository_file("schemas/PROVENANCE.md") else {
        return;
    };
    let provenance = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("can't read {}: {e}", path.display()));
    let line = format!(
        "| QEMU version | {} |",
        qapi_types::introspection::QEMU_VERSION
    );
    assert!(
        provenance.contains(&line),
        "schemas/PROVENANCE.md does not say {line}: update QEMU_VERSION"
    );
}
