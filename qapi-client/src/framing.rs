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
            let Some(start) = self.start else {
                if let Some(frame) = self.between_messages() {
                    return Some(frame);
                }
                continue;
            };
            return self.scan_message(start);
        }
        None
    }

    /// One step outside any message: whitespace, the start of a message,
    /// the sentinel or a run of junk.
    fn between_messages(&mut self) -> Option<Frame> {
        let byte = self.buf[self.scanned];
        self.scanned += 1;
        match byte {
            0xFF => {
                self.consumed = self.scanned;
                Some(Frame::Sentinel)
            }
            b' ' | b'\t' | b'\r' | b'\n' => {
                self.consumed = self.scanned;
                None
            }
            b'{' | b'[' => {
                self.start = Some(self.scanned - 1);
                self.depth = 1;
                None
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
                Some(Frame::Garbage {
                    len: self.scanned - junk_start,
                })
            }
        }
    }

    /// Scans on inside the message that began at `start`, jumping over the
    /// bytes that cannot end a string or change the nesting.  Returns
    /// `None` when the buffered bytes end first.
    fn scan_message(&mut self, start: usize) -> Option<Frame> {
        // The byte at offset `limit` (at least 1) from the start is the
        // last one a message may end on; looking at it without the
        // message ending means the message is too large.
        let cap = start.saturating_add(self.limit.max(1)).saturating_add(1);
        let end = self.buf.len().min(cap);
        let bytes = &self.buf[..end];
        let mut i = self.scanned;
        let mut depth = self.depth;
        let mut in_string = self.in_string;
        let mut escaped = self.escaped;
        let found = loop {
            if in_string {
                if escaped {
                    let Some(&byte) = bytes.get(i) else {
                        break None;
                    };
                    i += 1;
                    if byte == 0xFF {
                        break Some(Frame::Sentinel);
                    }
                    escaped = false;
                }
                while i < end && STRING_STOP[usize::from(bytes[i])] == 0 {
                    i += 1;
                }
                let Some(&byte) = bytes.get(i) else {
                    break None;
                };
                i += 1;
                match byte {
                    b'"' => in_string = false,
                    b'\\' => escaped = true,
                    _ => break Some(Frame::Sentinel),
                }
            } else {
                while i < end && STRUCTURE_STOP[usize::from(bytes[i])] == 0 {
                    i += 1;
                }
                let Some(&byte) = bytes.get(i) else {
                    break None;
                };
                i += 1;
                match byte {
                    b'"' => in_string = true,
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            break Some(Frame::Message(start..i));
                        }
                    }
                    _ => break Some(Frame::Sentinel),
                }
            }
        };
        self.scanned = i;
        match found {
            Some(frame) => {
                // A message or the sentinel: either way this one is over.
                self.reset_message();
                self.consumed = self.scanned;
                Some(frame)
            }
            None if i == cap => {
                // The owner treats this as fatal; forget the partial message
                // so memory stays bounded even if it does not.
                self.reset_message();
                self.consumed = self.scanned;
                Some(Frame::TooLarge { limit: self.limit })
            }
            None => {
                self.depth = depth;
                self.in_string = in_string;
                self.escaped = escaped;
                None
            }
        }
    }

    /// Offers the next line to `take` when the scan stands between
    /// messages and the line (up to `\n`, without the whitespace around
    /// it) is buffered whole,
    /// starts a message and is within the size limit.  If `take` accepts
    /// it, the line and its end are consumed, and `true` returned.
    ///
    /// `take` must accept only a line that is exactly one valid JSON
    /// message in UTF-8, checked by parsing it: then the line is the
    /// message [`next_frame`](Self::next_frame) would have found (its
    /// brackets balance, it holds no 0xFF, and what follows is
    /// whitespace), so skipping the scan changes nothing.  This is the
    /// shortcut of a caller waiting for one reply: finding a newline costs
    /// far less than the scan, and the parse is needed anyway.
    pub(crate) fn take_line(&mut self, take: impl FnOnce(&[u8]) -> bool) -> bool {
        if self.start.is_some() || self.scanned != self.consumed {
            return false;
        }
        // Whitespace before a message is skipped, as the scan skips it.
        let start = self.consumed
            + self.buf[self.consumed..]
                .iter()
                .position(|byte| !matches!(byte, b' ' | b'\t' | b'\r' | b'\n'))
                .unwrap_or(self.buf.len() - self.consumed);
        let rest = &self.buf[start..];
        let Some(newline) = memchr::memchr(b'\n', rest) else {
            return false;
        };
        let mut line = &rest[..newline];
        while let [before @ .., b' ' | b'\t' | b'\r'] = line {
            line = before;
        }
        if line.first() != Some(&b'{') || line.len() > self.limit || !take(line) {
            return false;
        }
        self.consumed = start + newline + 1;
        self.scanned = self.consumed;
        true
    }

    fn reset_message(&mut self) {
        self.start = None;
        self.depth = 0;
        self.in_string = false;
        self.escaped = false;
    }
}

/// Bytes that matter inside a string: its end, an escape, the sentinel.
static STRING_STOP: [u8; 256] = byte_set(b"\"\\\xff");
/// Bytes that matter inside a message outside strings.
static STRUCTURE_STOP: [u8; 256] = byte_set(b"\"{}[]\xff");

const fn byte_set(bytes: &[u8]) -> [u8; 256] {
    let mut set = [0; 256];
    let mut i = 0;
    while i < bytes.len() {
        set[bytes[i] as usize] = 1;
        i += 1;
    }
    set
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn is_json(line: &[u8]) -> bool {
        std::str::from_utf8(line)
            .ok()
            .and_then(|text| serde_json::from_str::<serde_json::Value>(text).ok())
            .is_some()
    }

    #[test]
    fn a_taken_line_leaves_the_scan_where_it_would_have_been() {
        let mut splitter = Splitter::new(1024);
        splitter
            .buffer_mut()
            .extend_from_slice(b"{\"a\": 1}\r\n{\"b\": [2]}\n{\"c\"");
        let mut seen = Vec::new();
        assert!(splitter.take_line(|line| {
            seen = line.to_vec();
            is_json(line)
        }));
        assert_eq!(seen, b"{\"a\": 1}");
        // Refused: nothing changes, and the scan finds the same message.
        assert!(!splitter.take_line(|_| false));
        let Some(Frame::Message(range)) = splitter.next_frame() else {
            panic!("no message");
        };
        assert_eq!(&splitter.buffer()[range], b"{\"b\": [2]}");
        assert_eq!(splitter.next_frame(), None);
        // Mid-message: no shortcut, even with a whole line after it.
        splitter
            .buffer_mut()
            .extend_from_slice(b": 3}\n{\"d\": 4}\n");
        assert!(splitter.in_message());
        assert!(!splitter.take_line(|_| true));
        let Some(Frame::Message(range)) = splitter.next_frame() else {
            panic!("no message");
        };
        assert_eq!(&splitter.buffer()[range], b"{\"c\": 3}");
        assert!(splitter.take_line(is_json));
        assert_eq!(splitter.next_frame(), None);
        assert!(!splitter.in_message());
    }

    #[test]
    fn no_line_is_offered_past_the_limit_or_before_it_ends() {
        let mut splitter = Splitter::new(8);
        splitter.buffer_mut().extend_from_slice(b"{\"a\": 12345}\n");
        assert!(!splitter.take_line(|_| true));
        let mut splitter = Splitter::new(64);
        splitter.buffer_mut().extend_from_slice(b"{\"a\": 1}");
        assert!(!splitter.take_line(|_| true));
        splitter.buffer_mut().extend_from_slice(b"\n");
        assert!(splitter.take_line(is_json));
    }

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

    /// The splitter as first written, one byte at a time: the model the
    /// faster scan must agree with.
    struct Reference {
        buf: Vec<u8>,
        consumed: usize,
        scanned: usize,
        start: Option<usize>,
        depth: usize,
        in_string: bool,
        escaped: bool,
        limit: usize,
    }

    impl Reference {
        fn next_frame(&mut self) -> Option<Frame> {
            while self.scanned < self.buf.len() {
                let byte = self.buf[self.scanned];
                self.scanned += 1;
                if byte == 0xFF {
                    self.reset();
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
                                self.reset();
                                self.consumed = self.scanned;
                                return Some(Frame::Message(start..self.scanned));
                            }
                        }
                        _ => {}
                    }
                }
                if self.scanned - start > self.limit {
                    self.reset();
                    self.consumed = self.scanned;
                    return Some(Frame::TooLarge { limit: self.limit });
                }
            }
            None
        }

        fn reset(&mut self) {
            self.start = None;
            self.depth = 0;
            self.in_string = false;
            self.escaped = false;
        }

        fn compact(&mut self) {
            self.buf.drain(..self.consumed);
            self.scanned -= self.consumed;
            if let Some(start) = &mut self.start {
                *start -= self.consumed;
            }
            self.consumed = 0;
        }
    }

    /// Frames, each with its message's bytes (empty for other frames).
    type Frames = Vec<(Frame, Vec<u8>)>;

    /// Both splitters fed the same chunks: what each found.
    fn split_both(chunks: &[Vec<u8>], limit: usize) -> (Frames, Frames) {
        let mut fast = Splitter::new(limit);
        let mut reference = Reference {
            buf: Vec::new(),
            consumed: 0,
            scanned: 0,
            start: None,
            depth: 0,
            in_string: false,
            escaped: false,
            limit,
        };
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for chunk in chunks {
            fast.buffer_mut().extend_from_slice(chunk);
            while let Some(frame) = fast.next_frame() {
                let bytes = match &frame {
                    Frame::Message(range) => fast.buffer()[range.clone()].to_vec(),
                    _ => Vec::new(),
                };
                a.push((frame, bytes));
            }
            fast.compact();
            reference.buf.extend_from_slice(chunk);
            while let Some(frame) = reference.next_frame() {
                let bytes = match &frame {
                    Frame::Message(range) => reference.buf[range.clone()].to_vec(),
                    _ => Vec::new(),
                };
                b.push((frame, bytes));
            }
            reference.compact();
            assert_eq!(fast.buffer(), &reference.buf[..]);
            assert_eq!(fast.in_message(), reference.start.is_some());
        }
        (a, b)
    }

    #[test]
    fn limit_edges_match_the_reference() {
        for limit in 0..12 {
            for text in [
                &b"{}"[..],
                b"{\"a\":1}",
                b"[[[]]]",
                b"{\"s\":\"\\\"}\"}",
                b"{\xff}",
                b"{\"\\\xff\"}",
            ] {
                let chunks: Vec<Vec<u8>> = text.iter().map(|&b| vec![b]).collect();
                let (fast, reference) = split_both(&chunks, limit);
                assert_eq!(fast, reference, "limit {limit}, {text:?} byte by byte");
                let (fast, reference) = split_both(&[text.to_vec()], limit);
                assert_eq!(fast, reference, "limit {limit}, {text:?} at once");
            }
        }
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

        /// Taking whole lines that parse (as a waiting caller does) before
        /// each scan gives the same messages as the scan alone, on
        /// messages that are one-line or pretty-printed, with any
        /// whitespace between them and any limit, cut anywhere.
        #[test]
        fn taking_lines_changes_no_frame(
            messages in proptest::collection::vec(("[a-z{}\\[\\]\" ]{0,12}", any::<bool>()), 0..8),
            gaps in proptest::collection::vec("[ \r\n\t]{0,3}", 8),
            cuts in proptest::collection::vec(0usize..300, 0..10),
            limit in 1usize..64,
        ) {
            let mut stream = Vec::new();
            for (i, (m, pretty)) in messages.iter().enumerate() {
                let value = serde_json::json!({ "m": m, "n": [1, {}] });
                let text = if *pretty { serde_json::to_string_pretty(&value) } else { serde_json::to_string(&value) };
                stream.extend_from_slice(text.unwrap().as_bytes());
                stream.extend_from_slice(gaps[i].as_bytes());
                stream.push(b'\n');
            }
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(stream.len())).collect();
            cuts.sort_unstable();
            let mut chunks = Vec::new();
            let mut at = 0;
            for c in cuts { chunks.push(&stream[at..c]); at = c; }
            chunks.push(&stream[at..]);
            let scanned = split(&chunks, limit);
            let mut splitter = Splitter::new(limit);
            let mut taken = Vec::new();
            for chunk in &chunks {
                splitter.buffer_mut().extend_from_slice(chunk);
                loop {
                    let mut line = None;
                    if splitter.take_line(|l| { line = Some(l.to_vec()); is_json(l) }) {
                        taken.push(Ok(line.unwrap()));
                        continue;
                    }
                    match splitter.next_frame() {
                        Some(Frame::Message(range)) => taken.push(Ok(splitter.buffer()[range].to_vec())),
                        Some(other) => taken.push(Err(other)),
                        None => break,
                    }
                }
                splitter.compact();
            }
            prop_assert_eq!(taken, scanned);
        }

        /// The scan agrees with the byte-at-a-time reference on any bytes
        /// (mostly JSON punctuation), cut anywhere, with any limit.
        #[test]
        fn same_frames_as_the_reference(
            chunks in proptest::collection::vec(
                proptest::collection::vec(
                    prop_oneof![
                        Just(b'{'), Just(b'}'), Just(b'['), Just(b']'), Just(b'"'),
                        Just(b'\\'), Just(0xFF), Just(b' '), Just(b'\n'), Just(b'a'), any::<u8>(),
                    ],
                    0..24,
                ),
                0..12,
            ),
            limit in 0usize..40,
        ) {
            let (fast, reference) = split_both(&chunks, limit);
            prop_assert_eq!(fast, reference);
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
