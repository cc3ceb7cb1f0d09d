//! Execution: build one dirty package unit, land its packages in the
//! repository under one group-committed index write, and record its state.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use sha2::{Digest as _, Sha256};

use super::buildroot;
use super::deps::{self, InstallTo};
use super::planner::Unit;
use super::store::{Link, Store};
use crate::apk::{self, PackageSpec, WriteOptions};
use crate::build::{self, BuildRequest, HermeticRoot};
use crate::plan::{self, ArtifactRecord, Inputs, UnitState};
use crate::recipe::Stage;
use crate::repo::Repo;
use crate::settings::{SandboxMode, Settings};
use crate::sign::{SigningKey, TrustedKeys};

/// The repository shared by the workers. Each index write lands everything
/// staged so far and bumps `generation`; a unit that staged its packages
/// during generation G is done once a write with generation > G happened.
pub(super) struct SharedRepo {
    pub repo: Repo,
    pub generation: u64,
}

pub(super) struct ExecCtx<'a> {
    pub settings: &'a Settings,
    pub arch: &'a str,
    pub key: &'a SigningKey,
    pub trusted: &'a TrustedKeys,
    pub repo: &'a Mutex<SharedRepo>,
    pub repo_dir: &'a Path,
    pub write_opts: WriteOptions,
    /// The build cache, when `--cache` is given.
    pub cache: Option<&'a crate::cache::Cache>,
}

/// A unit failure, with the build log tail when there is one.
pub(super) struct UnitError {
    pub(super) message: String,
    log_tail: Option<(PathBuf, Vec<String>)>,
}

impl UnitError {
    pub(super) fn from_err(e: &dyn std::error::Error) -> UnitError {
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

    pub(super) fn render(&self) -> String {
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
    pub(super) fn build_unit(&self, unit: &Unit) -> Result<(), UnitError> {
        let s = self.settings;
        let r = &unit.recipe;
        // build::run shows the spinner and the `Building` line.

        let prepared = self
            .prepare_roots(unit)
            .map_err(|e| UnitError::from_err(&e))?;
        let req = BuildRequest {
            settings: s,
            recipe: r,
            source_date_epoch: unit.sde,
            arch: self.arch.to_string(),
            deps_root: prepared.deps_root,
            hermetic: prepared.hermetic,
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
        let artifacts = self.land(unit, &written)?;
        if let Some(cache) = self.cache {
            super::cached::store(self, cache, unit, &artifacts)?;
        }
        self.finish(unit, artifacts, prepared.root_identity.as_deref())?;
        let _ = fs::remove_dir_all(&apk_dir);
        Ok(())
    }

    /// Admit `files` (verified packages of `unit`) into the repository under
    /// one group-committed index write, dropping what the unit's previous
    /// build made that this one does not. Returns what the state records.
    pub(super) fn land(
        &self,
        unit: &Unit,
        files: &[PathBuf],
    ) -> Result<Vec<ArtifactRecord>, UnitError> {
        let s = self.settings;
        let r = &unit.recipe;
        let mut digests = Vec::with_capacity(files.len());
        for path in files {
            let bytes = fs::read(path).map_err(|e| UnitError::from_err(&e))?;
            digests.push(hex::encode(Sha256::digest(&bytes)));
        }
        // Group commit: stage under the lock, then write the index unless a
        // later write (by another unit) has already landed what we staged.
        // What the unit's previous build left that this one no longer makes
        // (an older version, a dropped subpackage) leaves the repository with
        // the same index write.
        let previous = plan::read_state(&plan::state_path(&s.out, self.arch, &r.name));
        let mut artifacts = Vec::new();
        let wanted = {
            let mut shared = self.repo.lock().unwrap_or_else(|e| e.into_inner());
            for (path, sha256) in files.iter().zip(digests) {
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
        let mut shared = self.repo.lock().unwrap_or_else(|e| e.into_inner());
        if shared.generation < wanted {
            shared
                .repo
                .write_index(self.key, None)
                .map_err(|e| UnitError::from_err(&e))?;
            shared.generation += 1;
        }
        Ok(artifacts)
    }

    /// Record the unit's state, last: from now on it is fresh. A unit built
    /// here passes the identity of the build root it was built in; one taken
    /// from the build cache records the planned inputs.
    pub(super) fn finish(
        &self,
        unit: &Unit,
        artifacts: Vec<ArtifactRecord>,
        root_identity: Option<&str>,
    ) -> Result<(), UnitError> {
        let inputs = self.recorded_inputs(unit, root_identity);
        let state = UnitState {
            key: inputs.key(),
            inputs,
            artifacts,
        };
        let path = plan::state_path(&self.settings.out, self.arch, &unit.recipe.name);
        write_state(&path, &state).map_err(|e| UnitError::from_err(&e))
    }
}

/// What a unit's build roots are, once installed.
struct Roots {
    /// `/forge/deps`, when there are makedepends.
    deps_root: Option<PathBuf>,
    /// The hermetic stage's root.
    hermetic: Option<HermeticRoot>,
    /// The hermetic root's identity, as installed.
    root_identity: Option<String>,
}

impl ExecCtx<'_> {
    /// Install the makedepends into `out/deps/NAME` and, in the hermetic
    /// stage, assemble the base into `out/roots/<arch>/NAME`.
    fn prepare_roots(&self, unit: &Unit) -> Result<Roots, deps::DepsError> {
        let s = self.settings;
        let r = &unit.recipe;
        let store = Store::new(&s.out);
        // Hard links only where the sandbox binds the root read-only.
        let link = match s.sandbox {
            SandboxMode::Bwrap => Link::Hard,
            SandboxMode::None => Link::Copy,
        };
        let target = InstallTo {
            repo_dir: self.repo_dir,
            trusted: self.trusted,
            store: &store,
        };
        let deps_root = s.out.join("deps").join(&r.name);
        let host_repo = s.repo_dir().join(super::host_arch());
        let host = InstallTo {
            repo_dir: &host_repo,
            ..target
        };
        let from_host = (unit.from_host.as_slice(), &host);
        let both = deps::install(&r.makedepends, &target, from_host, &deps_root, link)?;
        let (installed, machine) =
            both.map_or((None, None), |d| (Some(d.target), Some(d.from_host)));
        if let (Some(list), Some(machine)) = (&installed, &machine) {
            let ids: Vec<String> = list
                .iter()
                .chain(machine)
                .map(deps::Installed::id)
                .collect();
            s.shell
                .verbose(format!("{}: build dependencies {}", r.name, ids.join(" ")));
        }
        let mut roots = Roots {
            deps_root: installed.as_ref().map(|_| deps_root),
            hermetic: None,
            // A foreign bootstrap unit's build-machine packages (zig).
            root_identity: (!unit.from_host.is_empty())
                .then(|| super::cross::identity(machine.as_deref().unwrap_or(&[]))),
        };
        if s.build_root.stage_of(r) == Stage::Hermetic {
            let dir = buildroot::root_dir(s, self.arch, &r.name);
            let (base, took) = buildroot::assemble(s, &host, &dir)?;
            s.shell.verbose(format!(
                "{}: build root of {} packages assembled in {} ms",
                r.name,
                base.len(),
                took.as_millis()
            ));
            let identity = buildroot::identity(&base, installed.as_deref().unwrap_or(&[]));
            roots.root_identity = Some(identity);
            roots.hermetic = Some(HermeticRoot {
                root: dir,
                cache: buildroot::tool_cache(s),
            });
        }
        Ok(roots)
    }

    /// The inputs to record: the planned ones, with the build root as it was
    /// really installed and each dependency's key as its state file
    /// recorded it (the planner may have predicted them before those were
    /// built), so that the next plan finds them equal.
    fn recorded_inputs(&self, unit: &Unit, root_identity: Option<&str>) -> Inputs {
        let mut inputs = unit.inputs.clone();
        if let Some(identity) = root_identity {
            inputs.set_root(identity);
        }
        for (component, key) in inputs.components.iter_mut() {
            if let Some(dep) = component.strip_prefix("dep:") {
                let path = plan::state_path(&self.settings.out, self.arch, dep);
                if let Some(state) = plan::read_state(&path) {
                    *key = state.key;
                }
            }
        }
        inputs
    }
}

/// Write a unit's state file.
fn write_state(path: &Path, state: &UnitState) -> std::io::Result<()> {
    let json = serde_json::to_vec_pretty(state).map_err(std::io::Error::other)?;
    crate::util::write_atomic(path, &json, None)
}
