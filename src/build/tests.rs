//! End-to-end tests of [`super::run`] on recipes built in code, with local
//! sources only.

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use super::*;
use crate::recipe::Subpackage;

const EPOCH: i64 = 1_700_000_000;

fn have_bwrap() -> bool {
    crate::test_tools::require_bwrap()
}

/// A recipe `name` in `root/recipes/name` with the given files as local
/// sources, written as TOML and loaded as forge loads any recipe.
fn recipe(root: &Path, name: &str, files: &[(&str, &str)], build: &str) -> Recipe {
    let mut b = crate::test_project::RecipeBuilder::new(root, name);
    for (f, text) in files {
        b.source(f, text);
    }
    crate::recipe::load(&b.script(build).write()).unwrap()
}

fn settings(root: &Path, mode: SandboxMode) -> Settings {
    let mut s = Settings::for_root(root);
    s.sandbox = mode;
    s
}

fn request<'a>(settings: &'a Settings, recipe: &'a Recipe) -> BuildRequest<'a> {
    BuildRequest {
        settings,
        recipe,
        source_date_epoch: EPOCH,
        arch: "x86_64".into(),
        deps_root: None,
        hermetic: None,
    }
}

fn names(root: &Path) -> Vec<String> {
    crate::test_project::tree_listing(root)
        .into_iter()
        .map(|(n, ..)| n)
        .collect()
}

fn env_probe_build() -> &'static str {
    "mkdir -p \"$pkgdir/usr/share/probe\"\n\
     env | grep -E '^(srcdir|builddir|pkgdir|HOME|TZ|SOURCE_DATE_EPOCH|JOBS|LC_ALL)=' | sort > \"$pkgdir/usr/share/probe/env\"\n\
     umask > \"$pkgdir/usr/share/probe/umask\"\n\
     pwd > \"$pkgdir/usr/share/probe/pwd\"\n\
     test -f probe.txt\n\
     chmod 0777 \"$pkgdir/usr/share/probe/env\"\n"
}

#[test]
fn bwrap_build_sees_fixed_paths_and_clean_env() {
    if !have_bwrap() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let r = recipe(
        dir.path(),
        "probe",
        &[("probe.txt", "x")],
        env_probe_build(),
    );
    let s = settings(dir.path(), SandboxMode::Bwrap);
    let staged = run(&request(&s, &r)).unwrap();
    assert_eq!(staged.recipe_name, "probe");
    assert_eq!(staged.packages.len(), 1);
    let root = &staged.packages[0].root;
    assert_eq!(root, &dir.path().join("out/stage/probe/probe"));
    let env = std::fs::read_to_string(root.join("usr/share/probe/env")).unwrap();
    assert_eq!(
        env,
        "HOME=/forge/home\nJOBS=1\nLC_ALL=C.UTF-8\nSOURCE_DATE_EPOCH=1700000000\nTZ=UTC\n\
         builddir=/forge/src\npkgdir=/forge/pkg\nsrcdir=/forge/src\n"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("usr/share/probe/umask")).unwrap(),
        "0022\n"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("usr/share/probe/pwd")).unwrap(),
        "/forge/src\n"
    );
    for (rel, mode, mtime, _) in crate::test_project::tree_listing(root) {
        assert_eq!(mtime, EPOCH, "{rel}");
        assert_eq!(mode & 0o022, 0, "{rel} {mode:o}");
    }
    // The log holds the step header; the work folder's pkg has moved away.
    let log = std::fs::read_to_string(dir.path().join("out/logs/probe.log")).unwrap();
    assert!(log.starts_with("==> forge: build step of probe\n"), "{log}");
    assert!(!dir.path().join("out/work/probe/pkg").exists());
    // No leftovers beside the published folder.
    let stage: Vec<_> = std::fs::read_dir(dir.path().join("out/stage"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(stage, ["probe"]);
}

#[test]
fn no_sandbox_uses_real_dirs() {
    let dir = tempfile::tempdir().unwrap();
    let r = recipe(
        dir.path(),
        "probe",
        &[("probe.txt", "x")],
        env_probe_build(),
    );
    let s = settings(dir.path(), SandboxMode::None);
    let staged = run(&request(&s, &r)).unwrap();
    let root = &staged.packages[0].root;
    let env = std::fs::read_to_string(root.join("usr/share/probe/env")).unwrap();
    let work = dir.path().join("out/work/probe");
    assert!(
        env.contains(&format!("srcdir={}\n", work.join("src").display())),
        "{env}"
    );
    assert!(
        env.contains(&format!("HOME={}\n", work.join("home").display())),
        "{env}"
    );
    assert!(env.contains("TZ=UTC\n"));
}

#[test]
fn failing_step_reports_log_tail() {
    let dir = tempfile::tempdir().unwrap();
    let script = "i=0\nwhile [ $i -lt 60 ]; do echo line $i; i=$((i+1)); done\necho boom >&2\nfalse\necho unreachable";
    let r = recipe(dir.path(), "bad", &[("a", "")], script);
    let s = settings(dir.path(), SandboxMode::None);
    let err = run(&request(&s, &r)).unwrap_err();
    let (log, tail) = err.log_tail().expect("a step error");
    assert_eq!(log, dir.path().join("out/logs/bad.log"));
    assert_eq!(tail.len(), LOG_TAIL_LINES);
    assert_eq!(tail.last().map(String::as_str), Some("boom"));
    assert_eq!(tail[0], "line 21");
    assert!(
        err.to_string()
            .starts_with("build step of `bad` failed (exit status: 1); log: "),
        "{err}"
    );
    // A failed build publishes nothing.
    assert!(!dir.path().join("out/stage/bad").exists());
}

#[test]
fn check_step_runs_unless_disabled() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = recipe(dir.path(), "chk", &[("a", "")], "mkdir -p \"$pkgdir\"");
    r.check = "echo checking; exit 7".into();
    let s = settings(dir.path(), SandboxMode::None);
    let err = run(&request(&s, &r)).unwrap_err();
    assert!(
        matches!(err, BuildError::Step { step: "check", .. }),
        "{err}"
    );
    r.options.no_check = true;
    run(&request(&s, &r)).unwrap();
}

/// A check step for an architecture this machine cannot run programs of is
/// skipped (with a note), not failed with "Exec format error"; with qemu-user
/// registered in binfmt_misc it runs.
#[test]
fn foreign_check_step_runs_only_where_its_programs_can() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = recipe(dir.path(), "chk", &[("a", "")], "mkdir -p \"$pkgdir\"");
    r.check = "echo checking; exit 7".into();
    let s = settings(dir.path(), SandboxMode::None);
    let foreign = if crate::pipeline::host_arch() == "aarch64" {
        "x86_64"
    } else {
        "aarch64"
    };
    let req = BuildRequest {
        arch: foreign.into(),
        ..request(&s, &r)
    };
    let got = run(&req);
    if runs_programs_of(foreign) {
        assert!(got.is_err(), "the check ran");
    } else {
        got.unwrap();
    }
}

/// The bootstrap stage's strip is the host's binutils, for the host's
/// machine: a foreign architecture's files are left as the linker made them
/// (it failed with "Unable to recognise the format" on aarch64's musl).
#[test]
fn foreign_bootstrap_files_are_not_given_to_the_hosts_strip() {
    if !crate::test_tools::require_tool("strip") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // An ELF header for an aarch64 executable (e_type 2, e_machine 183),
    // nothing after it: the host's strip cannot read it.
    let r = recipe(
        dir.path(),
        "alien",
        &[("a", "")],
        "mkdir -p \"$pkgdir/usr/bin\"\n\
         printf '\\177ELF\\2\\1\\1\\0\\0\\0\\0\\0\\0\\0\\0\\0\\2\\0\\267\\0' \
         >\"$pkgdir/usr/bin/alien\"",
    );
    let s = settings(dir.path(), SandboxMode::None);
    let foreign = if crate::pipeline::host_arch() == "aarch64" {
        "x86_64"
    } else {
        "aarch64"
    };
    let req = BuildRequest {
        arch: foreign.into(),
        ..request(&s, &r)
    };
    let staged = run(&req).unwrap();
    let alien = staged.packages[0].root.join("usr/bin/alien");
    let bytes = std::fs::read(alien).unwrap();
    assert_eq!(bytes.len(), 20);
    assert_eq!(&bytes[18..], &[183, 0]);
}

#[test]
fn missing_host_tool_fails_up_front() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = recipe(dir.path(), "tools", &[("a", "")], "true");
    r.host_tools = vec!["sh".into(), "forge-no-such-tool".into()];
    let s = settings(dir.path(), SandboxMode::None);
    let err = run(&request(&s, &r)).unwrap_err();
    assert!(
        err.to_string().starts_with(
            "recipe `tools` needs host tool `forge-no-such-tool`, which is not on the build PATH"
        ),
        "{err}"
    );
    assert!(!dir.path().join("out/work/tools").exists());
}

fn hello_recipe(root: &Path) -> Recipe {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("recipes/hello");
    let files: Vec<(String, String)> = ["Makefile", "hello.c", "hello.h", "hello.1"]
        .iter()
        .map(|f| (f.to_string(), std::fs::read_to_string(src.join(f)).unwrap()))
        .collect();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let mut r = recipe(
        root,
        "hello",
        &refs,
        "make\nmake DESTDIR=\"$pkgdir\" install\n",
    );
    r.check = "make check".into();
    r.host_tools = vec!["cc".into(), "make".into()];
    r.subpackages = vec![
        Subpackage {
            name: "hello-doc".into(),
            description: "hello (documentation)".into(),
            paths: vec!["usr/share/man".into(), "usr/share/doc".into()],
            depends: vec![],
            provides: vec![],
        },
        Subpackage {
            name: "hello-dev".into(),
            description: "hello (development files)".into(),
            paths: vec![
                "usr/include".into(),
                "usr/lib/*.a".into(),
                "usr/lib/pkgconfig".into(),
            ],
            depends: vec!["hello=1.0-r0".into()],
            provides: vec![],
        },
    ];
    r
}

#[test]
fn hello_builds_strips_and_splits() {
    let mode = if have_bwrap() {
        SandboxMode::Bwrap
    } else {
        SandboxMode::None
    };
    let dir = tempfile::tempdir().unwrap();
    let r = hello_recipe(dir.path());
    let s = settings(dir.path(), mode);
    let staged = run(&request(&s, &r)).unwrap();
    let got: Vec<(&str, Vec<String>)> = staged
        .packages
        .iter()
        .map(|p| (p.name.as_str(), names(&p.root)))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "hello",
                vec![
                    "".into(),
                    "usr".into(),
                    "usr/bin".into(),
                    "usr/bin/hello".into()
                ]
            ),
            (
                "hello-doc",
                vec![
                    "".into(),
                    "usr".into(),
                    "usr/share".into(),
                    "usr/share/man".into(),
                    "usr/share/man/man1".into(),
                    "usr/share/man/man1/hello.1".into()
                ]
            ),
            (
                "hello-dev",
                vec![
                    "".into(),
                    "usr".into(),
                    "usr/include".into(),
                    "usr/include/hello.h".into()
                ]
            ),
        ]
    );
    assert_eq!(staged.packages[2].depends, ["hello=1.0-r0"]);
    let bin = staged.packages[0].root.join("usr/bin/hello");
    let out = std::process::Command::new(&bin).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "Hello from forge!\n");
    // Stripped: no symbol table left.
    let data = std::fs::read(&bin).unwrap();
    assert!(!data.windows(8).any(|w| w == b".symtab\0"), "not stripped");
    assert_eq!(std::fs::metadata(&bin).unwrap().mode() & 0o7777, 0o755);
}

#[test]
fn work_dir_with_read_only_folders_is_recreated() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let r = recipe(
        dir.path(),
        "ro",
        &[("a", "")],
        "mkdir -p \"$pkgdir\" \"$HOME/cache/x\"\ntouch \"$HOME/cache/x/f\"\nchmod 0555 \"$HOME/cache/x\" \"$HOME/cache\"",
    );
    let s = settings(dir.path(), SandboxMode::None);
    run(&request(&s, &r)).unwrap();
    let cache = dir.path().join("out/work/ro/home/cache");
    assert_eq!(
        std::fs::metadata(&cache).unwrap().permissions().mode() & 0o777,
        0o555
    );
    run(&request(&s, &r)).unwrap();
    remove_tree(&dir.path().join("out/work/ro")).unwrap();
    assert!(!dir.path().join("out/work/ro").exists());
    // A missing tree is fine.
    remove_tree(&dir.path().join("out/work/ro")).unwrap();
}

/// `strip` runs inside the sandbox: a `strip` first on the build's PATH
/// (from the build dependencies) records what it sees, then hands over to
/// the real one. It has no capabilities, runs as the build user in a user
/// namespace of its own, and the binary still ends up stripped.
#[test]
fn strip_runs_inside_the_sandbox() {
    use std::os::unix::fs::PermissionsExt as _;
    if !have_bwrap() || !crate::test_tools::require_tools(&["cc", "strip"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let deps = dir.path().join("deps");
    let fake = deps.join("usr/bin/strip");
    std::fs::create_dir_all(fake.parent().unwrap()).unwrap();
    std::fs::write(
        &fake,
        "#!/bin/sh\n\
         { grep -E '^Cap(Prm|Eff|Bnd):' /proc/self/status; id -u; readlink /proc/self/ns/user; } > /forge/pkg/strip-probe\n\
         exec /usr/bin/strip \"$@\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let build = "mkdir -p \"$pkgdir/usr/bin\"\n\
                 printf 'int helper(void){return 1;}\\nint main(void){return helper()-1;}\\n' > m.c\n\
                 cc -g -o \"$pkgdir/usr/bin/m\" m.c\n";
    let r = recipe(dir.path(), "stripped", &[("a", "")], build);
    let s = settings(dir.path(), SandboxMode::Bwrap);
    let req = BuildRequest {
        deps_root: Some(deps.clone()),
        ..request(&s, &r)
    };
    let staged = run(&req).unwrap();
    let root = &staged.packages[0].root;
    let probe =
        std::fs::read_to_string(root.join("strip-probe")).expect("strip ran the PATH's strip");
    let host_ns = std::fs::read_link("/proc/self/ns/user").unwrap();
    let lines: Vec<&str> = probe.lines().collect();
    assert_eq!(
        &lines[..4],
        [
            "CapPrm:\t0000000000000000",
            "CapEff:\t0000000000000000",
            "CapBnd:\t0000000000000000",
            "1000",
        ],
        "{probe}"
    );
    assert_ne!(
        Path::new(lines[4]),
        host_ns,
        "strip ran in the host's user namespace"
    );
    let data = std::fs::read(root.join("usr/bin/m")).unwrap();
    assert!(!data.windows(8).any(|w| w == b".symtab\0"), "not stripped");
}

/// A build can set setuid/setgid bits on its files (they are not honoured in
/// the sandbox); the package keeps them only when the recipe says `suid`.
#[test]
fn setuid_bits_are_kept_only_with_the_suid_option() {
    if !have_bwrap() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let script = "mkdir -p \"$pkgdir/usr/bin\"\nprintf x > \"$pkgdir/usr/bin/su\"\nchmod 6755 \"$pkgdir/usr/bin/su\"\n";
    let mut r = recipe(dir.path(), "su", &[("a", "")], script);
    let s = settings(dir.path(), SandboxMode::Bwrap);
    let mode = |staged: Staged| {
        let bin = staged.packages[0].root.join("usr/bin/su");
        std::fs::metadata(bin).unwrap().mode() & 0o7777
    };
    assert_eq!(mode(run(&request(&s, &r)).unwrap()), 0o755);
    r.options.suid = true;
    assert_eq!(mode(run(&request(&s, &r)).unwrap()), 0o6755);
}
