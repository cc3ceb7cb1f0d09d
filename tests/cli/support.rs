//! Shared helpers for the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `forge` binary under test.
pub fn forge_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_forge"))
}

/// The repository root (holds `recipes/`).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[path = "../support/tools.rs"]
mod tools;
pub use tools::*;

/// A `forge` command run in `dir`, with a private cache under `dir`.
pub fn forge(dir: &Path) -> Command {
    let mut cmd = Command::new(forge_bin());
    cmd.current_dir(dir)
        .env("FORGE_CACHE_DIR", dir.join(".forge-cache"))
        .env_remove("FORGE_OUT")
        .env_remove("FORGE_OFFLINE")
        .env_remove("SOURCE_DATE_EPOCH")
        .env_remove("FORGE_SIGNING_KEY")
        .env("NO_COLOR", "1");
    cmd
}

/// Run and return the output, printing it for the test log.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("spawning forge");
    eprintln!(
        "$ {:?}\n--- status: {}\n--- stdout\n{}\n--- stderr\n{}",
        cmd,
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Run, assert success, return (stdout, stderr).
pub fn run_ok(cmd: &mut Command) -> (String, String) {
    let out = run(cmd);
    assert!(out.status.success(), "command failed: {:?}", cmd);
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Run, assert failure, return stderr.
pub fn run_err(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(
        !out.status.success(),
        "command unexpectedly succeeded: {:?}",
        cmd
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A fresh project folder with an empty `recipes/`.
pub fn project() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("forge-test-")
        .tempdir()
        .unwrap();
    std::fs::create_dir_all(dir.path().join("recipes")).unwrap();
    dir
}

/// Write `text` to `root/rel`, creating folders.
pub fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

/// Copy a folder tree (files, folders, symlinks).
pub fn copy_tree(from: &Path, to: &Path) {
    for entry in walkdir::WalkDir::new(from) {
        let entry = entry.unwrap();
        let rel = entry.path().strip_prefix(from).unwrap();
        let dest = to.join(rel);
        let ft = entry.file_type();
        if ft.is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
        } else if ft.is_symlink() {
            let target = std::fs::read_link(entry.path()).unwrap();
            std::os::unix::fs::symlink(target, &dest).unwrap();
        } else {
            std::fs::copy(entry.path(), &dest).unwrap();
        }
    }
}

/// `git init` + commit everything in `dir` with a fixed author date.
pub fn git_commit_all(dir: &Path, date: &str) {
    let git = |args: &[&str]| {
        let st = Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_AUTHOR_DATE", date)
            .env("GIT_COMMITTER_DATE", date)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@t")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@t")
            .status()
            .unwrap();
        assert!(st.success(), "git {:?}", args);
    };
    if !dir.join(".git").exists() {
        git(&["init", "-q", "-b", "main"]);
    }
    git(&["add", "-A"]);
    git(&["commit", "-q", "-m", "test", "--allow-empty"]);
}

/// Copy the test suite's fixed signing key into `root/keys/` (mode 0600), so
/// a test pays no key generation and two projects sign identically.
pub fn install_test_key(root: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let keys = root.join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    for entry in std::fs::read_dir(repo_root().join("tests/fixtures/keys")).unwrap() {
        let entry = entry.unwrap();
        let dest = keys.join(entry.file_name());
        std::fs::copy(entry.path(), &dest).unwrap();
        let mode = if dest.extension().is_some_and(|e| e == "pub") {
            0o644
        } else {
            0o600
        };
        std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(mode)).unwrap();
    }
}

/// `--json` events of a forge run: every `{"event":"unit",...}` line as
/// (unit, status).
pub fn unit_events(stdout: &str) -> Vec<(String, String)> {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"] == "unit")
        .map(|v| {
            (
                v["unit"].as_str().unwrap_or_default().to_string(),
                v["status"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// Compare with `tests/golden/NAME` (or rewrite it with `FORGE_UPDATE_GOLDEN=1`).
pub fn golden(name: &str, actual: &str) {
    let path = repo_root().join("tests/golden").join(name);
    if std::env::var_os("FORGE_UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(actual, want, "golden {name} differs");
}
