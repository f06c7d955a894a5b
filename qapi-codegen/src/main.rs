//! `qapi-codegen`: check QAPI schemas and show the checked model.
//!
//! ```text
//! qapi-codegen check [--rules RELEASE] FILE...
//! qapi-codegen dump  [--rules RELEASE] FILE
//! qapi-codegen generate [--rules RELEASE] [--core-path PATH] [--features] [--baseline RELEASE] --out DIR FILE
//! qapi-codegen introspect [--rules RELEASE] FILE
//! qapi-codegen diff [--rules RELEASE] [--old-rules R] [--new-rules R] OLD NEW
//! ```
//!
//! Exit status: 0 when every schema is valid, 1 when one is invalid or
//! unreadable (each error is printed to stderr in QEMU's format), 2 for a
//! usage error.

// Generating is mostly building and dropping token trees; glibc's malloc
// was a third of the instructions (see BENCHMARKS.md, code generation).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use qapi_codegen::{Config, Rules};

#[derive(Debug, Parser)]
#[command(
    version,
    about = "Check QAPI schemas with QEMU's rules and show the checked model"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check schemas; print nothing when all are valid, every error otherwise.
    Check {
        #[command(flatten)]
        rules: RulesArg,
        /// Root schema files (each one's `include`s are followed).
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Check one schema and print its checked model as stable text.
    Dump {
        #[command(flatten)]
        rules: RulesArg,
        /// The root schema file.
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Check one schema and write Rust bindings for it into a folder
    /// (`mod.rs` and one file per schema module; include it with `mod`),
    /// with `introspection.json`, the schema's introspection document.
    Generate {
        #[command(flatten)]
        rules: RulesArg,
        /// The folder to write into (created if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// The path the generated code uses for the core traits.
        #[arg(long, value_name = "PATH", default_value = "::qapi_types")]
        core_path: String,
        /// Put each schema module behind a cargo feature of the same name,
        /// and print the `[features]` table for Cargo.toml.
        #[arg(long)]
        features: bool,
        /// The oldest QEMU release whose replies must decode (`7.2`):
        /// required reply members that appeared later become `Option`.
        #[arg(long, value_name = "RELEASE", value_parser = parse_release)]
        baseline: Option<qapi_codegen::since::Release>,
        /// The protocol of the schema's commands: `qmp`, or `qga` for the
        /// guest agent (its commands then implement `QgaCommand`).
        #[arg(long, value_name = "PROTOCOL", default_value = "qmp", value_parser = parse_protocol)]
        protocol: qapi_codegen::emit::Protocol,
        /// The root schema file.
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Print the introspection document of a schema (what
    /// `query-qmp-schema` returns, with real type names and every
    /// conditional part marked `if`).
    Introspect {
        #[command(flatten)]
        rules: RulesArg,
        /// The root schema file.
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// List what changed between two schemas: commands, events, members,
    /// enum values, union branches, features.  Each side is a root schema
    /// file, or an introspection document (a saved `query-qmp-schema`
    /// reply, a JSON array).  A schema inside a QEMU source tree is checked
    /// with the rules of the release its VERSION file names.
    Diff {
        /// Rules for both sides (default: from each tree's VERSION file,
        /// else the newest).
        #[arg(long, value_name = "RELEASE")]
        rules: Option<Rules>,
        /// Rules for the old side.
        #[arg(long, value_name = "RELEASE")]
        old_rules: Option<Rules>,
        /// Rules for the new side.
        #[arg(long, value_name = "RELEASE")]
        new_rules: Option<Rules>,
        /// The old schema.
        #[arg(value_name = "OLD")]
        old: PathBuf,
        /// The new schema.
        #[arg(value_name = "NEW")]
        new: PathBuf,
    },
}

#[derive(Debug, Args)]
struct RulesArg {
    /// Check with the rules of this QEMU release (5.2, 7.2, 10.0 or 10.2).
    #[arg(long, value_name = "RELEASE", default_value_t = Rules::default())]
    rules: Rules,
}

impl RulesArg {
    fn config(&self) -> Config {
        Config::new().rules(self.rules)
    }
}

fn main() -> ExitCode {
    // Usage errors exit with clap's code 2; --help and --version with 0.
    let cli = Cli::parse();
    match cli.command {
        Command::Check { rules, files } => {
            let config = rules.config();
            let mut ok = true;
            for file in &files {
                match config.load(file) {
                    // The process ends soon: freeing the model piece by
                    // piece would only cost time.
                    Ok(schema) => std::mem::forget(schema),
                    Err(err) => {
                        eprintln!("{err}");
                        ok = false;
                    }
                }
            }
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Command::Generate {
            rules,
            out,
            core_path,
            features,
            baseline,
            protocol,
            file,
        } => {
            let schema = match rules.config().load(&file) {
                Ok(schema) => schema,
                Err(err) => {
                    eprintln!("{err}");
                    return ExitCode::FAILURE;
                }
            };
            let options = qapi_codegen::emit::Options {
                core_path,
                schema_name: file
                    .file_name()
                    .map_or_else(|| "QAPI".to_owned(), |n| n.to_string_lossy().into_owned()),
                features,
                baseline,
                protocol,
            };
            let generated = match qapi_codegen::emit::generate(&schema, &options) {
                Ok(g) => g,
                Err(err) => {
                    eprintln!("qapi-codegen: {err}");
                    return ExitCode::FAILURE;
                }
            };
            if let Err(err) = generated.write_to(&out) {
                eprintln!("qapi-codegen: can't write to {}: {err}", out.display());
                return ExitCode::FAILURE;
            }
            // What the bindings expect on the wire, for comparing with a
            // live QEMU's query-qmp-schema (qapi-introspect).
            let document = qapi_codegen::introspect::introspection_text(&schema);
            let path = out.join("introspection.json");
            if let Err(err) = std::fs::write(&path, document) {
                eprintln!("qapi-codegen: can't write {}: {err}", path.display());
                return ExitCode::FAILURE;
            }
            if features {
                print!("{}", generated.features_table());
            }
            ExitCode::SUCCESS
        }
        Command::Introspect { rules, file } => match rules.config().load(&file) {
            Ok(schema) => {
                let document = qapi_codegen::introspect::introspection(&schema);
                print_or_fail(&format!("{document:#}\n"))
            }
            Err(err) => {
                eprintln!("{err}");
                ExitCode::FAILURE
            }
        },
        Command::Diff {
            rules,
            old_rules,
            new_rules,
            old,
            new,
        } => {
            let load = |file: &PathBuf, rules: Option<Rules>| diff_side(file, rules);
            let (old_doc, new_doc) = match (
                load(&old, old_rules.or(rules)),
                load(&new, new_rules.or(rules)),
            ) {
                (Ok(o), Ok(n)) => (o, n),
                (Err(err), _) | (_, Err(err)) => {
                    eprintln!("{err}");
                    return ExitCode::FAILURE;
                }
            };
            let comparison =
                qapi_introspect::Comparison::new(&old_doc.0, &new_doc.0, old_doc.1, new_doc.1);
            print_or_fail(&comparison.to_string())
        }
        Command::Dump { rules, file } => match rules.config().load(&file) {
            Ok(schema) => {
                let text = qapi_codegen::dump::dump(&schema);
                // A closed pipe (`qapi-codegen dump x.json | head`) is not an error.
                match std::io::stdout().lock().write_all(text.as_bytes()) {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
                    Err(err) => {
                        eprintln!("qapi-codegen: can't write the dump: {err}");
                        ExitCode::FAILURE
                    }
                }
            }
            Err(err) => {
                eprintln!("{err}");
                ExitCode::FAILURE
            }
        },
    }
}

/// Parses `MAJOR.MINOR` (a micro part is ignored).
fn parse_release(text: &str) -> Result<qapi_codegen::since::Release, String> {
    let mut parts = text.split('.');
    let number = |part: Option<&str>| part.and_then(|p| p.parse::<u32>().ok());
    match (number(parts.next()), number(parts.next())) {
        (Some(major), Some(minor)) => Ok((major, minor)),
        _ => Err(format!("expected a release like 7.2, not '{text}'")),
    }
}

fn parse_protocol(text: &str) -> Result<qapi_codegen::emit::Protocol, String> {
    match text {
        "qmp" => Ok(qapi_codegen::emit::Protocol::Qmp),
        "qga" => Ok(qapi_codegen::emit::Protocol::GuestAgent),
        _ => Err(format!("expected qmp or qga, not '{text}'")),
    }
}

/// Writes to stdout; a closed pipe is not an error.
fn print_or_fail(text: &str) -> ExitCode {
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("qapi-codegen: can't write to stdout: {err}");
            ExitCode::FAILURE
        }
    }
}

/// One side of `diff`: the introspection document and a label for it.
fn diff_side(
    file: &std::path::Path,
    rules: Option<Rules>,
) -> Result<(qapi_introspect::Schema, String), String> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("qapi-codegen: can't read {}: {e}", file.display()))?;
    if text.trim_start().starts_with('[') {
        let schema = qapi_introspect::Schema::from_json(&text)
            .map_err(|e| format!("{}: {e}", file.display()))?;
        return Ok((schema, file.display().to_string()));
    }
    let version = qemu_version_of(file);
    let rules = rules
        .or_else(|| version.as_deref().and_then(Rules::for_version))
        .unwrap_or_default();
    let schema = Config::new()
        .rules(rules)
        .load(file)
        .map_err(|e| e.to_string())?;
    let document = qapi_codegen::introspect::introspection(&schema);
    let schema = qapi_introspect::Schema::from_json(&document.to_string())
        .map_err(|e| format!("{}: {e}", file.display()))?;
    let label = match version {
        Some(v) => format!("QEMU {} schema", v.trim()),
        None => file.display().to_string(),
    };
    Ok((schema, label))
}

/// The release named by the `VERSION` file of the QEMU source tree that
/// holds `file`, if any.
fn qemu_version_of(file: &std::path::Path) -> Option<String> {
    let absolute = std::fs::canonicalize(file).ok()?;
    absolute
        .ancestors()
        .skip(1)
        .take(4)
        .find_map(|dir| std::fs::read_to_string(dir.join("VERSION")).ok())
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
    fn rules_default_to_the_newest_release() {
        let cli = Cli::try_parse_from(["qapi-codegen", "check", "a.json"]).unwrap();
        let Command::Check { rules, files } = cli.command else {
            panic!("expected check");
        };
        assert_eq!(rules.rules, Rules::default());
        assert_eq!(files, [PathBuf::from("a.json")]);
    }

    #[test]
    fn rules_accept_a_release_name() {
        let cli =
            Cli::try_parse_from(["qapi-codegen", "dump", "--rules", "7.2", "a.json"]).unwrap();
        let Command::Dump { rules, .. } = cli.command else {
            panic!("expected dump");
        };
        assert_eq!(rules.rules, Rules::V7_2);
    }

    #[test]
    fn unknown_rules_are_a_usage_error() {
        let err =
            Cli::try_parse_from(["qapi-codegen", "check", "--rules", "9.9", "a.json"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn check_without_files_is_a_usage_error() {
        let err = Cli::try_parse_from(["qapi-codegen", "check"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
    }
}
