//! Scripted fakes: a QEMU or guest agent that behaves as a test says,
//! step by step, for the cases a recording cannot show (garbage, a hang-up
//! mid-reply, a reply that never comes, a flood).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use std::time::Duration;
//! use qapi_testkit::Script;
//! use serde_json::json;
//!
//! let (stream, fake) = Script::qmp()
//!     .request()                                  // wait for a request
//!     .reply(json!({"running": true, "status": "running"}))
//!     .request()
//!     .event("STOP", json!({}))                   // an event first,
//!     .send_line(r#"{"return": {}, "id": @id}"#)  // then raw bytes; @id is the request's id
//!     .request()
//!     .hang_up()                                  // gone, mid-session
//!     .in_memory();
//! let qmp = qapi_client::Qmp::builder().connect_stream(stream).await.unwrap();
//! use qapi_types::commands::{QueryStatus, Stop};
//! assert!(qmp.execute(&QueryStatus {}).await.unwrap().running);
//! qmp.execute(&Stop {}).await.unwrap();
//! let gone = qmp.execute(&QueryStatus {}).await.unwrap_err();
//! assert!(matches!(gone, qapi_client::Error::Disconnected { .. }), "{gone:?}");
//! drop(qmp);
//! assert_eq!(fake.report().await.commands(), ["qmp_capabilities", "query-status", "stop", "query-status"]);
//! # }
//! ```
//!
//! [`Script::qmp`] sends a greeting and answers `qmp_capabilities` before
//! the steps; [`Script::qga`] answers every `guest-sync-delimited` and
//! `guest-sync` wherever one comes (a [`request`](Script::request) step
//! waits for the next other request); [`Script::raw`] does nothing of its
//! own.  After the last step the fake keeps reading requests (recording
//! them, answering none, or each with [`answer_all`](Script::answer_all))
//! until the client hangs up.  [`ScriptTask::report`] gives every request
//! read, in order: a test can assert what reached the "QEMU".

use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::transcript::command_of;
use crate::wire::Requests;

/// The greeting [`Script::qmp`] sends: QEMU 10.2.2's shape, offering `oob`.
pub const QMP_GREETING: &str = r#"{"QMP": {"version": {"qemu": {"micro": 2, "minor": 2, "major": 10}, "package": "qapi-testkit"}, "capabilities": ["oob"]}}"#;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Qmp,
    Qga,
    Raw,
}

#[derive(Debug, Clone)]
enum Step {
    Request,
    Send(Vec<u8>),
    Reply(Value),
    Sleep(Duration),
    HangUp,
    Flood { byte: u8, limit: usize },
}

/// A fake peer's behaviour (see the module documentation).
#[derive(Debug, Clone)]
#[must_use = "a script does nothing until served (in_memory, serve)"]
pub struct Script {
    kind: Kind,
    greeting: Vec<u8>,
    sync_noise: Vec<u8>,
    steps: Vec<Step>,
    answer_all: Option<Value>,
}

impl Script {
    fn new(kind: Kind) -> Script {
        Script {
            kind,
            greeting: format!("{QMP_GREETING}\r\n").into_bytes(),
            sync_noise: Vec::new(),
            steps: Vec::new(),
            answer_all: None,
        }
    }

    /// A QMP server: greeting and negotiation done before the steps.
    pub fn qmp() -> Script {
        Script::new(Kind::Qmp)
    }

    /// A guest agent: syncs answered wherever they come.
    pub fn qga() -> Script {
        Script::new(Kind::Qga)
    }

    /// A peer that does only what the steps say.
    pub fn raw() -> Script {
        Script::new(Kind::Raw)
    }

    /// Another greeting (a whole line, sent as is) for [`Script::qmp`].
    pub fn greeting(mut self, line: impl AsRef<[u8]>) -> Script {
        self.greeting = line.as_ref().to_vec();
        self.greeting.extend_from_slice(b"\r\n");
        self
    }

    /// Bytes a [`Script::qga`] agent sends before each sync reply (what
    /// a guest left in the channel).
    pub fn sync_noise(mut self, bytes: impl AsRef<[u8]>) -> Script {
        self.sync_noise = bytes.as_ref().to_vec();
        self
    }

    /// Waits for the next request (for [`Script::qga`], the next that is
    /// not a sync).  Later steps' `@id` is its id.
    pub fn request(mut self) -> Script {
        self.steps.push(Step::Request);
        self
    }

    /// Sends bytes as they are, but for each `@id`, replaced by the last
    /// request's id as JSON (`null` when it had none).
    pub fn send(mut self, bytes: impl AsRef<[u8]>) -> Script {
        self.steps.push(Step::Send(bytes.as_ref().to_vec()));
        self
    }

    /// [`send`](Self::send) followed by QEMU's line end (`\r\n`).
    pub fn send_line(self, bytes: impl AsRef<[u8]>) -> Script {
        let mut line = bytes.as_ref().to_vec();
        line.extend_from_slice(b"\r\n");
        self.send(line)
    }

    /// Answers the last request: `{"return": VALUE, "id": ID}`.
    pub fn reply(mut self, value: Value) -> Script {
        self.steps.push(Step::Reply(json!({ "return": value })));
        self
    }

    /// Fails the last request: `{"error": {"class": …, "desc": …}, "id": ID}`.
    pub fn error(mut self, class: &str, desc: &str) -> Script {
        self.steps.push(Step::Reply(
            json!({"error": {"class": class, "desc": desc}}),
        ));
        self
    }

    /// [`request`](Self::request) then [`reply`](Self::reply).
    pub fn answer(self, value: Value) -> Script {
        self.request().reply(value)
    }

    /// Sends an event, timestamped now, its members in QEMU's order
    /// (`timestamp`, `event`, `data`; no `data` when it is `{}`).
    pub fn event(self, name: &str, data: Value) -> Script {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let mut event = format!(
            r#"{{"timestamp": {{"seconds": {}, "microseconds": {}}}, "event": {}"#,
            now.as_secs(),
            now.subsec_micros(),
            Value::from(name)
        );
        if data.as_object().is_none_or(|d| !d.is_empty()) {
            event.push_str(&format!(", \"data\": {data}"));
        }
        event.push('}');
        self.send_line(event)
    }

    /// Waits.
    pub fn sleep(mut self, duration: Duration) -> Script {
        self.steps.push(Step::Sleep(duration));
        self
    }

    /// Closes the connection; the steps after it are not run.
    pub fn hang_up(mut self) -> Script {
        self.steps.push(Step::HangUp);
        self
    }

    /// Writes `byte` over and over, until the client stops reading (the
    /// write fails or stalls for a second) or `limit` bytes are out;
    /// [`ScriptReport::flooded`] says how many went.
    pub fn flood(mut self, byte: u8, limit: usize) -> Script {
        self.steps.push(Step::Flood { byte, limit });
        self
    }

    /// After the last step, answers each request with `{"return": VALUE}`
    /// instead of nothing.
    pub fn answer_all(mut self, value: Value) -> Script {
        self.answer_all = Some(value);
        self
    }

    /// Serves the script on an in-memory stream: the client's end, and the
    /// task playing the fake.
    pub fn in_memory(self) -> (tokio::io::DuplexStream, ScriptTask) {
        let (client, server) = tokio::io::duplex(64 * 1024);
        let task = tokio::spawn(async move { self.serve(server).await });
        (client, ScriptTask(task))
    }

    /// Plays the script on `stream`.
    pub async fn serve<S>(self, stream: S) -> ScriptReport
    where
        S: tokio::io::AsyncRead + AsyncWrite + Unpin,
    {
        let (read, write) = tokio::io::split(stream);
        let mut peer = Peer {
            read,
            write,
            requests: Requests::default(),
            report: ScriptReport::default(),
            last_id: None,
            kind: self.kind,
            sync_noise: self.sync_noise,
        };
        if peer
            .run(self.kind, &self.greeting, &self.steps)
            .await
            .is_ok()
        {
            // Until the client hangs up.
            while let Ok(Some(request)) = peer.next_request().await {
                if let Some(value) = &self.answer_all {
                    let reply = with_id(json!({ "return": value }), request.get("id"));
                    if peer.write_line(&reply).await.is_err() {
                        break;
                    }
                }
            }
        }
        let _ = peer.write.shutdown().await;
        peer.report
    }
}

/// The task playing a script.
#[derive(Debug)]
pub struct ScriptTask(tokio::task::JoinHandle<ScriptReport>);

impl ScriptTask {
    /// Waits for the script to end (the client hangs up, or a
    /// [`hang_up`](Script::hang_up)) and returns what it saw.
    pub async fn report(self) -> ScriptReport {
        self.0.await.unwrap_or_default()
    }
}

/// What a scripted fake saw.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScriptReport {
    /// Every request read, in order (negotiation and syncs included).
    pub requests: Vec<Value>,
    /// Bytes written by [`flood`](Script::flood) steps.
    pub flooded: usize,
}

impl ScriptReport {
    /// The commands of [`requests`](Self::requests), in order.
    pub fn commands(&self) -> Vec<&str> {
        self.requests
            .iter()
            .map(|r| command_of(r).unwrap_or("?"))
            .collect()
    }
}

fn with_id(mut message: Value, id: Option<&Value>) -> Value {
    if let Some(id) = id {
        message["id"] = id.clone();
    }
    message
}

/// Why a script stopped early: the client went away.
struct Gone;

struct Peer<R, W> {
    read: R,
    write: W,
    requests: Requests,
    report: ScriptReport,
    last_id: Option<Value>,
    kind: Kind,
    sync_noise: Vec<u8>,
}

impl<R, W> Peer<R, W>
where
    R: tokio::io::AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    async fn write(&mut self, bytes: &[u8]) -> Result<(), Gone> {
        self.write.write_all(bytes).await.map_err(|_| Gone)
    }

    async fn write_line(&mut self, message: &Value) -> Result<(), Gone> {
        let mut line = message.to_string().into_bytes();
        line.extend_from_slice(b"\r\n");
        self.write(&line).await
    }

    /// The next request; a guest agent's syncs are answered on the way.
    async fn next_request(&mut self) -> Result<Option<Value>, Gone> {
        loop {
            let request = match self.requests.read(&mut self.read).await {
                Ok(Some(request)) => request,
                Ok(None) => return Ok(None),
                Err(_) => return Err(Gone),
            };
            self.report.requests.push(request.clone());
            let command = command_of(&request).unwrap_or_default();
            if self.kind == Kind::Qga
                && (command == "guest-sync-delimited" || command == "guest-sync")
            {
                let noise = std::mem::take(&mut self.sync_noise);
                self.write(&noise).await?;
                self.sync_noise = noise;
                if command == "guest-sync-delimited" {
                    self.write(b"\xff").await?;
                }
                let value = request["arguments"]["id"].clone();
                let reply = with_id(json!({ "return": value }), request.get("id"));
                self.write_line(&reply).await?;
                continue;
            }
            return Ok(Some(request));
        }
    }

    async fn run(&mut self, kind: Kind, greeting: &[u8], steps: &[Step]) -> Result<(), Gone> {
        if kind == Kind::Qmp {
            self.write(greeting).await?;
            let request = self.next_request().await?.ok_or(Gone)?;
            let reply = with_id(json!({"return": {}}), request.get("id"));
            self.write_line(&reply).await?;
        }
        for step in steps {
            match step {
                Step::Request => {
                    let request = self.next_request().await?.ok_or(Gone)?;
                    self.last_id = request.get("id").cloned();
                }
                Step::Send(bytes) => {
                    let id = self
                        .last_id
                        .as_ref()
                        .map_or_else(|| "null".to_owned(), Value::to_string);
                    let bytes = replace_id(bytes, id.as_bytes());
                    self.write(&bytes).await?;
                }
                Step::Reply(message) => {
                    let reply = with_id(message.clone(), self.last_id.as_ref());
                    self.write_line(&reply).await?;
                }
                Step::Sleep(duration) => tokio::time::sleep(*duration).await,
                Step::HangUp => return Err(Gone),
                Step::Flood { byte, limit } => {
                    let chunk = vec![*byte; 16 * 1024];
                    while self.report.flooded < *limit {
                        let write = self.write.write_all(&chunk);
                        match tokio::time::timeout(Duration::from_secs(1), write).await {
                            Ok(Ok(())) => self.report.flooded += chunk.len(),
                            _ => break,
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// `bytes` with each `@id` replaced by `id`.
fn replace_id(bytes: &[u8], id: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut rest = bytes;
    while let Some(at) = rest.windows(3).position(|w| w == b"@id") {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(id);
        rest = &rest[at + 3..];
    }
    out.extend_from_slice(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::replace_id;

    #[test]
    fn each_id_placeholder_is_replaced() {
        assert_eq!(
            replace_id(b"{\"id\": @id, \"x\": \"@id\"}", b"7"),
            b"{\"id\": 7, \"x\": \"7\"}"
        );
        assert_eq!(replace_id(b"@i", b"7"), b"@i");
    }
}
