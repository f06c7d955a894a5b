//! Every identifier rule of the QAPI language in one place.
//!
//! See "Naming rules and reserved names" in QEMU's
//! `docs/devel/qapi-code-gen.rst`: names consist of ASCII letters, digits,
//! `-` and `_`, start with a letter, and may carry a downstream prefix
//! `__RFQDN_` and then the experimental prefix `x-`.  Types use CamelCase,
//! commands and members lower case with `-`, events upper case with `_`.
//! QEMU compares names for clashes after mapping them to C identifiers
//! ([`c_name`]), so `a-b` and `a_b` clash.

/// C keywords and other words QEMU's generator protects with a `q_` prefix.
const PROTECTED_WORDS: &[&str] = &[
    // C89
    "auto",
    "break",
    "case",
    "char",
    "const",
    "continue",
    "default",
    "do",
    "double",
    "else",
    "enum",
    "extern",
    "float",
    "for",
    "goto",
    "if",
    "int",
    "long",
    "register",
    "return",
    "short",
    "signed",
    "sizeof",
    "static",
    "struct",
    "switch",
    "typedef",
    "union",
    "unsigned",
    "void",
    "volatile",
    "while",
    // C99
    "inline",
    "restrict",
    "_Bool",
    "_Complex",
    "_Imaginary",
    // C11
    "_Alignas",
    "_Alignof",
    "_Atomic",
    "_Generic",
    "_Noreturn",
    "_Static_assert",
    "_Thread_local",
    // GCC
    "asm",
    "typeof",
    // C++
    "bool",
    "catch",
    "class",
    "const_cast",
    "delete",
    "dynamic_cast",
    "explicit",
    "false",
    "friend",
    "mutable",
    "namespace",
    "new",
    "operator",
    "private",
    "protected",
    "public",
    "reinterpret_cast",
    "static_cast",
    "template",
    "this",
    "throw",
    "true",
    "try",
    "typeid",
    "typename",
    "using",
    "virtual",
    "wchar_t",
    "and",
    "and_eq",
    "bitand",
    "bitor",
    "compl",
    "not",
    "not_eq",
    "or",
    "or_eq",
    "xor",
    "xor_eq",
    // Namespace pollution
    "unix",
    "errno",
    "mips",
    "sparc",
    "i386",
    "linux",
];

/// The C identifier QEMU derives from a QAPI name: every character other
/// than an ASCII letter, digit or `_` becomes `_`; with `protect`, C
/// keywords and names starting with a digit get a `q_` prefix.
pub fn c_name(name: &str, protect: bool) -> String {
    let mapped: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if protect
        && (PROTECTED_WORDS.contains(&mapped.as_str())
            || mapped.chars().next().is_some_and(|c| c.is_ascii_digit()))
    {
        return format!("q_{mapped}");
    }
    mapped
}

/// Splits a valid QAPI name into its stem (the part after the downstream
/// `__RFQDN_` and experimental `x-` prefixes); `None` if the name is not
/// valid (wrong characters, no leading letter, or the reserved `q_`).
pub fn name_stem(name: &str) -> Option<&str> {
    let mut rest = name;
    // Downstream prefix: `__`, then letters, digits, `.` and `-`, then `_`.
    if let Some(after) = name.strip_prefix("__") {
        let run = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '-'))
            .unwrap_or(after.len());
        if run == 0 || !after[run..].starts_with('_') {
            return None;
        }
        rest = &after[run + 1..];
    }
    let stem = stem_after_downstream(rest)?;
    check_reserved(name, stem)
}

fn stem_after_downstream(rest: &str) -> Option<&str> {
    // Optional x- (case-insensitive), then [a-z][a-z0-9_-]*.
    let candidates = [
        rest.strip_prefix("x-").or_else(|| rest.strip_prefix("X-")),
        Some(rest),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|stem| is_plain_name(stem))
}

fn is_plain_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn check_reserved<'a>(name: &str, stem: &'a str) -> Option<&'a str> {
    if c_name(name, false).starts_with("q_") {
        None
    } else {
        Some(stem)
    }
}

/// Whether an event name's stem follows the rules: no lower case, no `-`.
pub fn is_upper_stem(stem: &str) -> bool {
    !stem.chars().any(|c| c.is_ascii_lowercase() || c == '-')
}

/// Whether a command or member name's stem follows the rules (no upper case,
/// no `_`), allowing what the exceptions permit.
pub fn is_lower_stem(stem: &str, permit_upper: bool, permit_underscore: bool) -> bool {
    (permit_upper || !stem.chars().any(|c| c.is_ascii_uppercase()))
        && (permit_underscore || !stem.contains('_'))
}

/// Whether a type name's stem is CamelCase: an upper-case letter first and
/// at least one lower-case letter, only letters and digits.
pub fn is_camel_stem(stem: &str) -> bool {
    let mut chars = stem.chars();
    chars.next().is_some_and(|c| c.is_ascii_uppercase())
        && stem.chars().all(|c| c.is_ascii_alphanumeric())
        && stem[1..].chars().any(|c| c.is_ascii_lowercase())
}

/// Whether a condition name is a valid identifier for `if`.
pub fn is_condition_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_uppercase())
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c_name_maps_punctuation_and_protects_keywords() {
        assert_eq!(c_name("__org.qemu_x-foo", false), "__org_qemu_x_foo");
        assert_eq!(c_name("int", true), "q_int");
        assert_eq!(c_name("int", false), "int");
        assert_eq!(c_name("1x", true), "q_1x");
        assert_eq!(c_name("unix", true), "q_unix");
    }

    #[test]
    fn stems_strip_downstream_and_experimental_prefixes() {
        let cases = [
            ("foo", Some("foo")),
            ("x-foo", Some("foo")),
            ("__org.qemu_foo", Some("foo")),
            ("__org.qemu_x-foo", Some("foo")),
            ("__com.redhat_drive-mirror", Some("drive-mirror")),
            ("x-__org_foo", Some("x-__org_foo")),
            ("", None),
            ("1foo", None),
            ("foo!", None),
            ("q_foo", None),
            ("q-foo", None),
            ("Q_foo", Some("Q_foo")),
            ("__a_b_c", Some("b_c")),
            ("x-", Some("x-")),
        ];
        for (name, stem) in cases {
            assert_eq!(name_stem(name), stem, "{name}");
        }
    }

    #[test]
    fn case_rules() {
        assert!(is_camel_stem("FooBar"));
        assert!(is_camel_stem("Foo2"));
        assert!(!is_camel_stem("FOO"));
        assert!(!is_camel_stem("fooBar"));
        assert!(!is_camel_stem("Foo_Bar"));
        assert!(is_upper_stem("BLOCK_JOB"));
        assert!(!is_upper_stem("block_job"));
        assert!(is_lower_stem("block-job", false, false));
        assert!(!is_lower_stem("block_job", false, false));
        assert!(is_lower_stem("block_job", false, true));
        assert!(is_condition_name("CONFIG_FOO2"));
        assert!(!is_condition_name("config_foo"));
    }
}
