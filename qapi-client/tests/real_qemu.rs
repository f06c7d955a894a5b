//! The QMP client against a real `qemu-system-x86_64` (see common/mod.rs
//! for how the binary is found and when these tests skip).

mod common;

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use qapi_client::{Error, Qmp};
use qapi_types::commands as c;
use qapi_types::{AnyEvent, QMPCapability, QapiErrorClass, RunState};

/// A small PC, paused, with one null-co disk so block queries have content.
const PC: &[&str] = &[
    "-M",
    "pc",
    "-S",
    "-m",
    "64",
    "-blockdev",
    "driver=null-co,node-name=disk0,size=1048576",
    "-device",
    "ide-hd,drive=disk0,bus=ide.0",
];

const NONE: &[&str] = &["-M", "none"];

#[tokio::test]
async fn greeting_and_capabilities() {
    let Some(qemu) = common::qemu("greeting_and_capabilities", NONE) else {
        return;
    };
    let qmp = Qmp::builder()
        .oob(true)
        .connect_unix(&qemu.socket)
        .await
        .unwrap();
    let greeting = qmp.greeting();
    assert!(greeting.version.qemu.major >= 7, "{:?}", greeting.version);
    assert!(greeting.capabilities.contains(&QMPCapability::Oob));
    assert!(qmp.oob_enabled());
    // exec-oob reaches QEMU: migrate-pause answers out of band (with an
    // error, as no migration is running).
    let paused = qmp.execute_oob(&c::MigratePause {}).await.unwrap_err();
    assert!(
        paused.as_qmp().is_some_and(|e| e.desc.contains("postcopy")),
        "{paused}"
    );
    // The greeting agrees with query-version.
    let version = qmp.execute(&c::QueryVersion {}).await.unwrap();
    assert_eq!(version, greeting.version);
    // Without asking for oob it stays off, and exec-oob is refused locally.
    // (QEMU serves one client per QMP socket: disconnect the first.)
    drop(qmp);
    let plain = Qmp::connect_unix(&qemu.socket).await.unwrap();
    assert!(!plain.oob_enabled());
    let refused = plain.execute_oob(&c::MigratePause {}).await;
    assert!(matches!(refused, Err(Error::Unsupported(_))), "{refused:?}");
}

#[tokio::test]
async fn query_matrix_decodes_typed_replies() {
    let Some(qemu) = common::qemu("query_matrix_decodes_typed_replies", PC) else {
        return;
    };
    let qmp = Qmp::connect_unix(&qemu.socket).await.unwrap();
    let outcomes = common::matrix::run(&qmp).await;
    let mut decoded = 0;
    for outcome in &outcomes {
        match &outcome.result {
            Ok(summary) => {
                decoded += 1;
                eprintln!("  {}: {summary}", outcome.command);
            }
            // Commands newer than this QEMU (the compat tests check these
            // against the schema report).
            Err(e) if e.is_class(&QapiErrorClass::CommandNotFound) => {
                eprintln!("  {}: not in this QEMU", outcome.command);
            }
            Err(e) => panic!("{}: {e}", outcome.command),
        }
    }
    let v = &qmp.greeting().version.qemu;
    eprintln!(
        "{decoded} of {} typed query replies decoded from real QEMU {}.{}.{}",
        outcomes.len(),
        v.major,
        v.minor,
        v.micro
    );
    assert!(decoded >= 30);

    // Spot checks that the typed values carry real content.
    let status = qmp.execute(&c::QueryStatus {}).await.unwrap();
    assert_eq!(status.status, RunState::Prelaunch);
    let block = qmp.execute_raw("query-block", None).await.unwrap();
    assert_eq!(block[0]["inserted"]["node-name"], "disk0", "{block}");
    let commands = qmp.execute(&c::QueryCommands {}).await.unwrap();
    assert!(commands.len() > 150, "{} commands", commands.len());
    let schema = qmp.execute(&c::QueryQmpSchema {}).await.unwrap();
    assert!(schema.len() > 1000, "{} schema entries", schema.len());
    let machines = qmp
        .execute(&c::QueryMachines { compat_props: None })
        .await
        .unwrap();
    assert!(
        machines.iter().any(|m| m.name.starts_with("pc-i440fx")),
        "{machines:?}"
    );
}

#[tokio::test]
async fn stop_and_cont_emit_events() {
    let Some(qemu) = common::qemu("stop_and_cont_emit_events", NONE) else {
        return;
    };
    let qmp = Qmp::connect_unix(&qemu.socket).await.unwrap();
    let mut events = qmp.events();
    qmp.execute(&c::Stop {}).await.unwrap();
    let stop = tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .expect("STOP within 5 s")
        .expect("stream open")
        .unwrap();
    assert!(matches!(stop.event, AnyEvent::Stop), "{stop:?}");
    assert!(stop.timestamp.seconds > 0);
    assert!(!qmp.execute(&c::QueryStatus {}).await.unwrap().running);
    qmp.execute(&c::Cont {}).await.unwrap();
    let resume = tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .expect("RESUME within 5 s")
        .expect("stream open")
        .unwrap();
    assert!(matches!(resume.event, AnyEvent::Resume), "{resume:?}");
    assert!(qmp.execute(&c::QueryStatus {}).await.unwrap().running);

    // quit: SHUTDOWN, the reply, then end of stream; the events stream ends.
    qmp.execute(&c::Quit {}).await.unwrap();
    let shutdown = tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .expect("SHUTDOWN within 5 s")
        .expect("stream open")
        .unwrap();
    assert!(
        matches!(shutdown.event, AnyEvent::Shutdown(_)),
        "{shutdown:?}"
    );
    let end = tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .expect("stream ends within 5 s");
    assert!(end.is_none(), "{end:?}");
    let after = qmp.execute(&c::QueryStatus {}).await;
    assert!(
        matches!(after, Err(Error::Disconnected { .. })),
        "{after:?}"
    );
}

#[tokio::test]
async fn error_replies_are_typed() {
    let Some(qemu) = common::qemu("error_replies_are_typed", NONE) else {
        return;
    };
    let qmp = Qmp::connect_unix(&qemu.socket).await.unwrap();
    let missing = qmp.execute_raw("no-such-command", None).await.unwrap_err();
    assert!(
        missing.is_class(&QapiErrorClass::CommandNotFound),
        "{missing}"
    );
    let balloon = qmp.execute(&c::QueryBalloon {}).await.unwrap_err();
    assert!(
        balloon.is_class(&QapiErrorClass::DeviceNotActive),
        "{balloon}"
    );
    let generic = qmp
        .execute(&c::QomGet {
            path: "/nowhere".into(),
            property: "x".into(),
        })
        .await
        .unwrap_err();
    let qmp_error = generic.as_qmp().expect("an error reply");
    assert!(qmp_error.desc.contains("/nowhere"), "{qmp_error}");
    // The session is still usable after error replies.
    assert!(qmp.execute(&c::QueryStatus {}).await.unwrap().running);
    // The untyped escape hatch returns JSON.
    let raw = qmp.execute_raw("query-target", None).await.unwrap();
    assert_eq!(raw["arch"], "x86_64");
}

#[tokio::test]
async fn a_thousand_pipelined_commands_from_eight_tasks() {
    let Some(qemu) = common::qemu("a_thousand_pipelined_commands_from_eight_tasks", NONE) else {
        return;
    };
    let qmp = Qmp::connect_unix(&qemu.socket).await.unwrap();
    // Replies that depend on the request, so a mix-up cannot go unseen.
    let options: Vec<String> = qmp
        .execute(&c::QueryCommandLineOptions { option: None })
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.option)
        .collect();
    assert!(options.len() > 8);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..8 {
        let qmp = qmp.clone();
        let options = options.clone();
        tasks.spawn(async move {
            let mut calls = tokio::task::JoinSet::new();
            for i in 0..125 {
                let qmp = qmp.clone();
                let option = options[(task * 125 + i) % options.len()].clone();
                calls.spawn(async move {
                    let reply = qmp
                        .execute(&c::QueryCommandLineOptions {
                            option: Some(option.clone()),
                        })
                        .await
                        .unwrap();
                    assert_eq!(reply.len(), 1);
                    assert_eq!(reply[0].option, option);
                });
            }
            let mut done = 0;
            while let Some(result) = calls.join_next().await {
                result.unwrap();
                done += 1;
            }
            done
        });
    }
    let mut total = 0;
    while let Some(done) = tasks.join_next().await {
        total += done.unwrap();
    }
    assert_eq!(total, 1000);
    eprintln!(
        "1000 pipelined commands answered in {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn add_fd_passes_a_real_descriptor() {
    let Some(qemu) = common::qemu("add_fd_passes_a_real_descriptor", NONE) else {
        return;
    };
    let qmp = Qmp::connect_unix(&qemu.socket).await.unwrap();
    let file = tempfile::tempfile().unwrap();
    let added = qmp
        .execute_with_fds(
            &c::AddFd {
                fdset_id: Some(7),
                opaque: Some("from the test".into()),
            },
            &[file.as_fd()],
        )
        .await
        .unwrap();
    assert_eq!(added.fdset_id, 7);
    let fdsets = qmp.execute(&c::QueryFdsets {}).await.unwrap();
    let set = fdsets
        .iter()
        .find(|s| s.fdset_id == 7)
        .expect("fdset 7 listed");
    assert!(
        set.fds
            .iter()
            .any(|fd| fd.fd == added.fd && fd.opaque.as_deref() == Some("from the test")),
        "{fdsets:?}"
    );

    // getfd the same way; closefd proves QEMU holds it under that name.
    qmp.execute_with_fds(
        &c::Getfd {
            fdname: "passed".into(),
        },
        &[file.as_fd()],
    )
    .await
    .unwrap();
    qmp.execute(&c::Closefd {
        fdname: "passed".into(),
    })
    .await
    .unwrap();
    // Without a descriptor QEMU says so.
    let missing = qmp
        .execute(&c::Getfd {
            fdname: "none".into(),
        })
        .await
        .unwrap_err();
    assert!(
        missing
            .to_string()
            .contains("No file descriptor supplied via SCM_RIGHTS"),
        "{missing}"
    );
}

#[tokio::test]
async fn qemu_killed_mid_command_fails_the_call_promptly() {
    let Some(qemu) = common::qemu("qemu_killed_mid_command_fails_the_call_promptly", NONE) else {
        return;
    };
    let qmp = Qmp::connect_unix(&qemu.socket).await.unwrap();
    let mut events = qmp.events();
    // Freeze QEMU so the command stays pending, then kill it.
    qemu.signal("STOP");
    let pending = tokio::spawn({
        let qmp = qmp.clone();
        async move { qmp.execute(&c::QueryStatus {}).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!pending.is_finished(), "QEMU answered while stopped");
    let killed = Instant::now();
    qemu.signal("KILL");
    let result = tokio::time::timeout(Duration::from_secs(1), pending)
        .await
        .expect("the pending call failed within a second")
        .unwrap();
    assert!(
        matches!(result, Err(Error::Disconnected { .. })),
        "{result:?}"
    );
    eprintln!("pending call failed {:?} after the kill", killed.elapsed());
    let end = tokio::time::timeout(Duration::from_secs(1), events.recv())
        .await
        .unwrap();
    assert!(end.is_none());
    assert!(qmp.is_closed());
}

#[test]
fn blocking_session_with_events() {
    let Some(qemu) = common::qemu("blocking_session_with_events", NONE) else {
        return;
    };
    let qmp = qapi_client::blocking::Qmp::connect_unix(&qemu.socket).unwrap();
    let mut events = qmp.events();
    let status = qmp.execute(&c::QueryStatus {}).unwrap();
    assert!(status.running);
    qmp.execute(&c::Stop {}).unwrap();
    let event = events
        .recv_timeout(Duration::from_secs(5))
        .unwrap()
        .unwrap();
    assert!(matches!(event.event, AnyEvent::Stop));
    // Calls from several threads on clones of one session.
    std::thread::scope(|scope| {
        for _ in 0..4 {
            let qmp = qmp.clone();
            scope.spawn(move || {
                for _ in 0..25 {
                    assert!(!qmp.execute(&c::QueryStatus {}).unwrap().running);
                }
            });
        }
    });
    let error = qmp.execute_raw("no-such-command", None).unwrap_err();
    assert!(error.is_class(&QapiErrorClass::CommandNotFound));
}

#[tokio::test]
async fn tcp_sessions_work_and_refuse_descriptors() {
    let Some((_qemu, port)) =
        common::qemu_with_tcp_monitor("tcp_sessions_work_and_refuse_descriptors")
    else {
        return;
    };
    let qmp = Qmp::builder()
        .connect_tcp(("127.0.0.1", port))
        .await
        .unwrap();
    assert!(qmp.execute(&c::QueryStatus {}).await.unwrap().running);
    let file = tempfile::tempfile().unwrap();
    let refused = qmp
        .execute_with_fds(&c::Getfd { fdname: "x".into() }, &[file.as_fd()])
        .await
        .unwrap_err();
    assert!(matches!(refused, Error::Unsupported(_)), "{refused:?}");
}
