//! One binding, many QEMUs: the schema report against real QEMU 10.0 (on
//! PATH), 7.2 and the newest Debian ships (`QAPI_TEST_QEMU_OLD` / `_NEW`,
//! unpacked by `.ci/run`), checked against what each QEMU really does.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use qapi_client::{Qga, Qmp, SchemaReport, Support};
use qapi_introspect::{Comparison, Presence, Schema};
use qapi_types::QapiErrorClass;

/// A small PC, paused, with one disk, so block and CPU queries have content.
const PC: &[&str] = &[
    "-M",
    "pc",
    "-S",
    "-m",
    "64",
    "-blockdev",
    "driver=null-co,node-name=disk0,size=1048576",
    "-device",
    "ide-hd,drive=disk0,bus=ide.0",
];

fn version_of(qmp: &Qmp) -> String {
    let v = &qmp.greeting().version.qemu;
    format!("{}.{}.{}", v.major, v.minor, v.micro)
}

#[tokio::test]
async fn the_report_says_what_each_qemu_really_does() {
    for (label, binary, _) in common::qemus("the_report_says_what_each_qemu_really_does") {
        let qemu = common::qemu_at(&binary, PC);
        let qmp = Qmp::connect_unix(&qemu.socket).await.unwrap();
        let version = version_of(&qmp);
        let report = qmp.schema_report().await.unwrap();
        let counts = |presence| report.comparison().commands_with(presence).count();
        eprintln!(
            "QEMU {version} ({label}): {} commands in both ({} with differences), {} missing, {} unknown to the bindings; events: {} missing",
            counts(Presence::Both),
            report.comparison().commands.values().filter(|i| !i.changes.is_empty()).count(),
            counts(Presence::LeftOnly),
            counts(Presence::RightOnly),
            report.missing_events().count(),
        );

        // The read-only matrix: supported commands decode; missing ones
        // fail with CommandNotFound.
        let mut decoded = 0;
        for outcome in common::matrix::run(&qmp).await {
            match report.command(outcome.command) {
                support if support.is_supported() => match &outcome.result {
                    Ok(_) => decoded += 1,
                    Err(error) => panic!(
                        "QEMU {version}: {} is supported ({support:?}) but failed: {error}",
                        outcome.command
                    ),
                },
                Support::Missing => {
                    let error = outcome.result.as_ref().err();
                    assert!(
                        error.is_some_and(|e| e.is_class(&QapiErrorClass::CommandNotFound)),
                        "QEMU {version}: {} is missing but gave {:?}",
                        outcome.command,
                        outcome.result.as_ref().map(|_| "a reply")
                    );
                }
                other => panic!("{}: {other:?}", outcome.command),
            }
        }
        eprintln!("QEMU {version}: {decoded} matrix commands supported and decoded");
        assert!(
            decoded >= 30,
            "only {decoded} matrix commands decoded on QEMU {version}"
        );

        // Every command the report calls missing really is.
        let missing: Vec<&str> = report.missing_commands().collect();
        for name in &missing {
            let error = qmp.execute_raw(name, None).await.unwrap_err();
            assert!(
                error.is_class(&QapiErrorClass::CommandNotFound),
                "QEMU {version}: {name} reported missing, but: {error}"
            );
        }
        assert!(qmp
            .supports::<qapi_types::commands::QueryStatus>()
            .await
            .unwrap());
        if label == "old" && version.starts_with("7.2.") {
            check_example_report(&report.to_string());
        }
    }
}

/// The report for 7.2 is checked in as a readable example (README links
/// it); it must stay what the bindings really say.  `UPDATE_SNAPSHOTS=1`
/// rewrites it.  It is in the repository's `docs/`, not in the packaged
/// crate, where this check is skipped.
fn check_example_report(report: &str) {
    const EXAMPLE: &str = "docs/schema-report-qemu-7.2.txt";
    if std::env::var("UPDATE_SNAPSHOTS").as_deref() == Ok("1") {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(EXAMPLE);
        std::fs::write(&path, report).unwrap();
        return;
    }
    let Some(path) = common::repository_file(EXAMPLE, "the check of the example report") else {
        return;
    };
    let checked_in = std::fs::read_to_string(&path).unwrap();
    // The first line names the exact stable release (7.2.22).
    let body = |text: &str| text.lines().skip(1).collect::<Vec<_>>().join("\n");
    assert!(
        body(&checked_in) == body(report),
        "docs/schema-report-qemu-7.2.txt is out of date: run the compat tests with UPDATE_SNAPSHOTS=1"
    );
}

/// Our introspection of a QEMU source tree, as `qapi-codegen` writes it.
fn introspect_tree(tree: &Path) -> Schema {
    let version = std::fs::read_to_string(tree.join("VERSION")).unwrap();
    let rules = qapi_codegen::Rules::for_version(&version).unwrap_or_default();
    let schema = qapi_codegen::Config::new()
        .rules(rules)
        .load(tree.join("qapi/qapi-schema.json"))
        .unwrap();
    let document = qapi_codegen::introspect::introspection(&schema);
    Schema::from_json(&document.to_string()).unwrap()
}

fn source_tree(version: &str) -> Option<std::path::PathBuf> {
    let dir = std::env::var_os("QAPI_QEMU_SOURCE_DIR")?;
    let tree = Path::new(&dir).join(version);
    tree.join("qapi").is_dir().then_some(tree)
}

fn unconditional(comparison: &Comparison, presence: Presence, side: &Schema) -> BTreeSet<String> {
    comparison
        .commands_with(presence)
        .filter(|name| side.get(name).is_some_and(|e| e.condition.is_none()))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn live_schemas_equal_their_source_trees_and_the_diff_agrees_with_the_report() {
    let test = "live_schemas_equal_their_source_trees_and_the_diff_agrees_with_the_report";
    let required = std::env::var("QAPI_TEST_REQUIRE_QEMU").as_deref() == Ok("1");
    let bindings = Schema::from_json(qapi_types::introspection::SCHEMA).unwrap();
    for (label, binary, _) in common::qemus(test) {
        let qemu = common::qemu_at(&binary, &["-M", "none"]);
        let qmp = Qmp::connect_unix(&qemu.socket).await.unwrap();
        let version = version_of(&qmp);
        // A release's stable updates keep its schema: 7.2.22 ↔ the 7.2 tree.
        let v = &qmp.greeting().version.qemu;
        let tree =
            source_tree(&version).or_else(|| source_tree(&format!("{}.{}", v.major, v.minor)));
        let Some(tree) = tree else {
            eprintln!("SKIPPED {test} for QEMU {version} ({label}): no source tree for it");
            continue;
        };
        let live = qmp
            .execute_raw("query-qmp-schema", None)
            .await
            .unwrap()
            .to_string();
        let live = Schema::from_json(&live).unwrap();
        let source = introspect_tree(&tree);

        // Our introspection of the tree equals the live QEMU's, except for
        // what the build left out (conditional parts).
        let same_release = Comparison::new(&source, &live, "source", "live");
        for (name, item) in same_release.commands.iter().chain(&same_release.events) {
            match item.presence {
                Presence::Both => {
                    let unexplained: Vec<_> = item.unconditional_changes().collect();
                    assert!(
                        unexplained.is_empty(),
                        "QEMU {version} {name}: {unexplained:?}"
                    );
                }
                Presence::LeftOnly => {
                    assert!(item.condition.is_some(), "QEMU {version}: {name} missing")
                }
                Presence::RightOnly => panic!("QEMU {version}: {name} not in its own source"),
            }
        }

        // The diff from this release's tree to the bindings' schema names
        // the same missing commands as the report (build conditions aside).
        let report = SchemaReport::new(
            &qmp.execute_raw("query-qmp-schema", None)
                .await
                .unwrap()
                .to_string(),
            &version,
        )
        .unwrap();
        let diff = Comparison::new(&source, &bindings, "source", "bindings");
        let added_since = unconditional(&diff, Presence::RightOnly, &bindings);
        // Commands this release has only under a build condition (QEMU 10.1
        // dropped the target conditions, so 10.2.2 lists them plainly) are
        // explained by this build, not by the release.
        let reported_missing: BTreeSet<String> =
            unconditional(report.comparison(), Presence::LeftOnly, &bindings)
                .into_iter()
                .filter(|name| source.get(name).is_none_or(|e| e.condition.is_none()))
                .collect();
        assert_eq!(
            added_since, reported_missing,
            "QEMU {version}: diff and report disagree"
        );
        eprintln!(
            "QEMU {version}: live schema = source tree {} modulo build conditions; {} commands added since, as the report says",
            tree.display(),
            added_since.len()
        );
        if required && label != "new" {
            assert!(!added_since.is_empty() || version.starts_with("10.2"));
        }
    }
}

#[tokio::test]
async fn guest_agents_list_what_the_bindings_know() {
    for (label, _, ga) in common::qemus("guest_agents_list_what_the_bindings_know") {
        let Some(ga) = ga else {
            eprintln!("SKIPPED guest agent of the {label} QEMU: no qemu-ga binary given");
            continue;
        };
        let agent = common::qemu_ga_at(&ga);
        let qga = Qga::connect_unix(agent.socket()).await.unwrap();
        let report = qga.agent_report().await.unwrap();
        eprint!("{report}");
        for command in common::QGA_READ_ONLY {
            assert!(
                report.enabled.iter().any(|c| c == command),
                "{command} not enabled"
            );
        }
        assert!(!report.enabled.iter().any(|c| c == "guest-shutdown"));
        // Older agents know nothing the bindings do not.
        if label != "new" {
            assert!(report.unknown.is_empty(), "{report}");
        }
        // Every enabled read-only command decodes typed.
        use qga_types::commands as g;
        qga.execute(&g::GuestPing {}).await.unwrap();
        qga.execute(&g::GuestGetOsinfo {}).await.unwrap();
        qga.execute(&g::GuestGetHostName {}).await.unwrap();
        qga.execute(&g::GuestGetTimezone {}).await.unwrap();
        qga.execute(&g::GuestNetworkGetInterfaces {}).await.unwrap();
    }
}
