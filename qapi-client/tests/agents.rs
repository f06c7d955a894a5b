//! Guest agents as they are in the field, on fake agents (Unix sockets):
//! agents that do not echo request ids (qemu-ga before 2.12), and commands
//! that answer only on failure (`guest-shutdown`) met with silence, an
//! error or a closed channel; also through the `qga` example tool, whose
//! exit statuses (0 success, 1 error reply, 2 anything else) must hold.

mod common;

use std::io::Write;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use qapi_client::{Error, Qga, QgaBuilder};
use qga_types::commands as g;
use serde_json::{json, Value};

/// What a fake agent does with a request (the sync aside).
enum Answer {
    Return(Value),
    Error(&'static str),
    /// Nothing: as qemu-ga does for `guest-shutdown` that worked.
    Silence,
    /// Answers after a while.
    Late(Duration, Value),
    /// Closes the channel, as a guest going down does.
    Close,
}

/// What a fake agent saw.
#[derive(Default)]
struct Seen {
    commands: Vec<String>,
    /// A request arrived while the one before it was unanswered.
    pipelined: bool,
}

/// A fake agent on a fresh socket, serving every connection in turn:
/// answers `guest-sync-delimited` (0xFF first) and every other request as
/// `answer` says, with the request's id only if `echo_ids`.
fn fake_agent(
    echo_ids: bool,
    answer: impl Fn(&str) -> Answer + Send + 'static,
) -> (tempfile::TempDir, PathBuf, Arc<Mutex<Seen>>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("qga.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let log = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            serve(stream, echo_ids, &answer, &log);
        }
    });
    (dir, path, seen)
}

/// Serves one connection until the client or `answer` closes it.
fn serve(stream: UnixStream, echo_ids: bool, answer: &impl Fn(&str) -> Answer, seen: &Mutex<Seen>) {
    let mut reader = stream.try_clone().unwrap();
    let mut writer = stream;
    let mut requests = common::wire::Requests::new();
    while let Some(request) = requests.read(&mut reader) {
        let name = request["execute"].as_str().unwrap_or("").to_owned();
        seen.lock().unwrap().commands.push(name.clone());
        let reply = |body: Value| {
            let mut message = body;
            if echo_ids {
                message["id"] = request["id"].clone();
            }
            format!("{message}\n")
        };
        let out = if name == "guest-sync-delimited" {
            let mut out = vec![0xFF];
            out.extend(reply(json!({ "return": request["arguments"]["id"] })).into_bytes());
            out
        } else {
            match answer(&name) {
                Answer::Return(value) => reply(json!({ "return": value })).into_bytes(),
                Answer::Error(desc) => {
                    reply(json!({ "error": { "class": "GenericError", "desc": desc } }))
                        .into_bytes()
                }
                Answer::Silence => continue,
                Answer::Late(after, value) => {
                    std::thread::sleep(after);
                    reply(json!({ "return": value })).into_bytes()
                }
                Answer::Close => return,
            }
        };
        // A client that takes turns sends nothing more until answered.
        std::thread::sleep(Duration::from_millis(5));
        let mut probe = [0u8; 1];
        let flags = rustix::net::RecvFlags::PEEK | rustix::net::RecvFlags::DONTWAIT;
        if matches!(rustix::net::recv(&reader, &mut probe, flags), Ok((n, _)) if n > 0) {
            seen.lock().unwrap().pipelined = true;
        }
        if writer.write_all(&out).is_err() {
            return;
        }
    }
}

fn agent_info() -> Value {
    json!({ "version": "2.8.0", "supported_commands": [] })
}

/// An old agent: answers everything, without ids.
fn old_agent(name: &str) -> Answer {
    match name {
        "guest-info" => Answer::Return(agent_info()),
        "guest-ping" => Answer::Return(json!({})),
        "guest-get-time" => Answer::Late(Duration::from_millis(600), json!(1_700_000_000)),
        "guest-file-open" => Answer::Error("Permission denied"),
        "guest-shutdown" => Answer::Silence,
        _ => Answer::Error("Command not found"),
    }
}

#[tokio::test]
async fn an_agent_without_ids_is_found_out_at_sync_and_calls_take_turns() {
    let (_dir, path, seen) = fake_agent(false, old_agent);
    let qga = Qga::connect_unix(&path).await.unwrap();
    assert!(!qga.echoes_ids());
    // Many tasks at once: each gets its own reply, one on the wire at a time.
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..12 {
        let qga = qga.clone();
        calls.spawn(async move {
            if i % 2 == 0 {
                qga.execute(&g::GuestInfo {}).await.map(|info| info.version)
            } else {
                qga.execute(&g::GuestPing {})
                    .await
                    .map(|_| "ping".to_owned())
            }
        });
    }
    let mut versions = 0;
    while let Some(done) = calls.join_next().await {
        if done.unwrap().unwrap() == "2.8.0" {
            versions += 1;
        }
    }
    assert_eq!(versions, 6);
    // A refused command is the call's error reply.
    let refused = qga
        .execute(&g::GuestFileOpen::new("/etc/shadow"))
        .await
        .unwrap_err();
    assert_eq!(
        refused.as_qmp().unwrap().desc,
        "Permission denied",
        "{refused}"
    );
    let seen = seen.lock().unwrap();
    assert!(
        !seen.pipelined,
        "requests were pipelined: {:?}",
        seen.commands
    );
    assert_eq!(qga.unclaimed_errors(), 0);
}

#[tokio::test]
async fn after_a_call_gives_up_an_agent_without_ids_is_synced_before_the_next() {
    let (_dir, path, seen) = fake_agent(false, old_agent);
    let qga = QgaBuilder::new().connect_unix(&path).await.unwrap();
    // Answered 600 ms later: that reply must not be taken for the next call's.
    let late = qga
        .with_timeout(Duration::from_millis(100))
        .execute(&g::GuestGetTime {})
        .await
        .unwrap_err();
    assert!(
        matches!(late, Error::Timeout { sent: true, .. }),
        "{late:?}"
    );
    let info = qga.execute(&g::GuestInfo {}).await.unwrap();
    assert_eq!(info.version, "2.8.0");
    let commands = seen.lock().unwrap().commands.clone();
    assert_eq!(
        commands,
        [
            "guest-sync-delimited",
            "guest-get-time",
            "guest-sync-delimited",
            "guest-info"
        ]
    );
}

#[tokio::test]
async fn an_agent_that_echoes_ids_is_pipelined() {
    let (_dir, path, _) = fake_agent(true, old_agent);
    let qga = Qga::connect_unix(&path).await.unwrap();
    assert!(qga.echoes_ids());
    let (a, b) = tokio::join!(qga.execute(&g::GuestInfo {}), qga.execute(&g::GuestPing {}));
    assert_eq!(a.unwrap().version, "2.8.0");
    b.unwrap();
}

/// `guest-shutdown` as an agent that echoes ids or not meets it: with
/// `answer`, typed and untyped.
async fn shutdown(echo_ids: bool, answer: fn(&str) -> Answer) -> Vec<qapi_client::Result<()>> {
    let (_dir, path, _) = fake_agent(echo_ids, answer);
    let mut results = Vec::new();
    for typed in [true, false] {
        let qga = QgaBuilder::new()
            .no_reply_grace(Duration::from_millis(300))
            .connect_unix(&path)
            .await
            .unwrap();
        let started = Instant::now();
        let result = if typed {
            qga.execute(&g::GuestShutdown::default()).await.map(drop)
        } else {
            qga.execute_raw("guest-shutdown", None).await.map(|value| {
                assert_eq!(value, json!({}));
            })
        };
        assert!(started.elapsed() < Duration::from_secs(3), "{result:?}");
        results.push(result);
    }
    results
}

#[tokio::test]
async fn guest_shutdown_met_with_silence_succeeds_after_the_grace_period() {
    for echo_ids in [true, false] {
        for result in shutdown(echo_ids, |_| Answer::Silence).await {
            result.unwrap();
        }
    }
}

#[tokio::test]
async fn guest_shutdown_refused_fails_with_the_error() {
    for echo_ids in [true, false] {
        for result in shutdown(echo_ids, |_| Answer::Error("shutdown refused")).await {
            let error = result.unwrap_err();
            assert_eq!(error.as_qmp().unwrap().desc, "shutdown refused");
        }
    }
}

#[tokio::test]
async fn guest_shutdown_met_with_a_closed_channel_succeeds() {
    for echo_ids in [true, false] {
        for result in shutdown(echo_ids, |_| Answer::Close).await {
            result.unwrap();
        }
    }
}

fn qga_tool(socket: &Path, command: &str) -> std::process::Output {
    let exe = std::env::current_exe().unwrap();
    let tool = exe.parent().unwrap().parent().unwrap().join("examples/qga");
    assert!(
        tool.is_file(),
        "{tool:?} not built (cargo test builds examples)"
    );
    Command::new(tool)
        .args(["--timeout", "5"])
        .arg(socket)
        .arg(command)
        .output()
        .unwrap()
}

/// An agent (echoing ids or not, answering so), the command run, and the
/// tool's expected exit status.
type ToolCase = (bool, fn(&str) -> Answer, &'static str, i32);

#[test]
fn the_qga_tool_keeps_its_exit_statuses_with_old_agents_and_no_reply_commands() {
    let cases: [ToolCase; 7] = [
        (false, old_agent, "guest-info", 0),
        (false, old_agent, "guest-file-open", 1),
        (
            false,
            |_| Answer::Error("Permission denied"),
            "guest-ping",
            1,
        ),
        (false, old_agent, "guest-shutdown", 0),
        (true, |_| Answer::Silence, "guest-shutdown", 0),
        (
            true,
            |_| Answer::Error("shutdown refused"),
            "guest-shutdown",
            1,
        ),
        (true, |_| Answer::Close, "guest-shutdown", 0),
    ];
    for (echo_ids, answer, command, status) in cases {
        let (_dir, path, _) = fake_agent(echo_ids, answer);
        let out = qga_tool(&path, command);
        assert_eq!(
            out.status.code(),
            Some(status),
            "{command} (ids echoed: {echo_ids}): {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn a_blocking_session_works_with_an_agent_without_ids() {
    let (_dir, path, seen) = fake_agent(false, old_agent);
    let qga = qapi_client::blocking::Qga::connect_unix(&path).unwrap();
    assert!(!qga.echoes_ids());
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let qga = qga.clone();
            std::thread::spawn(move || qga.execute(&g::GuestInfo {}).unwrap().version)
        })
        .collect();
    for thread in threads {
        assert_eq!(thread.join().unwrap(), "2.8.0");
    }
    assert!(!seen.lock().unwrap().pipelined);
    // (The sync after a call that gave up goes out while the agent still
    // works on that call: that is what the sync is for.)
    let late = qga
        .with_timeout(Duration::from_millis(100))
        .execute(&g::GuestGetTime {})
        .unwrap_err();
    assert!(
        matches!(late, Error::Timeout { sent: true, .. }),
        "{late:?}"
    );
    assert_eq!(qga.execute(&g::GuestInfo {}).unwrap().version, "2.8.0");
}
