//! Front-end benchmarks: parse and check QEMU's full QMP and guest-agent
//! schemas as vendored in `schemas/`.
//!
//! Run with `cargo bench -p qapi-rs-codegen --bench front_end`.  The
//! whole-process comparison with QEMU's Python front end lives in
//! `bench/compare-front-end.sh` (see BENCHMARKS.md).

// The tests' helper: `schemas/` is in the repository, not in the packaged
// crate, where the benchmark skips (or fails, with QAPI_TEST_REQUIRE_QEMU=1).
#[path = "../tests/common/mod.rs"]
mod common;

use criterion::{criterion_group, criterion_main, Criterion};
use qapi_codegen::{parser, Config, Rules};

fn front_end(c: &mut Criterion) {
    let Some(qmp) = common::repository_file("schemas/qmp/qapi-schema.json") else {
        return;
    };
    let Some(qga) = common::repository_file("schemas/qga/qapi-schema.json") else {
        return;
    };
    c.bench_function("parse+check QMP schema", |b| {
        b.iter(|| {
            Config::new()
                .load(&qmp)
                .expect("the vendored schema is valid")
        })
    });
    c.bench_function("parse QMP schema", |b| {
        b.iter(|| parser::parse_schema(&qmp, Rules::default()).expect("the vendored schema parses"))
    });
    c.bench_function("parse+check QGA schema", |b| {
        b.iter(|| {
            Config::new()
                .load(&qga)
                .expect("the vendored schema is valid")
        })
    });
}

// criterion's macros generate undocumented functions.
#[allow(missing_docs)]
mod harness {
    use super::*;
    criterion_group!(benches, front_end);
}
criterion_main!(harness::benches);
