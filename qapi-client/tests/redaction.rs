//! The `TRACE` log of messages sent and received hides secrets (the rule
//! is in `src/redact.rs`): commands with passwords and secret data run
//! against fake peers with a subscriber capturing everything at `TRACE`,
//! and the captured text names the commands (so the capture works) but
//! holds none of the secrets.
//!
//! The async tests run on a current-thread runtime, so the engine's tasks
//! run on the test's thread and a subscriber set for that thread
//! (`set_default`) sees all they log.  The blocking client's tasks run on
//! threads of its own: that test captures with a global subscriber.

use std::io::Write;
use std::os::fd::AsFd;
use std::sync::{Arc, Mutex, OnceLock};

use qapi_client::{QgaBuilder, QmpBuilder};
use qapi_types::commands::{BlockdevAdd, ChangeVncPassword, ObjectAdd, QomGet, SetPassword};
use qapi_types::{
    BlockdevOptions, BlockdevOptionsLUKS, ObjectOptions, SecretProperties, SetPasswordOptions,
    SetPasswordOptionsVnc,
};
use serde_json::json;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

mod common;

const GREETING: &[u8] = br#"{"QMP": {"version": {"qemu": {"micro": 2, "minor": 0, "major": 10}, "package": ""}, "capabilities": []}}"#;

/// The secrets the tests send and receive; none may show in the log.
const VNC_PASSWORD: &str = "vnc-password-Qx7";
const SECRET_DATA: &str = "secret-object-data-Kp2";
const QOM_SECRET: &str = "qom-get-secret-Zr5";
const FD_PASSWORD: &str = "fd-call-password-Wm3";
const USER_PASSWORD: &str = "guest-user-password-Hv8";
const FILE_CONTENTS: &str = "Z3Vlc3QtZmlsZS1jb250ZW50cy1KZjQ=";
const BLOCKING_SECRET: &str = "blocking-qom-secret-Nb6";

/// A shared buffer the subscriber writes to.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Buffer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A subscriber that writes every event, `TRACE` included, to `buffer`.
fn subscriber(buffer: &Buffer) -> impl tracing::Subscriber + Send + Sync {
    let buffer = buffer.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || buffer.clone())
        .finish()
}

/// Captures what this thread logs until the guard drops.
fn capture() -> (tracing::subscriber::DefaultGuard, Buffer) {
    let buffer = Buffer::default();
    let guard = tracing::subscriber::set_default(subscriber(&buffer));
    (guard, buffer)
}

/// Asserts the log names each of `names` and holds none of `secrets`.
fn check(log: &str, names: &[&str], secrets: &[&str]) {
    for secret in secrets {
        assert!(!log.contains(secret), "{secret} is in the log:\n{log}");
    }
    for name in names {
        assert!(log.contains(name), "{name} is not in the log:\n{log}");
    }
}

/// A fake QMP server: the greeting, then `{"return": {}, "id": ID}` for
/// each request, but a secret string for `qom-get`.
async fn fake_qmp<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S) {
    let mut requests = common::wire::Requests::new();
    let mut greeting = GREETING.to_vec();
    greeting.extend_from_slice(b"\r\n");
    stream.write_all(&greeting).await.unwrap();
    while let Some(request) = requests.read_async(&mut stream).await {
        let value = match request["execute"].as_str() {
            Some("qom-get") => json!(QOM_SECRET),
            _ => json!({}),
        };
        let reply = format!("{}\r\n", json!({"return": value, "id": request["id"]}));
        if stream.write_all(reply.as_bytes()).await.is_err() {
            break;
        }
    }
}

/// A fake guest agent: answers the 0xFF + `guest-sync-delimited` with
/// 0xFF and the sync value, `guest-file-read` with secret file contents
/// and anything else with `{}`.
async fn fake_qga<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S) {
    let mut requests = common::wire::Requests::new();
    while let Some(request) = requests.read_async(&mut stream).await {
        let mut reply = Vec::new();
        let value = match request["execute"].as_str() {
            Some("guest-sync-delimited") => {
                reply.push(0xFF);
                request["arguments"]["id"].clone()
            }
            Some("guest-file-read") => json!({"count": 23, "buf-b64": FILE_CONTENTS, "eof": true}),
            _ => json!({}),
        };
        let message = format!("{{\"return\": {value}, \"id\": {}}}\n", request["id"]);
        reply.extend_from_slice(message.as_bytes());
        if stream.write_all(&reply).await.is_err() {
            break;
        }
    }
}

#[tokio::test]
async fn qmp_passwords_and_secret_data_stay_out_of_the_trace_log() {
    let (_guard, log) = capture();
    let (client, server) = tokio::io::duplex(64 * 1024);
    tokio::spawn(fake_qmp(server));
    let qmp = QmpBuilder::new().connect_stream(client).await.unwrap();

    qmp.execute(&SetPassword(SetPasswordOptions::new(
        VNC_PASSWORD,
        SetPasswordOptionsVnc::default().into(),
    )))
    .await
    .unwrap();
    qmp.execute(&ObjectAdd(ObjectOptions::new(
        "sec0",
        SecretProperties {
            data: Some(SECRET_DATA.into()),
            ..Default::default()
        }
        .into(),
    )))
    .await
    .unwrap();
    // `key-secret` names the secret object: kept.
    qmp.execute(&BlockdevAdd(BlockdevOptions {
        node_name: Some("disk0".into()),
        ..BlockdevOptionsLUKS {
            key_secret: Some("luks-key0".into()),
            ..BlockdevOptionsLUKS::new("file0")
        }
        .into()
    }))
    .await
    .unwrap();
    // The reply: a bare string.
    let value = qmp
        .execute(&QomGet::new("/objects/sec0", "data"))
        .await
        .unwrap();
    assert_eq!(value, QOM_SECRET);

    check(
        &log.text(),
        &[
            "set_password",
            "object-add",
            "blockdev-add",
            "luks-key0",
            "qom-get",
            "receive",
            "<redacted>",
        ],
        &[VNC_PASSWORD, SECRET_DATA, QOM_SECRET],
    );
}

#[tokio::test]
async fn a_request_with_file_descriptors_hides_its_secrets() {
    let (_guard, log) = capture();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("qmp.sock");
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        fake_qmp(stream).await;
    });
    let qmp = QmpBuilder::new().connect_unix(&path).await.unwrap();
    let file = tempfile::tempfile().unwrap();
    qmp.execute_with_fds(&ChangeVncPassword::new(FD_PASSWORD), &[file.as_fd()])
        .await
        .unwrap();
    check(
        &log.text(),
        &["change-vnc-password", "<redacted>"],
        &[FD_PASSWORD],
    );
}

#[tokio::test]
async fn guest_agent_passwords_and_file_contents_stay_out_of_the_trace_log() {
    let (_guard, log) = capture();
    let (client, server) = tokio::io::duplex(64 * 1024);
    tokio::spawn(fake_qga(server));
    let qga = QgaBuilder::new().connect_stream(client).await.unwrap();

    qga.execute_raw(
        "guest-set-user-password",
        Some(&json!({"username": "root", "password": USER_PASSWORD, "crypted": false})),
    )
    .await
    .unwrap();
    let read = qga
        .execute_raw("guest-file-read", Some(&json!({"handle": 1})))
        .await
        .unwrap();
    assert_eq!(read["buf-b64"], FILE_CONTENTS);

    check(
        &log.text(),
        &[
            "guest-sync-delimited",
            "guest-set-user-password",
            "guest-file-read",
            "receive",
            "<redacted>",
        ],
        &[USER_PASSWORD, FILE_CONTENTS],
    );
}

/// The blocking client reads replies on the calling thread (direct calls)
/// or on its runtime's threads: a global subscriber sees both.
#[test]
fn blocking_calls_hide_secrets_in_replies_read_directly() {
    static LOG: OnceLock<Buffer> = OnceLock::new();
    let log = LOG.get_or_init(|| {
        let buffer = Buffer::default();
        tracing::subscriber::set_global_default(subscriber(&buffer)).unwrap();
        buffer
    });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("qmp.sock");
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut writer = stream.try_clone().unwrap();
        let mut reader = stream;
        let mut requests = common::wire::Requests::new();
        writer.write_all(GREETING).unwrap();
        writer.write_all(b"\r\n").unwrap();
        while let Some(request) = requests.read(&mut reader) {
            let value = match request["execute"].as_str() {
                Some("qom-get") => json!(BLOCKING_SECRET),
                _ => json!({}),
            };
            // The plain form QEMU writes, which direct calls take.
            let reply = format!("{{\"return\": {value}, \"id\": {}}}\r\n", request["id"]);
            if writer.write_all(reply.as_bytes()).is_err() {
                break;
            }
        }
    });
    let qmp = qapi_client::blocking::Qmp::connect_unix(&path).unwrap();
    for _ in 0..20 {
        let value = qmp.execute(&QomGet::new("/objects/sec1", "data")).unwrap();
        assert_eq!(value, BLOCKING_SECRET);
    }
    drop(qmp);
    check(
        &log.text(),
        &["qom-get", "receive", "<redacted>"],
        &[BLOCKING_SECRET],
    );
}
