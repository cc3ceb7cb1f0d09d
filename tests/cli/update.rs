//! `forge update`: release feeds served from a loopback server (GitHub,
//! GitLab and generic RSS shapes from `tests/fixtures/update/`), apk version
//! order, skipped pre-releases and ignored versions, recipes rewritten with
//! comments intact on a one-commit branch, conditional requests on a second
//! run, and each failure kept to its own recipe.

use std::path::Path;
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::support::http::{Reply, Server};
use crate::support::{Project, forge, git_stdout, run, run_ok};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        crate::support::repo_root()
            .join("tests/fixtures/update")
            .join(name),
    )
    .unwrap()
}

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A recipe with an `[update]` table and one templated url source.
fn recipe_text(
    name: &str,
    version: &str,
    update: &str,
    url: &str,
    hex: &str,
    extra: &str,
) -> String {
    format!(
        r#"# {name}: kept up to date by forge update
schema = 1

[package]
name = "{name}"
version = "{version}"  # moved by forge update
release = 2
description = "Test {name}"
license = "MIT"
arch = ["x86_64"]
{extra}
# the upstream tarball follows the version
[[source]]
url = "{url}"
sha256 = "{hex}"
extract = false

[build]
script = "true"

[update]
{update}
"#
    )
}

fn update(root: &Path, server: &Server) -> Command {
    let mut cmd = forge(root);
    cmd.arg("update")
        .arg("--host-interval")
        .arg("0")
        .env("FORGE_GITHUB_URL", server.url("/gh"));
    for v in ["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"] {
        cmd.env_remove(v);
    }
    cmd
}

fn old_tarball(name: &str) -> Vec<u8> {
    format!("{name} old source\n").into_bytes()
}

fn new_tarball(name: &str) -> Vec<u8> {
    format!("{name} new source\n").into_bytes()
}

/// widget (GitHub releases), gadget (GitLab tags, one ignored), gizmo
/// (generic RSS), and user, which build-depends on widget.
fn three_feeds() -> (Project, Server) {
    let server = Server::start::<String>(vec![]);
    server.route(
        "/gh/acme/widget/releases.atom",
        Reply::Tagged(fixture("github-releases.atom"), "\"gh1\""),
    );
    server.route(
        "/tools/gadget/-/tags?format=atom",
        Reply::Tagged(fixture("gitlab-tags.atom"), "\"gl1\""),
    );
    server.route(
        "/gizmo.rss",
        Reply::Tagged(fixture("generic.rss"), "\"rss1\""),
    );
    for (name, new) in [("widget", "1.10.0"), ("gadget", "2.0.9"), ("gizmo", "3.0")] {
        server.route(
            format!("/dl/{name}-{new}.tar.gz"),
            Reply::Full(new_tarball(name)),
        );
    }
    let p = Project::new();
    let dl = server.url("/dl");
    let feeds = [
        ("widget", "1.9.2", "github = \"acme/widget\"".to_string()),
        (
            "gadget",
            "2.0.0",
            format!(
                "gitlab = \"{}/tools/gadget\"\nignore = [\"v2.1.0\"]",
                server.url("")
            ),
        ),
        (
            "gizmo",
            "2.9",
            format!("feed = \"{}\"", server.url("/gizmo.rss")),
        ),
    ];
    for (name, version, update) in &feeds {
        let url = format!("{dl}/{name}-${{version}}.tar.gz");
        let text = recipe_text(name, version, update, &url, &sha(&old_tarball(name)), "");
        p.write(&format!("recipes/{name}/recipe.toml"), &text);
    }
    p.recipe("user").makedepends(&["widget"]).write();
    p.commit();
    (p, server)
}

#[test]
fn updates_make_one_commit_branches_and_a_second_run_is_all_304() {
    let (p, server) = three_feeds();
    let root = p.path();
    let head = git_stdout(root, &["rev-parse", "HEAD"]);
    let before = std::fs::read_to_string(root.join("recipes/widget/recipe.toml")).unwrap();

    let (stdout, _) = run_ok(update(root, &server).arg("--json"));
    let events: Vec<serde_json::Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|v: &serde_json::Value| v["event"] == "update")
        .collect();
    let status = |n: &str| {
        events
            .iter()
            .find(|e| e["recipe"] == n)
            .map(|e| (e["status"].as_str().unwrap().to_string(), e["to"].clone()))
            .unwrap()
    };
    // apk order: 1.10.0 > 1.9.2, the release candidate skipped
    assert_eq!(status("widget"), ("proposed".into(), "1.10.0".into()));
    // v2.1.0 ignored, v2.2.0-beta.1 a pre-release
    assert_eq!(status("gadget"), ("proposed".into(), "2.0.9".into()));
    // 3.0 > 2.10 > 2.9; 3.0_rc2 skipped
    assert_eq!(status("gizmo"), ("proposed".into(), "3.0".into()));
    assert_eq!(events.len(), 3, "user has no [update]: {events:?}");

    // Nothing on the current branch or in the work tree moved.
    assert_eq!(git_stdout(root, &["rev-parse", "HEAD"]), head);
    assert_eq!(
        git_stdout(root, &["status", "--porcelain", "--untracked-files=no"]),
        ""
    );
    for (name, old, new, files) in [
        ("widget", "1.9.2", "1.10.0", 2),
        ("gadget", "2.0.0", "2.0.9", 1),
        ("gizmo", "2.9", "3.0", 1),
    ] {
        let branch = format!("update/{name}-{new}");
        assert_eq!(
            git_stdout(root, &["rev-list", "--count", &format!("{head}..{branch}")]),
            "1"
        );
        assert_eq!(
            git_stdout(root, &["rev-parse", &format!("{branch}^")]),
            head
        );
        let changed = git_stdout(root, &["diff", "--name-only", &head, &branch]);
        assert_eq!(changed.lines().count(), files, "{changed}");
        assert!(changed.contains(&format!("recipes/{name}/recipe.toml")));
        let text = git_stdout(
            root,
            &["show", &format!("{branch}:recipes/{name}/recipe.toml")],
        );
        let was = git_stdout(
            root,
            &["show", &format!("{head}:recipes/{name}/recipe.toml")],
        );
        let want = was
            .replace(
                &format!("version = \"{old}\""),
                &format!("version = \"{new}\""),
            )
            .replace("release = 2", "release = 0")
            .replace(&sha(&old_tarball(name)), &sha(&new_tarball(name)));
        assert_eq!(text, want, "comments and layout kept");
    }
    // widget's build dependent gets a release bump in the same commit.
    let user = git_stdout(
        root,
        &["show", "update/widget-1.10.0:recipes/user/recipe.toml"],
    );
    assert!(user.contains("release = 1"), "{user}");
    assert_eq!(
        std::fs::read_to_string(root.join("recipes/widget/recipe.toml")).unwrap(),
        before
    );

    // Second run: conditional requests, 304s, nothing downloaded or made.
    let first = server.requests().len();
    let branches = git_stdout(root, &["branch", "--list"]);
    let (stdout, _) = run_ok(update(root, &server).arg("--json"));
    let again: Vec<_> = server.requests()[first..].to_vec();
    assert_eq!(again.len(), 3, "{again:?}");
    for r in &again {
        assert_eq!(r.status, 304, "{r:?}");
        assert!(r.headers.iter().any(|(k, _)| k == "if-none-match"), "{r:?}");
    }
    assert_eq!(git_stdout(root, &["branch", "--list"]), branches);
    assert_eq!(
        stdout.matches("\"already-proposed\"").count(),
        3,
        "{stdout}"
    );
}

#[test]
fn dry_run_reports_and_changes_nothing() {
    let (p, server) = three_feeds();
    let root = p.path();
    let (stdout, stderr) = run_ok(update(root, &server).arg("--dry-run").arg("widget"));
    assert!(
        stderr.contains("widget 1.9.2 -> 1.10.0 on update/widget-1.10.0"),
        "{stderr}"
    );
    assert!(stderr.contains("release bumped: user"), "{stderr}");
    assert!(stdout.is_empty());
    assert_eq!(git_stdout(root, &["branch", "--list"]), "* main");
    assert!(!server.hits().iter().any(|h| h.starts_with("/dl/")));
}

/// One recipe per failure mode, plus one that works; the server and the
/// failing recipes' names.
fn failing_project(server: &Server) -> Project {
    let p = Project::new();
    let dl = server.url("/dl");
    let rss = |v: &str| -> Vec<u8> {
        format!("<rss><channel><item><title>{v}</title></item></channel></rss>").into_bytes()
    };
    server.route("/good.rss", Reply::Full(rss("2.0")));
    server.route("/dl/good-2.0.tar.gz", Reply::Full(new_tarball("good")));
    server.route("/gone.rss", Reply::Status(500, String::new(), Vec::new()));
    server.route("/slow.rss", Reply::Stall(rss("2.0"), 10));
    server.route(
        "/bad.rss",
        Reply::Full(b"<rss><channel><item><title>2.0</item>".to_vec()),
    );
    server.route("/loop.rss", Reply::Redirect(server.url("/loop.rss")));
    server.route("/huge.rss", Reply::Huge(50 << 20));
    server.route("/nodl.rss", Reply::Full(rss("2.0")));
    server.route("/badsum.rss", Reply::Full(rss("2.0")));
    server.route("/dl/badsum-2.0.tar.gz", Reply::Full(new_tarball("badsum")));
    server.route(
        "/dl/SHA256SUMS-2.0",
        Reply::Full(format!("{}  badsum-2.0.tar.gz\n", "0".repeat(64)).into_bytes()),
    );
    for name in [
        "good", "gone", "slow", "bad", "loop", "huge", "nodl", "badsum",
    ] {
        let mut update = format!("feed = \"{}\"", server.url(&format!("/{name}.rss")));
        if name == "badsum" {
            update.push_str(&format!("\nchecksums = \"{dl}/SHA256SUMS-${{version}}\""));
        }
        let url = format!("{dl}/{name}-${{version}}.tar.gz");
        let text = recipe_text(name, "1.0", &update, &url, &sha(&old_tarball(name)), "");
        p.write(&format!("recipes/{name}/recipe.toml"), &text);
    }
    p.commit();
    p
}

#[test]
fn each_failure_is_reported_against_its_recipe_and_the_others_proceed() {
    let server = Server::start::<String>(vec![]);
    let p = failing_project(&server);
    let root = p.path();
    let head = git_stdout(root, &["rev-parse", "HEAD"]);
    let out =
        run(update(root, &server).args(["--feed-timeout", "2", "--max-feed-size", "1048576"]));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    for (name, why) in [
        ("gone", "HTTP 500"),
        ("slow", "timed out"),
        ("bad", "malformed XML"),
        ("loop", "redirect"),
        ("huge", "larger than 1048576 bytes"),
        ("nodl", "404"),
        ("badsum", "checksum"),
    ] {
        let line = stderr
            .lines()
            .find(|l| l.contains(&format!("recipe `{name}`")))
            .unwrap_or_else(|| panic!("no error for {name}: {stderr}"));
        assert!(
            line.contains(&server.url(&format!("/{name}.rss"))),
            "{line}"
        );
        assert!(
            line.to_lowercase().contains(&why.to_lowercase()),
            "{name}: {line}"
        );
    }
    // The good recipe was updated; no other branch; HEAD and the work tree as they were.
    assert_eq!(
        git_stdout(root, &["branch", "--list"]),
        "* main\n  update/good-2.0"
    );
    assert_eq!(git_stdout(root, &["rev-parse", "HEAD"]), head);
    assert_eq!(
        git_stdout(root, &["status", "--porcelain", "--untracked-files=no"]),
        ""
    );
    // No distfile for the mismatching download was kept.
    let cache = root.join(".forge-cache/distfiles/sha256");
    assert!(!cache.join(sha(&new_tarball("badsum"))).exists());
}

#[test]
fn lint_checks_the_update_section() {
    let p = Project::new();
    let text = recipe_text(
        "w",
        "1.0",
        "github = \"not a repo\"\nfeed = \"https://x.org/f\"\nregexp = \"x\"",
        "https://x.org/w-1.0.tar.gz",
        &"0".repeat(64),
        "",
    );
    p.write("recipes/w/recipe.toml", &text);
    let out = run(forge(p.path()).arg("lint"));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("recipes/w/recipe.toml:"), "{stderr}");
    assert!(
        stderr.contains("unknown field `regexp` in [update], did you mean `regex`?"),
        "{stderr}"
    );
    assert!(stderr.contains("has both `github` and `feed`"), "{stderr}");
    assert!(stderr.contains("does not contain `${version}`"), "{stderr}");
}

/// Figures for docs and reports (run by hand, release build recommended):
/// `cargo test --release --test cli update::figures -- --ignored --nocapture`.
/// 1,000 recipes' feeds against one loopback server, a first run and a
/// second one answered only by 304s; and the peak memory (max RSS, from
/// `/usr/bin/time -v`) of a run whose one feed is a 50 MB body.
#[test]
#[ignore = "a measurement, run by hand"]
fn figures() {
    let server = Server::start::<String>(vec![]);
    let p = Project::new();
    let rss = b"<rss><channel><item><title>1.0</title></item><item><title>0.9</title></item></channel></rss>";
    for i in 0..1000 {
        let name = format!("r{i}");
        server.route(
            format!("/f/{name}.rss"),
            Reply::Tagged(rss.to_vec(), "\"v1\""),
        );
        let update = format!("feed = \"{}\"", server.url(&format!("/f/{name}.rss")));
        let url = format!("{}/dl/{name}-${{version}}.tar.gz", server.url(""));
        let text = recipe_text(&name, "1.0", &update, &url, &"0".repeat(64), "");
        p.write(&format!("recipes/{name}/recipe.toml"), &text);
    }
    p.commit();
    for run_no in 1..=2 {
        let t = std::time::Instant::now();
        let (stdout, _) = run_ok(update(p.path(), &server).arg("--json"));
        let secs = t.elapsed().as_secs_f64();
        let status = if run_no == 1 {
            "up-to-date"
        } else {
            "not-modified"
        };
        assert_eq!(stdout.matches(status).count(), 1000, "run {run_no}");
        eprintln!("FIGURE run {run_no}: 1000 feeds in {secs:.2}s ({status})");
    }
    let statuses: Vec<u16> = server.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 304).count(), 1000);

    server.route("/huge.rss", Reply::Huge(50 << 20));
    let q = Project::new();
    let update_line = format!("feed = \"{}\"", server.url("/huge.rss"));
    let text = recipe_text(
        "h",
        "1.0",
        &update_line,
        "https://x.invalid/h-${version}.tar.gz",
        &"0".repeat(64),
        "",
    );
    q.write("recipes/h/recipe.toml", &text);
    q.commit();
    let out = Command::new("/usr/bin/time")
        .arg("-v")
        .arg(crate::support::forge_bin())
        .args(["update", "--host-interval", "0"])
        .current_dir(q.path())
        .env("FORGE_CACHE_DIR", q.path().join(".forge-cache"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("larger than"), "{err}");
    let rss = err
        .lines()
        .find(|l| l.contains("Maximum resident set size"))
        .unwrap_or_default();
    eprintln!("FIGURE 50 MB feed body: refused; {}", rss.trim());
}
