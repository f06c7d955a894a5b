//! No panic on any input.
//!
//! The lexer, the parser and the checker must answer every input with an
//! error or a model: never a panic, never a hang, and never unbounded
//! recursion (deep nesting gets an error, long chains of definitions are
//! handled without overflowing the stack).
//!
//! * arbitrary bytes, bytes from the schema alphabet and streams of schema
//!   tokens go to the lexer and to the whole front end;
//! * generated schemas (random definitions built from schema keywords and
//!   names, which nearly always parse) exercise the checker;
//! * real schema files from `schemas/` are truncated and mutated (bytes
//!   deleted, inserted, replaced, punctuation swapped, slices duplicated,
//!   schema snippets spliced in, strings renamed, lines deleted, duplicated
//!   and swapped) and run through the front end with every rule set, with
//!   and without their documentation (`schemas/` is in the repository, not
//!   in the packaged crate: from an unpacked `.crate` these tests skip);
//! * generated deep nesting, deep `if` conditions, long `base` chains, long
//!   union branch chains and long include chains run on the normal test
//!   thread (2 MiB stack) to show they are safe there.
//!
//! Every error must render: a non-empty text with a `:LINE:` location for
//! each diagnostic.  Set `PROPTEST_CASES` for a longer soak.

mod common;

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use proptest::sample::Index;
use qapi_codegen::lexer::{Lexer, Token};
use qapi_codegen::source::SourceMap;
use qapi_codegen::{check, dump, parser, Diagnostics, Rules, Schema};

/// The vendored schemas directory, so `include`s of mutated text resolve
/// (in a packaged crate it does not exist and they fail: an error too).
fn schemas_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate is in a workspace")
        .join("schemas")
}

/// Checks that `diags` renders usefully: non-empty, every diagnostic with a
/// message and a `:LINE:` location, lines in the root file within `text`.
fn assert_renders(diags: &Diagnostics, text: &str) {
    let shown = diags.to_string();
    assert!(!shown.is_empty(), "an error renders as empty text");
    assert!(!diags.list.is_empty(), "an error without diagnostics");
    let root = diags.sources.files().next().map(|(id, _)| id);
    let root_lines = 1 + text.bytes().filter(|&b| b == b'\n').count() as u32;
    for d in &diags.list {
        let r = d.render(&diags.sources);
        assert!(!d.message.is_empty(), "diagnostic without a message: {r}");
        let line = d.location.line;
        assert!(line >= 1 && d.location.col >= 1, "location {line}:? in {r}");
        assert!(r.contains(&format!(":{line}:")), "no :{line}: in {r:?}");
        if Some(d.location.file) == root {
            assert!(
                line <= root_lines,
                "line {line} past the end ({root_lines}) in {r}"
            );
        }
    }
}

/// Parses and checks `text` as if it were the file `path`, with one rule
/// set; the model, when there is one, is dumped too.
fn front_end_with(path: &Path, text: &str, rules: Rules) -> Result<Schema, Box<Diagnostics>> {
    let result = parser::parse_text(path, text, rules).and_then(|p| check::check(p, rules));
    match &result {
        Ok(schema) => {
            let _ = dump::dump(schema);
        }
        Err(diags) => assert_renders(diags, text),
    }
    result
}

/// [`front_end_with`] for every rule set.
fn front_end(path: &Path, text: &str) {
    for rules in Rules::ALL {
        let _ = front_end_with(path, text, rules);
    }
}

/// Lexes `text` to the end or to the first error; the lexer must get there
/// within `text.len() + 2` tokens.
fn lex_all(text: &str, keep_comments: bool) {
    let mut sources = SourceMap::new();
    let file = sources.add(PathBuf::from("input.json"), None);
    let mut lexer = Lexer::new(text, file);
    let bound = text.len() + 2;
    for _ in 0..bound {
        match lexer.advance(keep_comments) {
            Err(d) => {
                let r = d.render(&sources);
                assert!(r.contains(&format!(":{}:", d.location.line)), "{r:?}");
                return;
            }
            Ok(()) if *lexer.token() == Token::Eof => {
                // Reading on at the end stays at the end.
                lexer.advance(keep_comments).expect("advance at Eof");
                assert_eq!(*lexer.token(), Token::Eof);
                return;
            }
            Ok(()) => assert!(lexer.location().line >= 1),
        }
    }
    panic!("the lexer did not reach Eof within {bound} tokens");
}

/// A path in the real schemas directory, for text that is not a real file:
/// its `include`s resolve against the real files.
fn scratch_path() -> PathBuf {
    schemas_dir().join("qmp/no-panic-input.json")
}

// ---------------------------------------------------------------------------
// Arbitrary input.

/// Bytes that matter to the schema syntax.
const ALPHABET: &[u8] = b"{}[]:,'#\\ \n\t\rtruefalsxyz-_.@*0123456789\xc3\xa9\x00\x7f";

/// Pieces of schema text, so a random sequence often gets past the lexer
/// and the parser into the checker.
#[rustfmt::skip]
const SNIPPETS: &[&str] = &[
    "{ ",
    " }",
    "[",
    "]",
    ": ",
    ", ",
    "\n",
    "true",
    "false",
    "'struct'",
    "'union'",
    "'enum'",
    "'alternate'",
    "'command'",
    "'event'",
    "'data'",
    "'base'",
    "'discriminator'",
    "'if'",
    "'features'",
    "'returns'",
    "'boxed'",
    "'gen'",
    "'success-response'",
    "'allow-oob'",
    "'coroutine'",
    "'prefix'",
    "'type'",
    "'name'",
    "'include'",
    "'pragma'",
    "'doc-required'",
    "'not'",
    "'all'",
    "'any'",
    "'Sa'",
    "'Tb'",
    "'Uc'",
    "'Ed'",
    "'a'",
    "'b'",
    "'*a'",
    "'int'",
    "'str'",
    "'any'",
    "'null'",
    "'bool'",
    "'size'",
    "'deprecated'",
    "'unstable'",
    "'CONFIG_X'",
    "'sockets.json'",
    "'common.json'",
    "'no-such.json'",
    "'no-panic-input.json'",
    "['int']",
    "['Sa']",
    "##\n",
    "# @Sa:\n",
    "# @a: text\n",
    "#\n",
    "# Features:\n",
    "# @deprecated: x\n",
    "# Returns: x\n",
    "# Since: 1.0\n",
    "# plain comment\n",
    "{ 'enum': 'Ed', 'data': ['a', 'b'] }\n",
    "{ 'struct': 'Sa', 'data': { 'a': 'int' } }\n",
    "{ 'struct': 'Tb', 'base': 'Sa', 'data': {} }\n",
    "{ 'union': 'Uc', 'base': { 'a': 'Ed' }, 'discriminator': 'a', 'data': { 'a': 'Tb' } }\n",
    "{ 'command': 'c', 'data': 'Sa', 'returns': 'Sa' }\n",
];

/// One byte: any value, or one of the schema alphabet.
fn byte() -> impl Strategy<Value = u8> {
    prop_oneof![any::<u8>(), prop::sample::select(ALPHABET)]
}

/// A stream of schema snippets and stray bytes.
fn token_soup() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            4 => prop::sample::select(SNIPPETS).prop_map(str::to_owned),
            1 => byte().prop_map(|b| String::from_utf8_lossy(&[b]).into_owned()),
        ],
        0..80,
    )
    .prop_map(|parts| parts.concat())
}

/// `default` cases, or `PROPTEST_CASES` when set (for a longer soak).
fn cases(default: u32) -> ProptestConfig {
    let n = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    ProptestConfig::with_cases(n)
}

/// Names and keywords for generated schemas: valid and invalid names,
/// built-in types, keys, feature names, conditions.
#[rustfmt::skip]
const NAMES: &[&str] = &[
    "Sa", "Tb", "Uc", "Ed", "Alt", "EVT", "cmd", "c", "a", "b", "*a", "*b", "x-a",
    "int", "str", "any", "null", "bool", "number", "size", "uint8", "int64",
    "data", "type", "if", "features", "base", "discriminator", "name", "prefix",
    "deprecated", "unstable", "CONFIG_X", "q_obj_Sa-arg", "Sa-b", "__org.qemu_x",
    "123", "", "a_b", "ABC", "SaList", "has-a", "u", "kind", "*Sa",
];

/// Keys of definitions and members.
#[rustfmt::skip]
const KEYS: &[&str] = &[
    "data", "base", "discriminator", "if", "features", "returns", "boxed",
    "gen", "success-response", "allow-oob", "allow-preconfig", "coroutine",
    "prefix", "type", "name", "not", "all", "any", "a", "b", "*a", "x-a",
];

/// The definition keywords.
#[rustfmt::skip]
const METAS: &[&str] = &[
    "struct", "union", "enum", "alternate", "command", "event", "include", "pragma",
];

/// A schema value built from [`NAMES`] and [`KEYS`], a few levels deep.
fn value() -> BoxedStrategy<String> {
    let leaf = prop_oneof![
        6 => prop::sample::select(NAMES).prop_map(|n| format!("'{n}'")),
        1 => any::<bool>().prop_map(|b| b.to_string()),
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4)
                .prop_map(|items| format!("[ {} ]", items.join(", "))),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..4)
                .prop_map(|members| object(&members)),
        ]
    })
    .boxed()
}

/// `{ 'KEY': VALUE, ... }`, duplicate keys dropped.
fn object(members: &[(&str, String)]) -> String {
    let mut seen = Vec::new();
    let mut parts = Vec::new();
    for (k, v) in members {
        if !seen.contains(k) {
            seen.push(*k);
            parts.push(format!("'{k}': {v}"));
        }
    }
    format!("{{ {} }}", parts.join(", "))
}

/// A definition with random keys, mostly named as its kind requires,
/// sometimes after a documentation block.
fn definition() -> impl Strategy<Value = String> {
    let meta_and_name = prop_oneof![
        8 => (
            prop::sample::select(&["struct", "union", "enum", "alternate"][..]),
            prop::sample::select(&["Sa", "Tb", "Uc", "Ed", "Alt", "SaList"][..]),
        ),
        2 => (Just("command"), prop::sample::select(&["cmd", "c", "x-c"][..])),
        2 => (Just("event"), prop::sample::select(&["EVT", "EV2"][..])),
        1 => (prop::sample::select(METAS), prop::sample::select(NAMES)),
    ];
    (
        meta_and_name,
        prop::collection::vec((prop::sample::select(KEYS), value()), 0..5),
        0..3u8,
    )
        .prop_map(|((meta, name), rest, doc)| {
            let mut members = vec![(meta, format!("'{name}'"))];
            members.extend(rest);
            let doc = match doc {
                0 => String::new(),
                1 => format!("##\n# @{name}:\n#\n# Text.\n#\n# @a: A.\n##\n"),
                _ => format!(
                    "##\n# @{name}:\n#\n# Features:\n#\n# @deprecated: x\n#\n# Since: 1.0\n##\n"
                ),
            };
            format!("{doc}{}\n", object(&members))
        })
}

/// A sequence of generated definitions: it nearly always parses, so the
/// checker sees it.
fn generated_schema() -> impl Strategy<Value = String> {
    prop::collection::vec(definition(), 0..10).prop_map(|defs| defs.concat())
}

proptest! {
    #![proptest_config(cases(1024))]

    #[test]
    fn lexer_terminates_on_arbitrary_bytes(
        bytes in prop::collection::vec(byte(), 0..400),
        keep_comments: bool,
    ) {
        lex_all(&String::from_utf8_lossy(&bytes), keep_comments);
    }

    #[test]
    fn lexer_terminates_on_token_soup(text in token_soup(), keep_comments: bool) {
        lex_all(&text, keep_comments);
    }

    #[test]
    fn front_end_on_arbitrary_bytes(bytes in prop::collection::vec(byte(), 0..400)) {
        front_end(&scratch_path(), &String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn front_end_on_token_soup(text in token_soup()) {
        front_end(&scratch_path(), &text);
    }

    #[test]
    fn front_end_on_generated_schemas(text in generated_schema()) {
        front_end(&scratch_path(), &text);
    }
}

// ---------------------------------------------------------------------------
// Mutated real schemas.

/// Real schema files, under `schemas/`: a file that checks on its own, one
/// whose `include` resolves on disk, the guest agent's root with its
/// pragmas and documentation rules.  QMP's root, which includes all the
/// rest, is `qmp/qapi-schema.json`.
const REAL: [&str; 5] = [
    "qmp/job.json",
    "qmp/sockets.json",
    "qmp/char.json",
    "qmp/run-state.json",
    "qga/qapi-schema.json",
];

/// A real schema file: its name under `schemas/`, its path and its text.
struct RealSchema {
    name: &'static str,
    path: PathBuf,
    text: String,
}

/// Reads `name` from the repository's `schemas/`, or returns `None` after
/// saying why the test is skipped (a packaged crate has no `schemas/`).
fn real_schema(name: &'static str) -> Option<RealSchema> {
    let path = common::repository_file(&format!("schemas/{name}"))?;
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("can't read {}: {e}", path.display()));
    Some(RealSchema { name, path, text })
}

/// Every file of [`REAL`], or `None` as for [`real_schema`].
fn real_schemas() -> Option<Vec<RealSchema>> {
    REAL.into_iter().map(real_schema).collect()
}

const PUNCTUATION: &[u8] = b"{}[]:,'#";

/// One edit of schema text.
#[derive(Debug, Clone)]
enum Mutation {
    /// Cut the text at a position.
    Truncate(Index),
    /// Delete up to 16 bytes.
    Delete(Index, usize),
    /// Insert bytes.
    Insert(Index, Vec<u8>),
    /// Replace one byte.
    Replace(Index, u8),
    /// Replace one punctuation character with another.
    SwapPunctuation(Index, u8),
    /// Copy a slice of up to 4 KiB to another position.
    Duplicate(Index, usize, Index),
    /// Insert a schema snippet.
    Splice(Index, &'static str),
    /// Replace the contents of a quoted string with a name or keyword.
    Rename(Index, &'static str),
    /// Delete a line.
    DeleteLine(Index),
    /// Copy a line before another.
    DuplicateLine(Index, Index),
    /// Exchange two lines.
    SwapLines(Index, Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        1 => any::<Index>().prop_map(Mutation::Truncate),
        3 => (any::<Index>(), 1..16usize).prop_map(|(i, n)| Mutation::Delete(i, n)),
        2 => (any::<Index>(), prop::collection::vec(byte(), 1..8))
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
        3 => (any::<Index>(), byte()).prop_map(|(i, b)| Mutation::Replace(i, b)),
        3 => (any::<Index>(), prop::sample::select(PUNCTUATION))
            .prop_map(|(i, b)| Mutation::SwapPunctuation(i, b)),
        1 => (any::<Index>(), 1..4096usize, any::<Index>())
            .prop_map(|(i, n, j)| Mutation::Duplicate(i, n, j)),
        2 => (any::<Index>(), prop::sample::select(SNIPPETS))
            .prop_map(|(i, s)| Mutation::Splice(i, s)),
        6 => (any::<Index>(), prop::sample::select(NAMES))
            .prop_map(|(i, s)| Mutation::Rename(i, s)),
        2 => any::<Index>().prop_map(Mutation::DeleteLine),
        2 => (any::<Index>(), any::<Index>()).prop_map(|(i, j)| Mutation::DuplicateLine(i, j)),
        2 => (any::<Index>(), any::<Index>()).prop_map(|(i, j)| Mutation::SwapLines(i, j)),
    ]
}

/// Edits that mostly keep the text parseable, so the checker sees them.
fn structural_mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        6 => (any::<Index>(), prop::sample::select(NAMES))
            .prop_map(|(i, s)| Mutation::Rename(i, s)),
        2 => any::<Index>().prop_map(Mutation::DeleteLine),
        2 => (any::<Index>(), any::<Index>()).prop_map(|(i, j)| Mutation::DuplicateLine(i, j)),
        2 => (any::<Index>(), any::<Index>()).prop_map(|(i, j)| Mutation::SwapLines(i, j)),
    ]
}

/// A position in `0..=len`.
fn pos(i: &Index, len: usize) -> usize {
    i.index(len + 1)
}

fn apply(text: &mut Vec<u8>, m: &Mutation) {
    let len = text.len();
    match m {
        Mutation::Truncate(i) => text.truncate(pos(i, len)),
        Mutation::Delete(i, n) => {
            let at = pos(i, len);
            text.drain(at..(at + n).min(len));
        }
        Mutation::Insert(i, bytes) => {
            let at = pos(i, len);
            text.splice(at..at, bytes.iter().copied());
        }
        Mutation::Replace(i, b) => {
            if len > 0 {
                text[i.index(len)] = *b;
            }
        }
        Mutation::SwapPunctuation(i, b) => {
            let marks: Vec<usize> = (0..len)
                .filter(|&k| PUNCTUATION.contains(&text[k]))
                .collect();
            if !marks.is_empty() {
                text[marks[i.index(marks.len())]] = *b;
            }
        }
        Mutation::Duplicate(i, n, j) => {
            let from = pos(i, len);
            let slice = text[from..(from + n).min(len)].to_vec();
            let to = pos(j, len);
            text.splice(to..to, slice);
        }
        Mutation::Splice(i, s) => {
            let at = pos(i, len);
            text.splice(at..at, s.bytes());
        }
        Mutation::Rename(i, name) => {
            let strings = quoted_strings(text);
            if !strings.is_empty() {
                let (start, end) = strings[i.index(strings.len())];
                text.splice(start..end, name.bytes());
            }
        }
        Mutation::DeleteLine(i) => {
            let mut lines = split_lines(text);
            if let Some(k) = code_line(&lines, i) {
                lines.remove(k);
                *text = lines.concat();
            }
        }
        Mutation::DuplicateLine(i, j) => {
            let mut lines = split_lines(text);
            if let (Some(k), Some(to)) = (code_line(&lines, i), code_line(&lines, j)) {
                let line = lines[k].clone();
                lines.insert(to, line);
                *text = lines.concat();
            }
        }
        Mutation::SwapLines(i, j) => {
            let mut lines = split_lines(text);
            if let (Some(a), Some(b)) = (code_line(&lines, i), code_line(&lines, j)) {
                lines.swap(a, b);
                *text = lines.concat();
            }
        }
    }
}

/// The lines of `text`, each with its newline; at least one.
fn split_lines(text: &[u8]) -> Vec<Vec<u8>> {
    let mut lines: Vec<Vec<u8>> = text
        .split_inclusive(|&b| b == b'\n')
        .map(<[u8]>::to_vec)
        .collect();
    if lines.is_empty() {
        lines.push(Vec::new());
    }
    lines
}

/// The index of a line that is not a comment, if any (edits of comment lines
/// mostly break the documentation, which the other edits reach already).
fn code_line(lines: &[Vec<u8>], i: &Index) -> Option<usize> {
    let code: Vec<usize> = (0..lines.len())
        .filter(|&k| lines[k].iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'#'))
        .collect();
    (!code.is_empty()).then(|| code[i.index(code.len())])
}

/// The contents (between the quotes) of the quoted strings outside
/// comments: pairs of quotes on one line.
fn quoted_strings(text: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut open = None;
    let mut in_comment = false;
    for (k, &b) in text.iter().enumerate() {
        match b {
            b'\n' => {
                open = None;
                in_comment = false;
            }
            b'#' if open.is_none() => in_comment = true,
            b'\'' if !in_comment => match open.take() {
                Some(start) => out.push((start, k)),
                None => open = Some(k + 1),
            },
            _ => {}
        }
    }
    out
}

fn mutated(original: &str, mutations: &[Mutation]) -> String {
    let mut text = original.as_bytes().to_vec();
    for m in mutations {
        apply(&mut text, m);
    }
    String::from_utf8_lossy(&text).into_owned()
}

// The files are read before the property runs, so that a packaged crate
// skips once (hence `proptest!`'s closure form inside a plain test).

#[test]
fn mutated_real_schemas() {
    let Some(real) = real_schemas() else {
        return;
    };
    proptest!(
        cases(512),
        |(file in 0..real.len(), mutations in prop::collection::vec(mutation(), 1..5))| {
            let real = &real[file];
            front_end(&real.path, &mutated(&real.text, &mutations));
        }
    );
}

/// The same without the documentation, so that every edit lands in the
/// definitions and more of them reach the checker.
#[test]
fn mutated_real_schemas_without_docs() {
    let Some(real) = real_schemas() else {
        return;
    };
    proptest!(
        cases(512),
        |(file in 0..real.len(), mutations in prop::collection::vec(structural_mutation(), 1..4))| {
            let real = &real[file];
            let code = without_docs(&real.text);
            front_end(&real.path, &mutated(&code, &mutations));
        }
    );
}

/// `text` without its comment lines, and with documentation not required.
fn without_docs(text: &str) -> String {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .map(|l| l.replace("'doc-required': true", "'doc-required': false") + "\n")
        .collect()
}

#[test]
fn mutated_qmp_root() {
    let Some(root) = real_schema("qmp/qapi-schema.json") else {
        return;
    };
    // Each case reads and checks all of QMP, four times over.
    proptest!(
        cases(16),
        |(mutations in prop::collection::vec(mutation(), 1..4))| {
            front_end(&root.path, &mutated(&root.text, &mutations));
        }
    );
}

#[test]
fn unmutated_real_schemas_run() {
    let Some(real) = real_schemas() else {
        return;
    };
    let Some(root) = real_schema("qmp/qapi-schema.json") else {
        return;
    };
    // The baseline the mutations start from goes through cleanly too.
    for RealSchema { name, path, text } in &real {
        front_end(path, text);
        let code = without_docs(text);
        let result = front_end_with(path, &code, Rules::default());
        if name.contains("qga") || name.contains("job") {
            assert!(
                result.is_ok(),
                "{name} checks without docs: {}",
                result.unwrap_err()
            );
        }
    }
    let schema = front_end_with(&root.path, &root.text, Rules::default());
    assert!(schema.is_ok(), "QMP checks: {}", schema.unwrap_err());
}

#[test]
fn every_truncation_of_a_small_schema() {
    let Some(RealSchema { path, text, .. }) = real_schema(REAL[0]) else {
        return;
    };
    let bytes = text.as_bytes();
    // Every 7th cut (all of them would take too long in debug builds).
    for cut in (0..=bytes.len()).step_by(7) {
        let text = String::from_utf8_lossy(&bytes[..cut]);
        let _ = front_end_with(&path, &text, Rules::default());
    }
}

// ---------------------------------------------------------------------------
// Deep nesting and long chains, on the normal test thread's stack.

const DEPTHS: &[usize] = &[1, 10, 32, 63, 64, 65, 100, 1000, 100_000];

fn nested(open: &str, inner: &str, close: &str, depth: usize) -> String {
    let mut s = String::with_capacity((open.len() + close.len()) * depth + inner.len());
    for _ in 0..depth {
        s.push_str(open);
    }
    s.push_str(inner);
    for _ in 0..depth {
        s.push_str(close);
    }
    s
}

/// Runs `text` through every rule set from `oldest` on; true when every one
/// accepted it.
fn accepted_since(oldest: Rules, text: &str) -> bool {
    let mut all = true;
    for rules in Rules::ALL {
        let result = front_end_with(&scratch_path(), text, rules);
        if rules >= oldest {
            all &= result.is_ok();
        }
    }
    all
}

/// Runs `text` through every rule set; true when every one accepted it.
fn accepted(text: &str) -> bool {
    accepted_since(Rules::V5_2, text)
}

#[test]
fn deep_arrays_and_objects() {
    for &depth in DEPTHS {
        // Balanced, unterminated and inside a definition.
        let arrays = nested("[", "'x'", "]", depth);
        assert!(!accepted(&arrays), "a top-level array is rejected");
        assert!(!accepted(&"[".repeat(depth)));
        assert!(!accepted(&"{ 'a': ".repeat(depth)));
        let objects = nested("{ 'a': ", "'x'", " }", depth);
        assert!(!accepted(&objects));
        let in_struct = format!(
            "{{ 'struct': 'Sa', 'data': {} }}",
            nested("{ 'a': ", "'int'", " }", depth)
        );
        let _ = accepted(&in_struct);
        let in_array = format!(
            "{{ 'enum': 'Ed', 'data': {} }}",
            nested("[", "'a'", "]", depth)
        );
        if depth > 1 {
            assert!(!accepted(&in_array), "enum values are strings");
        }
    }
}

#[test]
fn deep_if_conditions() {
    for &depth in DEPTHS {
        let not = nested("{ 'not': ", "'CONFIG_X'", " }", depth);
        let schema = format!("{{ 'struct': 'Sa', 'data': {{ 'a': 'int' }}, 'if': {not} }}");
        // 'not' arrived after 5.2; the parser limits nesting to 64 levels.
        let ok = accepted_since(Rules::V7_2, &schema);
        if depth <= 20 {
            assert!(ok, "'if' nested {depth} deep is valid");
        }
        let all = nested("{ 'all': [ 'A', ", "'CONFIG_X'", " ] }", depth);
        let member =
            format!("{{ 'struct': 'Sa', 'data': {{ 'a': {{ 'type': 'int', 'if': {all} }} }} }}");
        let _ = accepted(&member);
        let any = nested("{ 'any': [ ", "'B'", ", 'C' ] }", depth);
        let _ = accepted(&format!(
            "{{ 'enum': 'Ed', 'data': [ {{ 'name': 'a', 'if': {any} }} ] }}"
        ));
    }
}

/// `n` structs, each with the next (`reverse`) or the previous as its base,
/// and a command and an event taking the one with all the members.
fn base_chain(n: usize, reverse: bool, cycle: bool) -> String {
    let mut s = String::new();
    for i in 0..n {
        let base = match (reverse, i) {
            (true, i) if i + 1 < n => format!(", 'base': 'Link{}'", i + 1),
            (true, _) if cycle => ", 'base': 'Link0'".to_owned(),
            (false, 0) if cycle => format!(", 'base': 'Link{}'", n - 1),
            (false, 0) | (true, _) => String::new(),
            (false, i) => format!(", 'base': 'Link{}'", i - 1),
        };
        s.push_str(&format!(
            "{{ 'struct': 'Link{i}', 'data': {{ 'm{i}': 'int' }}{base} }}\n"
        ));
    }
    let all = if reverse { 0 } else { n - 1 };
    s.push_str(&format!(
        "{{ 'command': 'cmd', 'data': 'Link{all}', 'returns': 'Link{all}' }}\n"
    ));
    s.push_str(&format!("{{ 'event': 'EVT', 'data': 'Link{all}' }}\n"));
    s
}

const CHAIN: usize = 5000;

#[test]
fn base_chain_within_the_nesting_bound_is_accepted_in_either_order() {
    assert!(accepted(&base_chain(90, false, false)));
    assert!(accepted(&base_chain(90, true, false)));
}

#[test]
fn long_base_chain_in_order_is_rejected_quickly() {
    // Once took ~140 s in a debug build: the clash walk was cubic in the
    // chain length.  The nesting bound now applies whatever the order.
    assert!(!accepted(&base_chain(CHAIN, false, false)));
}

#[test]
fn long_base_chain_in_reverse_order_is_rejected() {
    assert!(!accepted(&base_chain(CHAIN, true, false)));
}

#[test]
fn long_base_cycle() {
    assert!(!accepted(&base_chain(CHAIN, false, true)));
    assert!(!accepted(&base_chain(CHAIN, true, true)));
}

/// `n` unions, each with a branch of the next union type, ending in a
/// struct; each has its own discriminator so nothing clashes.
fn union_chain(n: usize) -> String {
    let mut s = String::from("{ 'enum': 'Ed', 'data': ['a', 'b'] }\n");
    for i in 0..n {
        s.push_str(&format!(
            "{{ 'union': 'Union{i}', 'base': {{ 'k{i}': 'Ed' }}, 'discriminator': 'k{i}', \
             'data': {{ 'a': 'Union{}' }} }}\n",
            i + 1
        ));
    }
    s.push_str(&format!(
        "{{ 'struct': 'Union{n}', 'data': {{ 'x': 'int' }} }}\n"
    ));
    s.push_str("{ 'command': 'cmd', 'data': 'Union0', 'boxed': true }\n");
    s
}

#[test]
fn long_union_branch_chain() {
    let _ = accepted(&union_chain(CHAIN));
}

/// `n` files, each including the next; the last includes `last_includes`
/// (a loop) or nothing.  Returns the root's path.
fn include_chain(name: &str, n: usize, last_includes: Option<&str>) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    for i in 1..=n {
        let next = match (i < n, last_includes) {
            (true, _) => format!("{{ 'include': 'f{}.json' }}\n", i + 1),
            (false, Some(f)) => format!("{{ 'include': '{f}' }}\n"),
            (false, None) => String::new(),
        };
        let body = format!("{next}{{ 'struct': 'Link{i}', 'data': {{ 'm': 'int' }} }}\n");
        std::fs::write(dir.join(format!("f{i}.json")), body).expect("write");
    }
    dir.join("f0.json")
}

#[test]
fn include_chain_and_loop() {
    let root = include_chain("no_panic_include_30", 30, None);
    let result = front_end_with(&root, "{ 'include': 'f1.json' }\n", Rules::default());
    assert!(result.is_ok(), "{}", result.unwrap_err());
    let root = include_chain("no_panic_include_loop_30", 30, Some("f1.json"));
    let result = front_end_with(&root, "{ 'include': 'f1.json' }\n", Rules::default());
    assert!(result.is_err(), "the include loop is reported");
}

#[test]
fn long_include_chain_is_rejected_without_overflowing_the_stack() {
    // Once overflowed the 2 MiB stack from 285 files: include depth is now
    // bounded.
    let root = include_chain("no_panic_include_1000", 1000, Some("f1.json"));
    let result = front_end_with(&root, "{ 'include': 'f1.json' }\n", Rules::default());
    assert!(result.is_err(), "the include loop or the depth is reported");
}
