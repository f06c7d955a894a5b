//! The QAPI schema front end and Rust code generator behind `qapi-types` and
//! `qga-types`.
//!
//! QAPI is the schema language QEMU describes its machine protocol (QMP) and
//! its guest agent (QGA) in.  This crate reads schema files, checks them with
//! the same rules as QEMU's own `scripts/qapi`, and produces a checked
//! [`Schema`] model that code generation consumes.
//!
//! The pipeline runs in visible stages, each consuming the previous stage's
//! output:
//!
//! 1. [`lexer`] — schema text to tokens with locations;
//! 2. [`parser`] — tokens to located values, following `include` and
//!    recording `pragma` directives; `##` blocks go to [`doc`];
//! 3. [`check`] — the raw expressions to the checked [`model`], with all of
//!    QEMU's syntax and semantic checks;
//! 4. [`dump`] — the model as stable text.
//!
//! ```no_run
//! use qapi_codegen::{Config, Rules};
//!
//! let schema = Config::new()
//!     .rules(Rules::V10_2)
//!     .load("schemas/qmp/qapi-schema.json")?;
//! println!("{} commands", schema.commands().count());
//! # Ok::<(), qapi_codegen::Error>(())
//! ```

pub mod check;
pub mod diagnostic;
pub mod doc;
pub mod dump;
pub mod emit;
pub mod introspect;
pub mod lexer;
pub mod model;
pub mod naming;
pub mod parser;
pub mod rules;
pub mod since;
pub mod source;

use std::path::{Path, PathBuf};

pub use diagnostic::{Diagnostic, Diagnostics};
pub use model::Schema;
pub use rules::Rules;

/// Why a schema could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The root schema file could not be read.  (Unreadable *included* files
    /// are reported as diagnostics at the `include` directive.)
    #[error("can't read schema file '{}': {}", path.display(), io_message(source))]
    Read {
        /// The file that could not be read.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The schema is invalid.
    #[error("{0}")]
    Invalid(Box<Diagnostics>),
}

/// The operating system's message for an I/O error, without Rust's
/// "(os error N)" suffix, as QEMU prints `strerror`.
pub(crate) fn io_message(err: &std::io::Error) -> String {
    let text = err.to_string();
    match text.find(" (os error") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

/// How to load a schema.
#[derive(Debug, Clone, Default)]
pub struct Config {
    rules: Rules,
    strip_prefix: Option<PathBuf>,
}

impl Config {
    /// The default configuration: the newest release's rules.
    pub fn new() -> Self {
        Self::default()
    }

    /// Checks with the language and documentation rules of `rules`' QEMU
    /// release.
    pub fn rules(mut self, rules: Rules) -> Self {
        self.rules = rules;
        self
    }

    /// Shows file names in diagnostics relative to `dir`.
    pub fn display_relative_to(mut self, dir: impl Into<PathBuf>) -> Self {
        self.strip_prefix = Some(dir.into());
        self
    }

    /// The rules in force.
    pub fn rules_in_force(&self) -> Rules {
        self.rules
    }

    /// Reads, parses and checks the schema whose root file is `path`.
    pub fn load(&self, path: impl AsRef<Path>) -> Result<Schema, Error> {
        let result = parser::parse_schema(path.as_ref(), self.rules)
            .and_then(|parsed| check::check(parsed, self.rules).map_err(Error::Invalid));
        result.map_err(|mut err| {
            if let (Error::Invalid(diags), Some(dir)) = (&mut err, &self.strip_prefix) {
                diags.sources.strip_display_prefix(dir);
            }
            err
        })
    }
}

/// Loads and checks the schema at `path` with the newest rules.
pub fn load(path: impl AsRef<Path>) -> Result<Schema, Error> {
    Config::new().load(path)
}
