//! The client's errors, one variant per phase that can fail.

use std::sync::Arc;
use std::time::Duration;

use qapi_types::QapiErrorClass;

/// What went wrong with a call or a connection.
///
/// The variants say which phase failed: connecting
/// ([`Connect`](Self::Connect)), the transport ([`Io`](Self::Io),
/// [`Disconnected`](Self::Disconnected)), the protocol
/// ([`Protocol`](Self::Protocol), [`MessageTooLarge`](Self::MessageTooLarge)),
/// time ([`Timeout`](Self::Timeout), [`EventTimeout`](Self::EventTimeout)),
/// QEMU refusing the command ([`Qmp`](Self::Qmp)), or a reply that does
/// not fit the bindings ([`Decode`](Self::Decode)).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Connecting to `address` failed (no such socket, nobody listening,
    /// no permission).
    #[error("can't connect to {address}: {source}")]
    Connect {
        /// The socket's path, or the TCP address tried last.
        address: Arc<str>,
        /// Why.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// Listening on `address` for QEMU to connect failed (a file already
    /// there, no such directory, no permission).
    #[error("can't listen on {address}: {source}")]
    Listen {
        /// The socket's path.
        address: Arc<str>,
        /// Why.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// The socket could not be set up, or a TCP address not resolved.
    /// (Once a session runs, a failed read or write ends it: every waiting
    /// call gets [`Disconnected`](Self::Disconnected).)
    #[error("I/O error: {0}")]
    Io(#[source] Arc<std::io::Error>),
    /// The connection is closed; every call still waiting fails with this.
    #[error("connection closed: {reason}")]
    Disconnected {
        /// Why: end of stream, the read error, or the protocol violation
        /// that made the session give up.
        reason: Arc<str>,
    },
    /// The peer broke the protocol (a message that is not JSON or not a
    /// QMP message, no greeting, a failed guest-agent sync).
    #[error("protocol error: {0}")]
    Protocol(Arc<str>),
    /// A message from the peer was longer than the configured limit; the
    /// session is closed, since the rest of the stream cannot be trusted.
    #[error("message longer than the {limit}-byte limit")]
    MessageTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// No reply within the call's time limit.  The call is abandoned; a
    /// reply that arrives later is dropped (an error reply is counted, see
    /// `Qmp::unclaimed_errors`).
    ///
    /// `sent` says whether the peer may run the command: a request none
    /// of which was written when the time was up is taken back and never
    /// sent; one that had begun to go out is finished, so the command may
    /// still run (a timed-out `stop` may still stop the VM).
    #[error("{command}: no reply within {after:?}{}", if *sent { " (the request was sent: the command may still run)" } else { "" })]
    Timeout {
        /// The command's wire name (or `greeting`, `guest-sync-delimited`).
        command: Arc<str>,
        /// The time limit that passed.
        after: Duration,
        /// Whether any of the request was written, or was in a write
        /// under way when the time was up (see above); false for what is
        /// not a command (the QMP handshake, waiting for an event).
        sent: bool,
    },
    /// QEMU (or the guest agent) answered with an error.
    #[error("{0}")]
    Qmp(QmpError),
    /// A reply or event did not decode into the bindings' type.
    #[error("{command}: reply does not decode{}: {message}", at_path(path))]
    Decode {
        /// The command (or event) whose reply failed.
        command: Arc<str>,
        /// The JSON path of the value that failed (`.` for the root).
        path: String,
        /// What serde said.
        message: String,
    },
    /// The request could not be encoded (a `Serialize` impl failed).
    #[error("{command}: arguments do not encode: {message}")]
    Encode {
        /// The command's wire name.
        command: Arc<str>,
        /// What serde said.
        message: String,
    },
    /// This event subscriber fell behind and `missed` events were dropped
    /// for it; the stream goes on with the oldest event still kept.
    #[error("event stream fell behind: {missed} events missed")]
    EventsLagged {
        /// How many events this subscriber will never see.
        missed: u64,
    },
    /// No matching `event` arrived within the time limit of a wait for one
    /// ([`EventStream::wait_for`](crate::EventStream::wait_for)).
    #[error("no matching {event} event within {after:?}")]
    EventTimeout {
        /// The event's wire name (`JOB_STATUS_CHANGE`).
        event: Arc<str>,
        /// The time limit that passed.
        after: Duration,
    },
    /// A reconnecting session ([`ReconnectingQmp`](crate::ReconnectingQmp))
    /// connected again: events between the old session's end and the new
    /// one were missed; its event streams say so once per reconnection.
    #[error("the session reconnected (reconnection {generation}); events in between were missed")]
    Reconnected {
        /// How many times the session has reconnected.
        generation: u64,
    },
    /// A request the session cannot send as asked, found before anything
    /// was sent: out-of-band without the `oob` capability, file descriptors
    /// over a transport that cannot carry them.
    #[error("unsupported request: {0}")]
    Unsupported(Arc<str>),
}

fn at_path(path: &str) -> String {
    if path.is_empty() || path == "." {
        String::new()
    } else {
        format!(" at {path}")
    }
}

impl Error {
    /// [`Error::Connect`] for `address`.
    pub(crate) fn connect(address: impl std::fmt::Display, source: std::io::Error) -> Error {
        Error::Connect {
            address: address.to_string().into(),
            source: Arc::new(source),
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(error: std::io::Error) -> Self {
        Error::Io(Arc::new(error))
    }
}

/// An error reply: `{"error": {"class": …, "desc": …}}`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, thiserror::Error)]
#[error("{}: {desc}", class.as_str())]
pub struct QmpError {
    /// The error class; a class these bindings do not know is kept as
    /// `QapiErrorClass::Unrecognized`.
    pub class: QapiErrorClass,
    /// The human-readable description.
    pub desc: String,
}

impl Error {
    /// The QMP error reply, if this is one.
    pub fn as_qmp(&self) -> Option<&QmpError> {
        match self {
            Error::Qmp(e) => Some(e),
            _ => None,
        }
    }

    /// Whether the peer answered with an error of class `class`.
    pub fn is_class(&self, class: &QapiErrorClass) -> bool {
        self.as_qmp().is_some_and(|e| &e.class == class)
    }
}

/// Short for `Result<T, qapi_client::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;
