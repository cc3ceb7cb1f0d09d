//! The one gate for tests that need an outside tool or file.
//!
//! Locally a missing tool is a skip with a note on stderr. CI sets
//! `FORGE_TEST_REQUIRE_TOOLS=1`, which turns every skip into a failure, so a
//! test that needs a tool can never pass silently there. Unit tests reach this
//! file as `crate::test_tools` (see `src/lib.rs`), integration tests and bench
//! binaries through `#[path]`; there is no second copy.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Whether CI demands every outside tool (`FORGE_TEST_REQUIRE_TOOLS=1`).
pub fn tools_required() -> bool {
    std::env::var_os("FORGE_TEST_REQUIRE_TOOLS").is_some_and(|v| v == "1")
}

/// Report a missing prerequisite: panic when tools are required, otherwise
/// print a skip note. Always returns false, so callers can `return` on it.
pub fn missing(what: &str) -> bool {
    if tools_required() {
        panic!("{what} (FORGE_TEST_REQUIRE_TOOLS=1 makes this a failure)");
    }
    eprintln!("skipping: {what}");
    false
}

/// True when `tool` is an executable on PATH; see [`missing`] otherwise.
pub fn require_tool(tool: &str) -> bool {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false);
    found || missing(&format!("required tool `{tool}` is not on PATH"))
}

/// True when every tool in `tools` is on PATH.
pub fn require_tools(tools: &[&str]) -> bool {
    tools.iter().all(|t| require_tool(t))
}

/// True when `path` exists (a seeded mirror file, a firmware blob…).
pub fn require_file(path: &Path) -> bool {
    path.exists() || missing(&format!("{} is missing", path.display()))
}

/// True when bubblewrap is installed and can create a sandbox on this host.
pub fn require_bwrap() -> bool {
    if !require_tool("bwrap") {
        return false;
    }
    let ok = Command::new("bwrap")
        .args(["--unshare-all", "--ro-bind", "/", "/", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    ok || missing("bwrap cannot create a sandbox on this host")
}

/// True when the tests run as root (CI runs the suite as root).
pub fn require_root() -> bool {
    use std::os::unix::fs::MetadataExt as _;
    let root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
    root || missing("this test needs root (CI runs the suite as root)")
}

/// The folder of real upstream source files that `.ci/seed-mirror.sh`
/// fills: `FORGE_TEST_MIRROR`, or `/tmp/forge-mirror` where `.ci/run` puts
/// it.
pub fn test_mirror() -> PathBuf {
    std::env::var_os("FORGE_TEST_MIRROR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp/forge-mirror"))
}

/// The seeded mirror folder when it holds `file`; see [`missing`] otherwise.
pub fn require_mirror_file(file: &str) -> Option<PathBuf> {
    let dir = test_mirror();
    if dir.join(file).is_file() {
        return Some(dir);
    }
    missing(&format!(
        "{} holds no {file} (run .ci/seed-mirror.sh DIR and set FORGE_TEST_MIRROR=DIR)",
        dir.display()
    ));
    None
}

/// True when this process may make a private mount namespace and mount a
/// tmpfs in it (root, with `unshare`): fault tests fill a small tmpfs that
/// nobody else sees and that vanishes with the namespace.
pub fn require_private_mounts() -> bool {
    if !require_root() || !require_tool("unshare") || !require_tool("mount") {
        return false;
    }
    let Ok(dir) = tempfile::tempdir() else {
        return missing("no temp folder for a mount point");
    };
    let ok = Command::new("unshare")
        .args(["-m", "mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs"])
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    ok || missing("cannot mount a tmpfs in a private mount namespace (needs root)")
}
