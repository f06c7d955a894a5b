//! `qapi_testkit::Qemu`: a real QEMU started for a test, and the errors of
//! one that does not start.  The real QEMU is `QAPI_TEST_QEMU` or
//! `qemu-system-x86_64` on `PATH`; without one the test says SKIPPED, and
//! fails under `QAPI_TEST_REQUIRE_QEMU=1` (CI).

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use qapi_testkit::qemu::StartError;
use qapi_testkit::Qemu;

fn real_qemu(test: &str) -> Option<PathBuf> {
    let found = std::env::var_os("QAPI_TEST_QEMU")
        .map(PathBuf::from)
        .or_else(|| {
            let paths = std::env::var_os("PATH")?;
            std::env::split_paths(&paths)
                .map(|dir| dir.join(qapi_testkit::qemu::DEFAULT_BINARY))
                .find(|candidate| candidate.is_file())
        });
    match found {
        Some(path) => Some(path),
        None if std::env::var("QAPI_TEST_REQUIRE_QEMU").as_deref() == Ok("1") => {
            panic!("{test}: no QEMU (QAPI_TEST_QEMU) and QAPI_TEST_REQUIRE_QEMU=1")
        }
        None => {
            eprintln!("SKIPPED {test}: no qemu-system-x86_64 (set QAPI_TEST_QEMU)");
            None
        }
    }
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
