//! Connects to a QMP socket, pauses and resumes the VM, and prints the
//! events that follow until Ctrl-C or the VM exits.
//!
//! ```text
//! qemu-system-x86_64 -M none -display none -qmp unix:/tmp/qmp.sock,server=on,wait=off &
//! cargo run -p qapi-client --example events -- /tmp/qmp.sock
//! ```

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
    let version = &qmp.greeting().version.qemu;
    println!("QEMU {}.{}.{}", version.major, version.minor, version.micro);
    let mut events = qmp.events();
    qmp.execute(&Stop {}).await?;
    qmp.execute(&Cont {}).await?;
    println!("status: {:?}", qmp.execute(&QueryStatus {}).await?.status);
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Some(Ok(message)) => println!(
                    "{}.{:06} {}",
                    message.timestamp.seconds,
                    message.timestamp.microseconds,
                    message.event.name()
                ),
                Some(Err(error)) => println!("event error: {error}"),
                None => break,
            },
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    Ok(())
}
