//! Package resolution against a repository index (pure): the one resolver
//! for build dependencies ([`crate::pipeline::deps`]) and images
//! ([`crate::image`]), following apk's rules.
//!
//! Starting from the requested dependency strings, every dependency is
//! matched against package names (`P:`) and provides (`p:`, including `so:`,
//! `pc:` and `cmd:` names):
//!
//! - `name`, `name=V`, `name<V`, `name>V`, `name<=V`, `name>=V`, `name~V`
//!   (fuzzy: `V` is a token prefix, [`crate::version::fuzzy_match`]);
//!   versions compare by apk's order ([`crate::version::compare`]);
//! - a package satisfies a dependency by its own name and version, or by a
//!   provide: a versioned provide (`so:libz.so.1=1.3`) is compared like a
//!   version; an unversioned provide (`p:mta`, a *virtual* name) never
//!   satisfies a version constraint;
//! - `!name` (optionally with a constraint) excludes every package that would
//!   satisfy `name`.
//!
//! Choosing among candidates, as apk does: a candidate must agree with every
//! requested dependency on its names (so `foo` and `foo<2` asked together
//! pick foo-1); a package already chosen that
//! satisfies the dependency wins; else the package whose own name matches
//! (highest version); else among providers, the highest `provider_priority`,
//! then the highest provided version, then the highest package version, then
//! the lowest name. A virtual name (only unversioned provides) is picked
//! automatically only from providers with a `provider_priority`; otherwise it
//! is an error listing the providers, as apk's "(virtual)" error is.
//!
//! The walk is breadth-first and does not backtrack: when a package's
//! dependency wants another version of a package already chosen, that is a
//! `Clash` error naming both, not a search.
//!
//! Errors name the dependency exactly as written and who asked for it (the
//! request, e.g. `makedepends`, or `name-version` of the package whose `D:`
//! it is). The result is in install order: a package comes after everything
//! it depends on (ties and cycles broken by name), so it never depends on
//! the index order.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

mod dep;

pub use dep::{Dep, Op};

use crate::apk::index::IndexEntry;
use crate::version::compare;

/// What the resolver needs to know about one repository package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// `P:`.
    pub name: String,
    /// `V:`.
    pub version: String,
    /// `D:`.
    pub depends: Vec<String>,
    /// `p:`.
    pub provides: Vec<String>,
    /// `k:` (`provider_priority`).
    pub provider_priority: Option<u32>,
}

impl From<&IndexEntry> for Candidate {
    fn from(e: &IndexEntry) -> Candidate {
        Candidate {
            name: e.name.clone(),
            version: e.version.clone(),
            depends: e.depends.clone(),
            provides: e.provides.clone(),
            provider_priority: e.provider_priority,
        }
    }
}

/// What to resolve, for whom, and how strictly.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The dependency strings asked for.
    pub deps: &'a [String],
    /// Who asked, named in errors (`the image`, `makedepends`).
    pub by: &'a str,
    /// A dependency of a chosen package whose name nothing in the repository
    /// has is left out instead of failing (build roots: the host toolchain
    /// provides `so:libc.so.6`). A name the repository has in versions that
    /// do not fit is still an error.
    pub missing_transitive_ok: bool,
}

/// Why resolution failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ResolveError {
    /// Nothing provides a dependency.
    #[error("nothing in the repository provides `{dep}` (needed by {needed_by})")]
    Missing {
        /// The dependency string.
        dep: String,
        /// Who needs it (`the image` for requested packages).
        needed_by: String,
    },
    /// The repository has the name, but no version fits the constraint.
    #[error("`{dep}` (needed by {needed_by}) is not satisfied: the repository has {}", available.join(", "))]
    Unsatisfied {
        /// The dependency string.
        dep: String,
        /// Who needs it.
        needed_by: String,
        /// What the repository offers under that name (`name-version`, or
        /// `provide (from name-version)`).
        available: Vec<String>,
    },
    /// Only unversioned provides, none with a `provider_priority`.
    #[error("`{dep}` (needed by {needed_by}) is a virtual name provided by {}: name one of them", providers.join(", "))]
    Virtual {
        /// The dependency string.
        dep: String,
        /// Who needs it.
        needed_by: String,
        /// The providers (`name-version`).
        providers: Vec<String>,
    },
    /// Two versions of one package are needed.
    #[error("`{dep}` (needed by {needed_by}) conflicts with the already chosen {chosen}")]
    Clash {
        /// The dependency string.
        dep: String,
        /// Who needs it.
        needed_by: String,
        /// `name-version` already chosen.
        chosen: String,
    },
    /// A chosen package is excluded by a `!name` dependency.
    #[error("{package} is excluded by `{dep}` (from {by})")]
    Conflict {
        /// The excluded package.
        package: String,
        /// The conflict as written (`!name`, `!name<2`).
        dep: String,
        /// Who declared it.
        by: String,
    },
}

/// The resolution: candidate indices in install order, and each chosen
/// package's resolved dependencies (candidate index → candidate indices).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    /// Install order (dependencies first).
    pub order: Vec<usize>,
    /// Resolved dependency edges.
    pub deps: BTreeMap<usize, BTreeSet<usize>>,
}

/// How `c` matches the name of `dep`: `Some(Some(v))` by its own version or
/// a versioned provide, `Some(None)` by an unversioned provide.
fn matches_name<'a>(c: &'a Candidate, name: &str) -> Option<Option<&'a str>> {
    if c.name == name {
        return Some(Some(&c.version));
    }
    c.provides.iter().find_map(|p| match p.split_once('=') {
        Some((n, v)) if n == name => Some(Some(v)),
        None if p == name => Some(None),
        _ => None,
    })
}

fn satisfies(c: &Candidate, dep: &Dep) -> bool {
    if c.name == dep.name {
        return dep.accepts(Some(&c.version));
    }
    c.provides.iter().any(|p| match p.split_once('=') {
        Some((n, v)) => n == dep.name && dep.accepts(Some(v)),
        None => p == &dep.name && dep.accepts(None),
    })
}

fn label(c: &Candidate) -> String {
    format!("{}-{}", c.name, c.version)
}

/// apk's preference among providers of `name` (greater is preferred).
fn prefer(a: &Candidate, b: &Candidate, name: &str) -> Ordering {
    fn provided<'c>(c: &'c Candidate, name: &str) -> &'c str {
        matches_name(c, name).flatten().unwrap_or("")
    }
    (a.name == name)
        .cmp(&(b.name == name))
        .then_with(|| a.provider_priority.cmp(&b.provider_priority))
        .then_with(|| compare(provided(a, name), provided(b, name)))
        .then_with(|| compare(&a.version, &b.version))
        .then_with(|| b.name.cmp(&a.name))
}

/// The state of one resolution.
struct Solver<'r> {
    repo: &'r [Candidate],
    /// The requested dependencies (no conflicts): every package picked must
    /// agree with those on its names, whichever asks first.
    world: Vec<Dep>,
    chosen: BTreeMap<String, usize>,
    deps: BTreeMap<usize, BTreeSet<usize>>,
    /// `!` dependencies: parsed, as written, and who declared them.
    conflicts: Vec<(Dep, String, String)>,
}

/// Resolve `req` against `repo`.
pub fn resolve(req: &Request<'_>, repo: &[Candidate]) -> Result<Resolution, ResolveError> {
    let mut s = Solver {
        repo,
        world: req
            .deps
            .iter()
            .map(|d| Dep::parse(d))
            .filter(|d| !d.conflict)
            .collect(),
        chosen: BTreeMap::new(),
        deps: BTreeMap::new(),
        conflicts: Vec::new(),
    };
    let mut queue: VecDeque<(String, Option<usize>)> =
        req.deps.iter().map(|r| (r.clone(), None)).collect();
    while let Some((text, from)) = queue.pop_front() {
        let dep = Dep::parse(&text);
        let needed_by = from.map_or(req.by.to_string(), |i| label(&repo[i]));
        if dep.conflict {
            s.conflicts.push((dep, text, needed_by));
            continue;
        }
        let pick = match s.pick(&dep, &text, &needed_by)? {
            Pick::Chosen(i) => i,
            Pick::New(i) => {
                s.choose(i);
                queue.extend(
                    repo[i]
                        .depends
                        .iter()
                        .filter(|d| !d.starts_with('!'))
                        .map(|d| (d.clone(), Some(i))),
                );
                i
            }
            Pick::Absent if from.is_some() && req.missing_transitive_ok => continue,
            Pick::Absent => {
                return Err(ResolveError::Missing {
                    dep: text,
                    needed_by,
                });
            }
        };
        if let Some(f) = from
            && f != pick
        {
            s.deps.entry(f).or_default().insert(pick);
        }
    }
    s.check_conflicts()?;
    let names: BTreeMap<usize, &str> = s.deps.keys().map(|&i| (i, repo[i].name.as_str())).collect();
    let order = topo_order(&s.deps, &names);
    Ok(Resolution {
        order,
        deps: s.deps,
    })
}

/// What a dependency resolves to.
enum Pick {
    /// A package already chosen.
    Chosen(usize),
    /// A package to add.
    New(usize),
    /// Nothing in the repository has the name.
    Absent,
}

impl Solver<'_> {
    /// Take package `i`; its `!` dependencies apply from now on.
    fn choose(&mut self, i: usize) {
        let c = &self.repo[i];
        self.chosen.insert(c.name.clone(), i);
        self.deps.insert(i, BTreeSet::new());
        for d in c.depends.iter().filter(|d| d.starts_with('!')) {
            self.conflicts.push((Dep::parse(d), d.clone(), label(c)));
        }
    }

    fn pick(&self, dep: &Dep, text: &str, needed_by: &str) -> Result<Pick, ResolveError> {
        let repo = self.repo;
        if let Some(i) = self
            .chosen
            .values()
            .copied()
            .filter(|&i| satisfies(&repo[i], dep))
            .min()
        {
            return Ok(Pick::Chosen(i));
        }
        if let Some(&other) = self.chosen.get(&dep.name) {
            return Err(ResolveError::Clash {
                dep: text.to_string(),
                needed_by: needed_by.to_string(),
                chosen: label(&repo[other]),
            });
        }
        let fits: Vec<usize> = (0..repo.len())
            .filter(|&i| satisfies(&repo[i], dep) && !self.excluded(i) && self.agrees(i))
            .collect();
        let selectable: Vec<usize> = fits
            .iter()
            .copied()
            .filter(|&i| {
                let c = &repo[i];
                matches_name(c, &dep.name).flatten().is_some() || c.provider_priority.is_some()
            })
            .collect();
        let best = selectable
            .iter()
            .copied()
            .max_by(|&a, &b| prefer(&repo[a], &repo[b], &dep.name));
        let Some(best) = best else {
            return self.why_none(dep, text, needed_by, &fits);
        };
        if let Some(&other) = self.chosen.get(&repo[best].name) {
            return Err(ResolveError::Clash {
                dep: text.to_string(),
                needed_by: needed_by.to_string(),
                chosen: label(&repo[other]),
            });
        }
        Ok(Pick::New(best))
    }

    /// Why nothing was picked: [`Pick::Absent`] when the repository does not
    /// have the name at all (the caller decides), else the error to report.
    fn why_none(
        &self,
        dep: &Dep,
        text: &str,
        needed_by: &str,
        fits: &[usize],
    ) -> Result<Pick, ResolveError> {
        let repo = self.repo;
        if !fits.is_empty() {
            let mut providers: Vec<String> = fits.iter().map(|&i| label(&repo[i])).collect();
            providers.sort();
            return Err(ResolveError::Virtual {
                dep: text.to_string(),
                needed_by: needed_by.to_string(),
                providers,
            });
        }
        let mut available: Vec<String> = repo
            .iter()
            .enumerate()
            .filter_map(|(i, c)| {
                let how = matches_name(c, &dep.name)?;
                let what = if c.name == dep.name {
                    label(c)
                } else {
                    let v = how.map(|v| format!("={v}")).unwrap_or_default();
                    format!("{}{v} (from {})", dep.name, label(c))
                };
                Some(if self.excluded(i) {
                    format!("{what} (excluded by a `!` dependency)")
                } else if satisfies(c, dep) && !self.agrees(i) {
                    format!("{what} (refused by another requested dependency)")
                } else {
                    what
                })
            })
            .collect();
        if available.is_empty() {
            return Ok(Pick::Absent);
        }
        available.sort();
        Err(ResolveError::Unsatisfied {
            dep: text.to_string(),
            needed_by: needed_by.to_string(),
            available,
        })
    }

    /// Whether candidate `i` satisfies every requested dependency on a name
    /// it has.
    fn agrees(&self, i: usize) -> bool {
        let c = &self.repo[i];
        self.world
            .iter()
            .all(|w| matches_name(c, &w.name).is_none() || satisfies(c, w))
    }

    /// Whether a `!` dependency seen so far excludes candidate `i`.
    fn excluded(&self, i: usize) -> bool {
        self.conflicts
            .iter()
            .any(|(d, _, _)| satisfies(&self.repo[i], d))
    }

    fn check_conflicts(&self) -> Result<(), ResolveError> {
        for (dep, text, by) in &self.conflicts {
            let hit = self
                .chosen
                .values()
                .find(|&&i| satisfies(&self.repo[i], dep));
            if let Some(&i) = hit {
                return Err(ResolveError::Conflict {
                    package: label(&self.repo[i]),
                    dep: text.clone(),
                    by: by.clone(),
                });
            }
        }
        Ok(())
    }
}

/// Order nodes so each follows its dependencies; ready nodes go by name, and
/// a cycle is broken at its lowest name.
pub fn topo_order<K: Ord + Copy>(
    deps: &BTreeMap<K, BTreeSet<K>>,
    names: &BTreeMap<K, &str>,
) -> Vec<K> {
    let mut remaining: BTreeMap<K, usize> = deps.iter().map(|(k, d)| (*k, d.len())).collect();
    let mut order = Vec::new();
    let key = |k: &K| (names.get(k).copied().unwrap_or(""), *k);
    while !remaining.is_empty() {
        let next = remaining
            .iter()
            .filter(|(_, n)| **n == 0)
            .map(|(k, _)| *k)
            .min_by_key(key)
            .or_else(|| remaining.keys().copied().min_by_key(key))
            .expect("non-empty");
        remaining.remove(&next);
        order.push(next);
        for (k, d) in deps {
            if d.contains(&next)
                && let Some(n) = remaining.get_mut(k)
            {
                *n = n.saturating_sub(1);
            }
        }
    }
    order
}

#[cfg(test)]
mod tests;
