//! Rust types for QEMU's machine protocol, QMP, generated from QEMU's QAPI
//! schema (QEMU 10.2.2, vendored in the repository's `schemas/`).
//!
//! - **The core**, written by hand and shared with `qga-types`: the
//!   [`Command`] and [`Event`] traits, the markers [`QmpCommand`] and
//!   [`QgaCommand`] that keep the two protocols' commands apart, [`Empty`],
//!   [`Timestamp`], [`EventMessage`] and [`UnknownValue`].
//! - **The generated QMP types, commands and events**, one module per QAPI
//!   schema module (`block-core.json` → [`block_core`]), each behind a cargo
//!   feature of the same name (all on by default).  Everything is also
//!   re-exported at the crate root under QEMU's names.
//!
//! # A tour
//!
//! A command's type holds its arguments and implements [`Command`], which
//! names its reply type; an event's type holds its data.  Build a command,
//! encode it as QMP's `arguments`, decode its reply:
//!
//! ```
//! use qapi_types::commands::{BlockCommit, BlockdevAdd, QueryStatus};
//! use qapi_types::{BlockdevOptions, BlockdevOptionsBranch, Command, RunState};
//! use serde_json::json;
//!
//! // Required members in `new`, optional ones by struct update syntax.
//! let commit = BlockCommit { speed: Some(1 << 20), ..BlockCommit::new("drive0") };
//! assert_eq!(serde_json::to_value(&commit)?, json!({"device": "drive0", "speed": 1048576}));
//!
//! // A union from its branch; its base's optional members the same way.
//! let add = BlockdevAdd(BlockdevOptions {
//!     node_name: Some("null0".into()),
//!     ..BlockdevOptionsBranch::NullCo(Default::default()).into()
//! });
//! assert_eq!(serde_json::to_value(&add)?, json!({"driver": "null-co", "node-name": "null0"}));
//! assert_eq!(BlockdevAdd::NAME, "blockdev-add");
//!
//! // A reply, with a run state these bindings do not know (a newer QEMU's).
//! let status: <QueryStatus as Command>::Returns =
//!     serde_json::from_str(r#"{"running": false, "status": "frozen-in-time"}"#)?;
//! assert!(matches!(&status.status, RunState::Unrecognized(v) if v.0 == "frozen-in-time"));
//! # Ok::<(), serde_json::Error>(())
//! ```
//!
//! `qapi-client` sends such commands to QEMU and reads its events.
//!
//! # Building values
//!
//! One idiom for every generated type:
//!
//! - A struct, command or event whose members are **all optional**
//!   implements `Default`: `QueryMachines::default()`, `Eject { id:
//!   Some("cd0".into()), ..Default::default() }`.
//! - One with **required members** has `new(required…)`, taking them in
//!   schema order; the optional ones start as `None`.  Strings, lists and
//!   named types are taken as `impl Into<T>` (so `"drive0"` for a string,
//!   an array for a list, a branch's type for a union, a `&str` for an
//!   alternate with a string alternative such as [`BlockdevRef`]); numbers
//!   and booleans as they are.  A member boxed because its type contains
//!   itself is boxed by `new`.
//! - Optional members are then set with **struct update syntax**:
//!   `BlockCommit { speed: Some(1), ..BlockCommit::new("drive0") }`.
//! - A **union** (a struct with its base's members and a `branch` enum) has
//!   `new(required base members…, branch)`.  When its base has no required
//!   member it also converts `From` its branch enum, and both convert
//!   `From` the type of a branch that no other branch shares
//!   (`BlockdevOptions::from(BlockdevOptionsQcow2::new("file0"))`).
//!   Branches that share a type (`null-aio` and `null-co`) are named
//!   through the branch enum.  Boxing is hidden the same way.
//! - An **alternate** converts `From` each alternative's type.
//! - A command or event whose data is a named type wraps it and converts
//!   `From` it: `BlockdevAdd(options)` or `options.into()`.
//!
//! Why no builders or setters: they would add a function per optional
//! member (thousands in QEMU's schema) to a crate whose build time is
//! measured against its peers (`BENCHMARKS.md`).  `new` and `From` are
//! `#[inline]` or generic, so none of them is compiled unless a program
//! calls it, and struct update syntax costs nothing at all.
//!
//! **Deprecated members** carry `#[deprecated]` with QEMU's own text ("Use
//! `id` instead"); `new`, `Default` and struct update syntax never name
//! them, so code that does not mention one sees no warning.
//!
//! **When QEMU adds members.**  The types are not `#[non_exhaustive]`:
//! that would forbid struct literals and struct update syntax outside this
//! crate and leave only setters.  Each QEMU release the bindings move to
//! is a new semver-breaking version of this crate (a new `0.x` now).  Code
//! that builds values with `new`, `Default` and `..` keeps compiling when
//! a release adds optional members, which is what QEMU adds to existing
//! commands; a literal naming every member, or an exhaustive pattern
//! without `..`, does not.
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
