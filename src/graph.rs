//! The unit graph: which recipe must be built before which (pure, no I/O).
//!
//! Nodes are recipes. An edge `a -> b` means "building `a` needs `b` built
//! first": `b` provides one of `a`'s `makedepends`, or one of its runtime
//! `depends` (those are installed with the build dependencies too, so they have
//! to exist). A dependency names a package (`libgreet`, `libgreet>=1.0`), or a
//! provided name (`so:libgreet.so.1`, `pc:greet`, `cmd:greet`). Names are
//! matched against every recipe's main package, its subpackages and their
//! `provides`, plus the automatic provides recorded in the repository of earlier
//! builds (passed in as `extra_provides`).
//!
//! Order is deterministic: among ready units, names sort bytewise.

use std::collections::{BTreeMap, BTreeSet};

use crate::recipe::Recipe;

/// Why the graph could not be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GraphError {
    /// A dependency cycle, as the full path `a -> b -> a`.
    #[error("dependency cycle: {}", .0.join(" -> "))]
    Cycle(Vec<String>),
    /// A build dependency no recipe provides.
    #[error("{recipe}: no recipe provides makedepends `{dep}`")]
    Unresolved {
        /// The recipe that asked.
        recipe: String,
        /// The dependency string.
        dep: String,
    },
    /// A name on the command line that is no recipe.
    #[error("no recipe named `{0}`")]
    UnknownTarget(String),
}

/// The dependency graph over a set of recipes.
#[derive(Debug, Clone)]
pub struct UnitGraph {
    /// Recipe name -> names of recipes it needs built first.
    deps: BTreeMap<String, BTreeSet<String>>,
}

/// Strip a version constraint: `foo>=1.2` -> `foo`, `so:libx.so.1=1` -> `so:libx.so.1`.
pub fn dep_name(dep: &str) -> &str {
    let dep = dep.strip_prefix('!').unwrap_or(dep);
    let end = dep.find(['<', '>', '=', '~']).unwrap_or(dep.len());
    dep[..end].trim()
}

impl UnitGraph {
    /// Build the graph. `extra_provides` maps provided names (e.g. `so:` names
    /// from packages built earlier) to the recipe (origin) that provides them.
    pub fn new(
        recipes: &[Recipe],
        extra_provides: &BTreeMap<String, String>,
    ) -> Result<UnitGraph, GraphError> {
        let mut provider: BTreeMap<&str, &str> = BTreeMap::new();
        for (name, origin) in extra_provides {
            provider.insert(name.as_str(), origin.as_str());
        }
        for r in recipes {
            provider.insert(&r.name, &r.name);
            for p in &r.provides {
                provider.insert(dep_name(p), &r.name);
            }
            for s in &r.subpackages {
                provider.insert(&s.name, &r.name);
                for p in &s.provides {
                    provider.insert(dep_name(p), &r.name);
                }
            }
        }
        let mut deps = BTreeMap::new();
        for r in recipes {
            let mut mine = BTreeSet::new();
            for d in &r.makedepends {
                match provider.get(dep_name(d)) {
                    Some(origin) => {
                        mine.insert(origin.to_string());
                    }
                    None => {
                        return Err(GraphError::Unresolved {
                            recipe: r.name.clone(),
                            dep: d.clone(),
                        });
                    }
                }
            }
            // Runtime depends that a recipe provides must be built too; others
            // (e.g. `so:libc.so.6`) come from outside forge.
            for d in &r.depends {
                if let Some(origin) = provider.get(dep_name(d)) {
                    mine.insert(origin.to_string());
                }
            }
            mine.remove(&r.name);
            deps.insert(r.name.clone(), mine);
        }
        let graph = UnitGraph { deps };
        graph.check_acyclic()?;
        Ok(graph)
    }

    /// All unit names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.deps.keys().map(String::as_str)
    }

    /// Direct dependencies of `name`.
    pub fn deps_of(&self, name: &str) -> impl Iterator<Item = &str> {
        self.deps
            .get(name)
            .into_iter()
            .flat_map(|s| s.iter().map(String::as_str))
    }

    /// Whether `name` is a unit.
    pub fn contains(&self, name: &str) -> bool {
        self.deps.contains_key(name)
    }

    fn check_acyclic(&self) -> Result<(), GraphError> {
        // Iterative DFS with colours; on a back edge, report the stack slice.
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            Open,
            Done,
        }
        let mut mark: BTreeMap<&str, Mark> = BTreeMap::new();
        for start in self.deps.keys() {
            if mark.contains_key(start.as_str()) {
                continue;
            }
            let mut stack: Vec<(&str, Vec<&str>)> =
                vec![(start.as_str(), self.deps_of(start).collect())];
            mark.insert(start, Mark::Open);
            while let Some((node, pending)) = stack.last_mut() {
                let node = *node;
                match pending.pop() {
                    Some(next) => match mark.get(next) {
                        Some(Mark::Done) => {}
                        Some(Mark::Open) => {
                            let at = stack.iter().position(|(n, _)| *n == next).unwrap_or(0);
                            let mut path: Vec<String> =
                                stack[at..].iter().map(|(n, _)| n.to_string()).collect();
                            path.push(next.to_string());
                            return Err(GraphError::Cycle(path));
                        }
                        None => {
                            mark.insert(next, Mark::Open);
                            stack.push((next, self.deps_of(next).collect()));
                        }
                    },
                    None => {
                        mark.insert(node, Mark::Done);
                        stack.pop();
                    }
                }
            }
        }
        Ok(())
    }

    /// `targets` and everything they need, transitively.
    pub fn closure(&self, targets: &[String]) -> Result<BTreeSet<String>, GraphError> {
        let mut seen = BTreeSet::new();
        let mut todo: Vec<String> = Vec::new();
        for t in targets {
            if !self.contains(t) {
                return Err(GraphError::UnknownTarget(t.clone()));
            }
            todo.push(t.clone());
        }
        while let Some(n) = todo.pop() {
            if seen.insert(n.clone()) {
                todo.extend(self.deps_of(&n).map(str::to_string));
            }
        }
        Ok(seen)
    }

    /// `targets` and everything that depends on them, transitively.
    pub fn reverse_closure(&self, targets: &[String]) -> Result<BTreeSet<String>, GraphError> {
        let mut rdeps: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (n, ds) in &self.deps {
            for d in ds {
                rdeps.entry(d.as_str()).or_default().push(n.as_str());
            }
        }
        let mut seen = BTreeSet::new();
        let mut todo: Vec<String> = Vec::new();
        for t in targets {
            if !self.contains(t) {
                return Err(GraphError::UnknownTarget(t.clone()));
            }
            todo.push(t.clone());
        }
        while let Some(n) = todo.pop() {
            if seen.insert(n.clone())
                && let Some(rs) = rdeps.get(n.as_str())
            {
                todo.extend(rs.iter().map(|s| s.to_string()));
            }
        }
        Ok(seen)
    }

    /// A deterministic topological order of `subset` (dependencies first).
    pub fn order(&self, subset: &BTreeSet<String>) -> Vec<String> {
        let mut indeg: BTreeMap<&str, usize> = BTreeMap::new();
        let mut users: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for n in subset {
            let ds: Vec<&str> = self.deps_of(n).filter(|d| subset.contains(*d)).collect();
            indeg.insert(n, ds.len());
            for d in ds {
                users.entry(d).or_default().push(n);
            }
        }
        let mut ready: BTreeSet<&str> = indeg
            .iter()
            .filter(|(_, d)| **d == 0)
            .map(|(n, _)| *n)
            .collect();
        let mut out = Vec::with_capacity(subset.len());
        while let Some(n) = ready.pop_first() {
            out.push(n.to_string());
            for u in users.get(n).into_iter().flatten() {
                let d = indeg.get_mut(u).expect("user is in subset");
                *d -= 1;
                if *d == 0 {
                    ready.insert(u);
                }
            }
        }
        out
    }

    /// Graphviz text of `subset`.
    pub fn to_dot(&self, subset: &BTreeSet<String>) -> String {
        let mut s = String::from("digraph forge {\n  rankdir=LR;\n");
        for n in subset {
            s.push_str(&format!("  \"{n}\";\n"));
            for d in self.deps_of(n).filter(|d| subset.contains(*d)) {
                s.push_str(&format!("  \"{n}\" -> \"{d}\";\n"));
            }
        }
        s.push_str("}\n");
        s
    }

    /// Plain text: one line per unit, `name: dep dep`, in build order.
    pub fn to_text(&self, subset: &BTreeSet<String>) -> String {
        let mut s = String::new();
        for n in self.order(subset) {
            let ds: Vec<&str> = self.deps_of(&n).filter(|d| subset.contains(*d)).collect();
            s.push_str(&format!("{n}: {}\n", ds.join(" ")));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(edges: &[(&str, &[&str])]) -> Result<UnitGraph, GraphError> {
        let mut deps = BTreeMap::new();
        for (n, ds) in edges {
            deps.insert(
                n.to_string(),
                ds.iter().map(|d| d.to_string()).collect::<BTreeSet<_>>(),
            );
        }
        let graph = UnitGraph { deps };
        graph.check_acyclic().map(|_| graph)
    }

    fn set(xs: &[&str]) -> BTreeSet<String> {
        xs.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn dep_names_drop_constraints() {
        for (input, want) in [
            ("foo", "foo"),
            ("foo>=1.2", "foo"),
            ("so:libx.so.1=1", "so:libx.so.1"),
            ("pc:greet>=0.1", "pc:greet"),
            ("!conflict", "conflict"),
            ("bar~1.2", "bar"),
        ] {
            assert_eq!(dep_name(input), want, "{input}");
        }
    }

    #[test]
    fn order_is_dependencies_first_and_sorted() {
        let gr = g(&[
            ("app", &["lib", "util"]),
            ("lib", &["base"]),
            ("util", &[]),
            ("base", &[]),
        ])
        .unwrap();
        let all = set(&["app", "lib", "util", "base"]);
        assert_eq!(gr.order(&all), vec!["base", "lib", "util", "app"]);
    }

    #[test]
    fn cycle_is_reported_with_full_path() {
        let err = g(&[("a", &["b"]), ("b", &["c"]), ("c", &["a"]), ("d", &[])]).unwrap_err();
        assert_eq!(
            err,
            GraphError::Cycle(vec!["a".into(), "b".into(), "c".into(), "a".into()])
        );
        assert_eq!(err.to_string(), "dependency cycle: a -> b -> c -> a");
    }

    #[test]
    fn self_loop_free_and_closures() {
        let gr = g(&[
            ("app", &["lib"]),
            ("lib", &["base"]),
            ("base", &[]),
            ("other", &[]),
        ])
        .unwrap();
        assert_eq!(
            gr.closure(&["app".into()]).unwrap(),
            set(&["app", "lib", "base"])
        );
        assert_eq!(
            gr.reverse_closure(&["base".into()]).unwrap(),
            set(&["app", "lib", "base"])
        );
        assert_eq!(
            gr.closure(&["nope".into()]).unwrap_err(),
            GraphError::UnknownTarget("nope".into())
        );
    }
}
