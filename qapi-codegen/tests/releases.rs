//! The full QMP and guest-agent schemas of every supported QEMU release
//! check with that release's rules, and our model of them equals the one
//! QEMU's own front end of that release builds.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::Command;

use qapi_codegen::{dump, Config, Rules};

/// The schemas every QEMU source tree holds.
const SCHEMAS: [&str; 2] = ["qapi/qapi-schema.json", "qga/qapi-schema.json"];

fn rules_for(version: &str) -> Rules {
    Rules::for_version(version).expect("a known release")
}

#[test]
fn every_release_checks_with_its_own_rules() {
    let mut failures = Vec::new();
    for version in common::VERSIONS {
        let Some(tree) = common::qemu_source(version) else {
            continue;
        };
        let rules = rules_for(version);
        for schema in SCHEMAS {
            match Config::new().rules(rules).load(tree.join(schema)) {
                Ok(model) => eprintln!(
                    "QEMU {version} {schema} (rules {rules}): {} commands, {} events, {} types",
                    model.commands().count(),
                    model.events().count(),
                    model.types().filter(|t| t.info.is_some()).count(),
                ),
                Err(err) => {
                    failures.push(format!("QEMU {version} {schema} (rules {rules}):\n{err}"))
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn newest_rules_reject_older_releases_as_qemu_does() {
    // QEMU 10.2's front end rejects the 10.0 schemas (its doc rules got
    // stricter); so must ours with the default rules.
    let Some(tree) = common::qemu_source("10.0.2") else {
        return;
    };
    let err = Config::new()
        .load(tree.join(SCHEMAS[0]))
        .expect_err("10.2 rules reject the 10.0.2 QMP schema");
    let text = err.to_string();
    assert!(
        text.contains("documentation line longer than 70 characters")
            || text.contains("Use two spaces between sentences"),
        "{text}"
    );
}

/// Prints the model of `schema` with QEMU's own front end and test
/// harness from `tree` (the harness is QEMU's `test-qapi.py`, run in place).
fn qemu_dump(tree: &Path, schema: &Path) -> Option<String> {
    let suite = tree.join("tests/qapi-schema");
    let program = "import sys\n\
         src = open('test-qapi.py').read().replace(\"if __name__ == '__main__':\", 'if False:')\n\
         exec(compile(src, 'test-qapi.py', 'exec'))\n\
         test_frontend(sys.argv[1])\n";
    let output = Command::new("python3")
        .arg("-c")
        .arg(program)
        .arg(schema)
        .current_dir(&suite)
        .env("PYTHONPATH", tree.join("scripts"))
        .output();
    match output {
        Ok(out) if out.status.success() => Some(String::from_utf8_lossy(&out.stdout).into_owned()),
        Ok(out) => panic!(
            "QEMU's front end failed on {}:\n{}",
            schema.display(),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => {
            if std::env::var("QAPI_TEST_REQUIRE_QEMU").is_ok_and(|v| v == "1") {
                panic!("python3 is needed to run QEMU's front end: {e}");
            }
            // Not captured by libtest, unlike `eprintln!`.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: python3 is needed to run QEMU's front end: {e}"
            );
            None
        }
    }
}

/// QEMU 5.2 and 7.2's harnesses print a few things in older forms; this
/// rewrites their output into the current form, independently of our code:
/// the built-in module was `None`, `QType` had a C prefix, sections printed
/// their tag as written (`None` when untagged), and 5.2's conditions were lists of C expressions of
/// the forms `defined(X)` and `defined(X) || defined(Y)`.
fn modernize(qemu_output: &str) -> String {
    let mut out = String::with_capacity(qemu_output.len());
    let mut lines = qemu_output.lines().peekable();
    while let Some(line) = lines.next() {
        let line = match line {
            "module None" => "module ./builtin".to_owned(),
            "    section=None" => "    section=Plain".to_owned(),
            "    section=TODO" => "    section=Todo".to_owned(),
            "enum QType" => {
                if lines.peek() == Some(&"    prefix QTYPE") {
                    lines.next();
                }
                line.to_owned()
            }
            _ => match line.trim_start().strip_prefix("if [") {
                Some(list) => {
                    let indent = &line[..line.len() - line.trim_start().len()];
                    format!("{indent}if {}", c_conditions(list.trim_end_matches(']')))
                }
                None => line.to_owned(),
            },
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// `'defined(A)', 'defined(B) || defined(C)'` in the structured form.
fn c_conditions(list: &str) -> String {
    let one = |expr: &str| -> String {
        let names: Vec<String> = expr
            .split("||")
            .map(|d| {
                let d = d.trim();
                let name = d
                    .strip_prefix("defined(")
                    .and_then(|d| d.strip_suffix(')'))
                    .unwrap_or_else(|| panic!("unexpected 5.2 condition {d}"));
                format!("'{name}'")
            })
            .collect();
        if names.len() == 1 {
            names[0].clone()
        } else {
            format!("{{'any': [{}]}}", names.join(", "))
        }
    };
    let items: Vec<String> = list
        .split("', '")
        .map(|s| one(s.trim_matches('\'')))
        .collect();
    let text = if items.len() == 1 {
        items[0].clone()
    } else {
        format!("{{'all': [{}]}}", items.join(", "))
    };
    // A lone name prints bare at the top level.
    match text.strip_prefix('\'').and_then(|t| t.strip_suffix('\'')) {
        Some(bare) if !bare.contains('\'') => bare.to_owned(),
        _ => text,
    }
}

#[test]
fn models_of_real_schemas_equal_qemus_own() {
    for version in common::VERSIONS {
        let Some(tree) = common::qemu_source(version) else {
            continue;
        };
        for schema in SCHEMAS {
            let path = tree.join(schema);
            let Some(expected) = qemu_dump(&tree, &path) else {
                return;
            };
            let expected = modernize(&expected);
            let model = Config::new()
                .rules(rules_for(version))
                .load(&path)
                .unwrap_or_else(|e| panic!("QEMU {version} {schema}: {e}"));
            let ours = dump::dump(&model);
            if ours != expected {
                let line = expected
                    .lines()
                    .zip(ours.lines())
                    .position(|(a, b)| a != b)
                    .unwrap_or(expected.lines().count().min(ours.lines().count()));
                panic!(
                    "QEMU {version} {schema}: our model differs from QEMU's at line {}:\n\
                     QEMU: {:?}\nours: {:?}",
                    line + 1,
                    expected.lines().nth(line),
                    ours.lines().nth(line)
                );
            }
            eprintln!(
                "QEMU {version} {schema}: model equals QEMU's ({} lines)",
                ours.lines().count()
            );
        }
    }
}
