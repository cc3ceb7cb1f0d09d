//! A careful writer of untrusted file trees (archive entries, git trees).
//!
//! Archives come from the internet, so every entry is checked before anything
//! touches the disk:
//!
//! - entry paths must be relative and free of `..`; `.` components are dropped;
//! - no entry is ever written through a symlink: every parent component is
//!   `lstat`ed and must be a real folder (missing folders are created), and an
//!   existing file or symlink at the final component is removed, never opened;
//! - a symlink target must be relative, and of the form `../../name/name`:
//!   leading `..` components no deeper than the link's own folder, then only
//!   names. Since no parent is a symlink, such a target resolves inside the
//!   tree, inductively for chains of links, whatever the links point at.
//!   A build root made from verified packages also takes absolute targets
//!   ([`TreeWriter::allow_absolute_links`]): packages carry them
//!   (`/bin/sh -> /bin/busybox`), they resolve against the sandbox's own
//!   root where the build runs, and the writer never follows a link;
//! - a hard link must name an earlier regular file of the same tree;
//! - at most [`MAX_TREE_BYTES`] of file content and [`MAX_TREE_ENTRIES`]
//!   entries: what an archive expands to is not bounded by its size;
//! - setuid/setgid bits are dropped; folders are always owner-writable
//!   (`u+rwx`), and get their final modes only in [`TreeWriter::finish`],
//!   deepest first.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::time::SystemTime;

use super::SourceError;

/// Mode bits kept from an archive: permissions and sticky, no setuid/setgid.
const MODE_MASK: u32 = 0o7777 & !0o6000;

/// Writes a tree under `root`, refusing anything that could escape it.
pub(crate) struct TreeWriter {
    root: PathBuf,
    origin: PathBuf,
    dirs: Vec<(PathBuf, u32, Option<SystemTime>)>,
    /// First path component of every entry → whether it is a folder.
    top: BTreeMap<PathBuf, bool>,
    /// Whether symlinks may have absolute targets.
    absolute_links: bool,
    /// The caps on file content and entries ([`MAX_TREE_BYTES`],
    /// [`MAX_TREE_ENTRIES`]).
    max_bytes: u64,
    max_entries: u64,
    /// File content and entries written so far.
    bytes: u64,
    entries: u64,
}

/// The most file content one tree may unpack to (16 GiB): a compressed
/// archive's size says nothing about what it expands to.
pub(crate) const MAX_TREE_BYTES: u64 = 16 << 30;
/// The most entries one tree may hold.
pub(crate) const MAX_TREE_ENTRIES: u64 = 4_000_000;

impl TreeWriter {
    /// A writer into `root` (created if missing); `origin` names the archive
    /// or repository in error messages.
    pub(crate) fn new(root: &Path, origin: &Path) -> Result<TreeWriter, SourceError> {
        std::fs::create_dir_all(root).map_err(SourceError::io("creating", root))?;
        Ok(TreeWriter {
            root: root.to_path_buf(),
            origin: origin.to_path_buf(),
            dirs: Vec::new(),
            top: BTreeMap::new(),
            absolute_links: false,
            max_bytes: MAX_TREE_BYTES,
            max_entries: MAX_TREE_ENTRIES,
            bytes: 0,
            entries: 0,
        })
    }

    /// Lower caps than [`MAX_TREE_BYTES`] and [`MAX_TREE_ENTRIES`].
    #[cfg(test)]
    pub(crate) fn with_limits(mut self, bytes: u64, entries: u64) -> TreeWriter {
        self.max_bytes = bytes;
        self.max_entries = entries;
        self
    }

    /// Count one more entry against the cap.
    fn count(&mut self, entry: &Path) -> Result<(), SourceError> {
        if self.entries >= self.max_entries {
            let max = self.max_entries;
            return Err(self.refuse(entry, format!("more than {max} entries")));
        }
        self.entries += 1;
        Ok(())
    }

    /// Accept symlinks with absolute targets (package contents, where
    /// `/bin/sh -> /bin/busybox` is normal). Relative targets must still
    /// stay inside the tree.
    pub(crate) fn allow_absolute_links(mut self) -> TreeWriter {
        self.absolute_links = true;
        self
    }

    pub(crate) fn refuse(&self, entry: &Path, reason: impl Into<String>) -> SourceError {
        SourceError::UnsafeEntry {
            archive: self.origin.clone(),
            entry: entry.display().to_string(),
            reason: reason.into(),
        }
    }

    /// Check an entry path and return it normalized (no `.`, no trailing `/`).
    fn check(&self, entry: &Path) -> Result<PathBuf, SourceError> {
        let mut rel = PathBuf::new();
        for c in entry.components() {
            match c {
                Component::Normal(n) => rel.push(n),
                Component::CurDir => {}
                Component::ParentDir => return Err(self.refuse(entry, "path contains `..`")),
                Component::RootDir | Component::Prefix(_) => {
                    return Err(self.refuse(entry, "absolute path"));
                }
            }
        }
        Ok(rel)
    }

    /// Make sure every parent folder of `rel` exists as a real folder.
    fn parents(&self, entry: &Path, rel: &Path) -> Result<PathBuf, SourceError> {
        let mut cur = self.root.clone();
        if let Some(parent) = rel.parent() {
            for c in parent.components() {
                cur.push(c);
                match std::fs::symlink_metadata(&cur) {
                    Ok(m) if m.file_type().is_symlink() => {
                        return Err(self.refuse(
                            entry,
                            format!(
                                "path goes through the symlink `{}`",
                                strip(&cur, &self.root)
                            ),
                        ));
                    }
                    Ok(m) if m.is_dir() => {}
                    Ok(_) => {
                        return Err(self.refuse(
                            entry,
                            format!("`{}` is not a folder", strip(&cur, &self.root)),
                        ));
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        std::fs::create_dir(&cur).map_err(SourceError::io("creating", &cur))?;
                    }
                    Err(e) => return Err(SourceError::io("inspecting", &cur)(e)),
                }
            }
        }
        Ok(self.root.join(rel))
    }

    /// Remove a file or symlink at `full` so a new entry can take its place.
    fn clear(&self, entry: &Path, full: &Path) -> Result<(), SourceError> {
        match std::fs::symlink_metadata(full) {
            Ok(m) if m.is_dir() => Err(self.refuse(entry, "would replace a folder")),
            Ok(_) => std::fs::remove_file(full).map_err(SourceError::io("replacing", full)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(SourceError::io("inspecting", full)(e)),
        }
    }

    fn note_top(&mut self, rel: &Path, is_dir: bool) {
        let mut comps = rel.components();
        if let Some(first) = comps.next() {
            let dir = is_dir || comps.next().is_some();
            let e = self
                .top
                .entry(PathBuf::from(first.as_os_str()))
                .or_insert(dir);
            *e = *e || dir;
        }
    }

    /// A folder entry.
    pub(crate) fn dir(
        &mut self,
        entry: &Path,
        mode: u32,
        mtime: Option<SystemTime>,
    ) -> Result<(), SourceError> {
        let rel = self.check(entry)?;
        if rel.as_os_str().is_empty() {
            return Ok(());
        }
        self.count(entry)?;
        let full = self.parents(entry, &rel)?;
        match std::fs::symlink_metadata(&full) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                std::fs::remove_file(&full).map_err(SourceError::io("replacing", &full))?;
                std::fs::create_dir(&full).map_err(SourceError::io("creating", &full))?;
            }
            Err(_) => std::fs::create_dir(&full).map_err(SourceError::io("creating", &full))?,
        }
        self.note_top(&rel, true);
        // Folders stay owner-writable so the build can work in them and the
        // next build can delete them without root.
        self.dirs.push((full, (mode & MODE_MASK) | 0o700, mtime));
        Ok(())
    }

    /// A regular file entry; its contents are read from `data`.
    pub(crate) fn file(
        &mut self,
        entry: &Path,
        mode: u32,
        mtime: Option<SystemTime>,
        data: &mut dyn Read,
    ) -> Result<(), SourceError> {
        let rel = self.check(entry)?;
        if rel.as_os_str().is_empty() {
            return Err(self.refuse(entry, "empty path"));
        }
        self.count(entry)?;
        let full = self.parents(entry, &rel)?;
        self.clear(entry, &full)?;
        let mut out = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&full)
            .map_err(SourceError::io("creating", &full))?;
        let room = self.max_bytes - self.bytes;
        let copied = std::io::copy(&mut data.take(room + 1), &mut out).map_err(|e| {
            SourceError::Archive {
                archive: self.origin.clone(),
                source: e,
            }
        })?;
        if copied > room {
            let _ = std::fs::remove_file(&full);
            let max = self.max_bytes;
            return Err(self.refuse(entry, format!("unpacks to more than {max} bytes")));
        }
        self.bytes += copied;
        finish_file(&out, &full, mode, mtime)?;
        self.note_top(&rel, false);
        Ok(())
    }

    /// A symlink entry.
    pub(crate) fn symlink(&mut self, entry: &Path, target: &Path) -> Result<(), SourceError> {
        let rel = self.check(entry)?;
        if rel.as_os_str().is_empty() {
            return Err(self.refuse(entry, "empty path"));
        }
        self.count(entry)?;
        let absolute_ok = self.absolute_links && target.is_absolute();
        if !absolute_ok && let Err(why) = target_stays_inside(&rel, target) {
            return Err(self.refuse(
                entry,
                format!("symlink target `{}` {why}", target.display()),
            ));
        }
        let full = self.parents(entry, &rel)?;
        self.clear(entry, &full)?;
        std::os::unix::fs::symlink(target, &full).map_err(SourceError::io("creating", &full))?;
        self.note_top(&rel, false);
        Ok(())
    }

    /// A hard link entry to `target`, a path relative to the tree root.
    pub(crate) fn hardlink(&mut self, entry: &Path, target: &Path) -> Result<(), SourceError> {
        let rel = self.check(entry)?;
        self.count(entry)?;
        let trel = self.check(target).map_err(|_| {
            self.refuse(
                entry,
                format!("hard link target `{}` escapes the tree", target.display()),
            )
        })?;
        if rel.as_os_str().is_empty() || trel.as_os_str().is_empty() {
            return Err(self.refuse(entry, "empty path"));
        }
        if rel == trel {
            return Ok(());
        }
        // The target must be a regular file reached without symlinks.
        let mut cur = self.root.clone();
        for c in trel.components() {
            cur.push(c);
            let meta = std::fs::symlink_metadata(&cur).map_err(|_| {
                self.refuse(
                    entry,
                    format!("hard link target `{}` is not in the tree", target.display()),
                )
            })?;
            if meta.file_type().is_symlink() {
                return Err(self.refuse(
                    entry,
                    format!(
                        "hard link target `{}` goes through a symlink",
                        target.display()
                    ),
                ));
            }
        }
        if !std::fs::symlink_metadata(&cur).is_ok_and(|m| m.is_file()) {
            return Err(self.refuse(
                entry,
                format!(
                    "hard link target `{}` is not a regular file",
                    target.display()
                ),
            ));
        }
        let full = self.parents(entry, &rel)?;
        self.clear(entry, &full)?;
        std::fs::hard_link(&cur, &full).map_err(SourceError::io("linking", &full))?;
        self.note_top(&rel, false);
        Ok(())
    }

    /// An entry of a kind that is never unpacked (devices, fifos, …).
    pub(crate) fn refuse_kind(&self, entry: &Path, kind: &str) -> SourceError {
        self.refuse(entry, format!("{kind} entries are not allowed in sources"))
    }

    /// Apply folder modes and times (deepest first) and return the single
    /// top-level folder, if the tree has exactly one top-level entry and it
    /// is a folder.
    pub(crate) fn finish(mut self) -> Result<Option<PathBuf>, SourceError> {
        self.dirs
            .sort_by_key(|d| std::cmp::Reverse(d.0.components().count()));
        for (path, mode, mtime) in &self.dirs {
            if let Some(t) = mtime {
                let f = File::open(path).map_err(SourceError::io("opening", path))?;
                f.set_modified(*t)
                    .map_err(SourceError::io("setting the time of", path))?;
            }
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(*mode))
                .map_err(SourceError::io("setting the mode of", path))?;
        }
        let mut it = self.top.iter();
        Ok(match (it.next(), it.next()) {
            (Some((name, true)), None) => Some(name.clone()),
            _ => None,
        })
    }
}

fn finish_file(
    out: &File,
    full: &Path,
    mode: u32,
    mtime: Option<SystemTime>,
) -> Result<(), SourceError> {
    out.set_permissions(std::fs::Permissions::from_mode(mode & MODE_MASK))
        .map_err(SourceError::io("setting the mode of", full))?;
    if let Some(t) = mtime {
        out.set_modified(t)
            .map_err(SourceError::io("setting the time of", full))?;
    }
    Ok(())
}

fn strip(p: &Path, root: &Path) -> String {
    p.strip_prefix(root).unwrap_or(p).display().to_string()
}

/// Whether a symlink at `link` (relative to the root) pointing at `target`
/// provably resolves inside the tree; `Err` says why not.
fn target_stays_inside(link: &Path, target: &Path) -> Result<(), &'static str> {
    let depth = link.components().count().saturating_sub(1);
    let mut ups = 0usize;
    let mut named = false;
    let mut any = false;
    for c in target.components() {
        match c {
            Component::RootDir | Component::Prefix(_) => return Err("is absolute"),
            Component::CurDir => {}
            Component::ParentDir if named => return Err("uses `..` after a name"),
            Component::ParentDir => {
                ups += 1;
                any = true;
                if ups > depth {
                    return Err("escapes the tree");
                }
            }
            Component::Normal(_) => {
                named = true;
                any = true;
            }
        }
    }
    if !any && target.as_os_str().is_empty() {
        return Err("is empty");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlink_targets() {
        let cases: &[(&str, &str, bool)] = &[
            ("a/l", "f", true),
            ("a/l", "../f", true),
            ("a/b/l", "../../f", true),
            ("a/l", "../../f", false),
            ("l", "../x", false),
            ("l", "/", false),
            ("l", "/etc/passwd", false),
            ("a/l", "b/../../x", false),
            ("a/l", "b/../c", false),
            ("a/l", "./b/c", true),
            ("l", ".", true),
            ("l", "", false),
        ];
        for (link, target, ok) in cases {
            let got = target_stays_inside(Path::new(link), Path::new(target));
            assert_eq!(got.is_ok(), *ok, "{link} -> {target}: {got:?}");
        }
    }

    #[test]
    fn writes_and_refuses() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        let mut w = TreeWriter::new(&root, Path::new("test.tar")).unwrap();
        w.dir(Path::new("top/"), 0o555, None).unwrap();
        w.file(Path::new("./top/x"), 0o4755, None, &mut &b"hi"[..])
            .unwrap();
        w.symlink(Path::new("top/l"), Path::new("x")).unwrap();
        w.symlink(Path::new("top/up"), Path::new("..")).unwrap();
        let err = w
            .file(Path::new("top/up/evil"), 0o644, None, &mut &b""[..])
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("goes through the symlink `top/up`"),
            "{err}"
        );
        w.hardlink(Path::new("top/h"), Path::new("top/x")).unwrap();
        let err = w
            .hardlink(Path::new("top/h2"), Path::new("top/l"))
            .unwrap_err();
        assert!(err.to_string().contains("goes through a symlink"), "{err}");
        assert!(!root.parent().unwrap().join("evil").exists());
        let top = w.finish().unwrap();
        assert_eq!(top, Some(PathBuf::from("top")));
        let mode = std::fs::metadata(root.join("top/x"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o755, "setuid dropped");
        let dmode = std::fs::metadata(root.join("top"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(
            dmode & 0o7777,
            0o755,
            "read-only folder made owner-writable"
        );
        assert_eq!(std::fs::read(root.join("top/h")).unwrap(), b"hi");
    }
}
