//! Checks a QMP transcript against the bindings.
//!
//! ```text
//! cargo run -p qapi-types --example validate-transcript -- FILE
//! ```
//!
//! FILE holds messages the way QEMU's documentation writes them: `-> ` before
//! a request, `<- ` before a reply or an event, JSON possibly spread over
//! several lines, anything else ignored.  Each reply is paired with the
//! request before it.  Prints one line per message that does not decode
//! (`LINE: command: why`, with the JSON path), then
//! `N decoded, M failed, K unknown-command`.  Commands and events the
//! bindings do not know (an older or newer QEMU's) are counted as unknown,
//! not failed.  Exit status: 0 when nothing failed, 1 otherwise, 2 when the
//! file cannot be read.

use std::process::ExitCode;

use qapi_types::transcript;
use qapi_types::{command_codec, event_codec};

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let (Some(path), None) = (args.next(), args.next()) else {
        eprintln!("usage: validate-transcript FILE");
        return ExitCode::from(2);
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(err) => {
            eprintln!(
                "validate-transcript: can't read {}: {err}",
                path.to_string_lossy()
            );
            return ExitCode::from(2);
        }
    };
    let messages = transcript::parse(&text);
    let report = transcript::validate(&messages, command_codec, |message| {
        let name = message["event"].as_str().unwrap_or_default();
        match event_codec(name) {
            Some(codec) => codec
                .decode_data(
                    message
                        .get("data")
                        .cloned()
                        .unwrap_or_else(|| serde_json::json!({})),
                )
                .map(|()| true),
            None => Ok(false),
        }
    });
    let mut text = String::new();
    for failure in &report.failed {
        text.push_str(&format!(
            "{}: {}: {}\n",
            failure.line, failure.command, failure.why
        ));
    }
    text.push_str(&format!(
        "{} decoded, {} failed, {} unknown-command\n",
        report.decoded,
        report.failed.len(),
        report.unknown.len()
    ));
    // A reader that went away (`| head`) is not an error; `println!` would
    // panic on it.
    use std::io::Write;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            eprintln!("validate-transcript: can't write to stdout: {e}");
            return ExitCode::FAILURE;
        }
        _ => {}
    }
    if report.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
