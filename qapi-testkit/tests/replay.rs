//! The replay server driven by `qapi-client`, without QEMU: libvirt's
//! format, strict and loose matching, the guest agent's sync and
//! no-reply commands, schema refusals, and a client that sends junk.

use std::time::Duration;

use qapi_client::{Qga, Qmp};
use qapi_testkit::{Replay, Report, Transcript};
use qapi_types::commands as c;
use serde_json::json;

/// A handful of exchanges as libvirt records them in its `.replies` files
/// (QEMU 10.0.2, `-M none`): pretty-printed, a blank line between, ids
/// `libvirt-N`, no greeting.
const LIBVIRT_REPLIES: &str = r#"{
  "execute": "qmp_capabilities",
  "id": "libvirt-1"
}

{
  "return": {
  },
  "id": "libvirt-1"
}

{
  "execute": "query-version",
  "id": "libvirt-2"
}

{
  "return": {
    "qemu": {
      "micro": 2,
      "minor": 0,
      "major": 10
    },
    "package": "Debian 1:10.0.2+ds-2+deb13u1~bpo12+1"
  },
  "id": "libvirt-2"
}

{
  "execute": "query-target",
  "id": "libvirt-3"
}

{
  "return": {
    "arch": "x86_64"
  },
  "id": "libvirt-3"
}

{
  "execute": "query-kvm",
  "id": "libvirt-4"
}

{
  "return": {
    "enabled": false,
    "present": true
  },
  "id": "libvirt-4"
}

{
  "execute": "qom-list-properties",
  "arguments": {
    "typename": "no-such-type"
  },
  "id": "libvirt-5"
}

{
  "error": {
    "class": "GenericError",
    "desc": "Class 'no-such-type' not found"
  },
  "id": "libvirt-5"
}
"#;

async fn connect(replay: &Replay) -> (Qmp, qapi_testkit::replay::ReplayTask) {
    let (stream, server) = replay.in_memory();
    let qmp = Qmp::builder().connect_stream(stream).await.unwrap();
    (qmp, server)
}

async fn finish(qmp: Qmp, server: qapi_testkit::replay::ReplayTask) -> Report {
    drop(qmp);
    tokio::time::timeout(Duration::from_secs(5), server.report())
        .await
        .expect("the replay ends when the client hangs up")
}

#[tokio::test]
async fn a_libvirt_replies_file_replays_and_checks_clean() {
    let transcript = Transcript::parse(LIBVIRT_REPLIES).unwrap();
    let check = qapi_testkit::check::check(&transcript);
    assert!(
        check.failed.is_empty() && check.unknown.is_empty(),
        "{check:?}"
    );
    assert_eq!(check.decoded, 10);

    let (qmp, server) = connect(&Replay::new(transcript)).await;
    // Made up, as libvirt's files have no greeting.
    assert_eq!(qmp.greeting().version.qemu.major, 10);
    let version = qmp.execute(&c::QueryVersion {}).await.unwrap();
    assert_eq!(
        (version.qemu.major, version.qemu.minor, version.qemu.micro),
        (10, 0, 2)
    );
    assert_eq!(
        qmp.execute(&c::QueryTarget {}).await.unwrap().arch,
        qapi_types::SysEmuTarget::X8664
    );
    let kvm = qmp.execute(&c::QueryKvm {}).await.unwrap();
    assert!(kvm.present && !kvm.enabled);
    let error = qmp
        .execute(&c::QomListProperties::new("no-such-type"))
        .await
        .unwrap_err();
    assert_eq!(
        error.as_qmp().unwrap().desc,
        "Class 'no-such-type' not found"
    );
    let report = finish(qmp, server).await;
    report.assert_clean();
    assert_eq!(report.matched, 4);
}

#[tokio::test]
async fn a_request_out_of_order_gets_a_mismatch_error_and_is_reported() {
    let transcript = Transcript::parse(LIBVIRT_REPLIES).unwrap();
    let (qmp, server) = connect(&Replay::new(transcript)).await;
    // query-target before query-version.
    let error = qmp.execute(&c::QueryTarget {}).await.unwrap_err();
    let desc = &error.as_qmp().expect("an error reply").desc;
    assert_eq!(
        desc,
        "qapi-mock: expected query-version {} (transcript line 12), got query-target {}"
    );
    // The transcript did not move: what it expects still works.
    qmp.execute(&c::QueryVersion {}).await.unwrap();
    qmp.execute(&c::QueryTarget {}).await.unwrap();
    let report = finish(qmp, server).await;
    assert!(!report.is_clean());
    assert_eq!(report.mismatches.len(), 1);
    assert_eq!(report.mismatches[0].got["execute"], "query-target");
    assert_eq!(
        report.mismatches[0].expected.as_ref().unwrap().command,
        "query-version"
    );
    let unused: Vec<&str> = report.unused.iter().map(|e| e.command.as_str()).collect();
    assert_eq!(unused, ["query-kvm", "qom-list-properties"]);
    let text = report.to_string();
    assert!(
        text.contains("mismatch: got {\"execute\":\"query-target\"")
            && text.contains("never made: query-kvm {} (transcript line 41)"),
        "{text}"
    );
}

#[tokio::test]
async fn loose_modes_take_any_order_any_arguments_and_fallbacks() {
    let transcript = Transcript::parse(LIBVIRT_REPLIES).unwrap();
    let replay = Replay::new(transcript)
        .any_order()
        .ignore_arguments()
        .fallback(
            "query-status",
            json!({"running": true, "status": "running"}),
        );
    let (qmp, server) = connect(&replay).await;
    qmp.execute(&c::QueryKvm {}).await.unwrap();
    qmp.execute(&c::QueryVersion {}).await.unwrap();
    // Other arguments, the recorded reply.
    let error = qmp
        .execute(&c::QomListProperties::new("other"))
        .await
        .unwrap_err();
    assert!(error.as_qmp().unwrap().desc.contains("no-such-type"));
    for _ in 0..2 {
        assert!(qmp.execute(&c::QueryStatus {}).await.unwrap().running);
    }
    // Once answered, a request of the transcript is used up.
    let error = qmp.execute(&c::QueryKvm {}).await.unwrap_err();
    assert!(
        error
            .as_qmp()
            .unwrap()
            .desc
            .contains("no request of the transcript matches query-kvm"),
        "{error}"
    );
    let report = finish(qmp, server).await;
    assert_eq!(
        (report.matched, report.fallbacks, report.mismatches.len()),
        (3, 2, 1)
    );
    assert_eq!(report.unused.len(), 1, "{report}");
}

#[tokio::test]
async fn the_schema_check_refuses_bad_arguments_before_matching() {
    let transcript = Transcript::parse(LIBVIRT_REPLIES).unwrap();
    let (qmp, server) = connect(&Replay::new(transcript).check_schema()).await;
    let raw = qmp
        .execute_raw("query-version", Some(&json!({"extra": 1})))
        .await
        .unwrap_err();
    let desc = &raw.as_qmp().unwrap().desc;
    assert!(
        desc.starts_with("qapi-mock: query-version: the arguments do not match the schema"),
        "{desc}"
    );
    let report = finish(qmp, server).await;
    assert_eq!(report.rejected.len(), 1);
    assert_eq!(report.matched, 0);
}

#[tokio::test]
async fn events_go_out_where_the_transcript_has_them() {
    let transcript = Transcript::parse(
        r#"
-> { "execute": "stop" }
<- { "event": "STOP", "timestamp": { "seconds": 1, "microseconds": 2 } }
<- { "return": {} }
-> { "execute": "cont" }
<- { "return": {} }
<- { "event": "RESUME", "timestamp": { "seconds": 3, "microseconds": 4 } }
"#,
    )
    .unwrap();
    let (qmp, server) = connect(&Replay::new(transcript)).await;
    let mut events = qmp.events();
    qmp.execute(&c::Stop {}).await.unwrap();
    let stop = events.recv().await.unwrap().unwrap();
    assert_eq!(stop.timestamp.seconds, 1);
    qmp.execute(&c::Cont {}).await.unwrap();
    let resume = events.recv().await.unwrap().unwrap();
    assert_eq!(resume.timestamp.seconds, 3);
    finish(qmp, server).await.assert_clean();
}

#[tokio::test]
async fn a_guest_agent_transcript_replays_the_sync_and_silence() {
    // Recorded syncs carry another random value than the next client's:
    // the replay answers syncs itself and does not expect them.
    let transcript = Transcript::parse(
        r#"{"qapi-transcript":1,"protocol":"qga"}
{"from":"client","message":{"execute":"guest-sync-delimited","arguments":{"id":1234567890123},"id":1099511627776}}
{"from":"server","message":{"return":1234567890123,"id":1099511627776}}
{"from":"client","message":{"execute":"guest-ping","id":0}}
{"from":"server","message":{"return":{},"id":0}}
{"from":"client","message":{"execute":"guest-shutdown","arguments":{"mode":"powerdown"},"id":1}}
"#,
    )
    .unwrap();
    let (stream, server) = Replay::new(transcript).in_memory();
    let qga = Qga::builder()
        .no_reply_grace(Duration::from_millis(100))
        .connect_stream(stream)
        .await
        .unwrap();
    assert!(qga.echoes_ids());
    qga.execute(&qga_types::commands::GuestPing {})
        .await
        .unwrap();
    // No reply recorded: none sent, and the call succeeds after its grace.
    qga.execute(&qga_types::commands::GuestShutdown {
        mode: Some("powerdown".into()),
    })
    .await
    .unwrap();
    drop(qga);
    let report = tokio::time::timeout(Duration::from_secs(5), server.report())
        .await
        .unwrap();
    report.assert_clean();
    assert_eq!(report.matched, 2);
}

#[tokio::test]
async fn junk_from_the_client_ends_the_replay_with_a_stream_error() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut stream, server) = Replay::new(Transcript::default()).in_memory();
    let mut greeting = Vec::new();
    while !greeting.ends_with(b"\r\n") {
        greeting.push(stream.read_u8().await.unwrap());
    }
    assert!(greeting.starts_with(b"{\"QMP\""));
    stream
        .write_all(b"{\"execute\":\"qmp_capabilities\"}\nnot json")
        .await
        .unwrap();
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).await.unwrap();
    assert_eq!(rest, b"{\"return\":{}}\r\n");
    let report = server.report().await;
    assert_eq!(
        report.stream_error.as_deref(),
        Some("byte 31 of the client's stream is 0x6e, which cannot start a request")
    );
}
