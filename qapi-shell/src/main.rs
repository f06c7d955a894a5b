//! `qapi-shell`: a QMP and guest-agent shell that knows QEMU's schema.
//!
//! ```text
//! qapi-shell [OPTIONS] SOCKET                  an interactive session
//! qapi-shell [OPTIONS] SOCKET COMMAND [ARG…]   one command; the reply as JSON
//! ```
//!
//! Arguments are qmp-shell's `key=value` (dotted keys nest, JSON for
//! objects and lists) or one JSON object, read by the schema's types and
//! checked against the schema before anything is sent.  The schema is the
//! live QEMU's (`query-qmp-schema`), or the bindings' for a guest agent.
//! One-shot exit status: 0 success, 1 error reply (class and description
//! on stderr), 2 anything else (a line that does not fit the schema
//! included: nothing is sent then).

mod args;
mod complete;
mod help;
mod session;
mod shell;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use serde_json::Value;

use session::{LineError, Options, Session};

#[derive(Parser)]
#[command(name = "qapi-shell", version, about, trailing_var_arg = true)]
struct Cli {
    /// Talk to a guest agent (qemu-ga) instead of QMP.
    #[arg(long)]
    qga: bool,
    /// Send each line through `human-monitor-command` (QEMU's HMP).
    #[arg(long, conflicts_with = "qga")]
    hmp: bool,
    /// Time limit for each command, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 60.0)]
    timeout: f64,
    /// Print replies indented (the default).
    #[arg(long, conflicts_with = "compact")]
    pretty: bool,
    /// Print each reply on one line.
    #[arg(long)]
    compact: bool,
    /// Record every message sent and received to FILE (qapi-testkit's
    /// transcript format; secrets redacted).
    #[arg(long, value_name = "FILE")]
    record: Option<PathBuf>,
    /// Echo the JSON of each request on stderr.
    #[arg(short, long)]
    verbose: bool,
    /// A Unix socket path or HOST:PORT (QEMU's `unix:PATH` and
    /// `tcp:HOST:PORT` work too).
    socket: qapi_client::Address,
    /// A command to run instead of the interactive session.
    command: Option<String>,
    /// Its arguments: key=value… or one JSON object.
    args: Vec<String>,
}

/// Colours for a terminal; none for a pipe or a file.
#[derive(Clone, Copy)]
pub struct Style {
    colour: bool,
}

impl Style {
    fn paint(self, code: &str, text: &str) -> String {
        if self.colour {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    /// An error message.
    pub fn error(self, text: &str) -> String {
        self.paint("31", text)
    }

    /// An event line.
    pub fn event(self, text: &str) -> String {
        self.paint("36", text)
    }
}

/// How replies are printed.
#[derive(Clone, Copy)]
pub struct Output {
    compact: bool,
}

impl Output {
    /// A reply value as the options say.
    pub fn show(self, value: &Value) -> String {
        if self.compact {
            value.to_string()
        } else {
            serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let style = Style {
        colour: std::io::stdout().is_terminal(),
    };
    let fail = |why: String| {
        eprintln!("{}", style.error(&format!("qapi-shell: {why}")));
        ExitCode::from(2)
    };
    if !(cli.timeout > 0.0 && cli.timeout.is_finite()) {
        return fail(format!(
            "--timeout {}: must be a positive number of seconds",
            cli.timeout
        ));
    }
    let record = match &cli.record {
        Some(path) => match qapi_client::Recorder::to_file(path) {
            Ok(recorder) => Some(recorder),
            Err(e) => return fail(format!("--record {}: {e}", path.display())),
        },
        None => None,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return fail(format!("can't start: {e}")),
    };
    let options = Options {
        qga: cli.qga,
        hmp: cli.hmp,
        verbose: cli.verbose,
        timeout: Duration::from_secs_f64(cli.timeout),
        record,
    };
    let session = match runtime.block_on(Session::connect(&cli.socket, options)) {
        Ok(session) => session,
        Err(e) => return fail(e.to_string()),
    };
    let output = Output {
        compact: cli.compact,
    };
    let status = match cli.command {
        Some(command) => {
            let mut line = command;
            for arg in &cli.args {
                line.push(' ');
                line.push_str(arg);
            }
            one_shot(&runtime, &session, &line, output, style)
        }
        None => shell::run(&runtime, session, output, style),
    };
    // Whatever a task is still doing (printing an event for a line editor
    // that is gone), leaving does not wait for it.
    runtime.shutdown_timeout(Duration::from_millis(200));
    status
}

fn one_shot(
    runtime: &tokio::runtime::Runtime,
    session: &Session,
    line: &str,
    output: Output,
    style: Style,
) -> ExitCode {
    match runtime.block_on(session.run_line(line)) {
        Ok(value) => {
            match value {
                // HMP's output is text.
                Value::String(text) if session.hmp => print!("{text}"),
                value => println!("{}", output.show(&value)),
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            let (message, status) = describe(&e);
            eprintln!("{}", style.error(&message));
            ExitCode::from(status)
        }
    }
}

/// A failed line as the user reads it, and the exit status it means.
pub fn describe(error: &LineError) -> (String, u8) {
    match error {
        LineError::Usage(why) => (why.clone(), 2),
        LineError::Client(qapi_client::Error::Qmp(e)) => {
            (format!("error: {}: {}", e.class.as_str(), e.desc), 1)
        }
        LineError::Client(e) => (format!("qapi-shell: {e}"), 2),
    }
}
