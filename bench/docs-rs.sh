#!/usr/bin/env bash
# docs-rs.sh
#
# Builds qapi-types' documentation the way docs.rs does — a nightly
# toolchain, every feature (`[package.metadata.docs.rs] all-features`),
# `--cfg docsrs` for rustdoc (so items show the feature they need) — in a
# target directory of its own, from scratch, and reports what docs.rs limits
# (15 minutes, 6.4 GB of memory at the time of writing): the wall time, the
# peak memory of the largest process (rustdoc), the size of the HTML and the
# number of pages. Prints a markdown row for the docs.rs table of
# BENCHMARKS.md.
#
# Needs a nightly toolchain (`cargo +nightly`); without one it says so and
# exits 0, so CI can run it on machines that have none. `-D warnings` makes
# a broken intra-doc link under --cfg docsrs fail the build.
set -euo pipefail

say() { echo "docs-rs: $*" >&2; }

cd "$(dirname "${BASH_SOURCE[0]}")/.."
if ! cargo +nightly --version >/dev/null 2>&1; then
  say "SKIPPED: no nightly toolchain (docs.rs builds with nightly; install one with rustup to run this)"
  exit 0
fi
[ -x /usr/bin/time ] || { say "GNU time (/usr/bin/time) is needed for the peak memory"; exit 1; }
unset RUSTC_WRAPPER RUSTFLAGS CARGO_BUILD_RUSTFLAGS CARGO_ENCODED_RUSTFLAGS
target=${DOCS_RS_TARGET_DIR:-$PWD/target/docs-rs}
rm -rf "$target"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# Dependencies are fetched first, so no download is timed.
cargo +nightly fetch --quiet
start=$(date +%s.%N)
RUSTDOCFLAGS="--cfg docsrs -D warnings" CARGO_TARGET_DIR=$target \
  /usr/bin/time -v -o "$log" \
  cargo +nightly doc --quiet --frozen -p qapi-types --all-features --no-deps
end=$(date +%s.%N)
seconds=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
peak_kb=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$log")
html=$target/doc/qapi_types
bytes=$(du -sb "$html" | cut -f1)
pages=$(find "$html" -name '*.html' | wc -l)
toolchain=$(rustc +nightly --version)
commit=$(git rev-parse --short=7 HEAD)
[ -z "$(git status --porcelain -- qapi-types)" ] || commit="$commit+dirty"
say "$toolchain: ${seconds} s, peak ${peak_kb} KB, HTML $((bytes / 1000000)) MB in $pages pages"
printf '| %s | `%s` | %s | %s s | %s MB | %s MB | %s |\n' \
  "$(date +%F)" "$commit" "$toolchain" "$seconds" "$((peak_kb / 1000))" "$((bytes / 1000000))" "$pages"
