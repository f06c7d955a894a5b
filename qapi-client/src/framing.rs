//! Splits the byte stream from QEMU or a guest agent into JSON messages.
//!
//! QEMU writes one message per line, but with `pretty=on` a message spans
//! many lines, and a guest agent may send anything at all.  So messages are
//! found by tracking JSON structure (objects, arrays, strings, escapes), not
//! by looking for newlines; the bytes are parsed only once a message is
//! complete.  The scan is incremental: each byte is looked at once, however
//! the stream is cut into reads.
//!
//! The byte 0xFF can never occur in UTF-8 JSON; the guest agent sends it
//! before the reply to `guest-sync-delimited` so that a client can drop
//! whatever partial data came before.  Wherever it appears, it abandons the
//! message in progress and is reported as [`Frame::Sentinel`].

use std::ops::Range;

/// What the splitter found next in the buffered bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Frame {
    /// A complete top-level object or array: its byte range in the buffer.
    Message(Range<usize>),
    /// The 0xFF resynchronisation byte.
    Sentinel,
    /// Bytes outside any message that cannot start one (neither
    /// whitespace, `{`, `[` nor 0xFF); they have been skipped.
    Garbage {
        /// How many bytes were skipped.
        len: usize,
    },
    /// A message grew past the size limit before it ended.
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
}

/// An incremental JSON message splitter over a growing byte buffer.
///
/// The owner appends bytes to [`buffer_mut`](Self::buffer_mut), calls
/// [`next_frame`](Self::next_frame) until it returns `None`, then
/// [`compact`](Self::compact) to drop consumed bytes.
#[derive(Debug)]
pub(crate) struct Splitter {
    buf: Vec<u8>,
    /// Bytes before this offset have been handed out or skipped.
    consumed: usize,
    /// Bytes before this offset have been scanned.
    scanned: usize,
    /// Start of the message in progress, if any.
    start: Option<usize>,
    depth: usize,
    in_string: bool,
    escaped: bool,
    limit: usize,
}

impl Splitter {
    /// A splitter that rejects messages longer than `limit` bytes.
    pub(crate) fn new(limit: usize) -> Self {
        Splitter {
            buf: Vec::new(),
            consumed: 0,
            scanned: 0,
            start: None,
            depth: 0,
            in_string: false,
            escaped: false,
            limit,
        }
    }

    /// The buffer to append newly read bytes to.
    pub(crate) fn buffer_mut(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// The buffered bytes (message ranges index into this).
    pub(crate) fn buffer(&self) -> &[u8] {
        &self.buf
    }

    /// Whether a message has started but not ended.
    pub(crate) fn in_message(&self) -> bool {
        self.start.is_some()
    }

    /// Drops the bytes that have been handed out or skipped, so the buffer
    /// holds at most one partial message.  Invalidates earlier ranges.
    pub(crate) fn compact(&mut self) {
        if self.consumed == 0 {
            return;
        }
        self.buf.drain(..self.consumed);
        self.scanned -= self.consumed;
        if let Some(start) = &mut self.start {
            *start -= self.consumed;
        }
        self.consumed = 0;
    }

    /// Scans newly buffered bytes for the next frame.
    pub(crate) fn next_frame(&mut self) -> Option<Frame> {
        while self.scanned < self.buf.len() {
            let byte = self.buf[self.scanned];
            self.scanned += 1;
            if byte == 0xFF {
                self.reset_message();
                self.consumed = self.scanned;
                return Some(Frame::Sentinel);
            }
            let Some(start) = self.start else {
                match byte {
                    b' ' | b'\t' | b'\r' | b'\n' => self.consumed = self.scanned,
                    b'{' | b'[' => {
                        self.start = Some(self.scanned - 1);
                        self.depth = 1;
                    }
                    _ => {
                        // Skip the whole run of junk at once.
                        let junk_start = self.scanned - 1;
                        while self.scanned < self.buf.len()
                            && !matches!(self.buf[self.scanned], b'{' | b'[' | 0xFF)
                        {
                            self.scanned += 1;
                        }
                        self.consumed = self.scanned;
                        return Some(Frame::Garbage {
                            len: self.scanned - junk_start,
                        });
                    }
                }
                continue;
            };
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else if byte == b'\\' {
                    self.escaped = true;
                } else if byte == b'"' {
                    self.in_string = false;
                }
            } else {
                match byte {
                    b'"' => self.in_string = true,
                    b'{' | b'[' => self.depth += 1,
                    b'}' | b']' => {
                        self.depth -= 1;
                        if self.depth == 0 {
                            self.reset_message();
                            self.consumed = self.scanned;
                            return Some(Frame::Message(start..self.scanned));
                        }
                    }
                    _ => {}
                }
            }
            if self.scanned - start > self.limit {
                // The owner treats this as fatal; forget the partial message
                // so memory stays bounded even if it does not.
                self.reset_message();
                self.consumed = self.scanned;
                return Some(Frame::TooLarge { limit: self.limit });
            }
        }
        None
    }

    fn reset_message(&mut self) {
        self.start = None;
        self.depth = 0;
        self.in_string = false;
        self.escaped = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Feeds `chunks` one at a time and collects frames as owned bytes.
    fn split(chunks: &[&[u8]], limit: usize) -> Vec<Result<Vec<u8>, Frame>> {
        let mut splitter = Splitter::new(limit);
        let mut out = Vec::new();
        for chunk in chunks {
            splitter.buffer_mut().extend_from_slice(chunk);
            while let Some(frame) = splitter.next_frame() {
                match frame {
                    Frame::Message(range) => out.push(Ok(splitter.buffer()[range].to_vec())),
                    other => out.push(Err(other)),
                }
            }
            splitter.compact();
        }
        out
    }

    #[test]
    fn one_message_per_line() {
        let frames = split(&[b"{\"a\": 1}\r\n{\"b\": [2, {}]}\r\n"], 100);
        assert_eq!(
            frames,
            vec![Ok(b"{\"a\": 1}".to_vec()), Ok(b"{\"b\": [2, {}]}".to_vec())]
        );
    }

    #[test]
    fn pretty_printed_message_across_reads() {
        let frames = split(
            &[b"{\n  \"return\": {", b"\n    \"x\": \"}\"\n  }\n", b"}\n"],
            100,
        );
        assert_eq!(
            frames,
            vec![Ok(b"{\n  \"return\": {\n    \"x\": \"}\"\n  }\n}".to_vec())]
        );
    }

    #[test]
    fn braces_and_escaped_quotes_inside_strings() {
        let frames = split(&[br#"{"s": "a\"}{[\\"}"#, b"{}"], 100);
        assert_eq!(
            frames,
            vec![Ok(br#"{"s": "a\"}{[\\"}"#.to_vec()), Ok(b"{}".to_vec())]
        );
    }

    #[test]
    fn sentinel_drops_partial_message() {
        let frames = split(&[b"{\"return\": \"stale", b"\xff{\"return\": 7}\n"], 100);
        assert_eq!(
            frames,
            vec![Err(Frame::Sentinel), Ok(b"{\"return\": 7}".to_vec())]
        );
    }

    #[test]
    fn garbage_between_messages_is_skipped_and_reported() {
        let frames = split(&[b"hello{}\n42 x[]"], 100);
        assert_eq!(
            frames,
            vec![
                Err(Frame::Garbage { len: 5 }),
                Ok(b"{}".to_vec()),
                Err(Frame::Garbage { len: 4 }),
                Ok(b"[]".to_vec()),
            ]
        );
    }

    #[test]
    fn message_over_the_limit_is_reported_once_and_not_kept() {
        let mut splitter = Splitter::new(16);
        splitter.buffer_mut().extend_from_slice(b"{\"data\": \"");
        assert_eq!(splitter.next_frame(), None);
        splitter.buffer_mut().extend_from_slice(&[b'x'; 100]);
        assert_eq!(splitter.next_frame(), Some(Frame::TooLarge { limit: 16 }));
        splitter.compact();
        assert!(splitter.buffer().len() < 100);
        assert!(!splitter.in_message());
    }

    proptest! {
        /// However the stream is cut, the same frames come out.
        #[test]
        fn frames_do_not_depend_on_read_boundaries(
            messages in proptest::collection::vec("[a-z{}\\[\\]\" ]{0,12}", 0..8),
            cuts in proptest::collection::vec(0usize..200, 0..10),
        ) {
            let mut stream = Vec::new();
            for m in &messages {
                stream.extend_from_slice(serde_json::to_string(&serde_json::json!({ "m": m })).unwrap().as_bytes());
                stream.extend_from_slice(b"\r\n");
            }
            let whole = split(&[&stream], 1 << 20);
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(stream.len())).collect();
            cuts.sort_unstable();
            let mut chunks = Vec::new();
            let mut at = 0;
            for c in cuts { chunks.push(&stream[at..c]); at = c; }
            chunks.push(&stream[at..]);
            prop_assert_eq!(split(&chunks, 1 << 20), whole.clone());
            prop_assert_eq!(whole.len(), messages.len());
        }

        /// Arbitrary bytes never panic, and the buffer never holds much more
        /// than the limit plus one read.
        #[test]
        fn arbitrary_bytes_stay_bounded(
            chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..40),
        ) {
            let mut splitter = Splitter::new(32);
            for chunk in &chunks {
                splitter.buffer_mut().extend_from_slice(chunk);
                while splitter.next_frame().is_some() {}
                splitter.compact();
                prop_assert!(splitter.buffer().len() <= 32 + 1 + 64);
            }
        }
    }
}
