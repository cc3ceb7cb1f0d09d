//! Faults and attacks at the registry boundary: `forge pull-repo` against
//! hostile artifacts (pushed to a real `docker-registry`), registries that
//! fail, throttle or cut replies short (a loopback stand-in), a
//! registry dying mid-push, and credentials that must stay with their host.
//! The stand-in is `tests/support/http.rs`.
//!
//! Every failing pull must leave `--out` exactly as it was: each test
//! pre-populates it with a good repository and compares it afterwards.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use forge::apk::{self, PackageSpec, WriteOptions};
use forge::oci::{Descriptor, Digest};
use forge::registry::artifact::{ARTIFACT_TYPE, MEDIA_APK, MEDIA_APK_INDEX, MEDIA_EMPTY};
use forge::sign::SigningKey;
use serde_json::{Value, json};

use crate::support::http::{Reply, Request, Stub, ok};
use crate::support::*;

const ARCH: &str = "x86_64";

/// A small signed package `name-1.0-r0` written into `dest`.
fn package(project: &Path, name: &str, dest: &Path) -> PathBuf {
    let root = project.join("stage").join(name);
    std::fs::create_dir_all(root.join("usr/share")).unwrap();
    std::fs::write(root.join("usr/share").join(name), format!("{name}\n")).unwrap();
    let spec = PackageSpec {
        name: name.into(),
        version: "1.0-r0".into(),
        description: format!("{name} test package"),
        url: "https://example.org/forge-test".into(),
        license: "MIT".into(),
        arch: ARCH.into(),
        origin: name.into(),
        commit: None,
        builddate: 1_700_000_000,
        packager: "forge".into(),
        depends: Vec::new(),
        provides: Vec::new(),
        root,
    };
    let key = SigningKey::load(&project.join("keys/forge-test-6b013985.rsa")).unwrap();
    let opts = WriteOptions {
        auto_deps: false,
        sha1_signature: false,
    };
    apk::write_package(&spec, &key, &opts, dest).unwrap().path
}

/// A project with the test key, `out/repo/x86_64/{a,b}-1.0-r0.apk` and
/// their signed index, and a signed package `c` that no index names (in
/// `stray/`).
fn repo_project() -> tempfile::TempDir {
    let p = project();
    install_test_key(p.path());
    let arch_dir = p.path().join("out/repo").join(ARCH);
    package(p.path(), "a", &arch_dir);
    package(p.path(), "b", &arch_dir);
    package(p.path(), "c", &p.path().join("stray"));
    run_ok(forge(p.path()).arg("index"));
    p
}

fn repo_file(p: &Path, name: &str) -> Vec<u8> {
    std::fs::read(p.join("out/repo").join(ARCH).join(name)).unwrap()
}

/// Every file and folder under `dir` with its bytes (folders: empty).
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .map(Result::unwrap)
        .map(|e| {
            let bytes = e
                .file_type()
                .is_file()
                .then(|| std::fs::read(e.path()).unwrap());
            (e.path().strip_prefix(dir).unwrap().to_path_buf(), bytes)
        })
        .collect()
}

/// One layer of a hand-made artifact; `size` overrides the descriptor's.
struct Layer {
    title: String,
    media: &'static str,
    bytes: Vec<u8>,
    size: Option<u64>,
}

fn layer(title: &str, media: &'static str, bytes: Vec<u8>) -> Layer {
    Layer {
        title: title.to_string(),
        media,
        bytes,
        size: None,
    }
}

/// Push `layers` as a repository artifact `repo:tag`, exactly as given.
fn put_artifact(host: &str, repo: &str, tag: &str, layers: &[Layer]) {
    let c = registry_client(host);
    let scopes = vec![format!("repository:{repo}:pull,push")];
    let upload = |bytes: &[u8]| {
        let d = Digest::of(bytes);
        if !c.blob_exists(repo, &d, &scopes).unwrap() {
            let s = c.start_upload(repo, &scopes).unwrap();
            let b = bytes.to_vec();
            c.put_blob(&s, &d, b.len() as u64, &|| Ok(b.clone().into()), &scopes)
                .unwrap();
        }
        d
    };
    let config = Descriptor::for_bytes(MEDIA_EMPTY, b"{}");
    upload(b"{}");
    let layers: Vec<Value> = layers
        .iter()
        .map(|l| {
            let d = upload(&l.bytes);
            json!({
                "mediaType": l.media,
                "digest": d.as_str(),
                "size": l.size.unwrap_or(l.bytes.len() as u64),
                "annotations": {"org.opencontainers.image.title": l.title},
            })
        })
        .collect();
    let m = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": ARTIFACT_TYPE,
        "config": {"mediaType": config.media_type, "digest": config.digest.as_str(), "size": 2},
        "layers": layers,
    });
    c.put_manifest(
        repo,
        tag,
        "application/vnd.oci.image.manifest.v1+json",
        &serde_json::to_vec(&m).unwrap(),
        &scopes,
    )
    .unwrap();
}

fn pull(p: &Path, reference: &str, out: &Path) -> std::process::Output {
    run(forge(p)
        .args(["pull-repo", "--insecure", reference, "--out"])
        .arg(out)
        .env_remove("FORGE_REGISTRY_USER")
        .env_remove("FORGE_REGISTRY_PASSWORD"))
}

/// The good artifact pushed with `forge publish --repo-only`, pulled once
/// into `p/pulled`; returns the registry.
fn published(p: &Path) -> Registry {
    let reg = Registry::start();
    run_ok(forge(p).args([
        "publish",
        "--insecure",
        "--no-sign",
        "--repo-only",
        "--registry",
        &format!("{}/forge", reg.host()),
    ]));
    let o = pull(
        p,
        &format!("{}/forge/packages:latest", reg.host()),
        &p.join("pulled"),
    );
    assert!(o.status.success());
    for name in ["APKINDEX.tar.gz", "a-1.0-r0.apk", "b-1.0-r0.apk"] {
        assert_eq!(
            std::fs::read(p.join("pulled").join(ARCH).join(name)).unwrap(),
            repo_file(p, name),
            "{name}"
        );
    }
    reg
}

#[test]
fn registry_pull_repo_refuses_hostile_artifacts_and_leaves_out_unchanged() {
    if !require_tool("docker-registry") {
        return;
    }
    let p = repo_project();
    let reg = published(p.path());
    let host = reg.host();
    let index = repo_file(p.path(), "APKINDEX.tar.gz");
    let (a, b) = (
        repo_file(p.path(), "a-1.0-r0.apk"),
        repo_file(p.path(), "b-1.0-r0.apk"),
    );
    let c = std::fs::read(p.path().join("stray/c-1.0-r0.apk")).unwrap();
    let x = |n: &str| format!("{ARCH}/{n}");
    let good = || {
        vec![
            layer(&x("APKINDEX.tar.gz"), MEDIA_APK_INDEX, index.clone()),
            layer(&x("a-1.0-r0.apk"), MEDIA_APK, a.clone()),
            layer(&x("b-1.0-r0.apk"), MEDIA_APK, b.clone()),
        ]
    };
    let mut tampered = a.clone();
    let mid = tampered.len() / 2;
    tampered[mid] ^= 0x40;
    let key_pem = std::fs::read(p.path().join("keys/forge-test-6b013985.rsa.pub")).unwrap();
    let cases: Vec<(&str, Vec<Layer>, &str)> = vec![
        (
            "no-index",
            vec![layer(&x("a-1.0-r0.apk"), MEDIA_APK, a.clone())],
            "no APKINDEX.tar.gz",
        ),
        ("empty", vec![], "no files"),
        (
            "unindexed",
            {
                let mut l = good();
                l.push(layer(&x("c-1.0-r0.apk"), MEDIA_APK, c.clone()));
                l
            },
            "c-1.0-r0.apk is not named by",
        ),
        (
            "missing-entry",
            good()
                .into_iter()
                .filter(|l| !l.title.contains("b-1.0"))
                .collect(),
            "b-1.0-r0.apk",
        ),
        (
            "planted-key",
            {
                let mut l = good();
                l.push(layer("keys/evil.rsa.pub", MEDIA_APK, key_pem.clone()));
                l
            },
            "refusing layer `keys/evil.rsa.pub`",
        ),
        (
            "longer-than-descriptor",
            {
                let mut l = good();
                l[1].size = Some(a.len() as u64 - 1);
                l
            },
            "expected",
        ),
        (
            "shorter-than-descriptor",
            {
                let mut l = good();
                l[1].size = Some(a.len() as u64 + 1);
                l
            },
            "expected",
        ),
        (
            "tampered",
            {
                let mut l = good();
                l[1].bytes = tampered.clone();
                l
            },
            "a-1.0-r0.apk",
        ),
    ];
    let out = p.path().join("pulled");
    let keys = p.path().join("keys");
    let (before, keys_before) = (snapshot(&out), snapshot(&keys));
    for (tag, layers, want) in cases {
        put_artifact(&host, "forge/packages", tag, &layers);
        let reference = format!("{host}/forge/packages:{tag}");
        for dest in [out.clone(), p.path().to_path_buf()] {
            let o = pull(p.path(), &reference, &dest);
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(!o.status.success(), "{tag}: pull into {dest:?} succeeded");
            assert!(err.contains(want), "{tag}: {err}");
            assert_eq!(snapshot(&out), before, "{tag}: --out changed");
            assert_eq!(snapshot(&keys), keys_before, "{tag}: keys/ changed");
            assert!(
                !p.path().join(ARCH).exists(),
                "{tag}: files written into the project"
            );
        }
    }
    let leftovers: Vec<_> = std::fs::read_dir(p.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().starts_with(".forge-pull-"))
        .collect();
    assert!(leftovers.is_empty(), "staging left behind: {leftovers:?}");
}

/// The artifact `forge/packages:latest` of `reg`: manifest bytes and blobs.
fn mirror(reg: &Registry) -> (Vec<u8>, BTreeMap<String, Vec<u8>>) {
    let c = registry_client(&reg.host());
    let scopes = vec!["repository:forge/packages:pull".to_string()];
    let (_, m) = c
        .get_manifest("forge/packages", "latest", &scopes)
        .unwrap()
        .unwrap();
    let v: Value = serde_json::from_slice(&m).unwrap();
    let mut blobs = BTreeMap::new();
    for l in v["layers"].as_array().unwrap() {
        let d = Digest::parse(l["digest"].as_str().unwrap()).unwrap();
        blobs.insert(
            d.to_string(),
            c.get_blob("forge/packages", &d, &scopes).unwrap(),
        );
    }
    (m, blobs)
}

/// A stand-in serving the mirrored artifact, with `fault` deciding first.
fn serving(
    manifest: Vec<u8>,
    blobs: BTreeMap<String, Vec<u8>>,
    fault: impl Fn(&Request, usize, &[u8]) -> Option<Reply> + Send + Sync + 'static,
) -> Stub {
    Stub::start(move |req, nth| {
        let body = if req.path == "/v2/" {
            b"{}".to_vec()
        } else if req.path.ends_with("/manifests/latest") {
            manifest.clone()
        } else if let Some(b) = req
            .path
            .rsplit_once("/blobs/")
            .and_then(|(_, d)| blobs.get(d))
        {
            b.clone()
        } else {
            return Reply::Status(404, String::new(), Vec::new());
        };
        if let Some(r) = fault(req, nth, &body) {
            return r;
        }
        if req.path.contains("/manifests/") {
            let ct = "Content-Type: application/vnd.oci.image.manifest.v1+json\r\n";
            return Reply::Status(200, ct.into(), body);
        }
        ok(&body)
    })
}

fn is_blob(req: &Request) -> bool {
    req.method == "GET" && req.path.contains("/blobs/sha256:")
}

#[test]
fn registry_pull_retries_throttling_and_server_errors() {
    if !require_tool("docker-registry") {
        return;
    }
    let p = repo_project();
    let reg = published(p.path());
    let (m, blobs) = mirror(&reg);
    let stub = serving(m, blobs, |req, nth, _| {
        if req.path.ends_with("/manifests/latest") && nth == 0 {
            return Some(Reply::Status(429, "Retry-After: 1\r\n".into(), Vec::new()));
        }
        (is_blob(req) && nth < 2).then(|| Reply::Status(503, String::new(), Vec::new()))
    });
    let out = p.path().join("again");
    let o = pull(
        p.path(),
        &format!("{}/forge/packages:latest", stub.host),
        &out,
    );
    assert!(o.status.success());
    assert_eq!(snapshot(&out), snapshot(&p.path().join("pulled")));
    let log = stub.log();
    let blob_gets = log
        .iter()
        .filter(|l| l.starts_with("GET /v2/forge/packages/blobs/"))
        .count();
    assert_eq!(blob_gets, 3 * 3, "{log:#?}");
}

#[test]
fn registry_pull_fails_cleanly_on_bad_replies() {
    if !require_tool("docker-registry") {
        return;
    }
    let p = repo_project();
    let reg = published(p.path());
    let (m, blobs) = mirror(&reg);
    type Fault = Box<dyn Fn(&Request, usize, &[u8]) -> Option<Reply> + Send + Sync>;
    let cases: Vec<(&str, Fault, &str)> = vec![
        (
            "truncated blob",
            Box::new(|r, _, b| is_blob(r).then(|| Reply::Truncated(b.to_vec(), b.len() / 2))),
            "reading the reply",
        ),
        (
            "truncated manifest",
            Box::new(|r, _, b| {
                r.path
                    .contains("/manifests/")
                    .then(|| Reply::Truncated(b.to_vec(), b.len() / 2))
            }),
            "reading the reply",
        ),
        (
            "blob longer than its descriptor",
            Box::new(|r, _, b| {
                is_blob(r).then(|| Reply::Chunked([b, b"trailing".as_slice()].concat()))
            }),
            "more than",
        ),
        (
            "huge manifest",
            Box::new(|r, _, _| {
                r.path
                    .contains("/manifests/")
                    .then(|| Reply::Chunked(vec![b' '; (4 << 20) + 10]))
            }),
            "larger than the 4194304 bytes",
        ),
        (
            "server error",
            Box::new(|r, _, _| is_blob(r).then(|| Reply::Status(500, String::new(), Vec::new()))),
            "gave up after 8 attempts",
        ),
    ];
    let out = p.path().join("pulled");
    let before = snapshot(&out);
    for (name, fault, want) in cases {
        let stub = serving(m.clone(), blobs.clone(), fault);
        let o = pull(
            p.path(),
            &format!("{}/forge/packages:latest", stub.host),
            &out,
        );
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{name}: pull succeeded");
        assert!(err.contains(want), "{name}: {err}");
        assert_eq!(snapshot(&out), before, "{name}: --out changed");
    }
}

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

/// The `.forge-pull-*` folders directly in `dir`.
fn staging_folders(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(".forge-pull-")
        })
        .collect();
    found.sort();
    found
}

/// Pulls started in their own process groups, killed when dropped (so a
/// failing assertion leaves no pull behind).
struct Pulls(Vec<std::process::Child>);

impl Drop for Pulls {
    fn drop(&mut self) {
        for c in &mut self.0 {
            crash::kill_group(c);
        }
    }
}

/// A pull killed mid-download leaves its staging folder; the next pull
/// removes it, but never the folder of a pull still running, nor a folder
/// of the same prefix without forge's lock, nor a symlink.
#[test]
fn registry_pull_removes_stale_staging_of_killed_pulls_only() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    if !require_tool("docker-registry") {
        return;
    }
    let p = repo_project();
    let reg = published(p.path());
    let (m, blobs) = mirror(&reg);
    // Every blob download stalls until `hold` is cleared.
    let hold = Arc::new(AtomicBool::new(true));
    let h = hold.clone();
    let stub = serving(m, blobs, move |req, _, _| {
        while is_blob(req) && h.load(Ordering::SeqCst) {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        None
    });
    let stalled = format!("{}/forge/packages:latest", stub.host);
    let decoy = p.path().join(".forge-pull-notours");
    std::fs::create_dir_all(&decoy).unwrap();
    std::fs::write(decoy.join("file"), "kept").unwrap();
    let target = p.path().join("elsewhere");
    std::fs::create_dir_all(&target).unwrap();
    std::fs::write(target.join(".lock"), "").unwrap();
    std::os::unix::fs::symlink(&target, p.path().join(".forge-pull-link")).unwrap();
    let decoys = staging_folders(p.path());

    // Two pulls stall mid-download, each with its staging folder.
    let mut pulls = Pulls(Vec::new());
    let mut staged = Vec::new();
    for (n, out) in ["out-a", "out-b"].into_iter().enumerate() {
        let before = staging_folders(p.path());
        pulls.0.push(crash::spawn_group(
            forge(p.path())
                .args(["pull-repo", "--insecure", &stalled, "--out"])
                .arg(p.path().join(out)),
        ));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let blob_gets = stub.log().iter().filter(|l| l.contains("/blobs/")).count();
            if blob_gets > n {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{out}: no download");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let new: Vec<_> = staging_folders(p.path())
            .into_iter()
            .filter(|d| !before.contains(d))
            .collect();
        assert_eq!(new.len(), 1, "{out}: {new:?}");
        staged.push(new[0].clone());
    }
    // Killed: b's folder is stale; a is still running.
    assert!(crash::kill_group(&mut pulls.0[1]));
    let good = format!("{}/forge/packages:latest", reg.host());
    let o = pull(p.path(), &good, &p.path().join("out-c"));
    assert!(o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("stale staging folder"), "{err}");
    let mut want = decoys.clone();
    want.push(staged[0].clone());
    want.sort();
    assert_eq!(staging_folders(p.path()), want, "only b's folder goes");
    assert!(matches!(pulls.0[0].try_wait(), Ok(None)), "a was disturbed");

    // a killed too: the next pull removes its folder, and only that.
    assert!(crash::kill_group(&mut pulls.0[0]));
    assert!(
        pull(p.path(), &good, &p.path().join("out-c"))
            .status
            .success()
    );
    assert_eq!(staging_folders(p.path()), decoys);
    assert!(target.join(".lock").exists() && decoy.join("file").exists());
    hold.store(false, Ordering::SeqCst);
}
