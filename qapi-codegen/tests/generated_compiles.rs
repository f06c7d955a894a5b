//! Whole-language coverage: bindings generated for QEMU's own test schemas
//! (`qapi-schema-test.json` uses every construct of the language,
//! `doc-good.json` every documentation form) compile without warnings and
//! their docs build with warnings denied.
//!
//! Each schema's bindings go into a scratch crate under Cargo's test
//! scratch folder, built offline against this workspace's `qapi-types` and
//! lock file: from a packaged crate, which has neither, the tests skip.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use qapi_codegen::{emit, Config, Rules};

/// The workspace root, holding the `qapi-types` and the lock file the
/// scratch crates build against, or `None` after saying why not (they are
/// not in the packaged crate).
fn workspace() -> Option<PathBuf> {
    common::repository_file("qapi-types/Cargo.toml")?;
    let lock = common::repository_file("Cargo.lock")?;
    Some(lock.parent().expect("the workspace root").to_path_buf())
}

/// Writes a crate holding the bindings for `schema`, using `workspace`'s
/// `qapi-types` and lock file; returns its folder.
fn scratch_crate(workspace: &Path, name: &str, schema: &Path, rules: Rules) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("generated-{name}"));
    let _ = std::fs::remove_dir_all(dir.join("src"));
    std::fs::create_dir_all(dir.join("src")).expect("scratch crate folder");
    let model = Config::new()
        .rules(rules)
        .load(schema)
        .unwrap_or_else(|e| panic!("{}: {e}", schema.display()));
    let generated = emit::generate(
        &model,
        &emit::Options {
            schema_name: name.to_owned(),
            features: true,
            ..emit::Options::default()
        },
    )
    .expect("generation succeeds");
    generated
        .write_to(&dir.join("src/generated"))
        .expect("write the bindings");
    let manifest = format!(
        "[package]\nname = \"generated-{name}\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n\
         [dependencies]\nqapi-types = {{ path = {:?}, default-features = false }}\n\
         serde = {{ version = \"1\", features = [\"derive\"] }}\nserde_json = \"1\"\n\n\
         [workspace]\n\n{}",
        workspace.join("qapi-types"),
        generated.features_table()
    );
    std::fs::write(dir.join("Cargo.toml"), manifest).expect("write Cargo.toml");
    std::fs::write(
        dir.join("src/lib.rs"),
        "//! Generated bindings under test.\n#![cfg_attr(docsrs, feature(doc_cfg))]\n\
         #[rustfmt::skip]\nmod generated;\npub use generated::*;\n",
    )
    .expect("write lib.rs");
    std::fs::copy(workspace.join("Cargo.lock"), dir.join("Cargo.lock")).expect("copy Cargo.lock");
    dir
}

fn cargo(dir: &Path, args: &[&str]) {
    let output = Command::new(env!("CARGO"))
        .args(args)
        .arg("--offline")
        .current_dir(dir)
        .env(
            "CARGO_TARGET_DIR",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("generated-target"),
        )
        .env("RUSTFLAGS", "-D warnings")
        .env("RUSTDOCFLAGS", "-D warnings")
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "cargo {} failed in {}:\n{}",
        args.join(" "),
        dir.display(),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn qemu_test_schemas_generate_compiling_documented_bindings() {
    let Some(tree) = common::qemu_source("10.2.2") else {
        return;
    };
    let Some(workspace) = workspace() else {
        return;
    };
    let suite = tree.join("tests/qapi-schema");
    for (name, file) in [
        ("qapi-schema-test", "qapi-schema-test.json"),
        ("doc-good", "doc-good.json"),
    ] {
        let dir = scratch_crate(&workspace, name, &suite.join(file), Rules::default());
        cargo(&dir, &["build", "--quiet", "--all-features"]);
        cargo(&dir, &["build", "--quiet", "--no-default-features"]);
        cargo(&dir, &["doc", "--quiet", "--no-deps", "--all-features"]);
        eprintln!("{file}: bindings compile and document cleanly");
    }
}

#[test]
fn older_releases_generate_compiling_bindings() {
    // QEMU 5.2 (simple unions, C-preprocessor conditions) and 7.2: the full
    // QMP schema of 5.2 and the guest-agent schema of 7.2.
    let Some(workspace) = workspace() else {
        return;
    };
    for (name, version, file) in [
        ("qmp-5-2", "5.2", "qapi/qapi-schema.json"),
        ("qga-7-2", "7.2", "qga/qapi-schema.json"),
    ] {
        let Some(tree) = common::qemu_source(version) else {
            return;
        };
        let rules = Rules::for_version(version).expect("a known release");
        let dir = scratch_crate(&workspace, name, &tree.join(file), rules);
        cargo(&dir, &["build", "--quiet", "--all-features"]);
        eprintln!("QEMU {version} {file}: bindings compile");
    }
}
