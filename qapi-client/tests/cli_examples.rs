//! The `qmp` and `qga` example tools: output and exit statuses, against
//! real QEMU / qemu-ga where needed (cargo builds examples before tests).

mod common;

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn example(name: &str) -> PathBuf {
    // target/<profile>/deps/<test binary> → target/<profile>/examples/<name>
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join(name);
    assert!(
        path.is_file(),
        "{path:?} not built (cargo test builds examples)"
    );
    path
}

fn run(name: &str, args: &[&str]) -> Output {
    Command::new(example(name)).args(args).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn qmp_tool_exit_statuses() {
    let Some(qemu) = common::qemu("qmp_tool_exit_statuses", &["-M", "none"]) else {
        return;
    };
    let socket = qemu.socket.to_str().unwrap();
    let ok = run("qmp", &[socket, "query-status"]);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok.stderr));
    let reply: serde_json::Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(reply["running"], true);

    let typed = run(
        "qmp",
        &[
            socket,
            "query-command-line-options",
            r#"{"option": "machine"}"#,
        ],
    );
    assert_eq!(typed.status.code(), Some(0), "{}", text(&typed.stderr));
    let wrong = run(
        "qmp",
        &[socket, "query-command-line-options", r#"{"opshun": 1}"#],
    );
    assert_eq!(wrong.status.code(), Some(2));
    assert!(
        text(&wrong.stderr).contains("do not fit"),
        "{}",
        text(&wrong.stderr)
    );

    let missing = run("qmp", &[socket, "no-such-command"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        text(&missing.stderr).starts_with("CommandNotFound: "),
        "{}",
        text(&missing.stderr)
    );

    let untyped = run("qmp", &[socket, "query-target"]);
    assert_eq!(untyped.status.code(), Some(0));
}

#[test]
fn qmp_tool_over_tcp_in_both_spellings() {
    let Some((_qemu, port)) = common::qemu_with_tcp_monitor("qmp_tool_over_tcp_in_both_spellings")
    else {
        return;
    };
    // HOST:PORT, and QEMU's option text pasted whole.
    let monitor = format!("tcp:127.0.0.1:{port},server=on,wait=off");
    for address in [format!("127.0.0.1:{port}"), monitor] {
        let out = run("qmp", &[&address, "query-status"]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{address}: {}",
            text(&out.stderr)
        );
        let reply: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(reply["running"], true);
    }
    let bad = run("qmp", &["tcp:127.0.0.1", "query-status"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        text(&bad.stderr).contains("needs HOST:PORT"),
        "{}",
        text(&bad.stderr)
    );
}

#[test]
fn qmp_tool_transport_failures_exit_2_within_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let absent = dir.path().join("absent.sock");
    let out = run("qmp", &[absent.to_str().unwrap(), "query-status"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr).lines().count(),
        1,
        "{}",
        text(&out.stderr)
    );
    // The one line names the socket.
    assert!(
        text(&out.stderr).contains(&format!("can't connect to {}", absent.display())),
        "{}",
        text(&out.stderr)
    );

    // A listener that never greets.
    let silent = dir.path().join("silent.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&silent).unwrap();
    let started = Instant::now();
    let out = run(
        "qmp",
        &["--timeout", "0.5", silent.to_str().unwrap(), "query-status"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(started.elapsed() < Duration::from_secs(3));

    let bad = run(
        "qmp",
        &[silent.to_str().unwrap(), "query-status", "{not json"],
    );
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn qga_tool_exit_statuses() {
    let Some(agent) = common::qemu_ga("qga_tool_exit_statuses") else {
        return;
    };
    let socket = agent.socket().to_str().unwrap();
    let ok = run("qga", &[socket, "guest-ping"]);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok.stderr));
    assert_eq!(text(&ok.stdout).trim(), "{}");
    let info = run("qga", &[socket, "guest-info"]);
    assert_eq!(info.status.code(), Some(0), "{}", text(&info.stderr));
    let blocked = run("qga", &[socket, "guest-get-users"]);
    assert_eq!(blocked.status.code(), Some(1), "{}", text(&blocked.stderr));
}

/// `qmp SOCK query-qmp-schema | head -1`: the reader goes away before the
/// tool has written its reply; that is a success, not a panic.
#[test]
fn a_closed_stdout_is_not_a_panic() {
    let Some(qemu) = common::qemu("a_closed_stdout_is_not_a_panic", &["-M", "none"]) else {
        return;
    };
    let socket = qemu.socket.to_str().unwrap();
    let mut child = Command::new(example("qmp"))
        .args([socket, "query-qmp-schema"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Close the read end at once: the tool's write fails with EPIPE.
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    let stderr = text(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(output.status.code(), Some(0), "{stderr}");
}

/// A fake QEMU on a fresh socket that answers the first command after
/// the negotiation with `answer` (raw bytes; `None`: hang up instead).
fn fake_qemu(answer: Option<&'static str>) -> (tempfile::TempDir, PathBuf) {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fake.sock");
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut reader = stream.try_clone().unwrap();
        let mut requests = common::wire::Requests::new();
        let greeting = r#"{"QMP": {"version": {"qemu": {"micro": 0, "minor": 0, "major": 10}, "package": ""}, "capabilities": []}}"#;
        writeln!(stream, "{greeting}\r").unwrap();
        let negotiate = requests.read(&mut reader).unwrap();
        writeln!(
            stream,
            "{{\"return\": {{}}, \"id\": {}}}\r",
            negotiate["id"]
        )
        .unwrap();
        let _command = requests.read(&mut reader).unwrap();
        if let Some(answer) = answer {
            writeln!(stream, "{answer}\r").unwrap();
            // Stay until the tool hangs up.
            let _ = requests.read(&mut reader);
        }
    });
    (dir, path)
}

#[test]
fn qmp_tool_exit_statuses_on_an_id_less_error_and_a_hang_up() {
    // QEMU's answer to a request it could not take apart has no id: it is
    // the one call's error reply.
    let (_dir, path) = fake_qemu(Some(
        r#"{"error": {"class": "GenericError", "desc": "JSON parse error, invalid keyword"}}"#,
    ));
    let out = run("qmp", &[path.to_str().unwrap(), "query-status"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).starts_with("GenericError: JSON parse error"),
        "{}",
        text(&out.stderr)
    );
    // QEMU going away mid-call is a transport failure.
    let (_dir, path) = fake_qemu(None);
    let out = run("qmp", &[path.to_str().unwrap(), "query-status"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}
