//! `qapi-shell SOCKET COMMAND ARG…` against real QEMU and qemu-ga: the
//! reply on stdout, exit statuses 0 (success), 1 (error reply) and 2
//! (anything else, a line the schema refuses included: nothing sent),
//! `--record`, `--hmp`, `--qga`.

mod common;

use std::process::{Command, Output};

use common::SHELL;

fn shell(args: &[&str]) -> Output {
    let output = Command::new(SHELL).args(args).output().unwrap();
    println!(
        "qapi-shell {}: {}\n{}{}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn exit_statuses_replies_and_refusals_against_real_qemu() {
    let test = "exit_statuses_replies_and_refusals_against_real_qemu";
    let Some(binary) = common::require("QAPI_TEST_QEMU", "qemu-system-x86_64", test) else {
        return;
    };
    let qemu = common::qemu(&binary);
    let socket = qemu.qmp_socket().to_str().unwrap();

    let ok = shell(&[socket, "query-status", "--compact"]);
    assert_eq!(ok.status.code(), Some(0));
    assert_eq!(stdout(&ok), "{\"running\":true,\"status\":\"running\"}\n");

    // Typed by the schema: an integer and a boolean.
    let added = shell(&[
        socket,
        "blockdev-add",
        "driver=null-co",
        "node-name=n0",
        "size=1048576",
        "read-only=true",
    ]);
    assert_eq!(added.status.code(), Some(0), "{}", stderr(&added));
    let nodes = shell(&[socket, "--compact", "query-named-block-nodes"]);
    let text = stdout(&nodes);
    assert!(
        text.contains("\"node-name\":\"n0\"") && text.contains("\"ro\":true"),
        "{text}"
    );

    // An error reply: status 1, class and description on stderr.
    let again = shell(&[socket, "blockdev-add", "driver=null-co", "node-name=n0"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        stderr(&again).starts_with("error: GenericError: "),
        "{}",
        stderr(&again)
    );

    // Refused before sending: QEMU never sees the node.
    let refused = shell(&[socket, "blockdev-add", "driver=nul-co", "node-name=n1"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        stderr(&refused).starts_with(
            "blockdev-add: not sent: driver: unknown value 'nul-co'; expected one of "
        ),
        "{}",
        stderr(&refused)
    );
    let refused = shell(&[
        socket,
        "blockdev-add",
        "driver=null-co",
        "node-name=n2",
        "size=big",
    ]);
    assert_eq!(refused.status.code(), Some(2));
    assert_eq!(
        stderr(&refused),
        "blockdev-add: not sent: size: expected an integer, got string \"big\"\n"
    );
    let nodes = stdout(&shell(&[socket, "--compact", "query-named-block-nodes"]));
    assert!(
        !nodes.contains("\"n1\"") && !nodes.contains("\"n2\""),
        "{nodes}"
    );

    // Unknown commands and unusable sockets.
    let unknown = shell(&[socket, "query-nothing"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert_eq!(
        stderr(&unknown),
        "no command 'query-nothing' in this QEMU's schema\n"
    );
    let missing = shell(&["/nonexistent/qmp.sock", "query-status"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        stderr(&missing).contains("/nonexistent/qmp.sock"),
        "{}",
        stderr(&missing)
    );

    // HMP's output is text.
    let hmp = shell(&["--hmp", socket, "info", "status"]);
    assert_eq!(hmp.status.code(), Some(0));
    assert_eq!(stdout(&hmp), "VM status: running\r\n");
}

#[test]
fn record_writes_a_transcript_the_testkit_replays() {
    let test = "record_writes_a_transcript_the_testkit_replays";
    let Some(binary) = common::require("QAPI_TEST_QEMU", "qemu-system-x86_64", test) else {
        return;
    };
    let qemu = common::qemu(&binary);
    let transcript = qemu.dir().join("session.jsonl");
    let output = shell(&[
        "--record",
        transcript.to_str().unwrap(),
        qemu.qmp_socket().to_str().unwrap(),
        "query-name",
    ]);
    assert_eq!(output.status.code(), Some(0));
    let recorded = qapi_testkit::read_transcript(&transcript).unwrap();
    let commands: Vec<&str> = recorded
        .entries
        .iter()
        .filter_map(|e| e.command())
        .collect();
    assert_eq!(
        commands,
        ["qmp_capabilities", "query-qmp-schema", "query-name"]
    );
    let check = qapi_testkit::check::check(&recorded);
    assert!(check.failed.is_empty(), "{check:?}");

    // The recording, served by qapi-mock's library, answers the shell
    // again: the same output without QEMU.
    let replay_socket = qemu.dir().join("replay.sock");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let replay = runtime
        .block_on(async { qapi_testkit::Replay::new(recorded).listen_unix(&replay_socket) })
        .unwrap();
    let served = runtime.spawn(async move { replay.serve_one().await.unwrap() });
    let again = shell(&[replay_socket.to_str().unwrap(), "query-name"]);
    assert_eq!(again.status.code(), Some(0));
    assert_eq!(stdout(&again), stdout(&output));
    runtime.block_on(served).unwrap().assert_clean();
}

#[test]
fn the_guest_agent_answers_through_qga() {
    let test = "the_guest_agent_answers_through_qga";
    let Some(binary) = common::require("QAPI_TEST_QEMU_GA", "qemu-ga", test) else {
        return;
    };
    let agent = common::qemu_ga(&binary);
    let socket = agent.socket().to_str().unwrap();
    let ping = shell(&["--qga", "--compact", socket, "guest-ping"]);
    assert_eq!(ping.status.code(), Some(0));
    assert_eq!(stdout(&ping), "{}\n");
    // Disabled by the allow list: an error reply.
    let time = shell(&["--qga", socket, "guest-get-time"]);
    assert_eq!(time.status.code(), Some(1));
    assert!(stderr(&time).starts_with("error: "), "{}", stderr(&time));
    // Checked against the guest agent's schema.
    let refused = shell(&["--qga", socket, "guest-ping", "verbose=true"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        stderr(&refused).contains("verbose: unknown member"),
        "{}",
        stderr(&refused)
    );
}

#[test]
fn tcp_addresses_as_people_write_them() {
    let test = "tcp_addresses_as_people_write_them";
    let Some(binary) = common::require("QAPI_TEST_QEMU", "qemu-system-x86_64", test) else {
        return;
    };
    let qemu = qapi_testkit::Qemu::builder()
        .binary(&binary)
        .tcp_monitor()
        .start()
        .unwrap();
    let port = qemu.tcp_monitor().unwrap().port();
    let monitor = format!("tcp:127.0.0.1:{port},server=on,wait=off");
    // HOST:PORT, and QEMU's own option text pasted whole.
    for address in [format!("127.0.0.1:{port}"), monitor] {
        let ok = shell(&[&address, "--compact", "query-status"]);
        assert_eq!(ok.status.code(), Some(0), "{address}: {}", stderr(&ok));
        assert_eq!(stdout(&ok), "{\"running\":true,\"status\":\"running\"}\n");
    }
    let bad = shell(&["unix:", "query-status"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        stderr(&bad).contains("`unix:` needs a path"),
        "{}",
        stderr(&bad)
    );
}
