//! Passing file descriptors with a request (SCM_RIGHTS), for `getfd` and
//! `add-fd`: QEMU takes the descriptors from the same `sendmsg` as bytes of
//! the command that uses them.

use std::io::{self, IoSlice};
use std::mem::MaybeUninit;
use std::os::fd::BorrowedFd;

use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
use tokio::io::Interest;
use tokio::net::UnixStream;

/// Writes all of `bytes`, the descriptors riding with the first chunk.
pub(crate) async fn send_with_fds(
    stream: &UnixStream,
    bytes: &[u8],
    fds: &[BorrowedFd<'_>],
) -> io::Result<()> {
    let mut sent = 0;
    while sent < bytes.len() {
        stream.writable().await?;
        let attempt = stream.try_io(Interest::WRITABLE, || {
            let rest = [IoSlice::new(&bytes[sent..])];
            if sent == 0 {
                let mut space =
                    vec![MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(fds.len()))];
                let mut control = SendAncillaryBuffer::new(&mut space);
                if !control.push(SendAncillaryMessage::ScmRights(fds)) {
                    return Err(io::Error::other(
                        "too many file descriptors for one message",
                    ));
                }
                rustix::net::sendmsg(stream, &rest, &mut control, SendFlags::NOSIGNAL)
            } else {
                rustix::net::sendmsg(
                    stream,
                    &rest,
                    &mut SendAncillaryBuffer::default(),
                    SendFlags::NOSIGNAL,
                )
            }
            .map_err(io::Error::from)
        });
        match attempt {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => sent += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
