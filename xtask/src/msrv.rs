//! `cargo xtask msrv`: no crate of the workspace depends on a package whose
//! `rust-version` is newer than its own.
//!
//! Clippy's `incompatible_msrv` lint (run by CI with `-D warnings`) checks
//! our code's use of the standard library against `rust-version`; it knows
//! nothing of dependencies.  A user builds with the newest compatible
//! version of each dependency, so when one of them needs a newer Rust than
//! we declare, our `rust-version` is a promise the build breaks.  This reads
//! `cargo metadata` (the versions `Cargo.lock` resolves to) and follows each
//! member's normal and build dependencies, for every target platform, as a
//! user's build would; dev-dependencies only build our tests and are not
//! followed.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;

use anyhow::{bail, Context, Result};
use serde_json::Value;

/// A Rust release, as `rust-version` spells it (`1.80`, `1.85.0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct RustVersion([u32; 3]);

impl RustVersion {
    fn parse(text: &str) -> Result<Self> {
        let mut parts = [0; 3];
        let mut fields = text.split('.');
        for part in &mut parts {
            if let Some(field) = fields.next() {
                *part = field
                    .parse()
                    .with_context(|| format!("bad rust-version {text:?}"))?;
            }
        }
        if fields.next().is_some() {
            bail!("bad rust-version {text:?}");
        }
        Ok(RustVersion(parts))
    }
}

impl fmt::Display for RustVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [major, minor, patch] = self.0;
        write!(f, "{major}.{minor}")?;
        if patch != 0 {
            write!(f, ".{patch}")?;
        }
        Ok(())
    }
}

/// A dependency that needs a newer Rust than the member that pulls it in.
#[derive(Debug, PartialEq, Eq)]
struct TooNew {
    member: String,
    declared: RustVersion,
    package: String,
    needs: RustVersion,
    /// Package names from the member to the dependency.
    path: Vec<String>,
}

/// One member's verdict.
#[derive(Debug)]
struct Member {
    name: String,
    declared: RustVersion,
    dependencies: usize,
    /// The dependency with the newest `rust-version`, and that version.
    newest: Option<(String, RustVersion)>,
}

struct Package<'a> {
    name: &'a str,
    version: &'a str,
    rust_version: Option<RustVersion>,
}

/// Checks `cargo metadata --format-version 1` output.
fn check(metadata: &Value) -> Result<(Vec<Member>, Vec<TooNew>)> {
    let mut packages = HashMap::new();
    for package in array(metadata, "packages")? {
        let rust_version = match package["rust_version"].as_str() {
            Some(text) => Some(RustVersion::parse(text)?),
            None => None,
        };
        packages.insert(
            string(package, "id")?,
            Package {
                name: string(package, "name")?,
                version: string(package, "version")?,
                rust_version,
            },
        );
    }
    let mut dependencies: HashMap<&str, Vec<&str>> = HashMap::new();
    for node in array(&metadata["resolve"], "nodes")? {
        let followed = array(node, "deps")?
            .iter()
            .filter(|dep| {
                dep["dep_kinds"]
                    .as_array()
                    .is_some_and(|kinds| kinds.iter().any(|k| k["kind"] != "dev"))
            })
            .map(|dep| string(dep, "pkg"))
            .collect::<Result<_>>()?;
        dependencies.insert(string(node, "id")?, followed);
    }
    let mut members = Vec::new();
    let mut too_new = Vec::new();
    for id in array(metadata, "workspace_members")? {
        let id = id.as_str().context("a workspace member id")?;
        let member = &packages[id];
        let Some(declared) = member.rust_version else {
            bail!("{} declares no rust-version", member.name);
        };
        // Breadth first, so each path is a shortest one.
        let mut paths: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        let mut queue = VecDeque::from([(id, vec![member.name])]);
        while let Some((from, path)) = queue.pop_front() {
            for &to in dependencies.get(from).into_iter().flatten() {
                if to != id && !paths.contains_key(to) {
                    let mut path = path.clone();
                    path.push(packages[to].name);
                    paths.insert(to, path.clone());
                    queue.push_back((to, path));
                }
            }
        }
        let mut newest: Option<(String, RustVersion)> = None;
        for (dep, path) in &paths {
            let package = &packages[dep];
            let Some(needs) = package.rust_version else {
                continue;
            };
            if newest.as_ref().is_none_or(|(_, version)| *version < needs) {
                newest = Some((format!("{} {}", package.name, package.version), needs));
            }
            if needs > declared {
                too_new.push(TooNew {
                    member: member.name.to_owned(),
                    declared,
                    package: format!("{} {}", package.name, package.version),
                    needs,
                    path: path.iter().map(|name| (*name).to_owned()).collect(),
                });
            }
        }
        members.push(Member {
            name: member.name.to_owned(),
            declared,
            dependencies: paths.len(),
            newest,
        });
    }
    members.sort_by(|a, b| a.name.cmp(&b.name));
    Ok((members, too_new))
}

fn array<'a>(value: &'a Value, key: &str) -> Result<&'a Vec<Value>> {
    value[key]
        .as_array()
        .with_context(|| format!("cargo metadata: no {key:?} array"))
}

fn string<'a>(value: &'a Value, key: &str) -> Result<&'a str> {
    value[key]
        .as_str()
        .with_context(|| format!("cargo metadata: no {key:?} string"))
}

/// Runs `cargo metadata` in the workspace and fails when a member depends
/// on a package that needs a newer Rust than the member declares.
pub fn run(root: &std::path::Path) -> Result<()> {
    let output = std::process::Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--locked"])
        .current_dir(root)
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("can't run cargo metadata")?;
    if !output.status.success() {
        bail!("cargo metadata failed ({})", output.status);
    }
    let metadata: Value =
        serde_json::from_slice(&output.stdout).context("cargo metadata's output")?;
    let (members, too_new) = check(&metadata)?;
    for member in &members {
        let newest = match &member.newest {
            Some((package, needs)) => format!("; the newest needed is {needs} ({package})"),
            None => String::new(),
        };
        eprintln!(
            "msrv: {} declares rust-version {}: {} normal and build dependencies{newest}",
            member.name, member.declared, member.dependencies
        );
    }
    if !too_new.is_empty() {
        let lines: Vec<String> = too_new
            .iter()
            .map(|t| {
                format!(
                    "{} declares rust-version {} but {} needs {} (via {})",
                    t.member,
                    t.declared,
                    t.package,
                    t.needs,
                    t.path.join(" -> ")
                )
            })
            .collect();
        bail!(
            "{}\nraise the crate's rust-version (and the README's \"Minimum supported Rust \
             version\"), or keep the dependency at a version that supports ours",
            lines.join("\n")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn package(name: &str, rust_version: Option<&str>) -> Value {
        json!({ "id": name, "name": name, "version": "1.0.0", "rust_version": rust_version })
    }

    fn dep(pkg: &str, kind: Option<&str>) -> Value {
        json!({ "pkg": pkg, "dep_kinds": [{ "kind": kind, "target": null }] })
    }

    /// `ours` (1.80) depends on `a`, which depends on `deep`; `build` is a
    /// build dependency; `tests` only a dev-dependency.
    fn metadata(deep: &str) -> Value {
        json!({
            "workspace_members": ["ours"],
            "packages": [
                package("ours", Some("1.80")),
                package("a", Some("1.70.0")),
                package("deep", Some(deep)),
                package("build", None),
                package("tests", Some("1.88")),
            ],
            "resolve": { "nodes": [
                { "id": "ours", "deps": [dep("a", None), dep("build", Some("build")), dep("tests", Some("dev"))] },
                { "id": "a", "deps": [dep("deep", None)] },
                { "id": "deep", "deps": [] },
                { "id": "build", "deps": [] },
                { "id": "tests", "deps": [] },
            ] },
        })
    }

    #[test]
    fn a_transitive_dependency_newer_than_the_member_is_reported() {
        let (members, too_new) = check(&metadata("1.85")).unwrap();
        assert_eq!(
            too_new,
            [TooNew {
                member: "ours".to_owned(),
                declared: RustVersion([1, 80, 0]),
                package: "deep 1.0.0".to_owned(),
                needs: RustVersion([1, 85, 0]),
                path: vec!["ours".to_owned(), "a".to_owned(), "deep".to_owned()],
            }]
        );
        assert_eq!(
            members[0].dependencies, 3,
            "dev-dependencies are not followed"
        );
    }

    #[test]
    fn dependencies_as_old_as_the_member_pass() {
        let (members, too_new) = check(&metadata("1.80.0")).unwrap();
        assert!(too_new.is_empty(), "{too_new:?}");
        assert_eq!(
            members[0].newest,
            Some(("deep 1.0.0".to_owned(), RustVersion([1, 80, 0])))
        );
    }

    #[test]
    fn rust_versions_compare_by_number() {
        let v = |text| RustVersion::parse(text).unwrap();
        assert!(v("1.9") < v("1.10"));
        assert_eq!(v("1.85"), v("1.85.0"));
        assert!(v("1.85.1") > v("1.85"));
        assert_eq!(v("1.85.0").to_string(), "1.85");
        assert!(RustVersion::parse("1.x").is_err());
    }
}
