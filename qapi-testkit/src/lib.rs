//! Test QEMU-driving code without QEMU: record a real QEMU (or guest agent)
//! once, commit the transcript, and replay it in every test, with every
//! message checkable against the schema.
//!
//! - [`transcript`]: the recorded conversation, read from and written to
//!   this crate's JSON-lines format, libvirt's `.replies` files and QEMU's
//!   documentation form (`->` / `<-`).  `qapi-client` records it (its
//!   builders' `record` option).
//! - [`replay`]: a fake QEMU or guest agent serving a transcript on an
//!   in-memory stream, a Unix socket or TCP, strict by default, with a
//!   [`Report`] of what differed.
//! - [`check`]: every request and reply of a transcript decoded with the
//!   bindings.
//! - [`script`]: fakes that behave as a test says, step by step (garbage,
//!   hang-ups, silence, floods), for what a recording cannot show.
//! - [`qemu`]: a real QEMU started for a test or a recording, in a
//!   directory of its own, killed when dropped ([`Qemu`]), and `qemu-ga`
//!   limited to the commands a test names ([`QemuGa`]).
//! - The `qapi-mock` tool does the same from the command line (`serve`,
//!   `check`, `convert`), so test suites in any language can use a
//!   transcript as a fake QEMU.
//!
//! # Record once, replay in every test
//!
//! Record against a real QEMU (once, by hand or in an ignored test; here a
//! throwaway one, [`Qemu`]):
//!
//! ```no_run
//! # async fn record() -> Result<(), Box<dyn std::error::Error>> {
//! use qapi_client::{Qmp, Recorder};
//! use qapi_testkit::Qemu;
//! use qapi_types::commands::QueryStatus;
//!
//! let qemu = Qemu::builder().arg("-S").start()?; // paused, as a VM manager starts one
//! let recorder = Recorder::to_file("tests/data/status.jsonl")?;
//! let qmp = Qmp::builder().record(recorder).connect_unix(qemu.qmp_socket()).await?;
//! qmp.execute(&QueryStatus {}).await?;
//! # Ok(()) }
//! ```
//!
//! Then test the same code against the recording:
//!
//! ```no_run
//! # async fn test() -> Result<(), Box<dyn std::error::Error>> {
//! use qapi_client::Qmp;
//! use qapi_testkit::Replay;
//! use qapi_types::commands::QueryStatus;
//!
//! let (stream, server) = Replay::from_file("tests/data/status.jsonl")?.in_memory();
//! let qmp = Qmp::builder().connect_stream(stream).await?;
//! let status = qmp.execute(&QueryStatus {}).await?;
//! assert!(!status.running);
//! drop(qmp);
//! server.report().await.assert_clean();
//! # Ok(()) }
//! ```

pub mod check;
pub mod qemu;
pub mod replay;
pub mod script;
pub mod transcript;
pub mod wire;

use std::path::{Path, PathBuf};

pub use qemu::{Qemu, QemuBuilder, QemuGa, QemuGaBuilder};
pub use replay::{Replay, Report};
pub use script::Script;
pub use transcript::{Entry, Format, Protocol, Side, Transcript};

/// Why a transcript file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be read.
    #[error("can't read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a transcript.
    #[error("{path}:{}", .source)]
    Parse {
        /// The file.
        path: PathBuf,
        /// Where and why.
        source: transcript::ParseError,
    },
}

/// Reads a transcript file in any of the three formats.
pub fn read_transcript(path: &Path) -> Result<Transcript, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_owned(),
        source,
    })?;
    Transcript::parse(&text).map_err(|source| Error::Parse {
        path: path.to_owned(),
        source,
    })
}
