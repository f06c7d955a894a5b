//! Prints what a running QEMU supports compared with the bindings: commands
//! and events it lacks or adds, and per command the members, enum values
//! and branches that differ.
//!
//! ```text
//! cargo run -p qapi-client --example schema-report -- SOCKET
//! ```

use std::io::Write;

use qapi_client::QmpBuilder;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let socket = std::env::args()
        .nth(1)
        .ok_or("usage: schema-report SOCKET")?;
    let qmp = QmpBuilder::new().connect_unix(&socket).await?;
    let report = qmp.schema_report().await?;
    match std::io::stdout()
        .lock()
        .write_all(report.to_string().as_bytes())
    {
        // A reader that went away (`| head`) is not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}
