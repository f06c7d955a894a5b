//! Documentation comments: `##` blocks parsed into sections.
//!
//! A block is either *free-form* (text only) or documents a definition: its
//! first line is `@name:`, followed by the body, descriptions of members
//! (`@member: text`), a `Features:` list, and tagged sections (`Returns:`,
//! `Errors:`, `Since:`, `TODO:`), with plain paragraphs between them.  See
//! "Documentation comments" in QEMU's `docs/devel/qapi-code-gen.rst`.
//!
//! Text is kept as QEMU keeps it: `# ` stripped, trailing white space
//! removed, leading and trailing blank lines of each section dropped.
//!
//! This is the grammar of QEMU 10.x.  QEMU 10.0 also still treated lines
//! starting with `=` as headings, allowed only at the start of a free-form
//! block; 10.2 added line format rules (70 columns, two spaces between
//! sentences).  Releases before 10.0 used an older grammar, in `legacy`:
//! it knows `Note:` and `Example:` sections but not `Errors:`, strips the
//! indentation of continuation lines, and splits free-form comments at
//! headings.

use std::fmt;

use crate::diagnostic::Diagnostic;
use crate::lexer::{Lexer, Token};
use crate::rules::Rules;
use crate::source::Location;

mod legacy;

/// What a section of a documentation block is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SectionKind {
    /// Untagged text: the body, or a paragraph between tagged sections.
    Plain,
    /// The description of a member, argument, enum value or branch.
    Member,
    /// The description of a feature.
    Feature,
    /// `Returns:` — what a command returns.
    Returns,
    /// `Errors:` — the errors a command reports.
    Errors,
    /// `Since:` — the release that introduced the definition.
    Since,
    /// `TODO:` — a note for developers.
    Todo,
    /// `Note:`/`Notes:` — allowed before QEMU 10.0 (later releases use rST
    /// admonitions instead).
    Note,
    /// `Example:`/`Examples:` — allowed before QEMU 10.0 (later releases use
    /// the `.. qmp-example::` directive inside other sections instead).
    Example,
}

impl SectionKind {
    fn from_tag(tag: &str) -> SectionKind {
        match tag {
            "Returns" => SectionKind::Returns,
            "Errors" => SectionKind::Errors,
            "Since" => SectionKind::Since,
            "TODO" => SectionKind::Todo,
            "Note" | "Notes" => SectionKind::Note,
            _ => SectionKind::Example,
        }
    }
}

impl fmt::Display for SectionKind {
    /// The name QEMU prints for the kind (`Returns`, `Todo`, …).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SectionKind::Plain => "Plain",
            SectionKind::Member => "Member",
            SectionKind::Feature => "Feature",
            SectionKind::Returns => "Returns",
            SectionKind::Errors => "Errors",
            SectionKind::Since => "Since",
            SectionKind::Todo => "Todo",
            SectionKind::Note => "Note",
            SectionKind::Example => "Example",
        })
    }
}

/// One section of a documentation block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// What the section is.
    pub kind: SectionKind,
    /// The member or feature described, for those kinds.
    pub name: Option<String>,
    /// The tag as written, for tagged sections (`Notes`, `Example`, …).
    pub tag: Option<String>,
    /// The text, without the tag.
    pub text: String,
    /// Where the section starts.
    pub loc: Location,
    /// False for a description the checker inserted because the schema
    /// left a member undocumented (allowed by `documentation-exceptions`).
    pub written: bool,
}

impl Section {
    fn new(kind: SectionKind, loc: Location) -> Self {
        Section {
            kind,
            name: None,
            tag: None,
            text: String::new(),
            loc,
            written: true,
        }
    }

    fn append_line(&mut self, line: &str) {
        self.text.push_str(line);
        self.text.push('\n');
    }

    /// Whether this section describes a member or a feature.
    pub fn is_description(&self) -> bool {
        matches!(self.kind, SectionKind::Member | SectionKind::Feature)
    }
}

/// A `##` documentation block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocBlock {
    /// Where the block starts (its opening `##`).
    pub loc: Location,
    /// The definition documented, or `None` for free-form documentation.
    pub symbol: Option<String>,
    /// All sections in source order; the first is always the body.
    pub sections: Vec<Section>,
}

impl DocBlock {
    fn new(loc: Location, symbol: Option<String>) -> Self {
        DocBlock {
            loc,
            symbol,
            sections: vec![Section::new(SectionKind::Plain, loc)],
        }
    }

    /// The body: the text before the first member description or tagged
    /// section.
    pub fn body(&self) -> &Section {
        &self.sections[0]
    }

    /// Member descriptions, in source order (inserted stubs last).
    pub fn members(&self) -> impl Iterator<Item = &Section> {
        self.sections
            .iter()
            .filter(|s| s.kind == SectionKind::Member)
    }

    /// Feature descriptions, in source order.
    pub fn features(&self) -> impl Iterator<Item = &Section> {
        self.sections
            .iter()
            .filter(|s| s.kind == SectionKind::Feature)
    }

    /// The description of member `name`.
    pub fn member(&self, name: &str) -> Option<&Section> {
        self.members().find(|s| s.name.as_deref() == Some(name))
    }

    /// The description of feature `name`.
    pub fn feature(&self, name: &str) -> Option<&Section> {
        self.features().find(|s| s.name.as_deref() == Some(name))
    }

    /// Sections other than the body, member and feature descriptions, in
    /// source order.
    pub fn other_sections(&self) -> impl Iterator<Item = &Section> {
        self.sections[1..].iter().filter(|s| !s.is_description())
    }

    /// The first section of `kind`.
    pub fn section(&self, kind: SectionKind) -> Option<&Section> {
        self.sections.iter().find(|s| s.kind == kind)
    }

    /// Whether any section describes `name` as a member.
    pub(crate) fn has_member(&self, name: &str) -> bool {
        self.member(name).is_some()
    }

    /// Inserts an empty description for an undocumented member, after the
    /// last member description (or after the body).
    pub(crate) fn insert_member_stub(&mut self, name: &str) {
        let mut index = 1;
        while index < self.sections.len() && self.sections[index].kind == SectionKind::Member {
            index += 1;
        }
        let mut stub = Section::new(SectionKind::Member, self.loc);
        stub.name = Some(name.to_owned());
        stub.written = false;
        self.sections.insert(index, stub);
    }

    /// Inserts an empty `Returns` section for a command that returns
    /// something but does not say what, where QEMU's documentation generator
    /// puts it: after the member descriptions, else before `Errors`, else
    /// before the features, else after the body.
    pub(crate) fn ensure_returns(&mut self, loc: Location) {
        if self.section(SectionKind::Returns).is_some() {
            return;
        }
        let mut stub = Section::new(SectionKind::Returns, loc);
        stub.written = false;
        let last = |kind| self.sections.iter().rposition(|s| s.kind == kind);
        let index = if let Some(i) = last(SectionKind::Member) {
            i + 1
        } else {
            last(SectionKind::Errors)
                .or_else(|| last(SectionKind::Feature))
                .unwrap_or(1)
        };
        self.sections.insert(index, stub);
    }
}

/// A QMP example from documentation: a `.. qmp-example::` directive in
/// QEMU 10's sections, or an `Example:` section of older releases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Example {
    /// The directive's `:title:` option, if any.
    pub title: Option<String>,
    /// Whether the directive has the `:annotated:` option: the example mixes
    /// prose with literal blocks rather than being a bare transcript.
    pub annotated: bool,
    /// The example's text, its common indentation removed: usually lines of
    /// `-> request` and `<- reply`, JSON possibly spread over several lines.
    pub text: String,
}

impl DocBlock {
    /// Every example in the block, in source order.
    pub fn examples(&self) -> Vec<Example> {
        let mut out = Vec::new();
        for section in &self.sections {
            if section.kind == SectionKind::Example {
                out.push(Example {
                    title: None,
                    annotated: false,
                    text: section.text.clone(),
                });
            } else {
                out.extend(qmp_examples(&section.text));
            }
        }
        out
    }
}

/// The `.. qmp-example::` directives in a section's text.
pub fn qmp_examples(text: &str) -> Vec<Example> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let directive_indent = indent_of(line);
        if line.trim() != ".. qmp-example::" {
            i += 1;
            continue;
        }
        i += 1;
        let inside = |l: &str| l.trim().is_empty() || indent_of(l) > directive_indent;
        let mut example = Example {
            title: None,
            annotated: false,
            text: String::new(),
        };
        // Options come first, one per line.
        while i < lines.len() && !lines[i].trim().is_empty() && inside(lines[i]) {
            let option = lines[i].trim();
            if let Some(title) = option.strip_prefix(":title:") {
                example.title = Some(title.trim().to_owned());
            } else if option == ":annotated:" {
                example.annotated = true;
            } else if !option.starts_with(':') {
                break;
            }
            i += 1;
        }
        let start = i;
        while i < lines.len() && inside(lines[i]) {
            i += 1;
        }
        example.text = dedent(&lines[start..i]);
        out.push(example);
    }
    out
}

/// The `@name:` at the start of a description line: the name and the
/// length of the match (colon and following spaces included).
fn at_name_colon(line: &str) -> Option<(&str, usize)> {
    let rest = line.strip_prefix('@')?;
    let colon = rest.find(':')?;
    let name = &rest[..colon];
    let after = &rest[colon + 1..];
    let spaces = after.len() - after.trim_start_matches(' ').len();
    Some((name, 1 + colon + 1 + spaces))
}

/// `lines` without their common indentation, blank lines at either end
/// dropped.
pub(crate) fn dedent(lines: &[&str]) -> String {
    let common = lines
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| indent_of(l))
        .min()
        .unwrap_or(0);
    let body: Vec<&str> = lines
        .iter()
        .map(|l| {
            if l.trim().is_empty() {
                ""
            } else {
                &l[common..]
            }
        })
        .collect();
    body.join("\n").trim_matches('\n').to_owned()
}

/// Number of leading white-space characters.
pub(crate) fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// A tagged section heading: `Returns:`, `Since:`, … (but not `Returns::`,
/// which is rST markup).  Returns the tag and the length of the heading.
fn tagged_heading(line: &str) -> Option<(&str, usize)> {
    const TAGS: [&str; 8] = [
        "Returns", "Errors", "Since", "Notes", "Note", "Examples", "Example", "TODO",
    ];
    for tag in TAGS {
        if let Some(rest) = line.strip_prefix(tag) {
            // `Note` must not match the start of `Notes:`; the regex
            // alternation tries `Notes?` greedily.
            let Some(after) = rest.strip_prefix(':') else {
                continue;
            };
            if after.starts_with(':') {
                return None;
            }
            let spaces = after.len() - after.trim_start_matches(' ').len();
            return Some((tag, tag.len() + 1 + spaces));
        }
    }
    None
}

/// Reads documentation lines from the lexer and applies the per-line rules.
struct LineReader<'l, 'a> {
    lexer: &'l mut Lexer<'a>,
    rules: Rules,
    /// Inside a literal block (`::` or `.. qmp-example::`), where the line
    /// format rules do not apply.
    literal: bool,
    literal_indent: usize,
}

impl LineReader<'_, '_> {
    fn error(&self, message: impl Into<String>) -> Diagnostic {
        self.lexer.error(message)
    }

    fn loc(&self) -> Location {
        self.lexer.location()
    }

    /// Advances to the next comment line and returns its text: `None` at the
    /// closing `##`.
    fn next(&mut self) -> Result<Option<String>, Diagnostic> {
        self.lexer.advance(true)?;
        self.current()
    }

    /// The current comment line's text.
    fn current(&mut self) -> Result<Option<String>, Diagnostic> {
        let Token::Comment(text) = self.lexer.token() else {
            return Err(self.error("documentation comment must end with '##'"));
        };
        let text: &str = text;
        if text.starts_with("##") {
            if text != "##" {
                return Err(self.error("junk after '##' at end of documentation comment"));
            }
            self.literal = false;
            return Ok(None);
        }
        if text == "#" {
            return Ok(Some(String::new()));
        }
        if text.as_bytes().get(1) != Some(&b' ') {
            return Err(self.error("missing space after #"));
        }
        let line = text[2..].trim_end().to_owned();
        if self.rules >= Rules::V10_2 {
            self.track_literal(&line);
            if !self.literal {
                self.check_line_format(&line)?;
            }
        }
        Ok(Some(line))
    }

    fn track_literal(&mut self, line: &str) {
        let trimmed = line.trim_end_matches(' ');
        let opens = trimmed.ends_with("::")
            && (trimmed[..trimmed.len() - 2]
                .trim_end_matches(' ')
                .is_empty()
                || {
                    let head = trimmed[..trimmed.len() - 2].trim_end_matches(' ');
                    head.strip_prefix("..")
                        .map(|r| r.starts_with(' ') && r.trim_start_matches(' ') == "qmp-example")
                        .unwrap_or(false)
                });
        if opens {
            self.literal = true;
            self.literal_indent = 0;
        } else if self.literal && !line.is_empty() {
            let indent = indent_of(line);
            if self.literal_indent == 0 {
                self.literal_indent = indent;
            } else if indent < self.literal_indent {
                // rST directives end where the indentation decreases.
                self.literal = false;
            }
        }
    }

    /// QEMU 10.2's line rules: at most 70 columns (URLs exempt), and two
    /// spaces between sentences.
    fn check_line_format(&self, line: &str) -> Result<(), Diagnostic> {
        // Bytes never undercount characters: count only long lines.
        if line.len() + 2 > 70 && line.chars().count() + 2 > 70 && !is_url_line(line) {
            return Err(self.error("documentation line longer than 70 characters"));
        }
        if let Some(at) = single_space_after_sentence(line) {
            let pos = self.lexer.line_start() + 2 + at + 1;
            let loc = self.lexer.location_at(pos);
            return Err(Diagnostic::new(
                loc,
                "Use two spaces between sentences\n\
                 If this not the end of a sentence, please report a bug.",
            ));
        }
        Ok(())
    }
}

fn is_url_line(line: &str) -> bool {
    let rest = line.trim_start_matches(' ');
    ["http://", "https://", "ftp://"]
        .iter()
        .any(|scheme| rest.starts_with(scheme) && !rest.contains(' '))
}

/// The byte offset of a sentence end (`.`, `!` or `?`) followed by a
/// single space and a capital letter, digit or `(`; abbreviations such as
/// "e.g." and list numbers such as "1." are not sentence ends.
fn single_space_after_sentence(line: &str) -> Option<usize> {
    let b = line.as_bytes();
    let starts_sentence = |c: u8| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'(';
    let is_word = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80;
    // Candidates are rare: look only at punctuation followed by a space.
    let mut from = 0;
    while let Some(off) = b[from..]
        .iter()
        .position(|&c| matches!(c, b'.' | b'!' | b'?'))
    {
        let p = from + off;
        from = p + 1;
        if b.get(p + 1) != Some(&b' ') || !b.get(p + 2).copied().is_some_and(starts_sentence) {
            continue;
        }
        if b[p] == b'.' {
            // "e.g. X", where "e" starts a word.
            if p >= 3 && &b[p - 3..p] == b"e.g" && (p == 3 || !is_word(b[p - 4])) {
                continue;
            }
            // A list number at the start of the line: "  1. X".
            if p >= 1 && b[p - 1].is_ascii_digit() && b[..p - 1].iter().all(|&c| c == b' ') {
                continue;
            }
        }
        return Some(p);
    }
    None
}

/// Parses a documentation comment.  The lexer is on the opening `##` line;
/// on return it is on the first token after the comment.
///
/// The result is never empty.  With the rules of releases before 10.0, a
/// free-form comment may hold several blocks: it is split at each `= `
/// heading that follows some text.
pub fn parse_blocks(lexer: &mut Lexer<'_>, rules: Rules) -> Result<Vec<DocBlock>, Diagnostic> {
    if rules < Rules::V10_0 {
        legacy::parse_blocks(lexer, rules)
    } else {
        parse_modern(lexer, rules).map(|b| vec![b])
    }
}

/// Parses a documentation comment as one block.  The lexer is on the opening
/// `##` line; on return it is on the first token after the comment.
///
/// With the rules of releases before 10.0, where a free-form comment may
/// hold several blocks (see [`parse_blocks`]), this is the last of them: the
/// one that documents a definition following the comment.
pub fn parse_block(lexer: &mut Lexer<'_>, rules: Rules) -> Result<DocBlock, Diagnostic> {
    let mut blocks = parse_blocks(lexer, rules)?;
    Ok(blocks.pop().expect("a comment yields at least one block"))
}

/// Parses a documentation comment with QEMU 10.x's grammar.
fn parse_modern(lexer: &mut Lexer<'_>, rules: Rules) -> Result<DocBlock, Diagnostic> {
    let Token::Comment(open) = lexer.token() else {
        unreachable!("parse_block starts on a comment token");
    };
    if *open != "##" {
        return Err(lexer.error("junk after '##' at start of documentation comment"));
    }
    let loc = lexer.location();
    let mut reader = LineReader {
        lexer,
        rules,
        literal: false,
        literal_indent: 0,
    };
    let mut line = reader.next()?;
    let mut doc;
    if let Some(symbol_line) = line.as_deref().filter(|l| l.starts_with('@')) {
        let Some(symbol) = symbol_line[1..].strip_suffix(':') else {
            return Err(reader.error("line should end with ':'"));
        };
        if symbol.is_empty() {
            return Err(reader.error("name required after '@'"));
        }
        doc = DocBlock::new(loc, Some(symbol.to_owned()));
        line = reader.next()?;
        parse_definition_doc(&mut reader, &mut doc, line)?;
    } else {
        doc = DocBlock::new(loc, None);
        ensure_untagged_section(&mut doc, reader.loc());
        let mut first = true;
        while let Some(text) = line {
            if let Some((name, _)) = at_name_colon(&text) {
                return Err(
                    reader.error(format!("'@{name}:' not allowed in free-form documentation"))
                );
            }
            if rules < Rules::V10_2 && text.starts_with('=') && !first {
                // QEMU 10.0 still read `= ` lines as headings, which must
                // open their comment block.
                return Err(reader.error("'=' heading must come first in a comment block"));
            }
            append_line(&mut doc, &text);
            line = reader.next()?;
            first = false;
        }
    }
    reader.lexer.advance(false)?;
    end_block(&mut doc)?;
    Ok(doc)
}

fn parse_definition_doc(
    reader: &mut LineReader<'_, '_>,
    doc: &mut DocBlock,
    mut line: Option<String>,
) -> Result<(), Diagnostic> {
    let mut no_more_args = false;
    loop {
        while line.as_deref() == Some("") {
            line = reader.next()?;
        }
        let Some(text) = line.take() else {
            return Ok(());
        };
        if text == "Features:" {
            if doc.features().next().is_some() {
                return Err(reader.error("duplicated 'Features:' line"));
            }
            line = reader.next()?;
            while line.as_deref() == Some("") {
                line = reader.next()?;
            }
            while let Some((name, len)) = line.as_deref().and_then(at_name_colon) {
                let name = name.to_owned();
                let rest = line.as_deref().unwrap_or("")[len..].to_owned();
                new_description(doc, reader.loc(), &name, SectionKind::Feature)?;
                if !rest.is_empty() {
                    append_line(doc, &rest);
                }
                line = get_indented(reader, doc)?;
            }
            if doc.features().next().is_none() {
                return Err(reader.error("feature descriptions expected"));
            }
            no_more_args = true;
        } else if let Some((name, _)) = at_name_colon(&text) {
            if no_more_args {
                return Err(reader.error(format!("description of '@{name}:' follows a section")));
            }
            line = Some(text);
            while let Some((name, len)) = line.as_deref().and_then(at_name_colon) {
                let name = name.to_owned();
                let rest = line.as_deref().unwrap_or("")[len..].to_owned();
                new_description(doc, reader.loc(), &name, SectionKind::Member)?;
                if !rest.is_empty() {
                    append_line(doc, &rest);
                }
                line = get_indented(reader, doc)?;
            }
            no_more_args = true;
        } else if let Some((tag, len)) = tagged_heading(&text) {
            if tag.starts_with("Note") {
                return Err(reader.error(format!(
                    "The '{tag}' section is no longer supported. Please use rST's \
                     '.. note::' or '.. admonition:: notes' directives, or another \
                     suitable admonition instead."
                )));
            }
            if tag.starts_with("Example") {
                return Err(reader.error(format!(
                    "The '{tag}' section is no longer supported. Please use the \
                     '.. qmp-example::' directive, or other suitable markup instead."
                )));
            }
            let kind = SectionKind::from_tag(tag);
            new_tagged_section(doc, reader.loc(), kind, tag)?;
            let rest = text[len..].to_owned();
            if !rest.is_empty() {
                append_line(doc, &rest);
            }
            line = get_indented(reader, doc)?;
            no_more_args = true;
        } else if reader.rules < Rules::V10_2 && text.starts_with('=') {
            // QEMU 10.0 still read `= ` lines as headings, which only
            // free-form blocks may have.
            return Err(reader.error("unexpected '=' markup in definition documentation"));
        } else {
            ensure_untagged_section(doc, reader.loc());
            append_line(doc, &text);
            line = get_paragraph(reader, doc)?;
        }
    }
}

/// The text of a section whose continuation lines are indented.
fn get_indented(
    reader: &mut LineReader<'_, '_>,
    doc: &mut DocBlock,
) -> Result<Option<String>, Diagnostic> {
    let mut line = reader.next()?;
    while line.as_deref() == Some("") {
        append_line(doc, "");
        line = reader.next()?;
    }
    let Some(first) = line else {
        return Ok(None);
    };
    let indent = indent_of(&first);
    if indent == 0 {
        return Ok(Some(first));
    }
    append_line(doc, &first);
    let mut prev_blank = false;
    loop {
        let Some(text) = reader.next()? else {
            return Ok(None);
        };
        if at_name_colon(&text).is_some() {
            return Ok(Some(text));
        }
        if !text.is_empty() && indent_of(&text) < indent {
            if prev_blank {
                return Ok(Some(text));
            }
            return Err(reader.error(format!(
                "unexpected de-indent (expected at least {indent} spaces)"
            )));
        }
        append_line(doc, &text);
        // QEMU sets this after the first continuation line whatever it is,
        // so any later de-indent ends the section.
        prev_blank = true;
    }
}

/// A plain paragraph: lines up to the next blank line.
fn get_paragraph(
    reader: &mut LineReader<'_, '_>,
    doc: &mut DocBlock,
) -> Result<Option<String>, Diagnostic> {
    loop {
        match reader.next()? {
            None => return Ok(None),
            Some(text) if text.is_empty() => return Ok(Some(text)),
            Some(text) => append_line(doc, &text),
        }
    }
}

fn append_line(doc: &mut DocBlock, line: &str) {
    doc.sections
        .last_mut()
        .expect("a block always has its body")
        .append_line(line);
}

fn ensure_untagged_section(doc: &mut DocBlock, loc: Location) {
    let last = doc
        .sections
        .last_mut()
        .expect("a block always has its body");
    if last.kind == SectionKind::Plain {
        if last.text.is_empty() {
            // Empty so far: the section starts here.
            last.loc = loc;
        }
        last.text.push('\n');
        return;
    }
    doc.sections.push(Section::new(SectionKind::Plain, loc));
}

fn new_tagged_section(
    doc: &mut DocBlock,
    loc: Location,
    kind: SectionKind,
    tag: &str,
) -> Result<(), Diagnostic> {
    if matches!(
        kind,
        SectionKind::Returns | SectionKind::Errors | SectionKind::Since
    ) && doc.section(kind).is_some()
    {
        return Err(Diagnostic::new(loc, format!("duplicated '{kind}' section")));
    }
    let mut section = Section::new(kind, loc);
    section.tag = Some(tag.to_owned());
    doc.sections.push(section);
    Ok(())
}

fn new_description(
    doc: &mut DocBlock,
    loc: Location,
    name: &str,
    kind: SectionKind,
) -> Result<(), Diagnostic> {
    if name.is_empty() {
        return Err(Diagnostic::new(loc, "invalid parameter name"));
    }
    let exists = match kind {
        SectionKind::Member => doc.member(name).is_some(),
        _ => doc.feature(name).is_some(),
    };
    if exists {
        return Err(Diagnostic::new(
            loc,
            format!("'{name}' parameter name duplicated"),
        ));
    }
    let mut section = Section::new(kind, loc);
    section.name = Some(name.to_owned());
    doc.sections.push(section);
    Ok(())
}

fn end_block(doc: &mut DocBlock) -> Result<(), Diagnostic> {
    for section in &mut doc.sections {
        section.text = section.text.trim_matches('\n').to_owned();
        if section.kind != SectionKind::Plain && section.text.is_empty() {
            return Err(Diagnostic::new(
                section.loc,
                format!("text required after '{}:'", section.kind),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::FileId;

    fn parse(src: &str) -> Result<DocBlock, String> {
        let mut lexer = Lexer::new(src, FileId(0));
        lexer.advance(false).map_err(|d| d.message.clone())?;
        parse_block(&mut lexer, Rules::default())
            .map_err(|d| format!("{}:{}: {}", d.location.line, d.location.col, d.message))
    }

    #[test]
    fn definition_block_has_members_features_and_sections() {
        let doc = parse(
            "##\n# @Foo:\n#\n# Body text.\n#\n# @a: first\n#     continued\n# @b: second\n#\n\
             # Features:\n# @deprecated: gone\n#\n# Since: 1.0\n##\n",
        )
        .unwrap();
        assert_eq!(doc.symbol.as_deref(), Some("Foo"));
        assert_eq!(doc.body().text, "Body text.");
        let members: Vec<_> = doc.members().map(|s| s.text.as_str()).collect();
        assert_eq!(members, ["first\n    continued", "second"]);
        assert_eq!(doc.feature("deprecated").unwrap().text, "gone");
        assert_eq!(doc.section(SectionKind::Since).unwrap().text, "1.0");
    }

    #[test]
    fn free_form_block_rejects_member_descriptions() {
        assert_eq!(
            parse("##\n# Text\n# @a: no\n##\n").unwrap_err(),
            "3:1: '@a:' not allowed in free-form documentation"
        );
    }

    #[test]
    fn sentences_need_two_spaces() {
        let err = parse("##\n# One. Two.\n##\n").unwrap_err();
        assert!(err.starts_with("2:7: Use two spaces"), "{err}");
        assert!(parse("##\n# See e.g. Foo.  Fine\n##\n").is_ok());
        assert!(parse("##\n# 1. A list\n##\n").is_ok());
    }

    #[test]
    fn literal_blocks_skip_line_rules() {
        let long = "x".repeat(80);
        assert!(parse(&format!("##\n# {long}\n##\n")).is_err());
        assert!(parse(&format!("##\n# .. qmp-example::\n#\n#    {long}\n##\n")).is_ok());
    }

    fn parse_10_0(src: &str) -> Result<DocBlock, String> {
        let mut lexer = Lexer::new(src, FileId(0));
        lexer.advance(false).map_err(|d| d.message.clone())?;
        parse_block(&mut lexer, Rules::V10_0)
            .map_err(|d| format!("{}:{}: {}", d.location.line, d.location.col, d.message))
    }

    #[test]
    fn heading_after_first_line_of_free_form_block_is_an_error_with_10_0_rules() {
        let src = "##\n# Text\n#\n# = Heading\n##\n";
        assert_eq!(
            parse_10_0(src).unwrap_err(),
            "4:1: '=' heading must come first in a comment block"
        );
        assert!(parse(src).is_ok());
        // A blank first line counts as the first line.
        assert!(parse_10_0("##\n#\n# = Heading\n##\n").is_err());
        assert!(parse_10_0("##\n# = Heading\n#\n# Text\n##\n").is_ok());
    }

    #[test]
    fn heading_in_definition_block_is_an_error_with_10_0_rules() {
        let src = "##\n# @Foo:\n#\n# = Heading\n##\n";
        assert_eq!(
            parse_10_0(src).unwrap_err(),
            "4:1: unexpected '=' markup in definition documentation"
        );
        assert!(parse(src).is_ok());
        // Only a line that starts a paragraph counts.
        assert!(parse_10_0("##\n# @Foo:\n#\n# Text\n# = more\n##\n").is_ok());
    }

    #[test]
    fn line_format_is_not_checked_with_10_0_rules() {
        let long = "x".repeat(80);
        assert!(parse_10_0(&format!("##\n# One. Two. {long}\n##\n")).is_ok());
    }

    #[test]
    fn older_rules_use_the_older_grammar() {
        // 5.2 and 7.2 allowed `Example:` sections.
        let src = "##\n# @Foo:\n#\n# Example:\n#\n# -> x\n##\n";
        assert!(parse(src).is_err());
        let mut lexer = Lexer::new(src, FileId(0));
        lexer.advance(false).unwrap();
        let doc = parse_block(&mut lexer, Rules::V7_2).unwrap();
        assert_eq!(doc.section(SectionKind::Example).unwrap().text, "-> x");
    }

    #[test]
    fn qmp_examples_are_extracted_with_title_and_text() {
        let text = "Does things.\n\n.. qmp-example::\n   :title: First\n\n    -> { \"execute\": \"x\" }\n    <- { \"return\": {} }\n\nMore text.\n\n.. qmp-example::\n   :annotated:\n\n   Prose::\n\n     -> {}";
        let examples = qmp_examples(text);
        assert_eq!(examples.len(), 2);
        assert_eq!(examples[0].title.as_deref(), Some("First"));
        assert_eq!(
            examples[0].text,
            "-> { \"execute\": \"x\" }\n<- { \"return\": {} }"
        );
        assert!(examples[1].annotated);
        assert_eq!(examples[1].text, "Prose::\n\n  -> {}");
    }

    #[test]
    fn empty_tagged_section_is_an_error() {
        assert_eq!(
            parse("##\n# @Foo:\n#\n# Since:\n##\n").unwrap_err(),
            "4:1: text required after 'Since:'"
        );
    }
}
