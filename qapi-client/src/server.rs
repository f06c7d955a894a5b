//! QMP in server mode: this side listens on a Unix socket and QEMU
//! connects to it (`-qmp unix:PATH,server=off`, or a `-chardev
//! socket,…,server=off` monitor), as a management daemon that starts many
//! VMs, or one that must not miss QEMU's first words, may prefer.  Each
//! accepted connection is a [`Qmp`] session like any other: QEMU sends its
//! greeting and the handshake follows.

use std::os::unix::net::UnixListener as StdUnixListener;
use std::path::{Path, PathBuf};

use tracing::debug;

use crate::error::{Error, Result};
use crate::qmp::{Qmp, QmpBuilder};

/// A Unix socket QEMU connects to (see [`QmpBuilder::listen_unix`]).
///
/// Dropping it closes the socket and removes its file; sessions already
/// accepted go on.
#[derive(Debug)]
pub struct QmpListener {
    listener: Option<tokio::net::UnixListener>,
    /// Bound but not yet on a runtime: binding needs none, so
    /// [`QmpBuilder::listen_unix`] works before one runs.
    bound: Option<StdUnixListener>,
    path: PathBuf,
    builder: QmpBuilder,
}

impl QmpBuilder {
    /// Listens on the Unix socket `path` for QEMU to connect, as QEMU
    /// started with `-qmp unix:PATH,server=off` does; each
    /// [`QmpListener::accept`] then gives a negotiated session with these
    /// settings.  Fails with [`Error::Listen`] if the socket cannot be
    /// made (a file already there, a missing directory).
    pub fn listen_unix(self, path: impl AsRef<Path>) -> Result<QmpListener> {
        let path = path.as_ref();
        let listen = |error| Error::Listen {
            address: path.display().to_string().into(),
            source: std::sync::Arc::new(error),
        };
        let bound = StdUnixListener::bind(path).map_err(listen)?;
        bound.set_nonblocking(true).map_err(listen)?;
        Ok(QmpListener {
            listener: None,
            bound: Some(bound),
            path: path.to_owned(),
            builder: self,
        })
    }
}

impl QmpListener {
    /// Waits for QEMU to connect, then reads its greeting and negotiates
    /// (within the builder's handshake time limit).  Cancel-safe: dropping
    /// the future before QEMU connects loses no connection.  A connection
    /// whose handshake fails is closed and its error returned; the
    /// listener goes on.
    pub async fn accept(&mut self) -> Result<Qmp> {
        let listener = match &mut self.listener {
            Some(listener) => listener,
            None => {
                let Some(bound) = self.bound.take() else {
                    return Err(Error::Unsupported("the listener was closed".into()));
                };
                self.listener
                    .insert(tokio::net::UnixListener::from_std(bound)?)
            }
        };
        let (stream, _) = listener.accept().await?;
        debug!(path = %self.path.display(), "QEMU connected");
        let stream = stream.into_std()?;
        self.builder.clone().connect_std_unix(stream).await
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for QmpListener {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
