//! End-to-end tests of `fetch`/`prepare` with local mirrors and repositories
//! (no network).

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::*;
use crate::recipe::{Checksum, Options};
use crate::version::Version;

fn recipe(dir: &Path, sources: Vec<Source>) -> Recipe {
    Recipe {
        dir: dir.to_path_buf(),
        file: dir.join("recipe.toml"),
        name: "demo".into(),
        version: Version::parse("1.0").unwrap(),
        release: 0,
        description: "demo".into(),
        url: "https://example.invalid".into(),
        license: "MIT".into(),
        arch: vec!["noarch".into()],
        depends: vec![],
        makedepends: vec![],
        host_tools: vec![],
        stage: None,
        provides: vec![],
        sources,
        build: String::new(),
        check: String::new(),
        builddir: None,
        subpackages: vec![],
        options: Options::default(),
        update: None,
    }
}

fn sha256(bytes: &[u8]) -> Checksum {
    let mut h = digest::Hasher::for_checksum(&Checksum::Sha256(String::new()));
    h.update(bytes);
    h.finish()
}

fn targz(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut b = tar::Builder::new(gz);
    for (path, data) in entries {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        b.append_data(&mut h, path, *data).unwrap();
    }
    b.into_inner().unwrap().finish().unwrap()
}

/// A repository with one commit and a tag `v1`; returns (path, commit).
fn git_repo(dir: &Path) -> (PathBuf, String) {
    let path = dir.join("upstream");
    let repo = git2::Repository::init(&path).unwrap();
    std::fs::create_dir_all(path.join("src")).unwrap();
    std::fs::write(path.join("src/lib.c"), "int f(void){return 1;}\n").unwrap();
    std::fs::write(path.join("run.sh"), "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(path.join("run.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink("src/lib.c", path.join("link")).unwrap();
    let mut index = repo.index().unwrap();
    index
        .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
        .unwrap();
    index.write().unwrap();
    let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
    let sig = git2::Signature::new("t", "t@t", &git2::Time::new(1_600_000_000, 0)).unwrap();
    let oid = repo
        .commit(Some("HEAD"), &sig, &sig, "one", &tree, &[])
        .unwrap();
    let obj = repo.find_object(oid, None).unwrap();
    repo.tag_lightweight("v1", &obj, false).unwrap();
    (path, oid.to_string())
}

#[test]
fn prepare_lays_out_every_kind_of_source() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let mut settings = Settings::for_root(root);
    let mirror = root.join("mirror");
    std::fs::create_dir_all(&mirror).unwrap();
    let tarball = targz(&[
        ("demo-1.0/main.c", b"int main(){}\n"),
        ("demo-1.0/README", b"hi\n"),
    ]);
    std::fs::write(mirror.join("demo-1.0.tar.gz"), &tarball).unwrap();
    std::fs::write(mirror.join("extra.txt"), b"plain\n").unwrap();
    settings.mirrors = vec![mirror.display().to_string()];
    let (repo, commit) = git_repo(root);
    let rdir = root.join("recipes/demo");
    std::fs::create_dir_all(rdir.join("files")).unwrap();
    std::fs::write(rdir.join("fix.patch"), b"--- a\n+++ b\n").unwrap();
    std::fs::write(rdir.join("files/app.conf"), b"x=1\n").unwrap();
    std::fs::create_dir_all(rdir.join("dir/sub")).unwrap();
    std::fs::write(rdir.join("dir/sub/f"), b"f").unwrap();
    let sources = vec![
        Source::Http {
            url: "https://example.invalid/demo-1.0.tar.gz".into(),
            checksum: sha256(&tarball),
            filename: "demo-1.0.tar.gz".into(),
            extract: true,
        },
        Source::Http {
            url: "https://example.invalid/extra.txt".into(),
            checksum: sha256(b"plain\n"),
            filename: "extra.txt".into(),
            extract: false,
        },
        Source::Git {
            url: format!("file://{}", repo.display()),
            commit: commit.clone(),
            tag: Some("v1".into()),
            dest: "upstream".into(),
        },
        Source::Local {
            path: "fix.patch".into(),
        },
        Source::Local {
            path: "files/app.conf".into(),
        },
        Source::Local { path: "dir".into() },
    ];
    let r = recipe(&rdir, sources);
    // Offline: the git repository has to be fetched, which offline refuses.
    let err = prepare(&settings, &r, &root.join("src0"), 1_700_000_000).unwrap_err();
    assert!(
        matches!(err, SourceError::CommitMissing { offline: true, .. }),
        "{err}"
    );
    settings.offline = false;
    let srcdir = root.join("work/src");
    let p = prepare(&settings, &r, &srcdir, 1_700_000_000).unwrap();
    assert_eq!(p.builddir, PathBuf::from("demo-1.0"));
    // Nothing placed "now" keeps the wall-clock time: it is clamped to the epoch.
    let limit = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
    for e in walkdir::WalkDir::new(&srcdir) {
        let e = e.unwrap();
        if !e.file_type().is_symlink() {
            let m = e.metadata().unwrap().modified().unwrap();
            assert!(
                m <= limit,
                "{} has a time after the epoch",
                e.path().display()
            );
        }
    }
    assert_eq!(
        std::fs::read(srcdir.join("demo-1.0/main.c")).unwrap(),
        b"int main(){}\n"
    );
    assert_eq!(std::fs::read(srcdir.join("extra.txt")).unwrap(), b"plain\n");
    assert_eq!(
        std::fs::read(srcdir.join("upstream/src/lib.c")).unwrap(),
        b"int f(void){return 1;}\n"
    );
    let run = std::fs::metadata(srcdir.join("upstream/run.sh")).unwrap();
    assert_eq!(run.permissions().mode() & 0o777, 0o755);
    assert_eq!(
        std::fs::read_link(srcdir.join("upstream/link")).unwrap(),
        Path::new("src/lib.c")
    );
    assert!(!srcdir.join("upstream/.git").exists());
    assert_eq!(
        std::fs::read(srcdir.join("fix.patch")).unwrap(),
        b"--- a\n+++ b\n"
    );
    assert_eq!(std::fs::read(srcdir.join("app.conf")).unwrap(), b"x=1\n");
    assert!(!srcdir.join("files").exists());
    assert_eq!(std::fs::read(srcdir.join("dir/sub/f")).unwrap(), b"f");
    // Digests: the same from fetch and from the recipe alone.
    let digests: Vec<String> = p.inputs.iter().map(|f| f.digest.clone()).collect();
    assert_eq!(digests, input_digests(&r).unwrap());
    assert_eq!(digests[0], sha256(&tarball).to_prefixed());
    assert_eq!(digests[2], commit);
    assert_eq!(
        p.inputs[2].path,
        git::repo_path(&settings.cache, &format!("file://{}", repo.display()))
    );
    // Now everything is cached: offline works, with the mirror gone.
    std::fs::remove_dir_all(&mirror).unwrap();
    std::fs::remove_dir_all(&repo).unwrap();
    settings.offline = true;
    let again = prepare(&settings, &r, &root.join("work2/src"), 1_700_000_000).unwrap();
    assert_eq!(
        again,
        Prepared {
            builddir: p.builddir.clone(),
            inputs: p.inputs.clone()
        }
    );
    // A recipe builddir must exist.
    let mut r3 = r.clone();
    r3.builddir = Some("demo-2.0".into());
    let err = prepare(&settings, &r3, &root.join("work4/src"), 1_700_000_000)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("builddir `demo-2.0`") && err.contains("holds: app.conf, demo-1.0, dir,"),
        "{err}"
    );
    // A recipe builddir wins.
    let mut r2 = r.clone();
    r2.builddir = Some("upstream".into());
    assert_eq!(
        prepare(&settings, &r2, &root.join("work3/src"), 1_700_000_000)
            .unwrap()
            .builddir,
        PathBuf::from("upstream")
    );
}

#[test]
fn git_tag_must_point_at_the_commit() {
    let tmp = tempfile::tempdir().unwrap();
    let mut settings = Settings::for_root(tmp.path());
    settings.offline = false;
    let (repo, commit) = git_repo(tmp.path());
    let up = git2::Repository::open(&repo).unwrap();
    let head = up.head().unwrap().peel_to_commit().unwrap();
    let sig = head.author();
    let second = up
        .commit(
            Some("HEAD"),
            &sig,
            &sig,
            "two",
            &head.tree().unwrap(),
            &[&head],
        )
        .unwrap();
    let cases: Vec<(String, Option<&str>, &str)> = vec![
        (second.to_string(), Some("v1"), "tag v1 points at"),
        (commit.clone(), Some("v2"), "tag v2 not found"),
        (
            "0123456789abcdef0123456789abcdef01234567".into(),
            None,
            "not found after fetching",
        ),
    ];
    for (pin, tag, want) in cases {
        let r = recipe(
            tmp.path(),
            vec![Source::Git {
                url: repo.display().to_string(),
                commit: pin.clone(),
                tag: tag.map(str::to_string),
                dest: "d".into(),
            }],
        );
        let err = fetch(&settings, &r).unwrap_err().to_string();
        assert!(err.contains(want), "{err}");
        assert!(err.contains("recipe demo"), "{err}");
    }
    // A commit that is no branch tip is still found (the full history is fetched).
    let r = recipe(
        tmp.path(),
        vec![Source::Git {
            url: repo.display().to_string(),
            commit: commit.clone(),
            tag: Some("v1".into()),
            dest: "d".into(),
        }],
    );
    assert_eq!(fetch(&settings, &r).unwrap()[0].digest, commit);
    // Upstream moves the tag to the second commit and the recipe follows:
    // the cached tag is stale, so forge fetches again instead of failing.
    let obj = up.find_object(second, None).unwrap();
    up.tag_lightweight("v1", &obj, true).unwrap();
    let moved = recipe(
        tmp.path(),
        vec![Source::Git {
            url: repo.display().to_string(),
            commit: second.to_string(),
            tag: Some("v1".into()),
            dest: "d".into(),
        }],
    );
    assert_eq!(
        fetch(&settings, &moved).unwrap()[0].digest,
        second.to_string()
    );
    // The cache now has the moved tag, so the old pin fails (offline: no refetch).
    settings.offline = true;
    let err = fetch(&settings, &r).unwrap_err().to_string();
    assert!(
        err.contains("tag v1 points at") && err.contains(&second.to_string()),
        "{err}"
    );
}

#[test]
fn local_sources_stay_in_the_recipe_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let rdir = tmp.path().join("r");
    std::fs::create_dir_all(&rdir).unwrap();
    std::fs::write(tmp.path().join("secret"), b"s").unwrap();
    std::os::unix::fs::symlink("../secret", rdir.join("sneaky")).unwrap();
    let cases = [
        ("../secret", "without `..`"),
        ("/etc/passwd", "without `..`"),
        ("sneaky", "resolves outside the recipe folder"),
        ("missing", "does not exist"),
    ];
    for (path, want) in cases {
        let r = recipe(&rdir, vec![Source::Local { path: path.into() }]);
        let err = input_digests(&r).unwrap_err().to_string();
        assert!(err.contains(want) && err.contains(path), "{path}: {err}");
    }
}

#[test]
fn extract_of_a_non_archive_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let mut settings = Settings::for_root(tmp.path());
    let m = tmp.path().join("m");
    std::fs::create_dir_all(&m).unwrap();
    let mut f = std::fs::File::create(m.join("notes.tar.gz")).unwrap();
    f.write_all(b"not really").unwrap();
    settings.mirrors = vec![m.display().to_string()];
    let r = recipe(
        tmp.path(),
        vec![Source::Http {
            url: "https://example.invalid/notes.tar.gz".into(),
            checksum: sha256(b"not really"),
            filename: "notes.tar.gz".into(),
            extract: true,
        }],
    );
    let err = prepare(&settings, &r, &tmp.path().join("src"), 1_700_000_000)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("notes.tar.gz") && err.contains("not a tar"),
        "{err}"
    );
}

/// The real upstream tarballs of `recipes/` (seeded by `.ci/seed-mirror.sh`),
/// unpacked by forge and, when `tar` is installed, compared file by file with
/// what GNU tar makes of them.
#[test]
fn real_tarballs_match_gnu_tar() {
    for (file, top) in [
        ("busybox-1.35.0.tar.bz2", "busybox-1.35.0"),
        ("crun-1.8.1.tar.xz", "crun-1.8.1"),
    ] {
        let Some(mirror) = crate::test_tools::require_mirror_file(file) else {
            continue;
        };
        let path = mirror.join(file);
        let tmp = tempfile::tempdir().unwrap();
        let ours = tmp.path().join("ours");
        let format = unpack::sniff(&path).unwrap().expect("an archive");
        let start = std::time::Instant::now();
        let found = unpack::unpack(&path, format, &ours).unwrap();
        eprintln!("{file}: unpacked in {:?}", start.elapsed());
        assert_eq!(found, Some(PathBuf::from(top)));
        if !crate::test_tools::require_tool("tar") {
            continue;
        }
        let theirs = tmp.path().join("theirs");
        std::fs::create_dir_all(&theirs).unwrap();
        let st = std::process::Command::new("tar")
            .arg("-xf")
            .arg(&path)
            .arg("-C")
            .arg(&theirs)
            .status()
            .unwrap();
        assert!(st.success());
        let list = |root: &Path| -> Vec<(PathBuf, String)> {
            let mut v: Vec<_> = walkdir::WalkDir::new(root)
                .into_iter()
                .map(|e| e.unwrap())
                .map(|e| {
                    let rel = e.path().strip_prefix(root).unwrap().to_path_buf();
                    let m = std::fs::symlink_metadata(e.path()).unwrap();
                    let what = if m.file_type().is_symlink() {
                        format!("-> {}", std::fs::read_link(e.path()).unwrap().display())
                    } else if m.is_dir() {
                        format!("dir {:o}", m.permissions().mode() & 0o7777)
                    } else {
                        let mut h = digest::Hasher::for_checksum(&Checksum::Sha256(String::new()));
                        h.update(&std::fs::read(e.path()).unwrap());
                        format!("{:o} {}", m.permissions().mode() & 0o7777, h.finish().hex())
                    };
                    (rel, what)
                })
                .collect();
            v.sort();
            v
        };
        let (a, b) = (list(&ours), list(&theirs));
        assert!(a.len() > 100, "{file}: only {} entries", a.len());
        assert_eq!(a, b, "{file}: forge and tar disagree");
    }
}
