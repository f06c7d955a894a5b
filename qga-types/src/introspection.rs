//! What these bindings expect on the wire.

/// The introspection document of the guest agent schema these bindings
/// were generated from (in `query-qmp-schema`'s format, which qemu-ga
/// itself does not offer: compare its `guest-info` command list with the
/// commands listed here).  Read it with the `qapi-introspect` crate.
pub const SCHEMA: &str = include_str!("generated/introspection.json");
