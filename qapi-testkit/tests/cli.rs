//! The `qapi-mock` tool: `serve` on a Unix socket and on TCP with its exit
//! status and report, `check` on the QMP schema's examples (the same tally
//! as decoding them in process), and `convert` between the formats.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use qapi_client::Qmp;
use qapi_types::commands as c;

const MOCK: &str = env!("CARGO_BIN_EXE_qapi-mock");

const TRANSCRIPT: &str = r#"{"qapi-transcript":1,"protocol":"qmp"}
{"from":"server","t":0.0,"message":{"QMP":{"version":{"qemu":{"micro":2,"minor":0,"major":10},"package":"Debian 1:10.0.2+ds-2+deb13u1~bpo12+1"},"capabilities":["oob"]}}}
{"from":"client","t":0.0001,"message":{"execute":"qmp_capabilities","id":0}}
{"from":"server","t":0.0002,"message":{"return":{},"id":0}}
{"from":"client","t":0.0003,"message":{"execute":"query-status","id":1}}
{"from":"server","t":0.0004,"message":{"return":{"status":"prelaunch","running":false},"id":1}}
{"from":"client","t":0.0005,"message":{"execute":"query-name","id":2}}
{"from":"server","t":0.0006,"message":{"return":{"name":"vm1"},"id":2}}
"#;

fn write_transcript(dir: &Path) -> PathBuf {
    let path = dir.join("session.jsonl");
    std::fs::write(&path, TRANSCRIPT).unwrap();
    path
}

/// Starts `qapi-mock serve` and returns it with the address from its
/// "listening on" line.
fn serve(args: &[&str]) -> (Child, String) {
    let mut child = Command::new(MOCK)
        .arg("serve")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run qapi-mock");
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let address = line
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("expected \"listening on …\", got {line:?}"))
        .trim()
        .to_owned();
    (child, address)
}

fn wait(child: Child) -> Output {
    let output = child.wait_with_output().unwrap();
    println!(
        "qapi-mock: {}\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[tokio::test]
async fn serve_on_a_unix_socket_exits_0_when_all_went_as_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let transcript = write_transcript(dir.path());
    let socket = dir.path().join("qmp.sock");
    let (child, address) = serve(&[transcript.to_str().unwrap(), socket.to_str().unwrap()]);
    assert_eq!(address, socket.to_str().unwrap());
    let qmp = Qmp::connect_unix(&socket).await.unwrap();
    assert_eq!(qmp.greeting().version.qemu.minor, 0);
    assert!(!qmp.execute(&c::QueryStatus {}).await.unwrap().running);
    let name = qmp.execute(&c::QueryName {}).await.unwrap();
    assert_eq!(name.name.as_deref(), Some("vm1"));
    drop(qmp);
    // The session closes in this runtime's tasks: wait off its thread.
    let output = tokio::task::spawn_blocking(move || wait(child))
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "2 requests: 2 matched, 0 by fallback, 0 mismatched, 0 refused by the schema; \
         0 of the transcript's never made\n"
    );
    assert!(!socket.exists(), "the socket file is removed");
}

#[tokio::test]
async fn serve_on_tcp_exits_1_with_the_report_when_the_client_strays() {
    let dir = tempfile::tempdir().unwrap();
    let transcript = write_transcript(dir.path());
    let (child, address) = serve(&[transcript.to_str().unwrap(), "127.0.0.1:0"]);
    let qmp = qapi_client::QmpBuilder::new()
        .connect_tcp(address.as_str())
        .await
        .unwrap();
    let error = qmp.execute(&c::QueryName {}).await.unwrap_err();
    assert!(
        error
            .to_string()
            .contains("expected query-status {} (transcript line 5)"),
        "{error}"
    );
    drop(qmp);
    // The session closes in this runtime's tasks: wait off its thread.
    let output = tokio::task::spawn_blocking(move || wait(child))
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        report.contains("1 mismatched")
            && report.contains("never made: query-status {} (transcript line 5)")
            && report.contains("never made: query-name {} (transcript line 7)"),
        "{report}"
    );
}

#[test]
fn serve_reports_unusable_files_and_options_with_status_2() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"from\":\"client\",\"message\":{}}\n{\"from\":1}\n").unwrap();
    let socket = dir.path().join("s");
    for (args, expected) in [
        (
            vec![bad.to_str().unwrap(), socket.to_str().unwrap()],
            "bad.jsonl:line 2: \"from\" must be \"client\" or \"server\"",
        ),
        (
            vec!["/nonexistent/t.jsonl", socket.to_str().unwrap()],
            "can't read /nonexistent/t.jsonl",
        ),
    ] {
        let output = Command::new(MOCK)
            .arg("serve")
            .args(&args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(expected), "{stderr}");
    }
}

#[test]
fn convert_goes_through_every_format_and_back() {
    let dir = tempfile::tempdir().unwrap();
    let transcript = write_transcript(dir.path());
    let mut current = transcript.clone();
    for format in ["libvirt", "doc", "jsonl"] {
        let next = dir.path().join(format!("t.{format}"));
        let output = Command::new(MOCK)
            .args(["convert", "--to", format])
            .arg(&current)
            .arg(&next)
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        current = next;
    }
    let back = qapi_testkit::read_transcript(&current).unwrap();
    let original = qapi_testkit::read_transcript(&transcript).unwrap();
    // libvirt's form has no greeting and no times; the messages stay.
    let messages = |t: &qapi_testkit::Transcript| {
        t.entries
            .iter()
            .filter(|e| e.message.get("QMP").is_none())
            .map(|e| (e.from, e.message.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(messages(&back), messages(&original));
    assert_eq!(back.protocol, Some(qapi_testkit::Protocol::Qmp));
}

/// The schema's examples, one file each, checked by `qapi-mock check`:
/// the tally equals decoding them in process, as the schema-example test
/// of `qapi-types` does.
#[test]
fn check_on_the_schema_examples_gives_the_in_process_tally() {
    let schema_file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas/qmp/qapi-schema.json");
    if !schema_file.exists() {
        assert!(
            std::env::var("QAPI_TEST_REQUIRE_QEMU").as_deref() != Ok("1"),
            "{} is missing (QAPI_TEST_REQUIRE_QEMU=1)",
            schema_file.display()
        );
        eprintln!("SKIPPED check_on_the_schema_examples…: the repository's schemas/ are not here");
        return;
    }
    let schema = qapi_codegen::load(&schema_file).expect("the vendored schema is valid");
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    let mut expected = qapi_types::transcript::Report::default();
    for doc in &schema.docs {
        for example in doc.examples() {
            let messages = qapi_types::transcript::parse(&example.text);
            let report = qapi_types::transcript::validate(
                &messages,
                qapi_types::command_codec,
                qapi_testkit::check::decode_event,
            );
            expected.decoded += report.decoded;
            expected.failed.extend(report.failed);
            expected.unknown.extend(report.unknown);
            expected.skipped.extend(report.skipped);
            let file = dir.path().join(format!("example-{}.txt", files.len()));
            std::fs::write(&file, &example.text).unwrap();
            files.push(file);
        }
    }
    let output = Command::new(MOCK)
        .arg("check")
        .args(&files)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let tally = stdout.lines().last().unwrap_or_default();
    assert_eq!(
        tally,
        format!(
            "{} decoded, {} failed, {} unknown-command, {} not JSON",
            expected.decoded,
            expected.failed.len(),
            expected.unknown.len(),
            expected.skipped.len()
        ),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(expected.decoded > 300, "the examples were found");
    // Some examples fail for known reasons (qapi-types'
    // tests/schema_examples.allow), so the status is 1, with one line each.
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(stdout.lines().count(), expected.failed.len() + 1);
    eprintln!(
        "qapi-mock check on {} schema examples: {tally}",
        files.len()
    );
}

#[test]
fn check_against_an_introspection_document_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let schema = dir.path().join("schema.json");
    std::fs::write(
        &schema,
        r#"{"return": [
  {"name": "query-status", "meta-type": "command", "arg-type": "0", "ret-type": "1"},
  {"name": "0", "meta-type": "object", "members": []},
  {"name": "1", "meta-type": "object", "members": [
    {"name": "running", "type": "bool"}, {"name": "status", "type": "str"}]},
  {"name": "bool", "meta-type": "builtin", "json-type": "boolean"},
  {"name": "str", "meta-type": "builtin", "json-type": "string"}
]}"#,
    )
    .unwrap();
    let transcript = dir.path().join("t.txt");
    std::fs::write(
        &transcript,
        "-> { \"execute\": \"query-status\", \"arguments\": { \"verbose\": true } }\n\
         <- { \"return\": { \"running\": \"yes\", \"status\": \"running\" } }\n\
         -> { \"execute\": \"query-name\" }\n",
    )
    .unwrap();
    let output = Command::new(MOCK)
        .args(["check", "--schema"])
        .arg(&schema)
        .arg(&transcript)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    let file = transcript.display();
    assert_eq!(
        stdout,
        format!(
            "{file}:1: query-status: verbose: unknown member; none is expected here\n\
             {file}:2: query-status: running: expected true or false, got string \"yes\"\n\
             0 decoded, 2 failed, 1 unknown-command, 0 not JSON\n"
        )
    );
}

/// A test suite in another language uses `qapi-mock serve` as its QEMU:
/// here Python with a plain socket, as a Python VM manager's tests would.
#[test]
fn a_python_client_talks_to_qapi_mock_serve() {
    let Ok(python) = which_python() else {
        assert!(
            std::env::var("QAPI_TEST_REQUIRE_QEMU").as_deref() != Ok("1"),
            "python3 is missing (QAPI_TEST_REQUIRE_QEMU=1)"
        );
        eprintln!("SKIPPED a_python_client_talks_to_qapi_mock_serve: no python3");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let transcript = write_transcript(dir.path());
    let socket = dir.path().join("qmp.sock");
    let (child, _) = serve(&[transcript.to_str().unwrap(), socket.to_str().unwrap()]);
    let script = r#"
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
f = s.makefile("rwb")
def call(request):
    f.write(json.dumps(request).encode()); f.flush()
    return json.loads(f.readline())
greeting = json.loads(f.readline())
assert greeting["QMP"]["version"]["qemu"]["major"] == 10
assert call({"execute": "qmp_capabilities"}) == {"return": {}}
status = call({"execute": "query-status", "id": "py-1"})
name = call({"execute": "query-name", "id": "py-2"})
print(status["id"], status["return"]["status"], name["return"]["name"])
"#;
    let output = Command::new(python)
        .arg("-c")
        .arg(script)
        .arg(&socket)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "py-1 prelaunch vm1\n"
    );
    assert_eq!(wait(child).status.code(), Some(0));
}

fn which_python() -> Result<PathBuf, ()> {
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join("python3"))
                .find(|candidate| candidate.is_file())
        })
        .ok_or(())
}
