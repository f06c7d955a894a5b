//! Transcripts: what a client and a QEMU (or a guest agent) said to each
//! other, in order, read from and written to three formats.
//!
//! # The transcript format (JSON lines)
//!
//! One JSON object per line.  The first line may be a header naming the
//! format's version and the protocol:
//!
//! ```text
//! {"qapi-transcript":1,"protocol":"qmp"}
//! {"from":"server","t":0.000000,"message":{"QMP":{"version":{…},"capabilities":["oob"]}}}
//! {"from":"client","t":0.000118,"message":{"execute":"qmp_capabilities","id":0}}
//! {"from":"server","t":0.000391,"message":{"return":{},"id":0}}
//! {"from":"client","t":0.000502,"message":{"execute":"stop","id":1},"labels":["pause"]}
//! {"from":"server","t":0.000871,"message":{"timestamp":{…},"event":"STOP"}}
//! {"from":"server","t":0.000902,"message":{"return":{},"id":1}}
//! ```
//!
//! - `from`: `"client"` for a message to QEMU or the guest agent, `"server"`
//!   for one from it (greeting, replies, events).
//! - `t` (optional): seconds since the recording began.
//! - `message`: the message as it went over the wire, parsed.
//! - `labels` (optional): strings for the reader; replay ignores them.
//! - `protocol` in the header: `"qmp"` or `"qga"`.
//!
//! Blank lines are allowed.  `qapi-client` records this format (its
//! builders' `record` option), and so does `qapi-shell --record`.
//!
//! # libvirt's `.replies` files
//!
//! libvirt's test suite replays files of pretty-printed JSON messages
//! separated by blank lines: a request (`"execute"`), then QEMU's answer,
//! and so on.  The greeting is not in the file (replay makes one up).
//! [`Transcript::parse`] reads them (any sequence of JSON objects: those
//! with `execute` or `exec-oob` are the client's, the rest QEMU's), and
//! [`Transcript::to_libvirt`] writes them.
//!
//! # QEMU's documentation form
//!
//! `-> ` before a message to QEMU, `<- ` before one from it, the JSON
//! possibly spread over the next lines, other text ignored: the schema's
//! examples and `qapi_types::transcript` use it.  Messages whose text is not
//! JSON (elisions such as `{ ... }`) are kept aside in
//! [`Transcript::skipped`].

use std::fmt;
use std::time::Duration;

use serde_json::{Map, Value};

/// Which side sent a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The client: a request.
    Client,
    /// QEMU or the guest agent: the greeting, a reply or an event.
    Server,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Side::Client => "client",
            Side::Server => "server",
        }
    }
}

/// The protocol a transcript speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// QEMU's machine protocol: a greeting, `qmp_capabilities`, events.
    Qmp,
    /// The guest agent's: no greeting, `guest-sync-delimited`, no events.
    Qga,
}

impl Protocol {
    /// `"qmp"` or `"qga"`.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Qmp => "qmp",
            Protocol::Qga => "qga",
        }
    }

    fn from_name(name: &str) -> Option<Protocol> {
        match name {
            "qmp" => Some(Protocol::Qmp),
            "qga" => Some(Protocol::Qga),
            _ => None,
        }
    }
}

/// The format a transcript was read from or is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// JSON lines, this crate's own (see the module documentation).
    Jsonl,
    /// libvirt's `.replies` files.
    Libvirt,
    /// QEMU's documentation form (`->` / `<-`).
    Doc,
}

impl Format {
    /// The format's name on the command line: `jsonl`, `libvirt`, `doc`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Jsonl => "jsonl",
            Format::Libvirt => "libvirt",
            Format::Doc => "doc",
        }
    }

    /// The format named `name` (see [`name`](Self::name)).
    pub fn from_name(name: &str) -> Option<Format> {
        [Format::Jsonl, Format::Libvirt, Format::Doc]
            .into_iter()
            .find(|f| f.name() == name)
    }
}

/// One message of a transcript.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Who sent it.
    pub from: Side,
    /// The message.
    pub message: Value,
    /// When, since the recording began, where the format says.
    pub at: Option<Duration>,
    /// Free-form labels (the JSON-lines format's `labels`).
    pub labels: Vec<String>,
    /// The 1-based line of the file the message starts on (0 for entries
    /// built in code).
    pub line: usize,
}

impl Entry {
    /// A message from the client, without time or labels.
    pub fn client(message: Value) -> Entry {
        Entry::new(Side::Client, message)
    }

    /// A message from the server, without time or labels.
    pub fn server(message: Value) -> Entry {
        Entry::new(Side::Server, message)
    }

    fn new(from: Side, message: Value) -> Entry {
        Entry {
            from,
            message,
            at: None,
            labels: Vec::new(),
            line: 0,
        }
    }

    /// The command a request names (`execute` or `exec-oob`).
    pub fn command(&self) -> Option<&str> {
        command_of(&self.message)
    }

    /// This entry as one line of the JSON-lines format, without the line
    /// break.
    pub fn to_jsonl(&self) -> String {
        // Written by hand for the documented member order (a JSON object
        // from serde_json sorts its members).
        let mut line = format!("{{\"from\":\"{}\"", self.from.name());
        if let Some(at) = self.at {
            // Microseconds are as fine as a recording's clock is useful.
            line.push_str(&format!(",\"t\":{:.6}", at.as_secs_f64()));
        }
        line.push_str(&format!(",\"message\":{}", self.message));
        if !self.labels.is_empty() {
            line.push_str(&format!(",\"labels\":{}", Value::from(self.labels.clone())));
        }
        line.push('}');
        line
    }
}

/// The command a request names (`execute` or `exec-oob`), if it is one.
pub fn command_of(message: &Value) -> Option<&str> {
    message
        .get("execute")
        .or_else(|| message.get("exec-oob"))
        .and_then(Value::as_str)
}

/// A transcript that does not read, with where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {why}")]
pub struct ParseError {
    /// The 1-based line.
    pub line: usize,
    /// What is wrong there.
    pub why: String,
}

/// A conversation, in the order it happened.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Transcript {
    /// The protocol, when the file says (the JSON-lines header) or it is
    /// clear from the messages (a QMP greeting, a `guest-` command).
    pub protocol: Option<Protocol>,
    /// The messages.
    pub entries: Vec<Entry>,
    /// Messages of the documentation form whose text is not JSON: the line
    /// and why.
    pub skipped: Vec<(usize, String)>,
}

/// Every format's header line key.
const HEADER_KEY: &str = "qapi-transcript";
/// The version of the JSON-lines format this crate writes and reads.
pub const FORMAT_VERSION: u64 = 1;

impl Transcript {
    /// A transcript of these entries.
    pub fn new(protocol: Option<Protocol>, entries: Vec<Entry>) -> Transcript {
        let mut transcript = Transcript {
            protocol,
            entries,
            skipped: Vec::new(),
        };
        transcript.infer_protocol();
        transcript
    }

    /// Reads a transcript in any of the three formats, telling them apart
    /// by their first message: an object with `from` (or the header) is
    /// JSON lines, a line starting with `->` or `<-` the documentation
    /// form, any other JSON libvirt's.
    pub fn parse(text: &str) -> Result<Transcript, ParseError> {
        Transcript::parse_as(text, Transcript::detect(text))
    }

    /// Which format `text` is in (see [`parse`](Self::parse)).
    pub fn detect(text: &str) -> Format {
        for line in text.lines() {
            let trimmed = line.trim_start();
            if trimmed.starts_with("->") || trimmed.starts_with("<-") {
                return Format::Doc;
            }
            if trimmed.starts_with('{') {
                if let Ok(Value::Object(object)) = serde_json::from_str::<Value>(trimmed) {
                    if object.contains_key("from") || object.contains_key(HEADER_KEY) {
                        return Format::Jsonl;
                    }
                }
                return Format::Libvirt;
            }
        }
        Format::Doc
    }

    /// Reads a transcript in the format given.
    pub fn parse_as(text: &str, format: Format) -> Result<Transcript, ParseError> {
        let mut transcript = match format {
            Format::Jsonl => parse_jsonl(text)?,
            Format::Libvirt => parse_libvirt(text)?,
            Format::Doc => parse_doc(text),
        };
        transcript.infer_protocol();
        Ok(transcript)
    }

    fn infer_protocol(&mut self) {
        if self.protocol.is_some() {
            return;
        }
        for entry in &self.entries {
            if entry.message.get("QMP").is_some() || entry.message.get("event").is_some() {
                self.protocol = Some(Protocol::Qmp);
                return;
            }
            if let Some(command) = entry.command() {
                if command.starts_with("guest-") {
                    self.protocol = Some(Protocol::Qga);
                    return;
                }
                if command == "qmp_capabilities" || command.starts_with("query-") {
                    self.protocol = Some(Protocol::Qmp);
                    return;
                }
            }
        }
    }

    /// The transcript in the format given.
    pub fn write(&self, format: Format) -> String {
        match format {
            Format::Jsonl => self.to_jsonl(),
            Format::Libvirt => self.to_libvirt(),
            Format::Doc => self.to_doc(),
        }
    }

    /// The JSON-lines form, header first.
    pub fn to_jsonl(&self) -> String {
        let mut out = String::new();
        let mut header = Map::new();
        header.insert(HEADER_KEY.into(), Value::from(FORMAT_VERSION));
        if let Some(protocol) = self.protocol {
            header.insert("protocol".into(), Value::from(protocol.name()));
        }
        out.push_str(&Value::Object(header).to_string());
        out.push('\n');
        for entry in &self.entries {
            out.push_str(&entry.to_jsonl());
            out.push('\n');
        }
        out
    }

    /// libvirt's form: each message pretty-printed, a blank line between.
    /// The greeting is left out, as libvirt's files leave it out.
    pub fn to_libvirt(&self) -> String {
        let mut out = String::new();
        for entry in &self.entries {
            if entry.message.get("QMP").is_some() {
                continue;
            }
            if !out.is_empty() {
                out.push('\n');
            }
            let pretty = serde_json::to_string_pretty(&entry.message)
                .unwrap_or_else(|_| entry.message.to_string());
            out.push_str(&pretty);
            out.push('\n');
        }
        out
    }

    /// The documentation form, one message per line.
    pub fn to_doc(&self) -> String {
        let mut out = String::new();
        for entry in &self.entries {
            out.push_str(match entry.from {
                Side::Client => "-> ",
                Side::Server => "<- ",
            });
            out.push_str(&entry.message.to_string());
            out.push('\n');
        }
        out
    }

    /// The messages as `qapi_types::transcript` checks them.
    pub fn messages(&self) -> Vec<qapi_types::transcript::Message> {
        use qapi_types::transcript::{Direction, Message};
        let mut messages: Vec<Message> = self
            .entries
            .iter()
            .map(|entry| Message {
                line: entry.line,
                direction: match entry.from {
                    Side::Client => Direction::ToQemu,
                    Side::Server => Direction::FromQemu,
                },
                json: Ok(entry.message.clone()),
            })
            .collect();
        messages.extend(self.skipped.iter().map(|(line, why)| Message {
            line: *line,
            direction: Direction::FromQemu,
            json: Err(why.clone()),
        }));
        messages.sort_by_key(|m| m.line);
        messages
    }
}

impl fmt::Display for Transcript {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_jsonl())
    }
}

fn parse_jsonl(text: &str) -> Result<Transcript, ParseError> {
    let mut transcript = Transcript::default();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            continue;
        }
        let error = |why: String| ParseError { line, why };
        let value: Value = serde_json::from_str(trimmed).map_err(|e| error(e.to_string()))?;
        let Value::Object(mut object) = value else {
            return Err(error("not a JSON object".into()));
        };
        if let Some(version) = object.get(HEADER_KEY) {
            if version.as_u64() != Some(FORMAT_VERSION) {
                return Err(error(format!(
                    "transcript format version {version}; this reader knows {FORMAT_VERSION}"
                )));
            }
            if let Some(protocol) = object.get("protocol") {
                let name = protocol.as_str().unwrap_or_default();
                transcript.protocol = Some(Protocol::from_name(name).ok_or_else(|| {
                    error(format!(
                        "unknown protocol {protocol}; expected \"qmp\" or \"qga\""
                    ))
                })?);
            }
            continue;
        }
        let from = match object.get("from").and_then(Value::as_str) {
            Some("client") => Side::Client,
            Some("server") => Side::Server,
            _ => {
                return Err(error(
                    "\"from\" must be \"client\" or \"server\"".to_owned(),
                ))
            }
        };
        let message = object
            .remove("message")
            .ok_or_else(|| error("no \"message\"".to_owned()))?;
        let at = match object.get("t") {
            None => None,
            Some(t) => match t.as_f64() {
                Some(seconds) if seconds >= 0.0 && seconds.is_finite() => {
                    Some(Duration::from_secs_f64(seconds))
                }
                _ => return Err(error(format!("\"t\" must be seconds ≥ 0, not {t}"))),
            },
        };
        let labels = match object.get("labels") {
            None => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|l| l.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| error("\"labels\" must be strings".to_owned()))?,
            Some(_) => return Err(error("\"labels\" must be a list".to_owned())),
        };
        transcript.entries.push(Entry {
            from,
            message,
            at,
            labels,
            line,
        });
    }
    Ok(transcript)
}

/// libvirt's form, read as any sequence of JSON objects.
fn parse_libvirt(text: &str) -> Result<Transcript, ParseError> {
    let mut transcript = Transcript::default();
    let line_at = |offset: usize| text[..offset].matches('\n').count() + 1;
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
    loop {
        // Where the next value starts: past the whitespace after the last.
        let rest = &text[stream.byte_offset()..];
        let start = stream.byte_offset() + (rest.len() - rest.trim_start().len());
        match stream.next() {
            None => break,
            Some(Err(e)) => {
                return Err(ParseError {
                    line: e.line(),
                    why: e.to_string(),
                })
            }
            Some(Ok(message)) => {
                let line = line_at(start);
                if !message.is_object() {
                    return Err(ParseError {
                        line,
                        why: "not a JSON object".into(),
                    });
                }
                let from = if command_of(&message).is_some() {
                    Side::Client
                } else {
                    Side::Server
                };
                transcript.entries.push(Entry {
                    line,
                    ..Entry::new(from, message)
                });
            }
        }
    }
    Ok(transcript)
}

fn parse_doc(text: &str) -> Transcript {
    use qapi_types::transcript::Direction;
    let mut transcript = Transcript::default();
    for message in qapi_types::transcript::parse(text) {
        let from = match message.direction {
            Direction::ToQemu => Side::Client,
            Direction::FromQemu => Side::Server,
        };
        match message.json {
            Ok(value) => transcript.entries.push(Entry {
                line: message.line,
                ..Entry::new(from, value)
            }),
            Err(why) => transcript.skipped.push((message.line, why)),
        }
    }
    transcript
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const LIBVIRT: &str = r#"{
  "execute": "qmp_capabilities",
  "id": "libvirt-1"
}

{
  "return": {
  },
  "id": "libvirt-1"
}

{
  "execute": "query-status",
  "id": "libvirt-2"
}

{
  "return": {
    "status": "prelaunch",
    "running": false
  },
  "id": "libvirt-2"
}
"#;

    #[test]
    fn libvirt_files_read_with_their_lines_and_sides() {
        let t = Transcript::parse(LIBVIRT).unwrap();
        assert_eq!(Transcript::detect(LIBVIRT), Format::Libvirt);
        assert_eq!(t.entries.len(), 4);
        let lines: Vec<usize> = t.entries.iter().map(|e| e.line).collect();
        assert_eq!(lines, [1, 6, 12, 17]);
        assert_eq!(t.entries[2].from, Side::Client);
        assert_eq!(t.entries[3].from, Side::Server);
        assert_eq!(t.protocol, Some(Protocol::Qmp));
    }

    #[test]
    fn jsonl_round_trips_through_every_format() {
        let mut first = Entry::client(json!({"execute": "stop", "id": 1}));
        first.at = Some(Duration::from_micros(1500));
        first.labels = vec!["pause".into()];
        let t = Transcript::new(
            Some(Protocol::Qmp),
            vec![first, Entry::server(json!({"return": {}, "id": 1}))],
        );
        let again = Transcript::parse(&t.to_jsonl()).unwrap();
        assert_eq!(again.entries[0].at, Some(Duration::from_micros(1500)));
        assert_eq!(again.entries[0].labels, ["pause"]);
        assert_eq!(again.protocol, Some(Protocol::Qmp));
        for format in [Format::Libvirt, Format::Doc] {
            let text = t.write(format);
            assert_eq!(Transcript::detect(&text), format, "{text}");
            let back = Transcript::parse(&text).unwrap();
            let messages: Vec<_> = back.entries.iter().map(|e| (e.from, &e.message)).collect();
            let expected: Vec<_> = t.entries.iter().map(|e| (e.from, &e.message)).collect();
            assert_eq!(messages, expected, "{format:?}");
        }
    }

    #[test]
    fn bad_lines_are_errors_with_their_line() {
        let text = "{\"qapi-transcript\":1}\n\n{\"from\":\"qemu\",\"message\":{}}\n";
        let e = Transcript::parse(text).unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.why.contains("\"from\""), "{e}");
        let e = Transcript::parse("{\"qapi-transcript\":2}\n").unwrap_err();
        assert!(e.why.contains("version 2"), "{e}");
        let e = Transcript::parse("{\"execute\":\"x\"}\n\n{\"return\": [}\n").unwrap_err();
        assert_eq!(e.line, 3, "{e}");
    }

    #[test]
    fn the_documentation_form_keeps_elisions_aside() {
        let t = Transcript::parse("Example:\n-> { \"execute\": \"guest-ping\" }\n<- { ... }\n")
            .unwrap();
        assert_eq!(t.entries.len(), 1);
        assert_eq!(t.skipped.len(), 1);
        assert_eq!(t.skipped[0].0, 3);
        assert_eq!(t.protocol, Some(Protocol::Qga));
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// Small JSON values, nested a few levels.
        fn json_value() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::from),
                any::<i64>().prop_map(Value::from),
                "[a-z\\-\"\\\\é\u{1F600}\n ]{0,8}".prop_map(Value::from),
            ];
            leaf.prop_recursive(3, 24, 4, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                    prop::collection::btree_map("[a-z-]{1,6}", inner, 0..4)
                        .prop_map(|m| Value::Object(m.into_iter().collect())),
                ]
            })
        }

        /// A message: an object, as every QMP message is.
        fn message() -> impl Strategy<Value = Value> {
            prop::collection::btree_map("[a-z-]{1,8}", json_value(), 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect()))
        }

        fn entry() -> impl Strategy<Value = Entry> {
            (
                any::<bool>(),
                message(),
                prop::option::of(0u64..10_000_000),
                prop::collection::vec("[a-z0-9 ]{0,6}", 0..3),
            )
                .prop_map(|(client, message, micros, labels)| Entry {
                    from: if client { Side::Client } else { Side::Server },
                    message,
                    at: micros.map(Duration::from_micros),
                    labels,
                    line: 0,
                })
        }

        /// Text that looks like any of the three formats, and pieces of
        /// them out of order.
        fn transcript_like_text() -> impl Strategy<Value = String> {
            let piece = prop::sample::select(vec![
                "-> ",
                "<- ",
                "{",
                "}",
                "[",
                "]",
                "\"execute\"",
                "\"return\"",
                ":",
                ",",
                "\n",
                "\n\n",
                " ",
                "\"from\"",
                "\"server\"",
                "\"client\"",
                "\"message\"",
                "\"qapi-transcript\"",
                "1",
                "2",
                "\"t\"",
                "0.5",
                "\"labels\"",
                "null",
                "é",
                "\"QMP\"",
                "\"guest-sync-delimited\"",
                "\r\n",
                "\\",
            ]);
            prop_oneof![
                prop::collection::vec(piece, 0..40).prop_map(|p| p.concat()),
                any::<String>(),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(1000))]

            /// A file of any content is read or refused, in every format,
            /// without panicking.
            #[test]
            fn any_text_parses_or_is_refused(text in transcript_like_text()) {
                for format in [Format::Jsonl, Format::Libvirt, Format::Doc] {
                    let _ = Transcript::parse_as(&text, format);
                }
                let _ = Transcript::parse(&text);
            }

            /// What the JSON-lines form writes, it reads back: sides,
            /// messages, times and labels.
            #[test]
            fn jsonl_round_trips(entries in prop::collection::vec(entry(), 0..8)) {
                let transcript = Transcript { protocol: Some(Protocol::Qmp), entries, skipped: Vec::new() };
                let back = Transcript::parse(&transcript.write(Format::Jsonl)).unwrap();
                prop_assert_eq!(back.protocol, transcript.protocol);
                prop_assert_eq!(back.entries.len(), transcript.entries.len());
                for (a, b) in transcript.entries.iter().zip(&back.entries) {
                    prop_assert_eq!(a.from, b.from);
                    prop_assert_eq!(&a.message, &b.message);
                    prop_assert_eq!(&a.labels, &b.labels);
                    prop_assert_eq!(a.at, b.at);
                }
            }

            /// The documentation form keeps sides and messages.
            #[test]
            fn doc_form_round_trips(entries in prop::collection::vec(entry(), 1..8)) {
                let transcript = Transcript { protocol: None, entries, skipped: Vec::new() };
                let back = Transcript::parse_as(&transcript.write(Format::Doc), Format::Doc).unwrap();
                prop_assert!(back.skipped.is_empty(), "{:?}", back.skipped);
                prop_assert_eq!(back.entries.len(), transcript.entries.len());
                for (a, b) in transcript.entries.iter().zip(&back.entries) {
                    prop_assert_eq!(a.from, b.from);
                    prop_assert_eq!(&a.message, &b.message);
                }
            }
        }
    }
}
