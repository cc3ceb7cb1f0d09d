//! The toolchain seed (`recipes/zig`): the ziglang wheel, taken from the
//! seeded mirror (`.ci/seed-mirror.sh` puts it there with `pip download`),
//! unpacked as a zip and packaged offline.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support;

/// The wheel's file name: the last segment of the zig recipe's url.
fn wheel_name() -> String {
    let text =
        std::fs::read_to_string(support::repo_root().join("recipes/zig/recipe.toml")).unwrap();
    let doc: toml::Table = toml::from_str(&text).unwrap();
    let url = doc["source"].as_array().unwrap()[0]["url"]
        .as_str()
        .unwrap();
    url.rsplit('/').next().unwrap().to_string()
}

/// A project with the repository's zig recipe; `None` when the mirror has
/// no wheel or bwrap is missing (a failure in CI).
pub(crate) fn seed_project() -> Option<(support::Project, PathBuf)> {
    let mirror = support::require_mirror_file(&wheel_name())?;
    if !support::require_bwrap() {
        return None;
    }
    let p = support::Project::new();
    p.copy_recipes(&["zig"]).commit().key();
    Some((p, mirror))
}

/// `forge --offline --mirror MIRROR build ARGS…` in `project`.
pub(crate) fn build_offline(project: &Path, mirror: &Path, args: &[&str]) -> String {
    let (_, err) = support::run_ok(
        support::forge(project)
            .arg("--offline")
            .arg("--mirror")
            .arg(mirror)
            .arg("build")
            .args(args),
    );
    err
}

/// The seed's package: upstream's zig whole, the wrappers as symlinks.
fn check_seed_package(root: &Path) {
    let apk = root.join("out/repo/x86_64/zig-0.17.0-r0.apk");
    let (out, _) = support::run_ok(support::forge(root).arg("inspect").arg(&apk));
    for line in [
        "l 0777          0 usr/bin/cc -> ../lib/zig/forge-cc",
        "l 0777          0 usr/bin/c++ -> ../lib/zig/forge-cc",
        "l 0777          0 usr/bin/ar -> ../lib/zig/forge-cc",
        "l 0777          0 usr/bin/ranlib -> ../lib/zig/forge-cc",
        "l 0777          0 usr/bin/zig -> ../lib/zig/zig",
        "cmd:cc=0.17.0-r0",
    ] {
        assert!(out.contains(line), "{line} in\n{out}");
    }
    // The zig binary is upstream's, unstripped and whole: it runs and finds
    // its lib folder beside it (musl's sources are there).
    let staged = root.join("out/stage/zig/zig/usr/lib/zig");
    assert!(
        staged
            .join("lib/libc/musl/src/string/strverscmp.c")
            .is_file()
    );
    let version = Command::new(staged.join("zig"))
        .arg("version")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&version.stdout), "0.17.0\n");
}

const HI_C: &str = "#include <stdio.h>\nint main(void) { puts(\"hi from zig cc\"); return 0; }\n";

/// The ELF machine of `path` and whether it is static.
fn elf_facts(path: &Path) -> (u16, bool) {
    let bytes = std::fs::read(path).unwrap();
    let elf = goblin::elf::Elf::parse(&bytes).unwrap();
    (
        elf.header.e_machine,
        elf.interpreter.is_none() && elf.libraries.is_empty(),
    )
}

/// The seed packaged from the wheel, then a hermetic unit compiled by its
/// `cc` for x86_64 and aarch64 in a root of forge packages (zig and a
/// busybox toolbox): each architecture gets its own signed repository, the
/// aarch64 binary runs under qemu, a forced rebuild gives the same bytes,
/// and a second `forge build` of both architectures builds nothing.
#[test]
fn zig_seed_builds_hermetic_units_for_x86_64_and_aarch64() {
    let Some((project, mirror)) = seed_project() else {
        return;
    };
    if !support::require_file(Path::new("/bin/busybox")) || !support::require_tool("qemu-aarch64") {
        return;
    }
    let root = project.path();
    project.forge_toml(
        "arch = [\"x86_64\", \"aarch64\"]\n\
         [build-root]\nstage = \"hermetic\"\nbase = [\"zig\", \"toolbox\"]\n",
    );
    project
        .recipe("toolbox")
        .stage("bootstrap")
        .options(&["!strip"])
        .script(
            "install -D -m 755 /bin/busybox \"$pkgdir/bin/busybox\"\n\
             for a in sh cp mkdir; do ln -s busybox \"$pkgdir/bin/$a\"; done",
        )
        .write();
    project
        .recipe("hi")
        .arch(&["x86_64", "aarch64"])
        .tools(&["cc", "sh"])
        .source("hi.c", HI_C)
        .script("cc $CFLAGS -static -o hi hi.c\nmkdir -p \"$pkgdir/usr/bin\"\ncp hi \"$pkgdir/usr/bin/hi\"")
        .write();
    project.commit();

    let started = std::time::Instant::now();
    build_offline(root, &mirror, &["--arch", "x86_64"]);
    eprintln!("x86_64 (zig, toolbox, hi): {:?}", started.elapsed());
    check_seed_package(root);
    let hi = root.join("out/stage/hi/hi/usr/bin/hi");
    assert_eq!(elf_facts(&hi), (goblin::elf::header::EM_X86_64, true));
    let out = Command::new(&hi).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hi from zig cc\n");

    let started = std::time::Instant::now();
    build_offline(root, &mirror, &["--arch", "aarch64"]);
    eprintln!("aarch64 (hi): {:?}", started.elapsed());
    assert_eq!(elf_facts(&hi), (goblin::elf::header::EM_AARCH64, true));
    let out = Command::new("qemu-aarch64").arg(&hi).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hi from zig cc\n");
    let repo = root.join("out/repo/aarch64");
    support::run_ok(
        support::forge(root)
            .arg("verify")
            .arg(repo.join("APKINDEX.tar.gz")),
    );
    let apk = repo.join("hi-1.0-r0.apk");
    let first = std::fs::read(&apk).unwrap();
    build_offline(root, &mirror, &["--arch", "aarch64", "--force", "hi"]);
    assert!(
        first == std::fs::read(&apk).unwrap(),
        "a rebuild gives the same bytes"
    );

    let err = build_offline(root, &mirror, &[]);
    assert_eq!(
        err.matches("packages: nothing to build").count(),
        2,
        "{err}"
    );
}
