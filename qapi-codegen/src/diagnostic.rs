//! Diagnostics: what went wrong, and where.
//!
//! A [`Diagnostic`] renders the way QEMU's front end prints its errors, so a
//! message can be compared with QEMU's line for line:
//!
//! ```text
//! In file included from main.json:3:
//! sub.json: In struct 'Foo':
//! sub.json:7:5: 'base' requires a struct type, enum type 'Bar' isn't
//! ```

use std::fmt;

use crate::source::{Location, SourceMap};

/// The definition a diagnostic is about, printed as QEMU's context line
/// (`file.json: In struct 'Foo':`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefinitionContext {
    /// The definition's kind: `enum`, `struct`, `union`, `alternate`,
    /// `command` or `event`.
    pub meta: String,
    /// The definition's name.
    pub name: String,
}

/// A secondary location attached to a diagnostic, such as the earlier
/// definition in a clash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// What the note says.
    pub message: String,
    /// Where it points.
    pub location: Location,
    /// The definition at that location, if any.
    pub context: Option<DefinitionContext>,
}

/// One error in a schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The message, worded as QEMU words it.  May span several lines (QEMU
    /// appends hints such as the list of valid keys).
    pub message: String,
    /// Where the error is.  For errors QEMU reports against a whole
    /// definition this is the start of the definition.
    pub location: Location,
    /// The definition being checked, if any.
    pub context: Option<DefinitionContext>,
    /// Further locations that explain the error.
    pub notes: Vec<Note>,
}

impl Diagnostic {
    /// A diagnostic with no context and no notes.
    pub fn new(location: Location, message: impl Into<String>) -> Self {
        Diagnostic {
            message: message.into(),
            location,
            context: None,
            notes: Vec::new(),
        }
    }

    /// Sets the definition the error was found in.
    pub fn in_definition(mut self, meta: &str, name: &str) -> Self {
        self.context = Some(DefinitionContext {
            meta: meta.to_owned(),
            name: name.to_owned(),
        });
        self
    }

    /// Adds a note pointing at a second location.
    pub fn with_note(mut self, location: Location, message: impl Into<String>) -> Self {
        self.notes.push(Note {
            message: message.into(),
            location,
            context: None,
        });
        self
    }

    /// Adds a note pointing at a second location, inside definition
    /// `name` of kind `meta`.
    pub fn with_note_in(
        mut self,
        location: Location,
        message: impl Into<String>,
        meta: &str,
        name: &str,
    ) -> Self {
        self.notes.push(Note {
            message: message.into(),
            location,
            context: Some(DefinitionContext {
                meta: meta.to_owned(),
                name: name.to_owned(),
            }),
        });
        self
    }

    /// Renders the diagnostic as QEMU would print it, with file names taken
    /// from `sources`.
    pub fn render(&self, sources: &SourceMap) -> String {
        let mut out = String::new();
        include_chain(sources, self.location, &mut out);
        let file = sources.display(self.location.file);
        if let Some(ctx) = &self.context {
            out.push_str(&format!("{file}: In {} '{}':\n", ctx.meta, ctx.name));
        }
        out.push_str(&format!(
            "{file}:{}:{}: {}",
            self.location.line, self.location.col, self.message
        ));
        for note in &self.notes {
            out.push('\n');
            include_chain(sources, note.location, &mut out);
            let file = sources.display(note.location.file);
            if let Some(ctx) = &note.context {
                out.push_str(&format!("{file}: In {} '{}':\n", ctx.meta, ctx.name));
            }
            out.push_str(&format!(
                "{file}:{}:{}: {}",
                note.location.line, note.location.col, note.message
            ));
        }
        out
    }
}

fn include_chain(sources: &SourceMap, location: Location, out: &mut String) {
    let mut chain = Vec::new();
    let mut parent = sources.file(location.file).included_from;
    while let Some(loc) = parent {
        chain.push(loc);
        parent = sources.file(loc.file).included_from;
    }
    for loc in chain.iter().rev() {
        out.push_str(&format!(
            "In file included from {}:{}:\n",
            sources.display(loc.file),
            loc.line
        ));
    }
}

/// The errors found in a schema, with the files they refer to.
///
/// The first diagnostic is the one QEMU's own front end reports.
#[derive(Debug, Clone)]
pub struct Diagnostics {
    /// The files that were read.
    pub sources: SourceMap,
    /// The errors, the one QEMU would report first.
    pub list: Vec<Diagnostic>,
}

impl Diagnostics {
    /// The first (QEMU's) diagnostic.
    pub fn first(&self) -> Option<&Diagnostic> {
        self.list.first()
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.list.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            f.write_str(&d.render(&self.sources))?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}
