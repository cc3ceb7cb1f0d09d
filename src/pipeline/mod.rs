//! `forge build`: plan, then execute the plan.
//!
//! 1. **Plan** (`planner`): load every recipe that builds for the host
//!    architecture; makedepends/depends/provides form a
//!    [`crate::graph::UnitGraph`] (provides recorded in the signed index of
//!    earlier builds, `so:` and `pc:`, count too); select the targets and what
//!    they need (all recipes by default; with `--rdeps` also everything that
//!    depends on them); give every unit its input key ([`crate::plan`]) and a
//!    verdict: fresh when its state file carries the same key and every
//!    package it lists still verifies. Images are units of the same plan
//!    ([`images`]). The result is a [`BuildPlan`] value: `forge plan --json`
//!    prints it, `--explain` and `--dry-run` render it, `forge ci plan` turns
//!    it into a CI pipeline.
//! 2. **Execute** dirty package units on the [`crate::jobs`] queue
//!    (`exec`): install build dependencies from the repository ([`deps`]),
//!    prepare sources, build in the sandbox ([`crate::build`]), write signed
//!    packages ([`crate::apk`]), land them in the repository and re-sign the
//!    index ([`crate::repo`]), then write the unit's state file, last. Then
//!    dirty images.
//!
//! `--unit NAME` executes one unit of the plan and nothing else (a CI job);
//! its dependencies must already be fresh, or with `--cache` they are
//! pulled from the build cache (`cached`, [`crate::cache`]), which dirty
//! units are also looked up in before they are built.
//!
//! The whole run holds an exclusive lock on `out/.lock`, so two forge
//! processes on the same output folder take turns, and whatever temporary
//! file a killed run left in `out/` is removed when the lock is taken
//! ([`OutLock`]). Before planning, the no-op stamp (`noop`) may prove
//! from file metadata alone that the plan would be all fresh.

mod buildroot;
mod cached;
mod cross;
mod crossarch;
pub mod deps;
mod exec;
pub mod images;
mod lock;
mod noop;
mod osunits;
mod planner;
mod report;
pub mod store;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::apk::WriteOptions;
use crate::jobs::{self, Outcome};
use crate::plan::value::{BuildPlan, PlanError, PlannedUnit, UnitKind};
use crate::recipe::{self, Stage};
use crate::repo::{self, Repo};
use crate::settings::Settings;
use crate::sign;

pub use lock::OutLock;

pub use report::{Report, UnitReport, Verdict};

/// What to build.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// Recipes to build (with what they need); empty means all.
    pub targets: Vec<String>,
    /// Also build everything that depends on the targets.
    pub rdeps: bool,
    /// Rebuild the targets even when fresh.
    pub force: bool,
    /// Keep building independent units after a failure.
    pub keep_going: bool,
    /// Print why every unit is fresh or dirty.
    pub explain: bool,
    /// Plan only: say what would be built.
    pub dry_run: bool,
    /// Add a legacy SHA-1 signature to packages and the index.
    pub sha1_signature: bool,
    /// Plan (and build) images too.
    pub images: bool,
    /// Execute only this unit of the plan (a recipe name or `image:NAME`);
    /// its dependencies must be fresh, or (with `cache`) in the cache.
    pub unit: Option<String>,
    /// The registry-backed build cache (`--cache`).
    pub cache: Option<std::sync::Arc<crate::cache::Cache>>,
    /// The architecture to build for (`None`: the host's). Only hermetic
    /// recipes build for another architecture (with zig's cross compiler);
    /// images are made for the host's only.
    pub arch: Option<String>,
}

/// A pipeline failure before any unit ran (units' own failures are in the
/// [`Report`]).
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// Recipes failed to load (boxed: it can carry every problem found).
    #[error(transparent)]
    Recipe(Box<recipe::RecipeError>),
    /// The graph is broken.
    #[error(transparent)]
    Graph(#[from] crate::graph::GraphError),
    /// The plan cannot be used as asked (e.g. an unknown `--unit`).
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// `--unit` names a unit whose dependencies are not built yet.
    #[error("unit `{unit}` needs units that are not built yet: {}", .deps.join(", "))]
    DepsNotBuilt {
        /// The unit.
        unit: String,
        /// Its dirty dependencies.
        deps: Vec<String>,
    },
    /// Keys could not be read or made.
    #[error(transparent)]
    Sign(#[from] sign::SignError),
    /// The repository could not be opened.
    #[error(transparent)]
    Repo(#[from] repo::RepoError),
    /// Host tools that dirty units need are missing.
    #[error(
        "missing host tools: {0}; install them (e.g. with apt-get) or adjust the recipes' [build] tools"
    )]
    HostTools(String),
    /// Source identities could not be computed.
    #[error("planning `{recipe}`")]
    Source {
        /// The recipe.
        recipe: String,
        /// The cause.
        #[source]
        source: Box<crate::source::SourceError>,
    },
    /// A file operation failed.
    #[error("{action} {}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl From<recipe::RecipeError> for PipelineError {
    fn from(e: recipe::RecipeError) -> Self {
        PipelineError::Recipe(Box::new(e))
    }
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> PipelineError {
    let path = path.to_path_buf();
    move |source| PipelineError::Io {
        action,
        path,
        source,
    }
}

/// The architecture forge builds for on this host, in apk's names.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "x86_64",
        "aarch64" => "aarch64",
        "arm" => "armv7",
        other => other,
    }
}

/// The identity of the build environment: what, besides the recipe, shapes
/// the bytes a build produces: the architecture, the sandbox mode, the
/// stage, the package compressor and the signature scheme. In the bootstrap
/// stage also the host toolchain: tools looked up on the sandbox's PATH (the
/// one builds use), not forge's own: the C compiler, the binutils linker and
/// the C library, and for another architecture the cross compiler. A hermetic unit's toolchain is its build root, whose
/// identity is the `root` component instead ([`buildroot`]).
fn env_identity(settings: &Settings, arch: &str, opts: &BuildOptions, stage: Stage) -> String {
    let path = std::ffi::OsString::from(crate::build::SYSTEM_PATH);
    let first_line = |tool: &str, arg: &str| match crate::process::find_in_path(tool, &path) {
        Some(p) => crate::process::Cmd::new(&p)
            .arg(arg)
            .run_stdout()
            .map(|s| format!("{} {}", p.display(), s.lines().next().unwrap_or("")))
            .unwrap_or_else(|_| format!("{} (no version)", p.display())),
        None => format!("no {tool}"),
    };
    let sandbox = match settings.sandbox {
        crate::settings::SandboxMode::Bwrap => "bwrap",
        crate::settings::SandboxMode::None => "none",
    };
    let mut f = crate::plan::Fields::new();
    f.field("arch", arch).field("sandbox", sandbox);
    match stage {
        Stage::Bootstrap => f
            .field("cc", &first_line("cc", "--version"))
            .field("ld", &first_line("ld", "--version"))
            .field("libc", &first_line("ldd", "--version")),
        Stage::Hermetic => f.field("stage", "hermetic"),
    };
    // A bootstrap build for another architecture is a cross build
    // (`${carch}-linux-gnu-gcc`): that compiler shapes its bytes too.
    if stage == Stage::Bootstrap && arch != host_arch() {
        f.field(
            "cross-cc",
            &first_line(&format!("{arch}-linux-gnu-gcc"), "--version"),
        );
    }
    f.field("compressor", crate::apk::gzip::COMPRESSOR)
        .field(
            "sha1-signature",
            if opts.sha1_signature { "1" } else { "0" },
        )
        .field("forge-format", &crate::plan::FORMAT_VERSION.to_string())
        .finish()
}

/// The reports of one `forge build`: packages, then images.
#[derive(Debug, Default)]
pub struct Reports {
    /// Package units.
    pub packages: Report,
    /// Image units.
    pub images: Report,
}

impl Reports {
    /// Whether any unit failed or was skipped.
    pub fn failed(&self) -> bool {
        self.packages.failed() || self.images.failed()
    }

    /// Print both reports.
    pub fn print(&self, shell: &crate::output::Shell) {
        self.packages.print(shell);
        self.images.print(shell);
    }
}

/// Plan without executing anything (`forge plan`, `forge ci plan`): every
/// selected unit with its key, verdict and reasons.
pub fn plan(settings: &Settings, opts: &BuildOptions) -> Result<BuildPlan, PipelineError> {
    let (arch, opts) = for_arch(opts);
    Ok(planner::plan(settings, &arch, &opts)?.plan)
}

/// The architecture `opts` plans for, and the options as that plan takes
/// them: images are made for the host's architecture only. `forge build`,
/// `forge plan` and `forge ci plan` all plan through this, so a CI job's
/// plan is the CI plan's.
fn for_arch(opts: &BuildOptions) -> (String, BuildOptions) {
    let arch = opts.arch.as_deref().unwrap_or(host_arch()).to_string();
    let opts = BuildOptions {
        images: opts.images && arch == host_arch(),
        ..opts.clone()
    };
    (arch, opts)
}

/// Plan and execute: build what is dirty, packages then images.
pub fn build(settings: &Settings, opts: &BuildOptions) -> Result<Reports, PipelineError> {
    let started = Instant::now();
    let _lock = OutLock::acquire(settings)?;
    let (arch, opts) = for_arch(opts);
    let (arch, opts) = (arch.as_str(), &opts);

    let stamp_inputs = noop::inputs(settings, arch, opts);
    if let Some(units) = stamp_inputs
        .as_deref()
        .and_then(|i| noop::check(settings, arch, i))
    {
        return Ok(all_fresh(units, started.elapsed()));
    }
    let planned = planner::plan(settings, arch, opts)?;
    if opts.explain || opts.dry_run {
        render_explain(settings, &planned.plan);
    }
    let Chosen {
        units: chosen,
        pull_only,
    } = chosen_units(&planned.plan, opts.unit.as_deref(), opts.cache.is_some())?;
    let mut reports = Reports {
        packages: Report {
            what: "packages",
            ..Report::default()
        },
        images: Report::default(),
    };
    let is_pkg = |n: &str| !n.starts_with("image:") && !n.starts_with(osunits::PREFIX);
    for name in chosen.iter().filter(|n| is_pkg(n)) {
        if planned.plan.unit(name)?.fresh {
            reports.packages.units.push(UnitReport {
                name: name.to_string(),
                version: planned.units[*name].recipe.full_version(),
                verdict: Verdict::Fresh,
                elapsed: Duration::ZERO,
            });
        }
    }
    if opts.dry_run {
        reports.packages.elapsed = started.elapsed();
        return Ok(reports);
    }
    if let Some(unit) = opts.unit.as_deref()
        && opts.cache.is_some()
    {
        let u = planned.plan.unit(unit)?;
        if !u.fresh && !u.blocked() && !u.arch_deps.is_empty() {
            crossarch::pull(settings, opts, &u.arch_deps, &mut reports.packages)?;
            if reports.packages.failed() {
                reports.packages.elapsed = started.elapsed();
                return Ok(reports);
            }
        }
    }
    let dirty: Vec<String> = chosen
        .iter()
        .filter(|n| is_pkg(n))
        .filter(|n| planned.plan.unit(n).is_ok_and(|u| !u.fresh))
        .map(|n| n.to_string())
        .collect();
    if !dirty.is_empty() {
        let run = Run {
            settings,
            arch,
            opts,
            planned: &planned,
            pull_only: &pull_only,
        };
        execute_packages(&run, &dirty, &mut reports.packages)?;
    }
    reports.packages.elapsed = started.elapsed();
    if !reports.packages.failed() && (opts.images || opts.unit.is_some()) {
        let images: Vec<&str> = chosen.iter().copied().filter(|n| !is_pkg(n)).collect();
        reports.images = execute_images(settings, &planned, &images);
    }
    if !reports.packages.failed() {
        execute_os(settings, &planned, opts, &chosen, &mut reports.images);
    }
    let complete = !reports.packages.failed() && !reports.images.failed();
    if let Some(inputs) = stamp_inputs.as_deref().filter(|_| complete) {
        noop::record(settings, arch, inputs, unit_list(&reports));
    }
    Ok(reports)
}

/// The units a run executes, and those of them that must come from the
/// cache.
struct Chosen<'p> {
    units: Vec<&'p str>,
    pull_only: BTreeSet<String>,
}

/// All of the plan; or with `--unit` that unit, whose dependencies must
/// then be fresh, or with a cache are pulled from it (all the dirty ones it
/// needs, transitively: its build root needs their packages).
fn chosen_units<'p>(
    plan: &'p BuildPlan,
    unit: Option<&str>,
    cache: bool,
) -> Result<Chosen<'p>, PipelineError> {
    let Some(name) = unit else {
        let units = plan.units.iter().map(|u| u.name.as_str()).collect();
        return Ok(Chosen {
            units,
            pull_only: BTreeSet::new(),
        });
    };
    let u = plan.unit(name)?;
    let dirty_deps = |u: &PlannedUnit| -> Vec<String> {
        u.deps
            .iter()
            .filter(|d| plan.unit(d).is_ok_and(|d| !d.fresh))
            .cloned()
            .collect()
    };
    let deps = dirty_deps(u);
    if !cache && !deps.is_empty() {
        return Err(PipelineError::DepsNotBuilt {
            unit: name.to_string(),
            deps,
        });
    }
    let mut pull_only = BTreeSet::new();
    let mut todo = deps;
    while let Some(d) = todo.pop() {
        if pull_only.insert(d.clone()) {
            todo.extend(dirty_deps(plan.unit(&d)?));
        }
    }
    let mut units: Vec<&str> = plan
        .units
        .iter()
        .map(|p| p.name.as_str())
        .filter(|n| pull_only.contains(*n))
        .collect();
    units.push(u.name.as_str());
    Ok(Chosen { units, pull_only })
}

/// `--explain` / `--dry-run`: one status line and one `plan` event per unit.
fn render_explain(settings: &Settings, plan: &BuildPlan) {
    for (u, line) in plan.units.iter().zip(plan.explain_lines()) {
        settings.shell.status("Explain", line);
        settings.shell.event(&serde_json::json!({
            "event": "plan", "unit": u.name, "fresh": u.fresh, "why": u.verdict_line(),
        }));
    }
}

/// The reports of a run the no-op stamp proved all fresh.
fn all_fresh(units: Vec<(String, String)>, elapsed: Duration) -> Reports {
    let mut reports = Reports {
        packages: Report {
            what: "packages",
            elapsed,
            ..Report::default()
        },
        images: Report::default(),
    };
    for (name, version) in units {
        let report = if name.starts_with("image:") || name.starts_with(osunits::PREFIX) {
            reports.images.what = "images";
            &mut reports.images
        } else {
            &mut reports.packages
        };
        report.units.push(UnitReport {
            name,
            version,
            verdict: Verdict::Fresh,
            elapsed: Duration::ZERO,
        });
    }
    reports
}

/// What executing the package units needs.
struct Run<'a> {
    settings: &'a Settings,
    arch: &'a str,
    opts: &'a BuildOptions,
    planned: &'a planner::Planned,
    /// Units to take from the cache, never to build.
    pull_only: &'a BTreeSet<String>,
}

/// Build (or with a cache, pull) the dirty package units on the job queue,
/// in dependency order.
fn execute_packages(
    run: &Run<'_>,
    dirty: &[String],
    report: &mut Report,
) -> Result<(), PipelineError> {
    let (settings, opts, planned) = (run.settings, run.opts, run.planned);
    let to_build: Vec<String> = dirty
        .iter()
        .filter(|n| !run.pull_only.contains(*n))
        .cloned()
        .collect();
    check_host_tools(planned, run.arch, &to_build)?;
    let key = sign::ensure_default_key(settings)?;
    let trusted = sign::load_trust(settings, &settings.keys_dir())?;
    let mut opened = Repo::open(&settings.repo_dir(), run.arch, &trusted)?;
    opened.set_sha1_signature(opts.sha1_signature);
    repo::warn_left_out(settings, &opened);
    let repo = Mutex::new(exec::SharedRepo {
        repo: opened,
        generation: 0,
    });
    let ctx = exec::ExecCtx {
        settings,
        arch: run.arch,
        key: &key,
        trusted: &trusted,
        repo: &repo,
        repo_dir: &planned.repo_dir,
        write_opts: WriteOptions {
            auto_deps: true,
            sha1_signature: opts.sha1_signature,
        },
        cache: opts.cache.as_deref(),
    };
    let deps_of = |n: &str| -> Vec<String> {
        planned
            .plan
            .unit(n)
            .map(|u| u.deps.clone())
            .unwrap_or_default()
    };
    let results = jobs::run(dirty, deps_of, settings.jobs, opts.keep_going, |name| {
        let unit = &planned.units[name];
        cached::run_unit(&ctx, unit, run.pull_only.contains(name)).map_err(|e| e.render())
    });
    for r in results {
        let version = planned.units[r.name.as_str()].recipe.full_version();
        let verdict = match r.outcome {
            Outcome::Built => Verdict::Built,
            Outcome::Pulled => Verdict::Pulled,
            Outcome::Failed(msg) => Verdict::Failed(msg),
            Outcome::Skipped(why) => Verdict::Skipped(why),
        };
        report.units.push(UnitReport {
            name: r.name,
            version,
            verdict,
            elapsed: r.elapsed,
        });
    }
    Ok(())
}

/// Every host tool a dirty unit needs must be there before anything starts.
/// (A unit with makedepends may get a tool from them; its own build checks
/// again with those on the PATH.)
fn check_host_tools(
    planned: &planner::Planned,
    arch: &str,
    dirty: &[String],
) -> Result<(), PipelineError> {
    let path = std::ffi::OsString::from(crate::build::SYSTEM_PATH);
    let missing: Vec<String> = dirty
        .iter()
        .map(|n| &planned.units[n.as_str()].recipe)
        .filter(|r| r.makedepends.is_empty())
        .flat_map(|r| {
            r.tools_for(arch)
                .into_iter()
                .filter(|t| crate::process::find_in_path(t, &path).is_none())
                .map(move |t| format!("`{t}` (for {})", r.name))
        })
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(PipelineError::HostTools(missing.join(", ")))
    }
}

/// Build the chosen image units that are dirty; report the fresh ones.
fn execute_images(settings: &Settings, planned: &planner::Planned, chosen: &[&str]) -> Report {
    let mut fresh = Vec::new();
    let mut dirty = Vec::new();
    for u in planned
        .plan
        .units
        .iter()
        .filter(|u| u.kind == UnitKind::Image)
    {
        if !chosen.contains(&u.name.as_str()) {
            continue;
        }
        let name = u.name.trim_start_matches("image:").to_string();
        if u.fresh {
            fresh.push(name);
        } else {
            let inputs = &planned.images[&name];
            dirty.push((name, inputs));
        }
    }
    images::build(settings, &fresh, &dirty)
}

/// Build the chosen OS units that were asked for: by `--unit`, or named
/// among the targets (`forge build os:NAME`, forge.toml's
/// `default-targets`). The others stay in the plan only.
fn execute_os(
    settings: &Settings,
    planned: &planner::Planned,
    opts: &BuildOptions,
    chosen: &[&str],
    report: &mut Report,
) {
    let asked = |n: &str| opts.unit.as_deref() == Some(n) || opts.targets.iter().any(|t| t == n);
    let units: Vec<(&PlannedUnit, &crate::plan::Inputs)> = planned
        .plan
        .units
        .iter()
        .filter(|u| u.kind == UnitKind::Os && chosen.contains(&u.name.as_str()) && asked(&u.name))
        .map(|u| (u, &planned.os[&u.name]))
        .collect();
    if !units.is_empty() {
        report.what = "images";
        let started = Instant::now();
        osunits::build(settings, &units, report);
        report.elapsed += started.elapsed();
    }
}

fn unit_list(reports: &Reports) -> Vec<(String, String)> {
    reports
        .packages
        .units
        .iter()
        .chain(&reports.images.units)
        .map(|u| (u.name.clone(), u.version.clone()))
        .collect()
}

/// Map `f` over `items` on up to `jobs` threads, keeping the order.
fn par_map<T: Sync, R: Send>(items: &[T], jobs: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let jobs = jobs.clamp(1, items.len().max(1));
    if jobs == 1 {
        return items.iter().map(f).collect();
    }
    let chunk = items.len().div_ceil(jobs);
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|c| scope.spawn(move || c.iter().map(f).collect::<Vec<R>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("planning worker panicked"))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hermetic unit's environment names no host tool: the same text on
    /// every host, whatever its compiler (the bootstrap stage's holds the
    /// host's `cc`, `ld` and `ldd` versions).
    #[test]
    fn hermetic_env_identity_holds_no_host_tool() {
        let dir = tempfile::tempdir().unwrap();
        let settings = Settings::for_root(dir.path());
        let opts = BuildOptions::default();
        let env = env_identity(&settings, "aarch64", &opts, Stage::Hermetic);
        assert_eq!(
            env,
            format!(
                "4:arch,7:aarch64,7:sandbox,5:bwrap,5:stage,8:hermetic,10:compressor,{}:{},\
                 14:sha1-signature,1:0,12:forge-format,1:{},",
                crate::apk::gzip::COMPRESSOR.len(),
                crate::apk::gzip::COMPRESSOR,
                crate::plan::FORMAT_VERSION
            )
        );
        let boot = env_identity(&settings, "aarch64", &opts, Stage::Bootstrap);
        assert!(boot.contains("2:cc,") && boot.contains("4:libc,"), "{boot}");
    }
}
