//! Finding files of the repository that the tests compare the bindings
//! with (the vendored `schemas/`), which a packaged crate does not hold.
//!
//! As in `qapi-codegen`'s tests: when a file is missing the test skips
//! loudly — unless `QAPI_TEST_REQUIRE_QEMU=1` (set by `.ci/run`), when it
//! fails.  Skips are written to the stderr handle itself, not with
//! `eprintln!`, which libtest captures: a plain `cargo test` shows them.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};

/// The file `path` (relative to the workspace root, such as
/// `schemas/qmp/qapi-schema.json`), or `None` (after saying so on stderr)
/// when it is not there: the file is in the repository but not in this
/// crate's package, and a test run from the unpacked `.crate` skips.
/// Panics instead when `QAPI_TEST_REQUIRE_QEMU=1`.
pub fn repository_file(path: &str) -> Option<PathBuf> {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path);
    if file.exists() {
        return Some(file);
    }
    if std::env::var("QAPI_TEST_REQUIRE_QEMU").is_ok_and(|v| v == "1") {
        panic!(
            "{} is missing (QAPI_TEST_REQUIRE_QEMU=1): this test needs the repository's {path}",
            file.display()
        );
    }
    let thread = std::thread::current();
    let test = thread.name().filter(|name| *name != "main");
    let test = test.map(|name| format!(" {name}")).unwrap_or_default();
    // One write, so that the line is not interleaved with libtest's output.
    let line = format!(
        "SKIPPED{test}: {path} is only in the qapi-rs repository, not in the packaged crate \
         (looked for {}); run the tests from a clone to include this one.\n",
        file.display()
    );
    let _ = std::io::stderr().write_all(line.as_bytes());
    None
}
