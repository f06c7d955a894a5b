//! Executes one guest-agent command and prints the reply as JSON, after
//! synchronising with `guest-sync-delimited`.
//!
//! ```text
//! cargo run -p qapi-client --example qga -- [--timeout SECS] SOCKET COMMAND [JSON-ARGUMENTS]
//! ```
//!
//! Exit status: 0 on success, 1 on an error reply, 2 on any transport,
//! protocol or timeout failure.

#[path = "support/cli.rs"]
mod cli;

use std::process::ExitCode;

use clap::Parser;
use qapi_client::QgaBuilder;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = cli::Args::parse();
    let timeout = match args.timeout() {
        Ok(timeout) => timeout,
        Err(why) => return cli::fail(&why),
    };
    let codec = qga_types::command_codec(&args.command);
    let arguments = match args.arguments(codec) {
        Ok(arguments) => arguments,
        Err(why) => return cli::fail(&why),
    };
    let run = async {
        let qga = QgaBuilder::new()
            .timeout(timeout)
            .connect(&args.socket)
            .await?;
        qga.execute_raw(&args.command, arguments.as_ref()).await
    };
    let outcome = tokio::time::timeout(timeout, run)
        .await
        .map_err(|_| format!("{}: no answer within {timeout:?}", args.command));
    cli::finish(&args.command, codec, outcome)
}
