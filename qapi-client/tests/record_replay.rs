//! Record a session against real QEMU (10.0 on `PATH`) and real qemu-ga,
//! replay the recording with `qapi-testkit`, and drive the replay with the
//! same client code: the typed results must be the same, and the replay
//! must report that every request matched.

mod common;

use std::time::Duration;

use qapi_client::{Error, Qga, QgaBuilder, Qmp, QmpBuilder, Recorder};
use qapi_testkit::{Protocol, Replay, Transcript};
use qapi_types::commands as c;
use qapi_types::events::{JobStatusChange, Stop};
use qapi_types::{BlockdevOptions, BlockdevOptionsBranch, Event};

/// What a VM manager's code might do: queries, a node added (and added
/// again: an error reply), a block job awaited through its events, a pause
/// awaited through its event.  Returns every typed result, as text.
async fn qmp_scenario(qmp: &Qmp, image: &str) -> Vec<String> {
    let mut seen = Vec::new();
    let version = qmp.execute(&c::QueryVersion {}).await.unwrap();
    seen.push(format!("{version:?}"));
    seen.push(format!(
        "{:?}",
        qmp.execute(&c::QueryStatus {}).await.unwrap()
    ));
    let node = BlockdevOptions {
        node_name: Some("null0".into()),
        ..BlockdevOptions::new(BlockdevOptionsBranch::NullCo(Default::default()))
    };
    seen.push(format!(
        "{:?}",
        qmp.execute(&c::BlockdevAdd(node.clone())).await.unwrap()
    ));
    match qmp.execute(&c::BlockdevAdd(node)).await {
        Err(Error::Qmp(e)) => seen.push(format!("error {:?}: {}", e.class, e.desc)),
        other => panic!("adding the node twice: {other:?}"),
    }
    let mut jobs = qmp.events_named([JobStatusChange::NAME]);
    let concluded = common::create_image_with_a_job(qmp, &mut jobs, image).await;
    seen.push(format!("{:?}", concluded.event));
    let mut events = qmp.events();
    qmp.execute(&c::Stop {}).await.unwrap();
    let stop = events
        .wait_for::<Stop>(Duration::from_secs(10), |_| true)
        .await
        .unwrap();
    seen.push(format!("{:?}", stop.event));
    seen.push(format!(
        "{:?}",
        qmp.execute(&c::QueryStatus {}).await.unwrap()
    ));
    seen
}

#[tokio::test]
async fn a_recorded_qemu_session_replays_with_identical_typed_results() {
    let Some(qemu) = common::qemu(
        "a_recorded_qemu_session_replays_with_identical_typed_results",
        &["-M", "none"],
    ) else {
        return;
    };
    let image = qemu.dir.path().join("disk.img").display().to_string();
    let recorder = Recorder::in_memory();
    let qmp = QmpBuilder::new()
        .record(recorder.clone())
        .connect_unix(&qemu.socket)
        .await
        .unwrap();
    let live = qmp_scenario(&qmp, &image).await;
    drop(qmp);
    let text = recorder.text().unwrap();
    let transcript = Transcript::parse(&text).unwrap();
    assert_eq!(transcript.protocol, Some(Protocol::Qmp));
    let events = transcript
        .entries
        .iter()
        .filter(|e| e.message.get("event").is_some())
        .count();
    assert!(events >= 6, "job and STOP events recorded: {text}");

    let (stream, server) = Replay::new(transcript).check_schema().in_memory();
    let qmp = Qmp::builder().connect_stream(stream).await.unwrap();
    let replayed = qmp_scenario(&qmp, &image).await;
    drop(qmp);
    assert_eq!(replayed, live);
    let report = server.report().await;
    report.assert_clean();
    // Every request of the recording, the negotiation aside, was made.
    assert_eq!(report.matched, 8, "{report}");
    println!(
        "record/replay: QEMU session of {} messages ({events} events) replayed: {report}",
        text.lines().count() - 1
    );
}

async fn qga_scenario(qga: &Qga) -> Vec<String> {
    use qga_types::commands as g;
    let mut seen = vec![
        format!("{:?}", qga.execute(&g::GuestPing {}).await.unwrap()),
        format!("{:?}", qga.execute(&g::GuestInfo {}).await.unwrap()),
        format!("{:?}", qga.execute(&g::GuestGetHostName {}).await.unwrap()),
        format!("{:?}", qga.execute(&g::GuestGetOsinfo {}).await.unwrap()),
    ];
    // Not on the test agent's allow list: an error reply.
    match qga.execute(&g::GuestGetTime {}).await {
        Err(Error::Qmp(e)) => seen.push(format!("error {:?}: {}", e.class, e.desc)),
        other => panic!("a command the agent disables: {other:?}"),
    }
    seen
}

#[tokio::test]
async fn a_recorded_guest_agent_session_replays_with_identical_typed_results() {
    let Some(agent) =
        common::qemu_ga("a_recorded_guest_agent_session_replays_with_identical_typed_results")
    else {
        return;
    };
    let recorder = Recorder::in_memory();
    let qga = QgaBuilder::new()
        .record(recorder.clone())
        .connect_unix(agent.socket())
        .await
        .unwrap();
    let live = qga_scenario(&qga).await;
    drop(qga);
    let transcript = Transcript::parse(&recorder.text().unwrap()).unwrap();
    assert_eq!(transcript.protocol, Some(Protocol::Qga));

    let (stream, server) = Replay::new(transcript).check_schema().in_memory();
    let qga = Qga::builder().connect_stream(stream).await.unwrap();
    let replayed = qga_scenario(&qga).await;
    drop(qga);
    assert_eq!(replayed, live);
    let report = server.report().await;
    report.assert_clean();
    assert_eq!(report.matched, 5, "{report}");
}

/// A recording hides secrets as the `TRACE` log does, unless told not to.
#[tokio::test]
async fn recordings_hide_secrets_unless_told_to_keep_them() {
    use qapi_testkit::Script;
    use qapi_types::{SetPasswordOptions, SetPasswordOptionsVnc};
    for keep in [false, true] {
        let recorder = if keep {
            Recorder::in_memory().keep_secrets()
        } else {
            Recorder::in_memory()
        };
        let (stream, _fake) = Script::qmp().answer(serde_json::json!({})).in_memory();
        let qmp = QmpBuilder::new()
            .record(recorder.clone())
            .connect_stream(stream)
            .await
            .unwrap();
        qmp.execute(&c::SetPassword(SetPasswordOptions::new(
            "hunter2-secret",
            SetPasswordOptionsVnc::default().into(),
        )))
        .await
        .unwrap();
        let text = recorder.text().unwrap();
        assert_eq!(text.contains("hunter2-secret"), keep, "{text}");
        assert_eq!(!text.contains("<redacted>"), keep, "{text}");
        // Greeting, negotiation and its reply, the command and its reply.
        let transcript = Transcript::parse(&text).unwrap();
        assert_eq!(transcript.entries.len(), 5, "{text}");
    }
}

/// The recorded session checks clean against the live QEMU's own
/// `query-qmp-schema`, and arguments QEMU would refuse are named by path;
/// a member the bindings lack (QEMU 11.1's) checks against 11.1's schema.
#[tokio::test]
async fn a_recording_checks_against_the_live_qemus_introspection() {
    for (label, binary, _) in
        common::qemus("a_recording_checks_against_the_live_qemus_introspection")
    {
        let qemu = common::qemu_at(&binary, &["-M", "none"]);
        let image = qemu.dir.path().join("disk.img").display().to_string();
        let recorder = Recorder::in_memory();
        let qmp = QmpBuilder::new()
            .record(recorder.clone())
            .connect_unix(&qemu.socket)
            .await
            .unwrap();
        qmp_scenario(&qmp, &image).await;
        let document = qmp.execute_raw("query-qmp-schema", None).await.unwrap();
        let entities: Vec<qapi_introspect::Entity> = serde_json::from_value(document).unwrap();
        let schema = qapi_introspect::Schema::from_entities(entities);
        let transcript = Transcript::parse(&recorder.text().unwrap()).unwrap();
        let report = qapi_testkit::check::check_with_schema(&transcript, &schema);
        assert!(
            report.failed.is_empty() && report.unknown.is_empty(),
            "{label}: {report:?}"
        );
        assert!(report.decoded >= 20, "{label}: {report:?}");

        let problems = schema.check_arguments(
            "blockdev-add",
            &serde_json::json!({"driver": "nul-co", "node-name": "x"}),
        );
        let text = problems[0].to_string();
        assert!(
            text.starts_with("driver: unknown value 'nul-co'; expected one of ")
                && text.contains("null-co"),
            "{label}: {text}"
        );
        let problems = schema.check_arguments(
            "blockdev-add",
            &serde_json::json!({"driver": "null-co", "node-name": "x", "size": "big"}),
        );
        assert_eq!(
            problems.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["size: expected an integer, got string \"big\""],
            "{label}"
        );
        let version = &qmp.greeting().version.qemu;
        let poll_weight = schema.check_arguments(
            "object-add",
            &serde_json::json!({"qom-type": "iothread", "id": "io0", "poll-weight": 2}),
        );
        if (version.major, version.minor) >= (11, 1) {
            assert!(poll_weight.is_empty(), "{label}: {poll_weight:?}");
        } else {
            assert_eq!(poll_weight.len(), 1, "{label}: {poll_weight:?}");
            assert!(poll_weight[0]
                .to_string()
                .starts_with("poll-weight: unknown member"));
        }
        println!(
            "introspection check: QEMU {}.{}.{} ({label}): {} messages fit its schema",
            version.major, version.minor, version.micro, report.decoded
        );
    }
}
