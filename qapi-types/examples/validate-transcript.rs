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
    for failure in &report.failed {
        println!("{}: {}: {}", failure.line, failure.command, failure.why);
    }
    println!(
        "{} decoded, {} failed, {} unknown-command",
        report.decoded,
        report.failed.len(),
        report.unknown.len()
    );
    if report.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
