//! Clients for QEMU's machine protocol (QMP) and its guest agent (QGA),
//! built on the generated types of [`qapi_types`] and `qga_types`.
//!
//! A tour: connect, add a block node, stop the VM and read the `STOP`
//! event, wait for a job to conclude, then ask a guest agent.
//!
//! ```no_run
//! # async fn demo() -> qapi_client::Result<()> {
//! use std::time::Duration;
//!
//! use qapi_client::{Qga, Qmp};
//! use qapi_types::commands::{BlockdevAdd, JobFinalize, QueryStatus, Stop};
//! use qapi_types::events::JobStatusChange;
//! use qapi_types::{AnyEvent, BlockdevOptions, BlockdevOptionsBranch, Event, JobStatus};
//!
//! let qmp = Qmp::connect_unix("/run/vm1/qmp.sock").await?;
//! let mut events = qmp.events();
//! let mut jobs = qmp.events_named([JobStatusChange::NAME]);
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
//! // One typed event, with a time limit: job `j1` has concluded.
//! qmp.execute(&JobFinalize::new("j1")).await?;
//! let concluded = jobs
//!     .wait_for(Duration::from_secs(30), |change: &JobStatusChange| {
//!         change.id == "j1" && change.status == JobStatus::Concluded
//!     })
//!     .await?;
//! println!("j1 concluded at {}", concluded.timestamp.seconds);
//!
//! // The guest agent takes its own commands (a QMP command does not compile here).
//! let qga = Qga::connect_unix("/run/vm1/qga.sock").await?;
//! let info = qga.execute(&qga_types::commands::GuestInfo {}).await?;
//! println!("qemu-ga {}", info.version);
//!
//! // Done: hang up now (calls still in flight fail) rather than when the
//! // last clone is dropped.
//! qmp.close();
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
//!   Events arrive on [`EventStream`]s ([`Qmp::events`], or only some
//!   names: [`Qmp::events_named`]), which are [`Stream`]s of undecoded
//!   events, decode on request, and wait for one typed event that fits a
//!   condition, with a time limit ([`EventStream::wait_for`]); the first
//!   subscriber can also get the events that came before it
//!   ([`QmpBuilder::keep_early_events`]).  [`Qmp::schema_report`] compares
//!   the live QEMU's schema with the bindings (which commands it lacks,
//!   which replies differ), and [`Qmp::supports`] answers per command.
//! - [`Qga`]: the guest agent, which sends no greeting: the session starts
//!   with `guest-sync-delimited` ([`Qga::sync`]) and every call has a time
//!   limit.  Over a Unix socket or TCP ([`QgaBuilder::connect_tcp`]).
//! - [`Address`]: where to connect, read from text as people write it
//!   (`/run/vm.qmp`, `localhost:4444`, or QEMU's own `unix:PATH,…` and
//!   `tcp:HOST:PORT,…`), for [`QmpBuilder::connect`] and
//!   [`QgaBuilder::connect`].
//! - Both end when the peer goes, or at once with `close` ([`Qmp::close`],
//!   [`Qga::close`]); `closed` ([`Qmp::closed`]) resolves when the session
//!   ends, with the reason.
//! - [`blocking`]: the same for programs without an async runtime, also on
//!   a socket connected beforehand ([`blocking::Qmp::connect_stream`]).
//!
//! # Errors and failure
//!
//! Every failure is an [`Error`] that says which phase failed: connecting
//! ([`Error::Connect`], naming the socket or address), transport,
//! protocol, time limit, an error reply from QEMU, or a reply that does not
//! decode (with the JSON path).  When QEMU exits or the socket breaks, every
//! waiting call fails at once with [`Error::Disconnected`] and event streams
//! end.  A message longer than the configured limit closes the session.
//! A wait for an event that runs out of time is [`Error::EventTimeout`].
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
//! `TRACE` level, with secrets redacted: passwords, secret objects' data,
//! file contents and a guest process's input and output, HMP command
//! arguments and the like show as `"<redacted>"`, and a message that does
//! not parse shows as its length.  The rule, with the list of what it
//! hides and keeps, lives in one place, this crate's `src/redact.rs`; it
//! runs only when `TRACE` is enabled.
//!
//! [`Stream`]: futures_core::Stream

#![cfg_attr(docsrs, feature(doc_cfg))]

mod address;
pub mod blocking;
mod engine;
mod error;
mod events;
mod execute;
mod framing;
mod qga;
mod qmp;
mod reconnect;
mod record;
mod redact;
mod report;
mod server;
mod tcp;
mod unix;

pub use address::{Address, AddressError};
pub use error::{Error, QmpError, Result};
pub use events::{EventStream, RawEvent};
pub use qga::{Qga, QgaBuilder};
pub use qmp::{Greeting, Qmp, QmpBuilder, DEFAULT_COMMAND_TIMEOUT};
pub use reconnect::{ReconnectingEvents, ReconnectingQmp, MAX_RECONNECT_DELAY};
pub use record::Recorder;
pub use report::{AgentReport, SchemaReport, Support};
pub use server::QmpListener;
