//! Bytes to the whole front end: lexer, parser (with documentation blocks
//! and `include`s resolved against the vendored schemas) and checker, with
//! every rule set.  An error or a model are both fine; a panic, a hang or a
//! stack overflow is a bug.

#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use qapi_codegen::{check, dump, parser, Rules};

/// A file that does not exist in the real schemas directory, so `include`s
/// in the input resolve against the real files.
fn path() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas/qmp/fuzz-input.json")
    })
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for rules in Rules::ALL {
        match parser::parse_text(path(), &text, rules).and_then(|p| check::check(p, rules)) {
            Ok(schema) => {
                let _ = dump::dump(&schema);
            }
            Err(diags) => {
                assert!(!diags.list.is_empty(), "an error without diagnostics");
                assert!(
                    !diags.to_string().is_empty(),
                    "an error renders as empty text"
                );
            }
        }
    }
});
