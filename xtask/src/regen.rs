//! `cargo xtask regen` and `cargo xtask check`: one function, two modes, as
//! in rust-analyzer's xtask.
//!
//! Both load the vendored QMP and guest-agent schemas with `qapi_codegen`
//! and fail with its diagnostics if either is invalid.  Then `regen` writes
//! every generated file, and `check` compares each with the committed one
//! and fails with "X is out of date; run `cargo xtask regen`".

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use qapi_codegen::{Config, Schema};

use crate::project_root;

/// The QMP schema's root file, relative to the workspace root.
const QMP_SCHEMA: &str = "schemas/qmp/qapi-schema.json";
/// The guest agent schema, relative to the workspace root.
const QGA_SCHEMA: &str = "schemas/qga/qapi-schema.json";

/// Whether generated files are written or only compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Write generated files that differ from the committed ones.
    Write,
    /// Fail if any generated file differs from the committed one.
    Check,
}

/// One file the generator owns, with the contents it should have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GeneratedFile {
    /// Relative to the workspace root.
    pub(crate) path: PathBuf,
    pub(crate) contents: String,
}

pub(crate) fn regen(mode: Mode) -> Result<()> {
    let root = project_root();
    let (qmp, qga) = (load(&root, QMP_SCHEMA), load(&root, QGA_SCHEMA));
    let (qmp, qga) = match (qmp, qga) {
        (Ok(qmp), Ok(qga)) => (qmp, qga),
        (qmp, qga) => {
            let errors: Vec<String> = [qmp.err(), qga.err()]
                .into_iter()
                .flatten()
                .map(|e| format!("{e:#}"))
                .collect();
            bail!("{}", errors.join("\n"));
        }
    };
    let files = generate(&qmp, &qga);
    if files.is_empty() {
        eprintln!("{QMP_SCHEMA} and {QGA_SCHEMA} are valid; code generation lands with the bindings issue");
    }
    sync(mode, &root, &files)
}

/// Loads one schema with the default (newest) rules; diagnostics name files
/// relative to the workspace root.
fn load(root: &Path, schema: &str) -> Result<Schema> {
    Config::new()
        .display_relative_to(root)
        .load(root.join(schema))
        // The library's Display is QEMU's format, one diagnostic per line
        // group: keep it whole, below a line naming the schema.
        .map_err(|err| anyhow::anyhow!("can't load {schema}:\n{err}"))
}

/// Everything the generator writes.  Code generation lands with the bindings
/// issue; until then there is nothing to write.
fn generate(_qmp: &Schema, _qga: &Schema) -> Vec<GeneratedFile> {
    Vec::new()
}

/// Writes (`Write`) or compares (`Check`) every generated file below `root`.
/// `Check` reports every stale file, not only the first.
fn sync(mode: Mode, root: &Path, files: &[GeneratedFile]) -> Result<()> {
    let mut stale = Vec::new();
    for file in files {
        let path = root.join(&file.path);
        let current = fs::read_to_string(&path).ok();
        if current.as_deref() == Some(file.contents.as_str()) {
            continue;
        }
        match mode {
            Mode::Check => stale.push(format!(
                "{} is out of date; run `cargo xtask regen`",
                file.path.display()
            )),
            Mode::Write => {
                if let Some(dir) = path.parent() {
                    fs::create_dir_all(dir)
                        .with_context(|| format!("can't create {}", dir.display()))?;
                }
                fs::write(&path, &file.contents)
                    .with_context(|| format!("can't write {}", path.display()))?;
                eprintln!("updated {}", file.path.display());
            }
        }
    }
    if !stale.is_empty() {
        bail!("{}", stale.join("\n"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, contents: &str) -> GeneratedFile {
        GeneratedFile {
            path: PathBuf::from(path),
            contents: contents.to_owned(),
        }
    }

    #[test]
    fn check_names_every_stale_file_and_writes_nothing() {
        let root = crate::test_dir("regen-check");
        fs::write(root.join("same.rs"), "same\n").unwrap();
        fs::write(root.join("old.rs"), "old\n").unwrap();
        let files = [
            file("same.rs", "same\n"),
            file("old.rs", "new\n"),
            file("gen/missing.rs", "x\n"),
        ];
        let err = sync(Mode::Check, &root, &files).unwrap_err().to_string();
        assert_eq!(
            err,
            "old.rs is out of date; run `cargo xtask regen`\n\
             gen/missing.rs is out of date; run `cargo xtask regen`"
        );
        assert_eq!(fs::read_to_string(root.join("old.rs")).unwrap(), "old\n");
        assert!(!root.join("gen").exists());
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn write_updates_files_then_check_passes() {
        let root = crate::test_dir("regen-write");
        fs::write(root.join("old.rs"), "old\n").unwrap();
        let files = [file("old.rs", "new\n"), file("gen/missing.rs", "x\n")];
        sync(Mode::Write, &root, &files).unwrap();
        assert_eq!(fs::read_to_string(root.join("old.rs")).unwrap(), "new\n");
        assert_eq!(
            fs::read_to_string(root.join("gen/missing.rs")).unwrap(),
            "x\n"
        );
        sync(Mode::Check, &root, &files).unwrap();
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn unreadable_schema_is_reported_with_its_name() {
        let root = crate::test_dir("regen-missing");
        let err = format!(
            "{:#}",
            load(&root, QMP_SCHEMA).expect_err("no schema there")
        );
        assert!(
            err.starts_with("can't load schemas/qmp/qapi-schema.json:\ncan't read schema file"),
            "{err}"
        );
        fs::remove_dir_all(root).unwrap();
    }
}
