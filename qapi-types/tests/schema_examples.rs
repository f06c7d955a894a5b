//! Every example in the QMP schema's documentation decodes with the
//! bindings: requests as their command's arguments (encoding back to the
//! same JSON), replies as the command's return type, events as typed
//! events.
//!
//! Examples that fail for a known reason are listed, with the reason, in
//! `tests/schema_examples.allow` (one `SYMBOL LINE: reason` per line, where
//! LINE is the message's line within the example); any other failure fails
//! the test, and so does an allow-list entry that no longer fails.
//!
//! The examples are read from the repository's `schemas/`, which is not in
//! the published package: from an unpacked `.crate` the test skips (see
//! `common`).

mod common;

use std::collections::BTreeMap;

use qapi_types::transcript::{self, Report};
use qapi_types::{command_codec, event_codec};

fn allow_list() -> BTreeMap<String, String> {
    let text = include_str!("schema_examples.allow");
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (key, reason) = l.split_once(": ").expect("`SYMBOL LINE: reason`");
            (key.trim().to_owned(), reason.trim().to_owned())
        })
        .collect()
}

/// Decodes an event message (without timestamp) with the event's own type,
/// so a known event with bad data is a failure, not "unknown".
fn decode_event(message: serde_json::Value) -> Result<bool, String> {
    let name = message["event"].as_str().unwrap_or_default();
    match event_codec(name) {
        Some(codec) => {
            let data = message
                .get("data")
                .cloned()
                .unwrap_or_else(|| serde_json::json!({}));
            codec.decode_data(data).map(|()| true)
        }
        None => Ok(false),
    }
}

#[test]
fn schema_examples_decode_with_the_bindings() {
    let Some(schema_file) = common::repository_file("schemas/qmp/qapi-schema.json") else {
        return;
    };
    let schema = qapi_codegen::load(&schema_file).expect("the vendored schema is valid");
    let mut total = Report::default();
    let mut examples = 0;
    let mut failures = BTreeMap::new();
    for doc in &schema.docs {
        let symbol = doc
            .symbol
            .clone()
            .unwrap_or_else(|| "(free-form)".to_owned());
        for (n, example) in doc.examples().iter().enumerate() {
            examples += 1;
            let messages = transcript::parse(&example.text);
            let report = transcript::validate(&messages, command_codec, decode_event);
            for f in &report.failed {
                failures.insert(
                    format!("{symbol}#{} {}", n + 1, f.line),
                    format!("{}: {}", f.command, f.why),
                );
            }
            for (line, name) in &report.unknown {
                failures.insert(
                    format!("{symbol}#{} {line}", n + 1),
                    format!("{name}: not in the bindings"),
                );
            }
            total.decoded += report.decoded;
            total.failed.extend(report.failed);
            total.unknown.extend(report.unknown);
            total.skipped.extend(report.skipped);
        }
    }
    eprintln!(
        "schema examples: {examples} examples; {} messages decoded, {} skipped as not JSON, \
         {} failed, {} unknown",
        total.decoded,
        total.skipped.len(),
        total.failed.len(),
        total.unknown.len()
    );
    let allowed = allow_list();
    let unexpected: Vec<String> = failures
        .iter()
        .filter(|(key, _)| !allowed.contains_key(*key))
        .map(|(key, why)| format!("{key}: {why}"))
        .collect();
    let stale: Vec<&String> = allowed
        .keys()
        .filter(|k| !failures.contains_key(*k))
        .collect();
    assert!(
        unexpected.is_empty(),
        "{} example messages fail and are not in tests/schema_examples.allow:\n{}",
        unexpected.len(),
        unexpected.join("\n")
    );
    assert!(
        stale.is_empty(),
        "allow-list entries that no longer fail (remove them): {stale:?}"
    );
    assert!(total.decoded > 300, "the examples were found and decoded");
}
