//! The project's own tasks, run as `cargo xtask TASK` (an alias in
//! `.cargo/config.toml`).
//!
//! - `regen`: check the vendored schemas and write the generated code;
//! - `check`: the same without writing, failing when committed generated
//!   files are out of date (CI runs it);
//! - `import-schemas QEMU_SOURCE_TREE`: vendor a QEMU release's schemas into
//!   `schemas/`;
//! - `bench`: compare our front end with QEMU's on the QMP schema.

mod import_schemas;
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
    fn project_root_is_the_workspace() {
        let root = project_root();
        assert!(root.join("Cargo.toml").is_file());
        assert!(root.join("xtask").is_dir());
    }
}
