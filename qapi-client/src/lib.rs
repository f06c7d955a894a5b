//! Clients for QEMU's machine protocol (QMP) and its guest agent (QGA), built
//! on the generated types of `qapi-types` and `qga-types`.
//!
//! **Status: placeholder.**  The crate is empty until the client lands (the
//! client issue).  It will hold:
//!
//! - **an async API first**, on tokio: a QMP session that performs the
//!   greeting and capabilities negotiation, sends typed commands and returns
//!   their typed results, and delivers events as a stream; a guest agent
//!   session with the agent's `guest-sync` handshake;
//! - **transports**: Unix domain sockets and TCP;
//! - **a blocking API** in `blocking`, mirroring the async module tree with
//!   thin wrappers, which must not be called from inside a tokio runtime;
//! - **errors that say which phase failed**: I/O, protocol, an error QEMU
//!   returned, or a reply that does not decode.
