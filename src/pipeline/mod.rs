//! `forge build`: the whole package pipeline for one run.
//!
//! 1. **Load** every recipe ([`crate::recipe::load_all`]) and keep those that
//!    build for the host architecture.
//! 2. **Graph**: makedepends/depends/provides form a [`UnitGraph`]; provides
//!    recorded in the signed index of earlier builds (`so:`, `pc:`) count too.
//! 3. **Select**: the targets and what they need (all recipes by default),
//!    plus, with `--rdeps`, everything that depends on the targets.
//! 4. **Plan**: in dependency order, every unit gets its input key
//!    ([`crate::plan`]); a unit is fresh when its state file carries the same
//!    key and every package it lists still verifies. `--explain` prints why.
//! 5. **Execute** dirty units on the [`crate::jobs`] queue: install build
//!    dependencies from the repository ([`deps`]), prepare sources, build in
//!    the sandbox ([`crate::build`]), write signed packages ([`crate::apk`]),
//!    land them in the repository and re-sign the index ([`crate::repo`]),
//!    then write the unit's state file, last.
//!
//! The whole run holds an exclusive lock on `out/.lock`, so two forge
//! processes on the same output folder take turns, and whatever temporary
//! file a killed run left in `out/` is removed when the lock is taken
//! ([`OutLock`]).

pub mod deps;
pub mod images;
mod lock;
mod noop;
mod report;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

use crate::apk::{self, PackageSpec, WriteOptions};
use crate::build::{self, BuildRequest};
use crate::graph::{UnitGraph, dep_name};
use crate::jobs::{self, Outcome};
use crate::plan::{self, ArtifactRecord, DirtyReason, Freshness, Inputs, UnitState};
use crate::recipe::{self, Recipe};
use crate::repo::{self, Repo};
use crate::settings::Settings;
use crate::sign::{self, SigningKey, TrustedKeys};

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
/// the bytes a build produces. Tools are looked up on the sandbox's PATH (the
/// one builds use), not forge's own: the C compiler, the binutils linker and
/// the C library, plus the package compressor and the signature scheme.
fn env_identity(settings: &Settings, arch: &str, opts: &BuildOptions) -> String {
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
    plan::Fields::new()
        .field("arch", arch)
        .field("sandbox", sandbox)
        .field("cc", &first_line("cc", "--version"))
        .field("ld", &first_line("ld", "--version"))
        .field("libc", &first_line("ldd", "--version"))
        .field("compressor", crate::apk::gzip::COMPRESSOR)
        .field(
            "sha1-signature",
            if opts.sha1_signature { "1" } else { "0" },
        )
        .field("forge-format", &plan::FORMAT_VERSION.to_string())
        .finish()
}

/// One unit as planned.
struct Unit<'r> {
    recipe: &'r Recipe,
    sde: i64,
    commit: Option<String>,
    inputs: Inputs,
    freshness: Freshness,
}

/// Run the package pipeline.
pub fn build(settings: &Settings, opts: &BuildOptions) -> Result<Report, PipelineError> {
    let shell = &settings.shell;
    let started = Instant::now();
    let _lock = OutLock::acquire(settings)?;
    let arch = host_arch();

    let stamp_inputs = noop::inputs(settings, arch, opts);
    if let Some(units) = stamp_inputs
        .as_deref()
        .and_then(|i| noop::check(settings, arch, i))
    {
        let mut report = Report {
            what: "packages",
            ..Report::default()
        };
        report.units = units
            .into_iter()
            .map(|(name, version)| UnitReport {
                name,
                version,
                verdict: Verdict::Fresh,
                elapsed: Duration::ZERO,
            })
            .collect();
        report.elapsed = started.elapsed();
        return Ok(report);
    }
    let all = recipe::load_all(&settings.recipes_dir())?;
    let recipes: Vec<Recipe> = all
        .into_iter()
        .filter(|r| {
            r.arch
                .iter()
                .any(|a| a == arch || a == "noarch" || a == "all")
        })
        .collect();

    let key = sign::ensure_default_key(settings)?;
    let trusted = sign::load_trust(settings, &settings.keys_dir())?;
    let repo_dir = settings.repo_dir().join(arch);
    let index_entries = read_index_entries(&repo_dir, &trusted);
    let indexed: BTreeMap<String, [u8; 20]> = index_entries
        .iter()
        .map(|e| (e.file_name(), e.checksum))
        .collect();
    let mut extra = BTreeMap::new();
    for e in &index_entries {
        let origin = e.origin.clone().unwrap_or_else(|| e.name.clone());
        for p in &e.provides {
            extra.insert(dep_name(p).to_string(), origin.clone());
        }
    }
    let known: BTreeSet<&str> = recipes.iter().map(|r| r.name.as_str()).collect();
    extra.retain(|_, origin| known.contains(origin.as_str()));
    let graph = UnitGraph::new(&recipes, &extra)?;

    let selected: BTreeSet<String> = if opts.targets.is_empty() {
        graph.names().map(str::to_string).collect()
    } else if opts.rdeps {
        let up = graph.reverse_closure(&opts.targets)?;
        graph.closure(&up.into_iter().collect::<Vec<_>>())?
    } else {
        graph.closure(&opts.targets)?
    };
    let order = graph.order(&selected);
    let by_name: BTreeMap<&str, &Recipe> = recipes.iter().map(|r| (r.name.as_str(), r)).collect();

    // Plan. Per-unit facts that need I/O are gathered in parallel (one git
    // walk for all recipes); keys then follow the order, since a unit's key
    // holds its dependencies' keys; artifact checks run in parallel again.
    let env = env_identity(settings, arch, opts);
    let ordered: Vec<&Recipe> = order.iter().map(|n| by_name[n.as_str()]).collect();
    let dirs: Vec<&Path> = ordered.iter().map(|r| r.dir.as_path()).collect();
    let gits = recipe::git_info_many(&dirs)?;
    let digests = par_map(&ordered, settings.jobs, |r| {
        crate::source::input_digests(r).map_err(|source| PipelineError::Source {
            recipe: r.name.clone(),
            source: Box::new(source),
        })
    })
    .into_iter()
    .collect::<Result<Vec<_>, _>>()?;
    let mut keys: BTreeMap<String, String> = BTreeMap::new();
    let mut planned: Vec<(Inputs, bool)> = Vec::with_capacity(order.len());
    for (i, name) in order.iter().enumerate() {
        let dep_keys: BTreeMap<String, String> = graph
            .deps_of(name)
            .filter_map(|d| keys.get(d).map(|k| (d.to_string(), k.clone())))
            .collect();
        let inputs = plan::unit_inputs(
            ordered[i],
            gits[i].source_date_epoch,
            gits[i].commit.as_deref(),
            &digests[i],
            &dep_keys,
            &env,
        );
        keys.insert(name.clone(), inputs.key());
        planned.push((inputs, opts.force && opts.targets.contains(name)));
    }
    let positions: Vec<usize> = (0..order.len()).collect();
    let verdicts = par_map(&positions, settings.jobs, |&i| {
        let (inputs, forced) = &planned[i];
        if *forced {
            return Freshness::Dirty(DirtyReason::Forced);
        }
        let previous = plan::read_state(&plan::state_path(&settings.out, arch, &order[i]));
        plan::freshness(previous.as_ref(), inputs, |a| {
            check_artifact(&repo_dir, a, &indexed, &trusted)
        })
    });
    let mut units: BTreeMap<String, Unit<'_>> = BTreeMap::new();
    for (i, ((inputs, _), freshness)) in planned.into_iter().zip(verdicts).enumerate() {
        units.insert(
            order[i].clone(),
            Unit {
                recipe: ordered[i],
                sde: gits[i].source_date_epoch,
                commit: gits[i].commit.clone(),
                inputs,
                freshness,
            },
        );
    }

    let dirty: Vec<String> = order
        .iter()
        .filter(|n| matches!(units[n.as_str()].freshness, Freshness::Dirty(_)))
        .cloned()
        .collect();
    if opts.explain || opts.dry_run {
        for name in &order {
            let u = &units[name.as_str()];
            let line = match &u.freshness {
                Freshness::Fresh => "fresh".to_string(),
                Freshness::Dirty(why) => format!("dirty: {why}"),
            };
            shell.status(
                "Explain",
                format!("{name} {}: {line}", u.recipe.full_version()),
            );
            shell.event(&serde_json::json!({
                "event": "plan", "unit": name,
                "fresh": matches!(u.freshness, Freshness::Fresh), "why": line,
            }));
        }
    }

    let mut report = Report {
        what: "packages",
        ..Report::default()
    };
    for name in &order {
        if matches!(units[name.as_str()].freshness, Freshness::Fresh) {
            report.units.push(UnitReport {
                name: name.clone(),
                version: units[name.as_str()].recipe.full_version(),
                verdict: Verdict::Fresh,
                elapsed: Duration::ZERO,
            });
        }
    }
    if opts.dry_run || dirty.is_empty() {
        if let Some(inputs) = &stamp_inputs {
            noop::record(settings, arch, inputs, unit_list(&report));
        }
        report.elapsed = started.elapsed();
        return Ok(report);
    }

    // Every host tool a dirty unit needs must be there before anything
    // starts. (A unit with makedepends may get a tool from them; its own
    // build checks again with those on the PATH.)
    let path = std::ffi::OsString::from(crate::build::SYSTEM_PATH);
    let missing: Vec<String> = dirty
        .iter()
        .map(|n| units[n.as_str()].recipe)
        .filter(|r| r.makedepends.is_empty())
        .flat_map(|r| {
            r.host_tools
                .iter()
                .filter(|t| crate::process::find_in_path(t, &path).is_none())
                .map(move |t| format!("`{t}` (for {})", r.name))
        })
        .collect();
    if !missing.is_empty() {
        return Err(PipelineError::HostTools(missing.join(", ")));
    }

    // Execute.
    let mut opened = Repo::open(&settings.repo_dir(), arch, &trusted)?;
    opened.set_sha1_signature(opts.sha1_signature);
    repo::warn_left_out(settings, &opened);
    let repo = Mutex::new(SharedRepo {
        repo: opened,
        generation: 0,
    });
    let ctx = ExecCtx {
        settings,
        arch,
        key: &key,
        trusted: &trusted,
        repo: &repo,
        repo_dir: &repo_dir,
        write_opts: WriteOptions {
            auto_deps: true,
            sha1_signature: opts.sha1_signature,
        },
    };
    let results = jobs::run(
        &dirty,
        |n| graph.deps_of(n).map(str::to_string).collect(),
        settings.jobs,
        opts.keep_going,
        |name| ctx.build_unit(&units[name]).map_err(|e| e.render()),
    );
    for r in results {
        let version = units[r.name.as_str()].recipe.full_version();
        let verdict = match r.outcome {
            Outcome::Built => Verdict::Built,
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
    if let Some(inputs) = stamp_inputs.as_deref().filter(|_| !report.failed()) {
        noop::record(settings, arch, inputs, unit_list(&report));
    }
    report.elapsed = started.elapsed();
    Ok(report)
}

fn unit_list(report: &Report) -> Vec<(String, String)> {
    report
        .units
        .iter()
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

fn read_index_entries(repo_dir: &Path, trusted: &TrustedKeys) -> Vec<apk::index::IndexEntry> {
    let path = repo_dir.join(repo::INDEX_FILE);
    match apk::index::Index::read(&path, trusted) {
        Ok(i) => i.entries,
        // No index yet, or one we cannot trust: plan without its provides;
        // every unit's artifacts are re-verified on their own anyway.
        Err(e) => {
            tracing::debug!("ignoring index {}: {e}", path.display());
            Vec::new()
        }
    }
}

/// A recorded artifact is usable when the file is there, has the recorded
/// digest, is vouched for (its identity is the `C:` of the verified signed
/// index, or else its own signature verifies), and its datahash matches. The
/// per-file checksums are checked when the files are used.
fn check_artifact(
    repo_dir: &Path,
    a: &ArtifactRecord,
    indexed: &BTreeMap<String, [u8; 20]>,
    trusted: &TrustedKeys,
) -> Result<(), String> {
    let path = repo_dir.join(&a.file);
    let bytes = fs::read(&path).map_err(|e| format!("cannot read: {e}"))?;
    let digest = hex::encode(Sha256::digest(&bytes));
    if digest != a.sha256 {
        return Err("content differs from the recorded digest".into());
    }
    let trust = match indexed.get(&a.file) {
        Some(identity) => apk::Trust::Indexed(identity),
        None => apk::Trust::Signed(trusted),
    };
    apk::verify_parts(&bytes, trust)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// The repository shared by the workers. Each index write lands everything
/// staged so far and bumps `generation`; a unit that staged its packages
/// during generation G is done once a write with generation > G happened.
struct SharedRepo {
    repo: Repo,
    generation: u64,
}

struct ExecCtx<'a> {
    settings: &'a Settings,
    arch: &'a str,
    key: &'a SigningKey,
    trusted: &'a TrustedKeys,
    repo: &'a Mutex<SharedRepo>,
    repo_dir: &'a Path,
    write_opts: WriteOptions,
}

/// A unit failure, with the build log tail when there is one.
struct UnitError {
    message: String,
    log_tail: Option<(PathBuf, Vec<String>)>,
}

impl UnitError {
    fn from_err(e: &dyn std::error::Error) -> UnitError {
        let mut message = e.to_string();
        let mut cause = e.source();
        while let Some(c) = cause {
            message.push_str(&format!(": {c}"));
            cause = c.source();
        }
        UnitError {
            message,
            log_tail: None,
        }
    }

    fn render(&self) -> String {
        match &self.log_tail {
            Some((log, tail)) => format!(
                "{}\n--- last {} lines of {} ---\n{}",
                self.message,
                tail.len(),
                log.display(),
                tail.join("\n")
            ),
            None => self.message.clone(),
        }
    }
}

impl ExecCtx<'_> {
    fn build_unit(&self, unit: &Unit<'_>) -> Result<(), UnitError> {
        let s = self.settings;
        let r = unit.recipe;
        // build::run shows the spinner and the `Building` line.

        let deps_root = s.out.join("deps").join(&r.name);
        let installed = deps::install(&r.makedepends, self.repo_dir, self.trusted, &deps_root)
            .map_err(|e| UnitError::from_err(&e))?;
        if let Some(list) = &installed {
            s.shell
                .verbose(format!("{}: build dependencies {}", r.name, list.join(" ")));
        }
        let req = BuildRequest {
            settings: s,
            recipe: r,
            source_date_epoch: unit.sde,
            arch: self.arch.to_string(),
            deps_root: installed.map(|_| deps_root.clone()),
        };
        let staged = build::run(&req).map_err(|e| {
            let mut ue = UnitError::from_err(&e);
            if let Some((log, tail)) = e.log_tail() {
                ue.log_tail = Some((log.to_path_buf(), tail.to_vec()));
            }
            ue
        })?;

        // Write packages outside the repository lock (compression is the slow
        // part), then land them and re-sign the index under it.
        let apk_dir = build::work_dir(s, &r.name).join("apk");
        let _ = fs::remove_dir_all(&apk_dir);
        fs::create_dir_all(&apk_dir).map_err(|e| UnitError::from_err(&e))?;
        let mut written = Vec::new();
        for p in &staged.packages {
            let spec = PackageSpec {
                name: p.name.clone(),
                version: r.full_version(),
                description: p.description.clone(),
                url: r.url.clone(),
                license: r.license.clone(),
                arch: if r.arch.iter().any(|a| a == "noarch") {
                    "noarch".to_string()
                } else {
                    self.arch.to_string()
                },
                origin: r.name.clone(),
                commit: unit.commit.clone(),
                builddate: unit.sde,
                packager: "forge".to_string(),
                depends: p.depends.clone(),
                provides: p.provides.clone(),
                root: p.root.clone(),
            };
            let w = apk::write_package(&spec, self.key, &self.write_opts, &apk_dir)
                .map_err(|e| UnitError::from_err(&e))?;
            written.push(w.path);
        }
        let mut digests = Vec::with_capacity(written.len());
        for path in &written {
            let bytes = fs::read(path).map_err(|e| UnitError::from_err(&e))?;
            digests.push(hex::encode(Sha256::digest(&bytes)));
        }
        // Group commit: stage under the lock, then write the index unless a
        // later write (by another unit) has already landed what we staged.
        // What the unit's previous build left that this one no longer makes
        // (an older version, a dropped subpackage) leaves the repository with
        // the same index write.
        let state_path = plan::state_path(&s.out, self.arch, &r.name);
        let previous = plan::read_state(&state_path);
        let mut artifacts = Vec::new();
        let wanted = {
            let mut shared = self.repo.lock().unwrap_or_else(|e| e.into_inner());
            for (path, sha256) in written.iter().zip(digests) {
                let entry = shared.repo.add(path).map_err(|e| UnitError::from_err(&e))?;
                artifacts.push(ArtifactRecord {
                    file: entry.file_name(),
                    sha256,
                });
            }
            for old in previous.iter().flat_map(|p| &p.artifacts) {
                if !artifacts.iter().any(|a| a.file == old.file) {
                    s.shell
                        .verbose(format!("{}: dropping {}", r.name, old.file));
                    shared.repo.remove(&old.file);
                }
            }
            shared.generation + 1
        };
        {
            let mut shared = self.repo.lock().unwrap_or_else(|e| e.into_inner());
            if shared.generation < wanted {
                shared
                    .repo
                    .write_index(self.key, None)
                    .map_err(|e| UnitError::from_err(&e))?;
                shared.generation += 1;
            }
        }
        let state = UnitState {
            key: unit.inputs.key(),
            inputs: unit.inputs.clone(),
            artifacts,
        };
        write_state(&state_path, &state).map_err(|e| UnitError::from_err(&e))?;
        let _ = fs::remove_dir_all(&apk_dir);
        Ok(())
    }
}

/// Write a unit's state file.
fn write_state(path: &Path, state: &UnitState) -> std::io::Result<()> {
    let json = serde_json::to_vec_pretty(state).map_err(std::io::Error::other)?;
    crate::util::write_atomic(path, &json, None)
}
