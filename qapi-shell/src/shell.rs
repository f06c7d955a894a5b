//! The interactive session: a line editor completing from the schema,
//! events printed above the prompt as they come, history kept across
//! sessions.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use qapi_introspect::Schema;
use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::history::DefaultHistory;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{
    CompletionType, Config, Context, Editor, ExternalPrinter, Helper, Highlighter, Hinter,
};

use crate::help::{self, Docs};
use crate::session::{Peer, Session};
use crate::{describe, Output, Style};

/// The shell's own commands, completed with the schema's.
const SHELL_COMMANDS: &[&str] = &["help", "events", "quit"];

#[derive(Helper, Hinter, Highlighter)]
struct LineHelper {
    schema: Arc<Schema>,
    hmp: bool,
    /// In transaction mode a line is an action, not a command.
    transaction: bool,
}

impl Completer for LineHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        if self.hmp {
            return Ok((pos, Vec::new()));
        }
        let (start, candidates) = if self.transaction {
            crate::complete::complete_action(&self.schema, &line[..pos])
        } else {
            crate::complete::complete(&self.schema, SHELL_COMMANDS, &line[..pos])
        };
        let pairs = candidates
            .into_iter()
            .map(|c| Pair {
                display: c.display,
                replacement: c.replacement,
            })
            .collect();
        Ok((start, pairs))
    }
}

impl Validator for LineHelper {
    /// A line with an open `{` or `[` goes on (long JSON over several
    /// lines).
    fn validate(&self, ctx: &mut ValidationContext<'_>) -> rustyline::Result<ValidationResult> {
        let mut depth = 0i64;
        let mut in_string = false;
        let mut escaped = false;
        for c in ctx.input().chars() {
            match (in_string, escaped, c) {
                (true, true, _) => escaped = false,
                (true, false, '\\') => escaped = true,
                (true, false, '"') => in_string = false,
                (true, false, _) => {}
                (false, _, '"') => in_string = true,
                (false, _, '{' | '[') => depth += 1,
                (false, _, '}' | ']') => depth -= 1,
                _ => {}
            }
        }
        Ok(if depth > 0 {
            ValidationResult::Incomplete
        } else {
            ValidationResult::Valid(None)
        })
    }
}

/// Which events are shown.
enum EventFilter {
    All,
    None,
    Named(Vec<String>),
}

impl EventFilter {
    fn shows(&self, name: &str) -> bool {
        match self {
            EventFilter::All => true,
            EventFilter::None => false,
            EventFilter::Named(names) => names.iter().any(|n| n.eq_ignore_ascii_case(name)),
        }
    }
}

/// Where history is kept: `$QAPI_SHELL_HISTORY`, else the user's data
/// directory (`~/.local/share/qapi-shell/history` on Linux).
fn history_path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("QAPI_SHELL_HISTORY") {
        return Some(PathBuf::from(path));
    }
    let dirs = directories::ProjectDirs::from("", "", "qapi-shell")?;
    Some(dirs.data_dir().join("history"))
}

/// Runs the interactive session until Ctrl-D, `quit`, or QEMU going away.
pub fn run(
    runtime: &tokio::runtime::Runtime,
    session: Session,
    output: Output,
    style: Style,
) -> ExitCode {
    let config = Config::builder()
        .completion_type(CompletionType::List)
        .auto_add_history(false)
        .build();
    let mut editor: Editor<LineHelper, DefaultHistory> = match Editor::with_config(config) {
        Ok(editor) => editor,
        Err(e) => {
            eprintln!("{}", style.error(&format!("qapi-shell: no terminal: {e}")));
            return ExitCode::from(2);
        }
    };
    let schema = session.schema.clone();
    editor.set_helper(Some(LineHelper {
        schema: schema.clone(),
        hmp: session.hmp,
        transaction: false,
    }));
    let history = history_path();
    if let Some(path) = &history {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = editor.load_history(path);
    }
    let filter = Arc::new(Mutex::new(EventFilter::All));
    let gone = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Set when the user leaves, so that the session closing is not news.
    let leaving = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut events_task = None;
    if let Peer::Qmp(qmp) = &session.peer {
        match editor.create_external_printer() {
            Ok(mut printer) => {
                let mut events = qmp.events();
                let filter = filter.clone();
                let gone = gone.clone();
                let leaving = leaving.clone();
                events_task = Some(runtime.spawn(async move {
                    loop {
                        match events.recv_raw().await {
                            Some(Ok(event)) => {
                                let shows = filter.lock().map(|f| f.shows(event.name())).unwrap_or(true);
                                if shows {
                                    let _ = printer.print(format!("{}\n", style.event(&event_line(event.json()))));
                                }
                            }
                            Some(Err(qapi_client::Error::EventsLagged { missed })) => {
                                let _ = printer.print(format!("({missed} events missed)\n"));
                            }
                            Some(Err(_)) | None => {
                                gone.store(true, std::sync::atomic::Ordering::Release);
                                if leaving.load(std::sync::atomic::Ordering::Acquire) {
                                    return;
                                }
                                let _ = printer.print(style.error("qapi-shell: QEMU closed the connection; press Enter to leave\n"));
                                return;
                            }
                        }
                    }
                }));
            }
            Err(e) => eprintln!("qapi-shell: events are shown after each command only: {e}"),
        }
    }
    println!(
        "Connected: {} commands in {}. Tab completes, `help COMMAND` explains, Ctrl-D leaves.",
        schema.commands().len(),
        session.schema_name()
    );
    let prompt = if session.hmp { "(hmp) " } else { "(qapi) " };
    let docs = match session.peer {
        Peer::Qmp(_) => Docs::qmp(),
        Peer::Qga(_) => Docs::qga(),
    };
    // qmp-shell's transaction mode: `transaction(`, one action a line,
    // `)` sends them.
    let mut transaction: Option<Vec<serde_json::Value>> = None;
    let code = loop {
        if gone.load(std::sync::atomic::Ordering::Acquire) {
            break ExitCode::from(2);
        }
        if let Some(helper) = editor.helper_mut() {
            helper.transaction = transaction.is_some();
        }
        let prompt = if transaction.is_some() {
            "(qapi transaction) "
        } else {
            prompt
        };
        let line = match editor.readline(prompt) {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("{}", style.error(&format!("qapi-shell: {e}")));
                break ExitCode::from(2);
            }
        };
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let _ = editor.add_history_entry(line);
        if let Some(path) = &history {
            let _ = editor.save_history(path);
        }
        if gone.load(std::sync::atomic::Ordering::Acquire) {
            break ExitCode::from(2);
        }
        if let Some(actions) = &mut transaction {
            if line != ")" {
                match crate::args::transaction_line(&schema, &crate::args::words(line)) {
                    Ok(action) => actions.push(action),
                    Err(e) => eprintln!("{}", style.error(&e.0)),
                }
                continue;
            }
        }
        let outcome_of_transaction = match (line, transaction.take()) {
            (")", Some(actions)) => Some(actions),
            ("transaction(", None) if !session.hmp => {
                transaction = Some(Vec::new());
                println!("one action a line (ACTION key=value…); `)` sends them all");
                continue;
            }
            (_, none) => {
                transaction = none;
                None
            }
        };
        if !session.hmp && outcome_of_transaction.is_none() {
            if line == "quit" || line == "exit" {
                break ExitCode::SUCCESS;
            }
            if let Some(topic) = line
                .strip_prefix("help")
                .filter(|r| r.is_empty() || r.starts_with(' '))
            {
                println!("{}", help::help(&schema, docs, topic.trim()));
                continue;
            }
            if let Some(command) = line.strip_suffix('?') {
                println!("{}", help::help(&schema, docs, command.trim()));
                continue;
            }
            if let Some(rest) = line
                .strip_prefix("events")
                .filter(|r| r.is_empty() || r.starts_with(' '))
            {
                let mut filter = filter.lock().unwrap_or_else(|e| e.into_inner());
                *filter = match rest.trim() {
                    "" | "on" => EventFilter::All,
                    "off" => EventFilter::None,
                    names => {
                        EventFilter::Named(names.split_whitespace().map(str::to_owned).collect())
                    }
                };
                continue;
            }
        }
        // Ctrl-C while a call runs gives up on it (the call's error says
        // whether the request went out).
        let outcome = runtime.block_on(async {
            let call = async {
                match outcome_of_transaction {
                    Some(actions) => session.run_transaction(actions).await,
                    None => session.run_line(line).await,
                }
            };
            tokio::select! {
                outcome = call => Some(outcome),
                _ = tokio::signal::ctrl_c() => None,
            }
        });
        match outcome {
            None => eprintln!(
                "{}",
                style.error("cancelled: the command may still run if it reached QEMU")
            ),
            Some(Ok(serde_json::Value::String(text))) if session.hmp => print!("{text}"),
            Some(Ok(value)) => println!("{}", output.show(&value)),
            Some(Err(e)) => eprintln!("{}", style.error(&describe(&e).0)),
        }
    };
    leaving.store(true, std::sync::atomic::Ordering::Release);
    if let Some(task) = events_task {
        task.abort();
    }
    code
}

/// An event as the shell shows it: `event NAME {data}`.
fn event_line(json: &str) -> String {
    let Ok(message) = serde_json::from_str::<serde_json::Value>(json) else {
        return format!("event {json}");
    };
    let name = message["event"].as_str().unwrap_or("?");
    match message.get("data") {
        Some(data) => format!("event {name} {data}"),
        None => format!("event {name}"),
    }
}
