//! Pulls from registries that throttle, fail or cut replies short (a loopback
//! stand-in), and the staging folders that killed pulls leave behind.

use super::*;

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
