//! How one build step is run: the environment it sees and, under bubblewrap,
//! the filesystem it sees.
//!
//! Everything here is pure (the host's `/bin`, `/lib`… layout is read once into
//! [`HostLayout`] by the caller), so the exact bwrap command line is tested
//! without starting anything.
//!
//! Under bubblewrap the step sees fixed paths, whatever the host folders are
//! called, so no host path can leak into the outputs:
//!
//! | in the sandbox | on the host | access |
//! |---|---|---|
//! | `/usr`, `/bin`, `/lib*` | the host toolchain | read-only |
//! | `/etc` | `ld.so.cache`, `alternatives`, a minimal `passwd`/`group` | read-only |
//! | `/forge/src` (`$srcdir`) | `out/work/NAME/src` | read-write |
//! | `/forge/pkg` (`$pkgdir`) | `out/work/NAME/pkg` | read-write |
//! | `/forge/home` (`$HOME`) | `out/work/NAME/home` | read-write |
//! | `/tmp` | `out/work/NAME/tmp` (disk, not RAM: big builds fit) | read-write |
//! | `/forge/deps` | the installed build dependencies | read-only |
//!
//! The root itself is a fresh tmpfs, remounted read-only once populated, so
//! only the work folders above are writable. Every namespace
//! is unshared (the network too, unless the recipe has the `net` option).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The fixed in-sandbox locations.
pub(crate) const SANDBOX_SRC: &str = "/forge/src";
pub(crate) const SANDBOX_PKG: &str = "/forge/pkg";
pub(crate) const SANDBOX_HOME: &str = "/forge/home";
pub(crate) const SANDBOX_DEPS: &str = "/forge/deps";
pub(crate) const SANDBOX_TMP: &str = "/tmp";

/// The host directories a step writes to (all under `out/work/NAME`).
#[derive(Debug, Clone)]
pub(crate) struct WorkDirs {
    /// `out/work/NAME`.
    pub work: PathBuf,
    /// `$srcdir` on the host.
    pub src: PathBuf,
    /// `$pkgdir` on the host.
    pub pkg: PathBuf,
    /// `$HOME` on the host.
    pub home: PathBuf,
    /// `$TMPDIR` on the host.
    pub tmp: PathBuf,
    /// Generated read-only files (`passwd`, `group`).
    pub etc: PathBuf,
}

impl WorkDirs {
    /// The layout under `work`.
    pub fn new(work: &Path) -> WorkDirs {
        WorkDirs {
            work: work.to_path_buf(),
            src: work.join("src"),
            pkg: work.join("pkg"),
            home: work.join("home"),
            tmp: work.join("tmp"),
            etc: work.join("etc"),
        }
    }
}

/// The paths a build script sees, in or out of the sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScriptPaths {
    pub srcdir: PathBuf,
    pub builddir: PathBuf,
    pub pkgdir: PathBuf,
    pub home: PathBuf,
    pub tmp: PathBuf,
    pub deps: Option<PathBuf>,
}

impl ScriptPaths {
    /// The fixed paths inside the sandbox.
    pub fn sandboxed(builddir: &Path, has_deps: bool) -> ScriptPaths {
        let src = PathBuf::from(SANDBOX_SRC);
        ScriptPaths {
            builddir: join_rel(&src, builddir),
            srcdir: src,
            pkgdir: PathBuf::from(SANDBOX_PKG),
            home: PathBuf::from(SANDBOX_HOME),
            tmp: PathBuf::from(SANDBOX_TMP),
            deps: has_deps.then(|| PathBuf::from(SANDBOX_DEPS)),
        }
    }

    /// The real host paths (`--sandbox none`).
    pub fn direct(dirs: &WorkDirs, builddir: &Path, deps_root: Option<&Path>) -> ScriptPaths {
        ScriptPaths {
            srcdir: dirs.src.clone(),
            builddir: join_rel(&dirs.src, builddir),
            pkgdir: dirs.pkg.clone(),
            home: dirs.home.clone(),
            tmp: dirs.tmp.clone(),
            deps: deps_root.map(Path::to_path_buf),
        }
    }
}

/// `base/rel`, where an empty or `.` `rel` is `base` itself.
fn join_rel(base: &Path, rel: &Path) -> PathBuf {
    if rel.as_os_str().is_empty() || rel == Path::new(".") {
        base.to_path_buf()
    } else {
        base.join(rel)
    }
}

/// The system `PATH` of a build step, before any dependency folders.
pub const SYSTEM_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What a build step knows about the build, besides paths.
#[derive(Debug, Clone)]
pub(crate) struct StepInfo<'a> {
    pub pkgname: &'a str,
    pub pkgver: &'a str,
    pub pkgrel: u32,
    pub arch: &'a str,
    pub source_date_epoch: i64,
    pub jobs: usize,
}

/// The complete environment of a build step, sorted by name. Nothing comes
/// from the caller's environment.
pub(crate) fn environment(info: &StepInfo<'_>, paths: &ScriptPaths) -> Vec<(String, String)> {
    let p = |p: &Path| p.display().to_string();
    let flags = format!("-O2 -ffile-prefix-map={}=.", p(&paths.srcdir));
    let jobs = info.jobs.max(1);
    let mut path = SYSTEM_PATH.to_string();
    let mut env: Vec<(String, String)> = vec![
        ("CARCH".into(), info.arch.into()),
        ("CC".into(), "cc".into()),
        ("CFLAGS".into(), flags.clone()),
        ("CXX".into(), "c++".into()),
        ("CXXFLAGS".into(), flags),
        ("HOME".into(), p(&paths.home)),
        ("JOBS".into(), jobs.to_string()),
        ("LANG".into(), "C.UTF-8".into()),
        ("LC_ALL".into(), "C.UTF-8".into()),
        ("LDFLAGS".into(), "-Wl,-O1".into()),
        ("MAKEFLAGS".into(), format!("-j{jobs}")),
        ("SHELL".into(), "/bin/sh".into()),
        (
            "SOURCE_DATE_EPOCH".into(),
            info.source_date_epoch.to_string(),
        ),
        ("TMPDIR".into(), p(&paths.tmp)),
        ("TZ".into(), "UTC".into()),
        ("builddir".into(), p(&paths.builddir)),
        ("pkgdir".into(), p(&paths.pkgdir)),
        ("pkgname".into(), info.pkgname.into()),
        ("pkgrel".into(), info.pkgrel.to_string()),
        ("pkgver".into(), info.pkgver.into()),
        ("srcdir".into(), p(&paths.srcdir)),
    ];
    if let Some(deps) = &paths.deps {
        let d = |rel: &str| p(&deps.join(rel));
        path = format!("{}:{path}", d("usr/bin"));
        env.push(("CPATH".into(), d("usr/include")));
        env.push(("LIBRARY_PATH".into(), d("usr/lib")));
        env.push(("LD_LIBRARY_PATH".into(), d("usr/lib")));
        env.push((
            "PKG_CONFIG_PATH".into(),
            format!("{}:{}", d("usr/lib/pkgconfig"), d("usr/share/pkgconfig")),
        ));
        env.push(("depsdir".into(), p(deps)));
    }
    env.push(("PATH".into(), path));
    env.sort();
    env
}

/// The shell text a step runs: fixed umask, stop at the first failing
/// command, start in `$builddir`.
pub(crate) fn wrapper_script(script: &str) -> String {
    format!("umask 022\nset -e\ncd \"$builddir\"\n{script}\n")
}

/// One top-level entry of the host root that holds the toolchain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TopEntry {
    /// A symlink (merged-/usr hosts: `/bin -> usr/bin`).
    Symlink(PathBuf),
    /// A real folder, bound read-only.
    Dir,
}

/// How the host lays out `/bin`, `/sbin`, `/lib*`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct HostLayout {
    /// `(name, entry)` for each present top-level toolchain entry.
    pub top: Vec<(String, TopEntry)>,
}

impl HostLayout {
    /// Read the host's layout (entries that do not exist are skipped).
    pub fn read() -> HostLayout {
        let mut top = Vec::new();
        for name in ["bin", "sbin", "lib", "lib32", "lib64", "libx32"] {
            let path = Path::new("/").join(name);
            match std::fs::symlink_metadata(&path) {
                Ok(m) if m.file_type().is_symlink() => {
                    if let Ok(target) = std::fs::read_link(&path) {
                        top.push((name.to_string(), TopEntry::Symlink(target)));
                    }
                }
                Ok(m) if m.is_dir() => top.push((name.to_string(), TopEntry::Dir)),
                _ => {}
            }
        }
        HostLayout { top }
    }
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

/// What the bwrap command line is made from.
#[derive(Debug, Clone)]
pub(crate) struct BwrapSpec<'a> {
    pub dirs: &'a WorkDirs,
    pub deps_root: Option<&'a Path>,
    pub net: bool,
    pub host: &'a HostLayout,
    pub env: &'a [(String, String)],
}

/// The bwrap arguments (everything before the command to run).
pub(crate) fn bwrap_args(spec: &BwrapSpec<'_>) -> Vec<OsString> {
    let mut a: Vec<OsString> = Vec::new();
    let mut push = |words: &[&dyn AsRefOs]| {
        for w in words {
            a.push(w.as_os());
        }
    };
    push(&[&"--unshare-all"]);
    if spec.net {
        push(&[&"--share-net"]);
    }
    push(&[
        &"--die-with-parent",
        &"--new-session",
        &"--hostname",
        &"forge",
        &"--clearenv",
    ]);
    push(&[&"--ro-bind", &"/usr", &"/usr"]);
    for (name, entry) in &spec.host.top {
        let dest = format!("/{name}");
        match entry {
            TopEntry::Symlink(target) => push(&[&"--symlink", target, &dest]),
            TopEntry::Dir => push(&[&"--ro-bind", &dest, &dest]),
        }
    }
    let etc: Vec<&str> = if spec.net {
        ETC_ALWAYS.iter().chain(ETC_NET).copied().collect()
    } else {
        ETC_ALWAYS.to_vec()
    };
    for f in etc {
        push(&[&"--ro-bind-try", &f, &f]);
    }
    for f in ["passwd", "group"] {
        push(&[
            &"--ro-bind",
            &spec.dirs.etc.join(f),
            &Path::new("/etc").join(f),
        ]);
    }
    push(&[&"--proc", &"/proc", &"--dev", &"/dev"]);
    push(&[&"--bind", &spec.dirs.tmp, &SANDBOX_TMP]);
    push(&[&"--bind", &spec.dirs.src, &SANDBOX_SRC]);
    push(&[&"--bind", &spec.dirs.pkg, &SANDBOX_PKG]);
    push(&[&"--bind", &spec.dirs.home, &SANDBOX_HOME]);
    if let Some(deps) = spec.deps_root {
        push(&[&"--ro-bind", &deps, &SANDBOX_DEPS]);
    }
    // The tmpfs root itself (and so `/etc`, `/forge`) becomes read-only; the
    // bound work folders stay writable.
    push(&[&"--remount-ro", &"/"]);
    for (k, v) in spec.env {
        push(&[&"--setenv", k, v]);
    }
    push(&[&"--chdir", &SANDBOX_SRC]);
    a
}

/// The contents of the sandbox's `/etc/passwd` and `/etc/group` for the
/// user id `uid` and group id `gid` the build runs as.
pub(crate) fn passwd_group(uid: u32, gid: u32) -> (String, String) {
    let mut passwd = format!("root:x:0:0:root:{SANDBOX_HOME}:/bin/sh\n");
    let mut group = String::from("root:x:0:\n");
    if uid != 0 {
        passwd.push_str(&format!(
            "forge:x:{uid}:{gid}:forge:{SANDBOX_HOME}:/bin/sh\n"
        ));
    }
    if gid != 0 {
        group.push_str(&format!("forge:x:{gid}:\n"));
    }
    passwd.push_str("nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n");
    group.push_str("nogroup:x:65534:\n");
    (passwd, group)
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
mod tests {
    use super::*;

    fn info() -> StepInfo<'static> {
        StepInfo {
            pkgname: "hello",
            pkgver: "1.0",
            pkgrel: 2,
            arch: "x86_64",
            source_date_epoch: 1_700_000_000,
            jobs: 3,
        }
    }

    fn get<'a>(env: &'a [(String, String)], key: &str) -> Option<&'a str> {
        env.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    #[test]
    fn sandboxed_environment_uses_fixed_paths() {
        let paths = ScriptPaths::sandboxed(Path::new("hello-1.0"), false);
        let env = environment(&info(), &paths);
        let want = [
            ("srcdir", "/forge/src"),
            ("builddir", "/forge/src/hello-1.0"),
            ("pkgdir", "/forge/pkg"),
            ("HOME", "/forge/home"),
            ("TMPDIR", "/tmp"),
            ("TZ", "UTC"),
            ("LC_ALL", "C.UTF-8"),
            ("SOURCE_DATE_EPOCH", "1700000000"),
            ("CC", "cc"),
            ("CFLAGS", "-O2 -ffile-prefix-map=/forge/src=."),
            ("JOBS", "3"),
            ("MAKEFLAGS", "-j3"),
            ("PATH", SYSTEM_PATH),
            ("pkgrel", "2"),
            ("CARCH", "x86_64"),
        ];
        for (k, v) in want {
            assert_eq!(get(&env, k), Some(v), "{k}");
        }
        for k in [
            "CPATH",
            "LIBRARY_PATH",
            "PKG_CONFIG_PATH",
            "LD_LIBRARY_PATH",
        ] {
            assert_eq!(get(&env, k), None, "{k} without deps");
        }
        let mut sorted = env.clone();
        sorted.sort();
        assert_eq!(env, sorted);
    }

    #[test]
    fn deps_root_extends_search_paths() {
        let paths = ScriptPaths::sandboxed(Path::new("."), true);
        assert_eq!(paths.builddir, Path::new("/forge/src"));
        let env = environment(&info(), &paths);
        let want = [
            ("PATH", format!("/forge/deps/usr/bin:{SYSTEM_PATH}")),
            ("CPATH", "/forge/deps/usr/include".into()),
            ("LIBRARY_PATH", "/forge/deps/usr/lib".into()),
            ("LD_LIBRARY_PATH", "/forge/deps/usr/lib".into()),
            (
                "PKG_CONFIG_PATH",
                "/forge/deps/usr/lib/pkgconfig:/forge/deps/usr/share/pkgconfig".into(),
            ),
        ];
        for (k, v) in want {
            assert_eq!(get(&env, k), Some(v.as_str()), "{k}");
        }
    }

    #[test]
    fn direct_paths_are_the_work_dirs() {
        let dirs = WorkDirs::new(Path::new("/o/work/hello"));
        let paths = ScriptPaths::direct(&dirs, Path::new(""), Some(Path::new("/d")));
        assert_eq!(paths.builddir, Path::new("/o/work/hello/src"));
        assert_eq!(paths.deps.as_deref(), Some(Path::new("/d")));
        let env = environment(&info(), &paths);
        assert_eq!(
            get(&env, "CFLAGS"),
            Some("-O2 -ffile-prefix-map=/o/work/hello/src=.")
        );
    }

    fn words(a: &[OsString]) -> Vec<String> {
        a.iter().map(|s| s.to_string_lossy().into_owned()).collect()
    }

    fn has_seq(hay: &[String], needle: &[&str]) -> bool {
        hay.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn bwrap_command_line() {
        let dirs = WorkDirs::new(Path::new("/o/work/hello"));
        let host = HostLayout {
            top: vec![
                ("bin".into(), TopEntry::Symlink("usr/bin".into())),
                ("lib64".into(), TopEntry::Dir),
            ],
        };
        let env = vec![("TZ".to_string(), "UTC".to_string())];
        let spec = BwrapSpec {
            dirs: &dirs,
            deps_root: Some(Path::new("/deps")),
            net: false,
            host: &host,
            env: &env,
        };
        let a = words(&bwrap_args(&spec));
        let seqs: &[&[&str]] = &[
            &["--unshare-all", "--die-with-parent", "--new-session"],
            &["--clearenv"],
            &["--ro-bind", "/usr", "/usr"],
            &["--symlink", "usr/bin", "/bin"],
            &["--ro-bind", "/lib64", "/lib64"],
            &["--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache"],
            &["--ro-bind", "/o/work/hello/etc/passwd", "/etc/passwd"],
            &["--proc", "/proc", "--dev", "/dev"],
            &["--bind", "/o/work/hello/tmp", "/tmp"],
            &["--bind", "/o/work/hello/src", "/forge/src"],
            &["--bind", "/o/work/hello/pkg", "/forge/pkg"],
            &["--bind", "/o/work/hello/home", "/forge/home"],
            &["--ro-bind", "/deps", "/forge/deps", "--remount-ro", "/"],
            &["--setenv", "TZ", "UTC"],
        ];
        for s in seqs {
            assert!(has_seq(&a, s), "missing {s:?} in {a:?}");
        }
        assert!(!a.iter().any(|w| w == "--share-net"));
        assert!(!a.iter().any(|w| w == "/etc/resolv.conf"));
        // Only the work folders are bound writable.
        let writable: Vec<&String> = a
            .windows(2)
            .filter(|w| w[0] == "--bind")
            .map(|w| &w[1])
            .collect();
        assert!(
            writable.iter().all(|p| p.starts_with("/o/work/hello/")),
            "{writable:?}"
        );

        let spec = BwrapSpec { net: true, ..spec };
        let a = words(&bwrap_args(&spec));
        assert!(has_seq(&a, &["--unshare-all", "--share-net"]));
        assert!(has_seq(
            &a,
            &["--ro-bind-try", "/etc/resolv.conf", "/etc/resolv.conf"]
        ));
    }

    #[test]
    fn wrapper_sets_umask_errexit_and_builddir() {
        assert_eq!(
            wrapper_script("make"),
            "umask 022\nset -e\ncd \"$builddir\"\nmake\n"
        );
    }

    #[test]
    fn passwd_for_root_and_others() {
        let (p, g) = passwd_group(0, 0);
        assert!(p.starts_with("root:x:0:0:root:/forge/home:/bin/sh\n"));
        assert!(!p.contains("forge:x:"));
        assert!(g.starts_with("root:x:0:\n"));
        let (p, g) = passwd_group(1000, 100);
        assert!(p.contains("forge:x:1000:100:forge:/forge/home:/bin/sh\n"));
        assert!(g.contains("forge:x:100:\n"));
    }
}
