//! The bubblewrap command lines: one for a build or check step, one for
//! `strip` on the build's output. Both share the same containment.
//!
//! forge may run as root (CI does), so the sandbox must hold root in, not only
//! an ordinary user. Every sandboxed process:
//!
//! - runs in a new **user namespace** as the fixed build user
//!   [`BUILD_UID`]:[`BUILD_GID`] (`forge` in the sandbox's `/etc/passwd`),
//!   whoever runs forge; files it creates belong to the invoking user on the
//!   host. Host files owned by the invoking user appear owned by the build
//!   user, all others by `nobody`;
//! - has **every capability dropped** (`--cap-drop ALL`: the effective,
//!   permitted, bounding and ambient sets are empty), so `mount`, `chown`,
//!   `chroot` and raw sockets are refused;
//! - cannot make **nested user namespaces** (`--disable-userns`, bwrap 0.8),
//!   the way back to a full capability set in a namespace of its own;
//! - honours **no setuid/setgid bits**: bwrap sets `PR_SET_NO_NEW_PRIVS` and
//!   mounts every bind `nosuid,nodev`; `--new-session` keeps it off the
//!   caller's terminal;
//! - has its own network (none: only loopback, unless the recipe says `net`),
//!   IPC, PID, UTS and cgroup namespaces, a fresh `/proc`, a minimal `/dev`,
//!   and dies with forge (`--die-with-parent`);
//! - sees a fresh tmpfs root, remounted read-only once populated. The only
//!   writable places are the unit's own work folders (`$srcdir`, `$pkgdir`,
//!   `$HOME`, `/tmp`); the toolchain and the build dependencies are bound
//!   read-only. Nothing else of the host is there: not `/root`, not the
//!   project, so not `keys/` (private keys never enter the sandbox).
//!
//! Everything here is pure (the host's `/bin`, `/lib`… layout is read once into
//! [`HostLayout`] by the caller), so the exact command lines are tested
//! without starting anything; `tests/cli/build.rs` tests what they enforce.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::sandbox::{
    SANDBOX_CACHE, SANDBOX_DEPS, SANDBOX_HOME, SANDBOX_PKG, SANDBOX_SRC, SANDBOX_TMP, WorkDirs,
};

/// The user id every sandboxed process runs as, whoever runs forge.
pub const BUILD_UID: u32 = 1000;
/// The group id every sandboxed process runs as.
pub const BUILD_GID: u32 = 1000;

/// The oldest bubblewrap that has every flag used here (`--disable-userns`
/// came in 0.8.0).
pub const MIN_BWRAP: (u32, u32) = (0, 8);

/// The `(major, minor)` version in `bwrap --version` output
/// (`bubblewrap 0.8.0`).
pub(crate) fn parse_version(text: &str) -> Option<(u32, u32)> {
    let v = text.trim().strip_prefix("bubblewrap ")?;
    let mut parts = v.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// One top-level entry of the root that holds the toolchain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TopEntry {
    /// A symlink (merged-/usr hosts: `/bin -> usr/bin`).
    Symlink(PathBuf),
    /// A real folder, bound read-only.
    Dir,
}

/// Where the toolchain comes from: the host's `/usr`, `/bin`, `/sbin`,
/// `/lib*` (the bootstrap stage), or every top-level entry of a build root
/// assembled from forge packages (the hermetic stage).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct HostLayout {
    /// The root the entries are read from: `/`, or the assembled build root.
    /// `None` is the host (`/`, with `/usr` always bound).
    pub root: Option<PathBuf>,
    /// `(name, entry)` for each present top-level toolchain entry.
    pub top: Vec<(String, TopEntry)>,
}

/// Top-level names of a build root that the sandbox makes itself.
const RESERVED_TOP: &[&str] = &["dev", "proc", "tmp", "forge", "etc"];

impl HostLayout {
    /// Read the host's layout (entries that do not exist are skipped).
    pub fn read() -> HostLayout {
        let names = ["bin", "sbin", "lib", "lib32", "lib64", "libx32"];
        HostLayout {
            root: None,
            top: read_top(Path::new("/"), names.iter().map(|n| n.to_string())),
        }
    }

    /// The layout of an assembled build root: every top-level entry but the
    /// ones the sandbox makes itself (`/dev`, `/proc`, `/tmp`, `/forge`,
    /// `/etc`).
    pub fn of_root(root: &Path) -> std::io::Result<HostLayout> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(root)? {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if !RESERVED_TOP.contains(&name.as_str()) {
                names.push(name);
            }
        }
        names.sort();
        Ok(HostLayout {
            root: Some(root.to_path_buf()),
            top: read_top(root, names.into_iter()),
        })
    }
}

/// The symlinks and folders among `names` under `root`.
fn read_top(root: &Path, names: impl Iterator<Item = String>) -> Vec<(String, TopEntry)> {
    let mut top = Vec::new();
    for name in names {
        let path = root.join(&name);
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_symlink() => {
                if let Ok(target) = std::fs::read_link(&path) {
                    top.push((name, TopEntry::Symlink(target)));
                }
            }
            Ok(m) if m.is_dir() => top.push((name, TopEntry::Dir)),
            _ => {}
        }
    }
    top
}

/// Host files of `/etc` a build needs, bound read-only when present.
const ETC_ALWAYS: &[&str] = &["/etc/ld.so.cache", "/etc/alternatives"];
/// Extra host files of `/etc` for builds with the `net` option.
const ETC_NET: &[&str] = &[
    "/etc/resolv.conf",
    "/etc/hosts",
    "/etc/nsswitch.conf",
    "/etc/ssl",
    "/etc/ca-certificates",
];

/// What a build step's bwrap command line is made from.
#[derive(Debug, Clone)]
pub(crate) struct BwrapSpec<'a> {
    pub dirs: &'a WorkDirs,
    pub deps_root: Option<&'a Path>,
    pub net: bool,
    pub host: &'a HostLayout,
    pub env: &'a [(String, String)],
    /// The tool cache shared by hermetic builds (`out/toolcache`), bound
    /// writable at `/forge/cache` for build and check steps.
    pub cache: Option<&'a Path>,
}

/// The bwrap arguments of a build or check step (everything before the
/// command to run).
pub(crate) fn bwrap_args(spec: &BwrapSpec<'_>) -> Vec<OsString> {
    let mut a = Args::default();
    containment(&mut a, spec.net);
    toolchain(&mut a, spec.host, &spec.dirs.etc, spec.net);
    a.push(&[&"--bind", &spec.dirs.tmp, &SANDBOX_TMP]);
    a.push(&[&"--bind", &spec.dirs.src, &SANDBOX_SRC]);
    a.push(&[&"--bind", &spec.dirs.pkg, &SANDBOX_PKG]);
    a.push(&[&"--bind", &spec.dirs.home, &SANDBOX_HOME]);
    if let Some(cache) = spec.cache {
        a.push(&[&"--bind", &cache, &SANDBOX_CACHE]);
    }
    finish(&mut a, spec.deps_root, spec.env, SANDBOX_SRC);
    a.0
}

/// The bwrap arguments that run `strip` on a staged tree: no network, only
/// `pkg` (seen as `/forge/pkg`) writable, a throw-away `/tmp`.
pub(crate) fn strip_args(spec: &BwrapSpec<'_>) -> Vec<OsString> {
    let mut a = Args::default();
    containment(&mut a, false);
    toolchain(&mut a, spec.host, &spec.dirs.etc, false);
    a.push(&[&"--tmpfs", &SANDBOX_TMP]);
    a.push(&[&"--bind", &spec.dirs.pkg, &SANDBOX_PKG]);
    finish(&mut a, spec.deps_root, spec.env, SANDBOX_PKG);
    a.0
}

/// Namespaces, identity, capabilities: the part that holds root in.
fn containment(a: &mut Args, net: bool) {
    a.push(&[&"--unshare-all"]);
    if net {
        a.push(&[&"--share-net"]);
    }
    let (uid, gid) = (BUILD_UID.to_string(), BUILD_GID.to_string());
    a.push(&[
        &"--unshare-user",
        &"--disable-userns",
        &"--uid",
        &uid,
        &"--gid",
        &gid,
        &"--cap-drop",
        &"ALL",
        &"--die-with-parent",
        &"--new-session",
        &"--hostname",
        &"forge",
        &"--clearenv",
    ]);
}

/// The read-only toolchain, `/etc`, `/proc` and `/dev`.
fn toolchain(a: &mut Args, host: &HostLayout, etc_dir: &Path, net: bool) {
    if host.root.is_none() {
        a.push(&[&"--ro-bind", &"/usr", &"/usr"]);
    }
    for (name, entry) in &host.top {
        let dest = format!("/{name}");
        match entry {
            TopEntry::Symlink(target) => a.push(&[&"--symlink", target, &dest]),
            TopEntry::Dir => {
                let from = match &host.root {
                    Some(root) => root.join(name),
                    None => PathBuf::from(&dest),
                };
                a.push(&[&"--ro-bind", &from, &dest]);
            }
        }
    }
    // A root of forge packages takes nothing from the host's `/etc` but what
    // a `net` build needs to resolve names and trust certificates.
    let always = if host.root.is_none() { ETC_ALWAYS } else { &[] };
    let etc: Vec<&str> = if net {
        always.iter().chain(ETC_NET).copied().collect()
    } else {
        always.to_vec()
    };
    for f in etc {
        a.push(&[&"--ro-bind-try", &f, &f]);
    }
    for f in ["passwd", "group"] {
        a.push(&[&"--ro-bind", &etc_dir.join(f), &Path::new("/etc").join(f)]);
    }
    a.push(&[&"--proc", &"/proc", &"--dev", &"/dev"]);
}

/// The build dependencies (read-only), the read-only root, the environment
/// and the working folder.
fn finish(a: &mut Args, deps_root: Option<&Path>, env: &[(String, String)], chdir: &str) {
    if let Some(deps) = deps_root {
        a.push(&[&"--ro-bind", &deps, &SANDBOX_DEPS]);
    }
    // The tmpfs root itself (and so `/etc`, `/forge`) becomes read-only; the
    // bound work folders stay writable.
    a.push(&[&"--remount-ro", &"/"]);
    for (k, v) in env {
        a.push(&[&"--setenv", k, v]);
    }
    a.push(&[&"--chdir", &chdir]);
}

/// The contents of the sandbox's `/etc/passwd` and `/etc/group`: root, the
/// build user `forge` ([`BUILD_UID`]:[`BUILD_GID`]) and nobody.
pub(crate) fn passwd_group() -> (String, String) {
    let passwd = format!(
        "root:x:0:0:root:/root:/bin/sh\n\
         forge:x:{BUILD_UID}:{BUILD_GID}:forge:{SANDBOX_HOME}:/bin/sh\n\
         nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
    );
    let group = format!("root:x:0:\nforge:x:{BUILD_GID}:\nnogroup:x:65534:\n");
    (passwd, group)
}

/// An argument list under construction.
#[derive(Default)]
struct Args(Vec<OsString>);

impl Args {
    fn push(&mut self, words: &[&dyn AsRefOs]) {
        self.0.extend(words.iter().map(|w| w.as_os()));
    }
}

/// Anything that can be one argument word.
trait AsRefOs {
    fn as_os(&self) -> OsString;
}
impl AsRefOs for &str {
    fn as_os(&self) -> OsString {
        OsString::from(*self)
    }
}
impl AsRefOs for String {
    fn as_os(&self) -> OsString {
        OsString::from(self)
    }
}
impl AsRefOs for PathBuf {
    fn as_os(&self) -> OsString {
        self.as_os_str().to_os_string()
    }
}
impl AsRefOs for &Path {
    fn as_os(&self) -> OsString {
        self.as_os_str().to_os_string()
    }
}

#[cfg(test)]
mod tests;
