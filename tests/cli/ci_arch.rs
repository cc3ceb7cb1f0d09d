//! A child pipeline for two architectures, its jobs run by hand in the order
//! their `needs` allow, each in an output folder of its own (runners that
//! share nothing but the registry): the foreign architecture's hermetic
//! unit pulls the host's build-root base from the build cache, the host's
//! image for both architectures pulls the foreign packages, and the one
//! publish job pushes a repository holding both. A second plan in a fresh
//! folder finds every unit of both architectures in the cache.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use crate::support::{self, Project, Registry, forge, forge_bin, run, run_ok};

/// forge.toml `arch = [other, host]`, hermetic by default on a `toolbox`
/// base (the host's static busybox, made in the bootstrap stage for the
/// host only); `note` for both architectures, `extra` (needing note) for
/// the other only; `images/app.toml` of note for both.
pub(crate) fn two_arch_project(host: &str, other: &str) -> Project {
    let p = Project::new();
    p.forge_toml(&format!(
        "arch = [\"{other}\", \"{host}\"]\n[build-root]\nstage = \"hermetic\"\nbase = [\"toolbox\"]\n"
    ));
    toolbox_and_note(&p, host, other);
    p.recipe("extra")
        .arch(&[other])
        .makedepends(&["note"])
        .script("mkdir -p \"$pkgdir/usr/share/extra\"\necho extra > \"$pkgdir/usr/share/extra/e\"")
        .write();
    p.write(
        "images/app.toml",
        &format!("schema = 1\npackages = [\"note\"]\narchs = [\"{host}\", \"{other}\"]\n"),
    );
    p.commit().key();
    p
}

/// The `toolbox` base (bootstrap stage, the host only) and a hermetic
/// `note` for `host` and `other`.
pub(crate) fn toolbox_and_note(p: &Project, host: &str, other: &str) {
    p.recipe("toolbox")
        .stage("bootstrap")
        .arch(&[host])
        .options(&["!strip"])
        .script(
            "install -D -m 755 /bin/busybox \"$pkgdir/bin/busybox\"\n\
             for a in sh mkdir echo; do ln -s busybox \"$pkgdir/bin/$a\"; done",
        )
        .write();
    p.recipe("note")
        .arch(&[host, other])
        .stage("hermetic")
        .script("mkdir -p \"$pkgdir/usr/share/note\"\necho note > \"$pkgdir/usr/share/note/n\"")
        .write();
}

/// `forge --json ci plan ARGS` with `out` as the output folder: the document.
fn plan_in(root: &Path, out: &Path, args: &[&str]) -> serde_json::Value {
    let (stdout, _) = run_ok(
        forge(root)
            .args(["--json", "ci", "plan", "--forge"])
            .arg(forge_bin())
            .args(["--output"])
            .arg(out.join("child.yml"))
            .args(args)
            .env("FORGE_OUT", out),
    );
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["event"] == "ci-plan")
        .expect("a ci-plan event")["pipeline"]
        .clone()
}

/// Run every job of `doc`, each once its needs are done, the first ready in
/// name order (so a need left out would run a job before its dependency);
/// each job's stderr by name.
fn run_jobs(
    root: &Path,
    doc: &serde_json::Value,
    env: &[(&str, String)],
) -> BTreeMap<String, String> {
    let jobs: BTreeMap<String, (Vec<String>, Vec<String>)> = doc
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| *k != "stages")
        .map(|(k, j)| {
            let needs = serde_json::from_value(j["needs"].clone()).unwrap();
            let script = serde_json::from_value(j["script"].clone()).unwrap();
            (k.clone(), (needs, script))
        })
        .collect();
    let mut done = BTreeSet::new();
    let mut logs = BTreeMap::new();
    while done.len() < jobs.len() {
        let (name, (_, script)) = jobs
            .iter()
            .find(|(n, (needs, _))| !done.contains(*n) && needs.iter().all(|x| done.contains(x)))
            .expect("a job whose needs are done");
        let out = root.join("runners").join(name.replace(':', "-"));
        let mut cmd = Command::new("sh");
        cmd.args(["-ec", &script.join("\n")])
            .current_dir(root)
            .env("FORGE_OUT", &out);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let res = run(&mut cmd);
        let err = String::from_utf8_lossy(&res.stderr).into_owned();
        assert!(res.status.success(), "job {name} failed:\n{err}");
        logs.insert(name.clone(), err);
        done.insert(name.clone());
    }
    logs
}

#[test]
fn two_arch_child_jobs_run_each_in_its_own_folder() {
    let host = std::env::consts::ARCH;
    let other = match host {
        "x86_64" => "aarch64",
        _ => return,
    };
    if !support::require_tool("docker-registry")
        || !support::require_file(Path::new("/bin/busybox"))
        || !support::require_bwrap()
    {
        return;
    }
    let started = Instant::now();
    let p = two_arch_project(host, other);
    let root = p.path();
    let reg = Registry::start();
    let cache = format!("oci+http://{}/forge/cache", reg.host());
    let doc = plan_in(root, &root.join("runners/plan"), &[]);
    let env = [
        ("FORGE_CACHE", cache.clone()),
        ("FORGE_REGISTRY", format!("{}/forge", reg.host())),
        ("FORGE_PUBLISH_FLAGS", "--insecure --no-sign".to_string()),
    ];
    let logs = run_jobs(root, &doc, &env);
    let job = |a: &str, u: &str| format!("build:{a}:{u}");
    // The foreign note pulled the host's toolbox, then built on it.
    let note = &logs[&job(other, "note")];
    assert!(
        note.contains(&format!("1 units of {host} this job needs")),
        "{note}"
    );
    let runner = |j: &str| root.join("runners").join(j.replace(':', "-"));
    assert!(
        runner(&job(other, "note"))
            .join(format!("repo/{other}/note-1.0-r0.apk"))
            .is_file()
    );
    // The image pulled the foreign packages it holds.
    let image = &logs[&job(host, "image:app")];
    assert!(
        image.contains(&format!("2 units of {other} this job needs")),
        "{image}"
    );

    // The published repository holds both architectures, verified.
    let pulled = root.join("pulled");
    run_ok(
        forge(root)
            .args(["pull-repo", "--insecure", "--out"])
            .arg(&pulled)
            .arg(format!("{}/forge/packages:latest", reg.host())),
    );
    for (arch, file) in [
        (other, "note-1.0-r0.apk"),
        (other, "extra-1.0-r0.apk"),
        (host, "note-1.0-r0.apk"),
        (host, "toolbox-1.0-r0.apk"),
    ] {
        assert!(pulled.join(arch).join(file).is_file(), "{arch}/{file}");
    }

    // A fresh plan finds every unit of both architectures in the cache: the
    // keys each job computed are the plan's.
    let doc = plan_in(root, &root.join("runners/plan2"), &["--cache", &cache]);
    assert_eq!(crate::ci::jobs(&doc), ["nothing-to-build"]);
    eprintln!(
        "two-arch child pipeline, {} jobs by hand: {:.2?}",
        logs.len(),
        started.elapsed()
    );
}

/// forge.toml's `default-targets` name recipes of either architecture: each
/// architecture's plan takes those that build for it (a host-only base in
/// the list stopped the foreign plan with ``no recipe named `toolbox` ``).
#[test]
fn default_targets_of_one_architecture_leave_the_other_alone() {
    let host = std::env::consts::ARCH;
    let other = if host == "x86_64" {
        "aarch64"
    } else {
        "x86_64"
    };
    let p = two_arch_project(host, other);
    let toml = std::fs::read_to_string(p.path().join("forge.toml")).unwrap();
    p.forge_toml(&format!(
        "default-targets = [\"toolbox\", \"extra\"]\n{toml}"
    ));
    p.commit();
    let (doc, _) = crate::ci::ci_plan(p.path(), &[]);
    let jobs = crate::ci::jobs(&doc);
    for j in [
        format!("build:{host}:toolbox"),
        format!("build:{other}:extra"),
        format!("build:{other}:note"),
    ] {
        assert!(jobs.contains(&j), "{j} in {jobs:?}");
    }
    assert!(!jobs.contains(&format!("build:{host}:note")), "{jobs:?}");
    // A name no recipe has is still an error.
    p.forge_toml(&format!("default-targets = [\"nope\"]\n{toml}"));
    let err = crate::support::run_err(crate::support::forge(p.path()).args(["ci", "plan"]));
    assert!(err.contains("no recipe named `nope`"), "{err}");
}
