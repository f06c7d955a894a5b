//! Tests of the engine's internals: writes that stall, cancelled calls,
//! deadlines, and the plain-reply fast path against the general parse.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream};

use super::direct::ReplyEnd;
use super::outbox::encode_request;
use super::routing::{plain_reply, plain_reply_parts, Incoming, PlainReply};
use super::*;
use crate::framing::{Frame, Splitter};

/// A peer that reads slowly through a tiny pipe, so that writes keep
/// stalling, and answers every request it can parse, until the client
/// closes the stream.  Returns the requests it saw.
async fn slow_peer(mut stream: DuplexStream) -> Vec<serde_json::Value> {
    let mut splitter = Splitter::new(1 << 20);
    let mut seen = Vec::new();
    let mut chunk = [0u8; 16];
    loop {
        tokio::time::sleep(Duration::from_micros(200)).await;
        let n = stream.read(&mut chunk).await.unwrap();
        if n == 0 {
            assert!(!splitter.in_message(), "a request ended in the middle");
            break;
        }
        splitter.buffer_mut().extend_from_slice(&chunk[..n]);
        while let Some(frame) = splitter.next_frame() {
            let Frame::Message(range) = frame else {
                panic!("not a request: {frame:?}")
            };
            let request: serde_json::Value =
                serde_json::from_slice(&splitter.buffer()[range]).expect("a whole request");
            let reply = format!("{{\"return\": {{}}, \"id\": {}}}\r\n", request["id"]);
            // The client may be gone: nothing to answer then.
            let _ = stream.write_all(reply.as_bytes()).await;
            seen.push(request);
        }
        splitter.compact();
    }
    seen
}

fn request(name: &str, timeout: Duration) -> Request<'_> {
    Request {
        name,
        arguments: None,
        oob: false,
        fds: &[],
        prefix: b"",
        expect_reply: true,
        timeout: Some(timeout),
    }
}

#[tokio::test]
async fn calls_that_give_up_before_their_request_is_written_never_send_it() {
    give_up_while_queued().await;
}

/// The same with calls on two threads, which queue and give up while the
/// flusher writes without the outbox's lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_on_other_threads_that_give_up_while_the_flusher_writes_never_send_it() {
    for _ in 0..5 {
        give_up_while_queued().await;
    }
}

async fn give_up_while_queued() {
    let (ours, theirs) = tokio::io::duplex(24);
    let (read, write) = tokio::io::split(ours);
    let engine = Arc::new(Engine::start(
        MessageReader::new(read, Peer::Qmp, 1 << 20),
        Writer::Stream(Box::new(write)),
        &config(Peer::Qmp),
    ));
    let peer = tokio::spawn(slow_peer(theirs));
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..40 {
        let engine = Arc::clone(&engine);
        calls.spawn(async move {
            // Every fourth call gives up long before its turn.
            let timeout = Duration::from_millis(if i % 4 == 0 { 1 } else { 20_000 });
            let name = format!("query-status-{i}");
            (i, engine.call(request(&name, timeout)).await)
        });
    }
    let (mut answered, mut sent, mut withdrawn) = (Vec::new(), Vec::new(), Vec::new());
    while let Some(done) = calls.join_next().await {
        match done.unwrap() {
            (i, Ok(_)) => {
                assert_ne!(i % 4, 0, "call {i} should have timed out");
                answered.push(format!("query-status-{i}"));
            }
            (i, Err(Error::Timeout { sent: true, .. })) if i % 4 == 0 => {
                sent.push(format!("query-status-{i}"))
            }
            (i, Err(Error::Timeout { sent: false, .. })) if i % 4 == 0 => {
                withdrawn.push(format!("query-status-{i}"))
            }
            (i, Err(error)) => panic!("call {i}: {error}"),
        }
    }
    assert_eq!(answered.len(), 30);
    // Most of the calls that gave up did so while queued behind others.
    assert!(
        withdrawn.len() >= 5,
        "withdrawn {withdrawn:?}, sent {sent:?}"
    );
    drop(engine);
    let seen = tokio::time::timeout(Duration::from_secs(20), peer)
        .await
        .unwrap()
        .unwrap();
    let seen: Vec<&str> = seen
        .iter()
        .map(|r| r["execute"].as_str().unwrap())
        .collect();
    // Every request the peer saw is whole; those of calls that gave up
    // before a byte was written are not among them, those begun are.
    for name in answered.iter().chain(&sent) {
        assert!(seen.contains(&name.as_str()), "{name} never arrived");
    }
    for name in &withdrawn {
        assert!(
            !seen.contains(&name.as_str()),
            "{name} was sent after its call gave up"
        );
    }
    assert_eq!(seen.len(), answered.len() + sent.len());
}

#[test]
fn requests_the_flusher_is_writing_stay_and_those_queued_after_them_can_leave() {
    use super::outbox::{Outbox, Progress};
    let mut outbox = Outbox {
        writer: Writer::Lent,
        queued: Vec::new(),
        handed_over: true,
        exclusive: false,
        pending: VecDeque::new(),
        head_written: 0,
        in_write: 0,
        failed: None,
    };
    let push = |outbox: &mut Outbox, id: u64| {
        outbox
            .push(id, |out| {
                out.extend_from_slice(format!("<{id}>").as_bytes());
                Ok(())
            })
            .unwrap();
    };
    push(&mut outbox, 0);
    push(&mut outbox, 1);
    // The flusher takes what is queued out to write it (see `flush_some`).
    let taken = std::mem::take(&mut outbox.queued);
    outbox.in_write = taken.len();
    push(&mut outbox, 2);
    push(&mut outbox, 3);
    assert_eq!(outbox.withdraw(1), Progress::Sent);
    assert_eq!(outbox.withdraw(3), Progress::Withdrawn);
    assert_eq!(outbox.queued, b"<2>");
    assert!(outbox.is_queued(0) && outbox.is_queued(1) && outbox.is_queued(2));
    assert!(!outbox.is_queued(3));
}

/// The engine's settings for tests.
fn config(peer: Peer) -> EngineConfig {
    EngineConfig {
        peer,
        event_capacity: 1,
        direct: false,
        no_reply_grace: Duration::from_millis(200),
        recorder: None,
        keep_early_events: false,
    }
}

/// Takes a few bytes, then fails every write.
struct BreaksAfter(usize);

impl AsyncWrite for BreaksAfter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if self.0 == 0 {
            return Poll::Ready(Err(std::io::ErrorKind::BrokenPipe.into()));
        }
        let n = bytes.len().min(self.0);
        self.0 -= n;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[tokio::test]
async fn a_write_failure_ends_the_session_and_fails_every_call() {
    // The read side stays open: only writing breaks.
    let (ours, _theirs) = tokio::io::duplex(64);
    let engine = Engine::start(
        MessageReader::new(ours, Peer::Qmp, 1 << 20),
        Writer::Stream(Box::new(BreaksAfter(30))),
        &config(Peer::Qmp),
    );
    let (first, second) = tokio::join!(
        engine.call(request("query-status", Duration::from_secs(20))),
        engine.call(request("query-status", Duration::from_secs(20))),
    );
    for result in [first, second] {
        let error = result.unwrap_err();
        assert!(
            matches!(&error, Error::Disconnected { reason } if reason.contains("write failed")),
            "unexpected {error}"
        );
    }
    assert!(engine.is_closed());
    let later = engine
        .call(request("query-status", Duration::from_secs(20)))
        .await;
    assert!(matches!(later, Err(Error::Disconnected { .. })));
}

#[tokio::test]
async fn a_shorter_time_limit_after_a_longer_one_still_fires_first() {
    let (ours, theirs) = tokio::io::duplex(4096);
    let (read, write) = tokio::io::split(ours);
    let engine = Engine::start(
        MessageReader::new(read, Peer::Qga, 1 << 20),
        Writer::Stream(Box::new(write)),
        &config(Peer::Qga),
    );
    let started = Instant::now();
    let long = engine.call(request("guest-ping", Duration::from_secs(30)));
    let short = async {
        // Registered after the long call, with an earlier deadline.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let result = engine
            .call(request("guest-info", Duration::from_millis(100)))
            .await;
        (result, started.elapsed())
    };
    let answer = async {
        let mut theirs = theirs;
        let mut splitter = Splitter::new(1 << 20);
        let mut chunk = [0u8; 256];
        let mut first_id = None;
        while first_id.is_none() {
            let n = theirs.read(&mut chunk).await.unwrap();
            splitter.buffer_mut().extend_from_slice(&chunk[..n]);
            if let Some(Frame::Message(range)) = splitter.next_frame() {
                let request: serde_json::Value =
                    serde_json::from_slice(&splitter.buffer()[range]).unwrap();
                first_id = Some(request["id"].clone());
            }
        }
        // Answer the long call only after the short one has given up.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let reply = format!("{{\"return\": {{}}, \"id\": {}}}\n", first_id.unwrap());
        theirs.write_all(reply.as_bytes()).await.unwrap();
        theirs
    };
    let (long, (short, short_after), _theirs) = tokio::join!(long, short, answer);
    assert!(long.is_ok(), "{long:?}");
    match short {
        Err(Error::Timeout { command, after, .. }) => {
            assert_eq!(&*command, "guest-info");
            assert_eq!(after, Duration::from_millis(100));
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(
        short_after >= Duration::from_millis(115) && short_after < Duration::from_millis(1500),
        "timed out after {short_after:?}"
    );
}

/// What the general parse makes of a message that is a reply: the
/// return value's text and the id, if it has one that is ours.
fn general_parse(text: &str) -> Option<(String, Option<u64>)> {
    let incoming: Incoming = serde_json::from_str(text).ok()?;
    if incoming.event.is_some() || incoming.error.is_some() {
        return None;
    }
    let ret = incoming.ret?;
    Some((
        ret.get().to_owned(),
        incoming.id.and_then(|id| id.get().parse().ok()),
    ))
}

#[test]
fn plain_replies_parse_like_any_reply() {
    for (text, expected) in [
        (r#"{"return": {}, "id": 7}"#, Some(("{}", 7))),
        (
            r#"{"return": {"status": "running", "running": true}, "id": 4222124650659841}"#,
            Some((
                r#"{"status": "running", "running": true}"#,
                4_222_124_650_659_841,
            )),
        ),
        (r#"{"return": null, "id": 0}"#, Some(("null", 0))),
        (
            r#"{"return": "x\", \"id\": 5", "id": 6}"#,
            Some((r#""x\", \"id\": 5""#, 6)),
        ),
        (r#"{"return": 1, "id": 2, "id": 3}"#, None),
        (r#"{"return": {}, "x": 1, "id": 3}"#, None),
        (r#"{"return": {}, "id": 03}"#, None),
        (r#"{"return": {}, "id": 99999999999999999999}"#, None),
        (r#"{"return": {}, "id": "7"}"#, None),
        (r#"{"return": {"a" 1}, "id": 7}"#, None),
    ] {
        let got = plain_reply(text.as_bytes()).map(|(value, id)| (value.get(), id));
        assert_eq!(got, expected, "{text}");
        if let Some((value, id)) = got {
            assert_eq!(general_parse(text), Some((value.to_owned(), Some(id))));
        }
    }
}

proptest::proptest! {
    /// A direct call's text comparison with its reply's end takes
    /// exactly the plain replies that carry its id.
    #[test]
    fn reply_ends_match_like_parsed_ids(
        value in "[{}\\[\\]\":,a-z0-9 ]{0,10}",
        separator in proptest::sample::select(vec![", \"id\": ", ",\"id\":", ", \"id\": 0"]),
        sent in proptest::prop_oneof![0u64..1000, proptest::num::u64::ANY],
        id in proptest::prop_oneof![0u64..1000, proptest::num::u64::ANY],
    ) {
        let text = format!("{{\"return\": {value}{separator}{sent}}}");
        let by_text = text
            .as_bytes()
            .strip_prefix(b"{\"return\": ")
            .and_then(|rest| rest.strip_suffix(ReplyEnd::new(&IdText::new(id)).as_bytes()));
        let by_parse = plain_reply_parts(text.as_bytes())
            .filter(|&(_, reply_id)| reply_id == id)
            .map(|(value, _)| value);
        proptest::prop_assert_eq!(by_text, by_parse);
    }

    /// Whenever the fast path takes a message, the general parse
    /// agrees with it.
    #[test]
    fn the_fast_path_agrees_with_the_general_parse(
        value in "[{}\\[\\]\":,a-z0-9\\\\ ]{0,14}",
        separator in proptest::sample::select(vec![", \"id\": ", ",\"id\":", ", \"id\": 1, \"id\": ", ", \"x\": {}, \"id\": "]),
        id in "[0-9]{0,22}",
    ) {
        let text = format!("{{\"return\": {value}{separator}{id}}}");
        if let Some((value, id)) = plain_reply(text.as_bytes()) {
            proptest::prop_assert_eq!(general_parse(&text), Some((value.get().to_owned(), Some(id))));
        }
    }
}

#[test]
fn short_replies_are_kept_in_place_without_growing_a_reply() {
    // The in-place copy costs no room a reply does not have anyway.
    let size = std::mem::size_of::<Reply>();
    assert!(size <= std::mem::size_of::<Error>(), "{size}");
    let short = b"{\"return\": {}, \"id\": 4503599627370497}";
    let (value, _) = plain_reply_parts(short).unwrap();
    let plain = PlainReply::new(short, value);
    assert!(matches!(plain, PlainReply::Short { .. }));
    assert_eq!(plain.value(), b"{}");
    let long = format!("{{\"return\": \"{}\", \"id\": 1}}", "x".repeat(80));
    let (value, _) = plain_reply_parts(long.as_bytes()).unwrap();
    let plain = PlainReply::new(long.as_bytes(), value);
    assert!(matches!(plain, PlainReply::Long { .. }));
    assert_eq!(plain.message(), long.as_bytes());
    assert_eq!(plain.value().len(), 82);
}

#[test]
fn requests_encode_like_serde_json() {
    let ids = [
        0,
        7,
        10,
        99,
        100,
        101,
        12_345,
        4_222_124_650_659_841,
        u64::MAX,
    ];
    let names = ["query-status", "x\"y", "q_1-A", "é"];
    for (name, id) in names.iter().flat_map(|&name| ids.map(|id| (name, id))) {
        let mut out = Vec::new();
        let request = Request {
            arguments: Some(br#"{"a":1}"#),
            ..request(name, Duration::ZERO)
        };
        encode_request(&mut out, &request, &IdText::new(id)).unwrap();
        let expected = serde_json::json!({ "execute": name, "arguments": { "a": 1 }, "id": id });
        let got: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(got, expected);
        // Nothing after the closing brace: QEMU reads requests a byte
        // per system call.
        assert_eq!(out.last(), Some(&b'}'));
    }
    // The shortest request there is: `query-status` with a one-digit id.
    let mut out = Vec::new();
    encode_request(
        &mut out,
        &request("query-status", Duration::ZERO),
        &IdText::new(7),
    )
    .unwrap();
    assert_eq!(out, br#"{"execute":"query-status","id":7}"#);
}
