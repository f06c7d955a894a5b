//! What a command and an event are.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// A command: its wire name, flags, and the type of its reply.
///
/// Every generated command type implements it; the value of the type is the
/// command's arguments, serialized as the `arguments` object of an
/// `execute`.
pub trait Command: Serialize {
    /// The command's name on the wire (`query-block`).
    const NAME: &'static str;
    /// What a successful reply's `return` decodes to.
    type Returns: DeserializeOwned;
    /// Whether the command may be executed out of band (`exec-oob`).
    const ALLOW_OOB: bool = false;
    /// False for commands that send no reply when they succeed (such as the
    /// guest agent's `guest-shutdown`).
    const SUCCESS_RESPONSE: bool = true;
    /// Whether the command may run before the machine is created
    /// (`--preconfig`).
    const ALLOW_PRECONFIG: bool = false;
    /// Whether the schema marks the command `deprecated`.
    const DEPRECATED: bool = false;
    /// Whether the schema marks the command `unstable`.
    const UNSTABLE: bool = false;
    /// False when the command takes no arguments at all (its type is an
    /// empty struct), so a client can leave `arguments` out without
    /// encoding the value.
    const HAS_ARGUMENTS: bool = true;
}

/// A command of QEMU's machine protocol (QMP): what a QMP session
/// executes.
///
/// Every command in this crate implements it; the guest agent's commands
/// (`qga-types`) implement [`QgaCommand`] instead, so that sending one to
/// the wrong peer is a compile error rather than QEMU's `CommandNotFound`.
/// A command type of your own (one these bindings do not know) implements
/// [`Command`] and this.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a QMP command",
    label = "not a command of QEMU's machine protocol",
    note = "guest-agent commands (`qga_types::commands`) run on a guest-agent session (`Qga`), QMP commands (`qapi_types::commands`) on a `Qmp` one"
)]
pub trait QmpCommand: Command {}

/// A command of the QEMU guest agent's protocol: what a guest-agent
/// session executes.  See [`QmpCommand`].
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a guest-agent command",
    label = "not a command of the QEMU guest agent",
    note = "guest-agent commands (`qga_types::commands`) run on a guest-agent session (`Qga`), QMP commands (`qapi_types::commands`) on a `Qmp` one"
)]
pub trait QgaCommand: Command {}

/// An event's data type: its wire name.
pub trait Event: DeserializeOwned {
    /// The event's name on the wire (`BLOCK_JOB_COMPLETED`).
    const NAME: &'static str;
}
