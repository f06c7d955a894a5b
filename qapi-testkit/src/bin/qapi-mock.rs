//! `qapi-mock`: a recorded QEMU (or guest agent) as a fake one, for test
//! suites in any language; schema checks and format conversion of
//! transcripts.
//!
//! ```text
//! qapi-mock serve [--qga] [--any-order] [--ignore-arguments]
//!                 [--fallback COMMAND=JSON]... [--check-schema] TRANSCRIPT SOCKET
//! qapi-mock check [--qga] TRANSCRIPT...
//! qapi-mock convert [--to jsonl|libvirt|doc] INPUT [OUTPUT]
//! ```
//!
//! Exit status: 0 when all went as the transcript says (serve) or every
//! message decodes (check); 1 when not, with the report; 2 when the files
//! or the socket cannot be used.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use qapi_testkit::{check, Format, Protocol, Replay, Transcript};

#[derive(Parser)]
#[command(name = "qapi-mock", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serves TRANSCRIPT as a fake QEMU (or guest agent) to one client on
    /// SOCKET, then prints the report: what matched, what did not, what
    /// the client never asked.  Prints "listening on SOCKET" once clients
    /// may connect.
    Serve {
        /// Serve a guest agent's transcript (the default is what the
        /// transcript says, else QMP).
        #[arg(long)]
        qga: bool,
        /// Match a request with any of the transcript's not answered yet.
        #[arg(long)]
        any_order: bool,
        /// Compare commands alone, not their arguments.
        #[arg(long)]
        ignore_arguments: bool,
        /// COMMAND=JSON: answer COMMAND with JSON (a whole reply, or the
        /// return value) when no request of the transcript matches.
        #[arg(long, value_name = "COMMAND=JSON")]
        fallback: Vec<String>,
        /// Refuse requests whose arguments the bindings reject.
        #[arg(long)]
        check_schema: bool,
        /// The transcript (JSON lines, libvirt's .replies or QEMU's doc
        /// form).
        transcript: PathBuf,
        /// A Unix socket path, or HOST:PORT for TCP.
        socket: String,
    },
    /// Decodes every message of each TRANSCRIPT with the bindings (or
    /// checks it against an introspection document); prints each that
    /// does not fit (FILE:LINE: command: why) and a tally.
    Check {
        /// Check against the guest agent's bindings (the default is what
        /// each transcript says, else QMP).
        #[arg(long)]
        qga: bool,
        /// Check against this introspection document (what a QEMU's
        /// `query-qmp-schema` returned: the JSON array, or a whole reply)
        /// instead of the bindings.
        #[arg(long, value_name = "FILE")]
        schema: Option<PathBuf>,
        #[arg(required = true)]
        transcripts: Vec<PathBuf>,
    },
    /// Rewrites a transcript in another format (read from any).
    Convert {
        /// jsonl, libvirt or doc.
        #[arg(long, default_value = "jsonl", value_parser = parse_format)]
        to: Format,
        input: PathBuf,
        /// Where to write; standard output if absent.
        output: Option<PathBuf>,
    },
}

fn parse_format(name: &str) -> Result<Format, String> {
    Format::from_name(name).ok_or_else(|| format!("unknown format {name:?}: jsonl, libvirt or doc"))
}

/// An error that ends the program with status 2.
struct Fatal(String);

impl<E: std::fmt::Display> From<E> for Fatal {
    fn from(e: E) -> Fatal {
        Fatal(e.to_string())
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve {
            qga,
            any_order,
            ignore_arguments,
            fallback,
            check_schema,
            transcript,
            socket,
        } => serve(
            ServeOptions {
                qga,
                any_order,
                ignore_arguments,
                fallback,
                check_schema,
            },
            &transcript,
            &socket,
        ),
        Command::Check {
            qga,
            schema,
            transcripts,
        } => run_check(qga, schema.as_deref(), &transcripts),
        Command::Convert { to, input, output } => convert(to, &input, output.as_deref()),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(Fatal(why)) => {
            eprintln!("qapi-mock: {why}");
            ExitCode::from(2)
        }
    }
}

/// Writes to standard output; a reader that went away (`| head`) is not an
/// error.
fn print(text: &str) -> Result<(), Fatal> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Fatal(format!("can't write to standard output: {e}")))
        }
        _ => Ok(()),
    }
}

struct ServeOptions {
    qga: bool,
    any_order: bool,
    ignore_arguments: bool,
    fallback: Vec<String>,
    check_schema: bool,
}

fn serve(options: ServeOptions, transcript: &Path, socket: &str) -> Result<bool, Fatal> {
    let mut replay = Replay::from_file(transcript)?;
    if options.qga {
        replay = replay.protocol(Protocol::Qga);
    }
    if options.any_order {
        replay = replay.any_order();
    }
    if options.ignore_arguments {
        replay = replay.ignore_arguments();
    }
    if options.check_schema {
        replay = replay.check_schema();
    }
    for spec in &options.fallback {
        let (command, json) = spec
            .split_once('=')
            .ok_or_else(|| Fatal(format!("--fallback {spec:?}: expected COMMAND=JSON")))?;
        let reply = serde_json::from_str(json)
            .map_err(|e| Fatal(format!("--fallback {command}: not JSON: {e}")))?;
        replay = replay.fallback(command, reply);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let report = runtime.block_on(async {
        let report = if is_tcp(socket) {
            let listener = replay.listen_tcp(socket).await?;
            print(&format!("listening on {}\n", listener.local_addr()?))?;
            serve_until_interrupted(listener.serve_one()).await?
        } else {
            let listener = replay
                .listen_unix(socket)
                .map_err(|e| Fatal(format!("can't listen on {socket}: {e}")))?;
            print(&format!("listening on {socket}\n"))?;
            serve_until_interrupted(listener.serve_one()).await?
        };
        Ok::<_, Fatal>(report)
    })?;
    print(&report.to_string())?;
    Ok(report.is_clean())
}

/// Serving ends when the client hangs up; Ctrl-C ends it sooner, as an
/// error.
async fn serve_until_interrupted(
    serving: impl std::future::Future<Output = std::io::Result<qapi_testkit::Report>>,
) -> Result<qapi_testkit::Report, Fatal> {
    tokio::select! {
        report = serving => Ok(report?),
        _ = tokio::signal::ctrl_c() => Err(Fatal("interrupted before the client hung up".into())),
    }
}

/// `HOST:PORT` (a port after the last colon, and no slash) is TCP.
fn is_tcp(socket: &str) -> bool {
    !socket.contains('/')
        && socket
            .rsplit_once(':')
            .is_some_and(|(_, port)| port.parse::<u16>().is_ok())
}

/// An introspection document: the array, or a reply whose `return` it is.
fn read_schema(path: &Path) -> Result<qapi_introspect::Schema, Fatal> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Fatal(format!("can't read {}: {e}", path.display())))?;
    let mut value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Fatal(format!("{}: not JSON: {e}", path.display())))?;
    if let Some(inner) = value.get_mut("return") {
        value = inner.take();
    }
    serde_json::from_value::<Vec<qapi_introspect::Entity>>(value)
        .map(qapi_introspect::Schema::from_entities)
        .map_err(|e| {
            Fatal(format!(
                "{}: not an introspection document: {e}",
                path.display()
            ))
        })
}

fn run_check(qga: bool, schema: Option<&Path>, files: &[PathBuf]) -> Result<bool, Fatal> {
    let schema = schema.map(read_schema).transpose()?;
    let mut total = check::Report::default();
    let mut text = String::new();
    for file in files {
        let mut transcript: Transcript = qapi_testkit::read_transcript(file)?;
        if qga {
            transcript.protocol = Some(Protocol::Qga);
        }
        let report = match &schema {
            Some(schema) => check::check_with_schema(&transcript, schema),
            None => check::check(&transcript),
        };
        for failure in &report.failed {
            text.push_str(&format!(
                "{}:{}: {}: {}\n",
                file.display(),
                failure.line,
                failure.command,
                failure.why
            ));
        }
        total.decoded += report.decoded;
        total.failed.extend(report.failed);
        total.unknown.extend(report.unknown);
        total.skipped.extend(report.skipped);
    }
    text.push_str(&format!(
        "{} decoded, {} failed, {} unknown-command, {} not JSON\n",
        total.decoded,
        total.failed.len(),
        total.unknown.len(),
        total.skipped.len()
    ));
    print(&text)?;
    Ok(total.failed.is_empty())
}

fn convert(to: Format, input: &Path, output: Option<&Path>) -> Result<bool, Fatal> {
    let transcript = qapi_testkit::read_transcript(input)?;
    let text = transcript.write(to);
    match output {
        Some(path) => std::fs::write(path, text)
            .map_err(|e| Fatal(format!("can't write {}: {e}", path.display())))?,
        None => print(&text)?,
    }
    Ok(true)
}
