//! Clients for QEMU's machine protocol (QMP) and its guest agent (QGA),
//! built on the generated types of [`qapi_types`] and `qga_types`.
//!
//! A tour: connect, add a block node, stop the VM and read the `STOP`
//! event, then ask a guest agent.
//!
//! ```no_run
//! # async fn demo() -> qapi_client::Result<()> {
//! use qapi_client::{Qga, Qmp};
//! use qapi_types::commands::{BlockdevAdd, QueryStatus, Stop};
//! use qapi_types::{AnyEvent, BlockdevOptions, BlockdevOptionsBranch};
//!
//! let qmp = Qmp::connect_unix("/run/vm1/qmp.sock").await?;
//! let mut events = qmp.events();
//!
//! qmp.execute(&BlockdevAdd(BlockdevOptions {
//!     node_name: Some("null0".into()),
//!     ..BlockdevOptionsBranch::NullCo(Default::default()).into()
//! }))
//! .await?;
//!
//! let status = qmp.execute(&QueryStatus {}).await?;
//! println!("{:?}, running: {}", status.status, status.running);
//! qmp.execute(&Stop {}).await?;
//! while let Some(message) = events.recv().await {
//!     if let AnyEvent::Stop = message?.event {
//!         println!("stopped");
//!         break;
//!     }
//! }
//!
//! // The guest agent takes its own commands (a QMP command does not compile here).
//! let qga = Qga::connect_unix("/run/vm1/qga.sock").await?;
//! let info = qga.execute(&qga_types::commands::GuestInfo {}).await?;
//! println!("qemu-ga {}", info.version);
//! # Ok(()) }
//! ```
//!
//! # What it does
//!
//! - [`Qmp`]: reads the greeting, negotiates capabilities (`oob` on
//!   request), then executes any generated command ([`Qmp::execute`]),
//!   out of band ([`Qmp::execute_oob`]), with file descriptors
//!   ([`Qmp::execute_with_fds`]) or by name with untyped JSON
//!   ([`Qmp::execute_raw`]).  Handles are cheap clones; calls from many
//!   tasks share one connection and are matched to replies by `id`.
//!   Events arrive on [`EventStream`]s.  [`Qmp::schema_report`] compares
//!   the live QEMU's schema with the bindings (which commands it lacks,
//!   which replies differ), and [`Qmp::supports`] answers per command.
//! - [`Qga`]: the guest agent, which sends no greeting: the session starts
//!   with `guest-sync-delimited` ([`Qga::sync`]) and every call has a time
//!   limit.
//! - [`blocking`]: the same for programs without an async runtime.
//!
//! # Errors and failure
//!
//! Every failure is an [`Error`] that says which phase failed: connecting
//! ([`Error::Connect`], naming the socket or address), transport,
//! protocol, time limit, an error reply from QEMU, or a reply that does not
//! decode (with the JSON path).  When QEMU exits or the socket breaks, every
//! waiting call fails at once with [`Error::Disconnected`] and event streams
//! end.  A message longer than the configured limit closes the session.
//!
//! QEMU is trusted to speak the protocol: anything malformed from it closes
//! the session with [`Error::Protocol`].  The guest agent is not: junk,
//! unparsable messages and replies to no call are dropped and logged, and
//! the calls they should have answered run into their time limit; call
//! [`Qga::sync`] to resynchronise.
//!
//! # Logging
//!
//! Each call runs in a `tracing` span named after the protocol
//! (`qmp_execute`, `qga_execute`, `qga_sync`, `qmp_handshake`) with the
//! command name; the JSON of every message sent and received is logged at
//! `TRACE` level.

#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod blocking;
mod error;
mod events;
mod framing;
mod qga;
mod qmp;
mod report;
mod session;
mod tcp;
mod unix;

pub use error::{Error, QmpError, Result};
pub use events::{EventStream, RawEvent};
pub use qga::{Qga, QgaBuilder};
pub use qmp::{Greeting, Qmp, QmpBuilder};
pub use report::{AgentReport, SchemaReport, Support};

use std::time::Duration;

use tracing::{info_span, Instrument};

use session::{Direct, Engine, Request};

/// Encodes a command's arguments; `None` for commands without any (an
/// empty object is left out of the request).  The encoding starts in a
/// small buffer on the stack, so a command without arguments allocates
/// nothing.
fn encode_arguments<C: qapi_types::Command>(command: &C) -> Result<Option<Vec<u8>>> {
    if !C::HAS_ARGUMENTS {
        return Ok(None);
    }
    let mut out = Arguments {
        start: [0; 8],
        len: 0,
        spilled: Vec::new(),
    };
    serde_json::to_writer(&mut out, command).map_err(|e| Error::Encode {
        command: C::NAME.into(),
        message: e.to_string(),
    })?;
    if out.spilled.is_empty() && &out.start[..out.len] == b"{}" {
        return Ok(None);
    }
    let mut bytes = Vec::with_capacity(out.len + out.spilled.len());
    bytes.extend_from_slice(&out.start[..out.len]);
    bytes.extend_from_slice(&out.spilled);
    Ok(Some(bytes))
}

/// Where [`encode_arguments`] writes: the first bytes in `start`, the
/// rest, if any, in `spilled`.
struct Arguments {
    start: [u8; 8],
    len: usize,
    spilled: Vec<u8>,
}

impl std::io::Write for Arguments {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.write_all(bytes)?;
        Ok(bytes.len())
    }

    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if self.spilled.is_empty() && self.len + bytes.len() <= self.start.len() {
            self.start[self.len..self.len + bytes.len()].copy_from_slice(bytes);
            self.len += bytes.len();
        } else {
            self.spilled.extend_from_slice(bytes);
        }
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A typed command's round trip, async: its arguments encoded, the call,
/// the reply decoded.  `span` names the exchange for tracing.
async fn execute_typed<C: qapi_types::Command>(
    engine: &Engine,
    command: &C,
    oob: bool,
    fds: &[std::os::fd::BorrowedFd<'_>],
    timeout: Option<Duration>,
    span: tracing::Span,
) -> Result<C::Returns> {
    let arguments = encode_arguments(command)?;
    let reply = engine
        .call(typed_request::<C>(arguments.as_deref(), oob, fds, timeout))
        .instrument(span)
        .await?;
    engine.decode::<C::Returns>(C::NAME, &reply)
}

/// [`execute_typed`] for the blocking clients (a direct call when it can
/// be, see `Engine::call_blocking`).
fn execute_typed_blocking<C: qapi_types::Command>(
    engine: &Engine,
    command: &C,
    oob: bool,
    timeout: Option<Duration>,
    runtime: &tokio::runtime::Runtime,
) -> Result<C::Returns> {
    let arguments = encode_arguments(command)?;
    let reply = engine.call_blocking(
        typed_request::<C>(arguments.as_deref(), oob, &[], timeout),
        runtime,
        |text| serde_json::from_str::<C::Returns>(text).ok(),
    )?;
    match reply {
        Direct::Decoded(value) => Ok(value),
        Direct::Raw(reply) => engine.decode::<C::Returns>(C::NAME, &reply),
    }
}

/// The request of command `C` with encoded `arguments`.
fn typed_request<'a, C: qapi_types::Command>(
    arguments: Option<&'a [u8]>,
    oob: bool,
    fds: &'a [std::os::fd::BorrowedFd<'a>],
    timeout: Option<Duration>,
) -> Request<'a> {
    Request {
        name: C::NAME,
        arguments,
        oob,
        fds,
        prefix: b"",
        expect_reply: C::SUCCESS_RESPONSE,
        timeout,
    }
}

/// The untyped call both clients offer.
async fn execute_raw(
    engine: &Engine,
    name: &str,
    arguments: Option<&serde_json::Value>,
    timeout: Option<Duration>,
) -> Result<serde_json::Value> {
    let encoded = arguments
        .map(serde_json::to_vec)
        .transpose()
        .map_err(|e| Error::Encode {
            command: name.into(),
            message: e.to_string(),
        })?;
    let reply = engine
        .call(Request {
            name,
            arguments: encoded.as_deref(),
            oob: false,
            fds: &[],
            prefix: b"",
            expect_reply: true,
            timeout,
        })
        .instrument(info_span!("execute_raw", command = name))
        .await?;
    engine.decode(name, &reply)
}
