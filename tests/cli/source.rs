//! `forge fetch`: downloads from a loopback HTTP server, checksum and
//! interruption handling, mirrors and offline errors, git sources.

use std::net::TcpListener;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::support::http::{Reply, Server};
use crate::support::{self, forge, run_err, run_ok, write};

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Deterministic, incompressible test bytes.
fn body(len: usize) -> Vec<u8> {
    support::noise(1, len)
}

/// A recipe `NAME` whose sources are the given `[[source]]` tables.
fn recipe(root: &Path, name: &str, sources: &str) {
    support::RecipeBuilder::new(root, name).raw(sources).write();
}

fn http_source(url: &str, sha: &str) -> String {
    format!("[[source]]\nurl = \"{url}\"\nsha256 = \"{sha}\"\n")
}

fn cached(root: &Path, hex: &str) -> PathBuf {
    root.join(".forge-cache/distfiles/sha256").join(hex)
}

/// Every file under the distfile cache (including stray temporary files).
fn cache_files(root: &Path) -> Vec<PathBuf> {
    let dir = root.join(".forge-cache/distfiles");
    if !dir.exists() {
        return Vec::new();
    }
    walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| !e.file_type().is_dir())
        .map(|e| e.into_path())
        .collect()
}

fn no_proxy(cmd: &mut std::process::Command) -> &mut std::process::Command {
    for v in [
        "http_proxy",
        "HTTP_PROXY",
        "https_proxy",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
    ] {
        cmd.env_remove(v);
    }
    cmd
}

#[test]
fn downloads_once_then_serves_from_cache_offline() {
    let data = body(300_000);
    let hex = sha256_hex(&data);
    let server = Server::start(vec![("/dl-1.0.tar.gz", Reply::Full(data.clone()))]);
    let p = support::project();
    recipe(
        p.path(),
        "dl",
        &http_source(&server.url("/dl-1.0.tar.gz"), &hex),
    );
    run_ok(no_proxy(forge(p.path()).args(["fetch", "dl"])));
    assert_eq!(std::fs::read(cached(p.path(), &hex)).unwrap(), data);
    assert_eq!(server.hits(), ["/dl-1.0.tar.gz"]);
    // Cached: neither upstream nor --offline needs the network again.
    run_ok(no_proxy(forge(p.path()).args(["--offline", "fetch"])));
    run_ok(no_proxy(forge(p.path()).args(["fetch"])));
    assert_eq!(server.hits().len(), 1, "{:?}", server.hits());
    assert_eq!(cache_files(p.path()), [cached(p.path(), &hex)]);
}

#[test]
fn wrong_checksum_shows_both_digests_and_caches_nothing() {
    let data = body(10_000);
    let actual = sha256_hex(&data);
    let expected = sha256_hex(b"something else");
    let server = Server::start(vec![("/bad.tar.gz", Reply::Full(data))]);
    let p = support::project();
    let url = server.url("/bad.tar.gz");
    recipe(p.path(), "bad", &http_source(&url, &expected));
    let err = run_err(no_proxy(forge(p.path()).args(["fetch"])));
    assert!(
        err.contains(&format!("expected: sha256:{expected}")),
        "{err}"
    );
    assert!(err.contains(&format!("actual: sha256:{actual}")), "{err}");
    assert!(err.contains(&url), "{err}");
    assert!(err.contains("recipe bad"), "{err}");
    assert_eq!(cache_files(p.path()), Vec::<PathBuf>::new());
}

#[test]
fn interrupted_download_leaves_nothing_in_the_cache() {
    let data = body(200_000);
    let hex = sha256_hex(&data);
    let server = Server::start(vec![("/cut.tar.gz", Reply::Truncated(data, 50_000))]);
    let p = support::project();
    let url = server.url("/cut.tar.gz");
    recipe(p.path(), "cut", &http_source(&url, &hex));
    let err = run_err(no_proxy(forge(p.path()).args(["fetch"])));
    assert!(err.contains(&format!("downloading {url}")), "{err}");
    assert!(!err.contains("checksum mismatch"), "{err}");
    assert_eq!(cache_files(p.path()), Vec::<PathBuf>::new());
    assert!(!cached(p.path(), &hex).exists());
}

#[test]
fn killed_download_leaves_no_address_and_a_rerun_succeeds() {
    let data = body(400_000);
    let hex = sha256_hex(&data);
    let server = Server::start(vec![
        ("/k.tar.gz", Reply::Stall(data.clone(), 100_000)),
        ("/k.tar.gz", Reply::Full(data.clone())),
    ]);
    let p = support::project();
    recipe(p.path(), "k", &http_source(&server.url("/k.tar.gz"), &hex));
    let mut child = no_proxy(forge(p.path()).args(["fetch"]))
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until forge holds a partial download, then kill it.
    let parts = p.path().join(".forge-cache/distfiles/sha256");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let partial = std::fs::read_dir(&parts)
            .map(|d| d.flatten().any(|e| e.metadata().is_ok_and(|m| m.len() > 0)))
            .unwrap_or(false);
        if partial {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no partial download appeared"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        !cached(p.path(), &hex).exists(),
        "a killed download has an address"
    );
    let leftovers = cache_files(p.path());
    assert!(
        leftovers.iter().all(|f| f
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(".part-")),
        "{leftovers:?}"
    );
    run_ok(no_proxy(forge(p.path()).args(["fetch"])));
    assert_eq!(std::fs::read(cached(p.path(), &hex)).unwrap(), data);
    assert_eq!(server.hits(), ["/k.tar.gz", "/k.tar.gz"]);
}

#[test]
fn offline_uses_a_mirror_folder_by_name_and_by_address() {
    let a = body(5_000);
    let b = body(7_000);
    let (ha, hb) = (sha256_hex(&a), sha256_hex(&b));
    let p = support::project();
    let mirror = p.path().join("mirror");
    std::fs::create_dir_all(mirror.join("sha256")).unwrap();
    std::fs::write(mirror.join("a-1.0.tar.gz"), &a).unwrap();
    std::fs::write(mirror.join("sha256").join(&hb), &b).unwrap();
    // Port 9 on loopback: nothing listens, so a contact would fail loudly.
    let sources = http_source("http://127.0.0.1:9/dist/a-1.0.tar.gz", &ha)
        + &http_source("http://127.0.0.1:9/dist/b-1.0.tar.gz", &hb);
    recipe(p.path(), "m", &sources);
    let mirror_arg = mirror.display().to_string();
    run_ok(no_proxy(forge(p.path()).args([
        "--offline",
        "--mirror",
        &mirror_arg,
        "fetch",
        "m",
    ])));
    assert_eq!(std::fs::read(cached(p.path(), &ha)).unwrap(), a);
    assert_eq!(std::fs::read(cached(p.path(), &hb)).unwrap(), b);
}

#[test]
fn offline_missing_source_is_named() {
    let hex = sha256_hex(b"never seen");
    let p = support::project();
    let mirror = p.path().join("empty-mirror");
    std::fs::create_dir_all(&mirror).unwrap();
    let url = "https://example.org/dist/gone-2.1.tar.xz";
    recipe(p.path(), "gone", &http_source(url, &hex));
    let mirror_arg = mirror.display().to_string();
    let err = run_err(forge(p.path()).args(["--offline", "--mirror", &mirror_arg, "fetch"]));
    for part in [
        "source gone-2.1.tar.xz of recipe gone is not available offline",
        &format!("url: {url}"),
        &format!("checksum: sha256:{hex}"),
        &cached(p.path(), &hex).display().to_string(),
        &mirror.join("gone-2.1.tar.xz").display().to_string(),
        &mirror.join("sha256").join(&hex).display().to_string(),
    ] {
        assert!(err.contains(part), "missing `{part}` in: {err}");
    }
}

#[test]
fn unknown_recipe_name_is_an_error() {
    let p = support::project();
    recipe(p.path(), "alpha", "");
    let err = run_err(forge(p.path()).args(["fetch", "alpah"]));
    assert!(
        err.contains("no recipe named `alpah`") && err.contains("did you mean `alpha`?"),
        "{err}"
    );
}

#[test]
fn git_source_from_a_local_repository() {
    if !support::require_tool("git") {
        return;
    }
    let p = support::project();
    let up = p.path().join("upstream");
    write(&up, "src/main.c", "int main(void){return 0;}\n");
    support::git_commit_all(&up, "2020-01-01T00:00:00Z");
    let out = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(&up)
        .output()
        .unwrap();
    let commit = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let source = |commit: &str| {
        format!(
            "[[source]]\ngit = \"file://{}\"\ncommit = \"{commit}\"\n",
            up.display()
        )
    };
    recipe(p.path(), "g", &source(&commit));
    run_ok(forge(p.path()).args(["fetch", "g"]));
    let git_cache = p.path().join(".forge-cache/git");
    let repos: Vec<_> = std::fs::read_dir(&git_cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(repos.len(), 1, "{repos:?}");
    assert!(repos[0].join("HEAD").exists(), "a bare repository");
    // Offline: the cached commit suffices; an unknown commit is named.
    run_ok(forge(p.path()).args(["--offline", "fetch", "g"]));
    let other = "0123456789abcdef0123456789abcdef01234567";
    recipe(p.path(), "g", &source(other));
    let err = run_err(forge(p.path()).args(["--offline", "fetch", "g"]));
    assert!(
        err.contains(other) && err.contains("recipe g") && err.contains("offline"),
        "{err}"
    );
}

/// Kills the `openssl s_server` this test started when the test ends.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn https_with_an_untrusted_certificate_is_refused() {
    if !support::require_tool("openssl") {
        return;
    }
    let p = support::project();
    let (key, cert) = (p.path().join("key.pem"), p.path().join("cert.pem"));
    let st = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args([
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-addext",
            "basicConstraints=critical,CA:FALSE",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "openssl req");
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _server = Child(
        std::process::Command::new("openssl")
            .args(["s_server", "-quiet", "-www", "-accept"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("-cert")
            .arg(&cert)
            .arg("-key")
            .arg(&key)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "s_server did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let url = format!("https://127.0.0.1:{port}/t-1.0.tar.gz");
    recipe(p.path(), "t", &http_source(&url, &sha256_hex(b"t")));
    let err = run_err(no_proxy(forge(p.path()).args(["fetch"])));
    assert!(err.contains(&format!("downloading {url}")), "{err}");
    // Verified against the built-in roots, which do not know this issuer.
    assert!(
        err.contains("invalid peer certificate: UnknownIssuer"),
        "{err}"
    );
    assert_eq!(cache_files(p.path()), Vec::<PathBuf>::new());
}
