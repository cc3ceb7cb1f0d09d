//! Stripping the staged tree, the way abuild does it.
//!
//! Files are classified by their first bytes, never by name:
//!
//! | file | command |
//! |---|---|
//! | ELF executable (`ET_EXEC`) | `strip` (all symbols) |
//! | ELF shared object or PIE (`ET_DYN`) | `strip --strip-unneeded` (keeps the dynamic symbols) |
//! | static archive (`!<arch>`) | `strip --strip-debug` (keeps the symbol index the linker needs) |
//! | relocatable objects, kernel modules, anything else | left alone |
//!
//! Every call passes `-D` (deterministic archives: zero uid, gid and
//! timestamps) and the files in sorted order, so stripping is reproducible.
//! The files are found here, on the host, by reading only their first bytes;
//! `strip` itself runs through a [`Runner`], which under bubblewrap starts it
//! inside the sandbox (`build/steps.rs`), since the files were made by the
//! build and may be crafted to exploit binutils.

use std::ffi::OsString;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use crate::process::{Cmd, ProcessError};

/// What kind of strippable file a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// ELF `ET_EXEC`.
    Executable,
    /// ELF `ET_DYN` (shared library or position-independent executable).
    Shared,
    /// An `ar` archive.
    Archive,
}

/// Classify a file by its header bytes; `None` for anything not stripped.
pub(crate) fn classify(head: &[u8]) -> Option<Kind> {
    if head.starts_with(b"!<arch>\n") {
        return Some(Kind::Archive);
    }
    if head.len() < 18 || !head.starts_with(b"\x7fELF") {
        return None;
    }
    // e_ident[EI_DATA]: 1 little-endian, 2 big-endian; e_type at offset 16.
    let e_type = match head[5] {
        1 => u16::from_le_bytes([head[16], head[17]]),
        2 => u16::from_be_bytes([head[16], head[17]]),
        _ => return None,
    };
    match e_type {
        2 => Some(Kind::Executable),
        3 => Some(Kind::Shared),
        _ => None,
    }
}

/// The files to strip under `root`, by kind, each list sorted.
pub(crate) fn find(root: &Path) -> std::io::Result<Vec<(Kind, Vec<PathBuf>)>> {
    let mut exe = Vec::new();
    let mut shared = Vec::new();
    let mut archive = Vec::new();
    for entry in walkdir::WalkDir::new(root).sort_by_file_name() {
        let entry = entry.map_err(std::io::Error::other)?;
        if !entry.file_type().is_file() {
            continue;
        }
        let mut head = [0u8; 18];
        let mut f = std::fs::File::open(entry.path())?;
        let mut n = 0;
        while n < head.len() {
            let r = f.read(&mut head[n..])?;
            if r == 0 {
                break;
            }
            n += r;
        }
        match classify(&head[..n]) {
            Some(Kind::Executable) => exe.push(entry.into_path()),
            Some(Kind::Shared) => shared.push(entry.into_path()),
            Some(Kind::Archive) => archive.push(entry.into_path()),
            None => {}
        }
    }
    Ok([
        (Kind::Executable, exe),
        (Kind::Shared, shared),
        (Kind::Archive, archive),
    ]
    .into_iter()
    .filter(|(_, v)| !v.is_empty())
    .collect())
}

/// The flags for one kind.
pub(crate) fn flags(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Executable => &["-D"],
        Kind::Shared => &["-D", "--strip-unneeded"],
        Kind::Archive => &["-D", "--strip-debug"],
    }
}

/// How `strip` is started: `program` with `args` before strip's own flags,
/// seeing the staged tree at `root_seen` (`/forge/pkg` in the sandbox).
#[derive(Debug, Clone)]
pub(crate) struct Runner {
    /// The program to run: `strip` itself, or bwrap.
    pub program: PathBuf,
    /// The words before strip's flags (bwrap's, ending in `-- strip`).
    pub args: Vec<OsString>,
    /// Where the tree being stripped appears to `strip`.
    pub root_seen: PathBuf,
}

/// Strip everything strippable under `root` through `runner`; returns how
/// many files were stripped. Without a `strip` program, a tree with nothing
/// to strip is fine and any other is an error.
pub(crate) fn strip_tree(runner: Option<&Runner>, root: &Path) -> Result<usize, StripError> {
    let groups = find(root).map_err(StripError::Scan)?;
    let Some(runner) = runner else {
        return match groups.first() {
            Some((_, files)) => Err(StripError::NoStrip(files[0].clone())),
            None => Ok(0),
        };
    };
    let mut count = 0;
    for (kind, files) in groups {
        // Keep command lines well under the argument-size limit.
        for chunk in files.chunks(200) {
            let seen = chunk.iter().map(|f| match f.strip_prefix(root) {
                Ok(rel) => runner.root_seen.join(rel),
                Err(_) => f.clone(),
            });
            Cmd::new(&runner.program)
                .args(&runner.args)
                .args(flags(kind))
                .arg("--")
                .args(seen)
                .run()
                .map_err(StripError::Run)?;
            count += chunk.len();
        }
    }
    Ok(count)
}

/// Why stripping failed.
#[derive(Debug, thiserror::Error)]
pub enum StripError {
    /// Reading the tree failed.
    #[error("scanning for ELF files")]
    Scan(#[source] std::io::Error),
    /// There are files to strip but no `strip` program.
    #[error("`strip` (binutils) is not installed, and {} needs stripping; install binutils or use the `!strip` option", .0.display())]
    NoStrip(PathBuf),
    /// `strip` failed.
    #[error("running strip")]
    Run(#[source] ProcessError),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn elf(data: u8, e_type: u16) -> Vec<u8> {
        let mut h = vec![0x7f, b'E', b'L', b'F', 2, data, 1, 0];
        h.resize(16, 0);
        if data == 2 {
            h.extend_from_slice(&e_type.to_be_bytes());
        } else {
            h.extend_from_slice(&e_type.to_le_bytes());
        }
        h
    }

    #[test]
    fn classification() {
        let cases: Vec<(Vec<u8>, Option<Kind>)> = vec![
            (elf(1, 2), Some(Kind::Executable)),
            (elf(1, 3), Some(Kind::Shared)),
            (elf(2, 3), Some(Kind::Shared)),
            (elf(1, 1), None),
            (elf(3, 2), None),
            (b"!<arch>\nfoo.o/".to_vec(), Some(Kind::Archive)),
            (b"#!/bin/sh\necho hi\n".to_vec(), None),
            (b"\x7fELF".to_vec(), None),
            (Vec::new(), None),
        ];
        for (head, want) in cases {
            assert_eq!(classify(&head), want, "{head:?}");
        }
    }

    #[test]
    fn strips_a_real_binary_and_leaves_scripts() {
        if !crate::test_tools::require_tools(&["cc", "strip"]) {
            return;
        }
        let path = std::env::var_os("PATH").unwrap_or_default();
        let cc = crate::process::find_in_path("cc", &path).expect("cc on PATH");
        let strip = crate::process::find_in_path("strip", &path).expect("strip on PATH");
        let dir = tempfile::tempdir().unwrap();
        let c = dir.path().join("m.c");
        std::fs::write(
            &c,
            "int helper(void){return 1;}\nint main(void){return helper()-1;}\n",
        )
        .unwrap();
        let bin = dir.path().join("root/usr/bin/m");
        std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
        Cmd::new(cc)
            .arg("-g")
            .arg("-o")
            .arg(&bin)
            .arg(&c)
            .run()
            .unwrap();
        let script = dir.path().join("root/usr/bin/s");
        std::fs::write(&script, "#!/bin/sh\n").unwrap();
        let before = std::fs::metadata(&bin).unwrap().len();
        let found = find(&dir.path().join("root")).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].1, vec![bin.clone()]);
        assert!(matches!(
            strip_tree(None, &dir.path().join("root")),
            Err(StripError::NoStrip(_))
        ));
        let runner = Runner {
            program: strip,
            args: Vec::new(),
            root_seen: dir.path().join("root"),
        };
        assert_eq!(
            strip_tree(Some(&runner), &dir.path().join("root")).unwrap(),
            1
        );
        let after = std::fs::metadata(&bin).unwrap().len();
        assert!(after < before, "{after} < {before}");
        assert_eq!(std::fs::read(&script).unwrap(), b"#!/bin/sh\n");
        // The stripped binary still runs.
        Cmd::new(&bin).run().unwrap();
    }
}
