//! Events and the life of a session, against fake peers (in-memory
//! streams, Unix socket pairs, TCP on 127.0.0.1): the event stream as a
//! `Stream`, waiting for one typed event, subscriptions by name, events
//! kept for the first subscriber, closing a session from this side and
//! noticing its end, a guest agent over TCP, and blocking sessions on
//! sockets connected beforehand.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use qapi_client::{Error, EventStream, QgaBuilder, Qmp, QmpBuilder, RawEvent};
use qapi_types::commands as c;
use qapi_types::events::JobStatusChange;
use qapi_types::{AnyEvent, Event, JobStatus};
use qga_types::commands as g;
use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio_stream::StreamExt;

mod common;

const GREETING: &str = r#"{"QMP": {"version": {"qemu": {"micro": 2, "minor": 0, "major": 10}, "package": ""}, "capabilities": []}}"#;

/// The peer's side of a connection.
struct Fake<S> {
    stream: S,
    requests: common::wire::Requests,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Fake<S> {
    fn new(stream: S) -> Self {
        Fake {
            stream,
            requests: common::wire::Requests::new(),
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    async fn line(&mut self, value: &Value) {
        let mut bytes = serde_json::to_vec(value).unwrap();
        bytes.extend_from_slice(b"\r\n");
        self.send(&bytes).await;
    }

    /// The next request without a leading 0xFF, or `None` when the client
    /// has closed the stream.
    async fn request(&mut self) -> Option<Value> {
        self.requests.read_async(&mut self.stream).await
    }

    async fn answer(&mut self, request: &Value, ret: Value) {
        self.line(&json!({ "return": ret, "id": request["id"] }))
            .await;
    }

    /// Answers the next request with `{}` and returns it.
    async fn answer_next(&mut self) -> Value {
        let request = self.request().await.expect("a request");
        self.answer(&request, json!({})).await;
        request
    }

    /// The greeting and the negotiation.
    async fn handshake(&mut self) {
        self.send(GREETING.as_bytes()).await;
        self.send(b"\r\n").await;
        let request = self.answer_next().await;
        assert_eq!(request["execute"], "qmp_capabilities");
    }

    async fn event(&mut self, name: &str, data: Option<Value>, seconds: i64) {
        let mut event = json!({
            "event": name,
            "timestamp": {"seconds": seconds, "microseconds": 0},
        });
        if let Some(data) = data {
            event["data"] = data;
        }
        self.line(&event).await;
    }

    async fn job(&mut self, id: &str, status: &str, seconds: i64) {
        self.event(
            "JOB_STATUS_CHANGE",
            Some(json!({"id": id, "status": status})),
            seconds,
        )
        .await;
    }

    /// Reads until the client closes the stream; fails after 5 s.
    async fn expect_hangup(&mut self) {
        let rest = async { while self.request().await.is_some() {} };
        tokio::time::timeout(Duration::from_secs(5), rest)
            .await
            .expect("the client closes the stream");
    }
}

/// A negotiated session on an in-memory stream whose peer `script` then
/// drives.
async fn qmp_with<F, Fut>(builder: QmpBuilder, script: F) -> Qmp
where
    F: FnOnce(Fake<tokio::io::DuplexStream>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let (client, server) = tokio::io::duplex(64 * 1024);
    tokio::spawn(async move {
        let mut fake = Fake::new(server);
        fake.handshake().await;
        script(fake).await;
    });
    builder
        .handshake_timeout(Duration::from_secs(5))
        .connect_stream(client)
        .await
        .unwrap()
}

fn names(events: &[Arc<RawEvent>]) -> Vec<&str> {
    events.iter().map(|event| event.name()).collect()
}

/// Every event ready now, without waiting.
fn ready(events: &mut EventStream) -> Vec<Arc<RawEvent>> {
    std::iter::from_fn(|| events.try_recv_raw())
        .map(|event| event.unwrap())
        .collect()
}

#[test]
fn event_streams_can_move_between_threads() {
    fn assert_send_sync_unpin<T: Send + Sync + Unpin>() {}
    assert_send_sync_unpin::<EventStream>();
    assert_send_sync_unpin::<qapi_client::blocking::EventStream>();
}

#[tokio::test]
async fn the_event_stream_is_a_stream_that_ends_with_the_session() {
    let qmp = qmp_with(QmpBuilder::new(), |mut fake| async move {
        fake.answer_next().await;
        fake.event("STOP", None, 1).await;
        fake.event("RESUME", None, 2).await;
        fake.event("SOMETHING_NEWER", Some(json!({"x": 1})), 3)
            .await;
        // Dropping the fake hangs up.
    })
    .await;
    let events = qmp.events();
    qmp.execute(&c::Stop {}).await.unwrap();
    let seen: Vec<(String, i64)> = tokio::time::timeout(
        Duration::from_secs(5),
        events
            .map(|event| event.and_then(|event| event.decode()))
            .map(|message| {
                let message = message.unwrap();
                let name = match message.event {
                    AnyEvent::Stop => "STOP".to_owned(),
                    AnyEvent::Resume => "RESUME".to_owned(),
                    AnyEvent::Unrecognized { event, .. } => event,
                    other => panic!("unexpected {other:?}"),
                };
                (name, message.timestamp.seconds)
            })
            .collect(),
    )
    .await
    .expect("the stream ends when the peer hangs up");
    assert_eq!(
        seen,
        [
            ("STOP".to_owned(), 1),
            ("RESUME".to_owned(), 2),
            ("SOMETHING_NEWER".to_owned(), 3)
        ]
    );
}

#[tokio::test]
async fn the_stream_reports_lag_as_an_item() {
    let qmp = qmp_with(QmpBuilder::new().event_capacity(2), |mut fake| async move {
        let request = fake.request().await.unwrap();
        for seconds in 0..5 {
            fake.event("STOP", None, seconds).await;
        }
        fake.answer(&request, json!({})).await;
    })
    .await;
    let mut events = qmp.events();
    qmp.execute(&c::Stop {}).await.unwrap();
    // All five were routed before the reply; two are kept.
    let items: Vec<_> = (&mut events).take(3).collect().await;
    assert!(
        matches!(items[0], Err(Error::EventsLagged { missed: 3 })),
        "{:?}",
        items[0]
    );
    let kept: Vec<i64> = items[1..]
        .iter()
        .map(|item| item.as_ref().unwrap().decode().unwrap().timestamp.seconds)
        .collect();
    assert_eq!(kept, [3, 4]);
}

/// The job events of `j1`, the job waited for, interleaved with another
/// job's and other events; `j1` concludes at second 15.
async fn job_events<S: AsyncRead + AsyncWrite + Unpin>(fake: &mut Fake<S>) {
    fake.job("j2", "created", 10).await;
    fake.job("j1", "running", 11).await;
    fake.event("STOP", None, 12).await;
    fake.job("j2", "concluded", 13).await;
    fake.job("j1", "pending", 14).await;
    fake.job("j1", "concluded", 15).await;
    fake.job("j1", "null", 16).await;
}

fn j1_concluded(change: &JobStatusChange) -> bool {
    change.id == "j1" && change.status == JobStatus::Concluded
}

#[tokio::test]
async fn wait_for_finds_the_one_typed_event_among_others() {
    let qmp = qmp_with(QmpBuilder::new(), |mut fake| async move {
        fake.answer_next().await;
        job_events(&mut fake).await;
        tokio::time::sleep(Duration::from_secs(10)).await;
    })
    .await;
    let mut events = qmp.events();
    qmp.execute(&c::JobFinalize::new("j1")).await.unwrap();
    let message = events
        .wait_for(Duration::from_secs(5), j1_concluded)
        .await
        .unwrap();
    assert_eq!(
        message.event,
        JobStatusChange::new("j1", JobStatus::Concluded)
    );
    assert_eq!(message.timestamp.seconds, 15);
    // Read up to that event and no further.
    let next = events.recv_raw().await.unwrap().unwrap();
    let next = next.decode_event::<JobStatusChange>().unwrap();
    assert_eq!(
        (next.event.status, next.timestamp.seconds),
        (JobStatus::Null, 16)
    );
}

#[tokio::test]
async fn wait_for_without_data_and_on_a_named_stream() {
    let qmp = qmp_with(QmpBuilder::new(), |mut fake| async move {
        fake.answer_next().await;
        job_events(&mut fake).await;
        tokio::time::sleep(Duration::from_secs(10)).await;
    })
    .await;
    let mut jobs = qmp.events_named([JobStatusChange::NAME]);
    let mut stops = qmp.events_named(["STOP"]);
    qmp.execute(&c::JobFinalize::new("j1")).await.unwrap();
    let stop = stops
        .wait_for(Duration::from_secs(5), |_: &qapi_types::events::Stop| true)
        .await
        .unwrap();
    assert_eq!(stop.timestamp.seconds, 12);
    let concluded = jobs
        .wait_for(Duration::from_secs(5), j1_concluded)
        .await
        .unwrap();
    assert_eq!(concluded.timestamp.seconds, 15);
}

#[tokio::test]
async fn wait_for_times_out_with_the_event_name() {
    let qmp = qmp_with(QmpBuilder::new(), |mut fake| async move {
        fake.answer_next().await;
        fake.job("j1", "running", 1).await;
        fake.job("j2", "concluded", 2).await;
        tokio::time::sleep(Duration::from_secs(10)).await;
    })
    .await;
    let mut events = qmp.events();
    qmp.execute(&c::JobFinalize::new("j1")).await.unwrap();
    let started = Instant::now();
    let limit = Duration::from_millis(300);
    let error = events.wait_for(limit, j1_concluded).await.unwrap_err();
    assert!(
        matches!(&error, Error::EventTimeout { event, after }
            if &**event == "JOB_STATUS_CHANGE" && *after == limit),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "no matching JOB_STATUS_CHANGE event within 300ms"
    );
    let waited = started.elapsed();
    assert!(
        waited >= limit && waited < Duration::from_secs(3),
        "{waited:?}"
    );
}

#[tokio::test]
async fn wait_for_reports_lag_and_the_end_of_the_session() {
    let qmp = qmp_with(QmpBuilder::new().event_capacity(2), |mut fake| async move {
        let request = fake.request().await.unwrap();
        job_events(&mut fake).await;
        fake.event("STOP", None, 17).await;
        fake.event("RESUME", None, 18).await;
        fake.answer(&request, json!({})).await;
        fake.answer_next().await;
        // Then hangs up.
    })
    .await;
    let mut events = qmp.events();
    qmp.execute(&c::JobFinalize::new("j1")).await.unwrap();
    // Nine events for two places: `j1 concluded` was among the missed.
    let error = events
        .wait_for(Duration::from_secs(5), j1_concluded)
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::EventsLagged { missed: 7 }),
        "{error:?}"
    );
    qmp.execute(&c::Stop {}).await.unwrap();
    let error = events
        .wait_for(Duration::from_secs(5), j1_concluded)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::Disconnected { reason } if reason.contains("end of stream")),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_known_event_that_does_not_decode_fails_the_wait() {
    let qmp = qmp_with(QmpBuilder::new(), |mut fake| async move {
        fake.answer_next().await;
        fake.event("JOB_STATUS_CHANGE", Some(json!({"id": "j1"})), 1)
            .await;
        tokio::time::sleep(Duration::from_secs(10)).await;
    })
    .await;
    let mut events = qmp.events();
    qmp.execute(&c::JobFinalize::new("j1")).await.unwrap();
    let error = events
        .wait_for(Duration::from_secs(5), j1_concluded)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::Decode { command, path, .. }
            if &**command == "JOB_STATUS_CHANGE" && path == "data"),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_named_subscription_yields_only_those_events() {
    let qmp = qmp_with(QmpBuilder::new(), |mut fake| async move {
        let request = fake.request().await.unwrap();
        for (seconds, name) in ["STOP", "POWERDOWN", "RESUME", "SHUTDOWN", "STOP"]
            .into_iter()
            .enumerate()
        {
            fake.event(name, None, seconds as i64).await;
        }
        fake.answer(&request, json!({})).await;
        fake.expect_hangup().await;
    })
    .await;
    let mut named = qmp.events_named(["STOP", "RESUME"]);
    let mut all = qmp.events();
    qmp.execute(&c::Stop {}).await.unwrap();
    assert_eq!(names(&ready(&mut named)), ["STOP", "RESUME", "STOP"]);
    assert_eq!(
        names(&ready(&mut all)),
        ["STOP", "POWERDOWN", "RESUME", "SHUTDOWN", "STOP"]
    );
    qmp.close();
    assert!(named.recv_raw().await.is_none());
}

/// A session whose peer sends events during the negotiation (which QEMU
/// does not, but may) and after it, before the client subscribes; `n`
/// events after it, seconds 1 to `n`.
async fn early_events(builder: QmpBuilder, n: i64) -> Qmp {
    let (client, server) = tokio::io::duplex(64 * 1024);
    tokio::spawn(async move {
        let mut fake = Fake::new(server);
        fake.send(GREETING.as_bytes()).await;
        fake.send(b"\r\n").await;
        let negotiate = fake.request().await.unwrap();
        fake.event("RESUME", None, 0).await;
        fake.answer(&negotiate, json!({})).await;
        for seconds in 1..=n {
            fake.event("STOP", None, seconds).await;
        }
        // The client's first call is answered after all of them.
        fake.answer_next().await;
        fake.expect_hangup().await;
    });
    let qmp = builder.connect_stream(client).await.unwrap();
    qmp.execute(&c::QueryStatus {}).await.ok();
    qmp
}

#[tokio::test]
async fn early_events_are_dropped_by_default() {
    let qmp = early_events(QmpBuilder::new(), 2).await;
    let mut first = qmp.events();
    assert!(first.try_recv_raw().is_none());
}

#[tokio::test]
async fn early_events_are_kept_for_the_first_subscriber_only() {
    let qmp = early_events(QmpBuilder::new().keep_early_events(true), 2).await;
    let mut first = qmp.events_named(["STOP", "RESUME"]);
    let mut second = qmp.events();
    let early = ready(&mut first);
    assert_eq!(names(&early), ["RESUME", "STOP", "STOP"]);
    assert!(second.try_recv_raw().is_none());
    qmp.close();
    assert!(first.recv_raw().await.is_none());
    assert!(second.recv_raw().await.is_none());
}

#[tokio::test]
async fn early_events_over_the_capacity_are_reported_as_lag() {
    let builder = QmpBuilder::new().keep_early_events(true).event_capacity(2);
    let qmp = early_events(builder, 4).await;
    let mut first = qmp.events();
    let error = first.try_recv_raw().unwrap().unwrap_err();
    assert!(
        matches!(error, Error::EventsLagged { missed: 3 }),
        "{error:?}"
    );
    let kept: Vec<i64> = ready(&mut first)
        .iter()
        .map(|event| event.decode().unwrap().timestamp.seconds)
        .collect();
    assert_eq!(kept, [3, 4]);
}

#[tokio::test]
async fn early_events_outlive_the_session_for_the_first_subscriber() {
    let (client, server) = tokio::io::duplex(64 * 1024);
    tokio::spawn(async move {
        let mut fake = Fake::new(server);
        fake.handshake().await;
        fake.event(
            "SHUTDOWN",
            Some(json!({"guest": true, "reason": "guest-shutdown"})),
            1,
        )
        .await;
        // QEMU exits.
    });
    let qmp = QmpBuilder::new()
        .keep_early_events(true)
        .connect_stream(client)
        .await
        .unwrap();
    let reason = tokio::time::timeout(Duration::from_secs(5), qmp.closed())
        .await
        .unwrap();
    assert!(matches!(reason, Error::Disconnected { .. }), "{reason:?}");
    let mut first = qmp.events();
    let message = first.recv().await.unwrap().unwrap();
    assert!(
        matches!(message.event, AnyEvent::Shutdown(_)),
        "{message:?}"
    );
    assert!(first.recv().await.is_none());
    // The second gets nothing, and ends at once.
    assert!(qmp.events().recv().await.is_none());
}

#[tokio::test]
async fn close_fails_calls_in_flight_ends_streams_and_hangs_up() {
    let (got_request, request_seen) = tokio::sync::oneshot::channel();
    let (hung_up, hangup_seen) = tokio::sync::oneshot::channel();
    let qmp = qmp_with(QmpBuilder::new(), |mut fake| async move {
        fake.request().await.unwrap();
        got_request.send(()).unwrap();
        // Never answers; sees the client go.
        fake.expect_hangup().await;
        hung_up.send(()).unwrap();
    })
    .await;
    let mut events = qmp.events();
    let closed = qmp.closed();
    let call = tokio::spawn({
        let qmp = qmp.clone();
        async move { qmp.execute(&c::QueryStatus {}).await }
    });
    request_seen.await.unwrap();
    assert!(!qmp.is_closed());
    qmp.close();
    assert!(qmp.is_closed());
    let error = tokio::time::timeout(Duration::from_secs(2), call)
        .await
        .expect("the call fails at once")
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(&error, Error::Disconnected { reason } if &**reason == "closed by the client"),
        "{error:?}"
    );
    assert!(events.recv_raw().await.is_none());
    let reason = closed.await;
    assert_eq!(
        reason.to_string(),
        "connection closed: closed by the client"
    );
    tokio::time::timeout(Duration::from_secs(5), hangup_seen)
        .await
        .expect("the peer sees the end of the stream")
        .unwrap();
    // Later calls fail at once, with the same reason; closing again is
    // harmless.
    qmp.close();
    let again = qmp.execute(&c::QueryStatus {}).await.unwrap_err();
    assert!(
        matches!(&again, Error::Disconnected { reason } if &**reason == "closed by the client"),
        "{again:?}"
    );
}

#[tokio::test]
async fn closed_resolves_when_the_peer_hangs_up() {
    let qmp = qmp_with(QmpBuilder::new(), |mut fake| async move {
        fake.answer_next().await;
        // Then hangs up.
    })
    .await;
    let closed = tokio::spawn(qmp.closed());
    qmp.execute(&c::Stop {}).await.unwrap();
    let reason = tokio::time::timeout(Duration::from_secs(5), closed)
        .await
        .expect("closed() resolves")
        .unwrap();
    assert!(
        matches!(&reason, Error::Disconnected { reason } if &**reason == "end of stream"),
        "{reason:?}"
    );
    assert!(qmp.is_closed());
    // Asked again after the end, it resolves at once.
    let again = qmp.closed().await;
    assert_eq!(again.to_string(), reason.to_string());
}

#[tokio::test]
async fn closed_resolves_when_every_handle_is_dropped() {
    let qmp = qmp_with(QmpBuilder::new(), |mut fake| async move {
        fake.expect_hangup().await;
    })
    .await;
    let closed = qmp.closed();
    drop(qmp);
    let reason = tokio::time::timeout(Duration::from_secs(5), closed)
        .await
        .expect("closed() resolves");
    assert!(matches!(reason, Error::Disconnected { .. }), "{reason:?}");
}

/// Answers a guest agent's requests: the sync with 0xFF and the sync id,
/// `guest-ping` with `{}`, until the client hangs up; then says so.
async fn fake_agent<S: AsyncRead + AsyncWrite + Unpin>(stream: S) -> usize {
    let mut fake = Fake::new(stream);
    let mut requests = 0;
    while let Some(request) = fake.request().await {
        requests += 1;
        match request["execute"].as_str().unwrap() {
            "guest-sync-delimited" => {
                let reply = json!({"return": request["arguments"]["id"], "id": request["id"]});
                fake.send(b"\xff").await;
                fake.line(&reply).await;
            }
            "guest-ping" => fake.answer(&request, json!({})).await,
            other => panic!("unexpected {other}"),
        }
    }
    requests
}

#[tokio::test]
async fn a_guest_agent_over_tcp_and_closing_it() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let agent = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        fake_agent(stream).await
    });
    let qga = QgaBuilder::new()
        .timeout(Duration::from_secs(5))
        .connect_tcp(address)
        .await
        .unwrap();
    qga.execute(&g::GuestPing {}).await.unwrap();
    let closed = qga.closed();
    qga.close();
    assert!(qga.is_closed());
    let reason = closed.await;
    assert!(
        matches!(&reason, Error::Disconnected { reason } if &**reason == "closed by the client"),
        "{reason:?}"
    );
    let requests = tokio::time::timeout(Duration::from_secs(5), agent)
        .await
        .expect("the agent sees the client go")
        .unwrap();
    assert_eq!(requests, 2);
    let error = qga.execute(&g::GuestPing {}).await.unwrap_err();
    assert!(matches!(error, Error::Disconnected { .. }), "{error:?}");
}

#[tokio::test]
async fn connecting_a_guest_agent_over_tcp_names_the_address() {
    // A port nobody listens on: bound, then closed.
    let address = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let error = QgaBuilder::new().connect_tcp(address).await.unwrap_err();
    assert!(
        matches!(&error, Error::Connect { address: a, .. } if **a == *address.to_string()),
        "{error:?}"
    );
}

mod blocking {
    use super::*;
    use qapi_client::blocking;

    /// A QMP peer on a blocking socket, in a thread: greeting,
    /// negotiation, then `script`; returns whether the client hung up
    /// (the end of the stream) after the script.
    fn serve<S>(
        stream: S,
        script: impl FnOnce(&mut Peer<S>) + Send + 'static,
    ) -> std::thread::JoinHandle<bool>
    where
        S: std::io::Read + Write + Send + 'static,
        for<'a> &'a S: std::io::Read + Write,
    {
        std::thread::spawn(move || {
            let mut peer = Peer {
                stream,
                requests: common::wire::Requests::new(),
            };
            peer.send(GREETING.as_bytes());
            peer.send(b"\r\n");
            let negotiate = peer.request().unwrap();
            peer.answer(&negotiate, json!({}));
            script(&mut peer);
            peer.request().is_none()
        })
    }

    struct Peer<S> {
        stream: S,
        requests: common::wire::Requests,
    }

    impl<S> Peer<S>
    where
        S: std::io::Read + Write,
        for<'a> &'a S: std::io::Read + Write,
    {
        fn request(&mut self) -> Option<Value> {
            self.requests.read(&mut self.stream)
        }

        fn send(&mut self, bytes: &[u8]) {
            let _ = (&self.stream).write_all(bytes);
        }

        fn line(&mut self, value: &Value) {
            let mut bytes = serde_json::to_vec(value).unwrap();
            bytes.extend_from_slice(b"\r\n");
            self.send(&bytes);
        }

        fn answer(&mut self, request: &Value, ret: Value) {
            self.line(&json!({ "return": ret, "id": request["id"] }));
        }

        fn job(&mut self, id: &str, status: &str, seconds: i64) {
            self.line(&json!({
                "event": "JOB_STATUS_CHANGE",
                "data": {"id": id, "status": status},
                "timestamp": {"seconds": seconds, "microseconds": 0},
            }));
        }
    }

    #[test]
    fn a_blocking_session_on_a_socket_pair_waits_for_an_event_and_closes() {
        let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        let peer = serve(theirs, |peer| {
            let request = peer.request().unwrap();
            assert_eq!(request["execute"], "job-finalize");
            peer.answer(&request, json!({}));
            peer.job("j2", "concluded", 1);
            peer.line(&json!({"event": "STOP", "timestamp": {"seconds": 2, "microseconds": 0}}));
            peer.job("j1", "concluded", 3);
            // Stays until the client hangs up.
        });
        let qmp = blocking::Qmp::connect_stream(ours).unwrap();
        assert_eq!(qmp.greeting().version.qemu.major, 10);
        let mut jobs = qmp.events_named([JobStatusChange::NAME]);
        qmp.execute(&c::JobFinalize::new("j1")).unwrap();
        let message = jobs.wait_for(Duration::from_secs(5), j1_concluded).unwrap();
        assert_eq!(message.timestamp.seconds, 3);
        // The reader task has the socket back from direct calls by now.
        std::thread::sleep(Duration::from_millis(20));
        qmp.close();
        assert!(peer.join().unwrap(), "the peer saw the end of the stream");
        let started = Instant::now();
        let error = qmp.execute(&c::QueryStatus {}).unwrap_err();
        assert!(
            matches!(&error, Error::Disconnected { reason } if &**reason == "closed by the client"),
            "{error:?}"
        );
        assert!(
            started.elapsed() < Duration::from_millis(100),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(
            qmp.closed().to_string(),
            "connection closed: closed by the client"
        );
        assert!(jobs.recv().is_none());
    }

    #[test]
    fn blocking_calls_after_the_peer_hung_up_fail_at_once() {
        let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        let peer = serve(theirs, |peer| {
            let request = peer.request().unwrap();
            peer.answer(&request, json!({}));
            peer.stream.shutdown(std::net::Shutdown::Both).unwrap();
        });
        let qmp = blocking::Qmp::connect_stream(ours).unwrap();
        qmp.execute(&c::Stop {}).unwrap();
        peer.join().unwrap();
        assert!(matches!(qmp.closed(), Error::Disconnected { .. }));
        // Long enough for the reader task to have taken the socket back
        // from direct calls, had it still been running.
        std::thread::sleep(Duration::from_millis(20));
        for _ in 0..3 {
            let started = Instant::now();
            let error = qmp.execute(&c::Stop {}).unwrap_err();
            assert!(matches!(error, Error::Disconnected { .. }), "{error:?}");
            let took = started.elapsed();
            assert!(took < Duration::from_millis(100), "{took:?}");
            std::thread::sleep(Duration::from_millis(30));
        }
    }

    #[test]
    fn a_blocking_session_on_a_tcp_stream_notices_the_peer_hang_up() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let ours = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (theirs, _) = listener.accept().unwrap();
        let peer = serve(theirs, |peer| {
            let request = peer.request().unwrap();
            peer.answer(&request, json!({"status": "running", "running": true}));
            // Then hangs up: the socket is shut down, the thread goes on.
            peer.stream.shutdown(std::net::Shutdown::Both).unwrap();
        });
        let qmp = blocking::Qmp::connect_stream_with(
            QmpBuilder::new().handshake_timeout(Duration::from_secs(5)),
            ours,
        )
        .unwrap();
        assert!(qmp.execute(&c::QueryStatus {}).unwrap().running);
        let reason = qmp.closed();
        assert!(
            matches!(&reason, Error::Disconnected { reason } if &**reason == "end of stream"),
            "{reason:?}"
        );
        assert!(qmp.is_closed());
        peer.join().unwrap();
    }

    #[test]
    fn a_blocking_guest_agent_on_connected_sockets() {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        // A Unix socket pair.
        let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        let agent = runtime.spawn(async move {
            theirs.set_nonblocking(true).unwrap();
            fake_agent(tokio::net::UnixStream::from_std(theirs).unwrap()).await
        });
        let qga = blocking::Qga::connect_stream(ours).unwrap();
        qga.execute(&g::GuestPing {}).unwrap();
        qga.close();
        assert_eq!(runtime.block_on(agent).unwrap(), 2);
        assert!(matches!(qga.closed(), Error::Disconnected { .. }));

        // A TCP connection, and by address.
        for by_address in [false, true] {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let address = listener.local_addr().unwrap();
            let agent = runtime.spawn(async move {
                listener.set_nonblocking(true).unwrap();
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let (stream, _) = listener.accept().await.unwrap();
                fake_agent(stream).await
            });
            let qga = if by_address {
                blocking::Qga::connect_tcp_with(QgaBuilder::new(), address).unwrap()
            } else {
                let stream = std::net::TcpStream::connect(address).unwrap();
                blocking::Qga::connect_stream_with(QgaBuilder::new(), stream).unwrap()
            };
            qga.execute(&g::GuestPing {}).unwrap();
            qga.execute(&g::GuestPing {}).unwrap();
            drop(qga);
            assert_eq!(runtime.block_on(agent).unwrap(), 3);
        }
    }
}
