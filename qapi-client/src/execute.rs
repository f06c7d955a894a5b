//! The typed and untyped calls both clients make: a command's arguments
//! encoded, the call on the engine, the reply decoded.

use std::time::Duration;

use tracing::{info_span, Instrument};

use crate::engine::{Direct, Engine, Request};
use crate::error::{Error, Result};

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
pub(crate) async fn execute_typed<C: qapi_types::Command>(
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
pub(crate) fn execute_typed_blocking<C: qapi_types::Command>(
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
pub(crate) async fn execute_raw(
    engine: &Engine,
    name: &str,
    arguments: Option<&serde_json::Value>,
    timeout: Option<Duration>,
    expect_reply: bool,
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
            expect_reply,
            timeout,
        })
        .instrument(info_span!("execute_raw", command = name))
        .await?;
    engine.decode(name, &reply)
}
