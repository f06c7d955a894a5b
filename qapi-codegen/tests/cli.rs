//! The `qapi-codegen` binary as a user runs it: exit codes and where errors go.

use std::process::{Command, Output};

fn qapi_codegen(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_qapi-codegen"))
        .args(args)
        .output()
        .expect("run qapi-codegen")
}

#[test]
fn unreadable_schema_fails_with_the_error_on_stderr() {
    let out = qapi_codegen(&["check", "no-such-dir/missing.json"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("can't read schema file 'no-such-dir/missing.json': "),
        "{stderr}"
    );
}

#[test]
fn check_reports_every_failing_file() {
    let out = qapi_codegen(&["check", "missing-1.json", "missing-2.json"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("'missing-1.json'"), "{stderr}");
    assert!(stderr.contains("'missing-2.json'"), "{stderr}");
}

#[test]
fn dump_of_unreadable_schema_fails_without_output() {
    let out = qapi_codegen(&["dump", "missing.json"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
}

#[test]
fn usage_errors_exit_with_2() {
    for args in [
        &["check"][..],
        &["check", "--rules", "9.9", "a.json"],
        &["dump", "a.json", "b.json"],
        &["frobnicate"],
        &[],
    ] {
        let out = qapi_codegen(args);
        assert_eq!(out.status.code(), Some(2), "qapi-codegen {args:?}");
    }
}

#[test]
fn help_exits_with_0() {
    let out = qapi_codegen(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("check"));
}
