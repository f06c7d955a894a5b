//! QMP transcripts as QEMU's documentation writes them, checked against
//! the bindings.
//!
//! A transcript is text in which `-> ` starts a message to QEMU and `<- `
//! one from QEMU; the JSON may continue over the following lines, and other
//! text is ignored:
//!
//! ```text
//! -> { "execute": "query-status" }
//! <- { "return": { "running": true, "status": "running" } }
//! ```
//!
//! [`validate`] decodes every message with the typed bindings: a request's
//! arguments (which must encode back to the same JSON), the reply to the
//! request with its `id` (else the request before it), and events.

use serde_json::Value;

use crate::CommandCodec;

/// Which way a message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `->`: from the client to QEMU.
    ToQemu,
    /// `<-`: from QEMU to the client.
    FromQemu,
}

/// One message of a transcript.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// The 1-based line the message starts on.
    pub line: usize,
    /// Which way it goes.
    pub direction: Direction,
    /// The message, or why its text is not JSON (often an elision such as
    /// `...`).
    pub json: Result<Value, String>,
}

/// Splits a transcript into its messages.
pub fn parse(text: &str) -> Vec<Message> {
    let lines: Vec<&str> = text.lines().collect();
    let mut messages = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let trimmed = lines[i].trim_start();
        let direction = if trimmed.starts_with("->") {
            Direction::ToQemu
        } else if trimmed.starts_with("<-") {
            Direction::FromQemu
        } else {
            i += 1;
            continue;
        };
        let start = i;
        let mut body = trimmed[2..].to_owned();
        i += 1;
        while i < lines.len() {
            let next = lines[i].trim_start();
            if next.starts_with("->") || next.starts_with("<-") {
                break;
            }
            body.push('\n');
            body.push_str(lines[i]);
            i += 1;
        }
        let json = match serde_json::Deserializer::from_str(&body)
            .into_iter::<Value>()
            .next()
        {
            Some(Ok(value)) => Ok(value),
            Some(Err(e)) => Err(e.to_string()),
            None => Err("no JSON after the arrow".to_owned()),
        };
        messages.push(Message {
            line: start + 1,
            direction,
            json,
        });
    }
    messages
}

/// A message the bindings could not decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The line the message starts on.
    pub line: usize,
    /// The command (or event) it belongs to.
    pub command: String,
    /// Why it failed, with the JSON path where there is one.
    pub why: String,
}

/// What [`validate`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Messages decoded with the typed bindings.
    pub decoded: usize,
    /// Messages that failed to decode.
    pub failed: Vec<Failure>,
    /// Messages of commands or events the bindings do not know: the line
    /// and the name.
    pub unknown: Vec<(usize, String)>,
    /// Messages whose text is not JSON: the line and why.
    pub skipped: Vec<(usize, String)>,
}

/// Decodes every message of a transcript.  `codec` finds a command by name
/// (the generated `command_codec`); `decode_event` decodes an event message
/// without its timestamp and says whether the event is known.
pub fn validate(
    messages: &[Message],
    codec: impl Fn(&str) -> Option<CommandCodec>,
    decode_event: impl Fn(Value) -> Result<bool, String>,
) -> Report {
    let mut report = Report::default();
    // The command the next reply answers, if known: the request before it,
    // or the request with the reply's `id` (pipelined requests).
    let mut pending: Option<(String, Option<CommandCodec>)> = None;
    let mut by_id: Vec<(Value, (String, Option<CommandCodec>))> = Vec::new();
    for message in messages {
        let value = match &message.json {
            Ok(v) => v.clone(),
            Err(why) => {
                report.skipped.push((message.line, why.clone()));
                continue;
            }
        };
        let fail = |report: &mut Report, command: &str, why: String| {
            report.failed.push(Failure {
                line: message.line,
                command: command.to_owned(),
                why,
            })
        };
        match message.direction {
            Direction::ToQemu => {
                let name = value
                    .get("execute")
                    .or_else(|| value.get("exec-oob"))
                    .and_then(Value::as_str);
                let Some(name) = name else {
                    fail(&mut report, "?", "a request without \"execute\"".to_owned());
                    pending = None;
                    continue;
                };
                let known = codec(name);
                pending = Some((name.to_owned(), known));
                if let Some(id) = value.get("id") {
                    by_id.push((id.clone(), (name.to_owned(), known)));
                }
                let Some(c) = known else {
                    report.unknown.push((message.line, name.to_owned()));
                    continue;
                };
                let arguments = value
                    .get("arguments")
                    .cloned()
                    .unwrap_or_else(|| Value::Object(Default::default()));
                match c.decode_arguments(arguments.clone()) {
                    Ok(again) if again == arguments => report.decoded += 1,
                    Ok(again) => fail(
                        &mut report,
                        name,
                        format!("arguments encode back differently: {again}"),
                    ),
                    Err(why) => fail(&mut report, name, format!("arguments: {why}")),
                }
            }
            Direction::FromQemu => {
                if let Some(event) = value.get("event").and_then(Value::as_str) {
                    let event = event.to_owned();
                    let mut data = value.clone();
                    if let Value::Object(map) = &mut data {
                        map.remove("timestamp");
                    }
                    match decode_event(data) {
                        Ok(true) => report.decoded += 1,
                        Ok(false) => report.unknown.push((message.line, event)),
                        Err(why) => fail(&mut report, &event, why),
                    }
                } else if let Some(ret) = value.get("return") {
                    let answered = value
                        .get("id")
                        .and_then(|id| by_id.iter().rev().find(|(known, _)| known == id))
                        .map(|(_, request)| request)
                        .or(pending.as_ref());
                    match answered {
                        Some((_, Some(c))) => match c.decode_return(ret.clone()) {
                            Ok(()) => report.decoded += 1,
                            Err(why) => fail(&mut report, c.name, format!("return: {why}")),
                        },
                        Some((name, None)) => report.unknown.push((message.line, name.clone())),
                        None => fail(&mut report, "?", "a reply without a request".to_owned()),
                    }
                } else if value.get("error").is_some() || value.get("QMP").is_some() {
                    // Error replies and the greeting carry no typed data.
                    report.decoded += 1;
                } else {
                    fail(
                        &mut report,
                        "?",
                        "neither a reply, an error nor an event".to_owned(),
                    );
                }
            }
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_span_lines_and_prose_is_ignored() {
        let messages = parse(
            "Some prose.\n-> { \"execute\": \"x\",\n     \"arguments\": {} }\nMore prose.\n<- { \"return\": {} }\n<- { ... }\n",
        );
        assert_eq!(messages.len(), 3);
        assert_eq!(messages[0].line, 2);
        assert_eq!(messages[0].json.as_ref().unwrap()["execute"], "x");
        assert_eq!(messages[1].direction, Direction::FromQemu);
        assert!(messages[2].json.is_err());
    }
}
