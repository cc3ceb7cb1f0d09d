//! What one build step sees: its environment and the fixed paths it is
//! given, in or out of the sandbox. The bubblewrap command line that puts those
//! paths in place, and the containment around them, are in `build/bwrap.rs`.
//!
//! Everything here is pure, so the environment is tested without starting
//! anything. Under bubblewrap the step sees fixed paths, whatever the host
//! folders are called, so no host path can leak into the outputs:
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
//! | `/forge/cache` (`$XDG_CACHE_HOME`, hermetic stage) | `out/toolcache`, shared by hermetic units (zig's cache) | read-write |
//!
//! In the hermetic stage, `/usr`, `/bin`, `/lib*` are the top-level folders
//! of the unit's assembled build root instead of the host's.

use std::path::{Path, PathBuf};

/// The fixed in-sandbox locations.
pub(crate) const SANDBOX_SRC: &str = "/forge/src";
pub(crate) const SANDBOX_PKG: &str = "/forge/pkg";
pub(crate) const SANDBOX_HOME: &str = "/forge/home";
pub(crate) const SANDBOX_DEPS: &str = "/forge/deps";
pub(crate) const SANDBOX_CACHE: &str = "/forge/cache";
pub(crate) const SANDBOX_TMP: &str = "/tmp";

/// The host directories a step writes to (all under `out/work/NAME`).
#[derive(Debug, Clone)]
pub(crate) struct WorkDirs {
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
    /// The shared tool cache (hermetic stage only).
    pub cache: Option<PathBuf>,
}

impl ScriptPaths {
    /// The fixed paths inside the sandbox.
    pub fn sandboxed(builddir: &Path, has_deps: bool, has_cache: bool) -> ScriptPaths {
        let src = PathBuf::from(SANDBOX_SRC);
        ScriptPaths {
            cache: has_cache.then(|| PathBuf::from(SANDBOX_CACHE)),
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
            cache: None,
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
    if let Some(cache) = &paths.cache {
        env.push(("XDG_CACHE_HOME".into(), p(cache)));
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
        let paths = ScriptPaths::sandboxed(Path::new("hello-1.0"), false, false);
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
        let paths = ScriptPaths::sandboxed(Path::new("."), true, false);
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

    #[test]
    fn wrapper_sets_umask_errexit_and_builddir() {
        assert_eq!(
            wrapper_script("make"),
            "umask 022\nset -e\ncd \"$builddir\"\nmake\n"
        );
    }
}
