//! The scheduled update pipeline (`ci/update.gitlab-ci.yml`): valid against
//! GitLab's schema (check-jsonschema's vendored copy), and run for real under
//! gitlab-ci-local with the shell executor: it pushes the update branch to a
//! remote and leaves the checkout (manifests included) untouched.

use std::path::Path;
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::support::http::{Reply, Server};
use crate::support::{
    Project, copy_tree, forge_bin, git_stdout, repo_root, require_tool, require_tools,
};

const PIPELINE: &str = "ci/update.gitlab-ci.yml";

fn check_jsonschema(file: &Path) -> std::process::Output {
    crate::support::check_gitlab_ci(&[file])
}

#[test]
fn update_pipeline_validates_against_gitlab_schema() {
    if !require_tool("check-jsonschema") {
        return;
    }
    let out = check_jsonschema(&repo_root().join(PIPELINE));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("ok -- validation done"), "{text}");
    // The validator does reject a broken file (a misspelt key).
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yml");
    let yml = std::fs::read_to_string(repo_root().join(PIPELINE)).unwrap();
    std::fs::write(&bad, yml.replace("  script:", "  scirpt:")).unwrap();
    assert!(!check_jsonschema(&bad).status.success());
}

#[test]
fn update_pipeline_runs_under_gitlab_ci_local_and_pushes_the_branch() {
    if !require_tools(&["gitlab-ci-local", "node", "rsync", "git"]) {
        return;
    }
    let server = Server::start::<String>(vec![]);
    server.route(
        "/w.rss",
        Reply::Full(b"<rss><channel><item><title>2.0</title></item></channel></rss>".to_vec()),
    );
    server.route("/dl/w-2.0.tar.gz", Reply::Full(b"w 2.0\n".to_vec()));
    let p = Project::new();
    let root = p.path();
    p.write(
        "recipes/w/recipe.toml",
        &format!(
            "schema = 1\n\n[package]\nname = \"w\"\nversion = \"1.0\"\ndescription = \"W\"\nlicense = \"MIT\"\n\n[[source]]\nurl = \"{}\"\nsha256 = \"{}\"\nextract = false\n\n[build]\nscript = \"true\"\n\n[update]\nfeed = \"{}\"\n",
            server.url("/dl/w-${version}.tar.gz"),
            hex::encode(Sha256::digest(b"w 1.0\n")),
            server.url("/w.rss")
        ),
    );
    p.write("manifests/w.yaml", "image: registry.lan/forge/w:1.0\n");
    p.write(
        ".gitignore",
        ".forge-cache/\n.gitlab-ci-local/\nupdate.jsonl\nremote.git/\n",
    );
    copy_tree(&repo_root().join("ci"), &root.join("ci"));
    p.commit();
    let remote = root.join("remote.git");
    git_stdout(root, &["init", "-q", "--bare", remote.to_str().unwrap()]);
    git_stdout(root, &["remote", "add", "origin", remote.to_str().unwrap()]);
    let head = git_stdout(root, &["rev-parse", "HEAD"]);

    let var = |k: &str, v: &str| format!("{k}={v}");
    let out = Command::new("gitlab-ci-local")
        .current_dir(root)
        .args([
            "--file",
            PIPELINE,
            "--ignore-predefined-vars",
            "CI_PIPELINE_SOURCE",
        ])
        .args(["--variable", "CI_PIPELINE_SOURCE=schedule"])
        .args([
            "--variable",
            &var("FORGE_BIN", forge_bin().to_str().unwrap()),
        ])
        .args([
            "--variable",
            &var("FORGE_PUSH_URL", remote.to_str().unwrap()),
        ])
        .args(["--variable", "FORGE_UPDATE_ARGS=--host-interval 0"])
        .env_remove("http_proxy")
        .env_remove("HTTP_PROXY")
        .output()
        .unwrap();
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{log}");
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("PASS") && log.contains("forge-update"),
        "{log}"
    );
    // The branch reached the remote, with its one commit on top of HEAD.
    let pushed = git_stdout(&remote, &["rev-parse", "update/w-2.0^"]);
    assert_eq!(pushed, head);
    // The checkout is as it was: HEAD, manifests, recipes.
    assert_eq!(git_stdout(root, &["rev-parse", "HEAD"]), head);
    assert_eq!(git_stdout(root, &["status", "--porcelain"]), "");
    assert_eq!(
        std::fs::read_to_string(root.join("manifests/w.yaml")).unwrap(),
        "image: registry.lan/forge/w:1.0\n"
    );
}
