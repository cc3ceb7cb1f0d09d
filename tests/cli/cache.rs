//! The registry-backed build cache (`forge build --cache`) against a real
//! docker-registry on 127.0.0.1: separate build folders (standing for
//! runners on different hosts) share one cache; tampered and unsigned
//! entries are refused with a warning and rebuilt; concurrent pushes of one
//! key store one entry; a push killed part-way publishes nothing half-done;
//! `--unit` jobs pull what they need.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use forge::cache::{Cache, CacheUrl, Expected};
use forge::oci::{Descriptor, Digest};
use forge::output::Shell;
use forge::registry::push::{self, BlobSource, Plan, PushOptions};
use forge::registry::state::MountState;

use crate::plan::small_project;
use crate::support::{self, Project, Registry, crash, forge, run_err, run_ok, verify_repo};

const REPO: &str = "forge/cache";

fn url(reg: &Registry) -> String {
    format!("oci+http://{}/{REPO}", reg.host())
}

/// `forge --sandbox none --json build --cache URL ARGS…`: stdout, stderr.
fn build(root: &Path, reg: &Registry, args: &[&str]) -> (String, String) {
    run_ok(
        forge(root)
            .args(["--sandbox", "none", "--json", "build", "--cache", &url(reg)])
            .args(args),
    )
}

/// `{"event":"cache"}` lines as (unit, result), and the events themselves.
fn cache_events(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"] == "cache")
        .collect()
}

fn statuses(stdout: &str) -> BTreeMap<String, String> {
    support::unit_events(stdout).into_iter().collect()
}

fn all(units: &[&str], status: &str) -> BTreeMap<String, String> {
    units
        .iter()
        .map(|u| (u.to_string(), status.to_string()))
        .collect()
}

/// Every file of `out/repo/<arch>/` with its bytes.
fn repo_files(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let dir = root.join("out/repo").join(std::env::consts::ARCH);
    std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            (name, std::fs::read(e.path()).unwrap())
        })
        .collect()
}

fn no_build_logs(root: &Path) -> bool {
    !root.join("out/logs").exists()
        || std::fs::read_dir(root.join("out/logs"))
            .unwrap()
            .next()
            .is_none()
}

/// The unit keys of a project's plan.
fn keys(root: &Path) -> BTreeMap<String, String> {
    let plan = crate::plan::plan_json(root, &[]);
    plan["units"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["name"].as_str().unwrap().into(),
                u["key"].as_str().unwrap().into(),
            )
        })
        .collect()
}

const UNITS: [&str; 3] = ["lib", "app", "tool"];

#[test]
fn cache_second_folder_builds_nothing_and_pulls_everything() {
    if !support::require_tool("docker-registry") {
        return;
    }
    let reg = Registry::start();
    let a = small_project();
    let (out, _) = build(a.path(), &reg, &[]);
    assert_eq!(statuses(&out), all(&UNITS, "built"));
    let pushed: Vec<_> = cache_events(&out)
        .into_iter()
        .filter(|e| e["result"] == "pushed")
        .collect();
    assert_eq!(pushed.len(), 3, "{out}");

    let b = small_project();
    assert_eq!(keys(a.path()), keys(b.path()), "same inputs, same keys");
    let started = Instant::now();
    let (out, _) = build(b.path(), &reg, &[]);
    let wall = started.elapsed();
    assert_eq!(statuses(&out), all(&UNITS, "pulled"), "nothing was built");
    assert!(no_build_logs(b.path()), "no build ran");
    assert_eq!(repo_files(a.path()), repo_files(b.path()), "byte-identical");
    verify_repo(b.path());
    for e in cache_events(&out) {
        assert_eq!(e["result"], "hit");
        eprintln!(
            "cache figures: {} lookup {:.1} ms, pull {:.1} ms",
            e["unit"],
            e["lookup_seconds"].as_f64().unwrap() * 1e3,
            e["pull_seconds"].as_f64().unwrap() * 1e3
        );
    }
    eprintln!("cache figures: whole pulling build {wall:.2?}");
    // Now fresh: a third run does nothing and asks the cache nothing.
    let (out, _) = build(b.path(), &reg, &[]);
    assert_eq!(statuses(&out), all(&UNITS, "fresh"));
    assert!(cache_events(&out).is_empty());
}

/// The manifest bytes and parsed JSON of `unit`'s entry.
fn entry(client: &forge::registry::Client, key: &str) -> serde_json::Value {
    let scopes = push::push_scopes(REPO);
    let tag = forge::cache::tag_for(key).unwrap();
    let (_, bytes) = client.get_manifest(REPO, &tag, &scopes).unwrap().unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// Store `manifest` under the entry tag of `key`, with `extra` blobs.
fn replace_entry(
    client: &forge::registry::Client,
    key: &str,
    manifest: &serde_json::Value,
    extra: &[(String, Vec<u8>)],
) {
    let mut plan = Plan::new(REPO);
    for (media, bytes) in extra {
        let d = Descriptor::for_bytes(media, bytes);
        plan.add_blob(d, BlobSource::Bytes(std::sync::Arc::new(bytes.clone())));
    }
    let bytes = serde_json::to_vec(manifest).unwrap();
    let digest = plan.add_manifest(forge::oci::MEDIA_MANIFEST, bytes);
    plan.tags
        .push((forge::cache::tag_for(key).unwrap(), digest));
    push::push(
        client,
        &plan,
        &PushOptions::default(),
        &mut MountState::default(),
        &Shell::silent(),
    )
    .unwrap();
}

fn blob_file(reg: &Registry, digest: &str) -> PathBuf {
    let hex = digest.strip_prefix("sha256:").unwrap();
    reg.storage()
        .join("docker/registry/v2/blobs/sha256")
        .join(&hex[..2])
        .join(hex)
        .join("data")
}

#[test]
fn cache_tampered_and_unsigned_entries_are_refused_and_rebuilt() {
    if !support::require_tool("docker-registry") {
        return;
    }
    let reg = Registry::start();
    let a = small_project();
    build(a.path(), &reg, &[]);
    let keys = keys(a.path());
    let client = support::registry_client(&reg.host());
    let scopes = push::push_scopes(REPO);

    // lib: the config edited (another version), the old signature kept.
    let mut m = entry(&client, &keys["lib"]);
    let cfg = Digest::parse(m["config"]["digest"].as_str().unwrap()).unwrap();
    let text = String::from_utf8(client.get_blob(REPO, &cfg, &scopes).unwrap()).unwrap();
    let forged = text.replace("\"version\":\"1.0-r0\"", "\"version\":\"6.6-r6\"");
    assert_ne!(text, forged);
    let media = forge::cache::entry::MEDIA_ENTRY.to_string();
    m["config"] = Descriptor::for_bytes(&media, forged.as_bytes()).to_json();
    replace_entry(&client, &keys["lib"], &m, &[(media, forged.into_bytes())]);
    // tool: the signature annotations removed.
    let mut m = entry(&client, &keys["tool"]);
    m.as_object_mut().unwrap().remove("annotations");
    replace_entry(&client, &keys["tool"], &m, &[]);
    // app: its package blob overwritten in the registry's storage.
    let m = entry(&client, &keys["app"]);
    let apk = blob_file(&reg, m["layers"][0]["digest"].as_str().unwrap());
    let mut bytes = std::fs::read(&apk).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&apk, bytes).unwrap();

    let b = small_project();
    let (out, err) = build(b.path(), &reg, &[]);
    assert_eq!(statuses(&out), all(&UNITS, "built"), "{err}");
    for (unit, why) in [
        ("lib", "does not verify"),
        ("tool", "the entry is not signed"),
        ("app", "downloading app-1.0-r0.apk"),
    ] {
        let line = err
            .lines()
            .find(|l| l.contains(&format!("cache entry for `{unit}` refused")))
            .unwrap_or_else(|| panic!("no warning for {unit}:\n{err}"));
        assert!(
            line.contains(why) && line.ends_with("building it"),
            "{line}"
        );
    }
    assert_eq!(repo_files(a.path()), repo_files(b.path()));
    verify_repo(b.path());
    // The rebuilds pushed good entries over the bad manifests. The blob
    // corrupted in the registry's storage keeps its digest, so a push (which
    // skips blobs the registry has) cannot mend it: app is refused again.
    let c = small_project();
    let (out, err) = build(c.path(), &reg, &[]);
    let want: BTreeMap<String, String> = [("lib", "pulled"), ("tool", "pulled"), ("app", "built")]
        .map(|(a, b)| (a.into(), b.into()))
        .into();
    assert_eq!(statuses(&out), want);
    assert!(err.contains("cache entry for `app` refused"), "{err}");
}

#[test]
fn cache_concurrent_pushes_of_one_key_store_one_entry() {
    if !support::require_tool("docker-registry") {
        return;
    }
    let reg = Registry::start();
    let a = small_project();
    run_ok(forge(a.path()).args(["--sandbox", "none", "build"]));
    let keys = keys(a.path());
    // Eight pushes of lib's entry at once, from one starting line.
    let url = CacheUrl::parse(&url(&reg)).unwrap();
    let cache = Cache::open(&Shell::silent(), &url).unwrap();
    let arch = std::env::consts::ARCH;
    let apk = a.path().join("out/repo").join(arch).join("lib-1.0-r0.apk");
    let config = forge::cache::EntryConfig {
        format: forge::cache::entry::FORMAT,
        unit: "lib".into(),
        version: "1.0-r0".into(),
        arch: arch.into(),
        key: keys["lib"].clone(),
        files: vec![forge::cache::describe(&apk).unwrap()],
    };
    let key = forge::sign::find_signing_key(&a.path().join("keys"))
        .unwrap()
        .unwrap();
    let gate = std::sync::Barrier::new(8);
    let digests: Vec<Digest> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| {
                    gate.wait();
                    cache
                        .store(&config, std::slice::from_ref(&apk), &key, &Shell::silent())
                        .unwrap()
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(digests.windows(2).all(|w| w[0] == w[1]), "{digests:?}");
    let client = support::registry_client(&reg.host());
    let tag = forge::cache::tag_for(&keys["lib"]).unwrap();
    let stored = client
        .manifest_digest(REPO, &tag, &push::push_scopes(REPO))
        .unwrap();
    assert_eq!(stored.as_ref(), Some(&digests[0]));

    // Two build folders pushing every unit at the same time.
    let (b, c) = (small_project(), small_project());
    let spawn = |p: &Project| {
        forge(p.path())
            .args([
                "--sandbox",
                "none",
                "--json",
                "build",
                "--cache",
                &url.to_string(),
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (rb, rc) = (spawn(&b), spawn(&c));
    for r in [
        rb.wait_with_output().unwrap(),
        rc.wait_with_output().unwrap(),
    ] {
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
        for e in cache_events(&String::from_utf8_lossy(&r.stdout)) {
            if e["result"] == "pushed" {
                let unit = e["unit"].as_str().unwrap();
                let tag = forge::cache::tag_for(&keys[unit]).unwrap();
                let now = client.manifest_digest(REPO, &tag, &push::push_scopes(REPO));
                assert_eq!(now.unwrap().unwrap().as_str(), e["digest"], "{unit}");
            }
        }
    }
    assert_eq!(repo_files(b.path()), repo_files(c.path()));
    let d = small_project();
    let (out, _) = build(d.path(), &reg, &[]);
    assert_eq!(statuses(&out), all(&UNITS, "pulled"));
    assert_eq!(repo_files(b.path()), repo_files(d.path()));
}

/// Tags in the cache repository, from the registry's storage.
fn stored_tags(reg: &Registry) -> Vec<String> {
    let dir = reg
        .storage()
        .join("docker/registry/v2/repositories")
        .join(REPO)
        .join("_manifests/tags");
    match std::fs::read_dir(dir) {
        Ok(d) => d
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Run `forge build --cache` in `root` and SIGKILL it the moment `hit`
/// says so (polled every millisecond).
fn kill_when(root: &Path, reg: &Registry, hit: &dyn Fn() -> bool) {
    let mut child =
        crash::spawn_group(forge(root).args(["--sandbox", "none", "build", "--cache", &url(reg)]));
    let deadline = Instant::now() + Duration::from_secs(60);
    while !hit() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(crash::kill_group(&mut child), "killed while running");
}

/// Every tag in the cache names a whole entry that verifies.
fn tags_name_whole_entries(reg: &Registry, root: &Path) {
    let url = CacheUrl::parse(&url(reg)).unwrap();
    let cache = Cache::open(&Shell::silent(), &url).unwrap();
    let trusted = forge::sign::TrustedKeys::load_dir(&root.join("keys")).unwrap();
    let keys = keys(root);
    let tags = stored_tags(reg);
    eprintln!("tags after the kill: {tags:?}");
    assert!(
        tags.len() < 3,
        "killed before every unit was stored: {tags:?}"
    );
    for unit in UNITS {
        if tags.contains(&forge::cache::tag_for(&keys[unit]).unwrap()) {
            let dest = tempfile::tempdir().unwrap();
            let want = Expected {
                unit,
                key: &keys[unit],
                arch: std::env::consts::ARCH,
            };
            let got = cache.fetch(&want, &trusted, dest.path()).unwrap();
            assert!(got.is_some(), "{unit}: a tag names a whole entry");
        }
    }
}

#[test]
fn cache_push_killed_part_way_publishes_nothing_half_done() {
    if !support::require_tool("docker-registry") {
        return;
    }
    let repo = |reg: &Registry| {
        reg.storage()
            .join("docker/registry/v2/repositories")
            .join(REPO)
    };
    // Killed as the first blob of the first push is linked, then as the
    // first tag is set (during the other units' pushes).
    let first_blob = |reg: &Registry| repo(reg).join("_layers").exists();
    let first_tag = |reg: &Registry| !stored_tags(reg).is_empty();
    for trigger in [&first_blob as &dyn Fn(&Registry) -> bool, &first_tag] {
        let reg = Registry::start();
        let a = small_project();
        kill_when(a.path(), &reg, &|| trigger(&reg));
        tags_name_whole_entries(&reg, a.path());
        // The re-run completes and leaves nothing temporary behind.
        let (out, _) = build(a.path(), &reg, &[]);
        assert!(statuses(&out).values().all(|s| s != "failed"));
        assert!(crash::temp_leftovers(&a.path().join("out")).is_empty());
        verify_repo(a.path());
        let b = small_project();
        let (out, _) = build(b.path(), &reg, &[]);
        assert_eq!(statuses(&out), all(&UNITS, "pulled"));
    }
}

#[test]
fn cache_unit_jobs_pull_what_they_need() {
    if !support::require_tool("docker-registry") {
        return;
    }
    let reg = Registry::start();
    // One folder per job, as on runners that share nothing.
    let lib = small_project();
    let (out, _) = build(lib.path(), &reg, &["--unit", "lib"]);
    assert_eq!(statuses(&out), all(&["lib"], "built"));
    let app = small_project();
    let (out, _) = build(app.path(), &reg, &["--unit", "app"]);
    let want: BTreeMap<String, String> = [("lib", "pulled"), ("app", "built")]
        .map(|(a, b)| (a.into(), b.into()))
        .into();
    assert_eq!(statuses(&out), want);
    // A job whose dependency's job has not run stops, naming it.
    let empty = Registry::start();
    let err = run_err(forge(small_project().path()).args([
        "--sandbox",
        "none",
        "build",
        "--cache",
        &url(&empty),
        "--unit",
        "app",
    ]));
    assert!(
        err.contains("lib") && err.contains("neither built here nor in the cache"),
        "{err}"
    );
    // Unknown units and bad cache addresses are named.
    let err = run_err(forge(app.path()).args(["build", "--cache", &url(&reg), "--unit", "nope"]));
    assert!(err.contains("no unit named `nope` in the plan"), "{err}");
    let err = run_err(forge(app.path()).args(["build", "--cache", "reg.lan/forge"]));
    assert!(
        err.contains("expected oci://HOST[:PORT]/REPOSITORY"),
        "{err}"
    );
}

#[test]
fn cache_ci_plan_gives_cached_units_no_job() {
    if !support::require_tool("docker-registry") {
        return;
    }
    let reg = Registry::start();
    let a = small_project();
    build(a.path(), &reg, &[]);
    // A fresh runner plans: everything is in the cache, only the no-op job.
    let b = small_project();
    let (doc, _) = crate::ci::ci_plan(b.path(), &["--cache", &url(&reg)]);
    assert_eq!(crate::ci::jobs(&doc), ["nothing-to-build"]);
    // A change to lib: lib and app get jobs, tool comes from the cache.
    std::fs::write(b.path().join("recipes/lib/data.txt"), "lib 2\n").unwrap();
    let (doc, _) = crate::ci::ci_plan(b.path(), &["--cache", &url(&reg)]);
    let arch = std::env::consts::ARCH;
    let job = |u: &str| format!("build:{arch}:{u}");
    assert_eq!(
        crate::ci::jobs(&doc),
        [job("app"), job("lib"), "publish".to_string()]
    );
}
