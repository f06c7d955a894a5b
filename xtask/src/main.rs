//! The project's own tasks, run as `cargo xtask TASK` (an alias in
//! `.cargo/config.toml`).
//!
//! - `regen`: check the vendored schemas and write the generated code;
//! - `check`: the same without writing, failing when committed generated
//!   files are out of date (CI runs it);
//! - `import-schemas QEMU_SOURCE_TREE`: vendor a QEMU release's schemas into
//!   `schemas/`;
//! - `bench`: compare our front end with QEMU's on the QMP schema;
//! - `features`: check `qapi-types` with no module feature, then with each
//!   one alone (CI runs it), so that every feature turns on the modules it
//!   needs;
//! - `msrv`: fail when a crate's normal or build dependency needs a newer
//!   Rust than the crate's `rust-version` (CI runs it).

mod import_schemas;
mod msrv;
mod regen;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

use regen::Mode;

#[derive(Debug, Parser)]
#[command(about = "The qapi-rs project's tasks", bin_name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Check the vendored schemas and (re)write the generated code.
    Regen,
    /// Check the vendored schemas and that the committed generated code is up to date.
    Check,
    /// Replace schemas/ with the schemas of a QEMU source tree.
    ImportSchemas {
        /// An (extracted) QEMU source tree: the directory holding VERSION, qapi/ and qga/.
        #[arg(value_name = "QEMU_SOURCE_TREE")]
        tree: PathBuf,
    },
    /// Check qapi-types without module features, then with each one alone.
    Features,
    /// Check that no crate's (non-dev) dependency needs a newer Rust than its rust-version.
    Msrv,
    /// Time our front end against QEMU's Python one (bench/compare-front-end.sh).
    Bench {
        /// Passed on to the script.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.task {
        Task::Regen => regen::regen(Mode::Write),
        Task::Check => regen::regen(Mode::Check),
        Task::ImportSchemas { tree } => import_schemas::run(&tree, &project_root().join("schemas")),
        Task::Bench { args } => bench(&args),
        Task::Features => features(),
        Task::Msrv => msrv::run(&project_root()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root: the parent of this crate's directory.
fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

fn bench(args: &[String]) -> Result<()> {
    let script = "bench/compare-front-end.sh";
    let status = std::process::Command::new("bash")
        .arg(script)
        .args(args)
        .current_dir(project_root())
        .status()
        .with_context(|| format!("can't run `bash {script}`"))?;
    if !status.success() {
        bail!("`bash {script}` failed ({status})");
    }
    Ok(())
}

/// `cargo check -p qapi-types` with no module feature, then with each
/// feature of its manifest alone.
fn features() -> Result<()> {
    let manifest_path = project_root().join("qapi-types/Cargo.toml");
    let manifest = std::fs::read_to_string(&manifest_path)
        .with_context(|| format!("can't read {}", manifest_path.display()))?;
    let features = module_features(&manifest);
    if features.is_empty() {
        bail!("no module features in {}", manifest_path.display());
    }
    let mut failed = Vec::new();
    for feature in std::iter::once("").chain(features.iter().map(String::as_str)) {
        let label = if feature.is_empty() {
            "(none)"
        } else {
            feature
        };
        eprintln!("features: qapi-types with {label}");
        let status = std::process::Command::new(env!("CARGO"))
            .args([
                "check",
                "--quiet",
                "-p",
                "qapi-types",
                "--no-default-features",
            ])
            .args(["--features", feature])
            .current_dir(project_root())
            .status()
            .context("can't run cargo check")?;
        if !status.success() {
            failed.push(label.to_owned());
        }
    }
    if !failed.is_empty() {
        bail!(
            "qapi-types does not build with feature(s) alone: {}",
            failed.join(", ")
        );
    }
    eprintln!(
        "features: all {} module features build alone",
        features.len()
    );
    Ok(())
}

/// The features of a manifest's `[features]` table but `default`.
fn module_features(manifest: &str) -> Vec<String> {
    manifest
        .lines()
        .skip_while(|line| line.trim() != "[features]")
        .skip(1)
        .take_while(|line| !line.trim_start().starts_with('['))
        .filter_map(|line| line.split_once('=').map(|(name, _)| name.trim()))
        .filter(|name| !name.is_empty() && !name.starts_with('#') && *name != "default")
        .map(str::to_owned)
        .collect()
}

/// A fresh, empty directory for one test, removed by the test when it passes.
#[cfg(test)]
fn test_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("xtask-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn module_features_are_read_from_the_features_table() {
        let manifest = "[package]\nname = \"x\"\n\n[features]\ndefault = [\"a\", \"b\"]\na = []\nb = [\"a\"]\n\n[dev-dependencies]\nc = \"1\"\n";
        assert_eq!(module_features(manifest), ["a", "b"]);
        let committed =
            std::fs::read_to_string(project_root().join("qapi-types/Cargo.toml")).unwrap();
        let features = module_features(&committed);
        assert!(features.iter().any(|f| f == "block_core"), "{features:?}");
        assert!(!features.iter().any(|f| f == "default"));
    }

    #[test]
    fn project_root_is_the_workspace() {
        let root = project_root();
        assert!(root.join("Cargo.toml").is_file());
        assert!(root.join("xtask").is_dir());
    }
}
