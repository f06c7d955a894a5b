//! A command of one protocol cannot be executed on a session of the other:
//! the compiler refuses it, with a message that says which is which.
//!
//! The expected compiler output is in `tests/compile_fail/*.stderr`;
//! `TRYBUILD=overwrite cargo test -p qapi-client --test protocols` rewrites
//! it after a deliberate change.

#[test]
fn commands_of_the_other_protocol_do_not_compile() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/compile_fail/*.rs");
}
