//! Recording a session's traffic as a transcript, for replay in tests.
//!
//! A [`Recorder`] given to [`QmpBuilder::record`](crate::QmpBuilder::record)
//! or [`QgaBuilder::record`](crate::QgaBuilder::record) writes every message
//! the session sends and receives, greeting included, in the transcript
//! format of `qapi-testkit` (JSON lines: a header, then one
//! `{"from":"client"|"server","t":SECONDS,"message":…}` per message; that
//! crate's `transcript` module documents it and replays it).
//!
//! Secrets are hidden as the `TRACE` log hides them (passwords, secret
//! objects' data, file contents, …: the crate docs' "Logging"), unless
//! [`Recorder::keep_secrets`] says otherwise.  A request is recorded when
//! it is queued; one withdrawn unsent (its call gave up first) stays in the
//! recording.  Bytes that are not JSON (junk from a guest agent) are not
//! recorded.  A failed write is logged once and recording stops; the
//! session goes on.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::Value;

/// Where a session's messages are recorded (see the module documentation).
/// Clones share the destination, so several sessions may record into one
/// transcript.
#[derive(Clone)]
pub struct Recorder {
    inner: Arc<Inner>,
}

struct Inner {
    sink: Mutex<Sink>,
    start: Instant,
    redact: AtomicBool,
    failed: AtomicBool,
}

enum Sink {
    Writer(Box<dyn Write + Send>),
    Memory(Vec<u8>),
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("redact", &self.inner.redact.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Recorder {
    fn new(sink: Sink) -> Recorder {
        Recorder {
            inner: Arc::new(Inner {
                sink: Mutex::new(sink),
                start: Instant::now(),
                redact: AtomicBool::new(true),
                failed: AtomicBool::new(false),
            }),
        }
    }

    /// Records into a new file at `path` (replacing one that is there).
    /// Each message is written through at once, so a test that crashes
    /// keeps what came before.
    pub fn to_file(path: impl AsRef<Path>) -> std::io::Result<Recorder> {
        let file = std::fs::File::create(path.as_ref())?;
        Ok(Recorder::to_writer(file))
    }

    /// Records into any writer.
    pub fn to_writer(writer: impl Write + Send + 'static) -> Recorder {
        Recorder::new(Sink::Writer(Box::new(writer)))
    }

    /// Records in memory; [`text`](Self::text) gives the transcript so far.
    pub fn in_memory() -> Recorder {
        Recorder::new(Sink::Memory(Vec::new()))
    }

    /// Records secrets as they are (for a transcript that must replay a
    /// password check, say).  Keep such files out of version control.
    pub fn keep_secrets(self) -> Recorder {
        self.inner.redact.store(false, Ordering::Relaxed);
        self
    }

    /// The transcript recorded so far by an [`in_memory`](Self::in_memory)
    /// recorder; `None` for the others.
    pub fn text(&self) -> Option<String> {
        match &*self.lock() {
            Sink::Memory(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
            Sink::Writer(_) => None,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Sink> {
        // A panic while writing a line leaves nothing half-updated that
        // matters: go on with the sink.
        self.inner.sink.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes the header line, when a session starts: `protocol` is
    /// `"qmp"` or `"qga"`.
    pub(crate) fn start(&self, protocol: &str) {
        let header = format!("{{\"qapi-transcript\":1,\"protocol\":\"{protocol}\"}}\n");
        self.write(header.as_bytes());
    }

    /// Records one message; `from_client` tells which side sent it.
    pub(crate) fn message(&self, from_client: bool, bytes: &[u8]) {
        if self.inner.failed.load(Ordering::Relaxed) {
            return;
        }
        let bytes = bytes.strip_prefix(b"\xff").unwrap_or(bytes);
        let Ok(mut message) = serde_json::from_slice::<Value>(bytes) else {
            return;
        };
        if self.inner.redact.load(Ordering::Relaxed) {
            crate::redact::redact(&mut message);
        }
        let line = format!(
            "{{\"from\":\"{}\",\"t\":{:.6},\"message\":{message}}}\n",
            if from_client { "client" } else { "server" },
            self.inner.start.elapsed().as_secs_f64()
        );
        self.write(line.as_bytes());
    }

    fn write(&self, bytes: &[u8]) {
        let result = match &mut *self.lock() {
            Sink::Memory(buffer) => {
                buffer.extend_from_slice(bytes);
                Ok(())
            }
            Sink::Writer(writer) => writer.write_all(bytes).and_then(|()| writer.flush()),
        };
        if let Err(e) = result {
            if !self.inner.failed.swap(true, Ordering::Relaxed) {
                tracing::warn!(error = %e, "recording the session failed; recording stops");
            }
        }
    }
}
