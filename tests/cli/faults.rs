//! Fault tests: `forge build` and `forge publish` killed with SIGKILL at
//! random points, and `forge build` on a disk that fills up part-way.
//!
//! After every fault the next run completes, and what it leaves verifies:
//! the repository with `forge verify` (the signed index and every package it
//! names), the registry with `forge verify-image` and `forge pull-repo`. No
//! temporary or half-written file stays in `out/`. Kill delays come from a
//! seeded generator whose seed is printed (`FORGE_TEST_SEED` replays a run).
//!
//! Real apk-tools is not installed in CI, so "verifies" means forge's own
//! verifier here; tests/cli/apk.rs checks that verifier against apk-tools
//! where apk is available.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::{self, Project, Registry, Rng, crash, forge, forge_signing, run, run_ok};

/// Kills per test: enough to land in every phase of a run of a second or two.
const TRIALS: u64 = 20;

/// Every file under `dir` with its bytes' SHA-256 (relative names).
fn tree_digests(dir: &Path) -> BTreeMap<PathBuf, String> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            let rel = e.path().strip_prefix(dir).unwrap().to_path_buf();
            let bytes = std::fs::read(e.path()).unwrap();
            (rel, forge::oci::Digest::of(&bytes).as_str().to_string())
        })
        .collect()
}

/// No temporary names (`.tmp*`, `*.part`, `.staging`…) anywhere below `out`.
fn assert_no_leftovers(out: &Path, when: &str) {
    let left = crash::temp_leftovers(out);
    assert!(left.is_empty(), "{when}: temporary files left: {left:?}");
}

/// What a completed build leaves: a verified repository, no temp files, and
/// the same bytes as an uninterrupted build (`want`).
fn assert_complete_build(root: &Path, want: &BTreeMap<PathBuf, String>, when: &str) {
    let repo = root.join("out/repo");
    support::verify_repo(root);
    assert_no_leftovers(&root.join("out"), when);
    assert_eq!(&tree_digests(&repo), want, "{when}: repository differs");
}

/// `forge build` of the examples (hello, libgreet, greet and the hello
/// image), SIGKILLed at a random moment, 20 times: from an empty `out/` on
/// even trials and with `--force` over a complete one on odd trials. After
/// each kill the repository verifies as it stands, and the next run
/// completes with the bytes of an uninterrupted build.
#[test]
fn faults_kill_build_at_random_points() {
    if !support::require_bwrap() {
        return;
    }
    let p = Project::examples();
    let root = p.path();
    // How long each kind of run takes bounds its kill delays.
    let timed = |args: &[&str]| {
        let t0 = Instant::now();
        run_ok(forge(root).args(args));
        t0.elapsed().as_millis() as u64
    };
    let fresh_ms = timed(&["build"]);
    let force_ms = timed(&["build", "--force", "hello", "libgreet", "greet"]);
    let want = tree_digests(&root.join("out/repo"));
    let image = std::fs::read(root.join("out/images/hello/index.json")).unwrap();

    let mut rng = Rng::from_env("faults_kill_build_at_random_points");
    let mut killed_running = 0;
    for trial in 0..TRIALS {
        let (args, ms): (&[&str], u64) = if trial % 2 == 0 {
            std::fs::remove_dir_all(root.join("out")).unwrap();
            (&["build"], fresh_ms)
        } else {
            (
                &["build", "--force", "hello", "libgreet", "greet"],
                force_ms,
            )
        };
        // Up to 90% of a run: most kills land while it works.
        let delay = Duration::from_millis(rng.below(ms * 9 / 10 + 1));
        let hit = crash::run_and_kill(forge(root).args(args), delay);
        eprintln!("trial {trial}: {args:?} killed after {delay:?} (running: {hit})");
        killed_running += hit as u32;
        support::verify_repo_as_left(root);
        run_ok(forge(root).arg("build"));
        assert_complete_build(root, &want, &format!("trial {trial}"));
        assert_eq!(
            std::fs::read(root.join("out/images/hello/index.json")).unwrap(),
            image,
            "trial {trial}: the image differs"
        );
    }
    assert!(
        killed_running >= TRIALS as u32 / 4,
        "only {killed_running} kills hit a running build; the delays miss"
    );
}

/// A registry client's view of a published example project: the signed
/// image verifies and the package repository pulls and verifies.
fn assert_published(root: &Path, target: &str, when: &str) {
    let image = format!("{target}/hello:latest");
    let out = run(forge(root)
        .args(["verify-image", "--insecure", &image, "--key"])
        .arg(support::cosign_fixture("kat.pub")));
    assert!(out.status.success(), "{when}: verify-image {image} failed");
    let pulled = tempfile::tempdir().unwrap();
    let out = run(forge(root)
        .args([
            "pull-repo",
            "--insecure",
            &format!("{target}/packages:latest"),
            "--out",
        ])
        .arg(pulled.path()));
    assert!(out.status.success(), "{when}: pull-repo failed");
    assert_eq!(
        tree_digests(pulled.path()),
        tree_digests(&root.join("out/repo")),
        "{when}: the pulled repository differs"
    );
}

/// `forge publish --repo` of the built examples, SIGKILLed at a random
/// moment, 20 times: into an emptied registry on even trials, into a new
/// repository of the same registry (blob mounts) on odd ones. After each kill
/// the next publish completes, the image verifies and the package repository
/// pulls intact.
#[test]
fn faults_kill_publish_at_random_points() {
    if !support::require_tool("docker-registry") || !support::require_bwrap() {
        return;
    }
    let p = Project::examples();
    let root = p.path();
    run_ok(forge(root).arg("build"));
    let mut reg = Registry::start();
    let publish = |target: &str| {
        let mut c = forge_signing(root);
        c.args(["publish", "--insecure", "--repo", "--registry", target]);
        c
    };
    let t0 = Instant::now();
    run_ok(&mut publish(&format!("{}/warmup", reg.host())));
    let full = t0.elapsed().as_millis() as u64;

    let mut rng = Rng::from_env("faults_kill_publish_at_random_points");
    let mut killed_running = 0;
    for trial in 0..TRIALS {
        if trial % 2 == 0 {
            reg.reset();
        }
        let target = format!("{}/t{trial}", reg.host());
        let delay = Duration::from_millis(rng.below(full * 9 / 10 + 1));
        eprintln!("trial {trial}: publish to {target} killed after {delay:?}");
        killed_running += crash::run_and_kill(&mut publish(&target), delay) as u32;
        run_ok(&mut publish(&target));
        assert_published(root, &target, &format!("trial {trial}"));
        assert_no_leftovers(&root.join("out"), &format!("trial {trial}"));
    }
    assert!(
        killed_running >= TRIALS as u32 / 4,
        "only {killed_running} kills hit a running publish; the delays miss"
    );
}

/// A project with a tiny recipe `small` and a recipe `big` whose package
/// holds `kib` KiB of incompressible bytes.
fn disk_project(kib: u64) -> Project {
    let p = Project::new();
    p.recipe("small")
        .arch(&["noarch"])
        .script("mkdir -p \"$pkgdir/usr/share/small\"; echo small > \"$pkgdir/usr/share/small/x\"")
        .write();
    p.recipe("big")
        .arch(&["noarch"])
        .script(&format!(
            "mkdir -p \"$pkgdir/usr/share/big\"\n\
             head -c {} /dev/urandom > \"$pkgdir/usr/share/big/blob\"",
            kib * 1024
        ))
        .write();
    p.key().commit();
    p
}

/// The shell run inside a private mount namespace: mount a tmpfs of `$2`
/// KiB on `$1`, copy the folder `$3` of the project there (when it exists),
/// run forge (the remaining arguments), then copy the whole tmpfs to `$4` on
/// the real disk for inspection. Exit 90+ means the set-up failed, else it is
/// forge's status.
const FULL_DISK_SCRIPT: &str = r#"
mnt=$1; size=$2; seed=$3; copy=$4; shift 4
mount -t tmpfs -o "size=${size}k" tmpfs "$mnt" || exit 90
if [ -e "$seed" ]; then cp -a "$seed" "$mnt/" || exit 91; fi
"$@"; rc=$?
mkdir -p "$copy" && cp -a "$mnt/." "$copy" || exit 92
exit $rc
"#;

/// One forge run on a full disk, seen from outside the namespace.
struct DiskRun {
    /// forge's exit code.
    code: i32,
    /// forge's stderr, the mount point written as `$MNT`.
    stderr: String,
    /// A copy of the tmpfs after the run.
    copy: PathBuf,
}

/// Run forge with `args` (where `{mnt}` stands for the mount point) on a
/// tmpfs of `size_kib` KiB seeded with the project's folder `seed`.
fn on_tmpfs(root: &Path, scratch: &Path, size_kib: u64, seed: &str, args: &[&str]) -> DiskRun {
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mnt = scratch.join(format!("mnt-{n}-{size_kib}k"));
    let copy = scratch.join(format!("copy-{n}-{size_kib}k"));
    std::fs::create_dir_all(&mnt).unwrap();
    let m = mnt.to_str().unwrap();
    let size = size_kib.to_string();
    let c = copy.to_str().unwrap();
    let wrapper = [
        "unshare",
        "-m",
        "sh",
        "-c",
        FULL_DISK_SCRIPT,
        "sh",
        m,
        &size,
        seed,
        c,
    ];
    let args: Vec<String> = args.iter().map(|a| a.replace("{mnt}", m)).collect();
    let out = run(support::forge_under(&wrapper, root).args(&args));
    let code = out.status.code().unwrap_or(-1);
    assert!(code < 90, "the tmpfs set-up failed ({code})");
    let stderr = String::from_utf8_lossy(&out.stderr).replace(m, "$MNT");
    DiskRun { code, stderr, copy }
}

/// Disk usage of a tree in KiB, as a tmpfs counts it (whole pages).
fn usage_kib(dir: &Path) -> u64 {
    let out = Command::new("du").args(["-sk"]).arg(dir).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace().next().unwrap().parse().unwrap()
}

/// The names in a verified index.
fn index_names(root: &Path, index: &Path) -> Vec<String> {
    let trusted = forge::sign::TrustedKeys::load_dir(&root.join("keys")).unwrap();
    forge::apk::index::Index::read(index, &trusted)
        .unwrap()
        .entries
        .into_iter()
        .map(|e| e.name)
        .collect()
}

/// Check one `forge build small big` on a full disk: success, or a clear
/// ENOSPC error with nothing half-written, the old index intact or replaced
/// by a complete one, and a next run (with room) that completes. Returns
/// whether the build succeeded and forge's error line, if any.
fn check_full_disk_build(root: &Path, r: &DiskRun, old_index: &[u8]) -> (bool, Option<String>) {
    let when = format!("{}", r.copy.display());
    let out = r.copy.join("out");
    assert_no_leftovers(&out, &when);
    let index = out
        .join("repo")
        .join(std::env::consts::ARCH)
        .join("APKINDEX.tar.gz");
    run_ok(forge(root).arg("verify").arg(&index));
    if r.code == 0 {
        return (true, None);
    }
    assert!(
        r.stderr.contains("No space left on device"),
        "{when}: the error does not say the disk is full:\n{}",
        r.stderr
    );
    let names = index_names(root, &index);
    let now = std::fs::read(&index).unwrap();
    assert!(
        now == old_index || names.contains(&"big".to_string()),
        "{when}: the index changed but does not hold big: {names:?}"
    );
    for apk in std::fs::read_dir(index.parent().unwrap()).unwrap() {
        let apk = apk.unwrap().path();
        if apk.extension().is_some_and(|e| e == "apk") {
            run_ok(forge(root).arg("verify").arg(&apk));
        }
    }
    // With room again, the next run completes from what is left.
    let args = ["build", "small", "big"];
    run_ok(forge(root).arg("--out").arg(&out).args(args));
    run_ok(forge(root).arg("verify").arg(&index));
    let line = r.stderr.lines().find(|l| l.starts_with("error:"));
    (false, line.map(str::to_string))
}

/// `forge build` with `--out` on a tmpfs too small for the next package:
/// first a sweep of sizes, then a bisection down to the page where the build
/// just fits, so that space runs out in every step (build script, package,
/// index, state). Each run either succeeds or fails with a clear error
/// (ENOSPC with the path it could not write); nothing is half-written; the
/// old index is intact or replaced by a complete one; once there is room,
/// the next run completes.
#[test]
fn faults_full_disk_build_fails_cleanly() {
    if !support::require_private_mounts() || !support::require_bwrap() {
        return;
    }
    const BIG_KIB: u64 = 1024;
    let p = disk_project(BIG_KIB);
    let root = p.path();
    run_ok(forge(root).args(["build", "small"]));
    let arch = std::env::consts::ARCH;
    let old_index =
        std::fs::read(root.join("out/repo").join(arch).join("APKINDEX.tar.gz")).unwrap();
    let base = usage_kib(&root.join("out")) + 64;
    let scratch = tempfile::tempdir().unwrap();
    let mut errors = std::collections::BTreeSet::new();
    let mut attempt = |size: u64| {
        let args = ["--out", "{mnt}/out", "build", "small", "big"];
        let r = on_tmpfs(root, scratch.path(), size, "out", &args);
        let (ok, error) = check_full_disk_build(root, &r, &old_index);
        errors.extend(error);
        ok
    };
    // The big package needs about BIG_KIB in $pkgdir and again in the .apk.
    let (mut lo, mut hi) = (base, base + 4 * BIG_KIB);
    assert!(!attempt(lo), "the build fits in {lo} KiB");
    assert!(attempt(hi), "the build does not fit in {hi} KiB");
    for extra in (BIG_KIB / 2..4 * BIG_KIB).step_by((BIG_KIB / 2) as usize) {
        if attempt(base + extra) {
            hi = hi.min(base + extra);
        } else {
            lo = lo.max(base + extra);
        }
    }
    while hi - lo > 4 {
        let mid = (lo + hi) / 2;
        if attempt(mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    eprintln!("the build fits from {hi} KiB; errors seen:\n{errors:#?}");
    assert!(
        errors
            .iter()
            .any(|e| e.contains("$MNT/out/") && e.contains("No space left")),
        "no size made forge itself report ENOSPC with the path it was writing: {errors:#?}"
    );
}

/// `forge fetch` into a distfile cache on a tmpfs too small for the
/// download: a clear ENOSPC error naming the cache, and no partial file left
/// under any name (the checksum address stays absent).
#[test]
fn faults_full_disk_fetch_leaves_no_partial_distfile() {
    if !support::require_private_mounts() {
        return;
    }
    let p = Project::new();
    let root = p.path();
    let bytes = support::noise(9, 1 << 20);
    let hex = forge::oci::Digest::of(&bytes).hex().to_string();
    let mirror = root.join("mirror");
    std::fs::create_dir_all(&mirror).unwrap();
    std::fs::write(mirror.join("dl.bin"), &bytes).unwrap();
    p.recipe("dl")
        .raw(&format!(
            "[[source]]\nurl = \"https://example.org/dl.bin\"\nsha256 = \"{hex}\"\n"
        ))
        .write();
    let scratch = tempfile::tempdir().unwrap();
    let mirror = mirror.to_str().unwrap();
    let args = [
        "--offline",
        "--mirror",
        mirror,
        "--cache-dir",
        "{mnt}/cache",
        "fetch",
        "dl",
    ];
    let r = on_tmpfs(root, scratch.path(), 512, "no-seed", &args);
    assert_ne!(r.code, 0, "a 1 MiB download fitted in 512 KiB");
    assert!(
        r.stderr.contains("No space left on device") && r.stderr.contains("$MNT/cache"),
        "the error names neither ENOSPC nor the cache:\n{}",
        r.stderr
    );
    let files: Vec<PathBuf> = walkdir::WalkDir::new(&r.copy)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| e.into_path())
        .collect();
    assert!(files.is_empty(), "files left in the cache: {files:?}");
    // With room, the same fetch stores it under its address.
    let r = on_tmpfs(root, scratch.path(), 4096, "no-seed", &args);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let stored = r.copy.join("cache/distfiles/sha256").join(&hex);
    assert_eq!(std::fs::read(stored).unwrap(), bytes);
}
