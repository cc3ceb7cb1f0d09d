//! The real upstream recipes (`recipes/crun`, `recipes/busybox`) built end to
//! end, offline, from a seeded source mirror.
//!
//! `.ci/seed-mirror.sh DIR` fills DIR with the upstream release files (taken
//! from Debian's source packages and checked against the recipes' sha256);
//! `FORGE_TEST_MIRROR` names that folder (default `/tmp/forge-mirror`, where
//! `.ci/run` puts it). Without a seeded mirror the tests skip, unless
//! `FORGE_TEST_REQUIRE_TOOLS=1` makes that a failure.
//!
//! Each test copies the repository's recipes into a fresh project, runs
//! `forge --offline --mirror DIR build NAME` under bubblewrap, then runs the
//! staged binary and checks that it is really static.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support;

/// What the tests need from one real recipe file.
struct RealRecipe {
    version: String,
    /// The upstream file name of the first source (what the mirror holds).
    source_file: String,
}

/// Read `recipes/NAME/recipe.toml` of this repository.
fn real_recipe(name: &str) -> RealRecipe {
    let path = support::repo_root()
        .join("recipes")
        .join(name)
        .join("recipe.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let doc: toml::Table = toml::from_str(&text).unwrap();
    let version = doc["package"]["version"].as_str().unwrap().to_string();
    let url = doc["source"].as_array().unwrap()[0]["url"]
        .as_str()
        .unwrap();
    let source_file = url.rsplit('/').next().unwrap().to_string();
    RealRecipe {
        version,
        source_file,
    }
}

/// A project holding a copy of the repository's recipes and `forge.toml`.
fn repo_copy() -> support::Project {
    let p = support::Project::new();
    p.copy_from_repo("recipes").copy_from_repo("forge.toml");
    p
}

/// `forge --offline --mirror MIRROR build NAME` in `project`, which must succeed.
fn build_offline(project: &Path, mirror: &Path, name: &str) {
    support::run_ok(
        support::forge(project)
            .arg("--offline")
            .arg("--mirror")
            .arg(mirror)
            .args(["build", name]),
    );
}

/// Assert `path` is a statically linked ELF executable: no program
/// interpreter and no needed shared libraries.
fn assert_static_elf(path: &Path) {
    let bytes = std::fs::read(path).unwrap();
    let elf = goblin::elf::Elf::parse(&bytes).unwrap();
    assert_eq!(
        elf.interpreter,
        None,
        "{} has an interpreter",
        path.display()
    );
    assert!(
        elf.libraries.is_empty(),
        "{} needs shared libraries: {:?}",
        path.display(),
        elf.libraries
    );
}

/// Run `program args…` and return its stdout, asserting success.
fn run_binary(program: &Path, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{} {:?} failed: {}\n{}",
        program.display(),
        args,
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn crun_real_recipe_builds_offline_into_a_static_runtime() {
    let recipe = real_recipe("crun");
    let Some(mirror) = support::require_mirror_file(&recipe.source_file) else {
        return;
    };
    if !support::require_bwrap() {
        return;
    }
    let project = repo_copy();
    build_offline(project.path(), &mirror, "crun");

    let crun = project.path().join("out/stage/crun/crun/usr/bin/crun");
    assert_static_elf(&crun);
    let stdout = run_binary(&crun, &["--version"]);
    let mut lines = stdout.lines();
    assert_eq!(
        lines.next(),
        Some(format!("crun version {}", recipe.version).as_str())
    );
    // The features line: what the recipe enables, and systemd switched off.
    let features = stdout
        .lines()
        .find(|l| l.starts_with('+'))
        .expect("a features line");
    for feature in ["+CAP", "+SECCOMP", "+YAJL"] {
        assert!(
            features.split_whitespace().any(|f| f == feature),
            "{feature} missing in {features:?}"
        );
    }
    assert!(!features.contains("SYSTEMD"), "{features:?}");
    let man = project
        .path()
        .join("out/stage/crun/crun/usr/share/man/man1/crun.1");
    assert!(man.is_file() || man.with_extension("1.gz").is_file());
    assert!(!project.path().join("out/stage/crun/crun/usr/lib").exists());
}

#[test]
fn busybox_real_recipe_builds_offline_into_a_static_multicall_binary() {
    let recipe = real_recipe("busybox");
    let Some(mirror) = support::require_mirror_file(&recipe.source_file) else {
        return;
    };
    if !support::require_bwrap() {
        return;
    }
    let project = repo_copy();
    build_offline(project.path(), &mirror, "busybox");

    let root = project.path().join("out/stage/busybox/busybox");
    let busybox = root.join("bin/busybox");
    assert_static_elf(&busybox);
    let banner = run_binary(&busybox, &["--help"]);
    assert!(
        banner.starts_with(&format!("BusyBox v{} ", recipe.version)),
        "{banner:?}"
    );
    assert_eq!(run_binary(&busybox, &["echo", "hello"]), "hello\n");
    // Applet links are relative, so they work in any root.
    assert_eq!(
        std::fs::read_link(root.join("bin/sh")).unwrap(),
        PathBuf::from("busybox")
    );
    assert_eq!(
        std::fs::read_link(root.join("usr/bin/env")).unwrap(),
        PathBuf::from("../../bin/busybox")
    );
    assert!(!root.join("linuxrc").exists());
    // The applet set does not depend on the host's kernel headers.
    assert!(!root.join("sbin/tc").exists());
}
