//! Publishing against registries that hang up or die mid-push, and
//! credentials that must stay with their host.

use super::*;

#[test]
fn registry_publish_hung_up_mid_upload_tags_nothing_and_a_rerun_completes() {
    if !require_tool("docker-registry") {
        return;
    }
    let p = repo_project();
    let stub = Stub::start(|req, _| match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/v2/") => ok(b"{}"),
        ("POST", _) => Reply::Status(
            202,
            "Location: /v2/forge/packages/blobs/uploads/u1\r\n".into(),
            Vec::new(),
        ),
        ("PUT", path) if path.contains("/blobs/uploads/") => Reply::Hangup(100),
        _ => Reply::Status(404, String::new(), Vec::new()),
    });
    let publish = |host: &str| {
        run(forge(p.path()).args([
            "publish",
            "--insecure",
            "--no-sign",
            "--repo-only",
            "--registry",
            &format!("{host}/forge"),
        ]))
    };
    let o = publish(&stub.host);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("gave up after"), "{err}");
    let log = stub.log();
    assert!(
        log.iter()
            .any(|l| l.starts_with("PUT /v2/forge/packages/blobs/uploads/"))
    );
    assert!(
        !log.iter()
            .any(|l| l.starts_with("PUT /v2/forge/packages/manifests/")),
        "a manifest or tag was written after a failed upload: {log:#?}"
    );
    let reg = Registry::start();
    assert!(publish(&reg.host()).status.success());
    let o = pull(
        p.path(),
        &format!("{}/forge/packages:latest", reg.host()),
        &p.path().join("pulled"),
    );
    assert!(o.status.success());
}

#[test]
fn registry_credentials_stay_with_their_host() {
    let stub = Stub::start(|_, _| {
        Reply::Status(
            401,
            "WWW-Authenticate: Basic realm=\"b\"\r\n".into(),
            Vec::new(),
        )
    });
    let p = repo_project();
    let key = repo_root().join("tests/fixtures/cosign/kat.pub");
    let attempt = |args: &[&str], scope: (&str, &str)| {
        let o = run(forge(p.path())
            .args(args)
            .env("FORGE_REGISTRY_USER", "alice")
            .env("FORGE_REGISTRY_PASSWORD", "Pa55-for-registry-a")
            .env_remove("FORGE_REGISTRY")
            .env_remove("FORGE_REGISTRY_HOST")
            .env(scope.0, scope.1)
            .env("DOCKER_CONFIG", p.path().join(".no-docker-config")));
        assert!(!o.status.success());
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    let verify = |target: &str, scope| {
        let image = format!("{target}/forge/hello:latest");
        let args = [
            "verify-image",
            "--insecure",
            &image,
            "--key",
            key.to_str().unwrap(),
        ];
        attempt(&args, scope)
    };
    let pull = |target: &str, scope| {
        let r = format!("{target}/forge/packages:latest");
        attempt(&["pull-repo", "--insecure", &r, "--out", "x"], scope)
    };
    // Given for registry A: B never sees them.
    for scope in [
        ("FORGE_REGISTRY", "127.0.0.1:1/forge"),
        ("FORGE_REGISTRY_HOST", "127.0.0.1:1"),
    ] {
        let err = verify(&stub.host, scope);
        assert!(err.contains("no credentials"), "{err}");
        pull(&stub.host, scope);
    }
    let log = stub.log();
    assert!(log.len() >= 4, "{log:#?}");
    assert!(
        log.iter().all(|l| l.ends_with(" | ")),
        "credentials for another registry were sent: {log:#?}"
    );
    // Given for B: sent to B.
    let err = verify(&stub.host, ("FORGE_REGISTRY_HOST", stub.host.as_str()));
    assert!(
        err.contains("credentials of user `alice` were rejected"),
        "{err}"
    );
    let log = stub.log();
    assert!(log.iter().any(|l| l.contains("| Basic ")), "{log:#?}");
}

#[test]
fn registry_killed_mid_publish_fails_cleanly_and_a_rerun_completes() {
    if !require_tool("docker-registry") {
        return;
    }
    let mut reg = Registry::start();
    let p = project();
    let digest = crate::registry::synthetic_image(p.path(), "big", &[24 << 20; 4], 31);
    let target = format!("{}/forge", reg.host());
    let publish = || {
        let mut c = forge(p.path());
        c.args([
            "publish",
            "--insecure",
            "--no-sign",
            "--uploads",
            "1",
            "big",
            "--registry",
            &target,
        ]);
        c
    };
    let child = publish()
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Kill the registry (for good) once the first upload is under way.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !walkdir::WalkDir::new(reg.storage())
        .into_iter()
        .filter_map(Result::ok)
        .any(|e| e.file_type().is_file() && e.path().to_string_lossy().contains("_uploads"))
    {
        assert!(std::time::Instant::now() < deadline, "no upload seen");
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    reg.kill();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "publish succeeded with no registry");
    assert!(err.contains("gave up after"), "{err}");
    // Nothing tagged: the storage holds no tag link for the image.
    let tags = reg
        .storage()
        .join("docker/registry/v2/repositories/forge/big/_manifests/tags");
    assert!(!tags.exists(), "a tag was written by the failed publish");
    reg.restart();
    run_ok(&mut publish());
    assert!(
        tags.join("latest").is_dir(),
        "the tag check looks in the wrong place"
    );
    let c = registry_client(&reg.host());
    let scopes = vec!["repository:forge/big:pull".to_string()];
    assert_eq!(
        c.manifest_digest("forge/big", "latest", &scopes).unwrap(),
        Some(digest)
    );
}
