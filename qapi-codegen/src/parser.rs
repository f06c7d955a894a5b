//! Tokens to located values; `include` and `pragma` directives.
//!
//! The parser reads the root schema file and every file it includes, and
//! returns the top-level expressions in source order (an included file's
//! expressions follow its `include` directive), the documentation blocks,
//! and the pragmas.  It checks only syntax; what the expressions mean is
//! checked by [`crate::check`].  Parsing stops at the first error, as QEMU's
//! does.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::doc::{self, DocBlock};
use crate::lexer::{Lexer, Token};
use crate::rules::Rules;
use crate::source::{absolute, FileId, Location, SourceMap};
use crate::Error;

/// Nesting deeper than this is rejected rather than risking the stack.
/// (QEMU's own schemas nest at most five levels.)
pub const MAX_NESTING: usize = 64;

/// Include chains longer than this are rejected: each level is a recursion.
/// (QEMU's own schemas include two levels deep.)
pub const MAX_INCLUDE_DEPTH: usize = 32;

/// A value with the location where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The value.
    pub value: Value,
    /// Where it starts.
    pub loc: Location,
}

/// A value of the schema's JSON dialect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A string.
    Str(String),
    /// `true` or `false`.
    Bool(bool),
    /// An array.
    Array(Vec<Node>),
    /// An object, keys in source order (duplicates are a parse error).
    Object(Object),
}

/// An object's members in source order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Object {
    /// The members: key, where the key is, and the value.
    pub members: Vec<(String, Location, Node)>,
}

impl Object {
    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.members
            .iter()
            .find(|(k, _, _)| k == key)
            .map(|(_, _, v)| v)
    }

    /// Whether `key` is present.
    pub fn contains(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// The number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether the object has no members.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The keys in source order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.members.iter().map(|(k, _, _)| k.as_str())
    }

    /// The members as (key, value) pairs.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Node)> {
        self.members.iter().map(|(k, _, v)| (k.as_str(), v))
    }
}

impl Value {
    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The object, if this is one.
    pub fn as_object(&self) -> Option<&Object> {
        match self {
            Value::Object(o) => Some(o),
            _ => None,
        }
    }
}

/// What a top-level expression is.
#[derive(Debug, Clone)]
pub enum ExprKind {
    /// An `include` directive, with the path of the included file as QEMU
    /// forms it (the including file's directory joined with the value).
    Include(PathBuf),
    /// A definition: an object with one of the meta keys.
    Definition(Object),
}

/// A top-level expression.
#[derive(Debug, Clone)]
pub struct Expr {
    /// What it is.
    pub kind: ExprKind,
    /// Where it starts.
    pub loc: Location,
    /// The documentation block just before it, if any.
    pub doc: Option<usize>,
}

/// The `pragma` directives in force.  QEMU keeps one set for the whole
/// schema; a later pragma replaces an earlier one of the same name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pragmas {
    /// `doc-required`: every definition needs a documentation comment.
    pub doc_required: bool,
    /// Commands whose names may use `_`.
    pub command_name_exceptions: Vec<String>,
    /// Commands that may return a non-object.
    pub command_returns_exceptions: Vec<String>,
    /// Definitions whose members may lack documentation.
    pub documentation_exceptions: Vec<String>,
    /// Types whose member names may break the case rules.
    pub member_name_exceptions: Vec<String>,
}

/// The result of parsing a schema and all the files it includes.
#[derive(Debug, Clone)]
pub struct ParsedSchema {
    /// The files read.
    pub sources: SourceMap,
    /// The root file.
    pub root: FileId,
    /// Top-level expressions in source order, includes flattened.
    pub exprs: Vec<Expr>,
    /// Documentation blocks in source order.
    pub docs: Vec<DocBlock>,
    /// The pragmas.
    pub pragmas: Pragmas,
}

/// Parses the schema whose root file is `path`.
pub fn parse_schema(path: &Path, rules: Rules) -> Result<ParsedSchema, Error> {
    let text = std::fs::read(path).map_err(|source| Error::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_bytes(path, &text, rules).map_err(Error::Invalid)
}

/// Parses schema text held in memory (its `include` directives are resolved
/// against `path`'s directory on disk).
pub fn parse_text(path: &Path, text: &str, rules: Rules) -> Result<ParsedSchema, Box<Diagnostics>> {
    parse_bytes(path, text.as_bytes(), rules)
}

fn parse_bytes(path: &Path, bytes: &[u8], rules: Rules) -> Result<ParsedSchema, Box<Diagnostics>> {
    let mut state = State {
        sources: SourceMap::new(),
        exprs: Vec::new(),
        docs: Vec::new(),
        pragmas: Pragmas::default(),
        included: HashSet::new(),
        rules,
    };
    let root = state.sources.add(path.to_owned(), None);
    match state.parse_file(root, bytes) {
        Ok(()) => Ok(ParsedSchema {
            sources: state.sources,
            root,
            exprs: state.exprs,
            docs: state.docs,
            pragmas: state.pragmas,
        }),
        Err(diag) => Err(Box::new(Diagnostics {
            sources: state.sources,
            list: vec![diag],
        })),
    }
}

struct State {
    sources: SourceMap,
    exprs: Vec<Expr>,
    docs: Vec<DocBlock>,
    pragmas: Pragmas,
    /// Absolute paths of every file read so far: each is read once.
    included: HashSet<PathBuf>,
    rules: Rules,
}

impl State {
    fn parse_file(&mut self, file: FileId, bytes: &[u8]) -> Result<(), Diagnostic> {
        self.included.insert(absolute(self.sources.path(file)));
        let text = match std::str::from_utf8(bytes) {
            Ok(t) => t,
            Err(e) => {
                let valid = &bytes[..e.valid_up_to()];
                let line = 1 + valid.iter().filter(|&&b| b == b'\n').count() as u32;
                let line_start = valid.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
                let col = 1 + String::from_utf8_lossy(&valid[line_start..])
                    .chars()
                    .count() as u32;
                return Err(Diagnostic::new(
                    Location { file, line, col },
                    "file is not valid UTF-8",
                ));
            }
        };
        let mut lexer = Lexer::new(text, file);
        lexer.advance(false)?;
        // The documentation block read last, not yet attached.
        let mut pending_doc: Option<usize> = None;
        while *lexer.token() != Token::Eof {
            let loc = lexer.location();
            if let Token::Comment(_) = lexer.token() {
                self.reject_expr_doc(pending_doc)?;
                let blocks = doc::parse_blocks(&mut lexer, self.rules)?;
                self.docs.extend(blocks);
                pending_doc = Some(self.docs.len() - 1);
                continue;
            }
            let node = parse_value(&mut lexer, 0)?;
            let Value::Object(object) = node.value else {
                return Err(Diagnostic::new(
                    loc,
                    "top-level expression must be an object",
                ));
            };
            if let Some(include) = object.get("include") {
                self.reject_expr_doc(pending_doc)?;
                if object.len() != 1 {
                    return Err(Diagnostic::new(loc, "invalid 'include' directive"));
                }
                let Value::Str(name) = &include.value else {
                    return Err(Diagnostic::new(loc, "value of 'include' must be a string"));
                };
                let dir = self.sources.path(file).parent().unwrap_or(Path::new(""));
                let incl_path = dir.join(name);
                self.exprs.push(Expr {
                    kind: ExprKind::Include(incl_path.clone()),
                    loc,
                    doc: None,
                });
                self.include(name, &incl_path, loc)?;
            } else if let Some(pragma) = object.get("pragma") {
                self.reject_expr_doc(pending_doc)?;
                if object.len() != 1 {
                    return Err(Diagnostic::new(loc, "invalid 'pragma' directive"));
                }
                let Value::Object(pragmas) = &pragma.value else {
                    return Err(Diagnostic::new(loc, "value of 'pragma' must be an object"));
                };
                for (name, value) in pragmas.iter() {
                    self.pragma(name, value, loc)?;
                }
            } else {
                if let Some(i) = pending_doc {
                    if self.docs[i].symbol.is_none() {
                        return Err(Diagnostic::new(
                            self.docs[i].loc,
                            "definition documentation required",
                        ));
                    }
                }
                self.exprs.push(Expr {
                    kind: ExprKind::Definition(object),
                    loc,
                    doc: pending_doc,
                });
            }
            pending_doc = None;
        }
        self.reject_expr_doc(pending_doc)
    }

    fn reject_expr_doc(&self, doc: Option<usize>) -> Result<(), Diagnostic> {
        if let Some(i) = doc {
            if let Some(symbol) = &self.docs[i].symbol {
                return Err(Diagnostic::new(
                    self.docs[i].loc,
                    format!("documentation for '{symbol}' is not followed by the definition"),
                ));
            }
        }
        Ok(())
    }

    fn include(&mut self, name: &str, path: &Path, loc: Location) -> Result<(), Diagnostic> {
        let abs = absolute(path);
        // An include cycle: the file is one of those that include us.
        let mut at = Some(loc);
        let mut depth = 0;
        while let Some(l) = at {
            if absolute(self.sources.path(l.file)) == abs {
                return Err(Diagnostic::new(loc, format!("inclusion loop for {name}")));
            }
            at = self.sources.file(l.file).included_from;
            depth += 1;
        }
        if depth > MAX_INCLUDE_DEPTH {
            return Err(Diagnostic::new(
                loc,
                format!("includes nest deeper than {MAX_INCLUDE_DEPTH} levels"),
            ));
        }
        if self.included.contains(&abs) {
            return Ok(());
        }
        let bytes = std::fs::read(path).map_err(|e| {
            Diagnostic::new(
                loc,
                format!(
                    "can't read include file '{}': {}",
                    path.display(),
                    crate::io_message(&e)
                ),
            )
        })?;
        let id = self.sources.add(path.to_owned(), Some(loc));
        self.parse_file(id, &bytes)
    }

    fn pragma(&mut self, name: &str, value: &Node, loc: Location) -> Result<(), Diagnostic> {
        let list = |value: &Node| -> Result<Vec<String>, Diagnostic> {
            let err = || Diagnostic::new(loc, format!("pragma {name} must be a list of strings"));
            let Value::Array(items) = &value.value else {
                return Err(err());
            };
            items
                .iter()
                .map(|n| n.value.as_str().map(str::to_owned).ok_or_else(err))
                .collect()
        };
        let p = &mut self.pragmas;
        let rules = self.rules;
        match name {
            "doc-required" => match value.value {
                Value::Bool(b) => p.doc_required = b,
                _ => {
                    return Err(Diagnostic::new(
                        loc,
                        "pragma 'doc-required' must be boolean",
                    ));
                }
            },
            // 5.2's names for what became the exception lists in 6.0; its
            // name-case-whitelist lifted the upper-case ban on members of
            // the listed types.
            "returns-whitelist" if rules < Rules::V7_2 => {
                p.command_returns_exceptions = list(value)?
            }
            "name-case-whitelist" if rules < Rules::V7_2 => p.member_name_exceptions = list(value)?,
            "command-name-exceptions" if rules >= Rules::V7_2 => {
                p.command_name_exceptions = list(value)?
            }
            "command-returns-exceptions" if rules >= Rules::V7_2 => {
                p.command_returns_exceptions = list(value)?
            }
            "member-name-exceptions" if rules >= Rules::V7_2 => {
                p.member_name_exceptions = list(value)?
            }
            "documentation-exceptions" if rules >= Rules::V10_0 => {
                p.documentation_exceptions = list(value)?
            }
            _ => return Err(Diagnostic::new(loc, format!("unknown pragma '{name}'"))),
        }
        Ok(())
    }
}

/// Parses one value starting at the current token, leaving the lexer on the
/// token after it.
fn parse_value(lexer: &mut Lexer<'_>, depth: usize) -> Result<Node, Diagnostic> {
    let loc = lexer.location();
    if depth > MAX_NESTING {
        return Err(lexer.error(format!("nesting deeper than {MAX_NESTING} levels")));
    }
    let value = match lexer.token() {
        Token::LBrace => {
            lexer.advance(false)?;
            Value::Object(parse_members(lexer, depth)?)
        }
        Token::LBracket => {
            lexer.advance(false)?;
            Value::Array(parse_elements(lexer, depth)?)
        }
        Token::Str(_) => {
            let v = Value::Str(lexer.take_string());
            lexer.advance(false)?;
            v
        }
        Token::Bool(b) => {
            let v = Value::Bool(*b);
            lexer.advance(false)?;
            v
        }
        _ => return Err(lexer.error("expected '{', '[', string, or boolean")),
    };
    Ok(Node { value, loc })
}

fn parse_members(lexer: &mut Lexer<'_>, depth: usize) -> Result<Object, Diagnostic> {
    let mut object = Object::default();
    if *lexer.token() == Token::RBrace {
        lexer.advance(false)?;
        return Ok(object);
    }
    if !matches!(lexer.token(), Token::Str(_)) {
        return Err(lexer.error("expected string or '}'"));
    }
    loop {
        let key = lexer.take_string();
        let key_loc = lexer.location();
        lexer.advance(false)?;
        if *lexer.token() != Token::Colon {
            return Err(lexer.error("expected ':'"));
        }
        lexer.advance(false)?;
        if object.contains(&key) {
            return Err(lexer.error(format!("duplicate key '{key}'")));
        }
        let value = parse_value(lexer, depth + 1)?;
        object.members.push((key, key_loc, value));
        match lexer.token() {
            Token::RBrace => {
                lexer.advance(false)?;
                return Ok(object);
            }
            Token::Comma => {}
            _ => return Err(lexer.error("expected ',' or '}'")),
        }
        lexer.advance(false)?;
        if !matches!(lexer.token(), Token::Str(_)) {
            return Err(lexer.error("expected string"));
        }
    }
}

fn parse_elements(lexer: &mut Lexer<'_>, depth: usize) -> Result<Vec<Node>, Diagnostic> {
    let mut items = Vec::new();
    if *lexer.token() == Token::RBracket {
        lexer.advance(false)?;
        return Ok(items);
    }
    if !matches!(
        lexer.token(),
        Token::LBrace | Token::LBracket | Token::Str(_) | Token::Bool(_)
    ) {
        return Err(lexer.error("expected '{', '[', ']', string, or boolean"));
    }
    loop {
        items.push(parse_value(lexer, depth + 1)?);
        match lexer.token() {
            Token::RBracket => {
                lexer.advance(false)?;
                return Ok(items);
            }
            Token::Comma => {}
            _ => return Err(lexer.error("expected ',' or ']'")),
        }
        lexer.advance(false)?;
    }
}
