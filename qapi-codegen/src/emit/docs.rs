//! Schema documentation to rustdoc Markdown.
//!
//! QEMU writes its documentation in reStructuredText.  The conversion keeps
//! what rustdoc can show and makes sure nothing in it is taken for Rust:
//! literal blocks and QMP examples become fenced `text`/`json` blocks (never
//! compiled as doctests), indentation outside them is dropped (Markdown
//! would make an indented block a doctest), `[`, `]`, `<` and `>` are
//! escaped (they would be links or HTML), bare URLs are wrapped, and
//! `@member` references become code spans.

use std::collections::HashMap;

use crate::doc::{dedent, indent_of, DocBlock, Section, SectionKind};

/// Where `@name` references link: QAPI name → rustdoc path.  Names not in
/// it (members, names of other schemas) stay code spans.
pub type Links = HashMap<String, String>;
use crate::model::Condition;

/// Converts one section's rST text to Markdown.
pub fn markdown(text: &str, links: &Links) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let trimmed = line.trim();
        let indent = indent_of(line);
        if let Some(directive) = trimmed.strip_prefix(".. ") {
            let (name, arg) = match directive.split_once("::") {
                Some((name, arg)) => (name.trim(), arg.trim()),
                None => (directive.trim(), ""),
            };
            i += 1;
            // Options (`:title: …`) come first.
            let mut title = None;
            while i < lines.len()
                && indent_of(lines[i]) > indent
                && lines[i].trim().starts_with(':')
            {
                if let Some(t) = lines[i].trim().strip_prefix(":title:") {
                    title = Some(t.trim().to_owned());
                }
                i += 1;
            }
            let start = i;
            while i < lines.len() && (lines[i].trim().is_empty() || indent_of(lines[i]) > indent) {
                i += 1;
            }
            let body = dedent(&lines[start..i]);
            push_blank(&mut out);
            match name {
                "qmp-example" => {
                    out.push(match title {
                        Some(t) => format!("**Example: {}**", inline(&t, links)),
                        None => "**Example:**".to_owned(),
                    });
                    out.push(String::new());
                    fence(&mut out, "json", &body);
                }
                "code-block" | "code" => fence(&mut out, "text", &body),
                "table" => {
                    if !arg.is_empty() {
                        out.push(format!("**{}**", inline(arg, links)));
                        out.push(String::new());
                    }
                    match simple_table(&body, links) {
                        Some(table) => out.push(table),
                        None => fence(&mut out, "text", &body),
                    }
                }
                "note" | "warning" | "caution" | "important" | "admonition" | "hint" | "tip" => {
                    let label = match name {
                        "admonition" if !arg.is_empty() => arg.to_owned(),
                        "admonition" | "note" => "Note".to_owned(),
                        other => {
                            let mut c = other.chars();
                            c.next()
                                .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                                .unwrap_or_default()
                        }
                    };
                    out.push(format!("**{}:**", inline(&label, links)));
                    out.push(String::new());
                    // `.. note:: First line` starts the body on the
                    // directive's own line; only `admonition` takes a title
                    // there.
                    let body = if name != "admonition" && !arg.is_empty() {
                        // A blank line after the directive starts a new
                        // paragraph; otherwise the first one goes on.
                        let gap = if lines.get(start).is_some_and(|l| l.trim().is_empty()) {
                            "\n\n"
                        } else {
                            "\n"
                        };
                        format!("{arg}{gap}{body}")
                    } else {
                        body
                    };
                    out.push(markdown(&body, links));
                }
                _ => out.push(markdown(&body, links)),
            }
            push_blank(&mut out);
            continue;
        }
        if trimmed.ends_with("::") {
            // A literal block follows: "text::" shows as "text:".
            let head = trimmed.trim_end_matches("::").trim_end();
            if !head.is_empty() {
                out.push(format!("{}:", inline(head, links)));
            }
            i += 1;
            let start = i;
            while i < lines.len() && (lines[i].trim().is_empty() || indent_of(lines[i]) > indent) {
                i += 1;
            }
            let body = dedent(&lines[start..i]);
            if !body.is_empty() {
                push_blank(&mut out);
                fence(&mut out, "text", &body);
                push_blank(&mut out);
            }
            continue;
        }
        out.push(inline(trimmed, links));
        i += 1;
    }
    while out.last().is_some_and(|l| l.is_empty()) {
        out.pop();
    }
    let mut text = out.join("\n");
    while text.contains("\n\n\n") {
        text = text.replace("\n\n\n", "\n\n");
    }
    text.trim_start_matches('\n').to_owned()
}

/// An rST simple table (columns bounded by `=` borders, the header above
/// the second border) as a Markdown table; `None` if `text` is not one.
fn simple_table(text: &str, links: &Links) -> Option<String> {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let is_border = |l: &str| l.contains('=') && l.chars().all(|c| c == '=' || c == ' ');
    let border = *lines.first().filter(|l| is_border(l))?;
    // Column starts: where a run of `=` begins.
    let mut starts = Vec::new();
    let mut previous = ' ';
    for (i, c) in border.char_indices() {
        if c == '=' && previous == ' ' {
            starts.push(i);
        }
        previous = c;
    }
    let cells = |line: &str| -> Vec<String> {
        starts
            .iter()
            .enumerate()
            .map(|(n, &start)| {
                let end = starts.get(n + 1).copied().unwrap_or(line.len());
                let cell = line
                    .get(start.min(line.len())..end.min(line.len()))
                    .unwrap_or("");
                inline(cell.trim(), links).replace('|', "\\|")
            })
            .collect()
    };
    let borders: Vec<usize> = (0..lines.len()).filter(|&i| is_border(lines[i])).collect();
    if borders.len() != 3 || borders[0] != 0 || borders[2] != lines.len() - 1 {
        return None;
    }
    let row = |cells: Vec<String>| format!("| {} |", cells.join(" | "));
    let mut out = Vec::new();
    for line in &lines[1..borders[1]] {
        out.push(row(cells(line)));
    }
    out.push(row(vec!["---".to_owned(); starts.len()]));
    for line in &lines[borders[1] + 1..borders[2]] {
        out.push(row(cells(line)));
    }
    Some(out.join("\n"))
}

fn push_blank(out: &mut Vec<String>) {
    if out.last().is_some_and(|l| !l.is_empty()) {
        out.push(String::new());
    }
}

fn fence(out: &mut Vec<String>, lang: &str, body: &str) {
    out.push(format!("```{lang}"));
    out.push(body.to_owned());
    out.push("```".to_owned());
}

/// Inline markup: ``literal`` and roles to code spans; `name` (QEMU's
/// default role, a cross-reference) and `@name` to a link where the target
/// is generated, else a code span; escapes outside code spans.
fn inline(text: &str, links: &Links) -> String {
    const LITERAL: char = '\u{1}';
    let text = text.replace("``", &LITERAL.to_string());
    let text = strip_roles(&text);
    let mut out = String::with_capacity(text.len() + 8);
    let references: Vec<&str> = text.split('`').collect();
    for (i, part) in references.iter().enumerate() {
        let unclosed = i == references.len() - 1 && i % 2 == 1;
        if i % 2 == 1 && !unclosed {
            let name = part.replace(LITERAL, "`");
            // A role's `Title <target>` shows its title.
            let name = match name.strip_suffix('>').and_then(|n| n.rsplit_once(" <")) {
                Some((title, _target)) => title.to_owned(),
                None => name,
            };
            match links.get(name.as_str()) {
                Some(path) => out.push_str(&format!("[`{name}`]({path})")),
                None => out.push_str(&format!("`{name}`")),
            }
            continue;
        }
        if unclosed {
            // An unbalanced backtick would swallow the rest of the paragraph.
            out.push_str("\\`");
        }
        let literals: Vec<&str> = part.split(LITERAL).collect();
        for (j, piece) in literals.iter().enumerate() {
            if j % 2 == 1 && j < literals.len() - 1 {
                out.push('`');
                out.push_str(piece);
                out.push('`');
            } else {
                if j % 2 == 1 {
                    out.push_str("\\`\\`");
                }
                out.push_str(&escape_plain(piece, links));
            }
        }
    }
    out
}

/// `:ref:`text`` and similar rST roles: the text alone, as code.
fn strip_roles(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find(":`").and_then(|colon| {
        let before = &rest[..colon];
        // The role starts after the last character that cannot be in one
        // (or at the start of the text).
        let role_start = before
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == ':' || c == '-'))
            .map_or(0, |i| i + 1);
        let role = &before[role_start..];
        (role.starts_with(':') && role.len() > 1).then_some((role_start, colon + 1))
    }) {
        let (role_start, tick) = start;
        out.push_str(&rest[..role_start]);
        rest = &rest[tick..];
    }
    out.push_str(rest);
    out
}

fn escape_plain(text: &str, links: &Links) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        // Bare URLs are wrapped so rustdoc links them without a warning.
        if rest.starts_with("http://") || rest.starts_with("https://") {
            let end = rest
                .find(|c: char| c.is_whitespace() || c == '>' || c == ')' || c == '`')
                .unwrap_or(rest.len());
            let url = rest[..end].trim_end_matches(['.', ',', ';']);
            out.push('<');
            out.push_str(url);
            out.push('>');
            rest = &rest[url.len()..];
            continue;
        }
        let c = rest.chars().next().expect("not empty");
        match c {
            '@' if !out.ends_with(|p: char| p.is_ascii_alphanumeric()) => {
                let name_len = rest[1..]
                    .find(|c: char| {
                        !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
                    })
                    .unwrap_or(rest.len() - 1);
                let name = rest[1..1 + name_len].trim_end_matches('.');
                if name.is_empty() {
                    out.push('@');
                    rest = &rest[1..];
                } else {
                    match links.get(name) {
                        Some(path) => out.push_str(&format!("[`{name}`]({path})")),
                        None => {
                            out.push('`');
                            out.push_str(name);
                            out.push('`');
                        }
                    }
                    rest = &rest[1 + name.len()..];
                }
                continue;
            }
            '[' | ']' | '<' | '>' | '\\' | '|' => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// How a condition reads in the docs.
pub fn describe_condition(cond: &Condition) -> String {
    match cond {
        Condition::Name(n) => format!("`{n}`"),
        Condition::Not(c) => format!("not {}", describe_condition(c)),
        Condition::All(list) => join(list, " and "),
        Condition::Any(list) => join(list, " or "),
    }
}

fn join(list: &[Condition], sep: &str) -> String {
    list.iter()
        .map(|c| match c {
            Condition::All(_) | Condition::Any(_) => format!("({})", describe_condition(c)),
            _ => describe_condition(c),
        })
        .collect::<Vec<_>>()
        .join(sep)
}

/// A free-form documentation block (a module's introduction, a section
/// heading) as Markdown.  Its headings become Markdown headings: rST's
/// underlined (or over- and underlined) titles, `=` first, then `-`, then
/// any other character, and the older QAPI form `= Title` / `== Title`.
pub fn free_form(doc: &DocBlock, links: &Links) -> String {
    let text: String = doc
        .sections
        .iter()
        .map(|s| s.text.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    let lines: Vec<&str> = text.lines().collect();
    let mut parts: Vec<String> = Vec::new();
    let mut prose: Vec<&str> = Vec::new();
    let flush = |prose: &mut Vec<&str>, parts: &mut Vec<String>| {
        let md = markdown(&prose.join("\n"), links);
        if !md.is_empty() {
            parts.push(md);
        }
        prose.clear();
    };
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let next = lines.get(i + 1).copied();
        let heading = if is_adornment(line) && next.is_some() && lines.get(i + 2) == Some(&line) {
            // Over- and underlined.
            let title = next.unwrap_or_default().trim();
            i += 3;
            Some((1, title))
        } else if !line.trim().is_empty() && next.is_some_and(is_adornment) {
            let level = match next.and_then(|n| n.trim().chars().next()) {
                Some('=') => 1,
                Some('-') => 2,
                _ => 3,
            };
            i += 2;
            Some((level, line.trim()))
        } else if let Some(title) = old_heading(line) {
            i += 1;
            Some(title)
        } else {
            None
        };
        match heading {
            Some((level, title)) => {
                flush(&mut prose, &mut parts);
                parts.push(format!("{} {}", "#".repeat(level), inline(title, links)));
            }
            None => {
                prose.push(line);
                i += 1;
            }
        }
    }
    flush(&mut prose, &mut parts);
    parts.join("\n\n")
}

/// An rST title adornment: one punctuation character, repeated.
fn is_adornment(line: &str) -> bool {
    let line = line.trim_end();
    let mut chars = line.chars();
    match chars.next() {
        Some(c) if "=-~^*\"#+'`:._".contains(c) => line.len() >= 3 && chars.all(|d| d == c),
        _ => false,
    }
}

/// QAPI's older heading form, `= Title` (level 1), `== Title` (level 2).
fn old_heading(line: &str) -> Option<(usize, &str)> {
    let level = line.chars().take_while(|&c| c == '=').count();
    let title = line[level..].strip_prefix(' ')?;
    (level > 0 && !title.trim().is_empty()).then_some((level, title.trim()))
}

/// The documentation of a definition, from its block: the body, then the
/// other sections in order (members and features are documented where they
/// are declared).
pub fn definition(doc: Option<&DocBlock>, links: &Links) -> Vec<String> {
    let Some(doc) = doc else {
        return Vec::new();
    };
    let mut parts = Vec::new();
    let body = markdown(&doc.body().text, links);
    if !body.is_empty() {
        parts.push(body);
    }
    for section in doc.other_sections().filter(|s| s.written) {
        if let Some(text) = section_text(section, links) {
            parts.push(text);
        }
    }
    parts
}

fn section_text(section: &Section, links: &Links) -> Option<String> {
    let text = markdown(&section.text, links);
    Some(match section.kind {
        SectionKind::Returns => format!("# Returns\n\n{text}"),
        SectionKind::Errors => format!("# Errors\n\n{text}"),
        SectionKind::Since => format!("*Since: {}*", inline(section.text.trim(), links)),
        SectionKind::Note => format!("**Note:** {text}"),
        SectionKind::Example => format!(
            "**Example:**\n\n```json\n{}\n```",
            section.text.trim_matches('\n')
        ),
        SectionKind::Todo => return None,
        _ => text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rst_markup_becomes_markdown_that_rustdoc_will_not_run() {
        let text = "Use @device-id for ``[x]``.  See https://qemu.org.\n\n\
                    Example::\n\n    {\"a\": 1}\n\n.. qmp-example::\n   :title: T\n\n   -> { \"execute\": \"x\" }\n\n\
                    .. note:: Careful <here>.\n\n   indented";
        let md = markdown(text, &Links::new());
        assert!(md.contains("Use `device-id` for `[x]`."), "{md}");
        assert!(md.contains("<https://qemu.org>"), "{md}");
        assert!(md.contains("Example:\n\n```text\n{\"a\": 1}\n```"), "{md}");
        assert!(
            md.contains("**Example: T**\n\n```json\n-> { \"execute\": \"x\" }\n```"),
            "{md}"
        );
        assert!(
            md.contains("**Note:**\n\nCareful \\<here\\>.\n\nindented"),
            "{md}"
        );
        assert!(
            !md.lines()
                .any(|l| l.starts_with("    ") && !l.trim().is_empty()),
            "{md}"
        );
    }

    #[test]
    fn brackets_and_angle_brackets_are_escaped_outside_code() {
        assert_eq!(
            inline("a [b] <c> `[d]`", &Links::new()),
            "a \\[b\\] \\<c\\> `[d]`"
        );
        assert_eq!(inline("see :ref:`foo`", &Links::new()), "see `foo`");
        assert_eq!(inline("user@example", &Links::new()), "user@example");
        let links = Links::from([("BlockInfo".to_owned(), "crate::BlockInfo".to_owned())]);
        assert_eq!(
            inline("see @BlockInfo and @device", &links),
            "see [`BlockInfo`](crate::BlockInfo) and `device`"
        );
        assert_eq!(
            inline("`BlockInfo`, ``[x]`` and `other`", &links),
            "[`BlockInfo`](crate::BlockInfo), `[x]` and `other`"
        );
        assert_eq!(inline("a ` b", &links), "a \\` b");
    }

    #[test]
    fn conditions_read_as_words() {
        let c = Condition::All(vec![
            Condition::Name("A".into()),
            Condition::Any(vec![
                Condition::Name("B".into()),
                Condition::Not(Box::new(Condition::Name("C".into()))),
            ]),
        ]);
        assert_eq!(describe_condition(&c), "`A` and (`B` or not `C`)");
    }
}
