//! `forge pin`: digests land in kustomize `images:` entries as one commit on
//! a new branch, formatting kept; pinning again is a no-op; a published
//! image no entry names is an error.

use crate::support::{self, forge, run_err, run_ok};

const KUSTOMIZATION: &str = "\
# Overlay for the lab cluster.
resources:
  - deployment.yaml
images:
  - name: hello # the greeter
    newName: reg.lan:5000/forge/hello
    newTag: \"v1\"    # set by forge pin
    digest: sha256:0000000000000000000000000000000000000000000000000000000000000000
";

/// `git` in `dir`, its trimmed stdout (the shared helper).
use crate::support::git_stdout as git;

fn manifests() -> tempfile::TempDir {
    let dir = support::project();
    support::write(dir.path(), "overlays/lab/kustomization.yaml", KUSTOMIZATION);
    support::write(
        dir.path(),
        "overlays/lab/deployment.yaml",
        "kind: Deployment\n",
    );
    support::git_commit_all(dir.path(), "@1700000000 +0000");
    dir
}

#[test]
fn pin_commits_the_digest_on_a_branch_and_keeps_formatting() {
    let dir = manifests();
    let root = dir.path();
    let head = git(root, &["rev-parse", "HEAD"]);
    let digest = format!("sha256:{}", "ab".repeat(32));
    let reference = format!("reg.lan:5000/forge/hello@{digest}");
    let pin = || {
        let mut cmd = forge(root);
        cmd.args(["pin", "--tag", "v2", &reference]);
        cmd
    };
    run_ok(&mut pin());
    let file = git(
        root,
        &["show", "forge/pin-v2:overlays/lab/kustomization.yaml"],
    );
    let expected = KUSTOMIZATION
        .replace("\"v1\"", "\"v2\"")
        .replace(&format!("sha256:{}", "0".repeat(64)), &digest);
    assert_eq!(
        format!("{file}\n"),
        expected,
        "only the tag and digest changed"
    );
    assert_eq!(
        git(root, &["rev-parse", "forge/pin-v2~1"]),
        head,
        "one commit on HEAD"
    );
    assert_eq!(
        git(root, &["rev-parse", "HEAD"]),
        head,
        "the current branch did not move"
    );
    assert_eq!(
        git(root, &["status", "--porcelain"]),
        "",
        "the work tree is untouched"
    );

    // A re-run (a killed job retried) finds its branch already made.
    run_ok(&mut pin());
    // Once merged, pinning the same digest commits nothing.
    git(root, &["merge", "-q", "--ff-only", "forge/pin-v2"]);
    let (_, err) =
        run_ok(forge(root).args(["pin", "--tag", "v2", "--branch", "again", &reference]));
    assert!(err.contains("nothing to commit"), "{err}");
    assert!(
        git(root, &["branch", "--list", "again"]).is_empty(),
        "no branch for a no-op"
    );
}

#[test]
fn pin_errors_name_the_image_and_the_files() {
    let dir = manifests();
    // Only committed kustomizations are read (not, e.g., CI build copies).
    support::write(
        dir.path(),
        ".gitlab-ci-local/builds/lab/kustomization.yaml",
        KUSTOMIZATION,
    );
    let digest = format!("sha256:{}", "ab".repeat(32));
    let err = run_err(forge(dir.path()).args([
        "pin",
        "--tag",
        "v2",
        &format!("reg.lan:5000/forge/other@{digest}"),
    ]));
    assert!(
        err.contains("no kustomize `images:` entry has newName or name `reg.lan:5000/forge/other` (read: overlays/lab/kustomization.yaml)"),
        "{err}"
    );
    let err =
        run_err(forge(dir.path()).args(["pin", "--tag", "v2", "reg.lan:5000/forge/hello:latest"]));
    assert!(err.contains("is not an image reference"), "{err}");
    assert!(git(dir.path(), &["branch", "--list", "forge/*"]).is_empty());
}
