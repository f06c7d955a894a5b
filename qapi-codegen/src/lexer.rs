//! The QAPI schema dialect of JSON, as tokens.
//!
//! QAPI schema files look like JSON with single-quoted strings, `#` comments
//! and Python-style `true`/`false` (see "Schema syntax" in QEMU's
//! `docs/devel/qapi-code-gen.rst`).  Comments are skipped, except that a
//! comment starting with `##` opens a documentation block: from there on the
//! lexer hands comment lines to the caller as [`Token::Comment`] until the
//! closing `##`.
//!
//! Columns are counted in characters, with tab stops every 8 columns.

use crate::diagnostic::Diagnostic;
use crate::source::{FileId, Location};

/// One token of schema text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token<'a> {
    /// `{`
    LBrace,
    /// `}`
    RBrace,
    /// `[`
    LBracket,
    /// `]`
    RBracket,
    /// `:`
    Colon,
    /// `,`
    Comma,
    /// A single-quoted string, without the quotes, escapes resolved.
    Str(String),
    /// `true` or `false`.
    Bool(bool),
    /// A comment line, from its `#` to the end of the line (exclusive).  Only
    /// produced inside documentation blocks.
    Comment(&'a str),
    /// The end of the file.
    Eof,
}

/// Splits one file's text into tokens.
#[derive(Debug)]
pub struct Lexer<'a> {
    text: &'a str,
    src: &'a [u8],
    file: FileId,
    /// Index of the next unread byte.
    cursor: usize,
    /// Index of the current token's first byte.
    pos: usize,
    /// Line of the current token.
    line: u32,
    /// Index of the first byte of the current line.
    line_pos: usize,
    /// The current token.
    tok: Token<'a>,
}

impl<'a> Lexer<'a> {
    /// A lexer over `src`.  Like QEMU, the text is treated as ending with a
    /// newline; call [`Lexer::advance`] to read the first token.
    pub fn new(src: &'a str, file: FileId) -> Self {
        Lexer {
            text: src,
            src: src.as_bytes(),
            file,
            cursor: 0,
            pos: 0,
            line: 1,
            line_pos: 0,
            tok: Token::Eof,
        }
    }

    /// The current token.
    pub fn token(&self) -> &Token<'a> {
        &self.tok
    }

    /// Moves the value out of the current string token (which is left
    /// empty); an empty string for other tokens.
    pub fn take_string(&mut self) -> String {
        match &mut self.tok {
            Token::Str(s) => std::mem::take(s),
            _ => String::new(),
        }
    }

    /// The file being lexed.
    pub fn file(&self) -> FileId {
        self.file
    }

    /// The line of the current token.  (QEMU reports most errors by line.)
    pub fn line(&self) -> u32 {
        self.line
    }

    /// Where the current token starts.
    pub fn location(&self) -> Location {
        self.location_at(self.pos)
    }

    /// The location of byte `pos` on the current line.
    pub fn location_at(&self, pos: usize) -> Location {
        Location {
            file: self.file,
            line: self.line,
            col: column(&self.src[self.line_pos..pos.max(self.line_pos)]),
        }
    }

    /// Byte index of the start of the current line.
    pub fn line_start(&self) -> usize {
        self.line_pos
    }

    /// An error at the current token.
    pub fn error(&self, message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(self.location(), message)
    }

    fn byte(&self, i: usize) -> u8 {
        // QEMU appends a newline to text that lacks one; reading past the end
        // behaves as if that newline were there.
        self.src.get(i).copied().unwrap_or(b'\n')
    }

    fn len(&self) -> usize {
        if self.src.last() == Some(&b'\n') {
            self.src.len()
        } else {
            self.src.len() + 1
        }
    }

    /// Reads the next token.  Comments are skipped unless `keep_comments`
    /// is set; a comment starting with `##` is always returned, since it
    /// opens or closes a documentation block.
    pub fn advance(&mut self, keep_comments: bool) -> Result<(), Diagnostic> {
        let mut keep_comments = keep_comments;
        loop {
            self.pos = self.cursor;
            let ch = self.byte(self.cursor);
            self.cursor += 1;
            match ch {
                b'#' => {
                    if self.byte(self.cursor) == b'#' {
                        keep_comments = true;
                    }
                    let end = self.src[self.cursor.min(self.src.len())..]
                        .iter()
                        .position(|&b| b == b'\n')
                        .map(|i| self.cursor + i)
                        .unwrap_or(self.src.len());
                    self.cursor = end;
                    if keep_comments {
                        // `#` and the newline are ASCII: both ends are
                        // character boundaries.
                        self.tok = Token::Comment(&self.text[self.pos..end]);
                        return Ok(());
                    }
                }
                b'{' => return self.single(Token::LBrace),
                b'}' => return self.single(Token::RBrace),
                b'[' => return self.single(Token::LBracket),
                b']' => return self.single(Token::RBracket),
                b':' => return self.single(Token::Colon),
                b',' => return self.single(Token::Comma),
                b'\'' => return self.string(),
                b'\n' => {
                    if self.cursor >= self.len() {
                        self.tok = Token::Eof;
                        return Ok(());
                    }
                    self.line += 1;
                    self.line_pos = self.cursor;
                }
                _ if self.src[self.pos..].starts_with(b"true") => {
                    self.cursor += 3;
                    self.tok = Token::Bool(true);
                    return Ok(());
                }
                _ if self.src[self.pos..].starts_with(b"false") => {
                    self.cursor += 4;
                    self.tok = Token::Bool(false);
                    return Ok(());
                }
                // Python's str.isspace() for the ASCII range.
                b' ' | b'\t' | b'\r' | 0x0b | 0x0c | 0x1c..=0x1f => {}
                _ => {
                    if ch >= 0x80 && self.non_ascii_space() {
                        continue;
                    }
                    // Show up to the next structural, white-space or quote
                    // character, as QEMU does.
                    let rest = std::str::from_utf8(&self.src[self.pos..]).unwrap_or("");
                    let stray: String = rest
                        .chars()
                        .take_while(|c| !"[]{}:,'".contains(*c) && !c.is_whitespace())
                        .collect();
                    return Err(self.error(format!("stray '{stray}'")));
                }
            }
        }
    }

    /// Skips a non-ASCII white-space character (Python's `isspace` accepts
    /// those too) starting at `pos`; false if the character is not space.
    fn non_ascii_space(&mut self) -> bool {
        let rest = std::str::from_utf8(&self.src[self.pos..]).unwrap_or("");
        match rest.chars().next() {
            Some(c) if c.is_whitespace() => {
                self.cursor = self.pos + c.len_utf8();
                true
            }
            _ => false,
        }
    }

    fn single(&mut self, tok: Token<'a>) -> Result<(), Diagnostic> {
        self.tok = tok;
        Ok(())
    }

    fn string(&mut self) -> Result<(), Diagnostic> {
        let mut value = String::new();
        let mut escaped = false;
        loop {
            let ch = self.byte(self.cursor);
            self.cursor += 1;
            if ch == b'\n' {
                return Err(self.error("missing terminating \"'\""));
            }
            if escaped {
                // Only \\ is recognized: the schema has no use for other
                // escapes.
                if ch != b'\\' {
                    let shown = self.char_at(self.cursor - 1);
                    return Err(self.error(format!("unknown escape \\{shown}")));
                }
                escaped = false;
            } else if ch == b'\\' {
                escaped = true;
                continue;
            } else if ch == b'\'' {
                self.tok = Token::Str(value);
                return Ok(());
            }
            if !(32..127).contains(&ch) {
                return Err(self.error("funny character in string"));
            }
            value.push(ch as char);
        }
    }

    fn char_at(&self, i: usize) -> String {
        std::str::from_utf8(&self.src[i..])
            .ok()
            .and_then(|s| s.chars().next())
            .map(String::from)
            .unwrap_or_else(|| format!("\\x{:02x}", self.src[i]))
    }
}

/// The 1-based column just past `prefix`, counting characters with tab stops
/// every 8 columns.
fn column(prefix: &[u8]) -> u32 {
    let mut col = 1u32;
    for &b in prefix {
        if b == b'\t' {
            // The next tab stop.  (QEMU's formula here never advances, a
            // bug; tabs are rare in schemas, and a true column is more use.)
            col = (col - 1) / 8 * 8 + 9;
        } else if b & 0xC0 != 0x80 {
            // Count characters, not UTF-8 continuation bytes.
            col += 1;
        }
    }
    col
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(src: &str) -> Result<Vec<Token<'_>>, String> {
        let mut lexer = Lexer::new(src, FileId(0));
        let mut out = Vec::new();
        loop {
            lexer.advance(false).map_err(|d| d.message)?;
            if *lexer.token() == Token::Eof {
                return Ok(out);
            }
            out.push(lexer.token().clone());
        }
    }

    #[test]
    fn punctuation_strings_and_booleans() {
        assert_eq!(
            tokens("{ 'a': [true, false] } # trailing comment").unwrap(),
            vec![
                Token::LBrace,
                Token::Str("a".into()),
                Token::Colon,
                Token::LBracket,
                Token::Bool(true),
                Token::Comma,
                Token::Bool(false),
                Token::RBracket,
                Token::RBrace,
            ]
        );
    }

    #[test]
    fn only_backslash_escapes_itself() {
        assert_eq!(tokens(r"'a\\b'").unwrap(), vec![Token::Str(r"a\b".into())]);
        assert_eq!(tokens(r"'a\nb'").unwrap_err(), r"unknown escape \n");
    }

    #[test]
    fn strings_must_be_printable_ascii_on_one_line() {
        assert_eq!(tokens("'é'").unwrap_err(), "funny character in string");
        assert_eq!(tokens("'abc\n'").unwrap_err(), "missing terminating \"'\"");
    }

    #[test]
    fn stray_text_is_shown_up_to_a_delimiter() {
        assert_eq!(tokens("{ 'a': 1234 }").unwrap_err(), "stray '1234'");
        assert_eq!(tokens("{ 'a': null}").unwrap_err(), "stray 'null'");
    }

    #[test]
    fn columns_use_tab_stops_of_eight() {
        let mut lexer = Lexer::new("\t x", FileId(0));
        let err = lexer.advance(false).unwrap_err();
        assert_eq!((err.location.line, err.location.col), (1, 10));
    }

    #[test]
    fn doc_comment_lines_are_returned() {
        let mut lexer = Lexer::new("# plain\n##\n# doc\n", FileId(0));
        lexer.advance(false).unwrap();
        assert_eq!(*lexer.token(), Token::Comment("##"));
        assert_eq!(lexer.line(), 2);
        lexer.advance(true).unwrap();
        assert_eq!(*lexer.token(), Token::Comment("# doc"));
    }
}
