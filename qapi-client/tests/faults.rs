//! Fault injection: a fake QMP server / guest agent (an in-memory stream)
//! that misbehaves in every way listed in the client issue.  Each case ends
//! in a typed error or a documented recovery within its time limit.

use std::time::{Duration, Instant};

use qapi_client::{Error, Qga, QgaBuilder, Qmp, QmpBuilder};
use qapi_types::commands as c;
use qapi_types::AnyEvent;
use serde_json::{json, Value};
use tokio::io::{AsyncWriteExt, DuplexStream};

mod common;

const GREETING: &[u8] = br#"{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 10}, "package": "fake"}, "capabilities": ["oob"]}}"#;

/// The server side of the fake connection.
struct Fake {
    stream: DuplexStream,
    /// Bytes read but not yet taken as a request.
    pending: common::wire::Requests,
}

impl Fake {
    async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    async fn send_line(&mut self, bytes: &[u8]) {
        self.send(bytes).await;
        self.send(b"\r\n").await;
    }

    /// The next request, without a leading 0xFF.
    async fn request(&mut self) -> Value {
        self.pending
            .read_async(&mut self.stream)
            .await
            .expect("client closed")
    }

    /// Answers the next request with `return` echoing its id.
    async fn answer(&mut self, value: Value) -> Value {
        let request = self.request().await;
        let reply = json!({ "return": value, "id": request["id"] });
        self.send_line(reply.to_string().as_bytes()).await;
        request
    }

    /// Greeting and capabilities negotiation.
    async fn handshake(&mut self) {
        self.send_line(GREETING).await;
        let request = self.answer(json!({})).await;
        assert_eq!(request["execute"], "qmp_capabilities");
    }
}

fn pair() -> (DuplexStream, Fake) {
    let (client, server) = tokio::io::duplex(64 * 1024);
    (
        client,
        Fake {
            stream: server,
            pending: common::wire::Requests::new(),
        },
    )
}

/// A negotiated QMP session over a fake server that `script` then drives.
async fn qmp_with<F, Fut>(builder: QmpBuilder, script: F) -> Qmp
where
    F: FnOnce(Fake) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let (client, mut fake) = pair();
    let server = tokio::spawn(async move {
        fake.handshake().await;
        script(fake).await;
    });
    let qmp = builder.connect_stream(client).await.unwrap();
    drop(server); // keeps running; the script owns the fake
    qmp
}

fn quick() -> QmpBuilder {
    QmpBuilder::new()
        .handshake_timeout(Duration::from_millis(500))
        .command_timeout(Some(Duration::from_millis(500)))
}

#[tokio::test]
async fn garbage_closes_the_qmp_session_with_a_protocol_error() {
    let qmp = qmp_with(quick(), |mut fake| async move {
        fake.request().await;
        fake.send_line(b"this is not JSON").await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    })
    .await;
    let error = qmp.execute(&c::QueryStatus {}).await.unwrap_err();
    assert!(matches!(error, Error::Protocol(_)), "{error:?}");
    assert!(qmp.is_closed());
    let again = qmp.execute(&c::QueryStatus {}).await.unwrap_err();
    assert!(matches!(again, Error::Protocol(_)), "{again:?}");
}

#[tokio::test]
async fn invalid_utf8_is_a_protocol_error() {
    let qmp = qmp_with(quick(), |mut fake| async move {
        let request = fake.request().await;
        let reply = format!(
            "{{\"return\": {{\"status\": \"\u{1}\"}}, \"id\": {}}}",
            request["id"]
        );
        let mut bytes = reply.into_bytes();
        let at = bytes.iter().position(|&b| b == 1).unwrap();
        bytes[at] = 0xC3; // a lone lead byte
        fake.send_line(&bytes).await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    })
    .await;
    let error = qmp.execute(&c::QueryStatus {}).await.unwrap_err();
    assert!(
        matches!(&error, Error::Protocol(why) if why.contains("UTF-8") || why.contains("unicode")),
        "{error:?}"
    );
}

#[tokio::test]
async fn truncated_json_runs_into_the_time_limit() {
    let qmp = qmp_with(quick(), |mut fake| async move {
        let request = fake.request().await;
        // A reply cut short, then more data: it never balances.
        fake.send_line(b"{\"return\": {\"running\": true").await;
        fake.send_line(format!("{{\"return\": {{}}, \"id\": {}}}", request["id"]).as_bytes())
            .await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    })
    .await;
    let started = Instant::now();
    let error = qmp.execute(&c::QueryStatus {}).await.unwrap_err();
    assert!(matches!(error, Error::Timeout { .. }), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn disconnect_mid_reply_fails_the_call_at_once() {
    let qmp = qmp_with(QmpBuilder::new(), |mut fake| async move {
        fake.request().await;
        fake.send(b"{\"return\": {\"running\": tr").await;
        // Dropping the fake closes the stream.
    })
    .await;
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
    let (client, mut fake) = pair();
    let server = tokio::spawn(async move {
        fake.handshake().await;
        fake.request().await;
        fake.send(b"{\"return\": \"").await;
        // An endless line: the client must give up, not buffer it.
        let chunk = vec![b'x'; 16 * 1024];
        let mut written = 0usize;
        while fake.stream.write_all(&chunk).await.is_ok() {
            written += chunk.len();
            if written > 256 << 20 {
                break;
            }
        }
        written
    });
    let qmp = QmpBuilder::new()
        .max_message_size(limit)
        .connect_stream(client)
        .await
        .unwrap();
    let error = qmp.execute(&c::QueryStatus {}).await.unwrap_err();
    assert!(
        matches!(error, Error::MessageTooLarge { limit: l } if l == limit),
        "{error:?}"
    );
    drop(qmp);
    let written = server.await.unwrap();
    // The client stopped reading soon after the limit: what the server got
    // out is the limit plus the stream's buffers, not the 256 MiB it tried.
    assert!(written < limit + 512 * 1024, "server wrote {written} bytes");
}

#[tokio::test]
async fn wrong_ids_time_out_and_the_session_goes_on() {
    let qmp = qmp_with(quick(), |mut fake| async move {
        let request = fake.request().await;
        let wrong = request["id"].as_u64().unwrap() + 1000;
        fake.send_line(format!("{{\"return\": {{}}, \"id\": {wrong}}}").as_bytes())
            .await;
        fake.send_line(b"{\"return\": {}, \"id\": \"not ours\"}")
            .await;
        fake.answer(json!({"running": true, "status": "running"}))
            .await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    })
    .await;
    let error = qmp.execute(&c::Stop {}).await.unwrap_err();
    assert!(matches!(error, Error::Timeout { .. }), "{error:?}");
    let status = qmp.execute(&c::QueryStatus {}).await.unwrap();
    assert!(status.running);
}

#[tokio::test]
async fn duplicate_and_unsolicited_replies_are_dropped() {
    let qmp = qmp_with(quick(), |mut fake| async move {
        fake.send_line(b"{\"return\": {}, \"id\": 12345}").await;
        fake.send_line(
            b"{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error\"}}",
        )
        .await;
        let request = fake.request().await;
        let reply = format!(
            "{{\"return\": {{\"running\": false, \"status\": \"paused\"}}, \"id\": {}}}",
            request["id"]
        );
        fake.send_line(reply.as_bytes()).await;
        fake.send_line(reply.as_bytes()).await; // a duplicate
        fake.answer(json!({"running": true, "status": "running"}))
            .await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    })
    .await;
    assert!(!qmp.execute(&c::QueryStatus {}).await.unwrap().running);
    assert!(qmp.execute(&c::QueryStatus {}).await.unwrap().running);
}

#[tokio::test]
async fn no_greeting_times_out() {
    let (client, fake) = pair();
    let started = Instant::now();
    let error = QmpBuilder::new()
        .handshake_timeout(Duration::from_millis(300))
        .connect_stream(client)
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Timeout { .. }), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(1));
    drop(fake);
}

#[tokio::test]
async fn a_greeting_then_silence_times_out() {
    let (client, mut fake) = pair();
    let server = tokio::spawn(async move {
        fake.send_line(GREETING).await;
        fake.request().await; // qmp_capabilities, never answered
        tokio::time::sleep(Duration::from_secs(5)).await;
    });
    let error = QmpBuilder::new()
        .handshake_timeout(Duration::from_millis(300))
        .connect_stream(client)
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Timeout { .. }), "{error:?}");
    server.abort();
}

#[tokio::test]
async fn something_else_instead_of_a_greeting_is_a_protocol_error() {
    let (client, mut fake) = pair();
    fake.send_line(b"{\"return\": {}}").await;
    let error = QmpBuilder::new().connect_stream(client).await.unwrap_err();
    assert!(
        matches!(&error, Error::Protocol(why) if why.contains("greeting")),
        "{error:?}"
    );
}

#[tokio::test]
async fn one_byte_a_second_runs_into_the_time_limit() {
    let (client, mut fake) = pair();
    let server = tokio::spawn(async move {
        for &byte in GREETING {
            fake.send(&[byte]).await;
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    let started = Instant::now();
    let error = QmpBuilder::new()
        .handshake_timeout(Duration::from_millis(1500))
        .connect_stream(client)
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Timeout { .. }), "{error:?}");
    assert!(started.elapsed() < Duration::from_millis(2500));
    server.abort();
}

#[tokio::test]
async fn a_slow_event_subscriber_is_told_what_it_missed() {
    let qmp_builder = quick().event_capacity(4);
    let (client, mut fake) = pair();
    let server = tokio::spawn(async move {
        fake.handshake().await;
        let request = fake.request().await;
        for i in 0..100 {
            let event = format!(
                "{{\"event\": \"STOP\", \"timestamp\": {{\"seconds\": {i}, \"microseconds\": 0}}}}"
            );
            fake.send_line(event.as_bytes()).await;
        }
        fake.send_line(format!("{{\"return\": {{}}, \"id\": {}}}", request["id"]).as_bytes())
            .await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    });
    let qmp = qmp_builder.connect_stream(client).await.unwrap();
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
    server.abort();
}

#[tokio::test]
async fn unknown_events_and_undecodable_known_events_are_kept() {
    let qmp = qmp_with(quick(), |mut fake| async move {
        let request = fake.request().await;
        fake.send_line(br#"{"event": "FROM_THE_FUTURE", "data": {"x": 1}, "timestamp": {"seconds": 1, "microseconds": 2}}"#).await;
        fake.send_line(br#"{"event": "RESET", "data": {"guest": "yes"}, "timestamp": {"seconds": 1, "microseconds": 2}}"#).await;
        fake.send_line(format!("{{\"return\": {{}}, \"id\": {}}}", request["id"]).as_bytes())
            .await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    })
    .await;
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
    let qmp = qmp_with(quick(), |mut fake| async move {
        fake.answer(json!({"running": "very", "status": "running"}))
            .await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    })
    .await;
    let error = qmp.execute(&c::QueryStatus {}).await.unwrap_err();
    match &error {
        Error::Decode { command, path, .. } => {
            assert_eq!(&**command, "query-status");
            assert_eq!(path, "running");
        }
        other => panic!("{other:?}"),
    }
}

/// Sends `{"return": VALUE, "id": ID}` spaced as QEMU writes it, the form
/// the client takes without parsing the message first.
async fn answer_plainly(fake: &mut Fake, value: &str) {
    let request = fake.request().await;
    let reply = format!("{{\"return\": {value}, \"id\": {}}}", request["id"]);
    fake.send_line(reply.as_bytes()).await;
}

#[tokio::test]
async fn plain_replies_decode_and_locate_decode_errors() {
    let qmp = qmp_with(quick(), |mut fake| async move {
        answer_plainly(&mut fake, r#"{"status": "running", "running": true}"#).await;
        answer_plainly(&mut fake, r#"{"running": "very", "status": "running"}"#).await;
        answer_plainly(&mut fake, r#"{"status": "running", "running": true}"#).await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    })
    .await;
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
    let qmp = qmp_with(quick(), |mut fake| async move {
        // A newer QEMU's extra member between `return` and `id`.
        answer_plainly(
            &mut fake,
            r#"{"status": "running", "running": true}, "added-later": [1, 2]"#,
        )
        .await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    })
    .await;
    assert!(qmp.execute(&c::QueryStatus {}).await.unwrap().running);
    assert!(!qmp.is_closed());
}

#[tokio::test]
async fn a_plain_reply_whose_value_is_not_json_closes_the_qmp_session() {
    let qmp = qmp_with(quick(), |mut fake| async move {
        answer_plainly(&mut fake, r#"{"status": }"#).await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    })
    .await;
    let error = qmp.execute(&c::QueryStatus {}).await.unwrap_err();
    assert!(
        matches!(&error, Error::Protocol(why) if why.contains("not valid JSON")),
        "{error:?}"
    );
    assert!(qmp.is_closed());
}

#[tokio::test]
async fn an_error_class_the_bindings_do_not_know_is_kept() {
    let qmp = qmp_with(quick(), |mut fake| async move {
        let request = fake.request().await;
        let reply =
            json!({"error": {"class": "BrandNewClass", "desc": "new"}, "id": request["id"]});
        fake.send_line(reply.to_string().as_bytes()).await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    })
    .await;
    let error = qmp.execute(&c::QueryStatus {}).await.unwrap_err();
    let qmp_error = error.as_qmp().unwrap();
    assert_eq!(qmp_error.class.as_str(), "BrandNewClass");
    assert_eq!(qmp_error.desc, "new");
}

/// A fake guest agent: answers the sync after `noise`, then `script`.
async fn qga_with<F, Fut>(noise: &'static [u8], script: F) -> qapi_client::Result<Qga>
where
    F: FnOnce(Fake) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let (client, mut fake) = pair();
    tokio::spawn(async move {
        let request = fake.request().await;
        assert_eq!(request["execute"], "guest-sync-delimited");
        fake.send(noise).await;
        let reply = json!({"return": request["arguments"]["id"], "id": request["id"]});
        fake.send(b"\xff").await;
        fake.send_line(reply.to_string().as_bytes()).await;
        script(fake).await;
    });
    QgaBuilder::new()
        .timeout(Duration::from_millis(500))
        .connect_stream(client)
        .await
}

#[tokio::test]
async fn guest_agent_junk_before_the_sync_reply_is_skipped() {
    let noise: &[u8] =
        b"garbage\n{\"return\": \"\xc3(\"}\n{\"return\": {}, \"id\": 1}\n{\"return\": \"cut short";
    let qga = qga_with(noise, |mut fake| async move {
        fake.answer(json!({})).await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    })
    .await
    .unwrap();
    qga.execute(&qga_types::commands::GuestPing {})
        .await
        .unwrap();
}

#[tokio::test]
async fn guest_agent_junk_mid_session_is_skipped() {
    let qga = qga_with(b"", |mut fake| async move {
        let request = fake.request().await;
        fake.send(b"\x00\x01 not json [1,2\n]\n{\"unknown\": true}\n")
            .await;
        fake.send_line(
            json!({"return": {}, "id": request["id"]})
                .to_string()
                .as_bytes(),
        )
        .await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    })
    .await
    .unwrap();
    qga.execute(&qga_types::commands::GuestPing {})
        .await
        .unwrap();
}

#[tokio::test]
async fn a_sync_reply_with_the_wrong_id_is_an_error() {
    let (client, mut fake) = pair();
    tokio::spawn(async move {
        let request = fake.request().await;
        let reply = json!({"return": 1, "id": request["id"]});
        fake.send(b"\xff").await;
        fake.send_line(reply.to_string().as_bytes()).await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    });
    let error = QgaBuilder::new().connect_stream(client).await.unwrap_err();
    assert!(
        matches!(&error, Error::Protocol(why) if why.contains("guest-sync-delimited")),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_dead_guest_agent_times_out() {
    let (client, _fake) = pair();
    let started = Instant::now();
    let error = QgaBuilder::new()
        .timeout(Duration::from_millis(300))
        .connect_stream(client)
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Timeout { .. }), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn a_hostile_guest_agent_cannot_make_the_client_buffer_much() {
    let (client, mut fake) = pair();
    let server = tokio::spawn(async move {
        let request = fake.request().await;
        fake.send(b"\xff").await;
        fake.send_line(
            json!({"return": request["arguments"]["id"], "id": request["id"]})
                .to_string()
                .as_bytes(),
        )
        .await;
        fake.request().await;
        // Deep nesting, then an endless array.
        fake.send(&[b'['; 4096]).await;
        let chunk = vec![b'1'; 16 * 1024];
        let mut written = 0usize;
        while fake.stream.write_all(&chunk).await.is_ok() {
            written += chunk.len();
            if written > 256 << 20 {
                break;
            }
        }
        written
    });
    let qga = QgaBuilder::new()
        .max_message_size(32 * 1024)
        .connect_stream(client)
        .await
        .unwrap();
    let error = qga
        .execute(&qga_types::commands::GuestPing {})
        .await
        .unwrap_err();
    assert!(matches!(error, Error::MessageTooLarge { .. }), "{error:?}");
    assert!(qga.is_closed());
    drop(qga);
    let written = server.await.unwrap();
    assert!(written < 1 << 20, "agent wrote {written} bytes");
}

#[tokio::test]
async fn a_deeply_nested_message_is_an_error_not_a_stack_overflow() {
    let qmp = qmp_with(quick(), |mut fake| async move {
        let request = fake.request().await;
        let mut bomb = format!("{{\"id\": {}, \"return\": ", request["id"]).into_bytes();
        bomb.extend(std::iter::repeat_n(b'[', 100_000));
        bomb.extend(std::iter::repeat_n(b']', 100_000));
        bomb.push(b'}');
        fake.send_line(&bomb).await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    })
    .await;
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
    let qmp = qmp_with(quick(), |_fake| async move {
        tokio::time::sleep(Duration::from_secs(5)).await;
    })
    .await;
    let call = qmp.execute(&c::QueryStatus {});
    let size = std::mem::size_of_val(&call);
    assert!(size <= 640, "a query-status call's future is {size} bytes");
    let arguments = c::Cont {};
    let call = qmp.execute(&arguments);
    let size = std::mem::size_of_val(&call);
    assert!(size <= 640, "a cont call's future is {size} bytes");
}

#[tokio::test]
async fn an_error_without_an_id_fails_the_one_call_in_flight() {
    let qmp = qmp_with(quick(), |mut fake| async move {
        fake.request().await;
        // QEMU's answer to a request it could not take apart.
        fake.send_line(br#"{"error": {"class": "GenericError", "desc": "JSON parse error"}}"#)
            .await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    })
    .await;
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
    let qmp = qmp_with(quick(), |mut fake| async move {
        let first = fake.request().await;
        let second = fake.request().await;
        fake.send_line(br#"{"error": {"class": "GenericError", "desc": "JSON parse error"}}"#)
            .await;
        for request in [first, second] {
            let reply =
                json!({"return": {"running": true, "status": "running"}, "id": request["id"]});
            fake.send_line(reply.to_string().as_bytes()).await;
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    })
    .await;
    let (a, b) = tokio::join!(
        qmp.execute(&c::QueryStatus {}),
        qmp.execute(&c::QueryStatus {})
    );
    assert!(a.unwrap().running && b.unwrap().running);
    assert_eq!(qmp.unclaimed_errors(), 1);
}

#[tokio::test]
async fn an_error_reply_to_a_call_that_gave_up_is_counted() {
    let qmp = qmp_with(quick(), |mut fake| async move {
        let request = fake.request().await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let reply =
            json!({"error": {"class": "GenericError", "desc": "too late"}, "id": request["id"]});
        fake.send_line(reply.to_string().as_bytes()).await;
        fake.answer(json!({"running": true, "status": "running"}))
            .await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    })
    .await;
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
    let (client, mut fake) = pair();
    let (go, wait) = tokio::sync::oneshot::channel::<()>();
    let peer = tokio::spawn(async move {
        fake.handshake().await;
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
