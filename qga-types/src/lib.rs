//! Rust types for the QEMU guest agent protocol (QGA), generated from
//! QEMU's guest-agent QAPI schema (QEMU 10.2.2, vendored in the
//! repository's `schemas/qga/`).
//!
//! The core traits ([`Command`],
//! `Event`) and shared types come from `qapi-types`
//! (used without its QMP modules).  Each command is a type in [`commands`]
//! holding its arguments and implements [`QgaCommand`], so a guest-agent
//! session takes it and a QMP session does not; the guest agent's types
//! are at the crate root under QEMU's names.  Values are built as in
//! `qapi-types` (its crate docs, "Building values"): `Default` when every
//! member is optional, `new(required…)` otherwise, struct update syntax
//! for the optional members:
//!
//! ```
//! use qga_types::commands::{GuestFileOpen, GuestShutdown};
//!
//! let open = GuestFileOpen { mode: Some("r".into()), ..GuestFileOpen::new("/etc/os-release") };
//! assert_eq!(
//!     serde_json::to_value(&open)?,
//!     serde_json::json!({"path": "/etc/os-release", "mode": "r"})
//! );
//! assert_eq!(serde_json::to_value(GuestShutdown::default())?, serde_json::json!({}));
//! # Ok::<(), serde_json::Error>(())
//! ```
//!
//! The generated files live in `src/generated/` and are written only by
//! `cargo xtask regen`.  They carry documentation text from QEMU's schema,
//! which is GPL-2.0-or-later; see the README.

// Written by `cargo xtask regen` with prettyplease; rustfmt would reflow it.
#[rustfmt::skip]
mod generated;
pub mod introspection;

pub use generated::*;
pub use qapi_types::{Command, Empty, QgaCommand, UnknownValue};
