//! The in-memory root filesystem an image is assembled from: file entries
//! grouped by the package that installs them.
//!
//! Package files are read (and verified) from `.apk` files into
//! [`InstalledPackage`]s; image-level files (accounts, apk database, extra
//! paths) are plain [`Entry`] lists. Layers are cut from these lists, so the
//! layer writer never touches the disk tree of a package.

use std::collections::BTreeMap;

/// What an entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A folder.
    Dir,
    /// A regular file with its content.
    File(Vec<u8>),
    /// A symbolic link to this target.
    Symlink(String),
    /// A hard link to another path (relative, same package).
    Hardlink(String),
}

/// One file-system entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Relative path without leading or trailing `/` (`usr/bin/hello`).
    pub path: String,
    /// What it is.
    pub kind: EntryKind,
    /// Permission bits including setuid/setgid/sticky (`0o755`).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Modification time (clamped to the image's SOURCE_DATE_EPOCH when written).
    pub mtime: u64,
    /// Extended attributes.
    pub xattrs: BTreeMap<String, Vec<u8>>,
    /// SHA-1 of the content (files) or the target (symlinks), when the
    /// verified reader already computed it; `None` means compute it when
    /// needed. Whoever sets it vouches that it matches `kind`.
    pub sha1: Option<[u8; 20]>,
}

impl Entry {
    /// A root-owned folder.
    pub fn dir(path: &str, mode: u32) -> Entry {
        Entry::new(path, EntryKind::Dir, mode)
    }
    /// A root-owned file.
    pub fn file(path: &str, mode: u32, content: impl Into<Vec<u8>>) -> Entry {
        Entry::new(path, EntryKind::File(content.into()), mode)
    }
    /// A root-owned symlink.
    pub fn symlink(path: &str, target: &str) -> Entry {
        Entry::new(path, EntryKind::Symlink(target.to_string()), 0o777)
    }
    fn new(path: &str, kind: EntryKind, mode: u32) -> Entry {
        Entry {
            path: path.trim_matches('/').to_string(),
            kind,
            mode,
            uid: 0,
            gid: 0,
            mtime: 0,
            xattrs: BTreeMap::new(),
            sha1: None,
        }
    }
    /// Whether this is a folder.
    pub fn is_dir(&self) -> bool {
        matches!(self.kind, EntryKind::Dir)
    }
    /// The content size (0 for anything but regular files).
    pub fn size(&self) -> u64 {
        match &self.kind {
            EntryKind::File(d) => d.len() as u64,
            _ => 0,
        }
    }
}

/// What the image needs to know about one package (from its `.PKGINFO`, the
/// index record and the `.apk` file itself).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PackageMeta {
    /// `pkgname`.
    pub name: String,
    /// `pkgver` including `-rN`.
    pub version: String,
    /// apk architecture (`x86_64`, `noarch`).
    pub arch: String,
    /// `pkgdesc`.
    pub description: String,
    /// Upstream URL.
    pub url: String,
    /// SPDX license expression.
    pub license: String,
    /// The recipe (origin) that built it.
    pub origin: String,
    /// Maintainer, `Name <email>`.
    pub maintainer: String,
    /// Who built the package (`packager`).
    pub packager: String,
    /// Build time (Unix seconds).
    pub builddate: u64,
    /// The recipe commit.
    pub commit: String,
    /// Runtime dependencies (apk dependency strings).
    pub depends: Vec<String>,
    /// Provides (`so:libc.so.6=6`, `cmd:hello=1.0-r0`).
    pub provides: Vec<String>,
    /// Installed size in bytes.
    pub installed_size: u64,
    /// Size of the `.apk` file.
    pub file_size: u64,
    /// Package identity as in the index: `Q1` + base64 SHA-1 of the control member.
    pub identity: String,
    /// Lowercase hex SHA-256 of the `.apk` file.
    pub sha256: String,
}

/// A package with its verified files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledPackage {
    /// Metadata.
    pub meta: PackageMeta,
    /// Its files, folders and links, in archive order.
    pub entries: Vec<Entry>,
}

impl InstalledPackage {
    /// Sum of regular file sizes.
    pub fn content_size(&self) -> u64 {
        self.entries.iter().map(Entry::size).sum()
    }
}
