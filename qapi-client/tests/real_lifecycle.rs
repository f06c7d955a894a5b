//! Session lifecycle against real QEMU (10.0 on `PATH`, and the older and
//! newer ones `.ci/run` unpacks): server mode (QEMU started with
//! `-qmp unix:PATH,server=off` connects to us), a reconnecting session
//! that survives killing and restarting QEMU, and a block job awaited
//! through the typed event wait.

mod common;

use std::time::Duration;

use qapi_client::{Error, QmpBuilder};
use qapi_types::commands as c;
use qapi_types::events::JobStatusChange;
use qapi_types::{Event, JobStatus};

#[tokio::test]
async fn server_mode_with_qemu_connecting_to_us() {
    for (label, binary, _) in common::qemus("server_mode_with_qemu_connecting_to_us") {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("listen.sock");
        let mut listener = QmpBuilder::new().listen_unix(&path).unwrap();
        let qmp_option = format!("unix:{},server=off", path.display());
        let mut qemu = common::spawn_qemu(&binary, &qmp_option, &["-M", "none"]);
        let accepted = tokio::time::timeout(Duration::from_secs(20), listener.accept()).await;
        let qmp = accepted
            .unwrap_or_else(|_| panic!("{label}: QEMU did not connect in 20 s"))
            .unwrap();
        let status = qmp.execute(&c::QueryStatus {}).await.unwrap();
        assert!(status.running, "{label}: {status:?}");
        println!(
            "server mode: QEMU {}.{}.{} ({label}) connected and answered",
            qmp.greeting().version.qemu.major,
            qmp.greeting().version.qemu.minor,
            qmp.greeting().version.qemu.micro
        );
        qmp.execute(&c::Quit {}).await.unwrap();
        let _ = qemu.wait();
    }
}

#[tokio::test]
async fn a_reconnecting_session_survives_killing_and_restarting_qemu() {
    for (label, binary, _) in
        common::qemus("a_reconnecting_session_survives_killing_and_restarting_qemu")
    {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("qmp.sock");
        let qmp_option = format!("unix:{},server=on,wait=off", path.display());
        let start = || {
            let mut child = common::spawn_qemu(&binary, &qmp_option, &["-M", "none", "-S"]);
            common::wait_for_socket(&path, &mut child, "QEMU");
            child
        };
        let mut first = start();
        let session = QmpBuilder::new()
            .connect_unix_reconnecting(&path)
            .await
            .unwrap();
        let mut events = session.events();
        assert!(!session.execute(&c::QueryStatus {}).await.unwrap().running);

        let old = session.current().unwrap();
        first.kill().unwrap();
        first.wait().unwrap();
        // A call the session makes before it notices QEMU is gone fails
        // like one in flight; once it has noticed, calls wait for the next.
        tokio::time::timeout(Duration::from_secs(5), old.closed())
            .await
            .unwrap();
        let mut second = start();
        // The next call waits for the new session (within its limit).
        session.execute(&c::Cont {}).await.unwrap();
        assert_eq!(session.generation(), 1, "{label}");
        match events.recv_raw().await.unwrap() {
            Err(Error::Reconnected { generation: 1 }) => {}
            other => panic!("{label}: expected Reconnected, got {other:?}"),
        }
        let resumed = events.recv().await.unwrap().unwrap();
        assert_eq!(resumed.event.name(), "RESUME", "{label}");
        assert!(session.execute(&c::QueryStatus {}).await.unwrap().running);
        println!("reconnect: QEMU ({label}) killed and restarted; the session went on");
        drop(session);
        second.kill().unwrap();
        second.wait().unwrap();
    }
}

#[tokio::test]
async fn a_blockdev_create_job_is_awaited_through_the_typed_event_wait() {
    for (label, binary, _) in
        common::qemus("a_blockdev_create_job_is_awaited_through_the_typed_event_wait")
    {
        let qemu = common::qemu_at(&binary, &["-M", "none"]);
        let qmp = qapi_client::Qmp::connect_unix(&qemu.socket).await.unwrap();
        let image = qemu.dir.path().join("disk.img");
        let mut jobs = qmp.events_named([JobStatusChange::NAME]);
        let concluded =
            common::create_image_with_a_job(&qmp, &mut jobs, &image.display().to_string()).await;
        assert_eq!(concluded.event.status, JobStatus::Concluded, "{label}");
        assert_eq!(std::fs::metadata(&image).unwrap().len(), 1 << 20, "{label}");
        // A job that never comes runs into the wait's limit.
        let none = jobs
            .wait_for::<JobStatusChange>(Duration::from_millis(200), |change| change.id == "j2")
            .await
            .unwrap_err();
        assert!(
            matches!(none, Error::EventTimeout { .. }),
            "{label}: {none:?}"
        );
        println!("job: blockdev-create j1 concluded on QEMU ({label})");
    }
}
