//! The hand-written core shared by all generated bindings (QMP here, the
//! guest agent in `qga-types`): what a command and an event are, and the
//! few types every protocol message uses.
//!
//! - `traits`: [`Command`], [`QmpCommand`], [`QgaCommand`], [`Event`];
//! - `types`: [`Empty`], [`Timestamp`], [`EventMessage`], [`UnknownValue`];
//! - `codec`: [`CommandCodec`], [`EventCodec`], type-erased decoding by name;
//! - `private`: the serde helpers the generated code calls (hidden, not a
//!   stable API), and `macros`, the `object!` and `enumeration!` macros
//!   every generated type is written with.

mod codec;
mod macros;
pub mod private;
#[cfg(test)]
mod tests;
mod traits;
mod types;

pub use codec::{decode_with_path, CommandCodec, EventCodec};
pub use traits::{Command, Event, QgaCommand, QmpCommand};
pub use types::{Empty, EventMessage, Timestamp, UnknownValue};
