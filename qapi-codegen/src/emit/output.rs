//! From tokens to files: doc comments and verbatim lines as placeholders,
//! formatting with prettyplease, and the generated files as a whole.

use proc_macro2::TokenStream;
use quote::quote;

use super::*;

/// The doc attributes for `parts` (paragraphs), one `///` line each in the
/// output.
///
/// Parsing and printing thousands of doc attributes was much of the cost
/// of formatting, so the tokens carry one placeholder attribute per block
/// (`#[doc = "\u{1}N"]`), which prettyplease prints as `///\u{1}N` at the
/// item's indentation; [`format_file`] puts the lines in its place, exactly
/// as prettyplease would have printed one attribute per line.  The blocks
/// wait in a per-thread list, since a module is generated and formatted on
/// one thread.
pub(super) fn doc_attrs(parts: &[String]) -> TokenStream {
    let text = parts
        .iter()
        .filter(|p| !p.is_empty())
        .cloned()
        .collect::<Vec<_>>()
        .join("\n\n");
    if text.is_empty() {
        return TokenStream::new();
    }
    let lines: Vec<String> = text
        .lines()
        .map(|l| format!(" {l}").trim_end().to_owned())
        .collect();
    let placeholder = DOC_BLOCKS.with_borrow_mut(|blocks| {
        blocks.push(lines);
        format!("{DOC_MARK}{}", blocks.len() - 1)
    });
    quote! { #[doc = #placeholder] }
}

/// Lines of code to appear as they are, at the indentation of the item
/// they stand for: the tokens carry a placeholder macro call
/// (`__qapi_verbatim_N!();`, in the same numbering as the doc blocks) that
/// [`expand_docs`] replaces.
pub(super) fn verbatim(lines: Vec<String>) -> TokenStream {
    let placeholder = DOC_BLOCKS.with_borrow_mut(|blocks| {
        blocks.push(lines);
        ident(&format!("{VERBATIM_MARK}{}", blocks.len() - 1))
    });
    quote! { #placeholder!(); }
}

/// Starts a verbatim placeholder (see [`verbatim`]).
pub(super) const VERBATIM_MARK: &str = "__qapi_verbatim_";

/// Starts a doc placeholder (see [`doc_attrs`]).
pub(super) const DOC_MARK: char = '\u{1}';

thread_local! {
    /// The doc blocks of the file being generated on this thread, by
    /// placeholder number.
    pub(super) static DOC_BLOCKS: std::cell::RefCell<Vec<Vec<String>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Replaces each doc placeholder line of `text` by the lines of its block,
/// at the same indentation.
pub(super) fn expand_docs(text: &str, blocks: &[Vec<String>]) -> String {
    let mut out = String::with_capacity(text.len() + blocks.len() * 160);
    for line in text.lines() {
        let code = line.trim_start();
        let block = code
            .strip_prefix("///")
            .and_then(|rest| rest.strip_prefix(DOC_MARK))
            .and_then(|n| n.parse::<usize>().ok())
            .and_then(|n| blocks.get(n));
        let indent = &line[..line.len() - code.len()];
        if let Some(block) = block {
            for doc in block {
                out.push_str(indent);
                out.push_str("///");
                out.push_str(doc);
                out.push('\n');
            }
        } else if let Some(block) = verbatim_block(code, blocks) {
            for text in block {
                out.push_str(indent);
                out.push_str(text);
                out.push('\n');
            }
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// The block of a verbatim placeholder line (see [`verbatim`]).
pub(super) fn verbatim_block<'b>(code: &str, blocks: &'b [Vec<String>]) -> Option<&'b Vec<String>> {
    code.strip_prefix(VERBATIM_MARK)?
        .strip_suffix("!();")?
        .parse::<usize>()
        .ok()
        .and_then(|n| blocks.get(n))
}

/// Formats a module with prettyplease under a header comment.
///
/// Takes this thread's doc blocks (see [`doc_attrs`]).
pub(super) fn format_file(
    module: &str,
    header: &str,
    tokens: TokenStream,
) -> Result<String, GenerateError> {
    let blocks = DOC_BLOCKS.with_borrow_mut(std::mem::take);
    let file: syn::File = syn::parse2(tokens).map_err(|e| GenerateError::Unparsable {
        module: module.to_owned(),
        message: e.to_string(),
    })?;
    let body = expand_docs(&space_items(&prettyplease::unparse(&file)), &blocks);
    let mut out = String::new();
    for line in header.lines() {
        out.push_str("//");
        out.push_str(line);
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&body);
    Ok(out)
}

/// A blank line after each item that closes at the top or the first
/// nesting level, so items do not run together (prettyplease leaves none).
pub(super) fn space_items(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = String::with_capacity(text.len() + text.len() / 20);
    for (i, line) in lines.iter().enumerate() {
        out.push_str(line);
        out.push('\n');
        let closes =
            matches!(*line, "}" | "};" | "    }") || line.trim_start().starts_with(VERBATIM_MARK);
        if let (true, Some(next)) = (closes, lines.get(i + 1)) {
            let indent = line.len() - line.trim_start().len();
            let next_indent = next.len() - next.trim_start().len();
            if !next.trim().is_empty()
                && next_indent == indent
                && !next.trim_start().starts_with('}')
            {
                out.push('\n');
            }
        }
    }
    out
}

impl Generated {
    /// Writes every file into `dir` (created if missing).
    pub fn write_to(&self, dir: &std::path::Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        for (name, text) in &self.files {
            std::fs::write(dir.join(name), text)?;
        }
        Ok(())
    }

    /// The `[features]` table for the crate's Cargo.toml: `default` turns
    /// every module on, each module turns on those it uses.
    pub fn features_table(&self) -> String {
        let quoted = |names: &mut dyn Iterator<Item = &String>| {
            names
                .map(|n| format!("\"{n}\""))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut table = String::from("[features]\n");
        table.push_str(&format!(
            "default = [{}]\n",
            quoted(&mut self.features.keys())
        ));
        for (feature, deps) in &self.features {
            table.push_str(&format!("{feature} = [{}]\n", quoted(&mut deps.iter())));
        }
        table
    }
}

impl fmt::Display for Generated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, text) in &self.files {
            writeln!(f, "// ===== {name} =====")?;
            f.write_str(text)?;
        }
        Ok(())
    }
}
