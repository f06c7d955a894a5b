//! Documentation comments as QEMU 5.2 and 7.2 read them.
//!
//! The older grammar is a line-by-line state machine rather than the
//! paragraph-oriented reader of 10.x:
//!
//! - A definition block starts like the newer one (`@name:`), then holds a
//!   body, member descriptions, an optional `Features:` list, and finally
//!   tagged sections (`Returns:`, `Since:`, `Note:`, `Notes:`, `Example:`,
//!   `Examples:`, `TODO:`) or untagged paragraphs.  Once those final sections
//!   begin, everything up to the next tag belongs to the current section.
//! - A description's continuation lines must be indented at least as far as
//!   the text after `@name:` on its first line; that indentation is removed.
//! - A free-form comment is split into several blocks at each `# =` heading
//!   that follows some text.
//! - Lines are tested as written (trailing white space included); each is
//!   right-stripped only when it is stored, and each section is stripped when
//!   it ends.  A section other than the body must not end up empty.
//!
//! The result uses the same [`DocBlock`] model as the newer grammar; untagged
//! paragraphs after the descriptions become [`SectionKind::Plain`] sections.

use super::{DocBlock, Section, SectionKind};
use crate::diagnostic::Diagnostic;
use crate::lexer::{Lexer, Token};
use crate::rules::Rules;
use crate::source::Location;

/// The section tags of the older grammar, colon included.  The colon must
/// end the line's first word: `Since:1.0` is plain text.
const TAGS: [&str; 7] = [
    "Returns:",
    "Since:",
    "Note:",
    "Notes:",
    "Example:",
    "Examples:",
    "TODO:",
];

/// Python's `str.isspace()`, which is also what `\s` matches in QEMU's
/// regular expressions.
fn is_space(c: char) -> bool {
    c.is_whitespace() || ('\x1c'..='\x1f').contains(&c)
}

fn strip(text: &str) -> &str {
    text.trim_matches(is_space)
}

fn rstrip(text: &str) -> &str {
    text.trim_end_matches(is_space)
}

/// Number of leading white-space characters.
fn indent_of(line: &str) -> usize {
    line.chars().take_while(|&c| is_space(c)).count()
}

/// `line` without its first `n` characters.
fn skip_chars(line: &str, n: usize) -> &str {
    match line.char_indices().nth(n) {
        Some((i, _)) => &line[i..],
        None => "",
    }
}

/// The line's first word: everything before the first space (only a space:
/// a tab does not separate words here).
fn first_word(line: &str) -> &str {
    line.split(' ').next().unwrap_or("")
}

/// Whether a first word is a description heading, `@name:`.
fn is_description_heading(word: &str) -> bool {
    word.len() >= 2 && word.starts_with('@') && word.ends_with(':')
}

fn is_tag(word: &str) -> bool {
    TAGS.contains(&word)
}

/// A `@word:` at the start of the line, where `word` is at least one
/// non-space character and the match extends to the last colon of the first
/// run of non-space characters (QEMU's `@\S+:`).
fn at_word_colon(line: &str) -> Option<&str> {
    let rest = line.strip_prefix('@')?;
    let run_len = rest.find(is_space).unwrap_or(rest.len());
    let run = &rest[..run_len];
    let colon = run.rfind(':').filter(|&i| i >= 1)?;
    Some(&line[..1 + colon + 1])
}

/// For a heading line (`@name: text` or `Tag: text`), the number of
/// characters before the text: up to the last colon of the first run of
/// non-space characters, plus the white space after it.
fn heading_len(line: &str, word: &str) -> usize {
    let run_len = line.find(is_space).unwrap_or(line.len());
    let run = &line[..run_len];
    // The word ends with a colon, and so, unless it holds a tab or another
    // non-space separator, does the run.  Should a separator hide the colon,
    // treat the whole word as the heading.
    let head = match run.rfind(':') {
        Some(i) => &line[..i + 1],
        None => word,
    };
    let after = &line[head.len()..];
    head.chars().count() + indent_of(after)
}

/// The line with its heading replaced by spaces, and the indentation its
/// continuation lines need: the text's column, or 0 if the heading stands
/// alone.
fn strip_heading(line: &str, word: &str) -> (String, usize) {
    let len = heading_len(line, word);
    let text = skip_chars(line, len);
    if text.is_empty() {
        (String::new(), 0)
    } else {
        (format!("{}{text}", " ".repeat(len)), len)
    }
}

/// Which part of a definition block the next line belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// The body (and all of a free-form block).
    Body,
    /// Member descriptions.
    Members,
    /// After `Features:`: feature descriptions.
    Features,
    /// Tagged sections and untagged paragraphs after the descriptions.
    Sections,
}

/// One block being read.
struct Builder {
    doc: DocBlock,
    rules: Rules,
    mode: Mode,
    /// Indentation required of, and removed from, the current section's
    /// non-blank lines.
    indent: usize,
}

impl Builder {
    fn new(loc: Location, rules: Rules) -> Self {
        Builder {
            doc: DocBlock::new(loc, None),
            rules,
            mode: Mode::Body,
            indent: 0,
        }
    }

    /// The section lines are added to: always the newest.
    fn current(&mut self) -> &mut Section {
        self.doc
            .sections
            .last_mut()
            .expect("a block always has its body")
    }

    /// Adds a comment line: `#` alone, or `# ` and text.
    fn append(&mut self, raw: &str, at: Location) -> Result<(), Diagnostic> {
        let line = &raw[1..];
        if line.is_empty() {
            return self.append_text("", at);
        }
        let Some(line) = line.strip_prefix(' ') else {
            return Err(Diagnostic::new(at, "missing space after #"));
        };
        match self.mode {
            Mode::Body => self.body_line(line, at),
            Mode::Members => self.members_line(line, at),
            Mode::Features => self.features_line(line, at),
            Mode::Sections => self.sections_line(line, at),
        }
    }

    fn body_line(&mut self, line: &str, at: Location) -> Result<(), Diagnostic> {
        let word = first_word(line);
        if self.doc.symbol.is_none()
            && self.doc.sections[0].text.is_empty()
            && line.starts_with('@')
        {
            let Some(symbol) = line[1..].strip_suffix(':') else {
                return Err(Diagnostic::new(at, "line should end with ':'"));
            };
            if symbol.is_empty() {
                let message = if self.rules < Rules::V7_2 {
                    "invalid name"
                } else {
                    "name required after '@'"
                };
                return Err(Diagnostic::new(at, message));
            }
            self.doc.symbol = Some(symbol.to_owned());
            Ok(())
        } else if self.doc.symbol.is_none() {
            self.append_text(line, at)
        } else if is_description_heading(word) {
            self.mode = Mode::Members;
            self.members_line(line, at)
        } else if line == "Features:" {
            self.mode = Mode::Features;
            Ok(())
        } else if is_tag(word) {
            self.mode = Mode::Sections;
            self.sections_line(line, at)
        } else {
            self.append_text(line, at)
        }
    }

    /// Whether `line` starts a paragraph at the left margin: it is not
    /// indented and follows a blank line.
    fn starts_unindented_paragraph(&mut self, line: &str) -> bool {
        line.chars().next().is_some_and(|c| !is_space(c)) && self.current().text.ends_with("\n\n")
    }

    fn members_line(&mut self, line: &str, at: Location) -> Result<(), Diagnostic> {
        let word = first_word(line);
        if is_description_heading(word) {
            self.start_description(line, word, SectionKind::Member, at)
        } else if is_tag(word) {
            self.mode = Mode::Sections;
            self.sections_line(line, at)
        } else if self.starts_unindented_paragraph(line) {
            if line == "Features:" {
                self.mode = Mode::Features;
                Ok(())
            } else {
                self.start_untagged_section(line, at)
            }
        } else {
            self.append_text(line, at)
        }
    }

    fn features_line(&mut self, line: &str, at: Location) -> Result<(), Diagnostic> {
        let word = first_word(line);
        if is_description_heading(word) {
            self.start_description(line, word, SectionKind::Feature, at)
        } else if is_tag(word) {
            self.mode = Mode::Sections;
            self.sections_line(line, at)
        } else if self.starts_unindented_paragraph(line) {
            self.start_untagged_section(line, at)
        } else {
            self.append_text(line, at)
        }
    }

    fn sections_line(&mut self, line: &str, at: Location) -> Result<(), Diagnostic> {
        let word = first_word(line);
        if is_description_heading(word) {
            let first = self.doc.sections[1..]
                .iter()
                .find(|s| !s.is_description())
                .and_then(|s| s.tag.as_deref())
                .unwrap_or("None");
            return Err(Diagnostic::new(
                at,
                format!("'{word}' can't follow '{first}' section"),
            ));
        }
        if is_tag(word) {
            let tag = &word[..word.len() - 1];
            if matches!(tag, "Returns" | "Since")
                && self
                    .doc
                    .sections
                    .iter()
                    .any(|s| s.tag.as_deref() == Some(tag))
            {
                return Err(Diagnostic::new(at, format!("duplicated '{tag}' section")));
            }
            let (text, indent) = strip_heading(line, word);
            self.end_section(at)?;
            let mut section = Section::new(SectionKind::from_tag(tag), at);
            section.tag = Some(tag.to_owned());
            self.doc.sections.push(section);
            self.indent = indent;
            return self.append_text(&text, at);
        }
        self.append_text(line, at)
    }

    /// Starts the description of a member or feature.
    fn start_description(
        &mut self,
        line: &str,
        word: &str,
        kind: SectionKind,
        at: Location,
    ) -> Result<(), Diagnostic> {
        let name = &word[1..word.len() - 1];
        if name.is_empty() {
            return Err(Diagnostic::new(at, "invalid parameter name"));
        }
        let exists = self
            .doc
            .sections
            .iter()
            .any(|s| s.kind == kind && s.name.as_deref() == Some(name));
        if exists {
            return Err(Diagnostic::new(
                at,
                format!("'{name}' parameter name duplicated"),
            ));
        }
        let (text, indent) = strip_heading(line, word);
        self.end_section(at)?;
        let mut section = Section::new(kind, at);
        section.name = Some(name.to_owned());
        self.doc.sections.push(section);
        self.indent = indent;
        self.append_text(&text, at)
    }

    /// Starts an untagged paragraph after the descriptions.
    fn start_untagged_section(&mut self, line: &str, at: Location) -> Result<(), Diagnostic> {
        self.end_section(at)?;
        self.doc.sections.push(Section::new(SectionKind::Plain, at));
        self.indent = 0;
        self.mode = Mode::Sections;
        self.sections_line(line, at)
    }

    /// Adds text to the current section.  `@word:` is not allowed there.
    fn append_text(&mut self, line: &str, at: Location) -> Result<(), Diagnostic> {
        if let Some(word) = at_word_colon(line) {
            return Err(Diagnostic::new(
                at,
                format!("'{word}' not allowed in free-form documentation"),
            ));
        }
        let indent = self.indent;
        let mut line = line;
        if !line.is_empty() {
            if indent_of(line) < indent {
                return Err(Diagnostic::new(
                    at,
                    format!("unexpected de-indent (expected at least {indent} spaces)"),
                ));
            }
            line = skip_chars(line, indent);
        }
        let section = self.current();
        section.text.push_str(rstrip(line));
        section.text.push('\n');
        Ok(())
    }

    /// Finishes the current section: strips its text, which must not be
    /// empty unless it is the body.  `at` is the line that ends it.
    fn end_section(&mut self, at: Location) -> Result<(), Diagnostic> {
        let is_body = self.doc.sections.len() == 1;
        let section = self.current();
        section.text = strip(&section.text).to_owned();
        if !is_body && section.text.is_empty() {
            let name = section
                .name
                .as_deref()
                .or(section.tag.as_deref())
                .unwrap_or("None");
            return Err(Diagnostic::new(at, format!("empty doc section '{name}'")));
        }
        Ok(())
    }

    fn finish(mut self, at: Location) -> Result<DocBlock, Diagnostic> {
        self.end_section(at)?;
        Ok(self.doc)
    }
}

/// Parses a documentation comment with the grammar of QEMU 5.2 and 7.2.  The
/// lexer is on the opening `##` line; on return it is on the first token
/// after the comment.  A free-form comment yields one block per `= `
/// heading that follows text.
pub(super) fn parse_blocks(
    lexer: &mut Lexer<'_>,
    rules: Rules,
) -> Result<Vec<DocBlock>, Diagnostic> {
    let Token::Comment(open) = lexer.token() else {
        unreachable!("parse_blocks starts on a comment token");
    };
    if *open != "##" {
        return Err(lexer.error("junk after '##' at start of documentation comment"));
    }
    let loc = lexer.location();
    let mut blocks = Vec::new();
    let mut block = Builder::new(loc, rules);
    loop {
        lexer.advance(true)?;
        let Token::Comment(text) = lexer.token() else {
            return Err(lexer.error("documentation comment must end with '##'"));
        };
        let text: &str = text;
        let at = lexer.location();
        if text.starts_with("##") {
            if text != "##" {
                return Err(lexer.error("junk after '##' at end of documentation comment"));
            }
            blocks.push(block.finish(at)?);
            lexer.advance(false)?;
            return Ok(blocks);
        }
        if text.starts_with("# =") {
            if block.doc.symbol.is_some() {
                return Err(Diagnostic::new(
                    at,
                    "unexpected '=' markup in definition documentation",
                ));
            }
            if !block.doc.sections[0].text.is_empty() {
                let done = std::mem::replace(&mut block, Builder::new(loc, rules));
                blocks.push(done.finish(at)?);
            }
        }
        block.append(text, at)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::FileId;

    fn parse_with(rules: Rules, src: &str) -> Result<Vec<DocBlock>, String> {
        let mut lexer = Lexer::new(src, FileId(0));
        lexer.advance(false).map_err(|d| d.message.clone())?;
        parse_blocks(&mut lexer, rules)
            .map_err(|d| format!("{}:{}: {}", d.location.line, d.location.col, d.message))
    }

    fn parse(src: &str) -> Result<DocBlock, String> {
        let mut blocks = parse_with(Rules::V7_2, src)?;
        assert_eq!(blocks.len(), 1);
        Ok(blocks.remove(0))
    }

    fn texts(doc: &DocBlock) -> Vec<(SectionKind, Option<&str>, &str)> {
        doc.sections
            .iter()
            .map(|s| {
                (
                    s.kind,
                    s.name.as_deref().or(s.tag.as_deref()),
                    s.text.as_str(),
                )
            })
            .collect()
    }

    #[test]
    fn definition_block_maps_to_body_descriptions_and_tagged_sections() {
        let doc = parse(
            "##\n# @Foo:\n#\n# Body.\n#\n# @a: first\n#     second\n# @b:\n# unindented\n#\n\
             # Features:\n# @f: feat\n#\n# Returns: r\n#\n# Notes: n\n# Examples:\n#\n# -> x\n\
             #\n# more\n# TODO: t\n# Since: 1.0\n##\n",
        )
        .unwrap();
        assert_eq!(doc.symbol.as_deref(), Some("Foo"));
        use SectionKind::*;
        assert_eq!(
            texts(&doc),
            [
                (Plain, None, "Body."),
                (Member, Some("a"), "first\nsecond"),
                (Member, Some("b"), "unindented"),
                (Feature, Some("f"), "feat"),
                (Returns, Some("Returns"), "r"),
                (Note, Some("Notes"), "n"),
                (Example, Some("Examples"), "-> x\n\nmore"),
                (Todo, Some("TODO"), "t"),
                (Since, Some("Since"), "1.0"),
            ]
        );
    }

    #[test]
    fn continuation_lines_must_keep_the_description_indent() {
        assert_eq!(
            parse("##\n# @Foo:\n#\n# @a: first\n#  x\n##\n").unwrap_err(),
            "5:1: unexpected de-indent (expected at least 4 spaces)"
        );
        // A line of spaces is not blank: it is de-indented too.
        assert_eq!(
            parse("##\n# @Foo:\n#\n# @a:  x\n#   \n##\n").unwrap_err(),
            "5:1: unexpected de-indent (expected at least 5 spaces)"
        );
        // Tagged sections work the same way.
        assert_eq!(
            parse("##\n# @Foo:\n# Since: 1\n#   more\n##\n").unwrap_err(),
            "4:1: unexpected de-indent (expected at least 7 spaces)"
        );
    }

    #[test]
    fn heading_alone_takes_unindented_continuation_lines() {
        let doc = parse("##\n# @Foo:\n#\n# @a:   \n#    text\n# @b:\n# more\n##\n").unwrap();
        assert_eq!(doc.member("a").unwrap().text, "text");
        assert_eq!(doc.member("b").unwrap().text, "more");
    }

    #[test]
    fn unindented_paragraph_after_descriptions_is_an_untagged_section() {
        let doc =
            parse("##\n# @Foo:\n# @a: x\n#\n# Features:\n# @f: x\n#\n# Para\n#\n# more\n##\n")
                .unwrap();
        use SectionKind::*;
        assert_eq!(
            texts(&doc),
            [
                (Plain, None, ""),
                (Member, Some("a"), "x"),
                (Feature, Some("f"), "x"),
                (Plain, None, "Para\n\nmore"),
            ]
        );
    }

    #[test]
    fn features_line_right_after_a_description_is_its_text() {
        assert_eq!(
            parse("##\n# @Foo:\n#\n# @a: x\n# Features:\n# @f: y\n##\n").unwrap_err(),
            "5:1: unexpected de-indent (expected at least 4 spaces)"
        );
        let doc = parse("##\n# @Foo:\n# @a:\n# x\n# Features:\n##\n").unwrap();
        assert_eq!(doc.member("a").unwrap().text, "x\nFeatures:");
    }

    #[test]
    fn text_after_features_line_before_a_description_joins_the_body() {
        let doc = parse("##\n# @Foo:\n# Features:\n# text\n#\n# @f: x\n##\n").unwrap();
        assert_eq!(doc.body().text, "text");
        assert_eq!(doc.feature("f").unwrap().text, "x");
    }

    #[test]
    fn description_after_a_section_is_an_error() {
        assert_eq!(
            parse("##\n# @Foo:\n#\n# Returns: x\n# @b: x\n##\n").unwrap_err(),
            "5:1: '@b:' can't follow 'Returns' section"
        );
        assert_eq!(
            parse("##\n# @Foo:\n#\n# @a: x\n#\n# Para\n# @b: x\n##\n").unwrap_err(),
            "7:1: '@b:' can't follow 'None' section"
        );
    }

    #[test]
    fn empty_section_is_an_error_where_the_next_one_starts() {
        assert_eq!(
            parse("##\n# @Foo:\n#\n# @a:\n#\n# Since: 1\n##\n").unwrap_err(),
            "6:1: empty doc section 'a'"
        );
        assert_eq!(
            parse("##\n# @Foo:\n#\n# Since:\n##\n").unwrap_err(),
            "5:1: empty doc section 'Since'"
        );
    }

    #[test]
    fn free_form_comment_splits_at_headings_after_text() {
        let blocks = parse_with(Rules::V7_2, "##\n# = A\n# text\n# == B\n# more\n##\n").unwrap();
        let bodies: Vec<_> = blocks.iter().map(|b| b.body().text.as_str()).collect();
        assert_eq!(bodies, ["= A\ntext", "== B\nmore"]);
        assert!(blocks.iter().all(|b| b.symbol.is_none()));
        assert_eq!(blocks[0].loc, blocks[1].loc);
        // A blank line is text enough.
        let blocks = parse_with(Rules::V5_2, "##\n#\n# = A\n##\n").unwrap();
        let bodies: Vec<_> = blocks.iter().map(|b| b.body().text.as_str()).collect();
        assert_eq!(bodies, ["", "= A"]);
    }

    #[test]
    fn heading_in_definition_block_is_an_error() {
        assert_eq!(
            parse("##\n# @Foo:\n# = A\n##\n").unwrap_err(),
            "3:1: unexpected '=' markup in definition documentation"
        );
    }

    #[test]
    fn errors_and_tags_without_space_after_colon_are_plain_text() {
        let doc = parse("##\n# @Foo:\n# Errors: x\n# Since:1.0\n##\n").unwrap();
        assert_eq!(doc.sections.len(), 1);
        assert_eq!(doc.body().text, "Errors: x\nSince:1.0");
    }

    #[test]
    fn symbol_line_must_end_with_colon_and_name_something() {
        assert_eq!(
            parse("##\n# @Foo: \n##\n").unwrap_err(),
            "2:1: line should end with ':'"
        );
        assert_eq!(
            parse_with(Rules::V5_2, "##\n# @:\n##\n").unwrap_err(),
            "2:1: invalid name"
        );
        assert_eq!(
            parse_with(Rules::V7_2, "##\n# @:\n##\n").unwrap_err(),
            "2:1: name required after '@'"
        );
    }

    #[test]
    fn description_names_must_be_present_and_unique() {
        assert_eq!(
            parse("##\n# @Foo:\n# @: x\n##\n").unwrap_err(),
            "3:1: invalid parameter name"
        );
        assert_eq!(
            parse("##\n# @Foo:\n# @a: x\n# @a: y\n##\n").unwrap_err(),
            "4:1: 'a' parameter name duplicated"
        );
    }

    #[test]
    fn returns_and_since_may_appear_once() {
        assert_eq!(
            parse("##\n# @Foo:\n# Since: 1\n# Since: 2\n##\n").unwrap_err(),
            "4:1: duplicated 'Since' section"
        );
        // Notes and examples may repeat.
        assert!(parse("##\n# @Foo:\n# Note: 1\n# Note: 2\n##\n").is_ok());
    }

    #[test]
    fn at_name_colon_is_rejected_in_text() {
        assert_eq!(
            parse("##\n# text @foo:bar\n# @foo:bar\n##\n").unwrap_err(),
            "3:1: '@foo:' not allowed in free-form documentation"
        );
        // A tab does not end the first word, so this is no heading.
        assert_eq!(
            parse("##\n# @Foo:\n#\n# @a:\ty\n##\n").unwrap_err(),
            "4:1: '@a:' not allowed in free-form documentation"
        );
    }

    #[test]
    fn comment_lines_need_a_space_after_the_hash() {
        assert_eq!(
            parse("##\n#x\n##\n").unwrap_err(),
            "2:1: missing space after #"
        );
    }

    #[test]
    fn line_length_and_sentence_spacing_are_not_checked() {
        let long = "x".repeat(80);
        let doc = parse(&format!("##\n# @Foo:\n# One. Two. {long}\n##\n")).unwrap();
        assert_eq!(doc.body().text, format!("One. Two. {long}"));
    }

    #[test]
    fn trailing_white_space_is_dropped_from_stored_lines() {
        let doc = parse("##\n# @Foo:\n# Since: 1  \n#        more   \n##\n").unwrap();
        assert_eq!(doc.section(SectionKind::Since).unwrap().text, "1\nmore");
    }
}
