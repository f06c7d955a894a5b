//! `cargo xtask import-schemas QEMU_SOURCE_TREE`: vendor a QEMU release's
//! QAPI schemas into `schemas/`.
//!
//! Copies, byte for byte:
//!
//! - `<tree>/qapi/*.json` to `schemas/qmp/` (old `.json` files there are
//!   removed first, so modules QEMU dropped disappear);
//! - `<tree>/qga/qapi-schema.json` to `schemas/qga/`;
//! - `<tree>/COPYING` to `schemas/COPYING`;
//!
//! and writes `schemas/PROVENANCE.md`: the QEMU version, the tarball the tree
//! came from (from the tree's `SOURCE` file, when it has one), the import
//! date and the sha256 of every vendored file.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

/// Where the tree came from, as its `SOURCE` file records it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Origin {
    tarball: Option<String>,
    sha256: Option<String>,
    package: Option<String>,
}

/// Imports the schemas of `tree` into `schemas` (normally `<root>/schemas`).
pub(crate) fn run(tree: &Path, schemas: &Path) -> Result<()> {
    // Everything is checked before anything in `schemas` is touched.
    for required in [
        "VERSION",
        "COPYING",
        "qapi/qapi-schema.json",
        "qga/qapi-schema.json",
    ] {
        if !tree.join(required).is_file() {
            bail!(
                "{} does not look like a QEMU source tree: {required} is missing",
                tree.display()
            );
        }
    }
    let version = read_to_string(&tree.join("VERSION"))?.trim().to_owned();
    let source = tree.join("SOURCE");
    let origin = if source.is_file() {
        parse_source(&read_to_string(&source)?)
    } else {
        Origin::default()
    };
    let qmp_sources = json_files(&tree.join("qapi"))?;

    let qmp = schemas.join("qmp");
    let qga = schemas.join("qga");
    for dir in [&qmp, &qga] {
        fs::create_dir_all(dir).with_context(|| format!("can't create {}", dir.display()))?;
    }
    for old in json_files(&qmp)? {
        fs::remove_file(&old).with_context(|| format!("can't remove {}", old.display()))?;
    }

    let mut vendored = Vec::new();
    let mut copy = |from: &Path, to: &str| -> Result<()> {
        let dest = schemas.join(to);
        fs::copy(from, &dest)
            .with_context(|| format!("can't copy {} to {}", from.display(), dest.display()))?;
        let bytes = fs::read(&dest).with_context(|| format!("can't read {}", dest.display()))?;
        vendored.push((to.to_owned(), format!("{:x}", Sha256::digest(&bytes))));
        Ok(())
    };
    copy(&tree.join("COPYING"), "COPYING")?;
    copy(&tree.join("qga/qapi-schema.json"), "qga/qapi-schema.json")?;
    for file in &qmp_sources {
        let name = file.file_name().expect("a listed file has a name");
        copy(file, &format!("qmp/{}", name.to_string_lossy()))?;
    }
    vendored.sort();

    let provenance = render_provenance(&version, &origin, &today_utc(), &vendored);
    let path = schemas.join("PROVENANCE.md");
    fs::write(&path, provenance).with_context(|| format!("can't write {}", path.display()))?;
    eprintln!(
        "imported QEMU {version}: {} QMP schema files, the guest agent schema and COPYING into {}",
        qmp_sources.len(),
        schemas.display()
    );
    Ok(())
}

fn read_to_string(path: &Path) -> Result<String> {
    fs::read_to_string(path).with_context(|| format!("can't read {}", path.display()))
}

/// The `*.json` files directly in `dir`, sorted by name.
fn json_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let entries = fs::read_dir(dir).with_context(|| format!("can't list {}", dir.display()))?;
    for entry in entries {
        let path = entry
            .with_context(|| format!("can't list {}", dir.display()))?
            .path();
        if path.extension().is_some_and(|ext| ext == "json") && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Reads the `SOURCE` file `qemu-source` writes into the trees it extracts:
///
/// ```text
/// QEMU 10.2.2: a subset of the upstream source tarball qemu_10.2.2+ds.orig.tar.xz
/// sha256 be05...
/// Debian source package qemu 1:10.2.2+ds-1
/// ```
fn parse_source(text: &str) -> Origin {
    let mut origin = Origin::default();
    for line in text.lines().map(str::trim) {
        if let Some((_, tarball)) = line.rsplit_once("source tarball ") {
            origin.tarball = Some(tarball.trim().to_owned());
        } else if let Some(sha) = line.strip_prefix("sha256 ") {
            origin.sha256 = Some(sha.trim().to_owned());
        } else if let Some(package) = line.strip_prefix("Debian source package ") {
            origin.package = Some(package.trim().to_owned());
        }
    }
    origin
}

fn render_provenance(
    version: &str,
    origin: &Origin,
    date: &str,
    files: &[(String, String)],
) -> String {
    let unknown = "unknown (the source tree had no SOURCE file)";
    let code = |value: &Option<String>| match value {
        Some(v) => format!("`{v}`"),
        None => unknown.to_owned(),
    };
    let mut out = format!(
        "# Provenance of the vendored QAPI schemas\n\
         \n\
         Everything in this directory except this file is QEMU's: copied verbatim from a QEMU\n\
         source tree and never edited by hand. The files are licensed under the GNU General\n\
         Public License, version 2 or (at your option) any later version (GPL-2.0-or-later), as\n\
         their own headers say; `COPYING` is QEMU's copy of the license. They are not covered\n\
         by this project's MIT OR Apache-2.0 license.\n\
         \n\
         | | |\n\
         | --- | --- |\n\
         | QEMU version | {version} |\n\
         | Upstream tarball | {tarball} |\n\
         | Tarball sha256 | {sha256} |\n\
         | Source package | {package} |\n\
         | Imported (UTC) | {date} |\n\
         \n\
         To move to another QEMU release, extract its source tree and re-import; never edit\n\
         these files:\n\
         \n\
         ```sh\n\
         cargo xtask import-schemas <QEMU_SOURCE_TREE>\n\
         ```\n\
         \n\
         It replaces `qmp/*.json`, `qga/qapi-schema.json` and `COPYING` and rewrites this file.\n\
         \n\
         ## Files\n\
         \n\
         | File | sha256 |\n\
         | --- | --- |\n",
        tarball = code(&origin.tarball),
        sha256 = code(&origin.sha256),
        package = match &origin.package {
            Some(p) => format!("Debian `{p}`"),
            None => unknown.to_owned(),
        },
    );
    for (file, sha) in files {
        out.push_str(&format!("| `{file}` | `{sha}` |\n"));
    }
    out
}

/// Today's date in UTC as `YYYY-MM-DD`.
fn today_utc() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    format!("{y:04}-{m:02}-{d:02}")
}

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, <https://howardhinnant.github.io/date_algorithms.html>).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_match_known_days() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(59), (1970, 3, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(19_358), (2023, 1, 1));
        assert_eq!(civil_from_days(20_453), (2025, 12, 31));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }

    #[test]
    fn source_file_gives_tarball_hash_and_package() {
        let origin = parse_source(
            "QEMU 10.2.2: a subset of the upstream source tarball qemu_10.2.2+ds.orig.tar.xz\n\
             sha256 be05230fe47a6937cd29f28f562932c8125f9c93c2a82c625198f7a4aa601dfb\n\
             Debian source package qemu 1:10.2.2+ds-1\n\
             Subset: qapi/*.json, VERSION, COPYING\n",
        );
        assert_eq!(
            origin,
            Origin {
                tarball: Some("qemu_10.2.2+ds.orig.tar.xz".into()),
                sha256: Some(
                    "be05230fe47a6937cd29f28f562932c8125f9c93c2a82c625198f7a4aa601dfb".into()
                ),
                package: Some("qemu 1:10.2.2+ds-1".into()),
            }
        );
    }

    fn write(path: &Path, text: &str) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    #[test]
    fn import_replaces_schemas_verbatim_and_records_hashes() {
        let dir = crate::test_dir("import");
        let tree = dir.join("qemu");
        write(&tree.join("VERSION"), "9.9.9\n");
        write(&tree.join("COPYING"), "GPL\n");
        write(
            &tree.join("SOURCE"),
            "QEMU 9.9.9: a subset of the upstream source tarball qemu_9.9.9.tar.xz\nsha256 abc\n",
        );
        // Tabs, odd spacing and no final newline must survive byte for byte.
        let root = "{ 'include': 'b.json' }\n\t# x  \n";
        write(&tree.join("qapi/qapi-schema.json"), root);
        write(&tree.join("qapi/b.json"), "{ 'enum': 'E', 'data': [] }");
        write(&tree.join("qapi/meson.build"), "not a schema\n");
        write(&tree.join("qga/qapi-schema.json"), "{ 'command': 'c' }\n");
        let schemas = dir.join("schemas");
        write(&schemas.join("qmp/dropped.json"), "{}\n");
        write(&schemas.join("qmp/notes.txt"), "kept\n");

        run(&tree, &schemas).unwrap();

        assert_eq!(
            fs::read_to_string(schemas.join("qmp/qapi-schema.json")).unwrap(),
            root
        );
        assert_eq!(
            fs::read_to_string(schemas.join("qmp/b.json")).unwrap(),
            "{ 'enum': 'E', 'data': [] }"
        );
        assert!(!schemas.join("qmp/dropped.json").exists());
        assert!(!schemas.join("qmp/meson.build").exists());
        assert!(schemas.join("qmp/notes.txt").exists());
        assert_eq!(
            fs::read_to_string(schemas.join("COPYING")).unwrap(),
            "GPL\n"
        );
        assert_eq!(
            fs::read_to_string(schemas.join("qga/qapi-schema.json")).unwrap(),
            "{ 'command': 'c' }\n"
        );
        let provenance = fs::read_to_string(schemas.join("PROVENANCE.md")).unwrap();
        assert!(
            provenance.contains("| QEMU version | 9.9.9 |"),
            "{provenance}"
        );
        assert!(provenance.contains("| Upstream tarball | `qemu_9.9.9.tar.xz` |"));
        assert!(provenance.contains("| Tarball sha256 | `abc` |"));
        assert!(provenance.contains("GPL-2.0-or-later"));
        assert!(provenance.contains("cargo xtask import-schemas"));
        // sha256("GPL\n")
        let copying = format!("{:x}", Sha256::digest(b"GPL\n"));
        assert!(provenance.contains(&format!("| `COPYING` | `{copying}` |")));
        let listed: Vec<&str> = provenance
            .lines()
            .filter_map(|l| l.strip_prefix("| `"))
            .filter_map(|l| l.split('`').next())
            .collect();
        assert_eq!(
            listed,
            [
                "COPYING",
                "qga/qapi-schema.json",
                "qmp/b.json",
                "qmp/qapi-schema.json"
            ]
        );
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn import_from_a_non_qemu_tree_touches_nothing() {
        let dir = crate::test_dir("import-bad");
        let schemas = dir.join("schemas");
        write(&schemas.join("qmp/kept.json"), "{}\n");
        let err = run(&dir.join("empty"), &schemas).unwrap_err().to_string();
        assert!(
            err.contains("does not look like a QEMU source tree"),
            "{err}"
        );
        assert!(schemas.join("qmp/kept.json").exists());
        fs::remove_dir_all(dir).unwrap();
    }
}
