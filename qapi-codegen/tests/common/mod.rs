//! Finding what the tests need outside this crate: QEMU source trees for
//! the conformance tests, and files of the repository (the vendored
//! `schemas/`) that a packaged crate does not hold.
//!
//! The trees are never copied into this repository: `.ci/run` extracts them
//! with `../shared/tools/qemu-source VERSION` and points
//! `QAPI_QEMU_SOURCE_DIR` at the directory holding one subdirectory per
//! version (`5.2`, `7.2`, `10.0.2`, `10.0.13`, `10.2.2`).  Without it, or
//! without the repository around the crate, the tests skip loudly — unless
//! `QAPI_TEST_REQUIRE_QEMU=1`, when they fail.
//!
//! Skips are written to the stderr handle itself, not with `eprintln!`,
//! which libtest captures: a plain `cargo test` shows them.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};

/// Whether a test that cannot run must fail instead of skipping (CI).
fn required() -> bool {
    std::env::var("QAPI_TEST_REQUIRE_QEMU").is_ok_and(|v| v == "1")
}

/// Says on stderr that the running test is skipped, and why, in one write
/// so that it is not interleaved with libtest's output.
fn skip(why: &str) {
    let thread = std::thread::current();
    let test = thread.name().filter(|name| *name != "main");
    let test = test.map(|name| format!(" {name}")).unwrap_or_default();
    let line = format!("SKIPPED{test}: {why}\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
}

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
    if required() {
        panic!(
            "{} is missing (QAPI_TEST_REQUIRE_QEMU=1): this test needs the repository's {path}",
            file.display()
        );
    }
    skip(&format!(
        "{path} is only in the qapi-rs repository, not in the packaged crate \
         (looked for {}); run the tests from a clone to include this one.",
        file.display()
    ));
    None
}

/// The QEMU versions whose source trees the tests use.
pub const VERSIONS: [&str; 5] = ["5.2", "7.2", "10.0.2", "10.0.13", "10.2.2"];

/// The source tree of `version`, or `None` (after saying so on stderr) when
/// it is not available and not required.
pub fn qemu_source(version: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("QAPI_QEMU_SOURCE_DIR").map(PathBuf::from);
    let tree = dir.map(|d| d.join(version));
    match tree {
        Some(tree) if tree.join("qapi").is_dir() => Some(tree),
        other => {
            let why = match other {
                Some(tree) => format!("{} holds no QEMU source tree", tree.display()),
                None => "QAPI_QEMU_SOURCE_DIR is not set".to_owned(),
            };
            if required() {
                panic!("QEMU {version} source tree required (QAPI_TEST_REQUIRE_QEMU=1): {why}");
            }
            skip(&format!(
                "QEMU {version} source tree not available: {why}. Set \
                 QAPI_QEMU_SOURCE_DIR to a directory of trees made by \
                 ../shared/tools/qemu-source (see README)."
            ));
            None
        }
    }
}
