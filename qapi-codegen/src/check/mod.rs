//! Placeholder.
use crate::{parser::ParsedSchema, Diagnostics, Rules, Schema};
/// Check.
pub fn check(_p: ParsedSchema, _rules: Rules) -> Result<Schema, Box<Diagnostics>> {
    unimplemented!()
}
