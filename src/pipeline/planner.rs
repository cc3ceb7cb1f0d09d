//! Planning: recipes, graph, selection and unit keys → a [`BuildPlan`] plus
//! what execution needs to carry it out (the recipes, their git facts and
//! inputs). Nothing here writes a file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use super::{BuildOptions, PipelineError, buildroot, env_identity, images, osunits, par_map};
use crate::apk;
use crate::graph::{UnitGraph, dep_name};
use crate::plan::value::{ArchDep, BuildPlan, PlannedUnit, UnitKind};
use crate::plan::{self, ArtifactRecord, DirtyReason, Freshness, Inputs};
use crate::recipe::{self, Recipe, Stage};
use crate::repo;
use crate::settings::Settings;
use crate::sign::TrustedKeys;

/// One package unit as execution needs it.
pub(super) struct Unit {
    pub recipe: Recipe,
    pub sde: i64,
    pub commit: Option<String>,
    pub inputs: Inputs,
    /// Makedepends from the host architecture's repository: a foreign
    /// bootstrap unit's build-machine packages ([`super::cross`]).
    pub from_host: Vec<String>,
}

/// The plan and what executing it needs.
pub(super) struct Planned {
    /// The plan value (packages, then images).
    pub plan: BuildPlan,
    /// Package units by name.
    pub units: BTreeMap<String, Unit>,
    /// Image units' inputs by image name (without `image:`).
    pub images: BTreeMap<String, Inputs>,
    /// OS units' inputs by unit name (`os:NAME`).
    pub os: BTreeMap<String, Inputs>,
    /// `out/repo/<arch>/`.
    pub repo_dir: PathBuf,
}

/// The recipes that build for `arch`. For an architecture other than the
/// host's: hermetic recipes, cross-compiling ones (their tools name the
/// target, `${carch}-linux-gnu-gcc`, [`Recipe::cross_compiles`]), and
/// bootstrap recipes that name it in their `arch`; of the last,
/// [`recipes_and_host_deps`] keeps those that compile with the seed from
/// the host's repository ([`super::cross`]). Other bootstrap recipes
/// (`noarch`, `all`) are built on the host's plan only.
pub(super) fn recipes_for(settings: &Settings, arch: &str) -> Result<Vec<Recipe>, PipelineError> {
    Ok(split_for(settings, arch)?.0)
}

/// The recipes that build for `arch` ([`recipes_for`]), and the names of
/// the project's other recipes.
fn split_for(
    settings: &Settings,
    arch: &str,
) -> Result<(Vec<Recipe>, BTreeSet<String>), PipelineError> {
    let all = recipe::load_all(&settings.recipes_dir())?;
    let foreign = arch != super::host_arch();
    let (here, elsewhere): (Vec<Recipe>, Vec<Recipe>) = all.into_iter().partition(|r| {
        r.arch
            .iter()
            .any(|a| a == arch || a == "noarch" || a == "all")
            && (!foreign
                || r.cross_compiles()
                || settings.build_root.stage_of(r) == Stage::Hermetic
                || r.arch.iter().any(|a| a == arch))
    });
    Ok((here, elsewhere.into_iter().map(|r| r.name).collect()))
}

/// The host recipes that make `wanted` (by `providers`, the host's): what a
/// unit of another architecture needs built first, since those programs run
/// on the build machine: a hermetic unit's build-root base (`[build-root]
/// base`), a foreign bootstrap unit's makedepends from the host
/// ([`super::cross`]).
fn host_makers(providers: &BTreeMap<String, String>, wanted: &[String]) -> Vec<ArchDep> {
    let host = super::host_arch();
    let mut makers: Vec<ArchDep> = wanted
        .iter()
        .filter_map(|b| providers.get(dep_name(b)))
        .map(|m| ArchDep {
            arch: host.to_string(),
            unit: m.clone(),
        })
        .collect();
    makers.sort();
    makers.dedup();
    makers
}

/// The recipes for `arch` as its graph sees them (and the names of the
/// project's other recipes), and what each takes from the host's
/// repository: for a foreign architecture, a bootstrap recipe's makedepends
/// that only the host's recipes make ([`super::cross`]).
fn recipes_and_host_deps(
    settings: &Settings,
    arch: &str,
) -> Result<(Vec<Recipe>, BTreeSet<String>, super::cross::FromHost), PipelineError> {
    let (recipes, elsewhere) = split_for(settings, arch)?;
    if arch == super::host_arch() {
        return Ok((recipes, elsewhere, super::cross::FromHost::new()));
    }
    let host = recipes_for(settings, super::host_arch())?;
    let names = super::cross::host_only_names(&host, &recipes);
    let (hermetic, bootstrap): (Vec<Recipe>, Vec<Recipe>) = recipes
        .into_iter()
        .partition(|r| settings.build_root.stage_of(r) == Stage::Hermetic);
    let (bootstrap, from_host) = super::cross::split(bootstrap, &names);
    // A bootstrap recipe that takes no compiler from the host's repository
    // and names no cross tool builds with the host's compiler: host
    // binaries, so it is not planned here.
    let (mut recipes, dropped): (Vec<Recipe>, Vec<Recipe>) = bootstrap
        .into_iter()
        .partition(|r| r.cross_compiles() || from_host.contains_key(&r.name));
    let mut elsewhere = elsewhere;
    elsewhere.extend(dropped.into_iter().map(|r| r.name));
    recipes.extend(hermetic);
    Ok((recipes, elsewhere, from_host))
}

/// Provides recorded in the signed index (`so:`, `pc:`), mapped to the
/// recipe (origin) that made them, for recipes that still exist.
fn index_provides(
    entries: &[apk::index::IndexEntry],
    recipes: &[Recipe],
) -> BTreeMap<String, String> {
    let mut extra = BTreeMap::new();
    for e in entries {
        let origin = e.origin.clone().unwrap_or_else(|| e.name.clone());
        for p in &e.provides {
            extra.insert(dep_name(p).to_string(), origin.clone());
        }
    }
    let known: BTreeSet<&str> = recipes.iter().map(|r| r.name.as_str()).collect();
    extra.retain(|_, origin| known.contains(origin.as_str()));
    extra
}

/// The selected recipes: all when no target is named; else the named
/// recipes and the makers of the named OS units' packages (`os:NAME`
/// targets), with what they need.
/// Targets that are recipes of another architecture (`elsewhere`) are left
/// out: `default-targets` is one list for every architecture.
fn select(
    graph: &UnitGraph,
    opts: &BuildOptions,
    os_recipes: Vec<String>,
    elsewhere: &BTreeSet<String>,
) -> Result<BTreeSet<String>, PipelineError> {
    let mut targets: Vec<String> = opts
        .targets
        .iter()
        .filter(|t| !t.starts_with(osunits::PREFIX))
        .cloned()
        .chain(os_recipes)
        .collect();
    targets.retain(|t| !t.starts_with(osunits::PREFIX) && !elsewhere.contains(t));
    Ok(if opts.targets.is_empty() {
        graph.names().map(str::to_string).collect()
    } else if opts.rdeps {
        let up = graph.reverse_closure(&targets)?;
        graph.closure(&up.into_iter().collect::<Vec<_>>())?
    } else {
        graph.closure(&targets)?
    })
}

/// Plan every selected unit (and, with `opts.images`, every image).
pub(super) fn plan(
    settings: &Settings,
    arch: &str,
    opts: &BuildOptions,
) -> Result<Planned, PipelineError> {
    let (recipes, elsewhere, mut from_host) = recipes_and_host_deps(settings, arch)?;
    let trusted = crate::sign::load_trust(settings, &settings.keys_dir())?;
    let repo_dir = settings.repo_dir().join(arch);
    let index_entries = read_index_entries(&repo_dir, &trusted);
    let indexed: BTreeMap<String, [u8; 20]> = index_entries
        .iter()
        .map(|e| (e.file_name(), e.checksum))
        .collect();
    let graph = UnitGraph::new(
        &buildroot::graph_recipes(settings, &recipes),
        &index_provides(&index_entries, &recipes),
    )?;
    // The base of hermetic roots comes from the host architecture's
    // repository.
    let host_entries = if arch == super::host_arch() {
        index_entries.clone()
    } else {
        read_index_entries(&settings.repo_dir().join(super::host_arch()), &trusted)
    };
    let providers = osunits::providers(&recipes);
    let os_wanted = opts.images || opts.targets.iter().any(|t| t.starts_with(osunits::PREFIX));
    let os_defs = if os_wanted {
        osunits::definitions(settings)?
    } else {
        Vec::new()
    };
    if let Some(t) = opts.targets.iter().find(|t| {
        t.strip_prefix(osunits::PREFIX)
            .is_some_and(|n| !os_defs.iter().any(|d| d.name == n))
    }) {
        return Err(crate::plan::value::PlanError::UnknownUnit(t.clone()).into());
    }
    let os_recipes = osunits::target_recipes(&os_defs, &opts.targets, &providers);
    let order = graph.order(&select(&graph, opts, os_recipes, &elsewhere)?);
    let mut by_name: BTreeMap<String, Recipe> =
        recipes.into_iter().map(|r| (r.name.clone(), r)).collect();
    let ordered: Vec<Recipe> = order
        .iter()
        .map(|n| by_name.remove(n).expect("ordered units are recipes"))
        .collect();

    // Per-unit facts that need I/O are gathered in parallel (one git walk for
    // all recipes); keys then follow the order, since a unit's key holds its
    // dependencies' keys; artifact checks run in parallel again.
    let hermetic = |r: &Recipe| settings.build_root.stage_of(r) == Stage::Hermetic;
    let env_bootstrap = ordered
        .iter()
        .any(|r| !hermetic(r))
        .then(|| env_identity(settings, arch, opts, Stage::Bootstrap));
    let env_hermetic = env_identity(settings, arch, opts, Stage::Hermetic);
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
    let mut planned: Vec<Inputs> = Vec::with_capacity(order.len());
    for (i, name) in order.iter().enumerate() {
        let dep_keys: BTreeMap<String, String> = graph
            .deps_of(name)
            .filter_map(|d| keys.get(d).map(|k| (d.to_string(), k.clone())))
            .collect();
        let r = &ordered[i];
        let env = match &env_bootstrap {
            Some(env) if !hermetic(r) => env,
            _ => &env_hermetic,
        };
        let mut inputs = plan::unit_inputs(
            r,
            gits[i].source_date_epoch,
            gits[i].commit.as_deref(),
            &digests[i],
            &dep_keys,
            env,
        );
        if hermetic(r) {
            let root = buildroot::predicted_identity(settings, r, &host_entries, &index_entries);
            inputs.set_root(&root);
        } else if let Some(wanted) = from_host.get(name) {
            inputs.set_root(&super::cross::predicted_identity(wanted, &host_entries));
        }
        keys.insert(name.clone(), inputs.key());
        planned.push(inputs);
    }
    let positions: Vec<usize> = (0..order.len()).collect();
    let verdicts = par_map(&positions, settings.jobs, |&i| {
        if opts.force && opts.targets.contains(&order[i]) {
            return Freshness::Dirty(DirtyReason::Forced);
        }
        let previous = plan::read_state(&plan::state_path(&settings.out, arch, &order[i]));
        plan::freshness(previous.as_ref(), &planned[i], |a| {
            check_artifact(&repo_dir, a, &indexed, &trusted)
        })
    });

    let host_providers = if arch == super::host_arch() {
        BTreeMap::new()
    } else {
        osunits::providers(&recipes_for(settings, super::host_arch())?)
    };
    let base_makers = host_makers(&host_providers, &settings.build_root.base);
    let mut value = BuildPlan::new(arch);
    let mut units = BTreeMap::new();
    for (((recipe, git), inputs), freshness) in
        ordered.into_iter().zip(gits).zip(planned).zip(verdicts)
    {
        let mut pu = PlannedUnit {
            name: recipe.name.clone(),
            kind: UnitKind::Package,
            version: recipe.full_version(),
            arch: arch.to_string(),
            key: inputs.key(),
            fresh: true,
            dirty: None,
            reasons: Vec::new(),
            deps: graph.deps_of(&recipe.name).map(str::to_string).collect(),
            arch_deps: if hermetic(&recipe) && !buildroot::in_base(settings, &recipe) {
                base_makers.clone()
            } else {
                host_makers(
                    &host_providers,
                    from_host.get(&recipe.name).map_or(&[], |v| v),
                )
            },
        };
        pu.set_freshness(&freshness);
        value.units.push(pu);
        let unit = Unit {
            sde: git.source_date_epoch,
            commit: git.commit,
            inputs,
            from_host: from_host.remove(&recipe.name).unwrap_or_default(),
            recipe,
        };
        units.insert(unit.recipe.name.clone(), unit);
    }
    let planned_origins: BTreeSet<&str> = units.keys().map(String::as_str).collect();
    let foreign: Vec<(String, [u8; 20])> = index_entries
        .iter()
        .filter(|e| !planned_origins.contains(e.origin.as_deref().unwrap_or(&e.name)))
        .map(|e| (e.file_name(), e.checksum))
        .collect();
    let mut image_inputs = BTreeMap::new();
    let packages = value.units.clone();
    if opts.images {
        for (pu, inputs) in images::plan(settings, arch, &packages, &foreign)? {
            image_inputs.insert(pu.name.trim_start_matches("image:").to_string(), inputs);
            value.units.push(pu);
        }
    }
    let planned_units = value.units.clone();
    let cx = osunits::Context {
        arch,
        out: &settings.out,
        units: &planned_units,
        providers: &providers,
        index: &index_entries,
        foreign: &foreign,
    };
    let mut os_inputs = BTreeMap::new();
    for (pu, inputs) in osunits::plan(settings, &os_defs, &cx)? {
        os_inputs.insert(pu.name.clone(), inputs);
        value.units.push(pu);
    }
    Ok(Planned {
        plan: value,
        units,
        images: image_inputs,
        os: os_inputs,
        repo_dir,
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
    let bytes = std::fs::read(&path).map_err(|e| format!("cannot read: {e}"))?;
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
