//! The guest-agent client against a real `qemu-ga` on the host, restricted
//! to read-only commands (see common/mod.rs).

mod common;

use std::time::Duration;

use qapi_client::{Qga, QgaBuilder};
use qapi_types::QapiErrorClass;
use qga_types::commands as g;
use tokio::io::AsyncWriteExt;

#[tokio::test]
async fn read_only_commands_decode_typed() {
    let Some(agent) = common::qemu_ga("read_only_commands_decode_typed") else {
        return;
    };
    let qga = Qga::connect_unix(agent.socket()).await.unwrap();
    qga.execute(&g::GuestPing {}).await.unwrap();
    let info = qga.execute(&g::GuestInfo {}).await.unwrap();
    assert!(!info.version.is_empty());
    let enabled: Vec<&str> = info
        .supported_commands
        .iter()
        .filter(|c| c.enabled)
        .map(|c| c.name.as_str())
        .collect();
    for name in common::QGA_READ_ONLY {
        assert!(enabled.contains(name), "{name} not enabled: {enabled:?}");
    }
    assert!(
        !enabled.contains(&"guest-shutdown"),
        "the allow list leaked"
    );
    let os = qga.execute(&g::GuestGetOsinfo {}).await.unwrap();
    assert!(os.kernel_release.is_some(), "{os:?}");
    let host = qga.execute(&g::GuestGetHostName {}).await.unwrap();
    assert!(!host.host_name.is_empty());
    let zone = qga.execute(&g::GuestGetTimezone {}).await.unwrap();
    assert!(zone.offset.abs() <= 14 * 3600, "{zone:?}");
    let interfaces = qga.execute(&g::GuestNetworkGetInterfaces {}).await.unwrap();
    assert!(interfaces.iter().any(|i| i.name == "lo"), "{interfaces:?}");
    let echoed = qga
        .execute(&g::GuestSyncDelimited { id: 4242 })
        .await
        .unwrap();
    assert_eq!(echoed, 4242);
    eprintln!(
        "qemu-ga {}: ping, info ({} commands, {} enabled), osinfo, host name, timezone, {} interfaces",
        info.version,
        info.supported_commands.len(),
        enabled.len(),
        interfaces.len()
    );
}

#[tokio::test]
async fn a_blocked_command_is_a_typed_error() {
    let Some(agent) = common::qemu_ga("a_blocked_command_is_a_typed_error") else {
        return;
    };
    let qga = Qga::connect_unix(agent.socket()).await.unwrap();
    // Not on the allow list, and read-only anyway.
    let error = qga.execute(&g::GuestGetUsers {}).await.unwrap_err();
    assert!(error.is_class(&QapiErrorClass::CommandNotFound), "{error}");
    assert!(error.to_string().contains("disabled"), "{error}");
    qga.execute(&g::GuestPing {}).await.unwrap();
}

#[tokio::test]
async fn resyncs_after_garbage_and_stale_requests() {
    let Some(agent) = common::qemu_ga("resyncs_after_garbage_and_stale_requests") else {
        return;
    };
    // Leave the agent a partial request, junk, and a request whose reply
    // nobody will claim, then start a session on the same connection.
    let mut stream = tokio::net::UnixStream::connect(agent.socket())
        .await
        .unwrap();
    stream
        .write_all(
            b"{\"execute\":\"guest-ping\",\"id\":99}\nnot json at all\n{\"execute\": \"guest-in",
        )
        .await
        .unwrap();
    let qga = QgaBuilder::new()
        .timeout(Duration::from_secs(5))
        .connect_stream(stream)
        .await
        .unwrap();
    qga.execute(&g::GuestPing {}).await.unwrap();
    let info = qga.execute(&g::GuestInfo {}).await.unwrap();
    assert!(!info.version.is_empty());
    // A second sync in the middle of a session works too.
    qga.sync().await.unwrap();
    qga.execute(&g::GuestPing {}).await.unwrap();
}

#[tokio::test]
async fn pipelined_pings() {
    let Some(agent) = common::qemu_ga("pipelined_pings") else {
        return;
    };
    let qga = Qga::connect_unix(agent.socket()).await.unwrap();
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..200 {
        let qga = qga.clone();
        calls.spawn(async move {
            let echoed = qga.execute(&g::GuestSyncDelimited { id: i }).await.unwrap();
            assert_eq!(echoed, i);
        });
    }
    while let Some(done) = calls.join_next().await {
        done.unwrap();
    }
}

#[test]
fn blocking_guest_agent() {
    let Some(agent) = common::qemu_ga("blocking_guest_agent") else {
        return;
    };
    let qga = qapi_client::blocking::Qga::connect_unix(agent.socket()).unwrap();
    qga.execute(&g::GuestPing {}).unwrap();
    let host = qga.execute(&g::GuestGetHostName {}).unwrap();
    assert!(!host.host_name.is_empty());
}
