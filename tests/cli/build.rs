//! The sandboxed build stage, through the library API (`forge::build::run`):
//! the sandbox has no network, cannot write to the host, and two builds of the
//! same recipe from different folders at different times stage identical
//! trees.

use std::io::ErrorKind;
use std::net::TcpListener;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use forge::build::{self, BuildError, BuildRequest, Staged};
use forge::recipe::Recipe;
use forge::settings::{SandboxMode, Settings};

use crate::support;

const EPOCH: i64 = 1_600_000_000;

/// A recipe `name` under `root/recipes/` with local sources `files`,
/// written as TOML and loaded as forge loads any recipe.
fn recipe(root: &Path, name: &str, files: &[(&str, &str)], script: &str) -> Recipe {
    let mut b = support::RecipeBuilder::new(root, name);
    for (f, text) in files {
        b.source(f, text);
    }
    forge::recipe::load(&b.script(script).write()).unwrap()
}

/// The repository's `recipes/hello`, copied into `root/recipes/hello` and
/// loaded from there.
fn hello(root: &Path) -> Recipe {
    let dir = root.join("recipes/hello");
    support::copy_tree(&support::repo_root().join("recipes/hello"), &dir);
    forge::recipe::load(&dir.join("recipe.toml")).unwrap()
}

fn build(root: &Path, recipe: &Recipe) -> Result<Staged, BuildError> {
    let settings = Settings::for_root(root);
    assert_eq!(settings.sandbox, SandboxMode::Bwrap);
    build::run(&BuildRequest {
        settings: &settings,
        recipe,
        source_date_epoch: EPOCH,
        arch: "x86_64".into(),
        deps_root: None,
        hermetic: None,
    })
}

#[test]
fn build_sandbox_has_no_network() {
    if !support::require_bwrap() || !support::require_tool("bash") {
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let script = format!(
        "mkdir -p \"$pkgdir\"\nbash -c 'exec 3<>/dev/tcp/127.0.0.1/{port}'\necho connected\n"
    );
    let project = support::project();

    let r = recipe(project.path(), "netprobe", &[("a", "")], &script);
    let err = build(project.path(), &r).unwrap_err();
    let (log, tail) = err.log_tail().expect("the build step fails");
    assert!(log.ends_with("out/logs/netprobe.log"));
    assert!(!tail.iter().any(|l| l == "connected"), "{tail:?}");
    match listener.accept() {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        other => panic!("the sandbox reached the host listener: {other:?}"),
    }

    // Control: the `net` option shares the host network, and the same step
    // connects; so the failure above came from the sandbox.
    let mut r = r;
    r.options.net = true;
    build(project.path(), &r).unwrap();
    let log = std::fs::read_to_string(project.path().join("out/logs/netprobe.log")).unwrap();
    assert!(log.contains("connected\n"), "{log}");
    listener.set_nonblocking(false).unwrap();
    listener.accept().expect("the net build connected");
}

#[test]
fn build_sandbox_cannot_write_to_the_host() {
    if !support::require_bwrap() {
        return;
    }
    let project = support::project();
    let unique = format!("forge-escape-{}", std::process::id());
    let host_home = PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into()));
    let targets: Vec<PathBuf> = vec![
        project.path().join("escaped"),
        project.path().join("recipes/escape/escaped"),
        std::env::temp_dir().join(&unique),
        host_home.join(&unique),
        PathBuf::from("/usr").join(&unique),
        PathBuf::from("/var/tmp").join(&unique),
    ];
    let mut script = String::from("mkdir -p \"$pkgdir\"\n");
    for t in &targets {
        let t = t.display();
        script.push_str(&format!(
            "mkdir -p \"$(dirname '{t}')\" 2>/dev/null || true\n\
             echo escaped > '{t}' 2>/dev/null && echo \"wrote {t} (inside the sandbox)\" || true\n"
        ));
    }
    script.push_str("echo ran > \"$pkgdir/ran\"\n");
    let r = recipe(project.path(), "escape", &[("a", "")], &script);
    let staged = build(project.path(), &r).unwrap();
    // The script ran to its end ...
    assert_eq!(
        std::fs::read_to_string(staged.packages[0].root.join("ran")).unwrap(),
        "ran\n"
    );
    // ... writes under /tmp landed in the sandbox's own /tmp (out/work/NAME/tmp),
    // the others failed (read-only root) ...
    let log = std::fs::read_to_string(project.path().join("out/logs/escape.log")).unwrap();
    let wrote: Vec<&str> = log.lines().filter(|l| l.starts_with("wrote ")).collect();
    let want: Vec<String> = targets
        .iter()
        .filter(|t| t.starts_with("/tmp"))
        .map(|t| format!("wrote {} (inside the sandbox)", t.display()))
        .collect();
    assert_eq!(
        want.len(),
        3,
        "the test expects its temp folders under /tmp"
    );
    assert_eq!(wrote, want, "{log}");
    // ... and nothing it wrote reached the host.
    for t in &targets {
        assert!(!t.exists(), "{} was written on the host", t.display());
    }
    let mut recipe_files: Vec<String> = std::fs::read_dir(project.path().join("recipes/escape"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    recipe_files.sort();
    assert_eq!(recipe_files, ["a", "recipe.toml"]);
}

#[test]
fn build_is_reproducible_across_folders_and_times() {
    if !support::require_bwrap() || !support::require_tool("cc") || !support::require_tool("make") {
        return;
    }
    let first = support::project();
    let r1 = hello(first.path());
    let s1 = build(first.path(), &r1).unwrap();

    // A second copy elsewhere, with different source mtimes, built later.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let second = tempfile::Builder::new()
        .prefix("forge-other-place-")
        .tempdir()
        .unwrap();
    let r2 = hello(second.path());
    let st = std::process::Command::new("touch")
        .args(["-d", "2001-02-03 04:05:06"])
        .args(["Makefile", "hello.c", "hello.h", "hello.1"])
        .current_dir(&r2.dir)
        .status()
        .unwrap();
    assert!(st.success());
    let s2 = build(second.path(), &r2).unwrap();

    assert_ne!(s1.packages[0].root, s2.packages[0].root);
    let names: Vec<&str> = s1.packages.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["hello", "hello-doc", "hello-dev"]);
    for (a, b) in s1.packages.iter().zip(&s2.packages) {
        let (la, lb) = (
            support::tree_listing(&a.root),
            support::tree_listing(&b.root),
        );
        assert!(la.len() > 1, "{} is empty", a.name);
        assert_eq!(la, lb, "staged trees of {} differ", a.name);
        for (rel, mode, mtime, _) in &la {
            assert_eq!(*mtime, EPOCH, "{}/{rel}", a.name);
            assert_eq!(mode & 0o022, 0, "{}/{rel} is group/world-writable", a.name);
        }
    }
    // The build path does not leak into the binary.
    let bin = std::fs::read(s1.packages[0].root.join("usr/bin/hello")).unwrap();
    let needle = first.path().to_string_lossy().into_owned();
    assert!(!bin.windows(needle.len()).any(|w| w == needle.as_bytes()));
    let out = std::process::Command::new(s1.packages[0].root.join("usr/bin/hello"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "Hello from forge!\n");
}

/// Copy a repository recipe into `root/recipes/NAME` and load it.
fn load_copy(root: &Path, name: &str) -> Recipe {
    let dir = root.join("recipes").join(name);
    support::copy_tree(&support::repo_root().join("recipes").join(name), &dir);
    forge::recipe::load(&dir.join("recipe.toml")).unwrap()
}

/// Relative paths of the entries of a tree (without the root itself).
fn paths(root: &Path) -> Vec<String> {
    support::tree_listing(root)
        .into_iter()
        .map(|(rel, ..)| rel)
        .filter(|rel| !rel.is_empty())
        .collect()
}

#[test]
fn build_against_installed_build_dependencies() {
    if !support::require_bwrap() || !support::require_tool("cc") || !support::require_tool("make") {
        return;
    }
    let project = support::project();
    let libgreet = load_copy(project.path(), "libgreet");
    let lib = build(project.path(), &libgreet).unwrap();
    let got: Vec<(&str, Vec<String>)> = lib
        .packages
        .iter()
        .map(|p| (p.name.as_str(), paths(&p.root)))
        .collect();
    let strs = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        got,
        vec![
            (
                "libgreet",
                strs(&["usr", "usr/lib", "usr/lib/libgreet.so.1"])
            ),
            (
                "libgreet-dev",
                strs(&[
                    "usr",
                    "usr/include",
                    "usr/include/greet.h",
                    "usr/lib",
                    "usr/lib/libgreet.a",
                    "usr/lib/libgreet.so",
                    "usr/lib/pkgconfig",
                    "usr/lib/pkgconfig/greet.pc",
                ])
            ),
        ]
    );
    assert_eq!(lib.packages[1].depends, ["libgreet=1.0-r0"]);

    // Install libgreet and libgreet-dev into one build-dependency root.
    let deps = tempfile::tempdir().unwrap();
    for p in &lib.packages {
        support::copy_tree(&p.root, deps.path());
    }
    let greet = load_copy(project.path(), "greet");
    let settings = Settings::for_root(project.path());
    let req = BuildRequest {
        settings: &settings,
        recipe: &greet,
        source_date_epoch: EPOCH,
        arch: "x86_64".into(),
        deps_root: Some(deps.path().to_path_buf()),
        hermetic: None,
    };
    let staged = build::run(&req).unwrap();
    assert_eq!(
        paths(&staged.packages[0].root),
        ["usr", "usr/bin", "usr/bin/greet"]
    );
    let bin = staged.packages[0].root.join("usr/bin/greet");
    let out = std::process::Command::new(&bin)
        .env("LD_LIBRARY_PATH", deps.path().join("usr/lib"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "Greetings, forge!\n");
    // The dependency root's host path is not baked into the binary.
    let data = std::fs::read(&bin).unwrap();
    let needle = deps.path().to_string_lossy().into_owned();
    assert!(!data.windows(needle.len()).any(|w| w == needle.as_bytes()));

    // Without the dependency root the same recipe cannot find libgreet.
    let err = build(project.path(), &greet).unwrap_err();
    let (_, tail) = err.log_tail().expect("a step error");
    assert!(tail.iter().any(|l| l.contains("greet")), "{tail:?}");
}

/// A project holding a copy of the repository's `recipes/hello`.
fn hello_project() -> tempfile::TempDir {
    let project = support::project();
    support::copy_tree(
        &support::repo_root().join("recipes/hello"),
        &project.path().join("recipes/hello"),
    );
    project
}

#[test]
fn build_cli_without_sandbox_warns_exactly_once() {
    if !support::require_tool("cc") || !support::require_tool("make") {
        return;
    }
    let project = hello_project();
    let (_, stderr) = support::run_ok(support::forge(project.path()).args([
        "build",
        "--sandbox",
        "none",
        "hello",
    ]));
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("warning:"))
        .collect();
    assert_eq!(
        warnings,
        [
            "warning: building `hello` without a sandbox (--sandbox none): its scripts can reach the network and write anywhere you can"
        ],
        "{stderr}"
    );
    let bin = project.path().join("out/stage/hello/hello/usr/bin/hello");
    let out = std::process::Command::new(bin).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "Hello from forge!\n");
}

#[test]
fn build_cli_failure_shows_the_log_tail() {
    if !support::require_bwrap() {
        return;
    }
    let project = hello_project();
    let file = project.path().join("recipes/hello/recipe.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    let broken = text.replacen(
        "script = '''\n",
        "script = '''\necho 'about to fail' >&2\nexit 3\n",
        1,
    );
    assert_ne!(text, broken, "the hello recipe's script changed shape");
    std::fs::write(&file, broken).unwrap();
    let stderr = support::run_err(support::forge(project.path()).args(["build", "hello"]));
    assert!(
        stderr.contains("build step of `hello` failed (exit status: 3)"),
        "{stderr}"
    );
    assert!(stderr.contains("out/logs/hello.log"), "{stderr}");
    assert!(stderr.contains("\nabout to fail\n"), "{stderr}");
    let log = std::fs::read_to_string(project.path().join("out/logs/hello.log")).unwrap();
    assert_eq!(log, "==> forge: build step of hello\nabout to fail\n");
    assert!(!project.path().join("out/stage/hello").exists());
}

/// The README's attack: a build that remounts `/usr` read-write to plant a
/// file on the host. The mount is refused, the build fails saying so, and
/// the host is untouched.
#[test]
fn build_sandbox_refuses_a_remount_of_usr() {
    if !support::require_bwrap() {
        return;
    }
    let project = support::project();
    let probe = PathBuf::from("/usr/forge-probe");
    let _ = std::fs::remove_file(&probe);
    // The script, as is: the `&&` list is the last command, so its
    // status is the step's.
    let script = "mount -o remount,bind,rw /usr && touch /usr/forge-probe";
    let r = recipe(project.path(), "remount", &[("a", "")], script);
    let err = build(project.path(), &r).unwrap_err();
    let (_, tail) = err.log_tail().expect("the build step fails");
    assert!(
        tail.iter()
            .any(|l| l.starts_with("mount:") && l.contains("/usr")),
        "the log says the mount was refused: {tail:?}"
    );
    assert!(
        !probe.exists(),
        "{} was planted on the host",
        probe.display()
    );
}

/// What a hostile build tries besides the remount, each attempt recorded in
/// `$pkgdir` so the test reads the outcome: capabilities, identity, a nested
/// user namespace, a tmpfs mount, a write through a read-only bind, reading
/// `/root` and the project's keys, and a setuid output file.
#[test]
fn build_sandbox_contains_root() {
    if !support::require_bwrap() {
        return;
    }
    let project = support::project();
    support::install_test_key(project.path());
    let keys = project.path().join("keys");
    let deps = tempfile::tempdir().unwrap();
    support::write(deps.path(), "usr/share/dep", "dep\n");
    let attempts = [
        ("unshare", "unshare -r true".to_string()),
        ("tmpfs", "mount -t tmpfs none \"$HOME\"".to_string()),
        ("deps", "echo x > /forge/deps/usr/share/dep".to_string()),
        ("usr", "touch /usr/forge-ro-probe".to_string()),
        ("root", "ls /root".to_string()),
        ("keys", format!("cat '{}'/*.rsa", keys.display())),
        ("chown", "chown 0:0 \"$pkgdir/bin\"".to_string()),
    ];
    let mut script = String::from(
        "o=\"$pkgdir/probe\"\nmkdir -p \"$o\"\n\
         grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs|Uid|Gid):' /proc/self/status > \"$o/status\"\n\
         id -u > \"$o/uid\"; id -g >> \"$o/uid\"\n\
         printf '#!/bin/sh\\n' > \"$pkgdir/bin\"; chmod 4755 \"$pkgdir/bin\"\n",
    );
    for (name, cmd) in &attempts {
        script.push_str(&format!(
            "if ({cmd}) >/dev/null 2>&1; then echo allowed; else echo refused; fi > \"$o/{name}\"\n"
        ));
    }
    let r = recipe(project.path(), "contain", &[("a", "")], &script);
    let settings = Settings::for_root(project.path());
    let staged = build::run(&BuildRequest {
        settings: &settings,
        recipe: &r,
        source_date_epoch: EPOCH,
        arch: "x86_64".into(),
        deps_root: Some(deps.path().to_path_buf()),
        hermetic: None,
    })
    .unwrap();
    let root = &staged.packages[0].root;
    let read = |rel: &str| std::fs::read_to_string(root.join("probe").join(rel)).unwrap();
    let status = read("status");
    for cap in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        assert!(
            status.contains(&format!("{cap}:\t0000000000000000\n")),
            "{cap} is not empty:\n{status}"
        );
    }
    assert!(status.contains("NoNewPrivs:\t1\n"), "{status}");
    assert_eq!(read("uid"), "1000\n1000\n", "the fixed build uid/gid");
    for (name, _) in &attempts {
        assert_eq!(read(name), "refused\n", "{name} was allowed");
    }
    assert_eq!(
        std::fs::read_to_string(deps.path().join("usr/share/dep")).unwrap(),
        "dep\n"
    );
    assert!(!Path::new("/usr/forge-ro-probe").exists());
    // The setuid bit the build set is not packaged (the recipe lacks `suid`).
    let mode = std::fs::metadata(root.join("bin")).unwrap().mode() & 0o7777;
    assert_eq!(mode, 0o755, "{mode:o}");
}
