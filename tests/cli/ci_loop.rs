//! The self-rebuilding loop end to end, under gitlab-ci-local (shell
//! executor) against a real docker-registry on 127.0.0.1, on git
//! repositories made here: a tag on the recipes repository runs the plan and
//! the child pipeline's jobs for x86_64 and aarch64 (aarch64's hermetic unit
//! pulls the x86_64 build-root base), which publish signed packages of both
//! and images; a
//! second tag builds nothing; the images pipeline rebuilds and publishes the
//! images from the published repository; the manifests pipeline pins the
//! new digest in a commit on a branch pushed to the manifests remote.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::support::{self, Project, Registry, copy_tree, forge, forge_bin, repo_root, run_ok};

const PASSWORD: &str = "ci-loop-pw";

/// `git` in `dir`, its trimmed stdout (the shared helper).
use crate::support::git_stdout as git;

/// Run `jobs` of `file` in `dir` with gitlab-ci-local; returns the log.
fn gitlab_ci_local(dir: &Path, file: &str, jobs: &[&str], vars: &[(&str, String)]) -> String {
    let mut cmd = Command::new("gitlab-ci-local");
    cmd.current_dir(dir)
        .args([
            "--file",
            file,
            "--ignore-predefined-vars",
            "CI_COMMIT_TAG,CI_PIPELINE_SOURCE,CI_DEFAULT_BRANCH",
        ])
        .env_remove("http_proxy")
        .env_remove("HTTP_PROXY")
        .env("COSIGN_PASSWORD", PASSWORD);
    // Variables from this file reach child pipelines too, as project
    // CI/CD variables do on GitLab.
    let mut file_vars = String::new();
    for (k, v) in vars {
        if k.starts_with("CI_") {
            cmd.args(["--variable", &format!("{k}={v}")]);
        } else {
            // Typed, so a value that names a file stays a plain variable.
            let v = serde_json::to_string(v).unwrap();
            file_vars.push_str(&format!(
                "{k}:\n  type: variable\n  values:\n    \"*\": {v}\n"
            ));
        }
    }
    std::fs::write(dir.join(".gitlab-ci-local-variables.yml"), file_vars).unwrap();
    cmd.args(jobs);
    let out = cmd.output().expect("gitlab-ci-local");
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("$ gitlab-ci-local --file {file} {jobs:?}\n{log}");
    assert!(out.status.success(), "the pipeline failed");
    log
}

/// A committed repository holding `ci/`, the test keys and an image key.
fn with_ci(p: &Project) {
    copy_tree(&repo_root().join("ci"), &p.path().join("ci"));
    p.write(".gitignore", ".gitlab-ci-local/\n.gitlab-ci-local-variables.yml\nchild.yml\nout/\npublished.txt\nimages.env\n");
    run_ok(
        forge(p.path())
            .args(["keygen", "--image", "ci"])
            .env("COSIGN_PASSWORD", PASSWORD),
    );
    p.commit();
    add_origin(p.path());
}

fn cosign_pub(dir: &Path) -> PathBuf {
    std::fs::read_dir(dir.join("keys"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".cosign.pub"))
        .expect("an image public key")
}

fn find_file(dir: &Path, name: &str) -> Option<PathBuf> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .flatten()
        .find(|e| e.file_name() == name)
        .map(|e| e.into_path())
}

#[test]
fn ci_loop_from_tag_to_a_pinned_manifest() {
    if !support::require_tools(&["gitlab-ci-local", "node", "rsync", "git", "docker-registry"])
        || !support::require_bwrap()
        || !support::require_file(Path::new("/bin/busybox"))
    {
        return;
    }
    let started = Instant::now();
    let registry = Registry::start();
    let reg = format!("{}/forge", registry.host());
    let shared = tempfile::tempdir().unwrap();
    let forge_cmd = forge_bin().display().to_string();
    let common = |tag: &str| {
        vec![
            ("FORGE", forge_cmd.clone()),
            ("FORGE_REGISTRY", reg.clone()),
            ("FORGE_CACHE", format!("oci+http://{reg}/cache")),
            ("FORGE_PUBLISH_FLAGS", "--insecure".to_string()),
            ("FORGE_PULL_FLAGS", "--insecure".to_string()),
            (
                "FORGE_CACHE_DIR",
                shared.path().join("cache").display().to_string(),
            ),
            ("UPSTREAM_TAG", tag.to_string()),
        ]
    };

    // The recipes repository: a tag runs the plan and the child's jobs.
    let recipes = Project::examples();
    // Two architectures: a hermetic `note` for x86_64 and aarch64 on a
    // `toolbox` base made for x86_64 only (aarch64's job pulls it).
    recipes.forge_toml(
        "default-targets = [\"hello\", \"libgreet\", \"greet\", \"note\"]\n\
         arch = [\"x86_64\", \"aarch64\"]\n[build-root]\nbase = [\"toolbox\"]\n",
    );
    crate::ci_arch::toolbox_and_note(&recipes, "x86_64", "aarch64");
    with_ci(&recipes);
    git(recipes.path(), &["tag", "v1"]);
    let mut vars = common("v1");
    vars.push(("CI_COMMIT_TAG", "v1".into()));
    // Every job has its own output folder (as on runners that share
    // none): packages travel from job to job through the registry-backed
    // build cache.
    let outs = shared.path().join("out");
    vars.push(("FORGE_OUT", format!("{}/$CI_JOB_ID", outs.display())));
    let log = gitlab_ci_local(recipes.path(), "ci/recipes.gitlab-ci.yml", &[], &vars);
    for job in [
        "build:x86_64:libgreet",
        "build:x86_64:greet",
        "build:x86_64:hello",
        "build:x86_64:image:hello",
        "build:x86_64:toolbox",
        "build:x86_64:note",
        "build:aarch64:note",
        "publish",
    ] {
        assert!(
            log.contains(&format!("PASS  [build] -> {job}")),
            "{job} ran and passed"
        );
    }
    assert!(
        log.contains("Pulled libgreet"),
        "greet's job pulled libgreet"
    );
    let key = cosign_pub(recipes.path());
    let hello = format!("{reg}/hello:latest");
    run_ok(
        forge(recipes.path())
            .args(["verify-image", "--insecure", "--key"])
            .arg(&key)
            .arg(&hello),
    );
    let pulled = tempfile::tempdir().unwrap();
    run_ok(
        forge(recipes.path())
            .args(["pull-repo", "--insecure", "--out"])
            .arg(pulled.path())
            .arg(format!("{reg}/packages:latest")),
    );
    assert!(
        log.contains("Pulling 1 units of x86_64 this job needs"),
        "aarch64's note pulled the x86_64 toolbox"
    );
    for f in [
        "aarch64/note-1.0-r0.apk",
        "x86_64/note-1.0-r0.apk",
        "x86_64/hello-1.0-r0.apk",
    ] {
        assert!(pulled.path().join(f).is_file(), "{f} published");
    }

    // A second tag with no recipe change: only the no-op job, nothing rebuilt.
    git(recipes.path(), &["tag", "v2"]);
    vars.retain(|(k, _)| *k != "CI_COMMIT_TAG");
    vars.push(("CI_COMMIT_TAG", "v2".into()));
    let log = gitlab_ci_local(recipes.path(), "ci/recipes.gitlab-ci.yml", &[], &vars);
    assert!(
        log.contains("PASS  [build] -> nothing-to-build"),
        "only the no-op job"
    );
    assert!(!log.contains("[build] -> build:"), "nothing rebuilt");

    // The images repository: build the images from the published packages.
    let images = Project::new();
    images.copy_from_repo("images").forge_toml("mirrors = []\n");
    std::fs::create_dir_all(images.path().join("keys")).unwrap();
    for f in std::fs::read_dir(recipes.path().join("keys")).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, images.path().join("keys").join(f.file_name().unwrap())).unwrap();
    }
    with_ci_no_keygen(&images);
    let mut vars = common("v1");
    vars.push(("CI_PIPELINE_SOURCE", "pipeline".into()));
    vars.push(("FORGE_IMAGE_PUBLIC_KEY", key.display().to_string()));
    gitlab_ci_local(images.path(), "ci/images.gitlab-ci.yml", &["images"], &vars);
    let published = find_file(&images.path().join(".gitlab-ci-local"), "published.txt")
        .expect("published.txt artifact");
    let published = std::fs::read_to_string(published).unwrap();
    let reference = published
        .lines()
        .find(|l| l.contains("/hello@sha256:"))
        .expect("hello was published")
        .to_string();
    let digest = reference.split_once('@').unwrap().1.to_string();

    // The manifests repository: the pin lands as a branch on its remote.
    let manifests = Project::new();
    manifests.write(
        "lab/kustomization.yaml",
        &format!("resources:\n  - hello.yaml\nimages:\n  - name: hello # pinned by CI\n    newName: {reg}/hello\n    newTag: v0\n"),
    );
    manifests.write("lab/hello.yaml", "kind: Deployment\n");
    copy_tree(&repo_root().join("ci"), &manifests.path().join("ci"));
    manifests.write(
        ".gitignore",
        ".gitlab-ci-local/\n.gitlab-ci-local-variables.yml\n",
    );
    manifests.commit();
    add_origin(manifests.path());
    let remote = shared.path().join("manifests.git");
    git(
        shared.path(),
        &["init", "-q", "--bare", remote.to_str().unwrap()],
    );
    git(&remote, &["config", "receive.advertisePushOptions", "true"]);
    let mut vars = common("v1");
    vars.push(("CI_PIPELINE_SOURCE", "pipeline".into()));
    vars.push(("CI_DEFAULT_BRANCH", "main".into()));
    vars.push((
        "FORGE_PUBLISHED",
        published.split_whitespace().collect::<Vec<_>>().join(" "),
    ));
    vars.push(("FORGE_MANIFESTS_TOKEN", "not-a-real-token".into()));
    vars.push(("FORGE_MANIFESTS_PUSH_URL", remote.display().to_string()));
    gitlab_ci_local(
        manifests.path(),
        "ci/manifests.gitlab-ci.yml",
        &["pin"],
        &vars,
    );
    let pinned = git(&remote, &["show", "forge/pin-v1:lab/kustomization.yaml"]);
    assert!(
        pinned.contains(&format!("    newTag: v1\n    digest: {digest}")),
        "{pinned}"
    );
    assert!(
        pinned.contains("  - name: hello # pinned by CI\n"),
        "comments kept: {pinned}"
    );
    eprintln!("ci loop end to end: {:.1?}", started.elapsed());
}

fn with_ci_no_keygen(p: &Project) {
    copy_tree(&repo_root().join("ci"), &p.path().join("ci"));
    p.write(
        ".gitignore",
        ".gitlab-ci-local/\n.gitlab-ci-local-variables.yml\nout/\npublished.txt\nimages.env\n",
    );
    p.commit();
    add_origin(p.path());
}

/// gitlab-ci-local derives the project's path from `origin`.
fn add_origin(dir: &Path) {
    git(
        dir,
        &[
            "remote",
            "add",
            "origin",
            "https://gitlab.invalid/cluster/project.git",
        ],
    );
}
