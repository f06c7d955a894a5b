//! Reading a client's requests off a byte stream, as a fake server does
//! (the replay server and the scripted fakes use it; so can a test's own
//! fake).
//!
//! Clients need not end a request with a line break (`qapi-client` ends it
//! with its closing brace, as QEMU allows), so requests are found by JSON
//! structure: a top-level object ends at its matching brace.  0xFF bytes
//! (the guest agent's sync marker) and whitespace between requests are
//! skipped.  Each byte is scanned once, and a request larger than the limit
//! is an error, not a growing buffer.

use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt};

/// The largest request read whole (QEMU's own limit is about 10 MiB).
pub const MAX_REQUEST: usize = 16 << 20;

/// Why the stream could not be read as requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireError {
    /// Bytes that cannot start a request, at this offset of the stream.
    Garbage {
        /// The byte's offset from the start of the stream.
        offset: u64,
        /// The byte.
        byte: u8,
    },
    /// A request that is not JSON.
    NotJson {
        /// Where the request starts.
        offset: u64,
        /// What the JSON parser said.
        why: String,
    },
    /// A request longer than [`MAX_REQUEST`].
    TooLong {
        /// Where the request starts.
        offset: u64,
    },
    /// The stream failed.
    Io(String),
}

impl std::error::Error for WireError {}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WireError::Garbage { offset, byte } => write!(
                f,
                "byte {offset} of the client's stream is 0x{byte:02x}, which cannot start a request"
            ),
            WireError::NotJson { offset, why } => {
                write!(f, "the request at byte {offset} is not JSON: {why}")
            }
            WireError::TooLong { offset } => write!(
                f,
                "the request at byte {offset} is longer than {MAX_REQUEST} bytes"
            ),
            WireError::Io(why) => write!(f, "reading the client's stream: {why}"),
        }
    }
}

/// Splits a stream into requests.
#[derive(Debug, Default)]
pub struct Requests {
    pending: Vec<u8>,
    /// Bytes of the stream before `pending[0]`.
    consumed: u64,
    scanned: usize,
    start: Option<usize>,
    depth: usize,
    in_string: bool,
    escaped: bool,
}

impl Requests {
    /// The next whole request in what was read so far.
    fn next_whole(&mut self) -> Result<Option<Value>, WireError> {
        while self.scanned < self.pending.len() {
            let at = self.scanned;
            let b = self.pending[at];
            self.scanned += 1;
            if self.start.is_none() {
                match b {
                    0xFF | b' ' | b'\t' | b'\r' | b'\n' => continue,
                    b'{' => self.start = Some(at),
                    _ => {
                        return Err(WireError::Garbage {
                            offset: self.consumed + at as u64,
                            byte: b,
                        })
                    }
                }
            }
            match (self.in_string, self.escaped, b) {
                (true, true, _) => self.escaped = false,
                (true, false, b'\\') => self.escaped = true,
                (true, false, b'"') => self.in_string = false,
                (true, false, _) => {}
                (false, _, b'"') => self.in_string = true,
                (false, _, b'{' | b'[') => self.depth += 1,
                (false, _, b'}' | b']') => {
                    self.depth = self.depth.saturating_sub(1);
                    if self.depth == 0 {
                        let start = self.start.take().unwrap_or(0);
                        let offset = self.consumed + start as u64;
                        let parsed = serde_json::from_slice(&self.pending[start..=at]);
                        self.pending.drain(..=at);
                        self.consumed += at as u64 + 1;
                        self.scanned = 0;
                        return parsed.map(Some).map_err(|e| WireError::NotJson {
                            offset,
                            why: e.to_string(),
                        });
                    }
                }
                (false, _, _) => {}
            }
        }
        if let Some(start) = self.start {
            if self.pending.len() - start > MAX_REQUEST {
                return Err(WireError::TooLong {
                    offset: self.consumed + start as u64,
                });
            }
        } else {
            // Only skipped bytes so far: forget them.
            self.consumed += self.pending.len() as u64;
            self.pending.clear();
            self.scanned = 0;
        }
        Ok(None)
    }

    /// The next request among the bytes already read, if a whole one is
    /// there.
    pub fn buffered(&mut self) -> Result<Option<Value>, WireError> {
        self.next_whole()
    }

    /// A reader with nothing read yet.
    pub fn new() -> Requests {
        Requests::default()
    }

    /// The next request from a blocking reader; `Ok(None)` at the end of
    /// the stream.
    pub fn read_blocking(
        &mut self,
        reader: &mut impl std::io::Read,
    ) -> Result<Option<Value>, WireError> {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            if let Some(request) = self.next_whole()? {
                return Ok(Some(request));
            }
            match reader.read(&mut chunk) {
                Ok(0) => return Ok(None),
                Ok(n) => self.pending.extend_from_slice(&chunk[..n]),
                Err(e) => return Err(WireError::Io(e.to_string())),
            }
        }
    }

    /// The next request; `Ok(None)` at the end of the stream.
    pub async fn read(
        &mut self,
        reader: &mut (impl AsyncRead + Unpin),
    ) -> Result<Option<Value>, WireError> {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            if let Some(request) = self.next_whole()? {
                return Ok(Some(request));
            }
            match reader.read(&mut chunk).await {
                Ok(0) => return Ok(None),
                Ok(n) => self.pending.extend_from_slice(&chunk[..n]),
                Err(e) => return Err(WireError::Io(e.to_string())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn all(bytes: &[u8]) -> (Vec<Value>, Option<WireError>) {
        let mut requests = Requests::default();
        let mut reader = bytes;
        let mut out = Vec::new();
        loop {
            match requests.read(&mut reader).await {
                Ok(Some(v)) => out.push(v),
                Ok(None) => return (out, None),
                Err(e) => return (out, Some(e)),
            }
        }
    }

    #[tokio::test]
    async fn requests_without_line_breaks_and_with_sync_bytes_split() {
        let (requests, error) =
            all(b"{\"execute\":\"a\",\"id\":0}{\"execute\":\"b\"}\xff\n{\"s\":\"}{\\\"\"}").await;
        assert_eq!(error, None);
        assert_eq!(requests.len(), 3);
        assert_eq!(requests[2]["s"], "}{\"");
    }

    #[tokio::test]
    async fn garbage_is_an_error_with_its_offset() {
        let (requests, error) = all(b"{\"execute\":\"a\"} x").await;
        assert_eq!(requests.len(), 1);
        assert_eq!(
            error,
            Some(WireError::Garbage {
                offset: 16,
                byte: b'x'
            })
        );
        let (_, error) = all(b"{\"a\" 1}").await;
        assert!(matches!(error, Some(WireError::NotJson { offset: 0, .. })));
    }
}
