//! The read side: reading the stream into the splitter's buffer, sorting
//! frames (messages, the guest agent's 0xFF sentinel, junk), and the
//! reader task's loop.

use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt};
use tracing::{trace, warn};

use crate::error::{Error, Result};
use crate::framing::{Frame, Splitter};
use crate::unix::UnixReader;

use super::{Peer, Shared};

/// What a [`MessageReader`] reads from: any async byte stream, or a Unix
/// socket watched for input only ([`UnixReader`]).
pub(crate) trait Source: Unpin {
    /// Reads into `buf`'s spare room; `Ok(0)` at the end of the stream.
    fn poll_read_into(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut Vec<u8>,
    ) -> Poll<std::io::Result<usize>>;
}

impl<R: AsyncRead + Unpin> Source for R {
    fn poll_read_into(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut Vec<u8>,
    ) -> Poll<std::io::Result<usize>> {
        std::future::Future::poll(std::pin::pin!(self.read_buf(buf)), cx)
    }
}

impl Source for UnixReader {
    fn poll_read_into(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut Vec<u8>,
    ) -> Poll<std::io::Result<usize>> {
        UnixReader::poll_read_into(self, cx, buf)
    }
}

/// Reads messages from the stream; used for the handshake, then moved
/// into the reader task.
pub(crate) struct MessageReader<R> {
    pub(super) stream: R,
    pub(super) splitter: Splitter,
    pub(super) peer: Peer,
    /// The last read filled all the room it had.
    pub(super) busy: bool,
}

/// One message read by [`MessageReader::next`].
pub(crate) enum Read {
    Message(Box<[u8]>),
    Sentinel,
}

/// One message read by [`MessageReader::next_borrowed`], still in the
/// read buffer.
pub(super) enum Borrowed<'a> {
    Message(&'a [u8]),
    Sentinel,
}

impl<R: Source> MessageReader<R> {
    pub(crate) fn new(stream: R, peer: Peer, max_message_size: usize) -> Self {
        MessageReader {
            stream,
            splitter: Splitter::new(max_message_size),
            peer,
            busy: false,
        }
    }

    /// The next message or sentinel.  Junk between messages is skipped
    /// for the guest agent and an error for QMP.
    pub(crate) async fn next(&mut self) -> Result<Read> {
        Ok(match self.next_borrowed().await? {
            Borrowed::Message(bytes) => Read::Message(bytes.into()),
            Borrowed::Sentinel => Read::Sentinel,
        })
    }

    /// The next message or sentinel, without copying it out of the buffer.
    pub(super) async fn next_borrowed(&mut self) -> Result<Borrowed<'_>> {
        loop {
            while let Some(frame) = self.splitter.next_frame() {
                match accept_frame(self.peer, frame)? {
                    Accepted::Message(range) => {
                        return Ok(Borrowed::Message(&self.splitter.buffer()[range]))
                    }
                    Accepted::Sentinel => return Ok(Borrowed::Sentinel),
                    Accepted::Skipped => {}
                }
            }
            let spare = prepare_read(&mut self.splitter, self.busy);
            let buf = self.splitter.buffer_mut();
            let stream = &mut self.stream;
            let n = std::future::poll_fn(|cx| stream.poll_read_into(cx, buf))
                .await
                .map_err(|e| Error::Disconnected {
                    reason: format!("read failed: {e}").into(),
                })?;
            self.busy = n == spare;
            if n == 0 {
                return Err(end_of_stream(&self.splitter));
            }
        }
    }
}

/// What a frame means for a reader.
pub(super) enum Accepted {
    Message(std::ops::Range<usize>),
    Sentinel,
    /// Junk, skipped (guest agent only).
    Skipped,
}

/// Sorts a frame; an error when the session must close.
#[inline]
pub(super) fn accept_frame(peer: Peer, frame: Frame) -> Result<Accepted> {
    match frame {
        Frame::Message(range) => Ok(Accepted::Message(range)),
        Frame::Sentinel => Ok(Accepted::Sentinel),
        Frame::Garbage { len } => {
            if peer == Peer::Qmp {
                return Err(Error::Protocol(
                    format!("{len} bytes of data that is not a JSON message").into(),
                ));
            }
            warn!(
                bytes = len,
                "guest agent sent data that is not JSON; skipped"
            );
            Ok(Accepted::Skipped)
        }
        Frame::TooLarge { limit } => Err(Error::MessageTooLarge { limit }),
    }
}

/// Makes room in the splitter's buffer for the next read and returns how
/// much there is.  Small reads while idle keep an idle session small; big
/// ones once data flows (a long message, a pipelined burst).
///
/// While idle the buffer is kept at [`IDLE_READ`] bytes in all, not
/// `IDLE_READ` of room after what it holds: a few bytes not scanned yet
/// (the line end after the last message, when the reader task hands the
/// socket to a direct call before it reads) would otherwise double it.
#[inline]
pub(super) fn prepare_read(splitter: &mut Splitter, busy: bool) -> usize {
    splitter.compact();
    let in_message = splitter.in_message();
    let buf = splitter.buffer_mut();
    let want = if busy || in_message {
        BUSY_READ
    } else {
        if buf.is_empty() && buf.capacity() > 2 * IDLE_READ {
            buf.shrink_to(IDLE_READ);
        }
        IDLE_READ.saturating_sub(buf.len()).max(IDLE_READ / 2)
    };
    buf.reserve(want);
    buf.capacity() - buf.len()
}

/// The error for a stream that ended.
pub(super) fn end_of_stream(splitter: &Splitter) -> Error {
    let reason = if splitter.in_message() {
        "end of stream in the middle of a message"
    } else {
        "end of stream"
    };
    Error::Disconnected {
        reason: reason.into(),
    }
}

/// How much to read at a time while idle: most messages fit.
pub(super) const IDLE_READ: usize = 4 * 1024;

/// How much to read at a time once a read has filled its buffer or a
/// message is unfinished (the 236 KB `query-qmp-schema` takes four).
pub(super) const BUSY_READ: usize = 64 * 1024;

pub(super) async fn read_loop<R: Source>(mut reader: MessageReader<R>, shared: Arc<Shared>) {
    let error = loop {
        if let Err(error) = read_one(&mut reader, &shared).await {
            break error;
        }
    };
    shared.close(error);
}

/// What a 0xFF byte from the peer means: the guest agent's sync marker,
/// or a broken stream from QEMU.
pub(super) fn sentinel(peer: Peer) -> Result<()> {
    if peer == Peer::Qmp {
        return Err(Error::Protocol("unexpected 0xFF byte".into()));
    }
    trace!("guest agent sync sentinel");
    Ok(())
}

/// Reads and routes one message (cancel-safe: nothing is lost if it is
/// dropped while waiting to read).
#[inline]
pub(super) async fn read_one<R: Source>(
    reader: &mut MessageReader<R>,
    shared: &Shared,
) -> Result<()> {
    match reader.next_borrowed().await? {
        Borrowed::Message(bytes) => shared.route(bytes),
        Borrowed::Sentinel => sentinel(shared.peer),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idle_buffer_stays_small_with_a_line_end_left_in_it() {
        let mut splitter = Splitter::new(1 << 20);
        let room = prepare_read(&mut splitter, false);
        assert!(room >= IDLE_READ);
        let capacity = splitter.buffer().len() + room;
        // A message read, and the line end after it not scanned yet.
        splitter
            .buffer_mut()
            .extend_from_slice(b"{\"return\": {}}\r\n");
        assert!(matches!(splitter.next_frame(), Some(Frame::Message(_))));
        let room = prepare_read(&mut splitter, false);
        assert_eq!(splitter.buffer(), b"\r\n");
        assert_eq!(splitter.buffer_mut().capacity(), capacity);
        assert!(room >= IDLE_READ - 2);
        // Busy, it grows.
        assert!(prepare_read(&mut splitter, true) >= BUSY_READ);
    }
}
