//! The build stage: one recipe's sources → staged package trees.
//!
//! [`run`] goes through these steps, in order:
//!
//! 1. **Preflight.** bwrap (under `--sandbox bwrap`) and every `host_tools`
//!    entry of the recipe must be on the build `PATH`; a missing one fails
//!    before anything is touched, naming the tool and the recipe.
//! 2. **Work folders.** `out/work/NAME/{src,pkg,home,tmp}` are recreated
//!    empty, and `out/logs/NAME.log` is truncated.
//! 3. **Sources.** [`crate::source::prepare`] fills `src/` and says which
//!    folder the build runs in.
//! 4. **Build and check steps**, each a shell script run in the sandbox (see
//!    `build/sandbox.rs` for what it sees). All output goes to the log; a failure
//!    returns [`BuildError::Step`] with the last [`LOG_TAIL_LINES`] lines.
//! 5. **Strip** ELF files unless the recipe says `!strip`.
//! 6. **Split** subpackages out of `pkg/` by their path globs, in order.
//! 7. **Normalize** every staged tree (mtimes, modes).
//! 8. **Publish** the trees as `out/stage/NAME/PKGNAME/`: they are assembled in
//!    a temporary folder next to it and renamed into place, so a crash never
//!    leaves a half-written tree that looks complete.
//!
//! The result, [`Staged`], is the whole interface to the packaging stage: the
//! staged trees plus the names, descriptions and dependencies to record.

mod bwrap;
mod normalize;
mod sandbox;
mod split;
mod stage;
mod steps;
mod strip;
#[cfg(test)]
mod tests;

use std::ffi::OsStr;
use std::fs::File;
use std::path::{Path, PathBuf};

use crate::process::{self, ProcessError};
use crate::recipe::Recipe;
use crate::settings::{SandboxMode, Settings};
use bwrap::HostLayout;
use sandbox::{StepInfo, WorkDirs};
use steps::Steps;

pub use bwrap::{BUILD_GID, BUILD_UID};
pub use normalize::NormalizeError;
pub use sandbox::SYSTEM_PATH;
pub use split::SplitError;
pub use strip::StripError;

/// How many lines of the log a failed step's error carries.
pub const LOG_TAIL_LINES: usize = 40;

/// What to build, and how.
#[derive(Debug, Clone)]
pub struct BuildRequest<'a> {
    /// Run-wide settings (output folder, jobs, sandbox mode, shell).
    pub settings: &'a Settings,
    /// The recipe to build.
    pub recipe: &'a Recipe,
    /// The fixed time every output file gets, and `SOURCE_DATE_EPOCH`.
    pub source_date_epoch: i64,
    /// The target architecture (`CARCH`), e.g. `x86_64`.
    pub arch: String,
    /// A folder holding the installed build dependencies (forge packages
    /// unpacked with their `usr/` tree); mounted read-only at `/forge/deps`
    /// and put on the search paths.
    pub deps_root: Option<PathBuf>,
    /// The hermetic stage's build root; `None` builds with the host's
    /// toolchain (the bootstrap stage).
    pub hermetic: Option<HermeticRoot>,
}

/// A build root made of forge packages (docs/bootstrap.md): its top-level
/// folders become the sandbox's `/usr`, `/bin`, `/lib*`, and nothing of
/// the host's `/usr` is there.
#[derive(Debug, Clone)]
pub struct HermeticRoot {
    /// The assembled root (`out/roots/<arch>/NAME`).
    pub root: PathBuf,
    /// The tool cache shared by hermetic units (`out/toolcache`), writable
    /// at `/forge/cache` (`$XDG_CACHE_HOME`): zig keeps the musl and
    /// compiler-rt it builds per target there.
    pub cache: PathBuf,
}

/// The staged output of one recipe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Staged {
    /// The recipe's name.
    pub recipe_name: String,
    /// The time every staged file carries.
    pub source_date_epoch: i64,
    /// The main package first, then the subpackages in recipe order.
    pub packages: Vec<StagedPackage>,
}

/// One package's staged tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagedPackage {
    /// The package name.
    pub name: String,
    /// Its one-line description.
    pub description: String,
    /// Runtime dependencies (apk dependency strings).
    pub depends: Vec<String>,
    /// Extra provides.
    pub provides: Vec<String>,
    /// The staged tree: `out/stage/RECIPE/NAME`.
    pub root: PathBuf,
}

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// bubblewrap is missing under `--sandbox bwrap`.
    #[error("bubblewrap (`bwrap`) is not installed; install it or build with `--sandbox none`")]
    NoBwrap,
    /// bubblewrap is older than the sandbox needs (or does not say its version).
    #[error(
        "bubblewrap 0.8 or later is needed for the build sandbox (`--disable-userns`); `bwrap --version` says `{found}`"
    )]
    OldBwrap {
        /// What `bwrap --version` printed.
        found: String,
    },
    /// A tool the recipe lists in `host_tools` is missing.
    #[error("recipe `{recipe}` needs host tool `{tool}`, which is not on the build PATH ({path})")]
    MissingTool {
        /// The recipe.
        recipe: String,
        /// The missing tool.
        tool: String,
        /// The PATH searched.
        path: String,
    },
    /// Preparing the sources failed.
    #[error("preparing the sources of `{recipe}`")]
    Source {
        /// The recipe.
        recipe: String,
        /// What went wrong.
        #[source]
        source: Box<crate::source::SourceError>,
    },
    /// The hermetic stage needs the sandbox: without it the scripts would
    /// see the host's `/usr`.
    #[error(
        "`{recipe}` builds in the hermetic stage, which needs the bubblewrap sandbox (not --sandbox none)"
    )]
    HermeticWithoutSandbox {
        /// The recipe.
        recipe: String,
    },
    /// The build or check script failed.
    #[error("{step} step of `{recipe}` failed ({status}); log: {}", log.display())]
    Step {
        /// The recipe.
        recipe: String,
        /// `build` or `check`.
        step: &'static str,
        /// How the step ended.
        status: String,
        /// The full log.
        log: PathBuf,
        /// Its last [`LOG_TAIL_LINES`] lines.
        tail: Vec<String>,
    },
    /// The sandbox could not be started.
    #[error("starting the {step} step of `{recipe}`")]
    Spawn {
        /// The recipe.
        recipe: String,
        /// `build` or `check`.
        step: &'static str,
        /// Why.
        #[source]
        source: ProcessError,
    },
    /// Stripping failed.
    #[error("stripping the files of `{recipe}`")]
    Strip {
        /// The recipe.
        recipe: String,
        /// Why.
        #[source]
        source: StripError,
    },
    /// Splitting subpackages failed.
    #[error("splitting the subpackages of `{recipe}`")]
    Split {
        /// The recipe.
        recipe: String,
        /// Why.
        #[source]
        source: SplitError,
    },
    /// Normalizing the staged trees failed.
    #[error("normalizing the staged files of `{recipe}`")]
    Normalize {
        /// The recipe.
        recipe: String,
        /// Why.
        #[source]
        source: NormalizeError,
    },
    /// A file operation on the work or stage folders failed.
    #[error("{op} {}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// On what.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl BuildError {
    /// For a failed step: the log file and its last lines, for the CLI to show.
    pub fn log_tail(&self) -> Option<(&Path, &[String])> {
        match self {
            BuildError::Step { log, tail, .. } => Some((log, tail)),
            _ => None,
        }
    }
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> BuildError {
    let path = path.to_path_buf();
    move |source| BuildError::Io { op, path, source }
}

/// `out/work/NAME`: where a recipe is built.
pub fn work_dir(settings: &Settings, name: &str) -> PathBuf {
    settings.out.join("work").join(name)
}

/// `out/stage/NAME`: where its staged trees end up.
pub fn stage_dir(settings: &Settings, name: &str) -> PathBuf {
    settings.out.join("stage").join(name)
}

/// `out/logs/NAME.log`: the whole output of its last build.
pub fn log_path(settings: &Settings, name: &str) -> PathBuf {
    settings.logs_dir().join(format!("{name}.log"))
}

/// Build one recipe into staged trees (see the module docs for the steps).
pub fn run(req: &BuildRequest<'_>) -> Result<Staged, BuildError> {
    let settings = req.settings;
    let recipe = req.recipe;
    let name = recipe.name.as_str();

    let system_path = match &req.hermetic {
        Some(h) => sandbox::SYSTEM_PATH
            .split(':')
            .map(|d| h.root.join(d.trim_start_matches('/')).display().to_string())
            .collect::<Vec<_>>()
            .join(":"),
        None => sandbox::SYSTEM_PATH.to_string(),
    };
    let host_path = match &req.deps_root {
        Some(d) => format!("{}:{system_path}", d.join("usr/bin").display()),
        None => system_path,
    };
    if let Some(deps) = &req.deps_root
        && !deps.is_dir()
    {
        return Err(BuildError::Io {
            op: "reading the build-dependency folder",
            path: deps.clone(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        });
    }
    let bwrap = match settings.sandbox {
        SandboxMode::Bwrap => Some(find_bwrap()?),
        SandboxMode::None if req.hermetic.is_some() => {
            return Err(BuildError::HermeticWithoutSandbox {
                recipe: name.to_string(),
            });
        }
        SandboxMode::None => None,
    };
    let layout = match &req.hermetic {
        Some(h) => {
            std::fs::create_dir_all(&h.cache).map_err(io_err("creating", &h.cache))?;
            HostLayout::of_root(&h.root).map_err(io_err("reading", &h.root))?
        }
        None => HostLayout::read(),
    };
    for tool in recipe.tools_for(&req.arch) {
        if process::find_in_path(&tool, OsStr::new(&host_path)).is_none() {
            return Err(BuildError::MissingTool {
                recipe: name.to_string(),
                tool,
                path: host_path,
            });
        }
    }

    let dirs = fresh_work_dirs(&work_dir(settings, name))?;
    let log_file = log_path(settings, name);
    let mut log = open_log(&log_file)?;

    let prepared = crate::source::prepare(settings, recipe, &dirs.src, req.source_date_epoch)
        .map_err(|source| BuildError::Source {
            recipe: name.to_string(),
            source: Box::new(source),
        })?;

    let spinner = settings
        .shell
        .spinner(format!("{name} {}", recipe.full_version()));
    if bwrap.is_none() {
        settings.shell.warn(format!(
            "building `{name}` without a sandbox (--sandbox none): its scripts can reach the network and write anywhere you can"
        ));
    }
    let pkgver = recipe.version.to_string();
    let info = StepInfo {
        pkgname: name,
        pkgver: &pkgver,
        pkgrel: recipe.release,
        arch: &req.arch,
        source_date_epoch: req.source_date_epoch,
        jobs: settings.jobs,
    };
    let steps = Steps {
        recipe: name,
        bwrap: bwrap.as_deref(),
        dirs: &dirs,
        builddir: &prepared.builddir,
        deps_root: req.deps_root.as_deref(),
        layout: &layout,
        cache: req.hermetic.as_ref().map(|h| h.cache.as_path()),
        net: recipe.options.net,
        info: &info,
        log_path: &log_file,
    };
    settings
        .shell
        .status("Building", format!("{name} {}", recipe.full_version()));
    // A unit of another architecture made programs the host may not run
    // (`runs_programs_of`); a recipe that cross-compiles with a host cross
    // compiler (`${carch}` tools, such as linux) writes its check for the
    // host.
    let result = steps.run("build", &recipe.build, &mut log).and_then(|()| {
        if recipe.options.no_check || recipe.check.trim().is_empty() {
            Ok(())
        } else if !runs_programs_of(&req.arch) && !recipe.cross_compiles() {
            settings.shell.note(format!(
                "{name}: check step skipped: this machine cannot run {} programs \
                 (no qemu-{} registered in binfmt_misc)",
                req.arch, req.arch
            ));
            Ok(())
        } else {
            steps.run("check", &recipe.check, &mut log)
        }
    });
    spinner.finish_and_clear();
    result?;

    let no_strip_tool =
        req.hermetic.is_some() && process::find_in_path("strip", OsStr::new(&host_path)).is_none();
    // The bootstrap stage's strip is the host's binutils, for the host's
    // machine only.
    let foreign_bootstrap = req.hermetic.is_none() && req.arch != crate::pipeline::host_arch();
    if no_strip_tool && !recipe.options.no_strip {
        // The seed has no strip (zig's objcopy cannot); its cc links with -s.
        settings.shell.verbose(format!(
            "{name}: no strip in the build root, binaries are as the linker left them"
        ));
    } else if foreign_bootstrap && !recipe.options.no_strip {
        settings.shell.verbose(format!(
            "{name}: the host's strip cannot read {} files, binaries are as the linker left them",
            req.arch
        ));
    } else if !recipe.options.no_strip {
        let n = steps.strip(&host_path)?;
        settings
            .shell
            .verbose(format!("stripped {n} files of {name}"));
    }
    stage::stage(req, &dirs)
}

/// bwrap on forge's PATH, at least [`bwrap::MIN_BWRAP`].
fn find_bwrap() -> Result<PathBuf, BuildError> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| sandbox::SYSTEM_PATH.into());
    let bwrap = process::find_in_path("bwrap", &path).ok_or(BuildError::NoBwrap)?;
    let text = process::Cmd::new(&bwrap)
        .arg("--version")
        .run_stdout()
        .unwrap_or_default();
    match bwrap::parse_version(&text) {
        Some(v) if v >= bwrap::MIN_BWRAP => Ok(bwrap),
        _ => Err(BuildError::OldBwrap {
            found: text.trim().to_string(),
        }),
    }
}

/// Remove and recreate the work folders, and write the sandbox's `/etc` files.
fn fresh_work_dirs(work: &Path) -> Result<WorkDirs, BuildError> {
    remove_tree(work).map_err(io_err("removing", work))?;
    let dirs = WorkDirs::new(work);
    for d in [&dirs.src, &dirs.pkg, &dirs.home, &dirs.tmp, &dirs.etc] {
        std::fs::create_dir_all(d).map_err(io_err("creating", d))?;
    }
    let (passwd, group) = bwrap::passwd_group();
    for (file, text) in [("passwd", passwd), ("group", group)] {
        let p = dirs.etc.join(file);
        std::fs::write(&p, text).map_err(io_err("writing", &p))?;
    }
    Ok(dirs)
}

/// Remove a folder tree, also when a build left read-only folders in it (Go's
/// module cache does): on a permission error, make every folder writable by
/// its owner and try again. A missing tree is fine.
fn remove_tree(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            for entry in walkdir::WalkDir::new(path).into_iter().flatten() {
                if entry.file_type().is_dir() {
                    let mode = entry
                        .metadata()
                        .map_err(std::io::Error::other)?
                        .permissions()
                        .mode();
                    std::fs::set_permissions(
                        entry.path(),
                        std::fs::Permissions::from_mode(mode | 0o700),
                    )?;
                }
            }
            std::fs::remove_dir_all(path)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

fn open_log(path: &Path) -> Result<File, BuildError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io_err("creating", parent))?;
    }
    File::create(path).map_err(io_err("creating", path))
}

/// Whether this machine runs `arch`'s programs: its own architecture, or one
/// the kernel hands to qemu-user (an enabled binfmt_misc entry `qemu-ARCH`,
/// as Debian's qemu-user-binfmt registers). Check steps of other
/// architectures are skipped with a note (issue #10: run under qemu-user, or
/// skipped with a clear note).
fn runs_programs_of(arch: &str) -> bool {
    if arch == crate::pipeline::host_arch() {
        return true;
    }
    let entry = Path::new("/proc/sys/fs/binfmt_misc").join(format!("qemu-{arch}"));
    std::fs::read_to_string(entry).is_ok_and(|s| s.lines().next() == Some("enabled"))
}
