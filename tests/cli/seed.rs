//! The toolchain seed (`recipes/zig`): the ziglang wheel, taken from the
//! seeded mirror (`.ci/seed-mirror.sh` puts it there with `pip download`),
//! unpacked as a zip and packaged offline.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support;

/// The wheel's file name: the last segment of the zig recipe's url.
fn wheel_name() -> String {
    let text =
        std::fs::read_to_string(support::repo_root().join("recipes/zig/recipe.toml")).unwrap();
    let doc: toml::Table = toml::from_str(&text).unwrap();
    let url = doc["source"].as_array().unwrap()[0]["url"]
        .as_str()
        .unwrap();
    url.rsplit('/').next().unwrap().to_string()
}

/// A project with the repository's zig recipe; `None` when the mirror has
/// no wheel or bwrap is missing (a failure in CI).
pub(crate) fn seed_project() -> Option<(support::Project, PathBuf)> {
    let mirror = support::require_mirror_file(&wheel_name())?;
    if !support::require_bwrap() {
        return None;
    }
    let p = support::Project::new();
    p.copy_recipes(&["zig"]).commit().key();
    Some((p, mirror))
}

/// `forge --offline --mirror MIRROR build ARGS…` in `project`.
pub(crate) fn build_offline(project: &Path, mirror: &Path, args: &[&str]) -> String {
    let (_, err) = support::run_ok(
        support::forge(project)
            .arg("--offline")
            .arg("--mirror")
            .arg(mirror)
            .arg("build")
            .args(args),
    );
    err
}

#[test]
fn zig_seed_packages_the_wheel_offline() {
    let Some((project, mirror)) = seed_project() else {
        return;
    };
    let root = project.path();
    build_offline(root, &mirror, &["zig"]);
    let apk = root.join("out/repo/x86_64/zig-0.17.0-r0.apk");
    assert!(apk.is_file());
    let (out, _) = support::run_ok(support::forge(root).arg("inspect").arg(&apk));
    for line in [
        "l 0777          0 usr/bin/cc -> ../lib/zig/forge-cc",
        "l 0777          0 usr/bin/c++ -> ../lib/zig/forge-cc",
        "l 0777          0 usr/bin/ar -> ../lib/zig/forge-cc",
        "l 0777          0 usr/bin/ranlib -> ../lib/zig/forge-cc",
        "l 0777          0 usr/bin/zig -> ../lib/zig/zig",
        "cmd:cc=0.17.0-r0",
    ] {
        assert!(out.contains(line), "{line} in\n{out}");
    }
    // The zig binary is upstream's, unstripped and whole: it runs and finds
    // its lib folder beside it (musl's sources are there).
    let staged = root.join("out/stage/zig/zig/usr/lib/zig");
    assert!(
        staged
            .join("lib/libc/musl/src/string/strverscmp.c")
            .is_file()
    );
    let version = Command::new(staged.join("zig"))
        .arg("version")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&version.stdout), "0.17.0\n");
}
