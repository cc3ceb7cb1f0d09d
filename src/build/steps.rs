//! Running a unit's scripts, and `strip` on their output: under bubblewrap
//! (see `build/bwrap.rs` for the containment) or, with `--sandbox none`,
//! directly on the host.
//!
//! `strip` runs in the same sandbox as the build, with only `$pkgdir`
//! writable: the files it reads were made by the build, which may have
//! crafted them to exploit binutils, so it gets no more power than the build
//! had.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::bwrap::{self, BwrapSpec, HostLayout};
use super::sandbox::{self, SANDBOX_PKG, ScriptPaths, StepInfo, WorkDirs};
use super::strip::{self, Runner};
use super::{BuildError, LOG_TAIL_LINES};
use crate::process::{self, Cmd, ProcessError};

/// Everything needed to run one step.
pub(super) struct Steps<'a> {
    pub recipe: &'a str,
    pub bwrap: Option<&'a Path>,
    pub dirs: &'a WorkDirs,
    pub builddir: &'a Path,
    pub deps_root: Option<&'a Path>,
    /// Where `/usr`, `/bin`, `/lib*` come from (the host, or a build root).
    pub layout: &'a HostLayout,
    /// The shared tool cache (hermetic stage).
    pub cache: Option<&'a Path>,
    pub net: bool,
    pub info: &'a StepInfo<'a>,
    pub log_path: &'a Path,
}

impl Steps<'_> {
    /// Run the script of `step` (`build` or `check`), its output into `log`.
    pub fn run(&self, step: &'static str, script: &str, log: &mut File) -> Result<(), BuildError> {
        let text = sandbox::wrapper_script(script);
        let mut cmd = match self.bwrap {
            Some(bwrap) => {
                let env = self.sandbox_env();
                let mut cmd = Cmd::new(bwrap);
                cmd.args(bwrap::bwrap_args(&self.spec(&env)));
                cmd.args(["--", "/bin/sh", "-c", &text]);
                cmd
            }
            None => {
                let paths = ScriptPaths::direct(self.dirs, self.builddir, self.deps_root);
                let env = sandbox::environment(self.info, &paths);
                let mut cmd = Cmd::new("/bin/sh");
                cmd.env_clear()
                    .current_dir(&self.dirs.src)
                    .args(["-c", &text]);
                for (k, v) in &env {
                    cmd.env(k, v);
                }
                cmd
            }
        };
        let _ = writeln!(log, "==> forge: {step} step of {}", self.recipe);
        let result = cmd.run_logged(log);
        let _ = log.flush();
        match result {
            Ok(()) => Ok(()),
            Err(ProcessError::Failed { status, .. }) => Err(BuildError::Step {
                recipe: self.recipe.to_string(),
                step,
                status: status.to_string(),
                log: self.log_path.to_path_buf(),
                tail: read_tail(self.log_path, LOG_TAIL_LINES),
            }),
            Err(source) => Err(BuildError::Spawn {
                recipe: self.recipe.to_string(),
                step,
                source,
            }),
        }
    }

    /// Strip the ELF files of `$pkgdir` with the first `strip` on
    /// `host_path` (the build's `PATH`, as the host sees it); returns how many
    /// files were stripped.
    pub fn strip(&self, host_path: &str) -> Result<usize, BuildError> {
        let err = |source| BuildError::Strip {
            recipe: self.recipe.to_string(),
            source,
        };
        let Some(tool) = process::find_in_path("strip", OsStr::new(host_path)) else {
            return strip::strip_tree(None, &self.dirs.pkg).map_err(err);
        };
        let runner = match self.bwrap {
            Some(bwrap) => {
                let env = self.sandbox_env();
                let mut args = bwrap::strip_args(&self.spec(&env));
                // Found through the sandbox's PATH, which mirrors `host_path`.
                args.extend([OsString::from("--"), OsString::from("strip")]);
                Runner {
                    program: bwrap.to_path_buf(),
                    args,
                    root_seen: PathBuf::from(SANDBOX_PKG),
                }
            }
            None => Runner {
                program: tool,
                args: Vec::new(),
                root_seen: self.dirs.pkg.clone(),
            },
        };
        strip::strip_tree(Some(&runner), &self.dirs.pkg).map_err(err)
    }

    /// The environment of a sandboxed process (fixed paths).
    fn sandbox_env(&self) -> Vec<(String, String)> {
        let paths = ScriptPaths::sandboxed(
            self.builddir,
            self.deps_root.is_some(),
            self.cache.is_some(),
        );
        sandbox::environment(self.info, &paths)
    }

    fn spec<'b>(&'b self, env: &'b [(String, String)]) -> BwrapSpec<'b> {
        BwrapSpec {
            dirs: self.dirs,
            deps_root: self.deps_root,
            net: self.net,
            host: self.layout,
            env,
            cache: self.cache,
        }
    }
}

/// The last `n` lines of a text file (empty when it cannot be read).
fn read_tail(path: &Path, n: usize) -> Vec<String> {
    let bytes = std::fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| l.to_string())
        .collect()
}
