//! Rust types for QEMU's machine protocol, QMP, generated from QEMU's QAPI
//! schema (QEMU 10.2.2, vendored in the repository's `schemas/`).
//!
//! - **The core**, written by hand and shared with `qga-types`: the
//!   [`Command`] and [`Event`] traits, [`Empty`], [`Timestamp`],
//!   [`EventMessage`] and [`UnknownValue`].
//! - **The generated QMP types, commands and events**, one module per QAPI
//!   schema module (`block-core.json` → [`block_core`]), each behind a cargo
//!   feature of the same name (all on by default).  Everything is also
//!   re-exported at the crate root under QEMU's names.
//!
//! A command's type holds its arguments and implements [`Command`], which
//! names its reply type:
//!
//! ```
//! use qapi_types::{commands::QueryStatus, Command};
//!
//! let request = serde_json::json!({ "execute": QueryStatus::NAME, "arguments": QueryStatus {} });
//! let status: <QueryStatus as Command>::Returns =
//!     serde_json::from_str(r#"{"running": true, "status": "running"}"#).unwrap();
//! assert!(status.running);
//! # let _ = request;
//! ```
//!
//! Replies from a newer QEMU decode: unknown enum values, union branches
//! and events are kept (`Unrecognized`), and unknown members are ignored.
//!
//! Items QEMU builds only under a condition are generated all the same;
//! their docs say which. The generated files live in `src/generated/` and
//! are written only by `cargo xtask regen`.
//!
//! Licensing: the generated code carries documentation text from QEMU's
//! schema files, which are GPL-2.0-or-later; see the README.

#![cfg_attr(docsrs, feature(doc_cfg))]

// Generated code names the core `::qapi_types`, here as in `qga-types`.
extern crate self as qapi_types;

// Written by `cargo xtask regen` with prettyplease; rustfmt would reflow it.
#[rustfmt::skip]
mod generated;
pub mod introspection;
mod qapi_core;
pub mod transcript;

pub use generated::*;
pub use qapi_core::*;
