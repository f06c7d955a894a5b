//! QEMU's own QAPI parser test suite, run against our front end.
//!
//! Every schema `tests/qapi-schema/meson.build` lists (plus the deliberately
//! missing file) is loaded with the default (newest) rules:
//!
//! * a case whose `.err` is empty must be accepted, and when its `.out` is
//!   not empty our model, printed in QEMU's test format, must equal it;
//! * any other case must be rejected, and our first diagnostic should name
//!   the file and line of the first `.err` line that carries one.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use qapi_codegen::{dump, Config, Error};

/// The schemas `meson.build` lists, in order, plus the missing-file case.
fn cases(suite: &Path) -> Vec<String> {
    let meson = fs::read_to_string(suite.join("meson.build")).expect("meson.build is readable");
    let start = meson
        .find("schemas = [")
        .expect("meson.build lists schemas");
    let end = start + meson[start..].find(']').expect("the list ends");
    let mut cases: Vec<String> = meson[start..end]
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let name = l.strip_prefix('\'')?.split('\'').next()?;
            name.ends_with(".json").then(|| name.to_owned())
        })
        .collect();
    assert!(
        meson.contains("missing-schema.json"),
        "meson.build still tests a missing file"
    );
    cases.push("missing-schema.json".to_owned());
    cases
}

/// `FILE:LINE` of the first line of QEMU's expected error that has one.
fn expected_location(err: &str) -> Option<(String, u32)> {
    err.lines().find_map(|line| {
        if line.starts_with("In file included from") {
            return None;
        }
        let mut parts = line.splitn(3, ':');
        let file = parts.next()?;
        let lineno: u32 = parts.next()?.trim().parse().ok()?;
        Some((file.to_owned(), lineno))
    })
}

/// Drops the column from `FILE:LINE:COL:` at line starts, so messages with
/// and without columns compare.
fn without_columns(text: &str) -> String {
    text.lines()
        .map(|line| {
            let mut parts = line.splitn(4, ':');
            match (parts.next(), parts.next(), parts.next(), parts.next()) {
                (Some(f), Some(l), Some(c), Some(rest))
                    if l.parse::<u32>().is_ok() && c.parse::<u32>().is_ok() =>
                {
                    format!("{f}:{l}:{rest}")
                }
                _ => line.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The column QEMU gives in its first located line, if any.
fn expected_column(err: &str) -> Option<u32> {
    err.lines()
        .find(|l| !l.starts_with("In file included from") && expected_location(l).is_some())
        .and_then(|l| l.split(':').nth(2)?.parse().ok())
}

struct Tally {
    messages_equal: usize,
    messages_compared: usize,
    columns_equal: usize,
    columns_compared: usize,
    message_mismatches: Vec<String>,
    cases: usize,
    verdict_agrees: usize,
    with_line: usize,
    line_agrees: usize,
    models_compared: usize,
    models_equal: usize,
    verdict_mismatches: Vec<String>,
    line_mismatches: Vec<String>,
    model_mismatches: Vec<String>,
}

fn run_suite(suite: &Path) -> Tally {
    let mut tally = Tally {
        messages_equal: 0,
        messages_compared: 0,
        columns_equal: 0,
        columns_compared: 0,
        message_mismatches: Vec::new(),
        cases: 0,
        verdict_agrees: 0,
        with_line: 0,
        line_agrees: 0,
        models_compared: 0,
        models_equal: 0,
        verdict_mismatches: Vec::new(),
        line_mismatches: Vec::new(),
        model_mismatches: Vec::new(),
    };
    for case in cases(suite) {
        tally.cases += 1;
        let stem = case.trim_end_matches(".json");
        let expected_err =
            fs::read_to_string(suite.join(format!("{stem}.err"))).unwrap_or_default();
        let expected_out =
            fs::read_to_string(suite.join(format!("{stem}.out"))).unwrap_or_default();
        let path: PathBuf = suite.join(&case);
        let result = Config::new().display_relative_to(suite).load(&path);
        match (result, expected_err.is_empty()) {
            (Ok(schema), true) => {
                tally.verdict_agrees += 1;
                if !expected_out.is_empty() {
                    tally.models_compared += 1;
                    let ours = dump::dump(&schema);
                    if ours == expected_out {
                        tally.models_equal += 1;
                    } else {
                        tally.model_mismatches.push(format!(
                            "{case}:\n{}",
                            first_difference(&expected_out, &ours)
                        ));
                    }
                }
            }
            (Ok(_), false) => tally.verdict_mismatches.push(format!(
                "{case}: accepted, QEMU rejects it: {}",
                expected_err.lines().last().unwrap_or("")
            )),
            (Err(err), true) => tally
                .verdict_mismatches
                .push(format!("{case}: rejected, QEMU accepts it:\n{err}")),
            (Err(err), false) => {
                tally.verdict_agrees += 1;
                tally.messages_compared += 1;
                // QEMU's harness strips the test directory from paths in
                // messages the same way.
                let ours = err
                    .to_string()
                    .replace(&format!("{}/", suite.display()), "");
                if without_columns(&ours) == without_columns(expected_err.trim_end()) {
                    tally.messages_equal += 1;
                } else {
                    tally.message_mismatches.push(format!(
                        "{case}:\n  QEMU: {}\n  ours: {}",
                        expected_err.trim_end(),
                        ours
                    ));
                }
                if let (Some(col), Error::Invalid(diags)) = (expected_column(&expected_err), &err) {
                    tally.columns_compared += 1;
                    if diags.first().map(|d| d.location.col) == Some(col) {
                        tally.columns_equal += 1;
                    }
                }
                if let Some((file, line)) = expected_location(&expected_err) {
                    tally.with_line += 1;
                    let ours = match &err {
                        Error::Invalid(diags) => diags.first().map(|d| {
                            (
                                diags.sources.display(d.location.file).to_owned(),
                                d.location.line,
                            )
                        }),
                        Error::Read { .. } => None,
                    };
                    if ours.as_ref() == Some(&(file.clone(), line)) {
                        tally.line_agrees += 1;
                    } else {
                        tally.line_mismatches.push(format!(
                            "{case}: QEMU {file}:{line}, ours {ours:?}\n  QEMU: {}\n  ours: {}",
                            expected_err.trim_end().replace('\n', "\n        "),
                            err.to_string().replace('\n', "\n        ")
                        ));
                    }
                }
            }
        }
    }
    tally
}

fn first_difference(expected: &str, ours: &str) -> String {
    let e: Vec<&str> = expected.lines().collect();
    let o: Vec<&str> = ours.lines().collect();
    let i = e.iter().zip(&o).take_while(|(a, b)| a == b).count();
    let show = |lines: &[&str]| {
        lines
            .iter()
            .skip(i)
            .take(4)
            .copied()
            .collect::<Vec<_>>()
            .join("\n      ")
    };
    format!(
        "  first difference at line {}:\n  QEMU: {}\n  ours: {}",
        i + 1,
        show(&e),
        show(&o)
    )
}

#[test]
fn qemu_parser_test_suite_gets_qemus_verdicts() {
    let Some(tree) = common::qemu_source("10.2.2") else {
        return;
    };
    let suite = tree.join("tests/qapi-schema");
    let tally = run_suite(&suite);
    let pct = |a: usize, b: usize| 100.0 * a as f64 / b.max(1) as f64;
    for m in &tally.verdict_mismatches {
        eprintln!("VERDICT MISMATCH {m}");
    }
    for m in &tally.line_mismatches {
        eprintln!("LINE MISMATCH {m}");
    }
    for m in &tally.model_mismatches {
        eprintln!("MODEL MISMATCH {m}");
    }
    for m in &tally.message_mismatches {
        eprintln!("MESSAGE MISMATCH {m}");
    }
    eprintln!(
        "QEMU 10.2.2 qapi-schema suite: {} cases; accept/reject agree {}/{} ({:.1}%); \
         first error on QEMU's line {}/{} ({:.1}%); models equal to QEMU's .out {}/{}; \
         error text equal to QEMU's {}/{}; column equal where QEMU gives one {}/{}",
        tally.cases,
        tally.verdict_agrees,
        tally.cases,
        pct(tally.verdict_agrees, tally.cases),
        tally.line_agrees,
        tally.with_line,
        pct(tally.line_agrees, tally.with_line),
        tally.models_equal,
        tally.models_compared,
        tally.messages_equal,
        tally.messages_compared,
        tally.columns_equal,
        tally.columns_compared,
    );
    assert!(tally.cases > 200, "meson.build lists the whole suite");
    assert!(
        tally.verdict_mismatches.is_empty(),
        "accept/reject must agree with QEMU on every case"
    );
    assert!(
        pct(tally.line_agrees, tally.with_line) >= 97.0,
        "first error must be on QEMU's line in at least 97% of cases"
    );
    assert!(
        tally.message_mismatches.is_empty(),
        "every error message must read as QEMU's"
    );
    assert!(
        tally.model_mismatches.is_empty(),
        "the model must match QEMU's .out for every good case"
    );
}
