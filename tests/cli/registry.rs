//! `forge publish`, `sign`, `verify-image`, `pull-repo` against a real
//! registry: Debian's `docker-registry` (CNCF distribution 2.8), started per
//! test on a free loopback port with filesystem storage in a tempdir.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use forge::imagesign::attach::{self, Layer, MEDIA_SIMPLE_SIGNING};
use forge::imagesign::keys::ImageKey;
use forge::imagesign::payload::simple_signing;
use forge::oci::layout::Layout;
use forge::oci::{ANNOTATION_REF_NAME, Digest, Index, MEDIA_CONFIG, MEDIA_MANIFEST, Manifest};
use forge::output::Shell;
use forge::registry::push::{self, BlobSource, Plan, PushOptions};
use forge::registry::state::MountState;
use forge::registry::{Client, ClientOptions};
use serde_json::Value;

use crate::support::*;

fn events(stdout: &str, kind: &str) -> Vec<Value> {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["event"] == kind)
        .collect()
}

fn json_file(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

/// Config and layer digests of every manifest under the layout's root.
fn layout_blobs(layout: &Path) -> Vec<String> {
    let index = json_file(&layout.join("index.json"));
    let root = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let mut out = Vec::new();
    let mut todo = vec![root];
    while let Some(d) = todo.pop() {
        let v = json_file(&layout.join("blobs/sha256").join(&d[7..]));
        if let Some(ms) = v["manifests"].as_array() {
            todo.extend(ms.iter().map(|m| m["digest"].as_str().unwrap().to_string()));
        } else {
            out.push(v["config"]["digest"].as_str().unwrap().to_string());
            out.extend(
                v["layers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|l| l["digest"].as_str().unwrap().to_string()),
            );
        }
    }
    out
}

/// The repository's example project, built.
fn example_project() -> Project {
    let p = Project::examples();
    run_ok(forge(p.path()).arg("build"));
    assert!(p.path().join("out/images/hello/index.json").is_file());
    p
}

#[test]
fn registry_publish_matches_skopeo_is_idempotent_and_verifies() {
    if !require_tool("docker-registry")
        || !require_tool("skopeo")
        || !require_tool("openssl")
        || !require_bwrap()
    {
        return;
    }
    let p = example_project();
    let reg = Registry::start();
    let host = reg.host();
    let target = format!("{host}/forge");
    let layout = p.path().join("out/images/hello");
    let root = json_file(&layout.join("index.json"))["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();

    // Dry run: everything missing, nothing stored.
    let (out, _) = run_ok(forge_signing(p.path()).args([
        "--json",
        "publish",
        "--insecure",
        "--dry-run",
        "--registry",
        &target,
    ]));
    let ev = &events(&out, "publish")[0];
    assert_eq!(
        ev["blobs_pushed"].as_u64().unwrap() as usize,
        ev["missing"].as_array().unwrap().len()
    );
    assert!(reg.stored_blobs().is_empty(), "dry run stored blobs");

    let (out, _) = run_ok(forge_signing(p.path()).args([
        "--json",
        "publish",
        "--insecure",
        "--repo",
        "--registry",
        &target,
    ]));
    let ev = &events(&out, "publish")[0];
    assert_eq!(ev["digest"], root.as_str());
    assert_eq!(ev["repository"], format!("{host}/forge/hello"));
    assert_eq!(
        (ev["signed"].as_bool(), ev["attested"].as_bool()),
        (Some(true), Some(true))
    );
    assert_eq!(ev["blobs_skipped"], 0);
    assert_eq!(ev["sbom_referrers"], 1);

    // skopeo sees the same digests as the local layout.
    let raw = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--raw"])
        .arg(format!("docker://{host}/forge/hello:latest"))
        .output()
        .unwrap();
    assert!(
        raw.status.success(),
        "{}",
        String::from_utf8_lossy(&raw.stderr)
    );
    assert_eq!(Digest::of(&raw.stdout).as_str(), root);
    let inspect = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false"])
        .arg(format!("docker://{host}/forge/hello:latest"))
        .output()
        .unwrap();
    let inspect: Value = serde_json::from_slice(&inspect.stdout).unwrap();
    // skopeo names the index digest (what the tag points at) and lists
    // the layers of this host's platform manifest.
    assert_eq!(inspect["Digest"], root.as_str());
    let platform =
        json_file(&layout.join("blobs/sha256").join(&root[7..]))["manifests"][0]["digest"]
            .as_str()
            .unwrap()
            .to_string();
    let platform = json_file(&layout.join("blobs/sha256").join(&platform[7..]));
    let layers: Vec<&str> = platform["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap())
        .collect();
    let theirs: Vec<&str> = inspect["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert_eq!(theirs, layers);
    let copy = tempfile::tempdir().unwrap();
    let st = Command::new("skopeo")
        .args([
            "copy",
            "--all",
            "--preserve-digests",
            "--src-tls-verify=false",
        ])
        .arg(format!("docker://{host}/forge/hello:latest"))
        .arg(format!("oci:{}:latest", copy.path().display()))
        .status()
        .unwrap();
    assert!(st.success());
    assert_eq!(
        json_file(&copy.path().join("index.json"))["manifests"][0]["digest"],
        root.as_str()
    );
    for d in layout_blobs(&layout) {
        let ours = std::fs::read(layout.join("blobs/sha256").join(&d[7..])).unwrap();
        let theirs = std::fs::read(copy.path().join("blobs/sha256").join(&d[7..])).unwrap();
        assert!(ours == theirs, "blob {d} differs after a round trip");
    }

    // Publishing again sends no blob, no manifest, moves no tag.
    let before = reg.stored_blobs();
    let t = Instant::now();
    let (out, _) = run_ok(forge_signing(p.path()).args([
        "--json",
        "publish",
        "--insecure",
        "--repo",
        "--registry",
        &target,
    ]));
    let noop = t.elapsed();
    for kind in ["publish", "publish-repo"] {
        let ev = &events(&out, kind)[0];
        for k in [
            "blobs_pushed",
            "bytes_pushed",
            "blobs_mounted",
            "manifests_pushed",
            "tags_set",
        ] {
            assert_eq!(ev[k], 0, "{kind} {k} on a re-publish: {ev}");
        }
    }
    assert_eq!(events(&out, "publish")[0]["signed"], false);
    assert_eq!(
        reg.stored_blobs(),
        before,
        "the registry's blob store changed on a no-op publish"
    );
    eprintln!(
        "no-op publish (process included): {:.3}s",
        noop.as_secs_f64()
    );

    // Another repository of the same registry: the image's blobs are mounted.
    let (out, _) = run_ok(forge_signing(p.path()).args([
        "--json",
        "publish",
        "--insecure",
        "--registry",
        &format!("{host}/mirror"),
    ]));
    let ev = &events(&out, "publish")[0];
    // Image blobs, the SBOM layer and the empty config are all mounted; only
    // what names the new repository (signature, statements) is uploaded.
    assert!(
        ev["blobs_mounted"].as_u64().unwrap() as usize >= layout_blobs(&layout).len(),
        "{ev}"
    );
    assert!(ev["bytes_pushed"].as_u64().unwrap() < 64 << 10, "{ev}");

    // verify-image accepts it, naming both attestations.
    let reference = format!("{host}/forge/hello:latest");
    let (_, err) = run_ok(
        forge(p.path())
            .args(["verify-image", "--insecure", &reference, "--key"])
            .arg(cosign_fixture("kat.pub")),
    );
    assert!(
        err.contains("https://spdx.dev/Document") && err.contains("https://slsa.dev/provenance/v1"),
        "{err}"
    );

    // The SBOM is also an OCI 1.1 referrer of the image, listed under the
    // fallback tag (distribution 2.8 has no referrers API).
    let referrers = c_get_manifest(&host, "forge/hello", &format!("sha256-{}", &root[7..]));
    let entries = referrers["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{referrers}");
    assert_eq!(entries[0]["artifactType"], "application/spdx+json");
    let artifact = c_get_manifest(&host, "forge/hello", entries[0]["digest"].as_str().unwrap());
    assert_eq!(artifact["subject"]["digest"], root.as_str());
    let sbom = registry_client(&host)
        .get_blob(
            "forge/hello",
            &Digest::parse(artifact["layers"][0]["digest"].as_str().unwrap()).unwrap(),
            &["repository:forge/hello:pull".to_string()],
        )
        .unwrap();
    assert_eq!(
        sbom,
        std::fs::read(p.path().join("out/images/hello.x86_64.spdx.json")).unwrap()
    );

    // It works outside a project too (e.g. on a node).
    let nowhere = tempfile::tempdir().unwrap();
    run_ok(
        forge(nowhere.path())
            .args(["verify-image", "--insecure", &reference, "--key"])
            .arg(cosign_fixture("kat.pub")),
    );

    // Independent check: openssl verifies the stored payload and signature.
    let c = registry_client(&host);
    let digest = Digest::parse(&root).unwrap();
    openssl_verifies_signature(&host, "forge/hello", &digest);

    // Rejections, each with its own reason.
    let key = ImageKey::load(&cosign_fixture("kat.key"), b"forge-kat").unwrap();
    let other = ImageKey::generate().unwrap();
    let good_repo = format!("{host}/forge/hello");
    let sign = |k: &ImageKey, repo: &str, d: &Digest| {
        let p = simple_signing(repo, d);
        let s = base64::engine::general_purpose::STANDARD.encode(k.sign(&p).unwrap());
        attach::signature_layer(p, &s)
    };
    let tampered = {
        let mut l = sign(&key, &good_repo, &digest);
        l.bytes = String::from_utf8(l.bytes)
            .unwrap()
            .replace("\"optional\":null", "\"optional\":{\"x\":\"y\"}")
            .into_bytes();
        l
    };
    let cases: Vec<(&str, Layer, &str)> = vec![
        (
            "another key",
            sign(&other, &good_repo, &digest),
            "does not verify with the given key",
        ),
        (
            "tampered payload",
            tampered,
            "does not verify with the given key",
        ),
        (
            "another digest",
            sign(&key, &good_repo, &Digest::of(b"another image")),
            "signature is for another image",
        ),
        (
            "another repository",
            sign(&key, &format!("{host}/evil/hello"), &digest),
            "signature is for another repository",
        ),
    ];
    for (what, layer, want) in cases {
        put_signature(&c, "forge/hello", &digest, vec![layer]);
        let err = run_err(
            forge(p.path())
                .args(["verify-image", "--insecure", &reference, "--key"])
                .arg(cosign_fixture("kat.pub")),
        );
        assert!(err.contains(want), "{what}: {err}");
    }
    // forge sign repairs it (appends a good signature).
    run_ok(forge_signing(p.path()).args(["sign", "--insecure", &reference]));
    run_ok(
        forge(p.path())
            .args(["verify-image", "--insecure", &reference, "--key"])
            .arg(cosign_fixture("kat.pub")),
    );
    // Unsigned image: no signature.
    run_ok(forge_signing(p.path()).args([
        "publish",
        "--insecure",
        "--no-sign",
        "--registry",
        &format!("{host}/unsigned"),
    ]));
    let err = run_err(
        forge(p.path())
            .args([
                "verify-image",
                "--insecure",
                &format!("{host}/unsigned/hello:latest"),
                "--key",
            ])
            .arg(cosign_fixture("kat.pub")),
    );
    assert!(err.contains("no signature"), "{err}");

    // A default publish signs every platform manifest too (a node checks
    // the one it pulls): verify-image accepts it there, openssl agrees; an
    // unsigned image and another key are refused there.
    let platforms: Vec<String> =
        json_file(&layout.join("blobs/sha256").join(&root[7..]))["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["digest"].as_str().unwrap().to_string())
            .collect();
    assert!(!platforms.is_empty());
    let other_pub = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(other_pub.path(), other.public_pem().unwrap()).unwrap();
    for platform in &platforms {
        let at = |prefix: &str| format!("{host}/{prefix}/hello@{platform}");
        let verify = |r: &str, key: &Path| {
            let mut c = forge(p.path());
            c.args(["verify-image", "--insecure", r, "--key"]).arg(key);
            c
        };
        let (_, err) = run_ok(&mut verify(&at("forge"), &cosign_fixture("kat.pub")));
        assert!(err.contains("Verified"), "{err}");
        openssl_verifies_signature(&host, "forge/hello", &Digest::parse(platform).unwrap());
        let err = run_err(&mut verify(&at("unsigned"), &cosign_fixture("kat.pub")));
        assert!(err.contains("no signature"), "{err}");
        let err = run_err(&mut verify(&at("forge"), other_pub.path()));
        assert!(err.contains("does not verify with the given key"), "{err}");
    }
    // `forge sign` of an unsigned index signs its platform manifests too.
    run_ok(forge_signing(p.path()).args([
        "sign",
        "--insecure",
        &format!("{host}/unsigned/hello:latest"),
    ]));
    for platform in &platforms {
        run_ok(
            forge(p.path())
                .args([
                    "verify-image",
                    "--insecure",
                    &format!("{host}/unsigned/hello@{platform}"),
                    "--key",
                ])
                .arg(cosign_fixture("kat.pub")),
        );
    }
    // The index is refused when a platform manifest's signature is missing.
    let first = Digest::parse(&platforms[0]).unwrap();
    put_signature(&c, "forge/hello", &first, vec![]);
    let err = run_err(
        forge(p.path())
            .args(["verify-image", "--insecure", &reference, "--key"])
            .arg(cosign_fixture("kat.pub")),
    );
    assert!(err.contains(&format!("platform manifest {first}")), "{err}");

    // The package repository comes back and verifies against keys/.
    let pulled = tempfile::tempdir().unwrap();
    let (_, err) = run_ok(
        forge(p.path())
            .args([
                "pull-repo",
                "--insecure",
                &format!("{host}/forge/packages:latest"),
                "--out",
            ])
            .arg(pulled.path()),
    );
    assert!(err.contains("Verified"), "{err}");
    for f in walkdir::WalkDir::new(p.path().join("out/repo"))
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
    {
        let rel = f.path().strip_prefix(p.path().join("out/repo")).unwrap();
        let name = rel.to_string_lossy();
        if name.ends_with(".apk") || name.ends_with("APKINDEX.tar.gz") {
            assert_eq!(
                std::fs::read(f.path()).unwrap(),
                std::fs::read(pulled.path().join(rel)).unwrap(),
                "{name}"
            );
        }
    }
    let err = run_err(
        forge(p.path())
            .args([
                "pull-repo",
                "--insecure",
                &format!("{host}/forge/hello:latest"),
                "--out",
            ])
            .arg(pulled.path()),
    );
    assert!(err.contains("not a forge package repository"), "{err}");
}

/// openssl, independently of forge, verifies the `.sig` of `digest` in
/// `repo` with the test key, and the payload names `digest` and `repo`.
fn openssl_verifies_signature(host: &str, repo: &str, digest: &Digest) {
    let c = registry_client(host);
    let scopes = vec![format!("repository:{repo}:pull")];
    let (_, sig_manifest) = c
        .get_manifest(repo, &attach::signature_tag(digest), &scopes)
        .unwrap()
        .unwrap_or_else(|| panic!("no .sig for {digest}"));
    let m: Value = serde_json::from_slice(&sig_manifest).unwrap();
    let layer = &m["layers"][0];
    assert_eq!(layer["mediaType"], MEDIA_SIMPLE_SIGNING);
    let payload = c
        .get_blob(
            repo,
            &Digest::parse(layer["digest"].as_str().unwrap()).unwrap(),
            &scopes,
        )
        .unwrap();
    let sig = base64::engine::general_purpose::STANDARD
        .decode(
            layer["annotations"]["dev.cosignproject.cosign/signature"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("payload"), &payload).unwrap();
    std::fs::write(tmp.path().join("sig"), &sig).unwrap();
    let out = Command::new("openssl")
        .args(["dgst", "-sha256", "-verify"])
        .arg(cosign_fixture("kat.pub"))
        .arg("-signature")
        .arg(tmp.path().join("sig"))
        .arg(tmp.path().join("payload"))
        .output()
        .unwrap();
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("Verified OK"),
        "openssl: {digest}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let claimed: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(
        claimed["critical"]["image"]["docker-manifest-digest"],
        digest.as_str()
    );
    assert_eq!(
        claimed["critical"]["identity"]["docker-reference"],
        format!("{host}/{repo}")
    );
    assert_eq!(
        claimed["critical"]["type"],
        "cosign container image signature"
    );
}

/// A manifest or index of `repo` as JSON.
fn c_get_manifest(host: &str, repo: &str, reference: &str) -> Value {
    let scopes = vec![format!("repository:{repo}:pull")];
    let (_, bytes) = registry_client(host)
        .get_manifest(repo, reference, &scopes)
        .unwrap()
        .expect("manifest");
    serde_json::from_slice(&bytes).unwrap()
}

/// Replace the `.sig` of `digest` with a manifest of `layers`.
fn put_signature(c: &Client, repo: &str, digest: &Digest, layers: Vec<Layer>) {
    let a = attach::manifest(MEDIA_SIMPLE_SIGNING, layers);
    let mut plan = Plan::new(repo);
    for (d, b) in a.blobs {
        plan.add_blob(d, BlobSource::Bytes(Arc::new(b)));
    }
    let m = plan.add_manifest(MEDIA_MANIFEST, a.manifest);
    plan.tags.push((attach::signature_tag(digest), m));
    push::push(
        c,
        &plan,
        &PushOptions::default(),
        &mut MountState::default(),
        &Shell::silent(),
    )
    .unwrap();
}

/// Incompressible bytes from a xorshift generator.
/// A single-platform image of random layers at `out/images/NAME`.
pub fn synthetic_image(root: &Path, name: &str, layers: &[usize], seed: u64) -> Digest {
    let layout = Layout::create(&root.join("out/images").join(name)).unwrap();
    let mut descs = Vec::new();
    for (i, n) in layers.iter().enumerate() {
        let mut w = layout.blob_writer().unwrap();
        w.write_all(&noise(seed * 1000 + i as u64, *n)).unwrap();
        descs.push(w.finish("application/vnd.oci.image.layer.v1.tar").unwrap());
    }
    let ids: Vec<&str> = descs.iter().map(|d| d.digest.as_str()).collect();
    let config = serde_json::json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": ids}, "config": {}});
    let config = layout.write_json_blob(MEDIA_CONFIG, &config).unwrap();
    let manifest = Manifest {
        config,
        layers: descs,
        annotations: Default::default(),
    };
    let mut m = layout
        .write_json_blob(MEDIA_MANIFEST, &manifest.to_json())
        .unwrap();
    m.annotations
        .insert(ANNOTATION_REF_NAME.into(), "latest".into());
    let digest = m.digest.clone();
    layout
        .write_index_json(&Index {
            manifests: vec![m],
            annotations: Default::default(),
        })
        .unwrap();
    digest
}

#[test]
fn registry_auth_basic_credentials_and_redaction() {
    if !require_tool("docker-registry") {
        return;
    }
    let password = "Pa55-w0rd-xyzzy";
    let hash = bcrypt::hash(password, 5).unwrap();
    let reg = Registry::start_with_htpasswd(&format!("alice:{hash}\n"));
    let p = project();
    synthetic_image(p.path(), "tiny", &[4096, 8192], 7);
    let target = format!("{}/forge", reg.host());
    let publish = |user: Option<&str>, pass: Option<&str>| {
        let mut c = forge_signing(p.path());
        c.args([
            "-v",
            "publish",
            "--insecure",
            "--no-sign",
            "tiny",
            "--registry",
            &target,
        ]);
        if let Some(u) = user {
            c.env("FORGE_REGISTRY_USER", u);
        }
        if let Some(pw) = pass {
            c.env("FORGE_REGISTRY_PASSWORD", pw);
        }
        run(&mut c)
    };
    let secrets = [
        password.to_string(),
        base64::engine::general_purpose::STANDARD.encode(format!("alice:{password}")),
    ];
    let check_clean = |o: &std::process::Output| {
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        for s in &secrets {
            assert!(
                !all.contains(s.as_str()),
                "a credential leaked into the output:\n{all}"
            );
        }
        all
    };
    let o = publish(None, None);
    assert!(!o.status.success());
    let text = check_clean(&o);
    assert!(
        text.contains("401") && text.contains("no credentials"),
        "{text}"
    );
    let o = publish(Some("alice"), Some("wrong-password-123"));
    assert!(!o.status.success());
    let text = check_clean(&o);
    assert!(
        text.contains("credentials of user `alice` were rejected"),
        "{text}"
    );
    let o = publish(Some("alice"), Some(password));
    let text = check_clean(&o);
    assert!(o.status.success(), "{text}");
    // Credentials from a docker config.json work too.
    let cfg = tempfile::tempdir().unwrap();
    std::fs::write(
        cfg.path().join("config.json"),
        format!(
            r#"{{"auths":{{"{}":{{"auth":"{}"}}}}}}"#,
            reg.host(),
            secrets[1]
        ),
    )
    .unwrap();
    let o = run(forge_signing(p.path())
        .args([
            "-v",
            "publish",
            "--insecure",
            "--no-sign",
            "tiny",
            "--registry",
            &format!("{}/again", reg.host()),
        ])
        .env("DOCKER_CONFIG", cfg.path()));
    let text = check_clean(&o);
    assert!(o.status.success(), "{text}");
}

#[test]
fn registry_survives_a_restart_mid_push_and_never_tags_early() {
    if !require_tool("docker-registry") {
        return;
    }
    let mut reg = Registry::start();
    let p = project();
    let sizes = [24 << 20, 24 << 20, 16 << 20, 16 << 20, 32 << 20];
    let digest = synthetic_image(p.path(), "big", &sizes, 11);
    let host = reg.host();
    let storage = reg.storage();

    // Poll the tag from another thread: whenever it resolves, every blob it
    // names must be present.
    let stop = Arc::new(AtomicBool::new(false));
    let resolved = Arc::new(AtomicUsize::new(0));
    let poller = {
        let (stop, resolved, host) = (stop.clone(), resolved.clone(), host.clone());
        std::thread::spawn(move || {
            let c = Client::new(
                &host,
                ClientOptions {
                    insecure: true,
                    attempts: 1,
                    ..Default::default()
                },
            )
            .unwrap();
            let scopes = vec!["repository:forge/big:pull".to_string()];
            while !stop.load(Ordering::Relaxed) {
                if let Ok(Some((_, m))) = c.get_manifest("forge/big", "latest", &scopes) {
                    let v: Value = serde_json::from_slice(&m).unwrap();
                    let mut blobs = vec![v["config"]["digest"].as_str().unwrap().to_string()];
                    blobs.extend(
                        v["layers"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|l| l["digest"].as_str().unwrap().to_string()),
                    );
                    for b in blobs {
                        let ok = c.blob_exists("forge/big", &Digest::parse(&b).unwrap(), &scopes);
                        assert!(
                            !matches!(ok, Ok(false)),
                            "tag latest resolves but blob {b} is missing"
                        );
                    }
                    resolved.fetch_add(1, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };

    let child = forge(p.path())
        .args([
            "--json",
            "publish",
            "--insecure",
            "--no-sign",
            "--uploads",
            "2",
            "big",
            "--registry",
            &format!("{host}/forge"),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Kill the registry once some upload bytes reached its storage.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let uploaded: u64 = walkdir::WalkDir::new(&storage)
            .into_iter()
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_file() && e.path().to_string_lossy().contains("_uploads"))
            .map(|e| e.metadata().map_or(0, |m| m.len()))
            .sum();
        if uploaded > (4 << 20) {
            break;
        }
        assert!(Instant::now() < deadline, "no upload progress seen");
        std::thread::sleep(Duration::from_millis(2));
    }
    reg.kill();
    std::thread::sleep(Duration::from_millis(700));
    reg.restart();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "publish did not survive the restart");
    stop.store(true, Ordering::Relaxed);
    poller
        .join()
        .expect("the tag named missing blobs during the push");
    let ev = &events(&stdout, "publish")[0];
    assert_eq!(ev["digest"], digest.as_str());
    // An uninterrupted push needs ping + per blob HEAD, POST, PUT + manifest
    // HEAD, PUT + tag HEAD, PUT; more requests mean uploads were retried.
    let blobs = sizes.len() as u64 + 1;
    let requests = events(&stdout, "publish-done")[0]["requests"]
        .as_u64()
        .unwrap();
    assert!(
        requests > 1 + 3 * blobs + 4,
        "no retry happened ({requests} requests)"
    );
    // Everything is there and the tag is right.
    let c = registry_client(&host);
    let scopes = vec!["repository:forge/big:pull".to_string()];
    assert_eq!(
        c.manifest_digest("forge/big", "latest", &scopes).unwrap(),
        Some(digest)
    );
    for d in layout_blobs(&p.path().join("out/images/big")) {
        assert!(
            c.blob_exists("forge/big", &Digest::parse(&d).unwrap(), &scopes)
                .unwrap(),
            "{d}"
        );
    }
    assert!(
        resolved.load(Ordering::Relaxed) > 0,
        "the poller never saw the tag"
    );
}

#[test]
fn registry_large_blobs_stream_from_the_file() {
    if !require_tool("docker-registry") {
        return;
    }
    let reg = Registry::start();
    let p = project();
    // Above the in-memory limit (64 MiB): sent as a streamed body.
    let digest = synthetic_image(p.path(), "large", &[(64 << 20) + 4097], 5);
    let (out, _) = run_ok(forge(p.path()).args([
        "--json",
        "publish",
        "--insecure",
        "--no-sign",
        "large",
        "--registry",
        &format!("{}/x", reg.host()),
    ]));
    assert!(events(&out, "publish")[0]["bytes_pushed"].as_u64().unwrap() > 64 << 20);
    let c = registry_client(&reg.host());
    let scopes = vec!["repository:x/large:pull".to_string()];
    assert_eq!(
        c.manifest_digest("x/large", "latest", &scopes).unwrap(),
        Some(digest)
    );
    for d in layout_blobs(&p.path().join("out/images/large")) {
        assert!(
            c.blob_exists("x/large", &Digest::parse(&d).unwrap(), &scopes)
                .unwrap(),
            "{d}"
        );
    }
}

#[test]
fn registry_chunked_upload_round_trips() {
    if !require_tool("docker-registry") {
        return;
    }
    let reg = Registry::start();
    let p = project();
    let digest = synthetic_image(p.path(), "chunky", &[3 << 20, 100_000], 3);
    run_ok(forge(p.path()).args([
        "publish",
        "--insecure",
        "--no-sign",
        "--chunk-size",
        "1000000",
        "chunky",
        "--registry",
        &format!("{}/x", reg.host()),
    ]));
    let c = registry_client(&reg.host());
    let scopes = vec!["repository:x/chunky:pull".to_string()];
    assert_eq!(
        c.manifest_digest("x/chunky", "latest", &scopes).unwrap(),
        Some(digest)
    );
    for d in layout_blobs(&p.path().join("out/images/chunky")) {
        let bytes = c
            .get_blob("x/chunky", &Digest::parse(&d).unwrap(), &scopes)
            .unwrap();
        assert_eq!(Digest::of(&bytes).as_str(), d);
    }
}

#[test]
fn registry_keygen_image_key_is_encrypted_and_git_ignored() {
    let p = project();
    std::fs::copy(repo_root().join(".gitignore"), p.path().join(".gitignore")).unwrap();
    let (_, err) = run_ok(
        forge(p.path())
            .args(["keygen", "--image", "release"])
            .env("COSIGN_PASSWORD", "pw-123"),
    );
    assert!(!err.contains("pw-123"), "{err}");
    let files: Vec<PathBuf> = std::fs::read_dir(p.path().join("keys"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let private = files
        .iter()
        .find(|f| f.to_string_lossy().ends_with(".cosign.key"))
        .expect("private key");
    let public = files
        .iter()
        .find(|f| f.to_string_lossy().ends_with(".cosign.pub"))
        .expect("public key");
    assert_eq!(files.len(), 2);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(private).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let text = std::fs::read_to_string(private).unwrap();
    assert!(
        text.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----"),
        "{text}"
    );
    assert!(
        std::fs::read_to_string(public)
            .unwrap()
            .starts_with("-----BEGIN PUBLIC KEY-----")
    );
    // Decrypts with the password only; the public half matches.
    let key = ImageKey::load(private, b"pw-123").unwrap();
    assert_eq!(key.public_pem().unwrap(), std::fs::read(public).unwrap());
    assert!(ImageKey::load(private, b"").is_err());
    // git ignores the private key and keeps the public one.
    let st = Command::new("git")
        .args(["init", "-q"])
        .current_dir(p.path())
        .status()
        .unwrap();
    assert!(st.success());
    let ignored = |f: &Path| {
        Command::new("git")
            .args(["check-ignore", "-q"])
            .arg(f.strip_prefix(p.path()).unwrap())
            .current_dir(p.path())
            .status()
            .unwrap()
            .success()
    };
    assert!(ignored(private), "the private key is not git-ignored");
    assert!(!ignored(public), "the public key is git-ignored");
}

#[test]
fn registry_interrupted_publish_resumes_with_what_is_missing() {
    if !require_tool("docker-registry") {
        return;
    }
    let reg = Registry::start();
    let p = project();
    let sizes = [16 << 20; 6];
    let digest = synthetic_image(p.path(), "resume", &sizes, 21);
    let target = format!("{}/forge", reg.host());
    let mut child = forge(p.path())
        .args([
            "publish",
            "--insecure",
            "--no-sign",
            "--uploads",
            "1",
            "resume",
            "--registry",
            &target,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Stop forge (SIGKILL) once two layers are stored.
    let deadline = Instant::now() + Duration::from_secs(60);
    while reg.stored_blobs().len() < 2 {
        assert!(Instant::now() < deadline, "no blob stored");
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let c = registry_client(&reg.host());
    let scopes = vec!["repository:forge/resume:pull".to_string()];
    assert_eq!(
        c.manifest_digest("forge/resume", "latest", &scopes)
            .unwrap(),
        None,
        "tagged before all blobs"
    );
    let (out, _) = run_ok(forge(p.path()).args([
        "--json",
        "publish",
        "--insecure",
        "--no-sign",
        "resume",
        "--registry",
        &target,
    ]));
    let ev = &events(&out, "publish")[0];
    let skipped = ev["blobs_skipped"].as_u64().unwrap();
    assert!(skipped >= 2, "{ev}");
    assert!(
        ev["bytes_pushed"].as_u64().unwrap() <= ((sizes.len() as u64 - 2) * (16 << 20)) + 4096,
        "{ev}"
    );
    assert_eq!(
        c.manifest_digest("forge/resume", "latest", &scopes)
            .unwrap(),
        Some(digest)
    );
}
