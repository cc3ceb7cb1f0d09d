//! Layer planning: which packages go into which layer (pure).
//!
//! `origin` mode gives one layer per package origin (the recipe that built
//! it), so a rebuilt package changes exactly one package layer. Layers are
//! ordered by dependency between origins (a layer comes after the layers it
//! depends on; ties and cycles broken by origin name). Image files (accounts,
//! apk database, extra paths) form a final layer that the caller appends.
//!
//! With `max_layers = N`, at most `N - 1` package layers are made: the
//! largest origins keep their own layer, and the smallest ones (ties broken
//! by name) are merged into one layer placed first, since small layers cost a
//! round trip each but save little when shared. `single` mode is one layer
//! holding everything.

use std::collections::{BTreeMap, BTreeSet};

use super::def::{Layering, LayeringMode};
use crate::resolve::topo_order;

/// What the planner needs per package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanInput {
    /// Package name.
    pub name: String,
    /// Origin (recipe) name.
    pub origin: String,
    /// Bytes of content.
    pub size: u64,
    /// Indices (into the input list) of the packages it depends on.
    pub deps: BTreeSet<usize>,
}

/// One planned layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedLayer {
    /// A short title for the history entry (`origin hello`, `merged: a b`).
    pub title: String,
    /// Package indices in this layer, sorted by name.
    pub packages: Vec<usize>,
    /// Whether the image files go into this layer too (single mode).
    pub with_image_files: bool,
}

/// Plan the package layers. In origin mode the caller appends the final
/// image-files layer; in single mode the one layer carries them.
pub fn plan(packages: &[PlanInput], layering: Layering) -> Vec<PlannedLayer> {
    let by_name = |mut v: Vec<usize>| {
        v.sort_by(|&a, &b| packages[a].name.cmp(&packages[b].name));
        v
    };
    if layering.mode == LayeringMode::Single {
        return vec![PlannedLayer {
            title: "all packages and image files".into(),
            packages: by_name((0..packages.len()).collect()),
            with_image_files: true,
        }];
    }
    // Origin groups and the dependency edges between them.
    let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, p) in packages.iter().enumerate() {
        groups.entry(p.origin.as_str()).or_default().push(i);
    }
    let mut edges: BTreeMap<&str, BTreeSet<&str>> =
        groups.keys().map(|o| (*o, BTreeSet::new())).collect();
    for p in packages {
        for &d in &p.deps {
            let dep_origin = packages[d].origin.as_str();
            if dep_origin != p.origin {
                edges
                    .entry(p.origin.as_str())
                    .or_default()
                    .insert(dep_origin);
            }
        }
    }
    let names: BTreeMap<&str, &str> = groups.keys().map(|o| (*o, *o)).collect();
    let order = topo_order(&edges, &names);

    let budget = layering
        .max_layers
        .map_or(usize::MAX, |n| n.saturating_sub(1).max(1));
    let mut merged: BTreeSet<&str> = BTreeSet::new();
    if order.len() > budget {
        let size = |o: &str| -> u64 { groups[o].iter().map(|&i| packages[i].size).sum() };
        let mut by_size: Vec<&str> = order.clone();
        by_size.sort_by(|a, b| size(a).cmp(&size(b)).then_with(|| a.cmp(b)));
        merged.extend(by_size.into_iter().take(order.len() - budget + 1));
    }
    let mut layers = Vec::new();
    if !merged.is_empty() {
        let pkgs: Vec<usize> = merged
            .iter()
            .flat_map(|o| groups[o].iter().copied())
            .collect();
        layers.push(PlannedLayer {
            title: format!(
                "merged origins: {}",
                merged.iter().copied().collect::<Vec<_>>().join(" ")
            ),
            packages: by_name(pkgs),
            with_image_files: false,
        });
    }
    for o in order {
        if !merged.contains(o) {
            layers.push(PlannedLayer {
                title: format!("origin {o}"),
                packages: by_name(groups[o].clone()),
                with_image_files: false,
            });
        }
    }
    layers
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inp(name: &str, origin: &str, size: u64, deps: &[usize]) -> PlanInput {
        PlanInput {
            name: name.into(),
            origin: origin.into(),
            size,
            deps: deps.iter().copied().collect(),
        }
    }

    fn sample() -> Vec<PlanInput> {
        vec![
            inp("musl", "musl", 600, &[]),
            inp("hello", "hello", 10, &[0, 2]),
            inp("libgreet", "greet", 50, &[0]),
            inp("greet-data", "greet", 5000, &[]),
            inp("zlib", "zlib", 100, &[0]),
        ]
    }

    fn titles(l: &[PlannedLayer]) -> Vec<&str> {
        l.iter().map(|l| l.title.as_str()).collect()
    }

    #[test]
    fn one_layer_per_origin_in_dependency_order() {
        let l = plan(
            &sample(),
            Layering {
                mode: LayeringMode::Origin,
                max_layers: None,
            },
        );
        assert_eq!(
            titles(&l),
            ["origin musl", "origin greet", "origin hello", "origin zlib"]
        );
        assert_eq!(l[1].packages, [3, 2]);
        assert!(l.iter().all(|l| !l.with_image_files));
    }

    #[test]
    fn budget_merges_smallest_origins_first() {
        let l = plan(
            &sample(),
            Layering {
                mode: LayeringMode::Origin,
                max_layers: Some(3),
            },
        );
        // 2 package layers: the largest (greet, 5050) keeps its own; hello, zlib, musl merge.
        assert_eq!(
            titles(&l),
            ["merged origins: hello musl zlib", "origin greet"]
        );
        assert_eq!(l[0].packages, [1, 0, 4]);
        let l = plan(
            &sample(),
            Layering {
                mode: LayeringMode::Origin,
                max_layers: Some(4),
            },
        );
        assert_eq!(
            titles(&l),
            ["merged origins: hello zlib", "origin musl", "origin greet"]
        );
        let l = plan(
            &sample(),
            Layering {
                mode: LayeringMode::Origin,
                max_layers: Some(2),
            },
        );
        assert_eq!(titles(&l), ["merged origins: greet hello musl zlib"]);
        let l = plan(
            &sample(),
            Layering {
                mode: LayeringMode::Origin,
                max_layers: Some(5),
            },
        );
        assert_eq!(l.len(), 4);
    }

    #[test]
    fn single_mode() {
        let l = plan(
            &sample(),
            Layering {
                mode: LayeringMode::Single,
                max_layers: None,
            },
        );
        assert_eq!(l.len(), 1);
        assert!(l[0].with_image_files);
        assert_eq!(l[0].packages, [3, 1, 2, 0, 4]);
    }
}
