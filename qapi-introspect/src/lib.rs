//! QEMU's QAPI introspection as data, and a structural comparison of two
//! schemas.
//!
//! `query-qmp-schema` describes what a running QEMU accepts and returns.
//! [`Schema::check_arguments`] (and `check_return`, `check_event`) say
//! where a value does not fit it, by JSON path.
//! [`Schema::from_json`] reads that document (or one `qapi-codegen`
//! writes for a schema tree), and [`Comparison::new`] walks two of them
//! from their commands and events down through every type: commands and
//! events only one side has, members removed or added, optional-ness,
//! enum values, union branches, alternatives, type changes, and
//! `deprecated`/`unstable` features.  `qapi-client` uses it to say what a
//! live QEMU supports compared with the bindings; `qapi-codegen diff` to
//! say what changed between two releases.
//!
//! ```
//! use qapi_introspect::{Comparison, Presence, Schema};
//!
//! let old = Schema::from_json(r#"[
//!   {"name": "query-status", "meta-type": "command", "arg-type": "0", "ret-type": "1"},
//!   {"name": "0", "meta-type": "object", "members": []},
//!   {"name": "1", "meta-type": "object", "members": [{"name": "running", "type": "bool"}]},
//!   {"name": "bool", "meta-type": "builtin", "json-type": "boolean"}
//! ]"#)?;
//! let new = Schema::from_json(r#"[
//!   {"name": "query-status", "meta-type": "command", "arg-type": "7", "ret-type": "8"},
//!   {"name": "quit", "meta-type": "command", "arg-type": "7", "ret-type": "7"},
//!   {"name": "7", "meta-type": "object", "members": []},
//!   {"name": "8", "meta-type": "object", "members": [
//!     {"name": "running", "type": "bool"}, {"name": "status", "type": "str", "default": null}]},
//!   {"name": "bool", "meta-type": "builtin", "json-type": "boolean"},
//!   {"name": "str", "meta-type": "builtin", "json-type": "string"}
//! ]"#)?;
//! let comparison = Comparison::new(&old, &new, "old", "new");
//! assert_eq!(comparison.commands_with(Presence::RightOnly).collect::<Vec<_>>(), ["quit"]);
//! let changes = &comparison.command("query-status").unwrap().changes;
//! assert_eq!(changes[0].path, "return.status");
//! println!("{comparison}");
//! # Ok::<(), qapi_introspect::Error>(())
//! ```

mod compare;
mod schema;
mod validate;

pub use compare::{Change, ChangeKind, Comparison, Item, Named, Presence};
pub use schema::{Alternative, Entity, EnumMember, Error, Member, Meta, Schema, Variant};
pub use validate::Problem;
