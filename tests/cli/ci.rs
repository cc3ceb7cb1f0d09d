//! `forge ci plan`: child pipelines from the plan, checked by forge and by
//! GitLab's CI schema (check-jsonschema), for the examples, after a change,
//! when nothing changed, and for a 1,000-recipe graph; and every file in
//! `ci/` against the same schema and checks.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::graphgen as gen_;
use crate::plan::small_project;
use crate::support::{self, Project, forge, run, run_ok};

/// `forge --json ci plan` in `root`: the pipeline document and the YAML path.
pub fn ci_plan(root: &Path, extra: &[&str]) -> (serde_json::Value, PathBuf) {
    let out = root.join("child.yml");
    let mut cmd = forge(root);
    cmd.args(["--sandbox", "none", "--json", "ci", "plan", "--output"])
        .arg(&out)
        .args(extra);
    let (stdout, _) = run_ok(&mut cmd);
    let event: serde_json::Value = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .find(|v: &serde_json::Value| v["event"] == "ci-plan")
        .expect("a ci-plan event");
    (event["pipeline"].clone(), out)
}

pub fn jobs(doc: &serde_json::Value) -> Vec<String> {
    doc.as_object()
        .unwrap()
        .keys()
        .filter(|k| *k != "stages")
        .cloned()
        .collect()
}

/// Validate YAML files against GitLab's CI schema, as the pre-commit hook
/// `check-gitlab-ci` does. False when the tool is missing (and allowed to be).
pub(crate) fn schema_check(files: &[PathBuf]) -> bool {
    if !support::require_tool("check-jsonschema") {
        return false;
    }
    let out = run(Command::new("check-jsonschema")
        .args([
            "--builtin-schema",
            "vendor.gitlab-ci",
            "--data-transform",
            "gitlab-ci",
        ])
        .args(["--regex-variant", "nonunicode"])
        .args(files));
    assert!(out.status.success(), "GitLab's CI schema rejects {files:?}");
    true
}

/// A YAML file as JSON, read by the YAML library check-jsonschema ships with.
fn yaml_as_json(file: &Path) -> serde_json::Value {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let tool = std::env::split_paths(&path)
        .map(|d| d.join("check-jsonschema"))
        .find(|p| p.is_file())
        .expect("checked before");
    let python = tool.with_file_name("python3");
    let out = run(Command::new(python)
        .args(["-c", "import sys, json; from ruamel.yaml import YAML; print(json.dumps(YAML(typ='safe').load(open(sys.argv[1]))))"])
        .arg(file));
    assert!(out.status.success());
    serde_json::from_slice(&out.stdout).expect("JSON")
}

#[test]
fn ci_plan_for_the_examples_is_valid_gitlab_ci() {
    let p = Project::examples();
    let (doc, file) = ci_plan(p.path(), &[]);
    let arch = std::env::consts::ARCH;
    let mut expected: Vec<String> = ["greet", "hello", "image:hello", "libgreet"]
        .iter()
        .map(|u| format!("build:{arch}:{u}"))
        .collect();
    expected.push("publish".to_string());
    assert_eq!(jobs(&doc), expected);
    assert_eq!(
        doc[format!("build:{arch}:greet")]["needs"],
        serde_json::json!([format!("build:{arch}:libgreet")])
    );
    assert_eq!(
        doc[format!("build:{arch}:greet")]["script"],
        serde_json::json!([
            NEED_CACHE,
            format!("forge build --arch {arch} --cache \"$FORGE_CACHE\" --unit greet")
        ])
    );
    assert_eq!(doc["publish"]["resource_group"], "forge-index");
    assert_eq!(
        doc["publish"]["needs"],
        serde_json::json!([format!("build:{arch}:image:hello")])
    );
    assert!(forge::ci::check::check(&doc, None).is_empty());
    if schema_check(std::slice::from_ref(&file)) {
        assert_eq!(
            yaml_as_json(&file),
            doc,
            "the YAML says what the document says"
        );
    }
}

#[test]
fn ci_plan_after_a_change_and_after_no_change() {
    let p = small_project();
    let root = p.path();
    let arch = std::env::consts::ARCH;
    run_ok(forge(root).args(["--sandbox", "none", "build"]));
    let (doc, noop) = ci_plan(root, &[]);
    assert_eq!(
        jobs(&doc),
        ["nothing-to-build"],
        "nothing changed: only the no-op job"
    );
    let noop_copy = root.join("noop.yml");
    std::fs::copy(&noop, &noop_copy).unwrap();

    std::fs::write(root.join("recipes/lib/data.txt"), "lib 2\n").unwrap();
    let (doc, file) = ci_plan(root, &["--all"]);
    let job = |u: &str| format!("build:{arch}:{u}");
    assert_eq!(jobs(&doc), [job("app"), job("lib"), "publish".to_string()]);
    assert_eq!(doc[job("app")]["needs"], serde_json::json!([job("lib")]));
    assert_eq!(
        doc[job("app")]["script"],
        serde_json::json!([
            NEED_CACHE,
            format!("forge build --all --arch {arch} --cache \"$FORGE_CACHE\" --unit app")
        ])
    );
    schema_check(&[file, noop_copy]);
}

#[test]
fn ci_plan_for_a_1000_recipe_graph() {
    const N: usize = 1000;
    let dir = support::project();
    gen_::write_graph(dir.path(), N);
    support::install_test_key(dir.path());
    support::git_commit_all(dir.path(), "@1700000000 +0000");
    let t = Instant::now();
    let (doc, file) = ci_plan(dir.path(), &[]);
    eprintln!("forge ci plan, {N} recipes, all dirty: {:.2?}", t.elapsed());
    let jobs = jobs(&doc);
    assert_eq!(jobs.iter().filter(|j| j.starts_with("build:")).count(), N);
    for j in &jobs {
        assert!(doc[j]["needs"].as_array().unwrap().len() <= 50, "{j}");
    }
    assert!(forge::ci::check::check(&doc, None).is_empty());
    schema_check(&[file]);
}

#[test]
fn every_file_in_ci_is_valid_gitlab_ci() {
    let dir = support::repo_root().join("ci");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("ci/ exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml" || e == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no YAML in ci/");
    if schema_check(&files) {
        for f in &files {
            let problems = forge::ci::check::check(&yaml_as_json(f), None);
            assert!(problems.is_empty(), "{}: {problems:?}", f.display());
        }
    }
}

const NEED_CACHE: &str =
    ": \"${FORGE_CACHE:?set FORGE_CACHE (oci://HOST[:PORT]/REPOSITORY) in the CI/CD variables}\"";

/// A build job stops first, naming the variable, when FORGE_CACHE (the
/// registry the jobs' packages travel through) is not set.
#[test]
fn ci_build_job_names_a_missing_cache_variable() {
    let p = small_project();
    let (doc, _) = ci_plan(p.path(), &[]);
    let job = format!("build:{}:app", std::env::consts::ARCH);
    let script: Vec<String> = serde_json::from_value(doc[&job]["script"].clone()).unwrap();
    let out = run(Command::new("sh")
        .args(["-c", &script.join("\n")])
        .env_remove("FORGE_CACHE")
        .current_dir(p.path()));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "FORGE_CACHE: set FORGE_CACHE (oci://HOST[:PORT]/REPOSITORY) in the CI/CD variables"
        ),
        "{err}"
    );
    assert!(
        !p.path().join("out").exists(),
        "nothing ran before the check"
    );
}

/// The publish job stops first, with a message naming the variable, when
/// FORGE_REGISTRY is not set (nothing is indexed or pushed).
#[test]
fn ci_publish_job_names_a_missing_registry_variable() {
    let p = small_project();
    let (doc, _) = ci_plan(p.path(), &[]);
    let script: Vec<String> = serde_json::from_value(doc["publish"]["script"].clone()).unwrap();
    let out = run(Command::new("sh")
        .args(["-c", &script.join("\n")])
        .env_remove("FORGE_REGISTRY")
        .current_dir(p.path()));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "FORGE_REGISTRY: set FORGE_REGISTRY (HOST[:PORT]/PREFIX) in the CI/CD variables"
        ),
        "{err}"
    );
    assert!(
        !p.path().join("out").exists(),
        "nothing ran before the check"
    );
}

/// Two architectures (forge.toml `arch`): one child pipeline with a job per
/// unit per architecture, each passing `--arch`; the foreign architecture's
/// hermetic unit needs the host's build-root base, the host's image for both
/// architectures needs the foreign packages; one publish for both; valid
/// for GitLab.
#[test]
fn ci_plan_for_two_architectures_needs_across_them() {
    let host = std::env::consts::ARCH;
    let other = match host {
        "x86_64" => "aarch64",
        "aarch64" => "x86_64",
        _ => return,
    };
    let p = crate::ci_arch::two_arch_project(host, other);
    let (doc, file) = ci_plan(p.path(), &[]);
    let job = |a: &str, u: &str| format!("build:{a}:{u}");
    let mut expected = vec![
        job(host, "image:app"),
        job(host, "note"),
        job(host, "toolbox"),
        job(other, "extra"),
        job(other, "note"),
        "publish".to_string(),
    ];
    expected.sort();
    assert_eq!(jobs(&doc), expected);
    let needs = |j: &str| doc[j]["needs"].clone();
    assert_eq!(
        needs(&job(host, "note")),
        serde_json::json!([job(host, "toolbox")])
    );
    // Across architectures: the foreign unit's root is the host's toolbox.
    assert_eq!(
        needs(&job(other, "note")),
        serde_json::json!([job(host, "toolbox")])
    );
    // extra needs note of its own architecture, which brings the toolbox.
    assert_eq!(
        needs(&job(other, "extra")),
        serde_json::json!([job(other, "note")])
    );
    // The image for both architectures needs every package of both (the
    // foreign note comes through extra).
    let mut image: Vec<String> = serde_json::from_value(needs(&job(host, "image:app"))).unwrap();
    image.sort();
    let mut want = vec![job(host, "note"), job(other, "extra")];
    want.sort();
    assert_eq!(image, want);
    assert_eq!(
        needs("publish"),
        serde_json::json!([job(host, "image:app")])
    );
    assert_eq!(
        doc[job(other, "note")]["script"][1],
        format!("forge build --arch {other} --cache \"$FORGE_CACHE\" --unit note")
    );
    assert_eq!(doc[job(other, "note")]["variables"]["FORGE_ARCH"], other);
    let publish = doc["publish"]["script"].to_string();
    let (foreign_at, host_at) = (
        publish.find(&format!("--arch {other}")).unwrap(),
        publish.find(&format!("--arch {host}")).unwrap(),
    );
    assert!(
        foreign_at < host_at,
        "the host's pull comes last: {publish}"
    );
    assert_eq!(doc["publish"]["resource_group"], "forge-index");

    // The plan says the same: the foreign unit's needs across architectures.
    let (out, _) = run_ok(forge(p.path()).args(["--json", "plan", "--arch", other]));
    let plan: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(plan["arch"], other);
    let note = plan["units"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "note")
        .unwrap();
    assert_eq!(
        note["arch_deps"],
        serde_json::json!([{"arch": host, "unit": "toolbox"}])
    );

    if schema_check(std::slice::from_ref(&file)) {
        assert_eq!(
            yaml_as_json(&file),
            doc,
            "the YAML says what the document says"
        );
    }

    // `--arch` narrows the pipeline to one architecture (the host's base is
    // then not planned: the job pulls it from the cache).
    let (doc, _) = ci_plan(p.path(), &["--arch", other]);
    assert_eq!(
        jobs(&doc),
        [
            job(other, "extra"),
            job(other, "note"),
            "publish".to_string()
        ]
    );
}
