//! Normalizing a staged tree so that it depends only on the inputs.
//!
//! - Every modification time (files, folders, symlinks themselves, the root)
//!   is set to `SOURCE_DATE_EPOCH`. Setting rather than clamping keeps two
//!   builds identical even when a copied source file carries an older mtime
//!   that differs between checkouts.
//! - Group- and world-writable bits are cleared; every other bit is kept,
//!   setuid/setgid and sticky included (a recipe that installs a setuid
//!   program means it, and the packaging stage records modes as they are).
//! - Ownership is not touched: the packaging stage writes 0/0 for everything.
//!
//! Children are visited before their folder, so fixing a folder's time is the
//! last change made inside it.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use filetime::FileTime;

/// Why normalizing failed.
#[derive(Debug, thiserror::Error)]
#[error("normalizing {}", path.display())]
pub struct NormalizeError {
    /// The path being fixed.
    pub path: PathBuf,
    /// The OS error.
    #[source]
    pub source: std::io::Error,
}

/// The mode a staged entry gets: the same bits, minus group/world write.
pub(crate) fn normal_mode(mode: u32) -> u32 {
    mode & !0o022
}

/// Normalize every entry under (and including) `root`.
pub(crate) fn normalize_tree(root: &Path, epoch: i64) -> Result<(), NormalizeError> {
    let time = FileTime::from_unix_time(epoch, 0);
    for entry in walkdir::WalkDir::new(root).contents_first(true) {
        let entry = entry.map_err(|e| NormalizeError {
            path: e.path().unwrap_or(root).to_path_buf(),
            source: std::io::Error::other(e),
        })?;
        let path = entry.path();
        let err = |source| NormalizeError {
            path: path.to_path_buf(),
            source,
        };
        if entry.file_type().is_symlink() {
            filetime::set_symlink_file_times(path, time, time).map_err(err)?;
            continue;
        }
        let mode = entry
            .metadata()
            .map_err(|e| err(e.into()))?
            .permissions()
            .mode();
        let want = normal_mode(mode);
        if want & 0o7777 != mode & 0o7777 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(want & 0o7777))
                .map_err(err)?;
        }
        filetime::set_file_times(path, time, time).map_err(err)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt as _;

    #[test]
    fn modes() {
        let cases = [
            (0o100777, 0o100755),
            (0o100666, 0o100644),
            (0o100644, 0o100644),
            (0o104755, 0o104755),
            (0o041777, 0o041755),
            (0o100600, 0o100600),
        ];
        for (input, want) in cases {
            assert_eq!(normal_mode(input), want, "{input:o}");
        }
    }

    #[test]
    fn sets_every_time_and_fixes_modes() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("pkg");
        std::fs::create_dir_all(root.join("usr/bin")).unwrap();
        std::fs::write(root.join("usr/bin/x"), "x").unwrap();
        std::fs::set_permissions(
            root.join("usr/bin/x"),
            std::fs::Permissions::from_mode(0o777),
        )
        .unwrap();
        std::os::unix::fs::symlink("x", root.join("usr/bin/y")).unwrap();
        std::os::unix::fs::symlink("/nonexistent", root.join("usr/bin/dangling")).unwrap();
        std::fs::set_permissions(root.join("usr"), std::fs::Permissions::from_mode(0o775)).unwrap();

        normalize_tree(&root, 1_600_000_000).unwrap();

        for e in walkdir::WalkDir::new(&root) {
            let e = e.unwrap();
            let m = std::fs::symlink_metadata(e.path()).unwrap();
            assert_eq!(m.mtime(), 1_600_000_000, "{}", e.path().display());
        }
        let mode = |p: &str| std::fs::metadata(root.join(p)).unwrap().mode() & 0o7777;
        assert_eq!(mode("usr/bin/x"), 0o755);
        assert_eq!(mode("usr"), 0o755);
    }
}
