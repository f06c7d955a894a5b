//! Rust types for the QEMU guest agent (QGA) protocol, generated from the
//! guest agent's QAPI schema.
//!
//! **Status: placeholder.**  The crate is empty until code generation lands
//! (the bindings issue).  It will hold the generated guest agent types and
//! commands of the vendored schema (`schemas/qga/qapi-schema.json`, QEMU
//! 10.2.2), such as `guest-ping`, `guest-exec` and `guest-get-osinfo`.
//!
//! It has no core of its own: the `Command` trait and the shared types come
//! from `qapi-types`, so one client speaks both QMP and the guest agent
//! protocol.  The generated files live in `src/generated/` and are written
//! only by `cargo xtask regen`.
