//! Server mode (QEMU connects to us) and the reconnecting session, on
//! fake QMP peers over Unix sockets.  The real-QEMU side of both is in
//! `real_qemu.rs`.

mod common;

use std::io::Write;
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::mpsc;
use std::time::Duration;

use qapi_client::{Error, QmpBuilder};
use qapi_types::commands as c;
use qapi_types::AnyEvent;
use serde_json::{json, Value};

/// Greets as QEMU 10.0.`micro` (so a test can tell sessions apart).
fn greeting(micro: u32) -> String {
    format!(
        r#"{{"QMP": {{"version": {{"qemu": {{"micro": {micro}, "minor": 0, "major": 10}}, "package": ""}}, "capabilities": []}}}}"#
    ) + "\r\n"
}

/// Plays QEMU on one connection: greeting, negotiation, then answers
/// each request: `stop` with its reply and a `STOP` event, `query-name`
/// by hanging up without an answer, anything else with a running status.
/// Returns when the client or the script hangs up.
fn play_qemu(stream: UnixStream, micro: u32) {
    let mut writer = stream.try_clone().unwrap();
    let mut reader = stream;
    let mut requests = common::wire::Requests::new();
    let mut send = |message: Value| {
        writer
            .write_all(format!("{message}\r\n").as_bytes())
            .is_ok()
    };
    let _ = send(serde_json::from_str::<Value>(&greeting(micro)).unwrap());
    while let Some(request) = requests.read(&mut reader) {
        let id = request["id"].clone();
        let sent = match request["execute"].as_str() {
            Some("stop") => {
                send(json!({"return": {}, "id": id}))
                    && send(
                        json!({"event": "STOP", "data": {}, "timestamp": {"seconds": 1, "microseconds": 0}}),
                    )
            }
            Some("query-name") => return,
            Some("quit") => {
                let _ = send(json!({"return": {}, "id": id}));
                return;
            }
            Some("qmp_capabilities") => send(json!({"return": {}, "id": id})),
            _ => send(json!({"return": {"status": "running", "running": true}, "id": id})),
        };
        if !sent {
            return;
        }
    }
}

#[tokio::test]
async fn server_mode_accepts_qemu_and_negotiates() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("listen.sock");
    let mut listener = QmpBuilder::new().listen_unix(&path).unwrap();
    assert_eq!(listener.path(), path);
    // A second listener on the same path is refused, naming it.
    let taken = QmpBuilder::new().listen_unix(&path).unwrap_err();
    assert!(matches!(taken, Error::Listen { .. }), "{taken:?}");
    assert!(taken.to_string().contains("listen.sock"), "{taken}");
    for micro in [1, 2] {
        // QEMU connects to us, as with `-qmp unix:PATH,server=off`.
        let qemu_side = path.clone();
        let qemu =
            std::thread::spawn(move || play_qemu(UnixStream::connect(qemu_side).unwrap(), micro));
        let qmp = listener.accept().await.unwrap();
        assert_eq!(qmp.greeting().version.qemu.micro, i64::from(micro));
        assert!(qmp.execute(&c::QueryStatus {}).await.unwrap().running);
        qmp.execute(&c::Quit {}).await.unwrap();
        qemu.join().unwrap();
    }
    drop(listener);
    assert!(!path.exists(), "the listener's socket file outlived it");
}

#[tokio::test]
async fn a_reconnecting_session_survives_the_peer_going_away() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("qmp.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let (next, accept_next) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        for micro in 0.. {
            if micro > 0 && accept_next.recv().is_err() {
                return;
            }
            let (stream, _) = listener.accept().unwrap();
            play_qemu(stream, micro);
        }
    });
    let session = QmpBuilder::new()
        .command_timeout(Some(Duration::from_secs(10)))
        .connect_unix_reconnecting(&path)
        .await
        .unwrap();
    let mut events = session.events();
    session.execute(&c::Stop {}).await.unwrap();
    match events.recv().await.unwrap().unwrap().event {
        AnyEvent::Stop => {}
        other => panic!("expected STOP, got {other:?}"),
    }
    assert_eq!(session.generation(), 0);

    // A call in flight when the peer goes away fails, and is not sent again.
    let lost = session.execute(&c::QueryName {}).await.unwrap_err();
    assert!(matches!(lost, Error::Disconnected { .. }), "{lost:?}");
    // Calls made meanwhile wait for the next session (accepted later).
    let waiting = tokio::spawn({
        let session = session.clone();
        async move { session.execute(&c::QueryStatus {}).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(session.current().is_none());
    next.send(()).unwrap();
    assert!(waiting.await.unwrap().unwrap().running);
    assert_eq!(session.generation(), 1);
    assert_eq!(session.current().unwrap().greeting().version.qemu.micro, 1);

    // Subscribers are told once that events may have been missed, then
    // see the new session's.
    match events.recv_raw().await.unwrap() {
        Err(Error::Reconnected { generation: 1 }) => {}
        other => panic!("expected Reconnected, got {other:?}"),
    }
    session.execute(&c::Stop {}).await.unwrap();
    match events.recv().await.unwrap().unwrap().event {
        AnyEvent::Stop => {}
        other => panic!("expected STOP, got {other:?}"),
    }

    // Between sessions, a call runs out of its time without being sent.
    session.execute(&c::Quit {}).await.unwrap();
    let limited = session
        .with_timeout(Some(Duration::from_millis(200)))
        .execute(&c::QueryStatus {})
        .await
        .unwrap_err();
    assert!(
        matches!(limited, Error::Timeout { sent: false, .. }),
        "{limited:?}"
    );
}
