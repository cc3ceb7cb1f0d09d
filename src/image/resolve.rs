//! Package resolution against a repository index (pure).
//!
//! Starting from the requested dependency strings, every `D:` dependency is
//! matched against package names (`P:`) and provides (`p:`, including `so:`,
//! `pc:` and `cmd:` names). A package already chosen wins when it satisfies
//! the dependency; otherwise the package whose name matches wins over
//! providers, then the highest version, then the lowest name. `!name`
//! conflicts are checked at the end. The result is in install order: a
//! package comes after everything it depends on (ties and cycles broken by
//! name), so the order never depends on the index order.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

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
}

/// A version comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `=`
    Eq,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `~` / `=~`: the version starts with the given one.
    Fuzzy,
}

/// A parsed dependency string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dep {
    /// Name or provided name (`so:libc.so.6`).
    pub name: String,
    /// Optional version constraint.
    pub constraint: Option<(Op, String)>,
    /// `!name`: must not be installed.
    pub conflict: bool,
}

impl Dep {
    /// Parse `name`, `name>=1.0`, `!name`, `so:libfoo.so.1`.
    pub fn parse(s: &str) -> Dep {
        let (conflict, s) = match s.strip_prefix('!') {
            Some(r) => (true, r),
            None => (false, s),
        };
        let Some(i) = s.find(['<', '>', '=', '~']) else {
            return Dep {
                name: s.to_string(),
                constraint: None,
                conflict,
            };
        };
        let (name, rest) = s.split_at(i);
        let ops = [
            ("=~", Op::Fuzzy),
            (">=", Op::Ge),
            ("<=", Op::Le),
            ("~", Op::Fuzzy),
            ("=", Op::Eq),
            (">", Op::Gt),
            ("<", Op::Lt),
        ];
        let (op, ver) = ops
            .iter()
            .find_map(|(t, op)| rest.strip_prefix(t).map(|v| (*op, v)))
            .unwrap_or((Op::Eq, rest));
        Dep {
            name: name.to_string(),
            constraint: Some((op, ver.to_string())),
            conflict,
        }
    }

    fn accepts(&self, version: Option<&str>, cmp: Cmp) -> bool {
        match (&self.constraint, version) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some((op, want)), Some(have)) => {
                let o = cmp(have, want);
                match op {
                    Op::Eq => o == Ordering::Equal,
                    Op::Lt => o == Ordering::Less,
                    Op::Le => o != Ordering::Greater,
                    Op::Gt => o == Ordering::Greater,
                    Op::Ge => o != Ordering::Less,
                    Op::Fuzzy => {
                        have == want
                            || have
                                .strip_prefix(want.as_str())
                                .is_some_and(|r| r.starts_with(['.', '-', '_']))
                    }
                }
            }
        }
    }
}

/// A version ordering (apk's in production).
pub type Cmp = fn(&str, &str) -> Ordering;

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
    #[error("{package} is excluded by `!{name}` (from {by})")]
    Conflict {
        /// The excluded package.
        package: String,
        /// The conflict name.
        name: String,
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

fn provided<'a>(c: &'a Candidate, name: &str) -> Option<Option<&'a str>> {
    c.provides.iter().find_map(|p| match p.split_once('=') {
        Some((n, v)) if n == name => Some(Some(v)),
        None if p == name => Some(None),
        _ => None,
    })
}

fn satisfies(c: &Candidate, dep: &Dep, cmp: Cmp) -> bool {
    if c.name == dep.name && dep.accepts(Some(&c.version), cmp) {
        return true;
    }
    provided(c, &dep.name).is_some_and(|v| dep.accepts(v, cmp))
}

/// Resolve `requested` against `repo`.
pub fn resolve(
    requested: &[String],
    repo: &[Candidate],
    cmp: Cmp,
) -> Result<Resolution, ResolveError> {
    let mut chosen: BTreeMap<String, usize> = BTreeMap::new();
    let mut deps: BTreeMap<usize, BTreeSet<usize>> = BTreeMap::new();
    let mut conflicts: Vec<(Dep, String)> = Vec::new();
    let mut queue: VecDeque<(String, Option<usize>)> =
        requested.iter().map(|r| (r.clone(), None)).collect();
    while let Some((text, from)) = queue.pop_front() {
        let dep = Dep::parse(&text);
        let needed_by = from.map_or("the image".to_string(), |i| {
            format!("{}-{}", repo[i].name, repo[i].version)
        });
        if dep.conflict {
            conflicts.push((dep, needed_by));
            continue;
        }
        let pick = match chosen
            .values()
            .copied()
            .filter(|&i| satisfies(&repo[i], &dep, cmp))
            .min()
        {
            Some(i) => i,
            None => {
                let best = repo
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| satisfies(c, &dep, cmp))
                    .max_by(|(_, a), (_, b)| {
                        (a.name == dep.name)
                            .cmp(&(b.name == dep.name))
                            .then_with(|| cmp(&a.version, &b.version))
                            .then_with(|| b.name.cmp(&a.name))
                    })
                    .map(|(i, _)| i)
                    .ok_or_else(|| ResolveError::Missing {
                        dep: text.clone(),
                        needed_by: needed_by.clone(),
                    })?;
                if let Some(&other) = chosen.get(&repo[best].name) {
                    return Err(ResolveError::Clash {
                        dep: text,
                        needed_by,
                        chosen: format!("{}-{}", repo[other].name, repo[other].version),
                    });
                }
                chosen.insert(repo[best].name.clone(), best);
                deps.insert(best, BTreeSet::new());
                for d in &repo[best].depends {
                    queue.push_back((d.clone(), Some(best)));
                }
                best
            }
        };
        if let Some(f) = from
            && f != pick
        {
            deps.entry(f).or_default().insert(pick);
        }
    }
    for (dep, by) in conflicts {
        if let Some(&i) = chosen.values().find(|&&i| satisfies(&repo[i], &dep, cmp)) {
            return Err(ResolveError::Conflict {
                package: format!("{}-{}", repo[i].name, repo[i].version),
                name: dep.name,
                by,
            });
        }
    }
    let names: BTreeMap<usize, &str> = deps.keys().map(|&i| (i, repo[i].name.as_str())).collect();
    let order = topo_order(&deps, &names);
    Ok(Resolution { order, deps })
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
mod tests {
    use super::*;

    /// Dotted numeric comparison, enough for the tests (apk's lives in `crate::version`).
    fn cmp(a: &str, b: &str) -> Ordering {
        let parse = |s: &str| -> Vec<u64> {
            s.split(['.', '-', 'r'])
                .filter_map(|x| x.parse().ok())
                .collect()
        };
        parse(a).cmp(&parse(b))
    }

    fn c(name: &str, version: &str, depends: &[&str], provides: &[&str]) -> Candidate {
        Candidate {
            name: name.into(),
            version: version.into(),
            depends: depends.iter().map(|s| s.to_string()).collect(),
            provides: provides.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn names(repo: &[Candidate], r: &Resolution) -> Vec<String> {
        r.order
            .iter()
            .map(|&i| format!("{}-{}", repo[i].name, repo[i].version))
            .collect()
    }

    #[test]
    fn dep_parse_table() {
        for (s, name, con, conflict) in [
            ("hello", "hello", None, false),
            ("hello>=1.2", "hello", Some((Op::Ge, "1.2")), false),
            ("so:libc.so.6", "so:libc.so.6", None, false),
            ("pc:zlib>1", "pc:zlib", Some((Op::Gt, "1")), false),
            ("!bad", "bad", None, true),
            ("x=~1.2", "x", Some((Op::Fuzzy, "1.2")), false),
            ("x<=3", "x", Some((Op::Le, "3")), false),
        ] {
            let d = Dep::parse(s);
            assert_eq!(d.name, name, "{s}");
            assert_eq!(d.constraint, con.map(|(o, v)| (o, v.to_string())), "{s}");
            assert_eq!(d.conflict, conflict, "{s}");
        }
    }

    #[test]
    fn walks_depends_and_provides_in_dependency_order() {
        let repo = vec![
            c("hello", "1.0-r0", &["so:libgreet.so.1", "cmd:sh"], &[]),
            c("hello", "1.1-r0", &["so:libgreet.so.1", "cmd:sh"], &[]),
            c("libgreet", "2.0-r0", &["musl"], &["so:libgreet.so.1=1.0"]),
            c("busybox", "1.36-r0", &["musl"], &["cmd:sh"]),
            c("dash", "0.5-r0", &["musl"], &["cmd:sh"]),
            c("musl", "1.2-r0", &[], &["so:libc.musl-x86_64.so.1=1"]),
            c("unrelated", "9-r0", &[], &[]),
        ];
        let r = resolve(&["hello".into()], &repo, cmp).unwrap();
        assert_eq!(
            names(&repo, &r),
            [
                "musl-1.2-r0",
                "busybox-1.36-r0",
                "libgreet-2.0-r0",
                "hello-1.1-r0"
            ]
        );
        assert_eq!(r.deps[&1], BTreeSet::from([2, 3]));
        // Index order does not matter.
        let mut rev = repo.clone();
        rev.reverse();
        let r2 = resolve(&["hello".into()], &rev, cmp).unwrap();
        assert_eq!(names(&rev, &r2), names(&repo, &r));
        // Constraints pick an older version; a chosen provider is reused.
        let r3 = resolve(&["dash".into(), "hello<1.1".into()], &repo, cmp).unwrap();
        assert_eq!(
            names(&repo, &r3),
            [
                "musl-1.2-r0",
                "dash-0.5-r0",
                "libgreet-2.0-r0",
                "hello-1.0-r0"
            ]
        );
    }

    #[test]
    fn failures() {
        let repo = vec![
            c("a", "1-r0", &["b"], &[]),
            c("x", "1-r0", &["!a"], &[]),
            c("b", "1-r0", &[], &[]),
        ];
        assert_eq!(
            resolve(&["a".into(), "x".into()], &repo, cmp).unwrap_err(),
            ResolveError::Conflict {
                package: "a-1-r0".into(),
                name: "a".into(),
                by: "x-1-r0".into()
            }
        );
        assert_eq!(
            resolve(&["zzz".into()], &repo, cmp).unwrap_err(),
            ResolveError::Missing {
                dep: "zzz".into(),
                needed_by: "the image".into()
            }
        );
        let repo2 = vec![c("a", "1-r0", &["b>=2"], &[]), c("b", "1-r0", &[], &[])];
        assert!(matches!(
            resolve(&["a".into()], &repo2, cmp).unwrap_err(),
            ResolveError::Missing { .. }
        ));
        let repo3 = vec![
            c("a", "1-r0", &["b=2-r0"], &[]),
            c("b", "1-r0", &[], &[]),
            c("b", "2-r0", &[], &[]),
        ];
        assert!(matches!(
            resolve(&["b=1-r0".into(), "a".into()], &repo3, cmp).unwrap_err(),
            ResolveError::Clash { .. }
        ));
    }

    #[test]
    fn cycles_are_broken_by_name() {
        let repo = vec![c("b", "1", &["a"], &[]), c("a", "1", &["b"], &[])];
        let r = resolve(&["b".into()], &repo, cmp).unwrap();
        assert_eq!(names(&repo, &r), ["a-1", "b-1"]);
    }
}
