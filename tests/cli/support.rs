//! Shared helpers for the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `forge` binary under test.
pub fn forge_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_forge"))
}

#[path = "../support/tools.rs"]
mod tools;
pub use tools::*;

#[path = "../support/project.rs"]
mod project;
pub use project::*;

#[path = "../support/registry.rs"]
mod registry;
pub use registry::Registry;

#[path = "../support/rng.rs"]
mod rng;
pub use rng::{Rng, noise};

#[path = "../support/http.rs"]
pub mod http;

#[path = "../support/crash.rs"]
pub mod crash;

/// A `forge` command run in `dir`, with a private cache under `dir`.
pub fn forge(dir: &Path) -> Command {
    forge_under(&[], dir)
}

/// [`forge`] started through `wrapper` (a program and its first arguments,
/// which receive the forge binary as their next argument): `unshare`, a
/// shell script. Empty: forge itself.
pub fn forge_under(wrapper: &[&str], dir: &Path) -> Command {
    let mut cmd = match wrapper.split_first() {
        Some((program, args)) => {
            let mut c = Command::new(program);
            c.args(args).arg(forge_bin());
            c
        }
        None => Command::new(forge_bin()),
    };
    cmd.current_dir(dir)
        .env("FORGE_CACHE_DIR", dir.join(".forge-cache"))
        .env_remove("FORGE_OUT")
        .env_remove("FORGE_OFFLINE")
        .env_remove("SOURCE_DATE_EPOCH")
        .env_remove("FORGE_SIGNING_KEY")
        .env("NO_COLOR", "1");
    cmd
}

/// A committed cosign test fixture (`tests/fixtures/cosign/NAME`): `kat.key`
/// (password `forge-kat`), `kat.pub`, known-answer payloads.
pub fn cosign_fixture(name: &str) -> PathBuf {
    repo_root().join("tests/fixtures/cosign").join(name)
}

/// A `forge` command that signs images with the committed test image key and
/// sees no registry credentials from the environment.
pub fn forge_signing(dir: &Path) -> Command {
    let mut c = forge(dir);
    c.env("FORGE_IMAGE_SIGNING_KEY", cosign_fixture("kat.key"))
        .env("COSIGN_PASSWORD", "forge-kat")
        .env_remove("FORGE_REGISTRY_USER")
        .env_remove("FORGE_REGISTRY_PASSWORD")
        .env("DOCKER_CONFIG", dir.join(".no-docker-config"));
    c
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

/// A fresh project folder with an empty `recipes/` (see [`Project`] for the
/// fluent form).
pub fn project() -> tempfile::TempDir {
    Project::new().into_temp_dir()
}

/// After a run was killed: the repository as it was left verifies (see
/// [`verify_repo`]); one with no index yet (killed before its first) passes.
pub fn verify_repo_as_left(root: &Path) {
    let index = root
        .join("out/repo")
        .join(std::env::consts::ARCH)
        .join("APKINDEX.tar.gz");
    if index.exists() {
        verify_repo(root);
    }
}

/// `forge verify` the repository's index, which must exist (this verifies
/// every package it names), and every `.apk` beside it.
pub fn verify_repo(root: &Path) {
    let repo = root.join("out/repo").join(std::env::consts::ARCH);
    let index = repo.join("APKINDEX.tar.gz");
    assert!(index.is_file(), "{} is missing", index.display());
    // `forge verify` on an index also verifies every package it names.
    run_ok(forge(root).arg("verify").arg(&index));
    let mut apks: Vec<_> = std::fs::read_dir(&repo)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "apk"))
        .collect();
    apks.sort();
    if !apks.is_empty() {
        run_ok(forge(root).arg("verify").args(&apks));
    }
}

/// A registry client for `host` over plain HTTP, checked with a ping.
pub fn registry_client(host: &str) -> forge::registry::Client {
    let opts = forge::registry::ClientOptions {
        insecure: true,
        ..Default::default()
    };
    let c = forge::registry::Client::new(host, opts).expect("a registry client");
    c.ping().expect("the registry answers");
    c
}

/// Validate GitLab CI files against GitLab's schema (check-jsonschema's
/// vendored copy, with the flags of its `check-gitlab-ci` hook). The caller
/// gates on `require_tool("check-jsonschema")`.
pub fn check_gitlab_ci<P: AsRef<Path>>(files: &[P]) -> Output {
    let mut cmd = Command::new("check-jsonschema");
    cmd.args(["--builtin-schema", "vendor.gitlab-ci"])
        .args(["--data-transform", "gitlab-ci"])
        .args(["--regex-variant", "nonunicode"]);
    for f in files {
        cmd.arg(f.as_ref());
    }
    run(&mut cmd)
}
