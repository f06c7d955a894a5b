//! QAPI names to Rust identifiers.
//!
//! Type names keep QEMU's spelling when it is already a Rust identifier
//! (QAPI type names are CamelCase); members become snake_case and enum
//! values and commands UpperCamelCase, with heck.  Rust keywords are
//! escaped in three tiers: `r#type` where a raw identifier is allowed, a `_`
//! suffix for `self`, `super`, `crate` and `Self`, and a `_` prefix for a
//! leading digit.

use heck::{ToSnakeCase, ToUpperCamelCase};

const KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "dyn", "else", "enum", "extern", "false",
    "fn", "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref",
    "return", "static", "struct", "trait", "true", "type", "unsafe", "use", "where", "while",
    "abstract", "become", "box", "do", "final", "gen", "macro", "override", "priv", "try",
    "typeof", "unsized", "virtual", "yield",
];

/// Keywords that cannot be raw identifiers.
const NOT_RAW: &[&str] = &["self", "super", "crate", "Self", "_"];

/// Makes `ident` usable as a Rust identifier (see the module docs).
pub fn escape(ident: String) -> String {
    if NOT_RAW.contains(&ident.as_str()) {
        return format!("{ident}_");
    }
    if ident.starts_with(|c: char| c.is_ascii_digit()) {
        return format!("_{ident}");
    }
    if KEYWORDS.contains(&ident.as_str()) {
        return format!("r#{ident}");
    }
    ident
}

/// A struct field for a QAPI member: `io-status` → `io_status`.
pub fn field(name: &str) -> String {
    escape(name.to_snake_case())
}

/// A type's Rust name: QEMU's spelling when that is an identifier, else
/// UpperCamelCase (`q_obj_int-wrapper` → `QObjIntWrapper`).
pub fn type_name(name: &str) -> String {
    let name = name.strip_prefix("q_obj_").unwrap_or(name);
    let is_ident = name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if is_ident && !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        escape(name.to_owned())
    } else {
        escape(name.to_upper_camel_case())
    }
}

/// An enum variant, command or event type: `query-block` → `QueryBlock`,
/// `BLOCK_JOB_COMPLETED` → `BlockJobCompleted`, `2.0` → `V2_0`.
pub fn camel(name: &str) -> String {
    let camel = name.to_upper_camel_case();
    if camel.starts_with(|c: char| c.is_ascii_digit()) {
        // Keep the digits apart (`0.10` and `010` must not meet).
        let mut out = String::from("V");
        for c in name.chars() {
            out.push(if c.is_ascii_alphanumeric() { c } else { '_' });
        }
        return out;
    }
    if camel.is_empty() {
        return "Empty".to_owned();
    }
    escape(camel)
}

/// A module's Rust name from its schema file: `block-core.json` →
/// `block_core`.
pub fn module(file: &str) -> String {
    let stem = file.rsplit('/').next().unwrap_or(file);
    let stem = stem.strip_suffix(".json").unwrap_or(stem);
    escape(stem.to_snake_case())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_are_escaped_in_three_tiers() {
        assert_eq!(field("type"), "r#type");
        assert_eq!(field("self"), "self_");
        assert_eq!(camel("2.0"), "V2_0");
        assert_eq!(field("io-status"), "io_status");
    }

    #[test]
    fn type_names_keep_qemus_spelling() {
        assert_eq!(type_name("BlockdevOptionsNbd"), "BlockdevOptionsNbd");
        assert_eq!(type_name("q_obj_int-wrapper"), "IntWrapper");
        assert_eq!(type_name("x-Foo"), "XFoo");
        assert_eq!(module("block-core.json"), "block_core");
        assert_eq!(camel("query-block"), "QueryBlock");
        assert_eq!(camel("BLOCK_JOB_COMPLETED"), "BlockJobCompleted");
    }
}
