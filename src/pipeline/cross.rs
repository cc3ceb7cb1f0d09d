//! Bootstrap-stage builds for an architecture other than the host's.
//!
//! The musl base (musl, libseccomp, libcap, yajl, argp, busybox, crun) is
//! compiled by the zig seed for `$CARCH` while the bootstrap stage still
//! takes make and sed from the host. Such a recipe names the foreign
//! architecture in its `arch` and is planned for it. Its makedepends mix two
//! kinds of package: libraries and headers *for the target* (`musl-dev`,
//! `libseccomp-dev`), which come from the target's repository, and programs
//! *for the build machine* (`zig`), which only the host architecture's
//! recipes make. The second kind come from the host's
//! repository into the same `/forge/deps`, as the hermetic stage takes its
//! base from there.
//!
//! The build machine's packages enter the unit key as its `root` component (the
//! same identity a hermetic root has), so a new zig rebuilds the foreign
//! units it compiled.

use std::collections::{BTreeMap, BTreeSet};

use super::deps;
use crate::apk::index::IndexEntry;
use crate::graph::dep_name;
use crate::recipe::Recipe;

/// Every name a recipe's packages answer to: the recipe, its subpackages
/// and their provides.
fn provided_names(r: &Recipe) -> impl Iterator<Item = &str> {
    std::iter::once(r.name.as_str())
        .chain(r.provides.iter().map(|p| dep_name(p)))
        .chain(r.subpackages.iter().flat_map(|s| {
            std::iter::once(s.name.as_str()).chain(s.provides.iter().map(|p| dep_name(p)))
        }))
}

/// The names only the host architecture's recipes provide (the seed): what
/// a foreign unit's makedepends take from the host's repository.
pub(super) fn host_only_names(host: &[Recipe], target: &[Recipe]) -> BTreeSet<String> {
    let mine: BTreeSet<&str> = target.iter().flat_map(provided_names).collect();
    host.iter()
        .flat_map(provided_names)
        .filter(|n| !mine.contains(n))
        .map(str::to_string)
        .collect()
}

/// Per recipe name, the makedepends it takes from the host's repository.
pub(super) type FromHost = BTreeMap<String, Vec<String>>;

/// Move each recipe's makedepends named in `tools` out of it: the recipes
/// as the target's graph and build see them, and what each takes from the
/// host's repository.
pub(super) fn split(recipes: Vec<Recipe>, tools: &BTreeSet<String>) -> (Vec<Recipe>, FromHost) {
    let mut host = BTreeMap::new();
    let recipes = recipes
        .into_iter()
        .map(|mut r| {
            let (theirs, mine): (Vec<String>, Vec<String>) = r
                .makedepends
                .drain(..)
                .partition(|d| tools.contains(dep_name(d)));
            r.makedepends = mine;
            if !theirs.is_empty() {
                host.insert(r.name.clone(), theirs);
            }
            r
        })
        .collect();
    (recipes, host)
}

/// The identity of the build machine's packages `wanted` as the host's signed index has
/// them now (`unresolved` until they are built; execution then records
/// what it installed).
pub(super) fn predicted_identity(wanted: &[String], host: &[IndexEntry]) -> String {
    match deps::closure_for(wanted, FROM_HOST, host) {
        Ok(list) => identity(&list.iter().map(deps::Installed::from).collect::<Vec<_>>()),
        Err(_) => "unresolved".to_string(),
    }
}

/// The `root` component of a foreign bootstrap unit: its build machine's
/// packages.
pub(super) fn identity(installed: &[deps::Installed]) -> String {
    super::buildroot::identity(installed, &[])
}

/// What asks for the host tools, named in resolution errors.
pub(super) const FROM_HOST: &str = "makedepends for the build machine (from the host's repository)";

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn recipe(name: &str, makedepends: &str, extra: &str) -> Recipe {
        let text = format!(
            "schema = 1\n[package]\nname = \"{name}\"\nversion = \"1.0\"\n\
             description = \"x\"\nurl = \"https://example.org/\"\nlicense = \"MIT\"\n\
             arch = [\"x86_64\", \"aarch64\"]\nmakedepends = [{makedepends}]\n{extra}\n\
             [build]\nscript = \"true\"\n"
        );
        let file = Path::new("/nowhere").join(name).join("recipe.toml");
        crate::recipe::parse_text(&file, &text).unwrap()
    }

    #[test]
    fn host_only_makedepends_move_out_of_the_targets_graph() {
        let zig = recipe("zig", "", "");
        let musl = recipe("musl", "\"zig\"", "subpackages = [\"dev\"]");
        let crun = recipe("crun", "\"zig>=0.17\", \"musl-dev\"", "");
        let host = vec![zig, musl.clone(), crun.clone()];
        let target = vec![musl, crun];
        let tools = host_only_names(&host, &target);
        assert_eq!(tools, BTreeSet::from(["zig".to_string()]));
        let (recipes, from_host) = split(target, &tools);
        assert!(recipes[0].makedepends.is_empty());
        assert_eq!(recipes[1].makedepends, vec!["musl-dev".to_string()]);
        assert_eq!(from_host["musl"], vec!["zig".to_string()]);
        assert_eq!(from_host["crun"], vec!["zig>=0.17".to_string()]);
        assert!(!from_host.contains_key("zig"));
        // Not built yet: the key says so, execution records the real one.
        assert_eq!(predicted_identity(&from_host["musl"], &[]), "unresolved");
    }
}
