//! The package store and root linking: unpack once, link many times, refuse
//! conflicts and paths under another package's link.

use std::os::unix::fs::MetadataExt as _;

use super::*;
use crate::apk::tests::{craft_package, raw_data_tar};

/// Write the package `name` around `entries` into `dir`; returns its path
/// and identity.
fn package(dir: &Path, name: &str, entries: &[crate::apk::tests::RawEntry]) -> (PathBuf, [u8; 20]) {
    let (bytes, entry) = craft_package(name, &raw_data_tar(entries));
    let path = dir.join(entry.file_name());
    fs::write(&path, bytes).unwrap();
    (path, entry.checksum)
}

fn trusted() -> crate::sign::TrustedKeys {
    crate::sign::tests::test_trust()
}

#[test]
fn a_package_is_unpacked_once_and_hard_linked_into_roots() {
    let dir = tempfile::tempdir().unwrap();
    let (path, id) = package(
        dir.path(),
        "tool",
        &[
            (Kind::Dir, "usr/", "", b""),
            (Kind::Dir, "usr/bin/", "", b""),
            (Kind::File, "usr/bin/tool", "", b"#!/bin/sh\n"),
            (Kind::Symlink, "usr/bin/t", "tool", b""),
        ],
    );
    let store = Store::new(dir.path());
    let keys = trusted();
    let (tree, fresh) = store.ensure(&path, &id, Trust::Signed(&keys)).unwrap();
    assert!(fresh);
    assert_eq!(tree, dir.path().join("pkgstore").join(hex::encode(id)));
    // The second time the store answers without reading the package.
    fs::remove_file(&path).unwrap();
    let (again, fresh) = store.ensure(&path, &id, Trust::Signed(&keys)).unwrap();
    assert_eq!((again.as_path(), fresh), (tree.as_path(), false));

    for n in ["a", "b"] {
        let root = dir.path().join(n);
        let mut w = RootWriter::new(&root, Link::Hard).unwrap();
        w.add("tool", &tree).unwrap();
        assert_eq!(fs::read(root.join("usr/bin/tool")).unwrap(), b"#!/bin/sh\n");
        assert_eq!(
            fs::read_link(root.join("usr/bin/t")).unwrap(),
            Path::new("tool")
        );
    }
    let ino = |p: &Path| fs::metadata(p).unwrap().ino();
    assert_eq!(
        ino(&dir.path().join("a/usr/bin/tool")),
        ino(&tree.join("usr/bin/tool"))
    );
    let root = dir.path().join("c");
    let mut w = RootWriter::new(&root, Link::Copy).unwrap();
    w.add("tool", &tree).unwrap();
    assert_ne!(
        ino(&root.join("usr/bin/tool")),
        ino(&tree.join("usr/bin/tool"))
    );
}

#[test]
fn a_package_that_fails_verification_never_enters_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let (path, id) = package(dir.path(), "tool", &[(Kind::Dir, "usr/", "", b"")]);
    let store = Store::new(dir.path());
    let keys = trusted();
    let wrong = [7u8; 20];
    let err = store
        .ensure(&path, &wrong, Trust::Indexed(&wrong))
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Unverified { path: p, .. } if p == &path),
        "{err}"
    );
    assert!(
        !dir.path()
            .join("pkgstore")
            .join(hex::encode(wrong))
            .exists()
    );
    assert!(store.ensure(&path, &id, Trust::Signed(&keys)).is_ok());
}

#[test]
fn conflicts_between_packages_are_refused_naming_both() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(dir.path());
    let keys = trusted();
    let tree = |name: &str, entries: &[crate::apk::tests::RawEntry]| {
        let sub = dir.path().join(name);
        fs::create_dir_all(&sub).unwrap();
        let (path, id) = package(&sub, name, entries);
        store.ensure(&path, &id, Trust::Signed(&keys)).unwrap().0
    };
    let a = tree(
        "a",
        &[
            (Kind::Dir, "usr/", "", b""),
            (Kind::File, "usr/x", "", b"a"),
            (Kind::Symlink, "lib", "/usr/lib", b""),
        ],
    );
    let same_file = tree(
        "b",
        &[
            (Kind::Dir, "usr/", "", b""),
            (Kind::File, "usr/x", "", b"b"),
        ],
    );
    let under_link = tree(
        "c",
        &[
            (Kind::Dir, "lib/", "", b""),
            (Kind::File, "lib/evil", "", b"c"),
        ],
    );
    let root = dir.path().join("root");
    let mut w = RootWriter::new(&root, Link::Hard).unwrap();
    w.add("a", &a).unwrap();
    let err = w.add("b", &same_file).unwrap_err().to_string();
    assert_eq!(err, "`usr/x` of b conflicts with a in the build root");
    let err = w.add("c", &under_link).unwrap_err().to_string();
    assert_eq!(err, "`lib` of c conflicts with a in the build root");
    // Nothing was written through the link.
    assert!(!Path::new("/usr/lib/evil").exists());
    assert_eq!(fs::read(root.join("usr/x")).unwrap(), b"a");
}

/// Units of one `forge build` run in threads of one process: several that
/// need the same package at once must each get the whole tree (each once
/// shared a staging folder named by the process id and removed the other's).
#[test]
fn threads_unpacking_one_package_at_once_all_get_the_tree() {
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<String> = (0..200).map(|i| format!("usr/share/t/f{i}")).collect();
    let mut entries = vec![
        (Kind::Dir, "usr/", "", &b""[..]),
        (Kind::Dir, "usr/share/", "", b""),
        (Kind::Dir, "usr/share/t/", "", b""),
    ];
    entries.extend(
        files
            .iter()
            .map(|f| (Kind::File, f.as_str(), "", &b"x\n"[..])),
    );
    let (path, id) = package(dir.path(), "many", &entries);
    let store = Store::new(dir.path());
    let keys = trusted();
    for _ in 0..5 {
        let _ = fs::remove_dir_all(dir.path().join("pkgstore"));
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| s.spawn(|| store.ensure(&path, &id, Trust::Signed(&keys))))
                .collect();
            for h in handles {
                let (tree, _) = h.join().unwrap().unwrap();
                assert!(tree.join("usr/share/t/f199").is_file());
            }
        });
        let left: Vec<_> = fs::read_dir(dir.path().join("pkgstore"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, vec![std::ffi::OsString::from(hex::encode(id))]);
    }
}
