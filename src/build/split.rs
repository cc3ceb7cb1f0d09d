//! Splitting subpackages out of the main package's tree.
//!
//! Each subpackage, in recipe order, takes every path of the main tree that one
//! of its globs matches (globs are relative to `$pkgdir`; `*` stays within one
//! path component, `**` crosses them). A matching folder moves whole. Folders
//! the move leaves empty are removed from the main tree, as abuild does, so
//! `hello` does not ship an empty `usr/share/man/man1`. Parent folders are
//! recreated in the subpackage's tree with the same modes.
//!
//! Because subpackages are applied in order, an earlier subpackage wins a path
//! two of them match.

use std::path::{Path, PathBuf};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

/// Why splitting failed.
#[derive(Debug, thiserror::Error)]
pub enum SplitError {
    /// A glob did not parse.
    #[error("invalid path glob `{pattern}` of subpackage `{subpackage}`")]
    Glob {
        /// The subpackage.
        subpackage: String,
        /// The glob as written.
        pattern: String,
        /// What is wrong with it.
        #[source]
        source: globset::Error,
    },
    /// Moving files failed.
    #[error("moving {} into subpackage `{subpackage}`", path.display())]
    Io {
        /// The subpackage.
        subpackage: String,
        /// The path being moved.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// Compile a subpackage's globs.
pub(crate) fn globs(subpackage: &str, patterns: &[String]) -> Result<GlobSet, SplitError> {
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        let trimmed = p.trim_start_matches('/').trim_end_matches('/');
        let glob = GlobBuilder::new(trimmed)
            .literal_separator(true)
            .build()
            .map_err(|source| SplitError::Glob {
                subpackage: subpackage.to_string(),
                pattern: p.clone(),
                source,
            })?;
        b.add(glob);
    }
    b.build().map_err(|source| SplitError::Glob {
        subpackage: subpackage.to_string(),
        pattern: patterns.join(", "),
        source,
    })
}

/// The relative paths under `root` that `set` matches, topmost only (nothing
/// inside an already matched folder), sorted.
pub(crate) fn matches(root: &Path, set: &GlobSet) -> std::io::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut walk = walkdir::WalkDir::new(root)
        .min_depth(1)
        .sort_by_file_name()
        .into_iter();
    while let Some(entry) = walk.next() {
        let entry = entry.map_err(std::io::Error::other)?;
        let rel = entry
            .path()
            .strip_prefix(root)
            .map_err(std::io::Error::other)?
            .to_path_buf();
        if set.is_match(&rel) {
            if entry.file_type().is_dir() {
                walk.skip_current_dir();
            }
            found.push(rel);
        }
    }
    Ok(found)
}

/// Move every path of `main` matched by `set` into `sub` (created if needed);
/// returns the moved relative paths.
pub(crate) fn split(
    main: &Path,
    sub: &Path,
    subpackage: &str,
    set: &GlobSet,
) -> Result<Vec<PathBuf>, SplitError> {
    let io = |path: &Path| {
        let subpackage = subpackage.to_string();
        let path = path.to_path_buf();
        move |source| SplitError::Io {
            subpackage,
            path,
            source,
        }
    };
    std::fs::create_dir_all(sub).map_err(io(sub))?;
    let moved = matches(main, set).map_err(io(main))?;
    for rel in &moved {
        let from = main.join(rel);
        let to = sub.join(rel);
        if let Some(parent) = rel.parent() {
            make_parents(main, sub, parent).map_err(io(&to))?;
        }
        std::fs::rename(&from, &to).map_err(io(&from))?;
        remove_empty_parents(main, rel).map_err(io(&from))?;
    }
    Ok(moved)
}

/// Create `sub/rel` and its ancestors with the modes of `main/rel`'s.
fn make_parents(main: &Path, sub: &Path, rel: &Path) -> std::io::Result<()> {
    let mut cur = PathBuf::new();
    for comp in rel.components() {
        cur.push(comp);
        let dest = sub.join(&cur);
        if dest.is_dir() {
            continue;
        }
        std::fs::create_dir(&dest)?;
        let perms = std::fs::metadata(main.join(&cur))?.permissions();
        std::fs::set_permissions(&dest, perms)?;
    }
    Ok(())
}

/// Remove the now-empty ancestors of `main/rel`, below `main`.
fn remove_empty_parents(main: &Path, rel: &Path) -> std::io::Result<()> {
    let mut cur = rel.parent();
    while let Some(p) = cur {
        if p.as_os_str().is_empty() {
            break;
        }
        let dir = main.join(p);
        if std::fs::read_dir(&dir)?.next().is_some() {
            break;
        }
        std::fs::remove_dir(&dir)?;
        cur = p.parent();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn tree(root: &Path) -> Vec<String> {
        let mut v: Vec<String> = walkdir::WalkDir::new(root)
            .min_depth(1)
            .sort_by_file_name()
            .into_iter()
            .map(|e| {
                let e = e.unwrap();
                let rel = e.path().strip_prefix(root).unwrap().display().to_string();
                if e.file_type().is_dir() {
                    format!("{rel}/")
                } else {
                    rel
                }
            })
            .collect();
        v.sort();
        v
    }

    fn touch(root: &Path, rel: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, rel).unwrap();
    }

    #[test]
    fn splits_doc_and_dev_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let main = dir.path().join("hello");
        for f in [
            "usr/bin/hello",
            "usr/share/man/man1/hello.1",
            "usr/share/doc/hello/README",
            "usr/include/hello.h",
            "usr/lib/libhello.a",
            "usr/lib/libhello.so.1",
            "usr/lib/pkgconfig/hello.pc",
        ] {
            touch(&main, f);
        }
        std::os::unix::fs::symlink("libhello.so.1", main.join("usr/lib/libhello.so")).unwrap();
        std::fs::set_permissions(
            main.join("usr/share"),
            std::fs::Permissions::from_mode(0o750),
        )
        .unwrap();

        let doc = dir.path().join("hello-doc");
        let set = globs(
            "hello-doc",
            &["usr/share/man".into(), "usr/share/doc".into()],
        )
        .unwrap();
        let moved = split(&main, &doc, "hello-doc", &set).unwrap();
        assert_eq!(
            moved,
            vec![
                PathBuf::from("usr/share/doc"),
                PathBuf::from("usr/share/man")
            ]
        );

        let dev = dir.path().join("hello-dev");
        let set = globs(
            "hello-dev",
            &[
                "usr/include".into(),
                "/usr/lib/*.a".into(),
                "usr/lib/*.so".into(),
                "usr/lib/pkgconfig/".into(),
            ],
        )
        .unwrap();
        split(&main, &dev, "hello-dev", &set).unwrap();

        assert_eq!(
            tree(&main),
            [
                "usr/",
                "usr/bin/",
                "usr/bin/hello",
                "usr/lib/",
                "usr/lib/libhello.so.1"
            ]
        );
        assert_eq!(
            tree(&doc),
            [
                "usr/",
                "usr/share/",
                "usr/share/doc/",
                "usr/share/doc/hello/",
                "usr/share/doc/hello/README",
                "usr/share/man/",
                "usr/share/man/man1/",
                "usr/share/man/man1/hello.1",
            ]
        );
        assert_eq!(
            tree(&dev),
            [
                "usr/",
                "usr/include/",
                "usr/include/hello.h",
                "usr/lib/",
                "usr/lib/libhello.a",
                "usr/lib/libhello.so",
                "usr/lib/pkgconfig/",
                "usr/lib/pkgconfig/hello.pc",
            ]
        );
        let mode = std::fs::metadata(doc.join("usr/share"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o750);
        assert_eq!(
            std::fs::read_link(dev.join("usr/lib/libhello.so")).unwrap(),
            Path::new("libhello.so.1")
        );
    }

    #[test]
    fn star_does_not_cross_folders_and_no_match_gives_empty_tree() {
        let dir = tempfile::tempdir().unwrap();
        let main = dir.path().join("p");
        touch(&main, "usr/lib/x/deep.a");
        let sub = dir.path().join("p-dev");
        let set = globs("p-dev", &["usr/lib/*.a".into()]).unwrap();
        assert!(split(&main, &sub, "p-dev", &set).unwrap().is_empty());
        assert!(tree(&sub).is_empty());
        let set = globs("p-dev", &["usr/lib/**/*.a".into()]).unwrap();
        assert_eq!(
            split(&main, &sub, "p-dev", &set).unwrap(),
            vec![PathBuf::from("usr/lib/x/deep.a")]
        );
        assert!(tree(&main).is_empty(), "{:?}", tree(&main));
    }

    #[test]
    fn bad_glob_names_the_subpackage() {
        let err = globs("p-doc", &["usr/[share".into()]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid path glob `usr/[share` of subpackage `p-doc`"
        );
    }
}
