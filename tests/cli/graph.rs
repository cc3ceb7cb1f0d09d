//! The build graph: exact rebuild sets, --explain, build dependencies from
//! forge's own repository, and crash safety under kill -9.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::graphgen as gen_;
use crate::support::{self, forge, run, run_ok};

fn built_units(stdout: &str) -> BTreeSet<String> {
    support::unit_events(stdout)
        .into_iter()
        .filter(|(_, status)| status == "built")
        .map(|(unit, _)| unit)
        .collect()
}

fn generated_project(n: usize) -> support::Project {
    let p = support::Project::new();
    gen_::write_graph(p.path(), n);
    p.key().commit();
    p
}

/// 1,000 recipes: a no-op run builds nothing; changing one leaf rebuilds
/// exactly its reverse closure, and --explain names the changed input.
#[test]
fn graph_change_rebuilds_exactly_the_reverse_closure() {
    const N: usize = 1000;
    let dir = generated_project(N);
    let root = dir.path();
    // The graph is the subject here, not the sandbox: build without one.
    let build = || {
        let mut cmd = forge(root);
        cmd.args(["--sandbox", "none", "--json", "-j2", "build", "--no-images"]);
        cmd
    };
    let (out, _) = run_ok(&mut build());
    assert_eq!(built_units(&out).len(), N, "first run builds every unit");

    let (out, _) = run_ok(&mut build());
    assert!(built_units(&out).is_empty(), "a no-op run builds nothing");

    let leaf = 500;
    assert!(gen_::deps_of(leaf).is_empty(), "unit {leaf} must be a leaf");
    std::fs::write(root.join("recipes/u0500/data.txt"), "changed\n").unwrap();

    let mut explain = forge(root);
    explain.args(["--sandbox", "none", "build", "--explain", "--dry-run"]);
    let (_, err) = run_ok(&mut explain);
    assert!(
        err.contains("u0500 1.0-r0: dirty: source #1 changed"),
        "--explain names the changed source"
    );
    let dependent = gen_::reverse_closure(N, leaf)
        .into_iter()
        .find(|&i| gen_::deps_of(i).contains(&leaf))
        .expect("the leaf has a direct dependent");
    assert!(
        err.contains(&format!(
            "{} 1.0-r0: dirty: build dependency `u0500` changed",
            gen_::name(dependent)
        )),
        "--explain names the changed build dependency"
    );
    assert!(err.contains("u0001 1.0-r0: fresh"));

    let (out, _) = run_ok(&mut build());
    let expected: BTreeSet<String> = gen_::reverse_closure(N, leaf)
        .into_iter()
        .map(gen_::name)
        .collect();
    assert!(expected.len() > 1 && expected.len() < N / 2);
    assert_eq!(built_units(&out), expected);
}

/// greet is compiled against forge's own libgreet, installed from the signed
/// repository into the build root, and its package depends on the soname.
#[test]
fn greet_builds_against_libgreet_from_the_repository() {
    if !support::require_bwrap() {
        return;
    }
    let dir = support::Project::new();
    dir.copy_recipes(&["libgreet", "greet"]).key().commit();
    let root = dir.path();
    assert!(
        !Path::new("/usr/include/greet.h").exists()
            && !Path::new("/usr/lib/libgreet.so.1").exists(),
        "the host must not have its own libgreet for this test to mean anything"
    );
    run_ok(forge(root).args(["build", "greet"]));

    let repo = root.join("out/repo/x86_64");
    let (info, _) = run_ok(
        forge(root)
            .args(["inspect"])
            .arg(repo.join("greet-1.0-r0.apk")),
    );
    assert!(
        info.contains("so:libgreet.so.1"),
        "greet depends on libgreet's soname"
    );
    let (info, _) = run_ok(
        forge(root)
            .args(["inspect"])
            .arg(repo.join("libgreet-1.0-r0.apk")),
    );
    assert!(
        info.contains("so:libgreet.so.1=1"),
        "libgreet provides its soname"
    );

    // The host has no libgreet, so the compiler can only have found it in the
    // build root where the repository's libgreet and libgreet-dev were unpacked.
    let deps = root.join("out/deps/greet");
    assert!(deps.join("usr/include/greet.h").is_file());
    assert!(deps.join("usr/lib/libgreet.so.1").is_file());
    let log = std::fs::read_to_string(root.join("out/logs/greet.log")).unwrap();
    assert!(log.contains("-o greet greet.c -lgreet"), "log:\n{log}");

    // And the program runs against that library.
    let stage = root.join("out/stage");
    let out = Command::new(stage.join("greet/greet/usr/bin/greet"))
        .env("LD_LIBRARY_PATH", stage.join("libgreet/libgreet/usr/lib"))
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(!out.stdout.is_empty());
}

fn kill_project() -> support::Project {
    let p = support::Project::new();
    // A diamond plus a tail: a <- b, c <- d <- e, and f alone.
    let deps: [(&str, &[&str]); 6] = [
        ("ka", &[]),
        ("kb", &["ka"]),
        ("kc", &["ka"]),
        ("kd", &["kb", "kc"]),
        ("ke", &["kd"]),
        ("kf", &[]),
    ];
    for (name, ds) in deps {
        p.recipe(name)
            .arch(&["noarch"])
            .makedepends(ds)
            .options(&["!check"])
            .source("data.txt", &format!("{name}\n"))
            .script(&format!(
                r#"sleep 0.3
mkdir -p "$pkgdir/usr/share/{name}"
head -c 200000 /dev/zero | tr '\0' x > "$pkgdir/usr/share/{name}/blob"
cp data.txt "$pkgdir/usr/share/{name}/""#
            ))
            .write();
    }
    p.key().commit();
    p
}

/// kill -9 at pseudo-random points of a multi-package build, 20 times; after
/// each kill the repository verifies; a final normal run finishes the rest
/// without rebuilding units that had finished.
#[test]
fn graph_kill_dash_nine_leaves_everything_consistent() {
    if !support::require_bwrap() {
        return;
    }
    let dir = kill_project();
    let root = dir.path();
    let mut rng = support::Rng::from_env("graph kill -9");
    for trial in 0..20 {
        // Start from scratch every few trials so kills land in every phase.
        if trial % 4 == 0 {
            let _ = std::fs::remove_dir_all(root.join("out"));
        }
        let delay = Duration::from_millis(50 + rng.below(2500));
        support::crash::run_and_kill(forge(root).args(["-j2", "build", "--no-images"]), delay);
        support::verify_repo_as_left(root);
    }
    // Units whose state file is there count as finished.
    let state = root.join("out/state").join(std::env::consts::ARCH);
    let finished: BTreeSet<String> = std::fs::read_dir(&state)
        .map(|it| {
            it.filter_map(|e| e.ok())
                .filter_map(|e| {
                    let n = e.file_name().to_string_lossy().into_owned();
                    n.strip_suffix(".json").map(str::to_string)
                })
                .collect()
        })
        .unwrap_or_default();
    let out = run(forge(root).args(["--json", "-j2", "build", "--no-images"]));
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let built = built_units(&stdout);
    assert!(
        built.is_disjoint(&finished),
        "finished units {finished:?} were rebuilt: {built:?}"
    );
    let all: BTreeSet<String> = support::unit_events(&stdout)
        .into_iter()
        .map(|(u, _)| u)
        .collect();
    assert_eq!(all.len(), 6);
    support::verify_repo(root);
    let (out, _) = run_ok(forge(root).args(["--json", "build", "--no-images"]));
    assert!(
        built_units(&out).is_empty(),
        "everything is fresh afterwards"
    );
}

/// Missing host tools are reported for every dirty unit before any builds.
#[test]
fn graph_missing_host_tools_are_named_before_anything_builds() {
    let dir = support::Project::new();
    let root = dir.path();
    for (name, tool) in [("aa", "sh"), ("bb", "no-such-tool-forge-test")] {
        dir.recipe(name)
            .arch(&["noarch"])
            .tools(&[tool])
            .script(&format!(
                "mkdir -p $pkgdir/usr/share/{name}; echo x > $pkgdir/usr/share/{name}/x"
            ))
            .write();
    }
    support::install_test_key(root);
    let err = support::run_err(forge(root).args(["--sandbox", "none", "build"]));
    assert!(
        err.contains("missing host tools: `no-such-tool-forge-test` (for bb)"),
        "{err}"
    );
    assert!(!root.join("out/logs/aa.log").exists(), "nothing was built");
}

/// Choosing the legacy SHA-1 signature changes what a package holds, so it
/// makes fresh units dirty and says why.
#[test]
fn graph_signature_choice_is_an_input() {
    let dir = generated_project(3);
    let root = dir.path();
    run_ok(forge(root).args(["--sandbox", "none", "build"]));
    let (_, err) = run_ok(forge(root).args([
        "--sandbox",
        "none",
        "build",
        "--sha1-signature",
        "--explain",
        "--dry-run",
    ]));
    assert!(
        err.contains("u0000 1.0-r0: dirty: build environment changed"),
        "{err}"
    );

    // Building with it signs packages and the index both ways.
    run_ok(forge(root).args(["--sandbox", "none", "build", "--sha1-signature"]));
    let repo = root.join("out/repo").join(std::env::consts::ARCH);
    for file in ["u0000-1.0-r0.apk", "APKINDEX.tar.gz"] {
        let bytes = std::fs::read(repo.join(file)).unwrap();
        let gz = flate2::read::MultiGzDecoder::new(&bytes[..]);
        let names: Vec<String> = tar::Archive::new(gz)
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".SIGN."))
            .collect();
        assert!(
            names.iter().any(|n| n.starts_with(".SIGN.RSA256."))
                && names.iter().any(|n| n.starts_with(".SIGN.RSA.")),
            "{file}: {names:?}"
        );
    }
}

/// A rebuilt unit's superseded packages (an older version, a dropped
/// subpackage) leave the repository and its index.
#[test]
fn graph_rebuild_drops_superseded_packages() {
    let dir = support::project();
    let root = dir.path();
    let recipe = |version: &str, extra: bool| {
        let sub = if extra {
            "\n[[subpackage]]\nname = \"pr-extra\"\npaths = [\"usr/share/pr/extra\"]\n"
        } else {
            ""
        };
        format!(
            r#"schema = 1
[package]
name = "pr"
version = "{version}"
release = 0
description = "prune test"
license = "MIT"
arch = ["noarch"]

[build]
script = "mkdir -p $pkgdir/usr/share/pr; echo a > $pkgdir/usr/share/pr/main; echo b > $pkgdir/usr/share/pr/extra"
{sub}"#
        )
    };
    support::write(root, "recipes/pr/recipe.toml", &recipe("1.0", true));
    support::install_test_key(root);
    run_ok(forge(root).args(["--sandbox", "none", "build"]));
    let repo = root.join("out/repo").join(std::env::consts::ARCH);
    assert!(repo.join("pr-1.0-r0.apk").is_file() && repo.join("pr-extra-1.0-r0.apk").is_file());

    support::write(root, "recipes/pr/recipe.toml", &recipe("1.1", false));
    run_ok(forge(root).args(["--sandbox", "none", "build"]));
    let mut apks: Vec<String> = std::fs::read_dir(&repo)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".apk"))
        .collect();
    apks.sort();
    assert_eq!(apks, ["pr-1.1-r0.apk"]);
    let (_, err) = run_ok(forge(root).arg("verify").arg(repo.join("APKINDEX.tar.gz")));
    assert!(!err.contains("pr-extra"), "{err}");
    let trusted = forge::sign::TrustedKeys::load_dir(&root.join("keys")).unwrap();
    let index = forge::apk::index::Index::read(&repo.join("APKINDEX.tar.gz"), &trusted).unwrap();
    let names: Vec<String> = index
        .entries
        .iter()
        .map(|e| format!("{}-{}", e.name, e.version))
        .collect();
    assert_eq!(names, ["pr-1.1-r0"]);
}

/// A corrupt package in the repository does not wedge the build: it is left
/// out of the index with a warning, and the unit that made it rebuilds it.
#[test]
fn graph_corrupt_package_is_rebuilt() {
    let dir = generated_project(2);
    let root = dir.path();
    run_ok(forge(root).args(["--sandbox", "none", "build"]));
    let apk = root
        .join("out/repo")
        .join(std::env::consts::ARCH)
        .join("u0001-1.0-r0.apk");
    let good = std::fs::read(&apk).unwrap();
    std::fs::write(&apk, &good[..good.len() / 2]).unwrap();
    let (out, err) = run_ok(forge(root).args(["--sandbox", "none", "--json", "build"]));
    assert!(err.contains("is left out of the index"), "{err}");
    assert_eq!(built_units(&out), BTreeSet::from(["u0001".to_string()]));
    assert_eq!(std::fs::read(&apk).unwrap(), good, "rebuilt byte for byte");
    run_ok(
        forge(root)
            .arg("verify")
            .arg(apk.parent().unwrap().join("APKINDEX.tar.gz")),
    );
}
