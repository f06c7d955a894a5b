//! Front-end benchmarks (criterion); the benchmarks land with the front end.

fn main() {}
