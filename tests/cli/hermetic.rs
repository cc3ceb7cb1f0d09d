//! Hermetic build roots: a unit's `/` is assembled from forge packages (the
//! project's `[build-root] base` and its makedepends), the host's `/usr` is
//! not in the sandbox, and the root's identity is part of the unit key.
//!
//! The base here is a `toolbox` package made in the bootstrap stage from
//! the host's static busybox (Debian's busybox-static): a shell and the
//! usual applets, nothing else.

use std::os::unix::fs::MetadataExt as _;
use std::path::Path;

use crate::support::{self, forge, run_ok};

const BUSYBOX: &str = "/bin/busybox";

/// A project whose recipes build in the hermetic stage by default, with the
/// `toolbox` base (bootstrap stage) and a `probe` recipe; `None` when the
/// host has no static busybox or no bwrap (a failure in CI).
fn toolbox_project() -> Option<support::Project> {
    if !support::require_file(Path::new(BUSYBOX)) || !support::require_bwrap() {
        return None;
    }
    let p = support::Project::new();
    p.forge_toml("[build-root]\nstage = \"hermetic\"\nbase = [\"toolbox\"]\n");
    p.recipe("toolbox")
        .stage("bootstrap")
        .options(&["!strip"])
        .script(
            "install -D -m 755 /bin/busybox \"$pkgdir/bin/busybox\"\n\
             for a in sh ls cat test mkdir echo readlink; do ln -s busybox \"$pkgdir/bin/$a\"; done",
        )
        .write();
    p.recipe("probe")
        .script(
            "mkdir -p \"$pkgdir/usr/share/probe\"\n\
             out=\"$pkgdir/usr/share/probe\"\n\
             ls / > \"$out/top\"\n\
             ls /bin > \"$out/bin\"\n\
             echo \"$XDG_CACHE_HOME\" > \"$out/cache\"\n\
             if test -e /usr/bin/gcc || test -e /usr/lib/x86_64-linux-gnu || test -e /etc/ld.so.cache; then\n\
               echo 'host files in the root' >&2; exit 1\n\
             fi",
        )
        .write();
    p.commit().key();
    Some(p)
}

fn read(root: &Path, rel: &str) -> String {
    std::fs::read_to_string(root.join(rel)).unwrap()
}

#[test]
fn hermetic_root_is_made_of_packages_not_the_host() {
    let Some(p) = toolbox_project() else {
        return;
    };
    let root = p.path();
    let (_, err) = run_ok(forge(root).args(["-v", "build", "probe"]));
    assert!(err.contains("2 built"), "{err}");
    assert!(
        err.contains("probe: build root of 1 packages assembled in"),
        "{err}"
    );
    let staged = "out/stage/probe/probe/usr/share/probe";
    // `/` holds the toolbox's /bin and what the sandbox makes, no /usr.
    assert_eq!(
        read(root, &format!("{staged}/top")),
        "bin\ndev\netc\nforge\nproc\ntmp\n"
    );
    assert!(read(root, &format!("{staged}/bin")).contains("busybox\n"));
    assert_eq!(read(root, &format!("{staged}/cache")), "/forge/cache\n");
    // The root's files are hard links into the package store.
    let in_root = root.join("out/roots/x86_64/probe/bin/busybox");
    let store = std::fs::read_dir(root.join("out/pkgstore"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.join("bin/busybox").is_file())
        .expect("the toolbox in the store");
    let ino = |p: &Path| std::fs::metadata(p).unwrap().ino();
    assert_eq!(ino(&in_root), ino(&store.join("bin/busybox")));

    // The state records the root's identity; a second run is fresh.
    let root_component = || {
        let state: serde_json::Value =
            serde_json::from_str(&read(root, "out/state/x86_64/probe.json")).unwrap();
        state["inputs"]["components"]["root"]
            .as_str()
            .expect("a root component")
            .to_string()
    };
    let first = root_component();
    let (_, err) = run_ok(forge(root).args(["build", "--explain", "probe"]));
    assert!(err.contains("nothing to build: 2 fresh"), "{err}");

    // A new toolbox is a new root: probe is rebuilt, and records the root
    // it was really built in (the plan could only predict the old one).
    let text = read(root, "recipes/toolbox/recipe.toml").replace("release = 0", "release = 1");
    std::fs::write(root.join("recipes/toolbox/recipe.toml"), text).unwrap();
    p.commit();
    let (_, err) = run_ok(forge(root).args(["build", "--explain", "probe"]));
    assert!(
        err.contains("probe 1.0-r0: dirty: build dependency `toolbox` changed"),
        "{err}"
    );
    assert!(err.contains("2 built"), "{err}");
    assert_ne!(root_component(), first);
    let (_, err) = run_ok(forge(root).args(["build", "--explain", "probe"]));
    assert!(err.contains("nothing to build: 2 fresh"), "{err}");
}

#[test]
fn hermetic_stage_needs_a_base_and_the_sandbox() {
    let Some(p) = toolbox_project() else {
        return;
    };
    let root = p.path();
    p.forge_toml("[build-root]\nstage = \"hermetic\"\n");
    p.commit();
    let out = support::run(forge(root).args(["build", "probe"]));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(
            "the hermetic stage needs a base: list the seed and the base tools in forge.toml"
        ),
        "{err}"
    );
    p.forge_toml("[build-root]\nstage = \"hermetic\"\nbase = [\"toolbox\"]\n");
    p.commit();
    let out = support::run(forge(root).args(["--sandbox", "none", "build", "probe"]));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("`probe` builds in the hermetic stage, which needs the bubblewrap sandbox"),
        "{err}"
    );
}
