//! Executes one QMP command and prints the reply as JSON.
//!
//! ```text
//! cargo run -p qapi-client --example qmp -- [--timeout SECS] SOCKET COMMAND [JSON-ARGUMENTS]
//! ```
//!
//! Commands the bindings know are checked both ways (arguments before
//! sending, the reply after); others are sent as given.  Exit status: 0 on
//! success, 1 on an error reply (class and description on stderr), 2 on
//! any transport, protocol or timeout failure.

#[path = "support/cli.rs"]
mod cli;

use std::process::ExitCode;

use clap::Parser;
use qapi_client::QmpBuilder;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = cli::Args::parse();
    let timeout = match args.timeout() {
        Ok(timeout) => timeout,
        Err(why) => return cli::fail(&why),
    };
    let codec = qapi_types::command_codec(&args.command);
    let arguments = match args.arguments(codec) {
        Ok(arguments) => arguments,
        Err(why) => return cli::fail(&why),
    };
    let run = async {
        let qmp = QmpBuilder::new()
            .handshake_timeout(timeout)
            .connect(&args.socket)
            .await?;
        qmp.execute_raw(&args.command, arguments.as_ref()).await
    };
    let outcome = tokio::time::timeout(timeout, run)
        .await
        .map_err(|_| format!("{}: no answer within {timeout:?}", args.command));
    cli::finish(&args.command, codec, outcome)
}
