//! What these bindings expect on the wire, for comparison with what a
//! running QEMU offers.

/// The introspection document of the schema these bindings were generated
/// from: what `query-qmp-schema` would return from a QEMU built from it
/// with every optional part enabled.  Type names are the schema's own (a
/// live QEMU numbers them), and conditional entities, members, enum values
/// and branches carry an `if` string.  Read it with the `qapi-introspect`
/// crate; `qapi-client`'s schema report compares it with a live QEMU.
pub const SCHEMA: &str = include_str!("generated/introspection.json");

/// The QEMU release whose schema these bindings were generated from.
pub const QEMU_VERSION: &str = "10.2.2";

// `QEMU_VERSION` is compared with schemas/PROVENANCE.md in tests/vendored.rs
// (schemas/ is not in the published package).
#[cfg(test)]
mod tests {
    #[test]
    fn the_document_reads_as_introspection_json() {
        let document: serde_json::Value = serde_json::from_str(super::SCHEMA).unwrap();
        let entities = document.as_array().unwrap();
        assert!(entities
            .iter()
            .any(|e| e["name"] == "query-status" && e["meta-type"] == "command"));
    }
}
