//! Build roots made of packages: an unpacked-package store and the linking of
//! store trees into a root.
//!
//! A unit's build root (the hermetic stage's `/`, and `/forge/deps` of every
//! stage) is the union of a few verified packages. Unpacking the same 90 MB
//! toolchain for every unit would make root assembly the bottleneck, so each
//! package is unpacked **once** into `out/pkgstore/<identity>/`, where
//! `<identity>` is the hex of the package's `C:` checksum (the SHA-1 of its
//! control member, which the signed index vouches for and which the control
//! member's `datahash` ties to every data byte). Only a package that
//! [`VerifiedPackage`] accepted is written there, through the careful tree
//! writer (`source/tree.rs`: no writes through links, setuid/setgid
//! dropped), into a temporary folder renamed into place when complete; a
//! store entry that exists is therefore a complete, verified unpack.
//!
//! A root is then made by linking: folders are created, files are
//! **hard-linked** from the store (a root costs inodes, not bytes), symlinks
//! are recreated. Hard links are only safe because the sandbox binds build
//! roots read-only; a root that a build may write to (`--sandbox none`)
//! gets copies instead ([`Link::Copy`]). Two packages that place the same
//! path, or a path under another package's symlink or file, are refused,
//! naming both, as apk refuses a file conflict.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::apk::tar::Kind;
use crate::apk::{Trust, VerifiedPackage};
use crate::source::SourceError;
use crate::source::tree::TreeWriter;

/// Linking a store tree into a root failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A package failed verification.
    #[error("package {} failed verification: {why}", path.display())]
    Unverified {
        /// The package file.
        path: PathBuf,
        /// What failed.
        why: String,
    },
    /// Writing the unpacked package failed.
    #[error("unpacking {} into the package store", path.display())]
    Unpack {
        /// The package file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: Box<SourceError>,
    },
    /// Two packages claim the same path, or one places a path under
    /// another's file or symlink.
    #[error("`{path}` of {package} conflicts with {other} in the build root")]
    Conflict {
        /// The path in the root.
        path: String,
        /// The package being linked.
        package: String,
        /// The package that placed the path (or its parent) first.
        other: String,
    },
    /// A file operation failed.
    #[error("{action} {}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> StoreError {
    let path = path.to_path_buf();
    move |source| StoreError::Io {
        action,
        path,
        source,
    }
}

/// The unpacked-package store, `out/pkgstore/`.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    /// The store under `out`.
    pub fn new(out: &Path) -> Store {
        Store {
            dir: out.join("pkgstore"),
        }
    }

    /// The unpacked tree of the package at `path`, whose identity is
    /// `checksum`: reused when present, else verified with `trust` and
    /// unpacked (then `true` is returned with it).
    pub fn ensure(
        &self,
        path: &Path,
        checksum: &[u8; 20],
        trust: Trust<'_>,
    ) -> Result<(PathBuf, bool), StoreError> {
        let tree = self.dir.join(hex::encode(checksum));
        if tree.is_dir() {
            return Ok((tree, false));
        }
        fs::create_dir_all(&self.dir).map_err(io("creating", &self.dir))?;
        let pkg = VerifiedPackage::open(path, trust).map_err(|e| StoreError::Unverified {
            path: path.to_path_buf(),
            why: crate::util::error_chain(&e),
        })?;
        // A staging folder of its own: units of one run unpack in threads of
        // one process, so a name made of the checksum and the pid is shared.
        let staging = tempfile::Builder::new()
            .prefix(&format!(".tmp-{}-", hex::encode(checksum)))
            .tempdir_in(&self.dir)
            .map_err(io("creating a folder in", &self.dir))?;
        let tmp = staging.path();
        fs::set_permissions(tmp, fs::Permissions::from_mode(0o755))
            .map_err(io("setting the mode of", tmp))?;
        let unpack_err = |source| StoreError::Unpack {
            path: path.to_path_buf(),
            source: Box::new(source),
        };
        let mut writer = TreeWriter::new(tmp, path)
            .map_err(unpack_err)?
            .allow_absolute_links();
        write_package(&pkg, &mut writer).map_err(unpack_err)?;
        writer.finish().map_err(unpack_err)?;
        match fs::rename(tmp, &tree) {
            Ok(()) => {
                let _ = staging.keep();
                Ok((tree, true))
            }
            // Another unit unpacked the same package meanwhile: keep theirs
            // (dropping `staging` removes this copy).
            Err(_) if tree.is_dir() => Ok((tree, false)),
            Err(e) => Err(io("renaming into", &tree)(e)),
        }
    }
}

/// Write the verified entries of `pkg` through `tree`.
pub(crate) fn write_package(
    pkg: &VerifiedPackage,
    tree: &mut TreeWriter,
) -> Result<(), SourceError> {
    for e in pkg.entries() {
        let entry = Path::new(&e.path);
        let mtime = SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(e.mtime));
        match e.kind {
            Kind::Dir => tree.dir(entry, e.mode, mtime)?,
            Kind::Symlink => tree.symlink(entry, Path::new(&e.link))?,
            Kind::HardLink => tree.hardlink(entry, Path::new(&e.link))?,
            _ => {
                let content = pkg
                    .content(e)
                    .map_err(SourceError::io("reading", &pkg.path))?;
                tree.file(entry, e.mode, mtime, &mut &content[..])?;
            }
        }
    }
    Ok(())
}

/// How files reach a root from the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// Hard links: for roots the sandbox binds read-only.
    Hard,
    /// Copies (reflinks where the filesystem can): for roots a build may
    /// write to.
    Copy,
}

/// What a root holds so far: every placed path, by the package that placed
/// it and whether it is a folder.
#[derive(Debug)]
pub struct RootWriter {
    root: PathBuf,
    link: Link,
    placed: HashMap<PathBuf, (String, bool)>,
}

impl RootWriter {
    /// A fresh root at `root` (removed first when it exists).
    pub fn new(root: &Path, link: Link) -> Result<RootWriter, StoreError> {
        if fs::symlink_metadata(root).is_ok() {
            fs::remove_dir_all(root).map_err(io("removing", root))?;
        }
        fs::create_dir_all(root).map_err(io("creating", root))?;
        Ok(RootWriter {
            root: root.to_path_buf(),
            link,
            placed: HashMap::new(),
        })
    }

    /// Link the store tree `tree` of package `package` into the root.
    pub fn add(&mut self, package: &str, tree: &Path) -> Result<(), StoreError> {
        let walk = walkdir::WalkDir::new(tree).min_depth(1).sort_by_file_name();
        for entry in walk {
            let entry = entry.map_err(|e| {
                let path = e.path().unwrap_or(tree).to_path_buf();
                io("reading", &path)(std::io::Error::other(e))
            })?;
            let rel = entry
                .path()
                .strip_prefix(tree)
                .expect("walkdir stays under its root")
                .to_path_buf();
            self.place(package, entry.path(), &rel, entry.file_type())?;
        }
        Ok(())
    }

    fn place(
        &mut self,
        package: &str,
        from: &Path,
        rel: &Path,
        kind: fs::FileType,
    ) -> Result<(), StoreError> {
        let conflict = |other: &str| StoreError::Conflict {
            path: rel.display().to_string(),
            package: package.to_string(),
            other: other.to_string(),
        };
        if let Some(parent) = rel.parent().filter(|p| !p.as_os_str().is_empty()) {
            match self.placed.get(parent) {
                Some((_, true)) => {}
                Some((other, false)) => return Err(conflict(other)),
                None => unreachable!("walkdir yields a folder before its contents"),
            }
        }
        let to = self.root.join(rel);
        match self.placed.get(rel) {
            Some((_, true)) if kind.is_dir() => return Ok(()),
            Some((other, _)) => return Err(conflict(other)),
            None => {}
        }
        if kind.is_dir() {
            fs::create_dir(&to).map_err(io("creating", &to))?;
        } else if kind.is_symlink() {
            let target = fs::read_link(from).map_err(io("reading", from))?;
            std::os::unix::fs::symlink(&target, &to).map_err(io("creating", &to))?;
        } else {
            match self.link {
                Link::Hard => fs::hard_link(from, &to).map_err(io("linking", &to))?,
                Link::Copy => fs::copy(from, &to)
                    .map(|_| ())
                    .map_err(io("copying", &to))?,
            }
        }
        self.placed
            .insert(rel.to_path_buf(), (package.to_string(), kind.is_dir()));
        Ok(())
    }
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
