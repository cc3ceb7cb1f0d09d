//! The README's first command on a fresh clone: the embedded examples build
//! offline, a second run builds nothing and says so, and two clones in
//! different folders at different times give byte-identical outputs.

use std::collections::BTreeMap;
use std::path::Path;

use crate::support::{self, forge, run_ok};

/// A "clone": the project files a fresh checkout has, committed to git with a
/// fixed date, and the test suite's signing key (a fresh clone would create
/// its own; two clones must share one to sign identically).
fn clone_of_repo() -> support::Project {
    let p = support::Project::new();
    for item in ["recipes", "images", "keys", "forge.toml"] {
        p.copy_from_repo(item);
    }
    p.commit().key();
    p
}

fn files_under(root: &Path) -> BTreeMap<String, Vec<u8>> {
    walkdir::WalkDir::new(root)
        .sort_by_file_name()
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            (
                e.path().strip_prefix(root).unwrap().display().to_string(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

#[test]
fn readme_first_command_builds_examples_offline_then_nothing() {
    let readme = std::fs::read_to_string(support::repo_root().join("README.md")).unwrap();
    assert!(
        readme.contains("cargo run --release -- build"),
        "the README's first command is `forge build`"
    );
    // `cargo run` must know which binary that is (benchmarks are binaries too).
    let manifest = std::fs::read_to_string(support::repo_root().join("Cargo.toml")).unwrap();
    assert!(
        manifest.contains("default-run = \"forge\""),
        "Cargo.toml needs default-run"
    );
    if !support::require_bwrap() {
        return;
    }
    let dir = clone_of_repo();
    let root = dir.path();
    // --offline: no source may come from the network.
    let (_, err) = run_ok(forge(root).args(["--offline", "build"]));
    assert!(err.contains("3 built"), "{err}");
    let repo = root.join("out/repo").join(std::env::consts::ARCH);
    for pkg in [
        "hello-1.0-r0.apk",
        "hello-doc-1.0-r0.apk",
        "hello-dev-1.0-r0.apk",
        "libgreet-1.0-r0.apk",
        "greet-1.0-r0.apk",
    ] {
        assert!(repo.join(pkg).is_file(), "{pkg} is in the repository");
    }
    assert!(root.join("out/images/hello/index.json").is_file());

    let (_, err) = run_ok(forge(root).args(["--offline", "build"]));
    assert!(err.contains("packages: nothing to build: 3 fresh"), "{err}");
    assert!(err.contains("images: nothing to build: 1 fresh"), "{err}");

    // Everything forge wrote verifies.
    run_ok(forge(root).arg("verify").arg(repo.join("APKINDEX.tar.gz")));
}

#[test]
fn two_clones_give_identical_packages_index_and_image() {
    if !support::require_bwrap() {
        return;
    }
    let a = clone_of_repo();
    run_ok(forge(a.path()).args(["--offline", "build"]));
    // A different folder, a different time.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let b = clone_of_repo();
    run_ok(forge(b.path()).args(["--offline", "-j1", "build"]));

    let repo_a = files_under(&a.path().join("out/repo"));
    let repo_b = files_under(&b.path().join("out/repo"));
    assert!(repo_a.keys().any(|k| k.ends_with("APKINDEX.tar.gz")));
    assert_eq!(
        repo_a.keys().collect::<Vec<_>>(),
        repo_b.keys().collect::<Vec<_>>()
    );
    for (name, bytes) in &repo_a {
        assert!(bytes == &repo_b[name], "{name} differs between the clones");
    }
    let img_a = files_under(&a.path().join("out/images"));
    let img_b = files_under(&b.path().join("out/images"));
    assert_eq!(img_a, img_b, "image layouts and SBOMs are byte-identical");
}

/// Replace the values that depend on the host toolchain (the compiled bytes:
/// sizes, hashes, identity) or on the clone's commit id, after checking their
/// shape; everything else must match the golden text exactly.
fn mask(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let (key, value) = match line.split_once(" = ").or_else(|| line.split_once(':')) {
            Some(kv) => kv,
            None => (line, ""),
        };
        let hex = |n: usize| value.len() == n && value.bytes().all(|b| b.is_ascii_hexdigit());
        let masked = match key {
            "size" | "I" | "S" => {
                assert!(value.parse::<u64>().is_ok(), "{line}");
                Some("[SIZE]")
            }
            "datahash" => {
                assert!(hex(64), "{line}");
                Some("[SHA256]")
            }
            "commit" | "c" => {
                assert!(hex(40), "{line}");
                Some("[COMMIT]")
            }
            "C" => {
                assert!(value.starts_with("Q1") && value.len() == 30, "{line}");
                Some("[Q1-SHA1]")
            }
            _ => None,
        };
        match masked {
            Some(m) if line.contains(" = ") => out.push_str(&format!("{key} = {m}")),
            Some(m) => out.push_str(&format!("{key}:{m}")),
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// The hello example's `.PKGINFO` (main and -dev) and APKINDEX record, as
/// `forge build` writes them, against golden texts in tests/golden/.
#[test]
fn hello_example_pkginfo_and_index_match_golden() {
    if !support::require_bwrap() {
        return;
    }
    let dir = clone_of_repo();
    let root = dir.path();
    run_ok(forge(root).args(["--offline", "build", "hello", "--no-images"]));
    let repo = root.join("out/repo").join(std::env::consts::ARCH);
    for (pkg, golden) in [
        ("hello-1.0-r0.apk", "hello.PKGINFO"),
        ("hello-dev-1.0-r0.apk", "hello-dev.PKGINFO"),
    ] {
        let p = forge::apk::Package::open(&repo.join(pkg)).unwrap();
        support::golden(golden, &mask(&p.info.render()));
    }
    let trusted = forge::sign::TrustedKeys::load_dir(&root.join("keys")).unwrap();
    let index = forge::apk::index::Index::read(&repo.join("APKINDEX.tar.gz"), &trusted).unwrap();
    let entry = index.entries.iter().find(|e| e.name == "hello").unwrap();
    let mut record = String::new();
    entry.render_into(&mut record);
    support::golden("hello.APKINDEX", &mask(&record));
}

/// The user every file of `root` is handed to, and the build runs as, in
/// [`root_and_unprivileged_builds_are_identical`]: `nobody`.
const UNPRIVILEGED: u32 = 65534;

/// `forge` in `dir` run as [`UNPRIVILEGED`] through `setpriv`, with the
/// environment `support::forge` gives, using the binary copy `bin`.
fn forge_unprivileged(dir: &Path, bin: &Path) -> std::process::Command {
    let template = forge(dir);
    let id = UNPRIVILEGED.to_string();
    let mut cmd = std::process::Command::new("setpriv");
    cmd.arg(format!("--reuid={id}"))
        .arg(format!("--regid={id}"))
        .arg("--clear-groups")
        .arg(bin)
        .current_dir(dir)
        .env("HOME", dir)
        .env_remove("XDG_CACHE_HOME");
    for (k, v) in template.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    cmd
}

/// Hand every entry under (and including) `root` to [`UNPRIVILEGED`].
fn chown_tree(root: &Path) {
    for e in walkdir::WalkDir::new(root) {
        let e = e.unwrap();
        std::os::unix::fs::lchown(e.path(), Some(UNPRIVILEGED), Some(UNPRIVILEGED)).unwrap();
    }
}

/// Packaging records ownership itself (root, fakeroot-style), and the sandbox
/// runs every build as the same build user: so a build run by root and one
/// run by an ordinary user give the same bytes.
#[test]
fn root_and_unprivileged_builds_are_identical() {
    use std::os::unix::fs::MetadataExt as _;
    if !support::require_root() || !support::require_bwrap() || !support::require_tool("setpriv") {
        return;
    }
    let a = clone_of_repo();
    run_ok(forge(a.path()).args(["--offline", "build"]));

    let b = clone_of_repo();
    let bin = b.path().join(".forge-bin");
    std::fs::copy(support::forge_bin(), &bin).unwrap();
    chown_tree(b.path());
    let (_, err) = run_ok(forge_unprivileged(b.path(), &bin).args(["--offline", "build"]));
    assert!(err.contains("3 built"), "{err}");
    // It really ran as that user: its outputs belong to it.
    let out_owner = std::fs::metadata(b.path().join("out/repo")).unwrap().uid();
    assert_eq!(out_owner, UNPRIVILEGED);

    let repo_a = files_under(&a.path().join("out/repo"));
    let repo_b = files_under(&b.path().join("out/repo"));
    assert!(repo_a.keys().filter(|k| k.ends_with(".apk")).count() >= 5);
    assert_eq!(
        repo_a.keys().collect::<Vec<_>>(),
        repo_b.keys().collect::<Vec<_>>()
    );
    for (name, bytes) in &repo_a {
        assert!(
            bytes == &repo_b[name],
            "{name} differs between root and {UNPRIVILEGED}"
        );
    }
    let img_a = files_under(&a.path().join("out/images"));
    let img_b = files_under(&b.path().join("out/images"));
    assert_eq!(img_a, img_b, "image layouts and SBOMs are byte-identical");
}
