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
    expected.push(format!("publish:{arch}"));
    assert_eq!(jobs(&doc), expected);
    assert_eq!(
        doc[format!("build:{arch}:greet")]["needs"],
        serde_json::json!([format!("build:{arch}:libgreet")])
    );
    assert_eq!(
        doc[format!("build:{arch}:greet")]["script"],
        serde_json::json!([
            NEED_CACHE,
            "forge build --cache \"$FORGE_CACHE\" --unit greet"
        ])
    );
    assert_eq!(
        doc[format!("publish:{arch}")]["resource_group"],
        format!("forge-index-{arch}")
    );
    assert_eq!(
        doc[format!("publish:{arch}")]["needs"],
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
    assert_eq!(
        jobs(&doc),
        [job("app"), job("lib"), format!("publish:{arch}")]
    );
    assert_eq!(doc[job("app")]["needs"], serde_json::json!([job("lib")]));
    assert_eq!(
        doc[job("app")]["script"],
        serde_json::json!([
            NEED_CACHE,
            "forge build --all --cache \"$FORGE_CACHE\" --unit app"
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
    let publish = format!("publish:{}", std::env::consts::ARCH);
    let script: Vec<String> = serde_json::from_value(doc[&publish]["script"].clone()).unwrap();
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
