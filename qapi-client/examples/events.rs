//! Connects to a QMP socket, pauses and resumes the VM, and prints the
//! events that follow until Ctrl-C or the VM exits.
//!
//! ```text
//! qemu-system-x86_64 -M none -display none -qmp unix:/tmp/qmp.sock,server=on,wait=off &
//! cargo run -p qapi-client --example events -- /tmp/qmp.sock
//! ```

use std::io::Write;

use qapi_client::Qmp;
use qapi_types::commands::{Cont, QueryStatus, Stop};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let socket = std::env::args().nth(1).ok_or("usage: events SOCKET")?;
    let qmp = Qmp::connect_unix(&socket).await?;
    // Lines go through `writeln!`: a reader that went away (`| head`) ends
    // the program quietly, where `println!` would panic.
    let mut out = std::io::stdout();
    let version = &qmp.greeting().version.qemu;
    let mut line = format!("QEMU {}.{}.{}", version.major, version.minor, version.micro);
    let mut events = qmp.events();
    qmp.execute(&Stop {}).await?;
    qmp.execute(&Cont {}).await?;
    line.push_str(&format!(
        "\nstatus: {:?}",
        qmp.execute(&QueryStatus {}).await?.status
    ));
    loop {
        if let Err(e) = writeln!(out, "{line}") {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(());
            }
            return Err(e.into());
        }
        line = tokio::select! {
            event = events.recv() => match event {
                Some(Ok(message)) => format!(
                    "{}.{:06} {}",
                    message.timestamp.seconds,
                    message.timestamp.microseconds,
                    message.event.name()
                ),
                Some(Err(error)) => format!("event error: {error}"),
                None => break,
            },
            _ = tokio::signal::ctrl_c() => break,
        };
    }
    Ok(())
}
