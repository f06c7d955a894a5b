//! What the `qmp` and `qga` example tools share: arguments, typed checking
//! through the bindings' codecs, and the exit-status contract
//! (0 success, 1 error reply, 2 anything else).

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use qapi_client::Error;
use qapi_types::CommandCodec;
use serde_json::Value;

#[derive(Parser, Debug)]
pub struct Args {
    /// Give up after this many seconds (connecting included).
    #[arg(long, default_value_t = 10.0)]
    pub timeout: f64,
    /// The socket to connect to: a Unix path or HOST:PORT.
    pub socket: qapi_client::Address,
    /// The command's wire name (`query-status`).
    pub command: String,
    /// The command's arguments as a JSON object.
    pub arguments: Option<String>,
}

impl Args {
    pub fn timeout(&self) -> Result<Duration, String> {
        Duration::try_from_secs_f64(self.timeout)
            .map_err(|e| format!("--timeout {}: {e}", self.timeout))
    }

    /// The arguments, checked against the bindings when `codec` knows the
    /// command (and then re-encoded, so unknown members are refused).
    pub fn arguments(&self, codec: Option<CommandCodec>) -> Result<Option<Value>, String> {
        let Some(text) = &self.arguments else {
            return Ok(None);
        };
        let value: Value =
            serde_json::from_str(text).map_err(|e| format!("arguments are not JSON: {e}"))?;
        let Some(codec) = codec else {
            return Ok(Some(value));
        };
        let typed = codec
            .decode_arguments(value.clone())
            .map_err(|e| format!("arguments do not fit {}: {e}", self.command))?;
        // Decoding ignores members it does not know; a tool should not.
        if let (Value::Object(given), Value::Object(known)) = (&value, &typed) {
            let unknown: Vec<&str> = given
                .keys()
                .filter(|key| !known.contains_key(*key))
                .map(String::as_str)
                .collect();
            if !unknown.is_empty() {
                return Err(format!(
                    "arguments do not fit {}: unknown member(s) {}",
                    self.command,
                    unknown.join(", ")
                ));
            }
        }
        Ok(Some(typed))
    }
}

/// Prints the reply (checking it against the bindings when they know the
/// command) and maps the outcome to the exit status.
pub fn finish(
    command: &str,
    codec: Option<CommandCodec>,
    outcome: Result<Result<Value, Error>, String>,
) -> ExitCode {
    match outcome {
        Ok(Ok(reply)) => {
            if let Some(codec) = codec {
                // The reply is printed either way; a mismatch is worth
                // knowing (an older or newer QEMU) but is not a failure.
                if let Err(why) = codec.decode_return(reply.clone()) {
                    eprintln!("warning: {command}: reply does not fit the bindings: {why}");
                }
            }
            match serde_json::to_string_pretty(&reply) {
                Ok(text) => print_out(&format!("{text}\n")),
                Err(e) => fail(&e.to_string()),
            }
        }
        Ok(Err(Error::Qmp(error))) => {
            eprintln!("{}: {}", error.class.as_str(), error.desc);
            ExitCode::from(1)
        }
        Ok(Err(error)) => fail(&error.to_string()),
        Err(why) => fail(&why),
    }
}

/// Writes `text` to stdout; a reader that went away (`| head`) is not an
/// error (`println!` would panic on it).
pub fn print_out(text: &str) -> ExitCode {
    use std::io::Write;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => fail(&format!("can't write to stdout: {e}")),
    }
}

pub fn fail(why: &str) -> ExitCode {
    eprintln!("error: {}", why.replace('\n', " "));
    ExitCode::from(2)
}
