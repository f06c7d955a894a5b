//! Finding QEMU source trees for the conformance tests.
//!
//! The trees are never copied into this repository: `.ci/run` extracts them
//! with `../shared/tools/qemu-source VERSION` and points
//! `QAPI_QEMU_SOURCE_DIR` at the directory holding one subdirectory per
//! version (`5.2`, `7.2`, `10.0.2`, `10.0.13`, `10.2.2`).  Without it the
//! tests skip loudly — unless `QAPI_TEST_REQUIRE_QEMU=1`, when they fail.

#![allow(dead_code)]

use std::io::Write;
use std::path::PathBuf;

/// The QEMU versions whose source trees the tests use.
pub const VERSIONS: [&str; 5] = ["5.2", "7.2", "10.0.2", "10.0.13", "10.2.2"];

/// The source tree of `version`, or `None` (after saying so on stderr) when
/// it is not available and not required.
pub fn qemu_source(version: &str) -> Option<PathBuf> {
    let required = std::env::var("QAPI_TEST_REQUIRE_QEMU").is_ok_and(|v| v == "1");
    let dir = std::env::var_os("QAPI_QEMU_SOURCE_DIR").map(PathBuf::from);
    let tree = dir.map(|d| d.join(version));
    match tree {
        Some(tree) if tree.join("qapi").is_dir() => Some(tree),
        other => {
            let why = match other {
                Some(tree) => format!("{} holds no QEMU source tree", tree.display()),
                None => "QAPI_QEMU_SOURCE_DIR is not set".to_owned(),
            };
            if required {
                panic!("QEMU {version} source tree required (QAPI_TEST_REQUIRE_QEMU=1): {why}");
            }
            // Written to the stderr handle, which libtest does not
            // capture (it captures `eprintln!`), so a plain `cargo test`
            // shows what it skipped.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: QEMU {version} source tree not available: {why}. Set \
                 QAPI_QEMU_SOURCE_DIR to a directory of trees made by \
                 ../shared/tools/qemu-source (see README)."
            );
            None
        }
    }
}
