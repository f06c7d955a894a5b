//! Fault injection: a fake QMP server / guest agent (an in-memory stream)
//! that misbehaves in every way listed in the client issue.  Each case ends
//! in a typed error or a documented recovery within its time limit.

use std::time::{Duration, Instant};

use qapi_client::{Error, Qga, QgaBuilder, Qmp, QmpBuilder};
use qapi_testkit::script::{Script, QMP_GREETING};
use qapi_types::commands as c;
use qapi_types::AnyEvent;
use serde_json::json;
use tokio::io::{AsyncWriteExt, DuplexStream};

mod common;

/// The server side of a hand-driven fake connection (for the one case a
/// script cannot say: a peer that reads nothing until told to).
struct Fake {
    stream: DuplexStream,
    /// Bytes read but not yet taken as a request.
    pending: common::wire::Requests,
}

/// A negotiated QMP session on a fake playing `script`.
async fn qmp_with(builder: QmpBuilder, script: Script) -> Qmp {
    let (stream, _fake) = script.in_memory();
    builder.connect_stream(stream).await.unwrap()
}

fn quick() -> QmpBuilder {
    QmpBuilder::new()
        .handshake_timeout(Duration::from_millis(500))
        .command_timeout(Some(Duration::from_millis(500)))
}

#[tokio::test]
async fn garbage_closes_the_qmp_session_with_a_protocol_error() {
    let qmp = qmp_with(
        quick(),
        Script::qmp().request().send_line("this is not JSON"),
    )
    .await;
    let error = qmp.execute(&c::QueryStatus {}).await.unwrap_err();
    assert!(matches!(error, Error::Protocol(_)), "{error:?}");
    assert!(qmp.is_closed());
    let again = qmp.execute(&c::QueryStatus {}).await.unwrap_err();
    assert!(matches!(again, Error::Protocol(_)), "{again:?}");
}

#[tokio::test]
async fn invalid_utf8_is_a_protocol_error() {
    // A lone lead byte in a string.
    let reply = b"{\"return\": {\"status\": \"\xc3\"}, \"id\": @id}";
    let qmp = qmp_with(quick(), Script::qmp().request().send_line(reply)).await;
    let error = qmp.execute(&c::QueryStatus {}).await.unwrap_err();
    assert!(
        matches!(&error, Error::Protocol(why) if why.contains("UTF-8") || why.contains("unicode")),
        "{error:?}"
    );
}

#[tokio::test]
async fn truncated_json_runs_into_the_time_limit() {
    // A reply cut short, then more data: it never balances.
    let script = Script::qmp()
        .request()
        .send_line(r#"{"return": {"running": true"#)
        .send_line(r#"{"return": {}, "id": @id}"#);
    let qmp = qmp_with(quick(), script).await;
    let started = Instant::now();
    let error = qmp.execute(&c::QueryStatus {}).await.unwrap_err();
    assert!(matches!(error, Error::Timeout { .. }), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn disconnect_mid_reply_fails_the_call_at_once() {
    let script = Script::qmp()
        .request()
        .send(r#"{"return": {"running": tr"#)
        .hang_up();
    let qmp = qmp_with(QmpBuilder::new(), script).await;
    let started = Instant::now();
    let error = qmp.execute(&c::QueryStatus {}).await.unwrap_err();
    assert!(
        matches!(&error, Error::Disconnected { reason } if reason.contains("middle of a message")),
        "{error:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn a_message_over_the_limit_closes_the_session_with_bounded_memory() {
    let limit = 64 * 1024;
    // An endless line: the client must give up, not buffer it.
    let script = Script::qmp()
        .request()
        .send(r#"{"return": ""#)
        .flood(b'x', 256 << 20);
    let (stream, fake) = script.in_memory();
    let qmp = QmpBuilder::new()
        .max_message_size(limit)
        .connect_stream(stream)
        .await
        .unwrap();
    let error = qmp.execute(&c::QueryStatus {}).await.unwrap_err();
    assert!(
        matches!(error, Error::MessageTooLarge { limit: l } if l == limit),
        "{error:?}"
    );
    drop(qmp);
    let written = fake.report().await.flooded;
    // The client stopped reading soon after the limit: what the server got
    // out is the limit plus the stream's buffers, not the 256 MiB it tried.
    assert!(written < limit + 512 * 1024, "server wrote {written} bytes");
}

#[tokio::test]
async fn wrong_ids_time_out_and_the_session_goes_on() {
    // Ids count from 0 (the negotiation): `stop` is 1.
    let script = Script::qmp()
        .request()
        .send_line(r#"{"return": {}, "id": 1001}"#)
        .send_line(r#"{"return": {}, "id": "not ours"}"#)
        .answer(json!({"running": true, "status": "running"}));
    let qmp = qmp_with(quick(), script).await;
    let error = qmp.execute(&c::Stop {}).await.unwrap_err();
    assert!(matches!(error, Error::Timeout { .. }), "{error:?}");
    let status = qmp.execute(&c::QueryStatus {}).await.unwrap();
    assert!(status.running);
}

#[tokio::test]
async fn duplicate_and_unsolicited_replies_are_dropped() {
    let paused = r#"{"return": {"running": false, "status": "paused"}, "id": @id}"#;
    let script = Script::qmp()
        .send_line(r#"{"return": {}, "id": 12345}"#)
        .send_line(r#"{"error": {"class": "GenericError", "desc": "JSON parse error"}}"#)
        .request()
        .send_line(paused)
        .send_line(paused) // a duplicate
        .answer(json!({"running": true, "status": "running"}));
    let qmp = qmp_with(quick(), script).await;
    assert!(!qmp.execute(&c::QueryStatus {}).await.unwrap().running);
    assert!(qmp.execute(&c::QueryStatus {}).await.unwrap().running);
}

/// Connects with `builder` to a fake playing `script`, expecting an error.
async fn qmp_fails(builder: QmpBuilder, script: Script) -> Error {
    let (stream, _fake) = script.in_memory();
    builder.connect_stream(stream).await.unwrap_err()
}

#[tokio::test]
async fn no_greeting_times_out() {
    let started = Instant::now();
    let quick = QmpBuilder::new().handshake_timeout(Duration::from_millis(300));
    let error = qmp_fails(quick, Script::raw()).await;
    assert!(matches!(error, Error::Timeout { .. }), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn a_greeting_then_silence_times_out() {
    // qmp_capabilities is never answered.
    let script = Script::raw().send_line(QMP_GREETING).request();
    let quick = QmpBuilder::new().handshake_timeout(Duration::from_millis(300));
    let error = qmp_fails(quick, script).await;
    assert!(matches!(error, Error::Timeout { .. }), "{error:?}");
}

#[tokio::test]
async fn something_else_instead_of_a_greeting_is_a_protocol_error() {
    let error = qmp_fails(
        QmpBuilder::new(),
        Script::raw().send_line(r#"{"return": {}}"#),
    )
    .await;
    assert!(
        matches!(&error, Error::Protocol(why) if why.contains("greeting")),
        "{error:?}"
    );
}

#[tokio::test]
async fn one_byte_a_second_runs_into_the_time_limit() {
    let mut script = Script::raw();
    for byte in QMP_GREETING.bytes() {
        script = script.send([byte]).sleep(Duration::from_secs(1));
    }
    let started = Instant::now();
    let quick = QmpBuilder::new().handshake_timeout(Duration::from_millis(1500));
    let error = qmp_fails(quick, script).await;
    assert!(matches!(error, Error::Timeout { .. }), "{error:?}");
    assert!(started.elapsed() < Duration::from_millis(2500));
}

#[tokio::test]
async fn a_slow_event_subscriber_is_told_what_it_missed() {
    let mut script = Script::qmp().request();
    for i in 0..100 {
        script = script.send_line(format!(
            r#"{{"event": "STOP", "timestamp": {{"seconds": {i}, "microseconds": 0}}}}"#
        ));
    }
    let script = script.reply(json!({}));
    let qmp = qmp_with(quick().event_capacity(4), script).await;
    let mut events = qmp.events();
    qmp.execute(&c::Stop {}).await.unwrap();
    let lagged = events.recv().await.unwrap().unwrap_err();
    assert!(
        matches!(lagged, Error::EventsLagged { missed: 96 }),
        "{lagged:?}"
    );
    let mut seen = Vec::new();
    while let Some(Ok(event)) = events.try_recv_raw() {
        let message = event.decode().unwrap();
        assert!(matches!(message.event, AnyEvent::Stop));
        seen.push(message.timestamp.seconds);
    }
    assert_eq!(seen, vec![96, 97, 98, 99]);
}

#[tokio::test]
async fn unknown_events_and_undecodable_known_events_are_kept() {
    let script = Script::qmp()
        .request()
        .event("FROM_THE_FUTURE", json!({"x": 1}))
        .event("RESET", json!({"guest": "yes"}))
        .reply(json!({}));
    let qmp = qmp_with(quick(), script).await;
    let mut events = qmp.events();
    qmp.execute(&c::SystemReset {}).await.unwrap();
    let unknown = events.recv().await.unwrap().unwrap();
    assert!(unknown.event.is_unrecognized());
    assert_eq!(unknown.event.name(), "FROM_THE_FUTURE");
    let bad = events.recv_raw().await.unwrap().unwrap();
    assert_eq!(bad.name(), "RESET");
    // Nothing is lost: the raw message is there, and decoding either says
    // where it failed or keeps the data as unrecognized.
    assert!(bad.json().contains("\"yes\""));
    match bad.decode() {
        Err(Error::Decode { path, .. }) => assert!(path.contains("guest"), "{path}"),
        Ok(message) => {
            assert!(message.event.is_unrecognized());
            assert_eq!(message.event.name(), "RESET");
        }
        Err(other) => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn decode_errors_name_the_command_and_the_path() {
    let script = Script::qmp().answer(json!({"running": "very", "status": "running"}));
    let qmp = qmp_with(quick(), script).await;
    let error = qmp.execute(&c::QueryStatus {}).await.unwrap_err();
    match &error {
        Error::Decode { command, path, .. } => {
            assert_eq!(&**command, "query-status");
            assert_eq!(path, "running");
        }
        other => panic!("{other:?}"),
    }
}

/// `{"return": VALUE, "id": ID}` spaced as QEMU writes it, the form the
/// client takes without parsing the message first.
fn plainly(value: &str) -> String {
    format!(r#"{{"return": {value}, "id": @id}}"#)
}

#[tokio::test]
async fn plain_replies_decode_and_locate_decode_errors() {
    let running = plainly(r#"{"status": "running", "running": true}"#);
    let script = Script::qmp()
        .request()
        .send_line(&running)
        .request()
        .send_line(plainly(r#"{"running": "very", "status": "running"}"#))
        .request()
        .send_line(&running);
    let qmp = qmp_with(quick(), script).await;
    assert!(qmp.execute(&c::QueryStatus {}).await.unwrap().running);
    match qmp.execute(&c::QueryStatus {}).await.unwrap_err() {
        Error::Decode { command, path, .. } => {
            assert_eq!(&*command, "query-status");
            assert_eq!(path, "running");
        }
        other => panic!("{other:?}"),
    }
    // A decode error is the call's; the session goes on.
    assert!(qmp.execute(&c::QueryStatus {}).await.unwrap().running);
}

#[tokio::test]
async fn a_reply_that_looks_plain_but_has_more_members_still_decodes() {
    // A newer QEMU's extra member between `return` and `id`.
    let reply = plainly(r#"{"status": "running", "running": true}, "added-later": [1, 2]"#);
    let qmp = qmp_with(quick(), Script::qmp().request().send_line(reply)).await;
    assert!(qmp.execute(&c::QueryStatus {}).await.unwrap().running);
    assert!(!qmp.is_closed());
}

#[tokio::test]
async fn a_plain_reply_whose_value_is_not_json_closes_the_qmp_session() {
    let reply = plainly(r#"{"status": }"#);
    let qmp = qmp_with(quick(), Script::qmp().request().send_line(reply)).await;
    let error = qmp.execute(&c::QueryStatus {}).await.unwrap_err();
    assert!(
        matches!(&error, Error::Protocol(why) if why.contains("not valid JSON")),
        "{error:?}"
    );
    assert!(qmp.is_closed());
}

#[tokio::test]
async fn an_error_class_the_bindings_do_not_know_is_kept() {
    let script = Script::qmp().request().error("BrandNewClass", "new");
    let qmp = qmp_with(quick(), script).await;
    let error = qmp.execute(&c::QueryStatus {}).await.unwrap_err();
    let qmp_error = error.as_qmp().unwrap();
    assert_eq!(qmp_error.class.as_str(), "BrandNewClass");
    assert_eq!(qmp_error.desc, "new");
}

/// A guest-agent session (500 ms limits) on a fake playing `script`.
async fn qga_with(script: Script) -> qapi_client::Result<Qga> {
    let (stream, _fake) = script.in_memory();
    QgaBuilder::new()
        .timeout(Duration::from_millis(500))
        .connect_stream(stream)
        .await
}

#[tokio::test]
async fn guest_agent_junk_before_the_sync_reply_is_skipped() {
    let noise: &[u8] =
        b"garbage\n{\"return\": \"\xc3(\"}\n{\"return\": {}, \"id\": 1}\n{\"return\": \"cut short";
    let qga = qga_with(Script::qga().sync_noise(noise).answer(json!({})))
        .await
        .unwrap();
    qga.execute(&qga_types::commands::GuestPing {})
        .await
        .unwrap();
}

#[tokio::test]
async fn guest_agent_junk_mid_session_is_skipped() {
    let script = Script::qga()
        .request()
        .send("\x00\x01 not json [1,2\n]\n{\"unknown\": true}\n")
        .reply(json!({}));
    let qga = qga_with(script).await.unwrap();
    qga.execute(&qga_types::commands::GuestPing {})
        .await
        .unwrap();
}

#[tokio::test]
async fn a_sync_reply_with_the_wrong_id_is_an_error() {
    let script = Script::raw()
        .request()
        .send("\u{ff}")
        .send_line(r#"{"return": 1, "id": @id}"#);
    let error = qga_with(script).await.unwrap_err();
    assert!(
        matches!(&error, Error::Protocol(why) if why.contains("guest-sync-delimited")),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_dead_guest_agent_times_out() {
    let started = Instant::now();
    let error = qga_with(Script::raw()).await.unwrap_err();
    assert!(matches!(error, Error::Timeout { .. }), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn a_hostile_guest_agent_cannot_make_the_client_buffer_much() {
    // Deep nesting, then an endless array.
    let script = Script::qga()
        .request()
        .send([b'['; 4096])
        .flood(b'1', 256 << 20);
    let (stream, fake) = script.in_memory();
    let qga = QgaBuilder::new()
        .max_message_size(32 * 1024)
        .connect_stream(stream)
        .await
        .unwrap();
    let error = qga
        .execute(&qga_types::commands::GuestPing {})
        .await
        .unwrap_err();
    assert!(matches!(error, Error::MessageTooLarge { .. }), "{error:?}");
    assert!(qga.is_closed());
    drop(qga);
    let written = fake.report().await.flooded;
    assert!(written < 1 << 20, "agent wrote {written} bytes");
}

#[tokio::test]
async fn a_deeply_nested_message_is_an_error_not_a_stack_overflow() {
    let mut bomb = br#"{"id": @id, "return": "#.to_vec();
    bomb.extend(std::iter::repeat_n(b'[', 100_000));
    bomb.extend(std::iter::repeat_n(b']', 100_000));
    bomb.push(b'}');
    let qmp = qmp_with(quick(), Script::qmp().request().send_line(bomb)).await;
    let error = qmp.execute(&c::QueryStatus {}).await.unwrap_err();
    assert!(
        matches!(error, Error::Protocol(_) | Error::Decode { .. }),
        "{error:?}"
    );
}

/// Not a fault, but what many calls in flight cost: a call's future holds
/// only the common path (writing, waiting for the reply); the rare ones
/// (file descriptors, no reply, an outer timer) are boxed when taken.  It
/// was about 1 KB before they were.
#[tokio::test]
async fn a_call_in_flight_stays_small() {
    let qmp = qmp_with(quick(), Script::qmp()).await;
    let call = qmp.execute(&c::QueryStatus {});
    let size = std::mem::size_of_val(&call);
    assert!(size <= 640, "a query-status call's future is {size} bytes");
    let arguments = c::Cont {};
    let call = qmp.execute(&arguments);
    let size = std::mem::size_of_val(&call);
    assert!(size <= 640, "a cont call's future is {size} bytes");
}

/// QEMU's answer to a request it could not take apart.
const PARSE_ERROR: &str = r#"{"error": {"class": "GenericError", "desc": "JSON parse error"}}"#;

#[tokio::test]
async fn an_error_without_an_id_fails_the_one_call_in_flight() {
    let qmp = qmp_with(quick(), Script::qmp().request().send_line(PARSE_ERROR)).await;
    let error = qmp.execute(&c::QueryStatus {}).await.unwrap_err();
    assert_eq!(
        error.as_qmp().unwrap().desc,
        "JSON parse error",
        "{error:?}"
    );
    assert_eq!(qmp.unclaimed_errors(), 0);
}

#[tokio::test]
async fn an_error_without_an_id_among_several_calls_is_counted_not_lost() {
    // The two calls are 1 and 2 (0 is the negotiation).
    let script = Script::qmp()
        .request()
        .request()
        .send_line(PARSE_ERROR)
        .send_line(r#"{"return": {"running": true, "status": "running"}, "id": 1}"#)
        .send_line(r#"{"return": {"running": true, "status": "running"}, "id": 2}"#);
    let qmp = qmp_with(quick(), script).await;
    let (a, b) = tokio::join!(
        qmp.execute(&c::QueryStatus {}),
        qmp.execute(&c::QueryStatus {})
    );
    assert!(a.unwrap().running && b.unwrap().running);
    assert_eq!(qmp.unclaimed_errors(), 1);
}

#[tokio::test]
async fn an_error_reply_to_a_call_that_gave_up_is_counted() {
    let script = Script::qmp()
        .request()
        .sleep(Duration::from_millis(300))
        .error("GenericError", "too late")
        .answer(json!({"running": true, "status": "running"}));
    let qmp = qmp_with(quick(), script).await;
    let error = qmp
        .with_timeout(Some(Duration::from_millis(100)))
        .execute(&c::Stop {})
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::Timeout { sent: true, .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("may still run"), "{error}");
    assert!(qmp.execute(&c::QueryStatus {}).await.unwrap().running);
    assert_eq!(qmp.unclaimed_errors(), 1);
}

/// A session whose peer reads nothing until told to, then everything;
/// returns the commands it saw, in order, once the client hangs up.
async fn stalled_peer() -> (
    Qmp,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<Vec<String>>,
) {
    let (client, stream) = tokio::io::duplex(64 * 1024);
    let mut fake = Fake {
        stream,
        pending: common::wire::Requests::new(),
    };
    let (go, wait) = tokio::sync::oneshot::channel::<()>();
    let peer = tokio::spawn(async move {
        let greeting = format!("{QMP_GREETING}\r\n");
        fake.stream.write_all(greeting.as_bytes()).await.unwrap();
        let negotiation = fake.pending.read_async(&mut fake.stream).await.unwrap();
        let reply = json!({"return": {}, "id": negotiation["id"]});
        fake.stream
            .write_all(reply.to_string().as_bytes())
            .await
            .unwrap();
        let _ = wait.await;
        let mut seen = Vec::new();
        while let Some(request) = fake.pending.read_async(&mut fake.stream).await {
            let name = request["execute"].as_str().unwrap().to_owned();
            let value = if name == "human-monitor-command" {
                json!("")
            } else {
                json!({})
            };
            seen.push(name);
            let reply = json!({"return": value, "id": request["id"]});
            let _ = fake.stream.write_all(reply.to_string().as_bytes()).await;
        }
        seen
    });
    let qmp = QmpBuilder::new().connect_stream(client).await.unwrap();
    (qmp, go, peer)
}

#[tokio::test]
async fn a_call_dropped_or_timed_out_before_its_request_was_written_never_reaches_qemu() {
    let (qmp, go, peer) = stalled_peer().await;
    // Fills the pipe (64 KiB) and more: it stays queued, half written.
    let big = c::HumanMonitorCommand::new("x".repeat(256 * 1024));
    let first = tokio::spawn({
        let qmp = qmp.clone();
        async move { qmp.execute(&big).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    // Queued behind it: one call dropped, one that runs out of time.
    let dropped = tokio::time::timeout(Duration::from_millis(50), qmp.execute(&c::Stop {})).await;
    assert!(dropped.is_err(), "the call should still have been waiting");
    let timed_out = qmp
        .with_timeout(Some(Duration::from_millis(50)))
        .execute(&c::SystemReset {})
        .await
        .unwrap_err();
    assert!(
        matches!(timed_out, Error::Timeout { sent: false, .. }),
        "{timed_out:?}"
    );
    assert!(
        !timed_out.to_string().contains("may still run"),
        "{timed_out}"
    );
    go.send(()).unwrap();
    first.await.unwrap().unwrap();
    qmp.execute(&c::Cont {}).await.unwrap();
    drop(qmp);
    let seen = peer.await.unwrap();
    assert_eq!(seen, ["human-monitor-command", "cont"]);
}
