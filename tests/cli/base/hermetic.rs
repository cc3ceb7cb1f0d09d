//! The base test's second half, on the base it built in the bootstrap
//! stage: the examples build in hermetic roots made only of forge packages
//! (zig, the busybox-dynamic `toolbox`, make, musl), for x86_64 and
//! aarch64; then make, toolbox and yajl rebuild inside a root made of the
//! base's own packages and give the same bytes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use super::{build_offline, elf_links, run_binary, run_musl};
use crate::support;

/// The examples' project settings: hermetic by default, both architectures.
const EXAMPLES_TOML: &str = "arch = [\"x86_64\", \"aarch64\"]\n\
    [build-root]\nstage = \"hermetic\"\nbase = [\"zig\", \"toolbox\", \"make\"]\n";

const EXAMPLES: &[&str] = &["hello", "libgreet", "greet"];

/// The ELF machine of `path`.
fn machine(path: &Path) -> u16 {
    let bytes = std::fs::read(path).unwrap();
    goblin::elf::Elf::parse(&bytes).unwrap().header.e_machine
}

/// hello, libgreet and greet build in roots of forge packages: no host
/// `/usr`, busybox's applets as the shell tools, forge's make. The x86_64
/// programs run (greet through forge's musl loader); the aarch64 ones are
/// aarch64 ELF files, hello runs under qemu-aarch64, and their check steps
/// are skipped with a note.
pub(super) fn examples_build_in_hermetic_roots(root: &Path, mirror: &Path) {
    std::fs::write(root.join("forge.toml"), EXAMPLES_TOML).unwrap();
    let started = Instant::now();
    let mut args = vec!["--arch", "x86_64"];
    args.extend(EXAMPLES);
    build_offline(root, mirror, &args);
    eprintln!(
        "examples in hermetic roots, x86_64: {:?}",
        started.elapsed()
    );

    let groot = root.join("out/roots/x86_64/greet");
    let link = |rel: &str| std::fs::read_link(groot.join(rel)).unwrap();
    assert_eq!(link("bin/sh"), PathBuf::from("busybox.dynamic"));
    assert_eq!(
        link("usr/bin/awk"),
        PathBuf::from("../../bin/busybox.dynamic")
    );
    for file in ["usr/bin/make", "lib/ld-musl-x86_64.so.1", "usr/lib/zig/zig"] {
        assert!(groot.join(file).is_file(), "the root has no {file}");
    }
    for host in [
        "usr/bin/gcc",
        "usr/bin/pkg-config",
        "usr/lib/x86_64-linux-gnu",
    ] {
        assert!(!groot.join(host).exists(), "the root has the host's {host}");
    }
    assert!(root.join("out/deps/greet/usr/include/greet.h").is_file());

    let stage = root.join("out/stage");
    let hello = stage.join("hello/hello/usr/bin/hello");
    assert_eq!(elf_links(&hello), (None, vec![]), "hello is static");
    assert_eq!(run_binary(&hello, &[]), "Hello from forge!\n");
    let greet = stage.join("greet/greet/usr/bin/greet");
    let (interp, libs) = elf_links(&greet);
    assert_eq!(interp.as_deref(), Some("/lib/ld-musl-x86_64.so.1"));
    assert!(libs.iter().any(|l| l == "libgreet.so.1"), "{libs:?}");
    let libdir = ["libgreet/libgreet/usr/lib"];
    assert_eq!(
        run_musl(&stage, &libdir, &greet, &[]),
        "Greetings, forge!\n"
    );

    let started = Instant::now();
    let mut args = vec!["--arch", "aarch64"];
    args.extend(EXAMPLES);
    let err = build_offline(root, mirror, &args);
    eprintln!(
        "examples in hermetic roots, aarch64: {:?}",
        started.elapsed()
    );
    assert!(
        err.contains("hello: check step skipped: this machine cannot run aarch64 programs"),
        "{err}"
    );
    let aarch64 = goblin::elf::header::EM_AARCH64;
    assert_eq!(machine(&hello), aarch64);
    assert_eq!(machine(&greet), aarch64);
    let (interp, _) = elf_links(&greet);
    assert_eq!(interp.as_deref(), Some("/lib/ld-musl-aarch64.so.1"));
    let repo = root.join("out/repo/aarch64");
    support::run_ok(
        support::forge(root)
            .arg("verify")
            .arg(repo.join("APKINDEX.tar.gz")),
    );
    if support::require_tool("qemu-aarch64") {
        let out = Command::new("qemu-aarch64").arg(&hello).output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "Hello from forge!\n");
    }
}

/// The recipes rebuilt in a root made of the base's own packages: make and
/// toolbox (what the root is made of, with musl and busybox-dynamic) and
/// yajl for the libraries. musl and busybox are not rebuilt here: under CI
/// they cost a second full base build (docs/bootstrap.md); libseccomp's
/// libtool needs bash, which no forge package provides.
const REBUILT: &[&str] = &["make", "toolbox", "yajl"];

/// The hermetic rebuild's settings: every package of the roots is part of
/// the base, so their recipes take it from the repository as built before.
const REBUILD_TOML: &str = "[build-root]\nstage = \"hermetic\"\n\
    base = [\"zig\", \"musl\", \"busybox-dynamic\", \"toolbox\", \"make\"]\n";

/// Every `.apk` of `repo` by file name.
fn packages(repo: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(repo)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "apk"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect()
}

/// The recipes of [`REBUILT`], switched to the hermetic stage, build
/// again in roots of the packages the bootstrap stage made, and every
/// package they make is byte-identical to the bootstrap one.
pub(super) fn base_rebuilds_in_its_own_root(root: &Path, mirror: &Path) {
    let repo = root.join("out/repo/x86_64");
    let before = packages(&repo);
    for name in REBUILT {
        let path = root.join("recipes").join(name).join("recipe.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\nstage = \"bootstrap\"\n"), "{name}");
        let text = text.replace("\nstage = \"bootstrap\"\n", "\nstage = \"hermetic\"\n");
        std::fs::write(&path, text).unwrap();
    }
    std::fs::write(root.join("forge.toml"), REBUILD_TOML).unwrap();
    let started = Instant::now();
    let err = build_offline(root, mirror, REBUILT);
    eprintln!("base rebuilt in its own root: {:?}", started.elapsed());
    assert!(err.contains(&format!("{} built", REBUILT.len())), "{err}");

    let mroot = root.join("out/roots/x86_64/make");
    assert_eq!(
        std::fs::read_link(mroot.join("bin/sh")).unwrap(),
        PathBuf::from("busybox.dynamic")
    );
    assert!(!mroot.join("usr/bin/gcc").exists());

    let after = packages(&repo);
    let mut compared = Vec::new();
    for (file, bytes) in &after {
        let Some(old) = before.get(file) else {
            continue;
        };
        let recipe = REBUILT.iter().find(|r| file.starts_with(&format!("{r}-")));
        if recipe.is_none() {
            continue;
        }
        assert!(
            old == bytes,
            "{file} differs after the rebuild in a root of forge packages"
        );
        compared.push(file.clone());
    }
    // make, toolbox, yajl, yajl-dev.
    assert_eq!(compared.len(), 4, "{compared:?}");
}
