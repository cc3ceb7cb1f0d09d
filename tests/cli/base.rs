//! The musl base (`recipes/musl`, `libseccomp`, `libcap`, `yajl`, `argp`,
//! `busybox`, `make`) and `crun` built end to end, offline, with the zig
//! seed, from a seeded source mirror; crun is one static binary linked
//! against forge's musl, argp, libseccomp, libcap and yajl, for x86_64 and
//! aarch64 (docs/real-recipes.md).
//!
//! `.ci/seed-mirror.sh DIR` fills DIR with the upstream release files (taken
//! from Debian's source packages and checked against the recipes' sha256) and
//! the ziglang wheel; `FORGE_TEST_MIRROR` names that folder (default
//! `/tmp/forge-mirror`, where `.ci/run` puts it). Without a seeded mirror the
//! test skips, unless `FORGE_TEST_REQUIRE_TOOLS=1` makes that a failure.
//!
//! One project builds the base and crun in a single `forge build`, so zig
//! and musl are built once (the whole base costs minutes, see
//! docs/bootstrap.md). The staged binaries then run through the staged musl
//! loader, and every dependency of every package must be provided by the
//! repository itself (no `so:libc.so.6`).

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support;

mod hermetic;

/// The recipes the base test builds, with their dependencies.
const BASE: &[&str] = &[
    "zig",
    "musl",
    "libseccomp",
    "libcap",
    "yajl",
    "argp",
    "crun",
    "busybox",
    "make",
];

/// The file name forge looks for in a mirror for the first source of
/// `recipes/NAME`: its `filename`, else the last segment of its url, with
/// `${version}` expanded.
fn mirror_file(name: &str) -> String {
    let path = support::repo_root()
        .join("recipes")
        .join(name)
        .join("recipe.toml");
    let doc: toml::Table = toml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let version = doc["package"]["version"].as_str().unwrap();
    let source = &doc["source"].as_array().unwrap()[0];
    let file = match source.get("filename") {
        Some(f) => f.as_str().unwrap().to_string(),
        None => {
            let url = source["url"].as_str().unwrap();
            url.rsplit('/').next().unwrap().to_string()
        }
    };
    file.replace("${version}", version)
}

/// A project holding a copy of the repository's recipes and `forge.toml`,
/// and the mirror holding the sources of `recipes`; `None` when a source or
/// bwrap is missing.
fn project_with(recipes: &[&str]) -> Option<(support::Project, PathBuf)> {
    let mut mirror = None;
    for name in recipes {
        mirror = Some(support::require_mirror_file(&mirror_file(name))?);
    }
    if !support::require_bwrap() {
        return None;
    }
    let p = support::Project::new();
    p.copy_from_repo("recipes").copy_from_repo("forge.toml");
    Some((p, mirror?))
}

/// `forge --offline --mirror MIRROR build ARGS…` in `project`, which must
/// succeed; its stderr.
fn build_offline(project: &Path, mirror: &Path, args: &[&str]) -> String {
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

/// The ELF interpreter and needed libraries of `path`.
fn elf_links(path: &Path) -> (Option<String>, Vec<String>) {
    let bytes = std::fs::read(path).unwrap();
    let elf = goblin::elf::Elf::parse(&bytes).unwrap();
    let libs = elf.libraries.iter().map(|s| s.to_string()).collect();
    (elf.interpreter.map(str::to_string), libs)
}

/// Run `program args…` and return its stdout, asserting success.
fn run_binary(program: &Path, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{} {:?} failed: {}\n{}",
        program.display(),
        args,
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Run `program` through the staged musl loader, with `libs` as its library
/// path (the host has no /lib/ld-musl-*).
fn run_musl(stage: &Path, libs: &[&str], program: &Path, args: &[&str]) -> String {
    let loader = stage.join("musl/musl/lib/ld-musl-x86_64.so.1");
    let path: Vec<String> = libs
        .iter()
        .map(|l| stage.join(l).display().to_string())
        .collect();
    let mut all = vec!["--library-path".to_string(), path.join(":")];
    all.push(program.display().to_string());
    all.extend(args.iter().map(|a| a.to_string()));
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    run_binary(&loader, &all)
}

#[test]
fn musl_base_and_crun_build_offline_for_x86_64_and_aarch64() {
    let Some((project, mirror)) = project_with(BASE) else {
        return;
    };
    let root = project.path();
    let started = std::time::Instant::now();
    build_offline(
        root,
        &mirror,
        &[
            "busybox",
            "libseccomp",
            "libcap",
            "yajl",
            "make",
            "toolbox",
            "crun",
        ],
    );
    eprintln!("x86_64 base and crun built in {:?}", started.elapsed());
    let stage = root.join("out/stage");
    check_musl(&stage);
    check_libraries(&stage);
    check_busybox(&stage);
    check_make(&stage, &root.join("out/work/make"));
    check_argp(&stage);
    let crun = check_crun(&stage, goblin::elf::header::EM_X86_64);
    check_crun_version(&run_binary(&crun, &["--version"]));
    check_repository_is_self_contained(root);
    hermetic::examples_build_in_hermetic_roots(root, &mirror);
    hermetic::base_rebuilds_in_its_own_root(root, &mirror);
    // Last: out/stage holds the architecture built last, and the checks
    // above read x86_64's musl from there. The hermetic half switched
    // forge.toml and some recipes; the aarch64 build takes them as shipped.
    project
        .copy_from_repo("recipes")
        .copy_from_repo("forge.toml");
    aarch64_crun(root, &mirror, &stage);
}

/// musl: the loader is the real file and carries Alpine's soname.
fn check_musl(stage: &Path) {
    let musl = stage.join("musl/musl/lib");
    assert_eq!(
        std::fs::read_link(musl.join("libc.musl-x86_64.so.1")).unwrap(),
        PathBuf::from("ld-musl-x86_64.so.1")
    );
    let dev = stage.join("musl/musl-dev/usr");
    for f in [
        "lib/crt1.o",
        "lib/Scrt1.o",
        "lib/libc.a",
        "include/stdio.h",
        "bin/musl-zcc",
    ] {
        assert!(dev.join(f).exists(), "musl-dev has no {f}");
    }
    assert_eq!(
        std::fs::read_link(dev.join("lib/libc.so")).unwrap(),
        PathBuf::from("../../lib/ld-musl-x86_64.so.1")
    );
}

/// libseccomp, libcap, yajl: shared libraries with their sonames, needing
/// only forge's musl; their tools run through the staged loader.
fn check_libraries(stage: &Path) {
    for (lib, soname) in [
        (
            "libseccomp/libseccomp/usr/lib/libseccomp.so.2.5.4",
            "libseccomp.so.2",
        ),
        ("libcap/libcap/usr/lib/libcap.so.2.66", "libcap.so.2"),
        ("yajl/yajl/usr/lib/libyajl.so.2.1.0", "libyajl.so.2"),
    ] {
        let bytes = std::fs::read(stage.join(lib)).unwrap();
        let elf = goblin::elf::Elf::parse(&bytes).unwrap();
        assert_eq!(elf.soname, Some(soname), "{lib}");
        assert_eq!(elf.libraries, vec!["libc.musl-x86_64.so.1"], "{lib}");
    }
    let resolver = stage.join("libseccomp/libseccomp/usr/bin/scmp_sys_resolver");
    let libs = ["libseccomp/libseccomp/usr/lib"];
    assert_eq!(
        run_musl(stage, &libs, &resolver, &["-a", "aarch64", "openat"]),
        "56\n"
    );
    for f in [
        "usr/include/seccomp.h",
        "usr/lib/libseccomp.a",
        "usr/lib/pkgconfig/libseccomp.pc",
    ] {
        assert!(
            stage.join("libseccomp/libseccomp-dev").join(f).exists(),
            "{f}"
        );
    }
    for f in [
        "usr/include/sys/capability.h",
        "usr/lib/pkgconfig/libcap.pc",
    ] {
        assert!(stage.join("libcap/libcap-dev").join(f).exists(), "{f}");
    }
    let pc =
        std::fs::read_to_string(stage.join("yajl/yajl-dev/usr/lib/pkgconfig/yajl.pc")).unwrap();
    assert!(pc.contains("Version: 2.1.0"), "{pc}");
    let verify = stage.join("yajl/yajl/usr/bin/json_verify");
    let mut child = Command::new(stage.join("musl/musl/lib/ld-musl-x86_64.so.1"))
        .arg(&verify)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let json = br#"{"a": [1, 2.5, {"b": null}], "c": true}"#;
    child.stdin.take().unwrap().write_all(json).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// busybox: the static binary with its applet links (what images use), and
/// busybox-dynamic against forge's musl.
fn check_busybox(stage: &Path) {
    let root = stage.join("busybox/busybox");
    let busybox = root.join("bin/busybox");
    assert_static_elf(&busybox);
    let banner = run_binary(&busybox, &["--help"]);
    assert!(banner.starts_with("BusyBox v1.35.0 "), "{banner:?}");
    assert_eq!(run_binary(&busybox, &["echo", "hello"]), "hello\n");
    // Applet links are relative, so they work in any root.
    assert_eq!(
        std::fs::read_link(root.join("bin/sh")).unwrap(),
        PathBuf::from("busybox")
    );
    assert_eq!(
        std::fs::read_link(root.join("usr/bin/env")).unwrap(),
        PathBuf::from("../../bin/busybox")
    );
    assert!(!root.join("linuxrc").exists());
    // The applet set does not depend on the kernel headers.
    assert!(!root.join("sbin/tc").exists());
    assert!(!root.join("bin/busybox.dynamic").exists());

    let dynamic = stage.join("busybox/busybox-dynamic/bin/busybox.dynamic");
    let (interp, libs) = elf_links(&dynamic);
    assert_eq!(interp.as_deref(), Some("/lib/ld-musl-x86_64.so.1"));
    assert_eq!(libs, vec!["libc.musl-x86_64.so.1".to_string()]);
    let out = run_musl(stage, &[], &dynamic, &["sh", "-c", "echo $((6 * 7))"]);
    assert_eq!(out, "42\n");
}

/// make: GNU make 4.3 linked against forge's musl, which runs a parallel
/// build with pattern rules, `$(wildcard)` and `$(shell)`, and then finds
/// everything up to date.
fn check_make(stage: &Path, work: &Path) {
    let make = stage.join("make/make/usr/bin/make");
    let (interp, libs) = elf_links(&make);
    assert_eq!(interp.as_deref(), Some("/lib/ld-musl-x86_64.so.1"));
    assert_eq!(libs, vec!["libc.musl-x86_64.so.1".to_string()]);
    let version = run_musl(stage, &[], &make, &["--version"]);
    assert!(
        version.starts_with("GNU Make 4.3\nBuilt for x86_64-linux-musl\n"),
        "{version}"
    );
    assert!(stage.join("make/make/usr/include/gnumake.h").is_file());
    let dir = work.join("test-project");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("a.in"), "abc\n").unwrap();
    std::fs::write(dir.join("b.in"), "def\n").unwrap();
    std::fs::write(
        dir.join("Makefile"),
        "OUTS := $(patsubst %.in,%.out,$(wildcard *.in))\n\
         all: total\n\
         %.out: %.in\n\ttr a-z A-Z <$< >$@\n\
         total: $(OUTS)\n\tcat $^ >$@; echo \"$(words $^) $(shell echo sh)\" >>$@\n",
    )
    .unwrap();
    let dir_arg = dir.display().to_string();
    run_musl(stage, &[], &make, &["-C", &dir_arg, "-j2"]);
    assert_eq!(
        std::fs::read_to_string(dir.join("total")).unwrap(),
        "ABC\nDEF\n2 sh\n"
    );
    let again = run_musl(stage, &[], &make, &["-C", &dir_arg]);
    assert!(again.contains("Nothing to be done for 'all'."), "{again}");
}

/// Every `depends` of every package in out/repo/x86_64 names a package or a
/// provide of the same repository, as `forge inspect` prints them.
fn check_repository_is_self_contained(root: &Path) {
    let repo = root.join("out/repo/x86_64");
    let mut provided = BTreeSet::new();
    let mut needed = Vec::new();
    for entry in std::fs::read_dir(&repo).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "apk") {
            continue;
        }
        let (out, _) = support::run_ok(support::forge(root).arg("inspect").arg(&path));
        let (name, depends, provides) = inspect_lists(&out);
        provided.insert(name.clone());
        provided.extend(provides.iter().map(|p| dep_name(p).to_string()));
        needed.extend(depends.into_iter().map(|d| (name.clone(), d)));
    }
    assert!(
        provided.contains("so:libc.musl-x86_64.so.1"),
        "{provided:?}"
    );
    for (pkg, dep) in &needed {
        assert!(
            dep.starts_with('!') || provided.contains(dep_name(dep)),
            "{pkg} depends on {dep}, which no package of the repository provides"
        );
        assert_ne!(dep_name(dep), "so:libc.so.6", "{pkg} needs glibc");
    }
}

/// The name of a dependency string, without its version constraint.
fn dep_name(dep: &str) -> &str {
    let end = dep.find(['=', '<', '>', '~']).unwrap_or(dep.len());
    &dep[..end]
}

/// The `name:`, `depends:` and `provides:` of `forge inspect` output.
fn inspect_lists(out: &str) -> (String, Vec<String>, Vec<String>) {
    let mut name = String::new();
    let (mut depends, mut provides) = (Vec::new(), Vec::new());
    let mut section = "";
    for line in out.lines() {
        if let Some(n) = line.strip_prefix("name:") {
            name = n.trim().to_string();
        } else if !line.starts_with(' ') {
            section = line.trim_end_matches(':');
        } else if section == "depends" {
            depends.push(line.trim().to_string());
        } else if section == "provides" {
            provides.push(line.trim().to_string());
        }
    }
    (name, depends, provides)
}

/// Assert `path` is a statically linked ELF executable: no program
/// interpreter and no needed shared libraries.
fn assert_static_elf(path: &Path) {
    assert_eq!(
        elf_links(path),
        (None, vec![]),
        "{} is not static",
        path.display()
    );
}

/// argp-dev: the static library and the header a program includes without
/// gnulib's config.h; the main package is empty.
fn check_argp(stage: &Path) {
    let dev = stage.join("argp/argp-dev/usr");
    assert!(dev.join("lib/libargp.a").is_file());
    let header = std::fs::read_to_string(dev.join("include/argp.h")).unwrap();
    assert!(header.contains("__gnu_inline__"), "the prelude");
    assert!(header.contains("argp_parse"), "gnulib's argp.h");
}

/// crun: one static binary for `machine` against forge's musl (no
/// interpreter, no libraries, no glibc ABI note), with its man page;
/// returns its path.
fn check_crun(stage: &Path, machine: u16) -> PathBuf {
    let root = stage.join("crun/crun");
    let crun = root.join("usr/bin/crun");
    assert_static_elf(&crun);
    let bytes = std::fs::read(&crun).unwrap();
    let elf = goblin::elf::Elf::parse(&bytes).unwrap();
    assert_eq!(elf.header.e_machine, machine, "crun's machine");
    let sections: Vec<&str> = elf
        .section_headers
        .iter()
        .filter_map(|h| elf.shdr_strtab.get_at(h.sh_name))
        .collect();
    // glibc's start files add a .note.ABI-tag; musl's do not.
    assert!(
        !sections.contains(&".note.ABI-tag"),
        "crun was linked against glibc: {sections:?}"
    );
    let man = root.join("usr/share/man/man1/crun.1");
    assert!(man.is_file() || man.with_extension("1.gz").is_file());
    assert!(!root.join("usr/lib").exists());
    crun
}

/// `crun --version` output: the version line, and the features line with
/// what the recipe enables and systemd switched off.
fn check_crun_version(stdout: &str) {
    assert_eq!(
        stdout.lines().next(),
        Some("crun version 1.8.1"),
        "{stdout}"
    );
    let features = stdout
        .lines()
        .find(|l| l.starts_with('+'))
        .expect("a features line");
    for feature in ["+CAP", "+SECCOMP", "+YAJL"] {
        assert!(
            features.split_whitespace().any(|f| f == feature),
            "{feature} missing in {features:?}"
        );
    }
    assert!(!features.contains("SYSTEMD"), "{features:?}");
}

/// aarch64: the same recipes cross-compiled by the same zig (the x86_64
/// zig package from out/repo/x86_64), crun run under qemu-user.
fn aarch64_crun(root: &Path, mirror: &Path, stage: &Path) {
    if !support::require_tool("qemu-aarch64") {
        return;
    }
    let started = std::time::Instant::now();
    build_offline(root, mirror, &["--arch", "aarch64", "crun"]);
    eprintln!("aarch64 crun and its base built in {:?}", started.elapsed());
    assert!(root.join("out/repo/aarch64/crun-1.8.1-r0.apk").is_file());
    assert!(root.join("out/repo/aarch64/argp-dev-2.4-r0.apk").is_file());
    // out/stage holds the architecture built last.
    let crun = check_crun(stage, goblin::elf::header::EM_AARCH64);
    // crun re-executes itself from a sealed memfd copy of /proc/self/exe
    // (CVE-2019-5736) unless that file is on a read-only filesystem; under
    // qemu-user it is qemu's own binary, and the copy would run qemu. In a
    // bwrap namespace with / bound read-only, crun runs as it is.
    let args = [
        "--ro-bind",
        "/",
        "/",
        "--dev",
        "/dev",
        "--proc",
        "/proc",
        "qemu-aarch64",
        crun.to_str().unwrap(),
        "--version",
    ];
    check_crun_version(&run_binary(Path::new("bwrap"), &args));
}
