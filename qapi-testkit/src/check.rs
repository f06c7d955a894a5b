//! Every message of a transcript decoded with the bindings.
//!
//! Requests decode as their command's arguments (and must encode back to
//! the same JSON), replies as the return type of the request with their
//! `id` (or of the request before them), events as typed events;
//! `qapi-types` for QMP, `qga-types` for the guest agent.  Commands and
//! events the bindings do not know (an older or newer QEMU's) are counted
//! as unknown, not as failures.

use serde_json::Value;

pub use qapi_types::transcript::{Failure, Report};

use crate::transcript::{Protocol, Transcript};

/// Checks a transcript against the bindings of its protocol (QMP when it
/// names none).
pub fn check(transcript: &Transcript) -> Report {
    let messages = transcript.messages();
    match transcript.protocol.unwrap_or(Protocol::Qmp) {
        Protocol::Qmp => {
            qapi_types::transcript::validate(&messages, qapi_types::command_codec, decode_event)
        }
        // The guest agent has no events.
        Protocol::Qga => {
            qapi_types::transcript::validate(&messages, qga_types::command_codec, |_| Ok(false))
        }
    }
}

/// Decodes an event message (without timestamp) with the event's own
/// type: `Ok(false)` when the bindings do not know the event.
pub fn decode_event(message: Value) -> Result<bool, String> {
    let name = message["event"].as_str().unwrap_or_default();
    match qapi_types::event_codec(name) {
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
}

/// Checks a transcript against an introspection document (what a
/// QEMU's `query-qmp-schema` returned), rather than the bindings: for
/// transcripts of a QEMU newer or older than the bindings.  Requests are
/// checked as their command's arguments, replies as the return type of the
/// request they answer (by `id`, else the request before), events as
/// their data.  Commands and events the document lacks are unknown.
pub fn check_with_schema(transcript: &Transcript, schema: &qapi_introspect::Schema) -> Report {
    use qapi_types::transcript::Failure;

    use crate::transcript::{command_of, Side};

    let mut report = Report::default();
    let mut by_id: Vec<(Value, String)> = Vec::new();
    let mut previous: Option<String> = None;
    let known = |name: &str| schema.get(name).is_some();
    for (line, why) in &transcript.skipped {
        report.skipped.push((*line, why.clone()));
    }
    for entry in &transcript.entries {
        let message = &entry.message;
        let mut fail = |command: &str, problems: Vec<qapi_introspect::Problem>| {
            if problems.is_empty() {
                report.decoded += 1;
            } else {
                let why: Vec<String> = problems.iter().map(ToString::to_string).collect();
                report.failed.push(Failure {
                    line: entry.line,
                    command: command.to_owned(),
                    why: why.join("; "),
                });
            }
        };
        match entry.from {
            Side::Client => {
                let Some(command) = command_of(message) else {
                    fail(
                        "?",
                        vec![qapi_introspect::Problem {
                            path: String::new(),
                            why: "a request without \"execute\"".into(),
                        }],
                    );
                    continue;
                };
                previous = Some(command.to_owned());
                if let Some(id) = message.get("id") {
                    by_id.push((id.clone(), command.to_owned()));
                }
                if !known(command) {
                    report.unknown.push((entry.line, command.to_owned()));
                    continue;
                }
                let arguments = message
                    .get("arguments")
                    .cloned()
                    .unwrap_or_else(|| serde_json::json!({}));
                fail(command, schema.check_arguments(command, &arguments));
            }
            Side::Server => {
                if let Some(event) = message.get("event").and_then(Value::as_str) {
                    if !known(event) {
                        report.unknown.push((entry.line, event.to_owned()));
                        continue;
                    }
                    let data = message
                        .get("data")
                        .cloned()
                        .unwrap_or_else(|| serde_json::json!({}));
                    fail(event, schema.check_event(event, &data));
                } else if let Some(value) = message.get("return") {
                    let answered = message
                        .get("id")
                        .and_then(|id| by_id.iter().rev().find(|(known, _)| known == id))
                        .map(|(_, command)| command.clone())
                        .or_else(|| previous.clone());
                    match answered {
                        Some(command) if known(&command) => {
                            fail(&command, schema.check_return(&command, value))
                        }
                        Some(command) => report.unknown.push((entry.line, command)),
                        None => fail(
                            "?",
                            vec![qapi_introspect::Problem {
                                path: String::new(),
                                why: "a reply without a request".into(),
                            }],
                        ),
                    }
                } else {
                    // Greetings and error replies carry no typed data.
                    report.decoded += 1;
                }
            }
        }
    }
    report.failed.sort_by_key(|f| f.line);
    report
}
