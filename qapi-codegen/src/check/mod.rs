//! Raw expressions to the checked [`Schema`] model.
//!
//! Checking runs in QEMU's order, so the first error reported is the one
//! QEMU reports:
//!
//! 1. `expr` — the shape of every expression (keys, names, conditions,
//!    features, flags) and the pairing of documentation with definitions;
//! 2. `define` — every definition becomes an entity, with the built-in
//!    types and the implicit types QEMU derives (arrays, argument and base
//!    types); names must be unique;
//! 3. `semantic` — each entity in definition order: types resolved, bases,
//!    branches and alternatives validated, clashes found, documentation
//!    connected to members;
//! 4. modules assigned, documentation checked for members that do not
//!    exist, and the feature count limited.

mod define;
pub(crate) mod expr;
mod semantic;

use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::model::Schema;
use crate::parser::ParsedSchema;
use crate::rules::Rules;

/// Checks a parsed schema and builds its model.
pub fn check(parsed: ParsedSchema, rules: Rules) -> Result<Schema, Box<Diagnostics>> {
    let fail = |sources, diag: Diagnostic| {
        Box::new(Diagnostics {
            sources,
            list: vec![diag],
        })
    };
    let items = match expr::check_exprs(&parsed, rules) {
        Ok(items) => items,
        Err(d) => return Err(fail(parsed.sources, d)),
    };
    let mut builder = define::Builder::new(parsed, rules);
    if let Err(d) = builder.define_all(items) {
        return Err(fail(builder.sources, d));
    }
    semantic::check_all(builder)
}
