//! Rust types for QEMU's machine protocol, QMP, generated from QEMU's QAPI
//! schema.
//!
//! **Status: placeholder.**  The crate is empty until code generation lands
//! (the bindings issue).  It will hold:
//!
//! - **the core traits**, written by hand and shared with `qga-types`:
//!   `Command` (a command's wire name, its serialized arguments and its
//!   deserialized return type) and `Event` (an event's wire name and data);
//! - **the generated QMP types, commands and events**: every struct, enum,
//!   union and alternate, command and event of the vendored QMP schema
//!   (`schemas/qmp/`, QEMU 10.2.2), QAPI type names spelled as QEMU spells
//!   them;
//! - **one module per QAPI schema module** (`block-core.json` →
//!   `block_core`), each behind a cargo feature of the same name that enables
//!   the modules its types use.
//!
//! Items QEMU builds only under an `if` condition are generated all the same,
//! and their docs name the QEMU build configuration that provides them.  The
//! generated files live in `src/generated/` and are written only by
//! `cargo xtask regen`.
