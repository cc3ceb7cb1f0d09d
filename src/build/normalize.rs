//! Normalizing a staged tree so that it depends only on the inputs.
//!
//! - Every modification time (files, folders, symlinks themselves, the root)
//!   is set to `SOURCE_DATE_EPOCH`. Setting rather than clamping keeps two
//!   builds identical even when a copied source file carries an older mtime
//!   that differs between checkouts.
//! - Group- and world-writable bits are cleared.
//! - Setuid and setgid bits are cleared unless the recipe has the `suid`
//!   option: a build can set them on any file it makes, and a setuid program
//!   in a package is a decision for the recipe, not for its build script.
//!   The cleared files are returned, so the caller can name them. The sticky
//!   bit is kept.
//! - Ownership is not touched and not read: the build ran as whoever ran
//!   forge, and the packaging stage records root (0/0) for every entry,
//!   fakeroot-style, so the output is the same whoever built it.
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

/// The mode a staged entry gets: the same bits, minus group/world write,
/// and minus setuid/setgid unless `keep_suid`.
pub(crate) fn normal_mode(mode: u32, keep_suid: bool) -> u32 {
    let clear = if keep_suid { 0o022 } else { 0o6022 };
    mode & !clear
}

/// Normalize every entry under (and including) `root`; returns the paths
/// whose setuid/setgid bits were cleared.
pub(crate) fn normalize_tree(
    root: &Path,
    epoch: i64,
    keep_suid: bool,
) -> Result<Vec<PathBuf>, NormalizeError> {
    let mut cleared = Vec::new();
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
        let want = normal_mode(mode, keep_suid);
        if (mode & !want) & 0o6000 != 0 {
            cleared.push(path.to_path_buf());
        }
        if want & 0o7777 != mode & 0o7777 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(want & 0o7777))
                .map_err(err)?;
        }
        filetime::set_file_times(path, time, time).map_err(err)?;
    }
    cleared.sort();
    Ok(cleared)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt as _;

    #[test]
    fn modes() {
        // (mode, without `suid`, with `suid`)
        let cases = [
            (0o100777, 0o100755, 0o100755),
            (0o100666, 0o100644, 0o100644),
            (0o100644, 0o100644, 0o100644),
            (0o104755, 0o100755, 0o104755),
            (0o102755, 0o100755, 0o102755),
            (0o106777, 0o100755, 0o106755),
            (0o041777, 0o041755, 0o041755),
            (0o042775, 0o040755, 0o042755),
            (0o100600, 0o100600, 0o100600),
        ];
        for (input, plain, suid) in cases {
            assert_eq!(normal_mode(input, false), plain, "{input:o}");
            assert_eq!(normal_mode(input, true), suid, "{input:o} with suid");
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

        std::fs::write(root.join("usr/bin/s"), "s").unwrap();
        std::fs::set_permissions(
            root.join("usr/bin/s"),
            std::fs::Permissions::from_mode(0o4755),
        )
        .unwrap();

        let cleared = normalize_tree(&root, 1_600_000_000, false).unwrap();
        assert_eq!(cleared, [root.join("usr/bin/s")]);

        for e in walkdir::WalkDir::new(&root) {
            let e = e.unwrap();
            let m = std::fs::symlink_metadata(e.path()).unwrap();
            assert_eq!(m.mtime(), 1_600_000_000, "{}", e.path().display());
        }
        let mode = |p: &str| std::fs::metadata(root.join(p)).unwrap().mode() & 0o7777;
        assert_eq!(mode("usr/bin/x"), 0o755);
        assert_eq!(mode("usr"), 0o755);
        assert_eq!(mode("usr/bin/s"), 0o755);
    }

    #[test]
    fn suid_option_keeps_setuid_bits() {
        let dir = tempfile::tempdir().unwrap();
        let s = dir.path().join("s");
        std::fs::write(&s, "s").unwrap();
        std::fs::set_permissions(&s, std::fs::Permissions::from_mode(0o6755)).unwrap();
        assert!(normalize_tree(dir.path(), 0, true).unwrap().is_empty());
        assert_eq!(std::fs::metadata(&s).unwrap().mode() & 0o7777, 0o6755);
    }
}
