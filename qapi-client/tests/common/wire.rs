//! Reading the client's requests in fake peers.  The client ends a request
//! with its closing brace, not a newline (QEMU reads one byte per system
//! call, so every byte costs), so fakes find requests by JSON structure.

use serde_json::Value;

/// Splits a byte stream into JSON objects, skipping 0xFF sync bytes and
/// whitespace between them; scans each byte once, so multi-megabyte
/// requests arriving in small reads stay cheap.
#[derive(Default)]
pub struct Requests {
    pending: Vec<u8>,
    /// How far `pending` is scanned, and the scan's state there.
    scanned: usize,
    start: Option<usize>,
    depth: usize,
    in_string: bool,
    escaped: bool,
}

impl Requests {
    pub fn new() -> Requests {
        Requests::default()
    }

    /// The next whole request in what was read so far.
    fn next_whole(&mut self) -> Option<Value> {
        while self.scanned < self.pending.len() {
            let at = self.scanned;
            let b = self.pending[at];
            self.scanned += 1;
            if self.start.is_none() {
                if b == 0xFF || b.is_ascii_whitespace() {
                    continue;
                }
                self.start = Some(at);
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
                        let request = serde_json::from_slice(&self.pending[start..=at])
                            .expect("a whole request");
                        self.pending.drain(..=at);
                        self.scanned = 0;
                        return Some(request);
                    }
                }
                (false, _, _) => {}
            }
        }
        None
    }

    /// The next request from a blocking reader; `None` at the end of the
    /// stream.
    pub fn read(&mut self, reader: &mut impl std::io::Read) -> Option<Value> {
        loop {
            if let Some(request) = self.next_whole() {
                return Some(request);
            }
            let mut chunk = [0u8; 16 * 1024];
            match reader.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.pending.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// [`read`](Self::read) from an async reader.
    pub async fn read_async(
        &mut self,
        reader: &mut (impl tokio::io::AsyncRead + Unpin),
    ) -> Option<Value> {
        use tokio::io::AsyncReadExt;
        loop {
            if let Some(request) = self.next_whole() {
                return Some(request);
            }
            let mut chunk = [0u8; 16 * 1024];
            match reader.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.pending.extend_from_slice(&chunk[..n]),
            }
        }
    }
}
