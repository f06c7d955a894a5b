//! The blocking clients' direct calls (the calling thread writes and reads
//! the Unix socket itself while nothing else is going on), against scripted
//! fake servers on a Unix socket: events still arrive, in order, also
//! while no call runs; concurrent, async-path and file-descriptor calls
//! mix with direct ones; time limits, disconnects, junk and large replies
//! behave as with the reader task.

use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use qapi_client::blocking::{Qga, Qmp};
use qapi_client::{Error, QgaBuilder};
use qapi_types::commands as c;
use qapi_types::AnyEvent;
use qga_types::commands as g;
use serde_json::{json, Value};

mod common;

const GREETING: &str = r#"{"QMP": {"version": {"qemu": {"micro": 0, "minor": 0, "major": 10}, "package": ""}, "capabilities": []}}"#;

/// One connection to a fake server: requests in, lines out.
struct Peer {
    reader: UnixStream,
    pending: common::wire::Requests,
    writer: UnixStream,
}

impl Peer {
    /// The next request, or `None` at the end of the stream.  A leading
    /// 0xFF (the agent sync) is dropped.
    fn request(&mut self) -> Option<Value> {
        self.pending.read(&mut self.reader)
    }

    fn send(&mut self, bytes: &[u8]) {
        let _ = self.writer.write_all(bytes);
    }

    fn line(&mut self, value: &Value) {
        let mut bytes = serde_json::to_vec(value).unwrap();
        bytes.extend_from_slice(b"\r\n");
        self.send(&bytes);
    }

    fn answer(&mut self, request: &Value, ret: Value) {
        self.line(&json!({ "return": ret, "id": request["id"] }));
    }
}

/// Serves one connection on a fresh socket with `script` in a thread.
fn serve(script: impl FnOnce(Peer) + Send + 'static) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sock");
    let listener = UnixListener::bind(&path).unwrap();
    std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let writer = stream.try_clone().unwrap();
        script(Peer {
            reader: stream,
            pending: common::wire::Requests::new(),
            writer,
        });
    });
    (dir, path)
}

/// A QMP server: greeting, capabilities, then `per_request` for each.
fn qmp_server(
    mut per_request: impl FnMut(&mut Peer, Value) + Send + 'static,
) -> (tempfile::TempDir, PathBuf) {
    serve(move |mut peer| {
        peer.send(GREETING.as_bytes());
        peer.send(b"\r\n");
        let negotiate = peer.request().unwrap();
        peer.answer(&negotiate, json!({}));
        while let Some(request) = peer.request() {
            per_request(&mut peer, request);
        }
    })
}

fn status() -> Value {
    json!({"status": "running", "running": true})
}

fn event(n: usize) -> Value {
    json!({
        "event": "RESUME",
        "data": {},
        "timestamp": {"seconds": n, "microseconds": 0}
    })
}

#[test]
fn events_come_in_order_between_direct_calls_and_while_idle() {
    let (_dir, path) = qmp_server(|peer, request| {
        // An event before every reply: routed by whoever reads.
        let n = request["id"].as_u64().unwrap() as usize;
        peer.line(&event(n % 1_000_000));
        peer.answer(&request, status());
    });
    let qmp = Qmp::connect_unix(&path).unwrap();
    let mut events = qmp.events();
    for _ in 0..300 {
        assert!(qmp.execute(&c::QueryStatus {}).unwrap().running);
    }
    let mut seen = Vec::new();
    while let Some(event) = events.try_recv_raw() {
        let event = event.unwrap();
        assert_eq!(event.name(), "RESUME");
        let message: Value = serde_json::from_str(event.json()).unwrap();
        seen.push(message["timestamp"]["seconds"].as_u64().unwrap());
    }
    assert_eq!(seen.len(), 300);
    assert!(seen.windows(2).all(|w| w[1] == w[0] + 1), "{seen:?}");
}

#[test]
fn an_event_while_no_call_runs_still_arrives() {
    let (_dir, path) = qmp_server(|peer, request| {
        peer.answer(&request, status());
        if request["execute"] == "query-status" {
            // After the reply, when the client has gone idle.
            std::thread::sleep(Duration::from_millis(100));
            peer.line(&event(1));
        }
    });
    let qmp = Qmp::connect_unix(&path).unwrap();
    let mut events = qmp.events();
    qmp.execute(&c::QueryStatus {}).unwrap();
    let started = Instant::now();
    let event = events
        .recv_timeout(Duration::from_secs(5))
        .unwrap()
        .unwrap();
    assert!(matches!(event.event, AnyEvent::Resume));
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn concurrent_async_path_and_direct_calls_mix() {
    let (_dir, path) = qmp_server(|peer, request| match request["execute"].as_str() {
        Some("query-status") => peer.answer(&request, status()),
        Some("getfd") => peer.answer(&request, json!({})),
        _ => peer.line(&json!({
            "error": {"class": "CommandNotFound", "desc": "no"},
            "id": request["id"]
        })),
    });
    let qmp = Qmp::connect_unix(&path).unwrap();
    let done = Arc::new(AtomicUsize::new(0));
    std::thread::scope(|scope| {
        for thread in 0..4 {
            let qmp = qmp.clone();
            let done = Arc::clone(&done);
            scope.spawn(move || {
                for i in 0..200 {
                    match (thread + i) % 10 {
                        // The async path: the runtime takes the socket back.
                        0 => {
                            let error = qmp.execute_raw("no-such", None).unwrap_err();
                            assert!(matches!(error, Error::Qmp(_)), "{error:?}");
                        }
                        // File descriptors: the runtime's socket half.
                        1 => {
                            let file = tempfile::tempfile().unwrap();
                            qmp.execute_with_fds(&c::Getfd { fdname: "x".into() }, &[file.as_fd()])
                                .unwrap();
                        }
                        _ => assert!(qmp.execute(&c::QueryStatus {}).unwrap().running),
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    assert_eq!(done.load(Ordering::Relaxed), 800);
    // And direct again afterwards.
    for _ in 0..50 {
        assert!(qmp.execute(&c::QueryStatus {}).unwrap().running);
    }
}

#[test]
fn a_direct_call_times_out_and_the_session_goes_on() {
    let (_dir, path) = qmp_server(|peer, request| {
        if request["execute"] == "stop" {
            return; // never answered
        }
        peer.answer(&request, status());
    });
    let qmp = Qmp::connect_unix(&path).unwrap();
    qmp.execute(&c::QueryStatus {}).unwrap();
    let started = Instant::now();
    let error = qmp
        .execute_with_timeout(&c::Stop {}, Duration::from_millis(200))
        .unwrap_err();
    let took = started.elapsed();
    match error {
        Error::Timeout { command, after, .. } => {
            assert_eq!(&*command, "stop");
            assert_eq!(after, Duration::from_millis(200));
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(
        took >= Duration::from_millis(200) && took < Duration::from_secs(2),
        "{took:?}"
    );
    assert!(!qmp.is_closed());
    assert!(qmp.execute(&c::QueryStatus {}).unwrap().running);
}

#[test]
fn a_disconnect_during_a_direct_call_fails_it_at_once() {
    let (_dir, path) = qmp_server(|peer, request| {
        if request["execute"] == "stop" {
            // Half a reply, then the end of the stream.
            peer.send(b"{\"return\": {");
            peer.writer.shutdown(std::net::Shutdown::Both).unwrap();
            return;
        }
        peer.answer(&request, status());
    });
    let qmp = Qmp::connect_unix(&path).unwrap();
    let mut events = qmp.events();
    qmp.execute(&c::QueryStatus {}).unwrap();
    let started = Instant::now();
    let error = qmp.execute(&c::Stop {}).unwrap_err();
    assert!(
        matches!(&error, Error::Disconnected { reason } if reason.contains("middle of a message")),
        "{error:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(qmp.is_closed());
    assert!(matches!(
        qmp.execute(&c::QueryStatus {}),
        Err(Error::Disconnected { .. })
    ));
    assert!(events.recv_timeout(Duration::from_secs(5)).is_none());
}

#[test]
fn a_large_reply_and_a_message_over_the_limit() {
    let (_dir, path) = qmp_server(|peer, request| {
        let size = match request["execute"].as_str() {
            Some("query-status") => 10,
            Some("query-name") => 300_000,
            _ => 3_000_000,
        };
        peer.answer(&request, json!({ "name": "x".repeat(size) }));
    });
    let builder = qapi_client::QmpBuilder::new().max_message_size(1 << 20);
    let qmp = Qmp::connect_unix_with(builder, &path).unwrap();
    let name = qmp.execute(&c::QueryName {}).unwrap();
    assert_eq!(name.name.map(|n| n.len()), Some(300_000));
    let error = qmp.execute(&c::QueryUuid {}).unwrap_err();
    assert!(matches!(error, Error::MessageTooLarge { .. }), "{error:?}");
    assert!(qmp.is_closed());
}

/// A guest agent: answers the sync, then `per_request`.
fn agent(
    mut per_request: impl FnMut(&mut Peer, Value) + Send + 'static,
) -> (tempfile::TempDir, PathBuf) {
    serve(move |mut peer| {
        while let Some(request) = peer.request() {
            if request["execute"] == "guest-sync-delimited" {
                peer.send(b"\xff");
                let id = request["arguments"]["id"].clone();
                peer.answer(&request, id);
                continue;
            }
            per_request(&mut peer, request);
        }
    })
}

#[test]
fn guest_agent_junk_and_silence_in_direct_calls() {
    let (_dir, path) = agent(|peer, request| {
        let id = request["id"].as_u64().unwrap();
        match id % 3 {
            // Junk and a reply for no call first.
            0 => {
                peer.send(b"junk\r\n{\"return\": {}, \"id\": 1}\r\n");
                peer.answer(&request, json!({}));
            }
            // No answer: the call times out.
            1 => {}
            _ => peer.answer(&request, json!({})),
        }
    });
    let qga = Qga::connect_unix_with(QgaBuilder::new().timeout(Duration::from_millis(150)), &path)
        .unwrap();
    let (mut ok, mut timed_out) = (0, 0);
    for _ in 0..12 {
        match qga.execute(&g::GuestPing {}) {
            Ok(_) => ok += 1,
            Err(Error::Timeout { command, .. }) => {
                assert_eq!(&*command, "guest-ping");
                timed_out += 1;
            }
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!((ok, timed_out), (8, 4));
    qga.sync().unwrap();
    assert!(!qga.is_closed());
}

#[test]
fn direct_replies_that_do_not_decode_fail_as_routed_ones_do() {
    let (_dir, path) = qmp_server(|peer, request| match request["execute"].as_str() {
        // The wrong type: a decode error with the path.
        Some("query-status") => peer.answer(&request, json!({"status": 5, "running": true})),
        // Valid JSON of the right shape but for invalid UTF-8 in a member
        // the bindings skip: still a broken message, which ends a QMP
        // session.
        _ => {
            let mut bytes = b"{\"return\": {\"name\": \"a\", \"x\": \"\xff\"}, \"id\": ".to_vec();
            bytes.extend_from_slice(request["id"].to_string().as_bytes());
            bytes.extend_from_slice(b"}\r\n");
            peer.send(&bytes);
        }
    });
    let qmp = Qmp::connect_unix(&path).unwrap();
    match qmp.execute(&c::QueryStatus {}).unwrap_err() {
        Error::Decode { command, path, .. } => {
            assert_eq!(&*command, "query-status");
            assert_eq!(path, "status");
        }
        other => panic!("expected a decode error, got {other:?}"),
    }
    assert!(!qmp.is_closed());
    let error = qmp.execute(&c::QueryName {}).unwrap_err();
    assert!(matches!(error, Error::Protocol(_)), "{error:?}");
    assert!(qmp.is_closed());
}

/// An error reply is routed to the call it answers, however it comes: in
/// the read that took the request's reply at once, after a wait, or
/// behind an event (the call then registers before anything is routed).
#[test]
fn error_replies_reach_direct_calls_at_once_late_and_behind_events() {
    let (_dir, path) = qmp_server(|peer, request| {
        let n = request["id"].as_u64().unwrap() % 3;
        match n {
            1 => std::thread::sleep(Duration::from_millis(30)),
            2 => peer.line(&event(7)),
            _ => {}
        }
        let desc = format!("failure {n}");
        peer.line(&json!({
            "error": {"class": "GenericError", "desc": desc},
            "id": request["id"],
        }));
    });
    let qmp = Qmp::connect_unix(&path).unwrap();
    let mut events = qmp.events();
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..30 {
        let error = qmp
            .execute_with_timeout(&c::QueryStatus {}, Duration::from_secs(2))
            .unwrap_err();
        let qmp_error = error.as_qmp().unwrap_or_else(|| panic!("{error:?}"));
        seen.insert(qmp_error.desc.clone());
    }
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert!(!qmp.is_closed());
    let mut count = 0;
    while let Some(event) = events.try_recv_raw() {
        assert_eq!(event.unwrap().name(), "RESUME");
        count += 1;
    }
    assert_eq!(count, 10);
}

#[test]
fn a_guest_agent_flooding_during_a_direct_call_cannot_hold_it_past_its_time() {
    let (_dir, path) = agent(|peer, _request| {
        // Replies to no call, without end: the call must still time out.
        let line = b"{\"return\": {}, \"id\": 1}\r\n".repeat(64);
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(3) {
            peer.send(&line);
        }
    });
    let qga = Qga::connect_unix_with(QgaBuilder::new().timeout(Duration::from_millis(200)), &path)
        .unwrap();
    let started = Instant::now();
    let error = qga.execute(&g::GuestPing {}).unwrap_err();
    assert!(matches!(error, Error::Timeout { .. }), "{error:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_guest_agent_message_over_the_limit_during_a_direct_call_ends_the_session() {
    let (_dir, path) = agent(|peer, _request| {
        // An endless string: never a whole message.
        peer.send(b"{\"return\": \"");
        let chunk = vec![b'a'; 64 * 1024];
        for _ in 0..64 {
            peer.send(&chunk);
        }
    });
    let qga =
        Qga::connect_unix_with(QgaBuilder::new().max_message_size(256 * 1024), &path).unwrap();
    let error = qga.execute(&g::GuestPing {}).unwrap_err();
    assert!(
        matches!(error, Error::MessageTooLarge { limit: 262_144 }),
        "{error:?}"
    );
    assert!(qga.is_closed());
}

#[test]
fn a_request_larger_than_the_socket_buffer_is_finished_by_the_runtime() {
    let (_dir, path) = qmp_server(|peer, request| {
        let answer = match request["execute"].as_str() {
            Some("human-monitor-command") => {
                json!(request["arguments"]["command-line"]
                    .as_str()
                    .unwrap()
                    .len()
                    .to_string())
            }
            _ => status(),
        };
        peer.answer(&request, answer);
    });
    // The server reads line by line, so a 4 MB request fills the socket
    // and the direct call has to leave the rest to the flusher.
    let qmp = Qmp::connect_unix(&path).unwrap();
    let mut events = qmp.events();
    qmp.execute(&c::QueryStatus {}).unwrap();
    let long = "x".repeat(4 << 20);
    let reply = qmp
        .execute(&c::HumanMonitorCommand {
            command_line: long,
            cpu_index: None,
        })
        .unwrap();
    assert_eq!(reply, (4 << 20).to_string());
    for _ in 0..100 {
        assert!(qmp.execute(&c::QueryStatus {}).unwrap().running);
    }
    assert!(events.try_recv_raw().is_none());
}
