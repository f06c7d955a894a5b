//! Source files and locations.
//!
//! Every value the parser produces carries a [`Location`]: the file it came
//! from and its line and column.  Files are kept in a [`SourceMap`], which also
//! remembers which `include` directive pulled each file in, so diagnostics can
//! print QEMU's "In file included from" chain.

use std::path::{Component, Path, PathBuf};

/// Index of a file in a [`SourceMap`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FileId(pub(crate) u32);

impl FileId {
    /// The file's position in its [`SourceMap`].
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// A position in a schema file: 1-based line and column.
///
/// Columns count characters, with tab stops every 8 columns, as QEMU's
/// parser counts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    /// The file.
    pub file: FileId,
    /// 1-based line number.
    pub line: u32,
    /// 1-based column number.
    pub col: u32,
}

/// One schema file.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The path used to open the file (the including file's directory joined
    /// with the `include` value, as QEMU does).
    pub path: PathBuf,
    /// The path as shown in diagnostics.
    pub display: String,
    /// Where the `include` directive that pulled this file in is, if any.
    pub included_from: Option<Location>,
}

/// All files read while loading one schema.
#[derive(Debug, Clone, Default)]
pub struct SourceMap {
    files: Vec<SourceFile>,
}

impl SourceMap {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a file and returns its id.
    pub fn add(&mut self, path: PathBuf, included_from: Option<Location>) -> FileId {
        let display = path.to_string_lossy().into_owned();
        let id = FileId(self.files.len() as u32);
        self.files.push(SourceFile {
            path,
            display,
            included_from,
        });
        id
    }

    /// The file with this id.
    pub fn file(&self, id: FileId) -> &SourceFile {
        &self.files[id.0 as usize]
    }

    /// All files, in the order they were first read.
    pub fn files(&self) -> impl Iterator<Item = (FileId, &SourceFile)> {
        self.files
            .iter()
            .enumerate()
            .map(|(i, f)| (FileId(i as u32), f))
    }

    /// The path of a file.
    pub fn path(&self, id: FileId) -> &Path {
        &self.file(id).path
    }

    /// The name of a file as shown in diagnostics.
    pub fn display(&self, id: FileId) -> &str {
        &self.file(id).display
    }

    /// Rewrites every displayed file name to be relative to `dir` when it lies
    /// below it (QEMU's test harness strips the test directory the same way).
    pub fn strip_display_prefix(&mut self, dir: &Path) {
        for file in &mut self.files {
            if let Ok(rel) = file.path.strip_prefix(dir) {
                file.display = rel.to_string_lossy().into_owned();
            }
        }
    }
}

/// Like Python's `os.path.abspath`, which QEMU uses to compare included
/// files: absolute and lexically normalized, symbolic links not resolved.
pub(crate) fn absolute(path: &Path) -> PathBuf {
    let joined = if path.is_absolute() {
        path.to_owned()
    } else {
        std::env::current_dir()
            .map(|d| d.join(path))
            .unwrap_or_else(|_| path.to_owned())
    };
    let mut out = PathBuf::new();
    for comp in joined.components() {
        match comp {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}
