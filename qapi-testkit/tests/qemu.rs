//! `qapi_testkit::Qemu` and `QemuGa`: real processes started for a test,
//! and the errors of ones that do not start.  The real binaries are
//! `QAPI_TEST_QEMU` / `QAPI_TEST_QEMU_GA` (and `QAPI_TEST_QEMU_GA_OLD`, a
//! qemu-ga without `--allow-rpcs`), else found as the launchers find them;
//! a missing one makes the test say SKIPPED, and fail under
//! `QAPI_TEST_REQUIRE_QEMU=1` (CI).

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use qapi_testkit::qemu::StartError;
use qapi_testkit::{Qemu, QemuGa};

/// The binary `env` names, else `default` as the launchers look it up
/// (`None` with `default` None: only the variable counts).
fn binary(env: &str, default: Option<&str>, test: &str) -> Option<PathBuf> {
    let found = std::env::var_os(env).map(PathBuf::from).or_else(|| {
        let name = default?;
        let paths = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&paths)
            .chain([PathBuf::from("/usr/sbin")])
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    });
    match found {
        Some(path) => Some(path),
        None if std::env::var("QAPI_TEST_REQUIRE_QEMU").as_deref() == Ok("1") => {
            panic!("{test}: no binary (set {env}) and QAPI_TEST_REQUIRE_QEMU=1")
        }
        None => {
            eprintln!("SKIPPED {test}: no binary (set {env})");
            None
        }
    }
}

fn real_qemu(test: &str) -> Option<PathBuf> {
    binary(
        "QAPI_TEST_QEMU",
        Some(qapi_testkit::qemu::DEFAULT_BINARY),
        test,
    )
}

#[tokio::test]
async fn a_started_qemu_answers_and_is_gone_when_dropped() {
    let Some(binary) = real_qemu("a_started_qemu_answers_and_is_gone_when_dropped") else {
        return;
    };
    let qemu = Qemu::builder().binary(&binary).arg("-S").start().unwrap();
    let qmp = qapi_client::Qmp::connect_unix(qemu.qmp_socket())
        .await
        .unwrap();
    let status = qmp
        .execute(&qapi_types::commands::QueryStatus {})
        .await
        .unwrap();
    assert!(!status.running, "-S starts it paused: {status:?}");
    let (pid, dir) = (qemu.pid(), qemu.dir().to_owned());
    assert!(dir.join("qmp.sock").exists());
    drop(qmp);
    drop(qemu);
    assert!(
        !PathBuf::from(format!("/proc/{pid}")).exists(),
        "QEMU {pid} still runs"
    );
    assert!(!dir.exists(), "{dir:?} left behind");
}

#[tokio::test]
async fn a_tcp_monitor_answers_beside_the_unix_socket() {
    let Some(binary) = real_qemu("a_tcp_monitor_answers_beside_the_unix_socket") else {
        return;
    };
    let qemu = Qemu::builder()
        .binary(&binary)
        .tcp_monitor()
        .start()
        .unwrap();
    let address = qemu.tcp_monitor().unwrap();
    assert!(address.ip().is_loopback());
    let qmp = qapi_client::QmpBuilder::new()
        .connect_tcp(address)
        .await
        .unwrap();
    let status = qmp
        .execute(&qapi_types::commands::QueryStatus {})
        .await
        .unwrap();
    assert!(status.running);
    assert_eq!(
        Qemu::builder()
            .binary(&binary)
            .start()
            .unwrap()
            .tcp_monitor(),
        None
    );
}

#[test]
fn a_qemu_that_refuses_its_arguments_says_why() {
    let Some(binary) = real_qemu("a_qemu_that_refuses_its_arguments_says_why") else {
        return;
    };
    let error = Qemu::builder()
        .binary(&binary)
        .args(["-machine", "no-such-machine"])
        .start()
        .unwrap_err();
    let text = error.to_string();
    assert!(matches!(error, StartError::Exited { .. }), "{error:?}");
    assert!(
        text.contains("exited") && text.contains("no-such-machine"),
        "{text}"
    );
}

#[test]
fn missing_binaries_are_named() {
    for binary in [
        "/nonexistent/qemu-system-x86_64",
        "qemu-system-no-such-arch",
    ] {
        let error = Qemu::builder().binary(binary).start().unwrap_err();
        assert!(matches!(error, StartError::NotFound { .. }), "{error:?}");
        assert!(error
            .to_string()
            .starts_with(&format!("{binary} not found")));
    }
}

#[test]
fn a_process_that_never_listens_is_killed_at_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("silent-qemu");
    std::fs::write(&script, "#!/bin/sh\necho starting >&2\nexec sleep 30\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let started = Instant::now();
    let error = Qemu::builder()
        .binary(&script)
        .start_timeout(Duration::from_millis(300))
        .start()
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    let StartError::Timeout { stderr, .. } = &error else {
        panic!("{error:?}");
    };
    assert_eq!(stderr.trim(), "starting");
    assert!(
        error.to_string().contains("within 300ms: starting"),
        "{error}"
    );
}

#[test]
fn a_process_that_exits_at_once_reports_its_status() {
    let error = Qemu::builder().binary("/bin/false").start().unwrap_err();
    let StartError::Exited { status, .. } = &error else {
        panic!("{error:?}");
    };
    assert_eq!(status.code(), Some(1));
}

/// A real agent answers what it was allowed and refuses the rest, whether
/// it takes an allow list (`--allow-rpcs`, 8.0 and newer) or only a block
/// list (7.2).
#[tokio::test]
async fn a_started_agent_runs_only_what_it_was_allowed() {
    let test = "a_started_agent_runs_only_what_it_was_allowed";
    let mut agents = Vec::new();
    if let Some(current) = binary(
        "QAPI_TEST_QEMU_GA",
        Some(qapi_testkit::qemu::DEFAULT_AGENT_BINARY),
        test,
    ) {
        agents.push(current);
    }
    if let Some(old) = binary("QAPI_TEST_QEMU_GA_OLD", None, test) {
        agents.push(old);
    }
    for agent_binary in agents {
        let agent = QemuGa::builder(["guest-ping", "guest-info"])
            .binary(&agent_binary)
            .start()
            .unwrap();
        let qga = qapi_client::Qga::connect_unix(agent.socket())
            .await
            .unwrap();
        qga.execute(&qga_types::commands::GuestPing {})
            .await
            .unwrap();
        let refused = qga
            .execute(&qga_types::commands::GuestGetHostName {})
            .await
            .unwrap_err();
        assert!(
            refused.to_string().contains("disabled") || refused.to_string().contains("not found"),
            "{agent_binary:?}: {refused}"
        );
        let (pid, dir) = (agent.pid(), agent.dir().to_owned());
        drop(qga);
        drop(agent);
        assert!(!PathBuf::from(format!("/proc/{pid}")).exists());
        assert!(!dir.exists());
    }
}

#[test]
fn an_agent_that_cannot_be_limited_is_not_started() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("qemu-ga");
    // Lists no options and no commands; would listen if started.
    std::fs::write(
        &script,
        "#!/bin/sh\ncase \"$1\" in --help|--block-rpcs=help) exit 0;; esac\nexec sleep 30\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let error = QemuGa::builder(["guest-ping"])
        .binary(&script)
        .start()
        .unwrap_err();
    assert!(
        matches!(error, StartError::CannotRestrict { .. }),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("cannot limit the agent"),
        "{error}"
    );
}
