//! Decoding benchmarks: real QEMU replies and events decoded into the typed
//! bindings, side by side with the same bytes decoded into
//! `serde_json::Value`.
//!
//! Run with `cargo bench -p qapi-types --bench decode`.  The inputs are in
//! `benches/data/`, captured from QEMU by `bench/capture-replies.sh` (see
//! the README there).  Each group has a `typed` and a `value` function on
//! the same input; the goal is typed no slower than `Value`.
//!
//! Before timing, each input is decoded once into the typed bindings and
//! checked (no unknown union branch, enum value or event: the bindings are
//! newer than the QEMU that produced the data, so everything must be
//! known); the bench panics when that fails.

use std::hint::black_box;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use qapi_types::commands::{QueryBlock, QueryBlockstats, QueryNamedBlockNodes, QueryQmpSchema};
use qapi_types::{AnyEvent, Command, EventMessage, SchemaInfoBranch};
use serde::de::DeserializeOwned;
use serde::Deserialize;

/// A successful QMP reply, as a client decodes the line it receives.
#[derive(Deserialize)]
struct Reply<T> {
    #[serde(rename = "return")]
    ret: T,
}

fn data(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("benches/data")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run bench/capture-replies.sh to capture it",
            path.display()
        )
    })
}

/// Decodes `text` as the reply of `C`, panicking with the JSON path of the
/// first failure.
fn decode_reply<C: Command>(file: &str, text: &str) -> C::Returns {
    let de = &mut serde_json::Deserializer::from_str(text);
    match serde_path_to_error::deserialize::<_, Reply<C::Returns>>(de) {
        Ok(reply) => reply.ret,
        Err(e) => panic!(
            "{file} does not decode as the reply of {}: at {}: {}",
            C::NAME,
            e.path(),
            e.inner()
        ),
    }
}

/// One typed decoding (not inlined, so that a profiler such as callgrind
/// can count the calls and the instructions in them).
#[inline(never)]
fn typed<T: DeserializeOwned>(text: &str) -> T {
    serde_json::from_str(text).expect("decoded before")
}

/// One decoding into a `Value` (not inlined either).
#[inline(never)]
fn value(text: &str) -> serde_json::Value {
    serde_json::from_str(text).expect("valid JSON")
}

/// Times decoding the reply in `file` as `C`'s reply and as a `Value`.
fn reply<C: Command>(c: &mut Criterion, file: &str)
where
    C::Returns: DeserializeOwned,
{
    let text = data(file);
    let text = text.trim_end();
    let mut group = c.benchmark_group(C::NAME);
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.bench_function("typed", |b| {
        b.iter(|| typed::<Reply<C::Returns>>(black_box(text)).ret)
    });
    group.bench_function("value", |b| b.iter(|| value(black_box(text))));
    group.finish();
}

fn query_qmp_schema(c: &mut Criterion) {
    let file = "query-qmp-schema.json";
    let schema = decode_reply::<QueryQmpSchema>(file, &data(file));
    assert!(
        schema.len() > 1000,
        "{file}: only {} entities",
        schema.len()
    );
    if let Some(info) = schema
        .iter()
        .find(|i| matches!(i.branch, SchemaInfoBranch::Unrecognized(_)))
    {
        panic!("{file}: unknown meta-type in {info:?}");
    }
    reply::<QueryQmpSchema>(c, file);
}

/// Checks that a decoded list reply has at least `min` items and nothing
/// these bindings do not know.
fn check_known<T: std::fmt::Debug>(file: &str, items: &[T], min: usize) {
    assert!(items.len() >= min, "{file}: only {} items", items.len());
    let text = format!("{items:?}");
    assert!(
        !text.contains("Unrecognized"),
        "{file}: something unknown in {text}"
    );
}

fn block_replies(c: &mut Criterion) {
    let file = "query-block.json";
    check_known(file, &decode_reply::<QueryBlock>(file, &data(file)), 96);
    reply::<QueryBlock>(c, file);

    let file = "query-named-block-nodes.json";
    let nodes = decode_reply::<QueryNamedBlockNodes>(file, &data(file));
    check_known(file, &nodes, 96);
    reply::<QueryNamedBlockNodes>(c, file);

    let file = "query-blockstats.json";
    check_known(
        file,
        &decode_reply::<QueryBlockstats>(file, &data(file)),
        96,
    );
    reply::<QueryBlockstats>(c, file);
}

fn events(c: &mut Criterion) {
    let file = "events.jsonl";
    let text = data(file);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() > 1000, "{file}: only {} events", lines.len());
    for (n, line) in lines.iter().enumerate() {
        let de = &mut serde_json::Deserializer::from_str(line);
        match serde_path_to_error::deserialize::<_, EventMessage<AnyEvent>>(de) {
            Ok(message) if message.event.is_unrecognized() => {
                panic!("{file}:{}: unknown event {}", n + 1, message.event.name())
            }
            Ok(_) => {}
            Err(e) => panic!(
                "{file}:{}: does not decode: at {}: {}",
                n + 1,
                e.path(),
                e.inner()
            ),
        }
    }
    let mut group = c.benchmark_group("event burst");
    group.throughput(Throughput::Elements(lines.len() as u64));
    group.bench_function("typed", |b| {
        b.iter(|| {
            for line in &lines {
                black_box(typed::<EventMessage<AnyEvent>>(black_box(line)));
            }
        })
    });
    group.bench_function("value", |b| {
        b.iter(|| {
            for line in &lines {
                black_box(value(black_box(line)));
            }
        })
    });
    group.finish();
}

// criterion's macros generate undocumented functions.
#[allow(missing_docs)]
mod harness {
    use super::*;
    criterion_group!(benches, query_qmp_schema, block_replies, events);
}
criterion_main!(harness::benches);
