//! The write side: the writer (a Unix socket half, any async stream, or
//! the socket lent to a direct call), the outbox requests are encoded
//! into, the flusher task, and requests carrying file descriptors.

use std::collections::VecDeque;
use std::os::unix::net::UnixStream as StdUnixStream;
use std::pin::Pin;
use std::sync::{Arc, MutexGuard, OnceLock};
use std::task::{ready, Context, Poll, Wake, Waker};

use rustix::net::SendFlags;
use tokio::io::AsyncWrite;
use tracing::trace;

use crate::error::{Error, Result};
use crate::redact::Redacted;
use crate::unix::UnixWriter;

use super::direct::Lease;
use super::{Request, Shared};

/// The write side of a connection.
pub(crate) enum Writer {
    /// A Unix socket, which can also carry file descriptors.
    Unix(UnixWriter),
    /// Any other stream.
    Stream(Box<dyn AsyncWrite + Send + Unpin>),
    /// Lent to a request sending file descriptors, which has the socket to
    /// itself meanwhile (nothing writes then).
    Lent,
    /// A Unix socket handed over to direct calls (see [`Lease`]): out of
    /// the runtime, so a write that would wait asks for it back.
    Direct {
        stream: Arc<StdUnixStream>,
        lease: Arc<Lease>,
    },
    /// Out with the flusher task, which writes without holding the
    /// outbox's lock (see [`flush_some`]); it puts the writer back unless
    /// another has taken its place meanwhile (the socket taken back from
    /// direct calls, the session closed).
    Busy,
}

impl Writer {
    pub(super) fn poll_write(
        &mut self,
        cx: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self {
            Writer::Unix(half) => half.poll_write(cx, bytes),
            Writer::Stream(stream) => Pin::new(stream).poll_write(cx, bytes),
            Writer::Lent => Poll::Ready(Err(std::io::Error::other("the socket is lent"))),
            Writer::Busy => Poll::Ready(Err(std::io::Error::other("the flusher is writing"))),
            Writer::Direct { stream, lease } => {
                match rustix::net::send(&**stream, bytes, SendFlags::NOSIGNAL | SendFlags::DONTWAIT)
                {
                    Ok(n) => Poll::Ready(Ok(n)),
                    Err(rustix::io::Errno::AGAIN) => {
                        lease.want_back(Some(cx.waker()));
                        Poll::Pending
                    }
                    Err(rustix::io::Errno::INTR) => {
                        cx.waker().wake_by_ref();
                        Poll::Pending
                    }
                    Err(e) => Poll::Ready(Err(e.into())),
                }
            }
        }
    }

    pub(super) fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self {
            Writer::Unix(_) | Writer::Lent | Writer::Direct { .. } | Writer::Busy => {
                Poll::Ready(Ok(()))
            }
            Writer::Stream(stream) => Pin::new(stream).poll_flush(cx),
        }
    }
}

/// The write side.  Callers encode their requests straight into `queued`.
/// A call with no other call in flight writes at once, without waiting.
/// Otherwise, or when the socket is full, the flusher task takes over
/// until `queued` is empty, and new requests only queue meanwhile: the
/// flusher lets the other ready tasks run first, so calls in flight
/// together share one write.  Bytes are written in the order they were
/// queued, so a request is never split by another.
///
/// A call that gives up (its time limit passed, its future was dropped)
/// before any byte of its request was written takes the request back out
/// of the queue ([`Outbox::withdraw`]), so a command the caller gave up on
/// is never sent later; one whose request has begun to go out lets it
/// finish, to keep the stream whole.
pub(super) struct Outbox {
    pub(super) writer: Writer,
    /// Bytes not yet written, oldest first.
    pub(super) queued: Vec<u8>,
    /// The flusher task owns writing until `queued` is empty.
    pub(super) handed_over: bool,
    /// A request with file descriptors is being sent on its own; others
    /// queue until it is done.
    pub(super) exclusive: bool,
    /// The requests in `queued`, oldest first, by call id and length.
    pub(super) pending: VecDeque<Pending>,
    /// How much of the oldest pending request is written already.
    pub(super) head_written: usize,
    /// How many bytes from the front of the queue the flusher has taken
    /// out of `queued` and is writing now, without the lock (see
    /// [`flush_some`]); `queued` holds what comes after them.  The
    /// requests among them count as sent: a call that gives up meanwhile
    /// cannot take its request back.
    pub(super) in_write: usize,
    /// Set when a write failed; the session is closed then.
    pub(super) failed: Option<Error>,
}

impl Outbox {
    /// Writes queued bytes until they are all out (`Ready(Ok)`), the
    /// socket is full (`Pending`) or writing fails.
    pub(super) fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        while !self.queued.is_empty() {
            match self.writer.poll_write(cx, &self.queued) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()))
                }
                Poll::Ready(Ok(n)) => {
                    self.queued.drain(..n);
                    self.advance(n);
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        if self.queued.capacity() > MAX_IDLE_OUTBOX {
            self.queued = Vec::new();
        }
        self.writer.poll_flush(cx)
    }
}

/// A request in the outbox's queue.
#[derive(Debug, Clone, Copy)]
pub(super) struct Pending {
    pub(super) id: u64,
    pub(super) len: usize,
}

/// How far a request has gone out, as [`Outbox::withdraw`] finds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Progress {
    /// No byte of it was written; it is out of the queue now, never to be
    /// sent.
    Withdrawn,
    /// It has begun to go out (or is out): the peer may run it.
    Sent,
}

impl Outbox {
    /// Queues request `id`, encoded by `encode` at the end of `queued`;
    /// its bytes are taken back out if encoding fails.
    pub(super) fn push(
        &mut self,
        id: u64,
        encode: impl FnOnce(&mut Vec<u8>) -> Result<()>,
    ) -> Result<std::ops::Range<usize>> {
        let before = self.queued.len();
        if let Err(error) = encode(&mut self.queued) {
            self.queued.truncate(before);
            return Err(error);
        }
        let len = self.queued.len() - before;
        self.pending.push_back(Pending { id, len });
        Ok(before..self.queued.len())
    }

    /// Counts `n` more bytes as written, retiring the requests they end.
    fn advance(&mut self, mut n: usize) {
        while n > 0 {
            let Some(head) = self.pending.front() else {
                return;
            };
            let left = head.len - self.head_written;
            if n < left {
                self.head_written += n;
                return;
            }
            n -= left;
            self.head_written = 0;
            self.pending.pop_front();
        }
    }

    /// Whether request `id` is still (wholly or partly) in the queue.
    pub(super) fn is_queued(&self, id: u64) -> bool {
        self.pending.iter().any(|p| p.id == id)
    }

    /// Takes request `id` out of the queue if none of it was written yet.
    pub(super) fn withdraw(&mut self, id: u64) -> Progress {
        let mut start = 0usize;
        for (index, pending) in self.pending.iter().enumerate() {
            if pending.id == id {
                if (index == 0 && self.head_written > 0) || start < self.in_write {
                    return Progress::Sent;
                }
                let len = pending.len;
                let at = start - self.in_write;
                self.queued.drain(at..at + len);
                self.pending.remove(index);
                return Progress::Withdrawn;
            }
            start += pending.len - if index == 0 { self.head_written } else { 0 };
        }
        // Not queued: wholly written already.
        Progress::Sent
    }
}

/// The most an empty outbox keeps allocated (a large request's buffer is
/// given back once written).
pub(super) const MAX_IDLE_OUTBOX: usize = 4 * 1024;

/// A waker that does nothing, for trying a write without waiting: when
/// the socket is full the flusher task polls again with its own waker.
pub(super) fn noop_waker() -> &'static Waker {
    struct Noop;
    impl Wake for Noop {
        fn wake(self: Arc<Self>) {}
    }
    static WAKER: OnceLock<Waker> = OnceLock::new();
    WAKER.get_or_init(|| Waker::from(Arc::new(Noop)))
}

/// Ends a request's exclusive hold of the socket (also when its call is
/// cancelled) and hands what queued meanwhile to the flusher.
pub(super) struct Exclusive<'a> {
    pub(super) shared: &'a Shared,
    pub(super) writer: Option<Writer>,
}

impl Drop for Exclusive<'_> {
    fn drop(&mut self) {
        let mut outbox = self.shared.lock_outbox();
        if let Some(writer) = self.writer.take() {
            outbox.writer = writer;
        }
        outbox.exclusive = false;
        let stalled = !outbox.queued.is_empty();
        outbox.handed_over |= stalled;
        drop(outbox);
        if stalled {
            self.shared.hand_over.notify_one();
        }
        self.shared.drained.notify_waiters();
    }
}

/// Goes to the back of the run queue once.  Unlike
/// `tokio::task::yield_now`, which waits until the runtime has also polled
/// its I/O driver (one more `epoll_wait` for every batch), this only lets
/// the tasks that are ready run first.
pub(super) fn yield_once() -> impl std::future::Future<Output = ()> {
    let mut yielded = false;
    std::future::poll_fn(move |cx| {
        if yielded {
            return Poll::Ready(());
        }
        yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    })
}

/// Writes what is handed over to it, waiting for room when the socket is
/// full.
pub(super) async fn flush_loop(shared: Arc<Shared>) {
    // The bytes being written, taken out of the queue.
    let mut spare = Vec::new();
    loop {
        shared.hand_over.notified().await;
        // Let the other tasks that are ready queue their requests first.
        yield_once().await;
        let drained = std::future::poll_fn(|cx| flush_some(&shared, cx, &mut spare)).await;
        match drained {
            Ok(()) => shared.drained.notify_waiters(),
            Err(e) => {
                shared.write_failed(e);
                return;
            }
        }
    }
}

/// Writes what is queued while writing is handed over to the flusher,
/// until the queue is empty (`Ready(Ok)`, no longer handed over), the
/// socket is full (`Pending`) or writing fails.
///
/// Each write goes without the outbox's lock, so that calls on other
/// threads can queue meanwhile rather than wait for the system call: the
/// queued bytes move to `spare` (the front of the queue, counted by
/// [`Outbox::in_write`]) and the writer to this task ([`Writer::Busy`]);
/// afterwards what was not written goes back to the front of the queue.
/// Nobody else writes meanwhile: calls only queue while writing is handed
/// over, and a request with file descriptors or the direct-call lease
/// waits until it is not.
fn flush_some(
    shared: &Shared,
    cx: &mut Context<'_>,
    spare: &mut Vec<u8>,
) -> Poll<std::io::Result<()>> {
    loop {
        let mut writer = {
            let mut outbox = shared.lock_outbox();
            if !outbox.handed_over || outbox.exclusive || outbox.failed.is_some() {
                return Poll::Ready(Ok(()));
            }
            if outbox.queued.is_empty() {
                let flushed = ready!(outbox.writer.poll_flush(cx));
                if outbox.queued.capacity() > MAX_IDLE_OUTBOX {
                    outbox.queued = Vec::new();
                }
                outbox.handed_over = false;
                return Poll::Ready(flushed);
            }
            std::mem::swap(&mut outbox.queued, spare);
            outbox.in_write = spare.len();
            std::mem::replace(&mut outbox.writer, Writer::Busy)
        };
        let written = writer.poll_write(cx, spare);
        let mut outbox = shared.lock_outbox();
        // Another writer took its place meanwhile (see `Writer::Busy`):
        // what this one waited for (room, the socket back from direct
        // calls) may have come before it asked, so the new one tries.
        let replaced = !matches!(outbox.writer, Writer::Busy);
        if !replaced {
            outbox.writer = writer;
        }
        outbox.in_write = 0;
        let n = match written {
            Poll::Ready(Ok(n)) => n,
            Poll::Ready(Err(_)) | Poll::Pending => 0,
        };
        outbox.advance(n);
        if n < spare.len() {
            // The rest goes back in front of what was queued meanwhile.
            spare.drain(..n);
            spare.extend_from_slice(&outbox.queued);
            std::mem::swap(&mut outbox.queued, spare);
        }
        spare.clear();
        if spare.capacity() > MAX_IDLE_OUTBOX {
            *spare = Vec::new();
        }
        match written {
            Poll::Ready(Ok(0)) => return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into())),
            Poll::Ready(Ok(_)) => {}
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending if replaced => {}
            Poll::Pending => return Poll::Pending,
        }
    }
}

/// Appends the request's bytes to `out`.
pub(super) fn encode_request(out: &mut Vec<u8>, request: &Request<'_>, id: &IdText) -> Result<()> {
    out.reserve(64 + request.arguments.map_or(0, <[u8]>::len));
    out.extend_from_slice(request.prefix);
    out.extend_from_slice(if request.oob {
        b"{\"exec-oob\":"
    } else {
        b"{\"execute\":"
    });
    if request.name.bytes().all(|b| NAME_BYTES[usize::from(b)]) {
        // Every QAPI name: nothing to escape.
        out.push(b'"');
        out.extend_from_slice(request.name.as_bytes());
        out.push(b'"');
    } else {
        serde_json::to_writer(&mut *out, request.name).map_err(|e| Error::Encode {
            command: request.name.into(),
            message: e.to_string(),
        })?;
    }
    if let Some(arguments) = request.arguments {
        out.extend_from_slice(b",\"arguments\":");
        out.extend_from_slice(arguments);
    }
    out.extend_from_slice(b",\"id\":");
    out.extend_from_slice(id.as_bytes());
    out.push(b'}');
    Ok(())
}

/// The bytes a QAPI name is made of, none of which JSON escapes.
pub(super) static NAME_BYTES: [bool; 256] = {
    let mut set = [false; 256];
    let mut b = 0;
    while b < 256 {
        set[b] = matches!(b as u8, b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_');
        b += 1;
    }
    set
};

/// A call's id in decimal, worked out once for its request and, in a
/// direct call, for the end of its reply ([`ReplyEnd`]).
pub(super) struct IdText {
    pub(super) digits: [u8; 20],
    pub(super) at: usize,
}

impl IdText {
    pub(super) fn new(id: u64) -> IdText {
        let mut buffer = itoa::Buffer::new();
        let text = buffer.format(id).as_bytes();
        let mut digits = [0; 20];
        let at = digits.len() - text.len();
        digits[at..].copy_from_slice(text);
        IdText { digits, at }
    }

    pub(super) fn as_bytes(&self) -> &[u8] {
        &self.digits[self.at..]
    }
}

impl Shared {
    pub(super) fn lock_outbox(&self) -> MutexGuard<'_, Outbox> {
        self.outbox.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a request and, unless the flusher owns writing or `batch`
    /// (other calls are in flight) hands it over, writes what is queued
    /// without waiting.  Returns whether it is written already.
    pub(super) fn send(
        &self,
        request: &Request<'_>,
        id: u64,
        id_text: &IdText,
        batch: bool,
    ) -> Result<bool> {
        let mut outbox = self.lock_outbox();
        if let Some(error) = &outbox.failed {
            return Err(error.clone());
        }
        let range = outbox.push(id, |out| encode_request(out, request, id_text))?;
        let added = &outbox.queued[range];
        trace!(
            peer = self.peer.name(),
            id,
            request = %Redacted(&added[request.prefix.len()..]),
            "send"
        );
        self.record(true, &added[request.prefix.len()..]);
        if outbox.handed_over || outbox.exclusive {
            return Ok(false);
        }
        if let Writer::Unix(writer) = &mut outbox.writer {
            // Nothing waits for room: writing is not handed over.
            writer.calls_in_flight(batch);
        }
        if batch {
            outbox.handed_over = true;
            drop(outbox);
            self.hand_over.notify_one();
            return Ok(false);
        }
        match outbox.poll_drain(&mut Context::from_waker(noop_waker())) {
            Poll::Ready(Ok(())) => Ok(true),
            Poll::Pending => {
                outbox.handed_over = true;
                drop(outbox);
                self.hand_over.notify_one();
                Ok(false)
            }
            Poll::Ready(Err(e)) => {
                drop(outbox);
                Err(self.write_failed(e))
            }
        }
    }

    /// Waits until request `id` is wholly written.
    pub(super) async fn wait_written(&self, id: u64) -> Result<()> {
        loop {
            let drained = self.drained.notified();
            tokio::pin!(drained);
            drained.as_mut().enable();
            {
                let outbox = self.lock_outbox();
                if !outbox.is_queued(id) {
                    return Ok(());
                }
                if let Some(error) = &outbox.failed {
                    return Err(error.clone());
                }
            }
            drained.await;
        }
    }

    /// Sends a request with file descriptors in one `sendmsg` of its own,
    /// once everything queued before it is out.
    /// `began` is set once the request starts to go out (until then, a
    /// call that gives up has sent nothing).
    pub(super) async fn send_with_fds(
        &self,
        request: &Request<'_>,
        id: u64,
        began: &std::sync::atomic::AtomicBool,
    ) -> Result<()> {
        let mut bytes = Vec::new();
        encode_request(&mut bytes, request, &IdText::new(id))?;
        trace!(peer = self.peer.name(), id, request = %Redacted(&bytes), "send");
        self.record(true, &bytes);
        // Take the socket for this request alone.
        loop {
            let drained = self.drained.notified();
            tokio::pin!(drained);
            drained.as_mut().enable();
            {
                let mut outbox = self.lock_outbox();
                if let Some(error) = &outbox.failed {
                    return Err(error.clone());
                }
                if matches!(outbox.writer, Writer::Stream(_)) {
                    return Err(Error::Unsupported(
                        "file descriptors can only be passed over a Unix socket".into(),
                    ));
                }
                if outbox.queued.is_empty()
                    && !outbox.handed_over
                    && !outbox.exclusive
                    && matches!(outbox.writer, Writer::Unix(_))
                {
                    outbox.exclusive = true;
                    break;
                }
                if let Some(lease) = &self.lease {
                    // Handed over to direct calls: the reader task takes
                    // it back and tells `drained`.
                    lease.want_back(None);
                }
            }
            drained.await;
        }
        let writer = std::mem::replace(&mut self.lock_outbox().writer, Writer::Lent);
        // Put back when this is done or cancelled.
        let mut exclusive = Exclusive {
            shared: self,
            writer: Some(writer),
        };
        let Some(Writer::Unix(half)) = &mut exclusive.writer else {
            return Err(Error::Unsupported(
                "file descriptors can only be passed over a Unix socket".into(),
            ));
        };
        began.store(true, std::sync::atomic::Ordering::Relaxed);
        half.send_with_fds(&bytes, request.fds)
            .await
            .map_err(|e| self.write_failed(e))
    }

    /// A write failed: the stream is broken, so the session ends; calls
    /// waiting for their bytes or replies fail.
    pub(super) fn write_failed(&self, error: std::io::Error) -> Error {
        let error = Error::Disconnected {
            reason: format!("write failed: {error}").into(),
        };
        self.lock_outbox().failed.get_or_insert(error.clone());
        self.drained.notify_waiters();
        self.close(error.clone());
        error
    }
}
