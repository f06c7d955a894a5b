//! A session's Unix socket on the runtime, watched for input only.
//!
//! tokio's own `UnixStream` registers a socket with its epoll for input
//! *and* output, edge-triggered.  On a Unix socket an output edge fires
//! every time the peer reads what this side wrote, so a session waiting
//! for its reply is woken once for nothing in every round trip: when QEMU
//! or qemu-ga reads the request.  For a fast peer that wake-up (a context
//! switch, an `epoll_wait`) is a large part of the round trip, and more
//! than the rest of the client's work.  So here the socket is registered
//! for input only ([`UnixReader`]), and [`UnixWriter`] writes without
//! waiting; only when the socket is full does it register a duplicate of
//! the descriptor for output, until a write goes through whole again, and
//! while calls are pipelined, where that wake-up pays for itself
//! ([`UnixWriter::calls_in_flight`]).  (`BENCHMARKS.md` has the figures.)
//!
//! Both halves share the [`StdUnixStream`], non-blocking, so the reader
//! task can hand it to direct calls of the blocking client (which take it
//! out of the runtime: [`UnixReader::into_stream`]) and take it back.

use std::io::{self, IoSlice};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::path::Path;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use rustix::net::{RecvFlags, SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// Connects to `path` and splits the socket into its halves, registered
/// with the runtime for input.
pub(crate) async fn connect(path: &Path) -> io::Result<(UnixReader, UnixWriter)> {
    // tokio's connect waits for a full listen queue to make room; then the
    // socket leaves tokio's registration (input and output) for ours.
    let stream = tokio::net::UnixStream::connect(path).await?.into_std()?;
    split(stream)
}

/// Splits a connected socket into its halves, registered with the runtime
/// for input (so it must be called inside one); makes it non-blocking.
pub(crate) fn split(stream: StdUnixStream) -> io::Result<(UnixReader, UnixWriter)> {
    stream.set_nonblocking(true)?;
    let stream = Arc::new(stream);
    let reader = UnixReader::new(Arc::clone(&stream))?;
    Ok((reader, UnixWriter::new(stream)))
}

/// Registers a descriptor that `inner` owns with the runtime.
///
/// tokio 1.54 deprecated `AsyncFd::with_interest` for its `unsafe`
/// successor, because a `T: AsRawFd` need not own its descriptor, which
/// could then be closed while registered.  Both types used here own theirs
/// (`Arc<StdUnixStream>`, `OwnedFd`) and keep it open until the `AsyncFd`
/// is dropped or taken apart, which is what the successor asks of its
/// caller; this workspace forbids `unsafe`, so it calls the safe one.
#[allow(deprecated)]
fn register<T: AsFd + std::os::fd::AsRawFd>(
    inner: T,
    interest: Interest,
) -> io::Result<AsyncFd<T>> {
    AsyncFd::with_interest(inner, interest)
}

/// The read half, registered with the runtime for input only.
pub(crate) struct UnixReader {
    fd: AsyncFd<Arc<StdUnixStream>>,
}

impl UnixReader {
    /// Registers a (non-blocking) socket with the runtime for input.
    pub(crate) fn new(stream: Arc<StdUnixStream>) -> io::Result<UnixReader> {
        Ok(UnixReader {
            fd: register(stream, Interest::READABLE)?,
        })
    }

    /// Takes the socket out of the runtime.
    pub(crate) fn into_stream(self) -> Arc<StdUnixStream> {
        self.fd.into_inner()
    }

    /// Reads what the socket holds into `buf`'s spare room, waiting for
    /// input if it holds nothing; `Ok(0)` at the end of the stream.
    pub(crate) fn poll_read_into(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut Vec<u8>,
    ) -> Poll<io::Result<usize>> {
        let room = buf.capacity() - buf.len();
        loop {
            let mut guard = ready!(self.fd.poll_read_ready(cx))?;
            let spare = rustix::buffer::spare_capacity(&mut *buf);
            match rustix::net::recv(&**guard.get_inner(), spare, RecvFlags::DONTWAIT) {
                Ok((n, _)) => {
                    // A read that did not fill its room emptied the
                    // socket: wait for the next input edge instead of
                    // asking again (as tokio's own streams do).
                    if n > 0 && n < room {
                        guard.clear_ready();
                    }
                    return Poll::Ready(Ok(n));
                }
                Err(rustix::io::Errno::AGAIN) => guard.clear_ready(),
                Err(rustix::io::Errno::INTR) => {}
                Err(error) => return Poll::Ready(Err(error.into())),
            }
        }
    }
}

/// The write half: writes at once, and waits for room (registered for
/// output) only while the socket is full.
pub(crate) struct UnixWriter {
    stream: Arc<StdUnixStream>,
    /// A duplicate of the descriptor, registered for output while a write
    /// waits for room; dropped (deregistered) once a write goes through
    /// whole.
    room: Option<AsyncFd<OwnedFd>>,
    /// Keep `room` registered between writes (see [`calls_in_flight`]).
    ///
    /// [`calls_in_flight`]: UnixWriter::calls_in_flight
    watching: bool,
    /// Writes of a lone call since the last pipelined one, while watching.
    lone_writes: u32,
}

/// How many writes of lone calls in a row end watching for output: calls
/// that overlap now and then (two tasks, say) would otherwise register and
/// deregister the descriptor over and over.
const LONE_WRITES_TO_UNWATCH: u32 = 16;

impl UnixWriter {
    pub(crate) fn new(stream: Arc<StdUnixStream>) -> UnixWriter {
        UnixWriter {
            stream,
            room: None,
            watching: false,
            lone_writes: 0,
        }
    }

    /// Tells whether the call about to write has others in flight
    /// (`pipelined`), which decides whether to stay registered for output
    /// between writes; that wakes the runtime each time the peer reads
    /// what was written.
    ///
    /// For calls one at a time that wake-up is pure cost.  With calls
    /// pipelined on a CPU the peer shares, it is worth having: a client
    /// woken as the peer starts on a batch of requests has just run when
    /// the first reply comes, so the scheduler lets the peer go on and
    /// answer more of the batch before the client reads; without it the
    /// client preempts the peer at every reply and reads them one at a
    /// time (`BENCHMARKS.md`).  So output is watched from the first call
    /// with others in flight until [`LONE_WRITES_TO_UNWATCH`] calls in a
    /// row have been alone.  Call only when no write is waiting for room.
    pub(crate) fn calls_in_flight(&mut self, pipelined: bool) {
        if !pipelined {
            if self.watching {
                self.lone_writes += 1;
                if self.lone_writes >= LONE_WRITES_TO_UNWATCH {
                    self.watching = false;
                    self.room = None;
                }
            }
            return;
        }
        self.lone_writes = 0;
        self.watching = true;
        if self.room.is_none() {
            // Only an optimisation: without it, writes still wait for
            // room when they must.
            match self.register_room() {
                Ok(room) => self.room = Some(room),
                Err(error) => tracing::debug!(%error, "cannot watch the socket for output"),
            }
        }
    }

    /// The socket both halves share.
    pub(crate) fn socket(&self) -> &Arc<StdUnixStream> {
        &self.stream
    }

    fn register_room(&self) -> io::Result<AsyncFd<OwnedFd>> {
        register(
            self.stream.as_fd().try_clone_to_owned()?,
            Interest::WRITABLE,
        )
    }

    /// Writes some of `bytes`.
    pub(crate) fn poll_write(
        &mut self,
        cx: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_io(cx, bytes.len(), |stream| {
            rustix::net::send(stream, bytes, SendFlags::NOSIGNAL | SendFlags::DONTWAIT)
        })
    }

    /// Writes all of `bytes` in as few `sendmsg` calls as the socket
    /// allows, `fds` riding with the first (SCM_RIGHTS): QEMU takes the
    /// descriptors from the same `sendmsg` as bytes of the command that
    /// uses them (`getfd`, `add-fd`).
    pub(crate) async fn send_with_fds(
        &mut self,
        bytes: &[u8],
        fds: &[BorrowedFd<'_>],
    ) -> io::Result<()> {
        let mut space = vec![MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(fds.len()))];
        let mut sent = 0;
        while sent < bytes.len() {
            let rest = &bytes[sent..];
            let first = sent == 0;
            let n = std::future::poll_fn(|cx| {
                self.poll_io(cx, rest.len(), |stream| {
                    let slices = [IoSlice::new(rest)];
                    let flags = SendFlags::NOSIGNAL | SendFlags::DONTWAIT;
                    if !first {
                        return rustix::net::sendmsg(
                            stream,
                            &slices,
                            &mut SendAncillaryBuffer::default(),
                            flags,
                        );
                    }
                    let mut control = SendAncillaryBuffer::new(&mut space);
                    if !control.push(SendAncillaryMessage::ScmRights(fds)) {
                        // `space` is sized for them; as the kernel would say.
                        return Err(rustix::io::Errno::INVAL);
                    }
                    rustix::net::sendmsg(stream, &slices, &mut control, flags)
                })
            })
            .await?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            sent += n;
        }
        Ok(())
    }

    /// Runs `write` until it does not find the socket full, waiting for
    /// room in between.  `len` is how much `write` tries to write: when
    /// all of it goes, the socket has room again and the registration for
    /// output goes too.
    fn poll_io(
        &mut self,
        cx: &mut Context<'_>,
        len: usize,
        mut write: impl FnMut(&StdUnixStream) -> rustix::io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        loop {
            match write(&self.stream) {
                Ok(n) => {
                    if n == len && !self.watching {
                        self.room = None;
                    }
                    return Poll::Ready(Ok(n));
                }
                Err(rustix::io::Errno::INTR) => {}
                Err(rustix::io::Errno::AGAIN) => {
                    let room = match &mut self.room {
                        Some(room) => room,
                        // Registering reports the socket writable at once
                        // if room was made since the write failed.
                        None => self.room.insert(self.register_room()?),
                    };
                    ready!(room.poll_write_ready(cx))?.clear_ready();
                }
                Err(error) => return Poll::Ready(Err(error.into())),
            }
        }
    }
}
