//! What these bindings expect on the wire, for comparison with what a
//! running QEMU offers.

/// The introspection document of the schema these bindings were generated
/// from: what `query-qmp-schema` would return from a QEMU built from it
/// with every optional part enabled.  Type names are the schema's own (a
/// live QEMU numbers them), and conditional entities, members, enum values
/// and branches carry an `if` string.  Read it with the `qapi-introspect`
/// crate; `qapi-client`'s schema report compares it with a live QEMU.
pub const SCHEMA: &str = include_str!("generated/introspection.json");
