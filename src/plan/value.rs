//! The build plan as a value: what `forge build` is about to do, computed
//! before anything runs, as cargo's unit graph and uv's `Plan` are.
//!
//! One [`BuildPlan`] is rendered four ways: `forge plan --json` prints it,
//! `forge build --explain` and `--dry-run` print its verdicts, and
//! `forge ci plan` turns its dirty units into a GitLab child pipeline. The
//! JSON field names are a stable interface (docs/ci.md lists them); bump
//! [`PLAN_FORMAT`] when one changes meaning.

use serde::{Deserialize, Serialize};

use super::{DirtyReason, Freshness};

/// Version of the plan's JSON shape.
pub const PLAN_FORMAT: u32 = 1;

/// What a unit produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnitKind {
    /// Signed apk packages from one recipe.
    Package,
    /// An OCI image layout from `images/NAME.toml`.
    Image,
    /// A bootable OS disk from `images/NAME.toml` with `kind = "os"`
    /// (`out/os/NAME.raw` or `.img`).
    Os,
}

/// Why a dirty unit must be built, as a stable code (the `reasons` say more).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DirtyCode {
    /// Never built, or its output is gone.
    NeverBuilt,
    /// Some inputs changed.
    InputsChanged,
    /// An artifact is missing or fails verification.
    ArtifactInvalid,
    /// Asked for explicitly.
    Forced,
    /// It cannot be built: something it needs has no recipe and is not in
    /// the repository (an OS unit whose kernel is absent). No job builds it.
    Blocked,
}

/// One unit of the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedUnit {
    /// Unit name: the recipe name, `image:NAME`, or `os:NAME`.
    pub name: String,
    /// What it produces.
    pub kind: UnitKind,
    /// `version-rN` for packages, the definition's version (or empty) for images.
    pub version: String,
    /// The architecture it is built for.
    pub arch: String,
    /// The unit key: SHA-256 over its named inputs.
    pub key: String,
    /// Whether it is fresh.
    pub fresh: bool,
    /// Why it is dirty (`None` when fresh).
    pub dirty: Option<DirtyCode>,
    /// Human-readable reasons (empty when fresh).
    pub reasons: Vec<String>,
    /// Units that must be built before it (direct dependencies, sorted).
    pub deps: Vec<String>,
    /// Units of other architectures' plans that must be built before it: a
    /// hermetic unit of a foreign architecture needs the host's build-root
    /// base; an image for several architectures needs their packages. Names
    /// that the other plan does not hold (not selected) are left to the
    /// repository or the build cache.
    #[serde(default)]
    pub arch_deps: Vec<ArchDep>,
}

/// A unit of another architecture's plan.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ArchDep {
    /// Its architecture.
    pub arch: String,
    /// Its unit name.
    pub unit: String,
}

impl PlannedUnit {
    /// Set the verdict from a [`Freshness`].
    pub fn set_freshness(&mut self, f: &Freshness) {
        let (fresh, dirty, reasons) = match f {
            Freshness::Fresh => (true, None, Vec::new()),
            Freshness::Dirty(DirtyReason::NeverBuilt) => (
                false,
                Some(DirtyCode::NeverBuilt),
                vec!["never built".into()],
            ),
            Freshness::Dirty(DirtyReason::InputsChanged(v)) => {
                (false, Some(DirtyCode::InputsChanged), v.clone())
            }
            Freshness::Dirty(why @ DirtyReason::ArtifactInvalid(_)) => (
                false,
                Some(DirtyCode::ArtifactInvalid),
                vec![why.to_string()],
            ),
            Freshness::Dirty(DirtyReason::Forced) => {
                (false, Some(DirtyCode::Forced), vec!["forced".into()])
            }
        };
        self.fresh = fresh;
        self.dirty = dirty;
        self.reasons = reasons;
    }

    /// Mark the unit blocked: it cannot be built, for `reason`.
    pub fn set_blocked(&mut self, reason: String) {
        self.fresh = false;
        self.dirty = Some(DirtyCode::Blocked);
        self.reasons = vec![reason];
    }

    /// Whether the unit cannot be built ([`DirtyCode::Blocked`]).
    pub fn blocked(&self) -> bool {
        self.dirty == Some(DirtyCode::Blocked)
    }

    /// `fresh`, `blocked: reason` or `dirty: reason, reason`.
    pub fn verdict_line(&self) -> String {
        if self.fresh {
            "fresh".to_string()
        } else if self.blocked() {
            format!("blocked: {}", self.reasons.join(", "))
        } else {
            format!("dirty: {}", self.reasons.join(", "))
        }
    }
}

/// A whole plan: every selected unit in dependency order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildPlan {
    /// [`PLAN_FORMAT`].
    pub format: u32,
    /// The architecture planned for.
    pub arch: String,
    /// Units, each after everything it needs.
    pub units: Vec<PlannedUnit>,
}

/// A plan that cannot be used as asked.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlanError {
    /// No unit of that name is in the plan.
    #[error("no unit named `{0}` in the plan (units are recipe names, image:NAME and os:NAME)")]
    UnknownUnit(String),
    /// A unit names a dependency that is not in the plan.
    #[error("unit `{unit}` needs `{dep}`, which is not in the plan")]
    MissingDep {
        /// The unit.
        unit: String,
        /// The dependency it names.
        dep: String,
    },
    /// The units' dependencies form a cycle.
    #[error("dependency cycle in the plan: {}", .0.join(" -> "))]
    Cycle(Vec<String>),
}

impl BuildPlan {
    /// An empty plan for `arch`.
    pub fn new(arch: &str) -> BuildPlan {
        BuildPlan {
            format: PLAN_FORMAT,
            arch: arch.to_string(),
            units: Vec::new(),
        }
    }

    /// The unit named `name`.
    pub fn unit(&self, name: &str) -> Result<&PlannedUnit, PlanError> {
        self.units
            .iter()
            .find(|u| u.name == name)
            .ok_or_else(|| PlanError::UnknownUnit(name.to_string()))
    }

    /// Units that must be built, in plan order.
    pub fn dirty(&self) -> impl Iterator<Item = &PlannedUnit> {
        self.units.iter().filter(|u| !u.fresh)
    }

    /// Whether nothing needs building.
    pub fn is_noop(&self) -> bool {
        self.units.iter().all(|u| u.fresh)
    }

    /// Check that every dependency is a unit of the plan and that there is no
    /// cycle (a plan read back from JSON is untrusted input).
    pub fn validate(&self) -> Result<(), PlanError> {
        let index: std::collections::BTreeMap<&str, usize> = self
            .units
            .iter()
            .enumerate()
            .map(|(i, u)| (u.name.as_str(), i))
            .collect();
        for u in &self.units {
            if let Some(d) = u.deps.iter().find(|d| !index.contains_key(d.as_str())) {
                return Err(PlanError::MissingDep {
                    unit: u.name.clone(),
                    dep: d.clone(),
                });
            }
        }
        // Iterative depth-first search with colours: 0 new, 1 on stack, 2 done.
        let mut colour = vec![0u8; self.units.len()];
        for start in 0..self.units.len() {
            if colour[start] != 0 {
                continue;
            }
            let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
            colour[start] = 1;
            while let Some(&mut (node, ref mut next)) = stack.last_mut() {
                let deps = &self.units[node].deps;
                if *next == deps.len() {
                    colour[node] = 2;
                    stack.pop();
                    continue;
                }
                let d = index[deps[*next].as_str()];
                *next += 1;
                match colour[d] {
                    0 => {
                        colour[d] = 1;
                        stack.push((d, 0));
                    }
                    1 => {
                        let from = stack.iter().position(|&(n, _)| n == d).unwrap_or(0);
                        let mut path: Vec<String> = stack[from..]
                            .iter()
                            .map(|&(n, _)| self.units[n].name.clone())
                            .collect();
                        path.push(self.units[d].name.clone());
                        return Err(PlanError::Cycle(path));
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }

    /// The plan as pretty JSON (the `forge plan --json` document).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a plan always serializes")
    }

    /// One `--explain` line per unit: `NAME VERSION: fresh|dirty: why`.
    pub fn explain_lines(&self) -> Vec<String> {
        self.units
            .iter()
            .map(|u| {
                let name = match u.kind {
                    UnitKind::Package => u.name.clone(),
                    UnitKind::Image => format!("image {}", u.name.trim_start_matches("image:")),
                    UnitKind::Os => format!("OS image {}", u.name.trim_start_matches("os:")),
                };
                if u.version.is_empty() {
                    format!("{name}: {}", u.verdict_line())
                } else {
                    format!("{name} {}: {}", u.version, u.verdict_line())
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(name: &str, deps: &[&str], fresh: bool) -> PlannedUnit {
        PlannedUnit {
            name: name.into(),
            kind: UnitKind::Package,
            version: "1.0-r0".into(),
            arch: "x86_64".into(),
            key: format!("key-{name}"),
            fresh,
            dirty: (!fresh).then_some(DirtyCode::NeverBuilt),
            reasons: if fresh {
                vec![]
            } else {
                vec!["never built".into()]
            },
            deps: deps.iter().map(|d| d.to_string()).collect(),
            arch_deps: Vec::new(),
        }
    }

    #[test]
    fn json_field_names_are_stable() {
        let mut plan = BuildPlan::new("x86_64");
        plan.units.push(unit("lib", &[], false));
        let v: serde_json::Value = serde_json::from_str(&plan.to_json()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "format": 1, "arch": "x86_64",
                "units": [{
                    "name": "lib", "kind": "package", "version": "1.0-r0",
                    "arch": "x86_64", "key": "key-lib", "fresh": false,
                    "dirty": "never-built", "reasons": ["never built"], "deps": [],
                    "arch_deps": [],
                }],
            })
        );
        let back: BuildPlan = serde_json::from_value(v).unwrap();
        assert_eq!(back, plan);
    }

    #[test]
    fn unknown_unit_is_named() {
        let plan = BuildPlan::new("x86_64");
        assert_eq!(
            plan.unit("nope").unwrap_err().to_string(),
            "no unit named `nope` in the plan (units are recipe names, image:NAME and os:NAME)"
        );
    }

    #[test]
    fn validate_finds_cycles_and_missing_deps() {
        let mut plan = BuildPlan::new("x86_64");
        plan.units = vec![
            unit("a", &["c"], false),
            unit("b", &["a"], false),
            unit("c", &["b"], true),
        ];
        assert_eq!(
            plan.validate(),
            Err(PlanError::Cycle(vec![
                "a".into(),
                "c".into(),
                "b".into(),
                "a".into()
            ]))
        );
        plan.units = vec![unit("a", &["zz"], false)];
        assert_eq!(
            plan.validate(),
            Err(PlanError::MissingDep {
                unit: "a".into(),
                dep: "zz".into()
            })
        );
        plan.units = vec![unit("a", &[], true), unit("b", &["a"], false)];
        assert_eq!(plan.validate(), Ok(()));
        assert!(!plan.is_noop());
        assert_eq!(
            plan.dirty().map(|u| u.name.as_str()).collect::<Vec<_>>(),
            ["b"]
        );
        assert_eq!(
            plan.explain_lines(),
            ["a 1.0-r0: fresh", "b 1.0-r0: dirty: never built"]
        );
    }
}
