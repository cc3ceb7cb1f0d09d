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
mod publish;
mod pull;
