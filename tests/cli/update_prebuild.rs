//! `forge update --prebuild` against a real `docker-registry` on loopback:
//! the update is built (package and image) and published under
//! `VERSION-prebuild`, signed, before its branch appears; `latest` stays
//! where `forge publish` put it. A failing build leaves no branch.

use std::path::Path;
use std::process::Command;

use sha2::{Digest as _, Sha256};

use crate::support::http::{Reply, Server};
use crate::support::*;

/// The digest a tag points at, by skopeo (`None`: no such tag).
fn tag_digest(host: &str, repo_tag: &str) -> Option<String> {
    let raw = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--raw"])
        .arg(format!("docker://{host}/{repo_tag}"))
        .output()
        .unwrap();
    raw.status
        .success()
        .then(|| format!("sha256:{}", hex::encode(Sha256::digest(&raw.stdout))))
}

fn branches(root: &Path) -> String {
    let out = Command::new("git")
        .args(["branch", "--list"])
        .current_dir(root)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The examples, with `hello` given a release feed and a url source that
/// follows its version (a notes file, not extracted).
fn examples_with_feed(server: &Server, script_extra: &str) -> Project {
    let p = Project::examples();
    let file = p.path().join("recipes/hello/recipe.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    let notes_old = b"hello notes 1.0\n";
    server.route(
        "/hello.rss",
        Reply::Full(
            b"<rss><channel><item><title>1.1</title></item><item><title>1.0</title></item></channel></rss>"
                .to_vec(),
        ),
    );
    server.route(
        "/dl/hello-notes-1.1.txt",
        Reply::Full(b"hello notes 1.1\n".to_vec()),
    );
    let source = format!(
        "[[source]]\nurl = \"{}\"\nsha256 = \"{}\"\n\n[build]",
        server.url("/dl/hello-notes-${version}.txt"),
        hex::encode(Sha256::digest(notes_old))
    );
    let mut text = text.replacen("[build]", &source, 1);
    if !script_extra.is_empty() {
        text = text.replacen(
            "script = '''\n",
            &format!("script = '''\n{script_extra}\n"),
            1,
        );
    }
    text.push_str(&format!(
        "\n[update]\nfeed = \"{}\"\n",
        server.url("/hello.rss")
    ));
    std::fs::write(&file, text).unwrap();
    // The current version's notes are in the cache, so `forge build` works.
    let cache = p.path().join(".forge-cache/distfiles/sha256");
    std::fs::create_dir_all(&cache).unwrap();
    std::fs::write(
        cache.join(hex::encode(Sha256::digest(notes_old))),
        notes_old,
    )
    .unwrap();
    p.commit();
    p
}

fn prebuild(root: &Path, server: &Server, target: &str) -> Command {
    let mut cmd = forge_signing(root);
    cmd.args([
        "--json",
        "update",
        "--prebuild",
        "--insecure",
        "--registry",
        target,
    ])
    .args(["--host-interval", "0"])
    .env_remove("http_proxy")
    .env_remove("HTTP_PROXY");
    let _ = server;
    cmd
}

#[test]
fn prebuild_publishes_signed_under_the_prebuild_tag_and_leaves_latest() {
    if !require_tool("docker-registry") || !require_tool("skopeo") || !require_bwrap() {
        return;
    }
    let server = Server::start::<String>(vec![]);
    let p = examples_with_feed(&server, "");
    let root = p.path();
    let reg = Registry::start();
    let host = reg.host();
    let target = format!("{host}/forge");
    run_ok(forge(root).arg("build"));
    run_ok(forge_signing(root).args(["publish", "--insecure", "--registry", &target]));
    let latest = tag_digest(&host, "forge/hello:latest").expect("latest published");

    let (stdout, _) = run_ok(&mut prebuild(root, &server, &target));
    assert!(stdout.contains("\"proposed\""), "{stdout}");
    assert_eq!(branches(root), "* main\n  update/hello-1.1");

    let pre = tag_digest(&host, "forge/hello:1.1-prebuild").expect("prebuild tag");
    assert_ne!(pre, latest);
    assert_eq!(
        tag_digest(&host, "forge/hello:latest").as_deref(),
        Some(latest.as_str())
    );
    assert!(tag_digest(&host, "forge/packages:hello-1.1-prebuild").is_some());
    assert!(tag_digest(&host, "forge/packages:latest").is_none());
    // Signed with the image key: verify-image accepts it.
    run_ok(
        forge(root)
            .args([
                "verify-image",
                "--insecure",
                &format!("{target}/hello:1.1-prebuild"),
            ])
            .arg("--key")
            .arg(cosign_fixture("kat.pub")),
    );
    // The prebuilt package carries the new version.
    let built = root
        .join("out/prebuild/out/repo")
        .join(std::env::consts::ARCH);
    assert!(built.join("hello-1.1-r0.apk").is_file());
    // The project's own output is untouched by the prebuild.
    let own = root.join("out/repo").join(std::env::consts::ARCH);
    assert!(!own.join("hello-1.1-r0.apk").exists());
}

#[test]
fn a_failing_prebuild_leaves_no_branch_and_publishes_nothing() {
    if !require_tool("docker-registry") || !require_tool("skopeo") || !require_bwrap() {
        return;
    }
    let server = Server::start::<String>(vec![]);
    // Fails only for the new version (the notes file of 1.0 has no "1.1").
    let p = examples_with_feed(
        &server,
        "if grep -qs 1.1 \"$srcdir/hello-notes-1.1.txt\"; then echo refused; exit 1; fi",
    );
    let root = p.path();
    let reg = Registry::start();
    let target = format!("{}/forge", reg.host());
    let out = run(&mut prebuild(root, &server, &target));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("recipe `hello`") && stderr.contains("prebuild"),
        "{stderr}"
    );
    assert_eq!(branches(root), "* main");
    assert!(tag_digest(&reg.host(), "forge/hello:1.1-prebuild").is_none());
}
