//! The hermetic stage's build roots: which packages make a unit's root, the
//! root's identity for the unit key, and its assembly before the build.
//!
//! A hermetic unit's sandbox `/` is made of the project's base
//! (`forge.toml` `[build-root] base`: the seed and the base tools), taken
//! from the **host** architecture's repository, since those programs run on
//! the build machine; its makedepends come from the **target**
//! architecture's repository into `/forge/deps`, as in every stage. Both go
//! through the verified reader and the package store ([`super::store`]).
//!
//! The root enters the unit key as the `root` component
//! ([`crate::plan::root_identity`]): the planner predicts it from the
//! signed indexes as they are, and execution records what was really
//! installed, so a unit whose root changed (a new zig, a rebuilt make)
//! is rebuilt, and a host upgrade is not a reason.

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::deps::{self, DepsError, InstallTo, Installed};
use super::store::{Link, RootWriter};
use crate::apk::index::IndexEntry;
use crate::graph::dep_name;
use crate::recipe::{Recipe, Stage};
use crate::settings::Settings;

/// What the base asks for, named in resolution errors.
const BASE: &str = "the build root's base ([build-root] base in forge.toml)";

/// Whether `recipe` is itself part of the base: such a recipe takes the
/// base from the repository as it was built before, never waits for itself.
pub(super) fn in_base(settings: &Settings, recipe: &Recipe) -> bool {
    let names = |r: &Recipe| {
        std::iter::once(r.name.clone())
            .chain(r.subpackages.iter().map(|s| s.name.clone()))
            .collect::<Vec<_>>()
    };
    let mine = names(recipe);
    settings
        .build_root
        .base
        .iter()
        .any(|b| mine.iter().any(|n| n == dep_name(b)))
}

/// The recipes as the dependency graph sees them: a hermetic recipe also
/// needs the base built first (when the base is built by recipes of this
/// architecture; the graph ignores runtime names it cannot resolve).
pub(super) fn graph_recipes(settings: &Settings, recipes: &[Recipe]) -> Vec<Recipe> {
    recipes
        .iter()
        .map(|r| {
            let mut r = r.clone();
            if settings.build_root.stage_of(&r) == Stage::Hermetic && !in_base(settings, &r) {
                r.depends.extend(settings.build_root.base.iter().cloned());
            }
            r
        })
        .collect()
}

/// The root identity the planner predicts for a hermetic unit from the
/// indexes as they are now (`host` for the base, `target` for the
/// makedepends). When either cannot be resolved yet (the base is not
/// built), the identity says so; execution then records the real one.
pub(super) fn predicted_identity(
    settings: &Settings,
    recipe: &Recipe,
    host: &[IndexEntry],
    target: &[IndexEntry],
) -> String {
    let base = deps::closure_for(&settings.build_root.base, BASE, host);
    let mk = if recipe.makedepends.is_empty() {
        Ok(Vec::new())
    } else {
        deps::closure(&recipe.makedepends, target)
    };
    match (base, mk) {
        (Ok(base), Ok(mk)) => identity(
            &base.iter().map(Installed::from).collect::<Vec<_>>(),
            &mk.iter().map(Installed::from).collect::<Vec<_>>(),
        ),
        _ => "unresolved".to_string(),
    }
}

/// [`crate::plan::root_identity`] of installed packages.
pub(super) fn identity(base: &[Installed], deps: &[Installed]) -> String {
    fn items(list: &[Installed]) -> impl Iterator<Item = (&str, &str, &[u8; 20])> {
        list.iter()
            .map(|i| (i.name.as_str(), i.version.as_str(), &i.checksum))
    }
    crate::plan::root_identity(items(base), items(deps))
}

/// `out/roots/<arch>/NAME`: a hermetic unit's assembled root.
pub fn root_dir(settings: &Settings, arch: &str, name: &str) -> PathBuf {
    settings.out.join("roots").join(arch).join(name)
}

/// `out/toolcache`: the cache hermetic builds share (zig's).
pub fn tool_cache(settings: &Settings) -> PathBuf {
    settings.out.join("toolcache")
}

/// Assemble the base of a hermetic root at `dest` from `host_repo`;
/// returns what was installed and how long it took.
pub(super) fn assemble(
    settings: &Settings,
    from: &InstallTo<'_>,
    dest: &Path,
) -> Result<(Vec<Installed>, std::time::Duration), DepsError> {
    if settings.build_root.base.is_empty() {
        return Err(DepsError::EmptyBase);
    }
    let started = Instant::now();
    let mut root = RootWriter::new(dest, Link::Hard)?;
    let base = deps::install_into(&settings.build_root.base, BASE, from, &mut root)?;
    Ok((base, started.elapsed()))
}
