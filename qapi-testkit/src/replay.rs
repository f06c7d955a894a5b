//! Serving a transcript as a fake QEMU or guest agent.
//!
//! [`Replay`] plays the server's side of a [`Transcript`] to a client:
//!
//! - **QMP**: the recorded greeting (or one made up, offering `oob`, when
//!   the transcript has none, as libvirt's files have none), then each
//!   request answered with the server's messages that followed it in the
//!   recording: its reply, with the *request's own* `id`, and the events
//!   recorded around it, in their recorded order.  `qmp_capabilities` is
//!   answered by the server itself wherever it comes.
//! - **Guest agent**: no greeting; `guest-sync` and `guest-sync-delimited`
//!   are answered by the server itself with the request's own sync value
//!   (the delimited one after a 0xFF byte), since a client picks a new
//!   random value each time; recorded syncs are not expected.
//! - A request the recording has no answer for (a `guest-shutdown` that
//!   succeeded) gets none.
//!
//! # Matching
//!
//! By default a request must be the next one the transcript has, with the
//! same command and the same arguments (`id` aside).  A request that is
//! not gets an error reply, class `GenericError`, whose description says
//! what was expected and what came (`qapi-mock: expected query-status {}
//! (transcript line 12), got stop {}`), and the mismatch is kept for the
//! [`Report`]; the transcript's position does not move, so one stray
//! request does not shift every later one.  Looser modes:
//!
//! - [`any_order`](Replay::any_order): any request of the transcript not
//!   answered yet matches, the first such in transcript order.
//! - [`ignore_arguments`](Replay::ignore_arguments): the command alone is
//!   compared.
//! - [`fallback`](Replay::fallback): a reply for a command whenever no
//!   recorded request matches (as often as it is asked).
//!
//! With [`check_schema`](Replay::check_schema) a request whose arguments
//! the bindings reject gets an error reply naming the path, before any
//! matching.
//!
//! Times recorded in the transcript are not waited for: replies go out at
//! once.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use crate::transcript::{command_of, Protocol, Side, Transcript};
use crate::wire::Requests;

/// How requests are matched to the transcript's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    InOrder,
    AnyOrder,
}

/// A transcript ready to be served (see the module documentation).
#[derive(Debug, Clone)]
pub struct Replay {
    transcript: Transcript,
    protocol: Protocol,
    order: Order,
    compare_arguments: bool,
    fallbacks: BTreeMap<String, Value>,
    check_schema: bool,
}

impl Replay {
    /// Serves `transcript`, as the protocol it names or shows (QMP when it
    /// does neither), matching strictly.
    pub fn new(transcript: Transcript) -> Replay {
        Replay {
            protocol: transcript.protocol.unwrap_or(Protocol::Qmp),
            transcript,
            order: Order::InOrder,
            compare_arguments: true,
            fallbacks: BTreeMap::new(),
            check_schema: false,
        }
    }

    /// Reads a transcript file in any of the three formats.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Replay, crate::Error> {
        Ok(Replay::new(crate::read_transcript(path.as_ref())?))
    }

    /// Serves the transcript as this protocol, whatever it says.
    pub fn protocol(mut self, protocol: Protocol) -> Replay {
        self.protocol = protocol;
        self
    }

    /// Matches a request with any of the transcript's not answered yet.
    pub fn any_order(mut self) -> Replay {
        self.order = Order::AnyOrder;
        self
    }

    /// Compares commands alone, not their arguments.
    pub fn ignore_arguments(mut self) -> Replay {
        self.compare_arguments = false;
        self
    }

    /// Answers `command` with `reply` whenever no request of the transcript
    /// matches.  `reply` is the whole message (`{"return": …}` or
    /// `{"error": …}`) or, when it is neither, the `return` value itself.
    pub fn fallback(mut self, command: impl Into<String>, reply: Value) -> Replay {
        let reply = match &reply {
            Value::Object(m) if m.contains_key("return") || m.contains_key("error") => reply,
            _ => json!({ "return": reply }),
        };
        self.fallbacks.insert(command.into(), reply);
        self
    }

    /// Refuses, with an error reply, a request whose arguments the
    /// bindings (`qapi-types`, or `qga-types` for the guest agent) reject
    /// or do not wholly know (a member they lack: a typo, or a newer
    /// QEMU's).  Commands the bindings do not know pass.
    pub fn check_schema(mut self) -> Replay {
        self.check_schema = true;
        self
    }

    /// Serves one client on `stream` until it hangs up (or sends what is
    /// not a request), then reports.
    pub async fn serve<S>(&self, stream: S) -> Report
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let mut session = Session::new(self);
        let (mut read, mut write) = tokio::io::split(stream);
        let mut requests = Requests::default();
        let mut out = Vec::new();
        if let Some(greeting) = &session.plan.greeting {
            push_message(&mut out, greeting, false);
        }
        for output in &session.plan.opening {
            output.push(&mut out, None);
        }
        loop {
            // Every request already read is answered before the replies go
            // out, in one write, as QEMU answers a burst of pipelined
            // requests.
            loop {
                match requests.buffered() {
                    Ok(Some(request)) => session.answer(request, &mut out),
                    Ok(None) => break,
                    Err(e) => {
                        session.report.stream_error = Some(e.to_string());
                        break;
                    }
                }
            }
            if !out.is_empty() {
                if let Err(e) = write.write_all(&out).await {
                    session.report.stream_error = Some(format!("writing to the client: {e}"));
                    break;
                }
                out.clear();
            }
            if session.report.stream_error.is_some() {
                break;
            }
            match requests.read(&mut read).await {
                Ok(Some(request)) => session.answer(request, &mut out),
                Ok(None) => break,
                Err(e) => {
                    session.report.stream_error = Some(e.to_string());
                    break;
                }
            }
        }
        let _ = write.shutdown().await;
        session.finish()
    }

    /// Serves on an in-memory stream: the client's end, and the task
    /// serving the other, whose [`ReplayTask::report`] comes when the
    /// client's end is dropped (the client session closed).
    pub fn in_memory(&self) -> (tokio::io::DuplexStream, ReplayTask) {
        let (client, server) = tokio::io::duplex(256 * 1024);
        let replay = self.clone();
        let task = tokio::spawn(async move { replay.serve(server).await });
        (client, ReplayTask(task))
    }

    /// Listens on a Unix socket at `path` (replacing a stale socket file).
    pub fn listen_unix(&self, path: impl AsRef<Path>) -> std::io::Result<UnixReplay> {
        let path = path.as_ref().to_owned();
        if std::fs::symlink_metadata(&path).is_ok_and(|m| {
            use std::os::unix::fs::FileTypeExt;
            m.file_type().is_socket()
        }) {
            std::fs::remove_file(&path)?;
        }
        let listener = tokio::net::UnixListener::bind(&path)?;
        Ok(UnixReplay {
            replay: self.clone(),
            listener,
            path,
        })
    }

    /// Listens on a TCP address (`127.0.0.1:0` picks a port).
    pub async fn listen_tcp(&self, address: &str) -> std::io::Result<TcpReplay> {
        let listener = tokio::net::TcpListener::bind(address).await?;
        Ok(TcpReplay {
            replay: self.clone(),
            listener,
        })
    }
}

/// The task serving an in-memory replay.
#[derive(Debug)]
pub struct ReplayTask(tokio::task::JoinHandle<Report>);

impl ReplayTask {
    /// Waits for the client to hang up and returns the report.
    pub async fn report(self) -> Report {
        match self.0.await {
            Ok(report) => report,
            Err(e) => Report {
                stream_error: Some(format!("the replay task failed: {e}")),
                ..Report::default()
            },
        }
    }
}

/// A replay listening on a Unix socket; the socket file is removed on drop.
#[derive(Debug)]
pub struct UnixReplay {
    replay: Replay,
    listener: tokio::net::UnixListener,
    path: PathBuf,
}

impl UnixReplay {
    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Accepts one client and serves it to the end.
    pub async fn serve_one(&self) -> std::io::Result<Report> {
        let (stream, _) = self.listener.accept().await?;
        Ok(self.replay.serve(stream).await)
    }
}

impl Drop for UnixReplay {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A replay listening on TCP.
#[derive(Debug)]
pub struct TcpReplay {
    replay: Replay,
    listener: tokio::net::TcpListener,
}

impl TcpReplay {
    /// The address it listens on.
    pub fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.listener.local_addr()
    }

    /// Accepts one client and serves it to the end.
    pub async fn serve_one(&self) -> std::io::Result<Report> {
        let (stream, _) = self.listener.accept().await?;
        Ok(self.replay.serve(stream).await)
    }
}

/// A request of the transcript.
#[derive(Debug, Clone, PartialEq)]
pub struct Expected {
    /// Where the transcript has it (0 for transcripts built in code).
    pub line: usize,
    /// The command.
    pub command: String,
    /// Its arguments (`{}` when it has none).
    pub arguments: Value,
}

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.command, self.arguments)?;
        if self.line > 0 {
            write!(f, " (transcript line {})", self.line)?;
        }
        Ok(())
    }
}

/// A request that matched nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct Mismatch {
    /// The request that came.
    pub got: Value,
    /// The one the transcript expected next (strict order), if any is
    /// left.
    pub expected: Option<Expected>,
}

/// What a replay saw, for a test's assertion.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    /// Requests read, but for those the protocol answers
    /// (`qmp_capabilities`, the guest agent's syncs).
    pub requests: usize,
    /// Requests answered from the transcript.
    pub matched: usize,
    /// Requests answered by a fallback.
    pub fallbacks: usize,
    /// Requests that matched nothing (each got an error reply).
    pub mismatches: Vec<Mismatch>,
    /// Requests the schema refused: the request and why.
    pub rejected: Vec<(Value, String)>,
    /// Requests of the transcript never made.
    pub unused: Vec<Expected>,
    /// Why serving stopped early, when the client sent what is not a
    /// request or the stream failed.
    pub stream_error: Option<String>,
}

impl Report {
    /// Every request matched, none was refused or left unmade, and the
    /// stream ended cleanly.
    pub fn is_clean(&self) -> bool {
        self.mismatches.is_empty()
            && self.rejected.is_empty()
            && self.unused.is_empty()
            && self.stream_error.is_none()
    }

    /// Panics with the report unless [`is_clean`](Self::is_clean).
    #[track_caller]
    pub fn assert_clean(&self) {
        assert!(
            self.is_clean(),
            "the replay did not go as recorded:\n{self}"
        );
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} request{}: {} matched, {} by fallback, {} mismatched, {} refused by the schema; \
             {} of the transcript's never made",
            self.requests,
            if self.requests == 1 { "" } else { "s" },
            self.matched,
            self.fallbacks,
            self.mismatches.len(),
            self.rejected.len(),
            self.unused.len()
        )?;
        for m in &self.mismatches {
            match &m.expected {
                Some(expected) => writeln!(f, "mismatch: got {}; expected {expected}", m.got)?,
                None => writeln!(f, "mismatch: got {}; the transcript has no more", m.got)?,
            }
        }
        for (request, why) in &self.rejected {
            writeln!(f, "refused: {request}: {why}")?;
        }
        for expected in &self.unused {
            writeln!(f, "never made: {expected}")?;
        }
        if let Some(e) = &self.stream_error {
            writeln!(f, "stream: {e}")?;
        }
        Ok(())
    }
}

/// One recorded request and what the server sent for it.
#[derive(Debug)]
struct Exchange {
    expected: Expected,
    recorded_id: Option<Value>,
    /// Replies and events, in recorded order.
    outputs: Vec<Output>,
    answered: bool,
}

/// A message the server sends, serialized once when the plan is made.
#[derive(Debug)]
enum Output {
    /// An event, as recorded.
    Event(String),
    /// A reply without its `id` and its closing brace: the request's id
    /// goes at the end.
    Reply(String),
}

impl Output {
    fn new(message: &Value) -> Output {
        if message.get("event").is_some() {
            return Output::Event(message.to_string());
        }
        let mut text = match message {
            Value::Object(members) if members.contains_key("id") => {
                let mut members = members.clone();
                members.remove("id");
                Value::Object(members).to_string()
            }
            _ => message.to_string(),
        };
        text.pop(); // the closing brace
        Output::Reply(text)
    }

    fn is_event(&self) -> bool {
        matches!(self, Output::Event(_))
    }

    /// Appends the message as a reply to a request with `id`.
    fn push(&self, out: &mut Vec<u8>, id: Option<&Value>) {
        match self {
            Output::Event(text) => out.extend_from_slice(text.as_bytes()),
            Output::Reply(text) => {
                out.extend_from_slice(text.as_bytes());
                if let Some(id) = id {
                    if text.len() > 1 {
                        out.push(b',');
                    }
                    out.extend_from_slice(b"\"id\":");
                    // A Value always serializes.
                    let _ = serde_json::to_writer(&mut *out, id);
                }
                out.push(b'}');
            }
        }
        out.extend_from_slice(b"\r\n");
    }
}

/// The transcript cut into what the server sends when.
#[derive(Debug, Default)]
struct Plan {
    greeting: Option<Value>,
    /// Events sent right after the greeting.
    opening: Vec<Output>,
    exchanges: Vec<Exchange>,
}

/// Commands the protocol answers, not the transcript.
fn is_protocol_command(protocol: Protocol, command: &str) -> bool {
    match protocol {
        Protocol::Qmp => command == "qmp_capabilities",
        Protocol::Qga => command == "guest-sync" || command == "guest-sync-delimited",
    }
}

fn arguments_of(request: &Value) -> Value {
    request
        .get("arguments")
        .cloned()
        .unwrap_or_else(|| Value::Object(Map::new()))
}

impl Plan {
    fn new(transcript: &Transcript, protocol: Protocol) -> Plan {
        let mut plan = Plan::default();
        // The exchange the next event belongs with: the one whose request
        // or reply came last.  `None`: the opening.
        let mut anchor: Option<usize> = None;
        // Exchanges of protocol commands, left out of the plan at the end.
        let mut dropped = Vec::new();
        for entry in &transcript.entries {
            let message = &entry.message;
            match entry.from {
                Side::Client => {
                    let command = command_of(message).unwrap_or_default().to_owned();
                    if is_protocol_command(protocol, &command) {
                        dropped.push(plan.exchanges.len());
                    }
                    plan.exchanges.push(Exchange {
                        expected: Expected {
                            line: entry.line,
                            command,
                            arguments: arguments_of(message),
                        },
                        recorded_id: message.get("id").cloned(),
                        outputs: Vec::new(),
                        answered: false,
                    });
                    anchor = Some(plan.exchanges.len() - 1);
                }
                Side::Server if message.get("QMP").is_some() && plan.greeting.is_none() => {
                    plan.greeting = Some(message.clone());
                }
                Side::Server if message.get("event").is_some() => match anchor {
                    Some(i) => plan.exchanges[i].outputs.push(Output::new(message)),
                    None => plan.opening.push(Output::new(message)),
                },
                Side::Server => {
                    // A reply: to the request with its id, else to the
                    // request before it (recordings without ids are
                    // sequential).
                    let by_id = message.get("id").and_then(|id| {
                        plan.exchanges
                            .iter()
                            .rposition(|x| x.recorded_id.as_ref() == Some(id))
                    });
                    match by_id.or(anchor) {
                        Some(i) => {
                            plan.exchanges[i].outputs.push(Output::new(message));
                            anchor = Some(i);
                        }
                        None => plan.opening.push(Output::new(message)),
                    }
                }
            }
        }
        for i in dropped.into_iter().rev() {
            let exchange = plan.exchanges.remove(i);
            // Events recorded with a protocol command go out after the
            // opening instead.
            plan.opening
                .extend(exchange.outputs.into_iter().filter(Output::is_event));
        }
        if protocol == Protocol::Qmp && plan.greeting.is_none() {
            plan.greeting = Some(json!({
                "QMP": {
                    "version": {
                        "qemu": {"major": 10, "minor": 2, "micro": 2},
                        "package": "qapi-mock"
                    },
                    "capabilities": ["oob"]
                }
            }));
        }
        plan
    }
}

/// One client's replay.
struct Session<'a> {
    replay: &'a Replay,
    plan: Plan,
    /// The first exchange not answered yet (strict order).
    cursor: usize,
    report: Report,
    /// `{}`, what a request without `arguments` has.
    no_arguments: Value,
    /// The replay's fallbacks, serialized.
    fallbacks: BTreeMap<String, Output>,
}

/// Appends a message and QEMU's line end; the guest agent's delimited sync
/// reply after a 0xFF byte.
fn push_message(out: &mut Vec<u8>, message: &Value, delimited: bool) {
    if delimited {
        out.push(0xFF);
    }
    // A Value always serializes.
    out.extend_from_slice(message.to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// The message as a reply to a request with `id`.
fn with_id(mut message: Value, id: &Option<Value>) -> Value {
    if let Value::Object(members) = &mut message {
        if members.contains_key("event") {
            return message;
        }
        match id {
            Some(id) => {
                members.insert("id".into(), id.clone());
            }
            None => {
                members.remove("id");
            }
        }
    }
    message
}

fn error_reply(desc: String, id: &Option<Value>) -> Value {
    with_id(
        json!({"error": {"class": "GenericError", "desc": desc}}),
        id,
    )
}

impl<'a> Session<'a> {
    fn new(replay: &'a Replay) -> Session<'a> {
        Session {
            replay,
            plan: Plan::new(&replay.transcript, replay.protocol),
            cursor: 0,
            report: Report::default(),
            no_arguments: Value::Object(Map::new()),
            fallbacks: replay
                .fallbacks
                .iter()
                .map(|(command, reply)| (command.clone(), Output::new(reply)))
                .collect(),
        }
    }

    fn matches(&self, exchange: &Exchange, command: &str, arguments: Option<&Value>) -> bool {
        let arguments = arguments.unwrap_or(&self.no_arguments);
        !exchange.answered
            && exchange.expected.command == command
            && (!self.replay.compare_arguments || exchange.expected.arguments == *arguments)
    }

    fn answer(&mut self, request: Value, out: &mut Vec<u8>) {
        let id = request.get("id").cloned();
        let Some(command) = command_of(&request).map(str::to_owned) else {
            self.report.requests += 1;
            let reply = error_reply(
                "qapi-mock: the request names no command (\"execute\")".into(),
                &id,
            );
            self.report.mismatches.push(Mismatch {
                got: request,
                expected: self.next_expected(),
            });
            return push_message(out, &reply, false);
        };
        let arguments = request.get("arguments");
        if is_protocol_command(self.replay.protocol, &command) {
            let (reply, delimited) = match command.as_str() {
                "qmp_capabilities" => (json!({"return": {}}), false),
                // The sync value, whatever it is (a missing one is the
                // client's problem, echoed as null).
                _ => (
                    json!({"return": arguments.and_then(|a| a.get("id")).cloned().unwrap_or(Value::Null)}),
                    command == "guest-sync-delimited",
                ),
            };
            return push_message(out, &with_id(reply, &id), delimited);
        }
        self.report.requests += 1;
        if self.replay.check_schema {
            if let Some(why) = self.schema_refusal(&command, arguments) {
                let reply = error_reply(
                    format!("qapi-mock: {command}: the arguments do not match the schema: {why}"),
                    &id,
                );
                self.report.rejected.push((request, why));
                return push_message(out, &reply, false);
            }
        }
        let found = match self.replay.order {
            Order::InOrder => {
                while self
                    .plan
                    .exchanges
                    .get(self.cursor)
                    .is_some_and(|x| x.answered)
                {
                    self.cursor += 1;
                }
                self.plan
                    .exchanges
                    .get(self.cursor)
                    .filter(|x| self.matches(x, &command, arguments))
                    .map(|_| self.cursor)
            }
            Order::AnyOrder => self
                .plan
                .exchanges
                .iter()
                .position(|x| self.matches(x, &command, arguments)),
        };
        if let Some(i) = found {
            let exchange = &mut self.plan.exchanges[i];
            exchange.answered = true;
            self.report.matched += 1;
            for output in &exchange.outputs {
                output.push(out, id.as_ref());
            }
            return;
        }
        if let Some(reply) = self.fallbacks.get(&command) {
            self.report.fallbacks += 1;
            return reply.push(out, id.as_ref());
        }
        let arguments = arguments.unwrap_or(&self.no_arguments);
        let expected = self.next_expected();
        let desc = match (&expected, self.replay.order) {
            (_, Order::AnyOrder) => {
                format!("qapi-mock: no request of the transcript matches {command} {arguments}")
            }
            (Some(expected), Order::InOrder) => {
                format!("qapi-mock: expected {expected}, got {command} {arguments}")
            }
            (None, Order::InOrder) => format!(
                "qapi-mock: got {command} {arguments}, but the transcript has no more requests"
            ),
        };
        self.report.mismatches.push(Mismatch {
            got: request,
            expected,
        });
        push_message(out, &error_reply(desc, &id), false);
    }

    /// Why the bindings refuse these arguments, if they do.
    fn schema_refusal(&self, command: &str, arguments: Option<&Value>) -> Option<String> {
        let codec = match self.replay.protocol {
            Protocol::Qmp => qapi_types::command_codec(command),
            Protocol::Qga => qga_types::command_codec(command),
        }?;
        let arguments = arguments.unwrap_or(&self.no_arguments);
        match codec.decode_arguments(arguments.clone()) {
            Ok(again) if again == *arguments => None,
            // Members the bindings do not have are dropped on the way.
            Ok(again) => Some(format!("the bindings read them as {again}")),
            Err(why) => Some(why),
        }
    }

    fn next_expected(&self) -> Option<Expected> {
        self.plan
            .exchanges
            .iter()
            .skip(self.cursor)
            .find(|x| !x.answered)
            .map(|x| x.expected.clone())
    }

    fn finish(mut self) -> Report {
        self.report.unused = self
            .plan
            .exchanges
            .iter()
            .filter(|x| !x.answered)
            .map(|x| x.expected.clone())
            .collect();
        self.report
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::Output;

    fn sent(message: serde_json::Value, id: Option<serde_json::Value>) -> String {
        let mut out = Vec::new();
        Output::new(&message).push(&mut out, id.as_ref());
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn replies_take_the_requests_id_and_events_stay_as_recorded() {
        assert_eq!(
            sent(json!({"return": {}, "id": 7}), Some(json!("a"))),
            "{\"return\":{},\"id\":\"a\"}\r\n"
        );
        assert_eq!(
            sent(json!({"return": 1, "id": 7}), None),
            "{\"return\":1}\r\n"
        );
        assert_eq!(sent(json!({}), Some(json!(3))), "{\"id\":3}\r\n");
        assert_eq!(
            sent(json!({"event": "STOP", "id": 1}), Some(json!(3))),
            "{\"event\":\"STOP\",\"id\":1}\r\n"
        );
    }
}
