//! The async clients on a Unix socket, which they watch for input only and
//! for output only while calls are pipelined or the socket is full (see
//! `src/unix.rs`): requests larger than the socket buffer, a peer that
//! stops reading, and calls switching between one at a time and many in
//! flight all get every reply, each to its own call.

use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::time::Duration;

use qapi_client::{Error, Qmp};
use qapi_types::commands as c;
use serde_json::{json, Value};

mod common;

const GREETING: &str = r#"{"QMP": {"version": {"qemu": {"micro": 0, "minor": 0, "major": 10}, "package": ""}, "capabilities": []}}"#;

/// A QMP server in a thread: greeting, negotiation, then it waits
/// `stall` before reading any further (so that the client's writes fill
/// the socket) and answers each request in turn: `human-monitor-command`
/// with the first 32 bytes of its command line and its length, anything
/// else with a `query-status` reply.
fn qmp_server(stall: Duration) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("qmp.sock");
    let listener = UnixListener::bind(&path).unwrap();
    std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut writer = stream.try_clone().unwrap();
        let mut reader = stream;
        let mut pending = common::wire::Requests::new();
        let mut request = |reader: &mut UnixStream| -> Option<Value> { pending.read(reader) };
        writer.write_all(GREETING.as_bytes()).unwrap();
        writer.write_all(b"\r\n").unwrap();
        let negotiate = request(&mut reader).unwrap();
        answer(&mut writer, &negotiate, json!({}));
        std::thread::sleep(stall);
        while let Some(request) = request(&mut reader) {
            let ret = match request["execute"].as_str() {
                Some("human-monitor-command") => {
                    let text = request["arguments"]["command-line"].as_str().unwrap();
                    json!(format!("{} {}", &text[..text.len().min(32)], text.len()))
                }
                _ => json!({"status": "running", "running": true}),
            };
            if !answer(&mut writer, &request, ret) {
                return;
            }
        }
    });
    (dir, path)
}

fn answer(writer: &mut UnixStream, request: &Value, ret: Value) -> bool {
    let mut bytes = serde_json::to_vec(&json!({ "return": ret, "id": request["id"] })).unwrap();
    bytes.extend_from_slice(b"\r\n");
    writer.write_all(&bytes).is_ok()
}

/// A `human-monitor-command` whose command line starts with a 32-byte tag
/// and is `len` bytes long, and the reply the server gives it.
fn tagged(task: usize, call: usize, len: usize) -> (c::HumanMonitorCommand, String) {
    let tag = format!("task {task:04} call {call:04} ------------");
    assert_eq!(tag.len(), 32);
    let mut command_line = tag.clone();
    command_line.push_str(&"x".repeat(len - tag.len()));
    let command = c::HumanMonitorCommand {
        command_line,
        cpu_index: None,
    };
    (command, format!("{tag} {len}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_calls_with_requests_larger_than_the_socket_stay_whole() {
    // The server reads nothing for 300 ms: the first megabyte-sized
    // requests fill the socket, and the writes behind them must wait for
    // room, then go out whole and in order.
    let (_dir, path) = qmp_server(Duration::from_millis(300));
    let qmp = Qmp::connect_unix(&path).await.unwrap();
    let mut tasks = Vec::new();
    for task in 0..8 {
        let qmp = qmp.clone();
        tasks.push(tokio::spawn(async move {
            for call in 0..25 {
                // Every fifth call of every other task is 1 MiB long.
                let len = if task % 2 == 0 && call % 5 == 0 {
                    1 << 20
                } else {
                    40 + call
                };
                let (command, expected) = tagged(task, call, len);
                let reply = qmp.execute(&command).await.unwrap();
                assert_eq!(reply, expected);
                assert!(qmp.execute(&c::QueryStatus {}).await.unwrap().running);
            }
        }));
    }
    let all = async {
        for task in tasks {
            task.await.unwrap();
        }
    };
    // A write that waited for room and was never woken would hang here.
    tokio::time::timeout(Duration::from_secs(30), all)
        .await
        .expect("every call answered within 30 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_one_at_a_time_and_many_in_flight_take_turns() {
    let (_dir, path) = qmp_server(Duration::ZERO);
    let qmp = Qmp::connect_unix(&path).await.unwrap();
    tokio::time::timeout(Duration::from_secs(30), take_turns(qmp))
        .await
        .expect("every call answered within 30 s");
}

async fn take_turns(qmp: Qmp) {
    for round in 0..20 {
        // One at a time: after 16 of these the socket is watched for
        // input only ...
        for call in 0..20 {
            let (command, expected) = tagged(round, call, 100);
            assert_eq!(qmp.execute(&command).await.unwrap(), expected);
        }
        // ... then 16 in flight (watched for output too), then one again.
        let calls = (0..16).map(|call| {
            let qmp = qmp.clone();
            tokio::spawn(async move {
                let len = if call == 0 { 300 << 10 } else { 64 };
                let (command, expected) = tagged(round, 100 + call, len);
                assert_eq!(qmp.execute(&command).await.unwrap(), expected);
            })
        });
        for call in calls.collect::<Vec<_>>() {
            call.await.unwrap();
        }
    }
    assert!(qmp.execute(&c::QueryStatus {}).await.unwrap().running);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_stops_reading_lets_calls_time_out_and_then_hangs_up() {
    // A server that never reads after negotiating, then closes: calls
    // whose requests cannot even be written run into their time limit
    // (a write waiting for room cannot hang a call), and the hang-up
    // fails the calls still waiting.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("qmp.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let (hang_up, hung_up) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut writer = stream.try_clone().unwrap();
        let mut reader = stream;
        writer.write_all(GREETING.as_bytes()).unwrap();
        writer.write_all(b"\r\n").unwrap();
        let negotiate = common::wire::Requests::new().read(&mut reader).unwrap();
        answer(&mut writer, &negotiate, json!({}));
        let _ = hung_up.recv();
    });
    let qmp = Qmp::connect_unix(&path).await.unwrap();
    let (big, _) = tagged(0, 0, 4 << 20);
    let limit = Duration::from_millis(300);
    let started = std::time::Instant::now();
    match qmp.execute_with_timeout(&big, limit).await {
        // Begun: the socket took what it could.
        Err(Error::Timeout { sent: true, .. }) => {}
        other => panic!("expected a time-out, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(3));
    // A request with file descriptors waits for the socket to itself, and
    // gives up without sending anything.
    let fd = std::fs::File::open("/dev/null").unwrap();
    let getfd = c::Getfd::new("fd0");
    let limited = qmp.with_timeout(Some(Duration::from_millis(200)));
    match limited.execute_with_fds(&getfd, &[fd.as_fd()]).await {
        Err(Error::Timeout { sent: false, .. }) => {}
        other => panic!("expected a time-out before sending, got {other:?}"),
    }
    // The session is stuck behind the unwritten request; hanging up must
    // fail a waiting call at once rather than at its 10 s limit.
    let waiting = tokio::spawn({
        let qmp = qmp.clone();
        async move { qmp.execute(&c::QueryStatus {}).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let hung_up_at = std::time::Instant::now();
    drop(hang_up);
    match waiting.await.unwrap() {
        Err(Error::Disconnected { .. }) => {}
        other => panic!("expected a disconnect, got {other:?}"),
    }
    assert!(hung_up_at.elapsed() < Duration::from_secs(2));
}
