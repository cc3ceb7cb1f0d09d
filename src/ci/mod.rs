//! CI pipeline generation: the build plan ([`crate::plan::value::BuildPlan`])
//! as a GitLab child pipeline, one job per unit that must be built.
//!
//! A tag pipeline cannot tell what changed (`rules:changes` is always true
//! for tags), so forge decides from its own unit keys: the parent's plan job
//! runs `forge ci plan`, which writes a child pipeline holding
//!
//! - one job per dirty unit and architecture, running `forge build --unit
//!   NAME` with the same selection, so a job builds exactly that unit;
//! - `needs` from the unit graph, transitively reduced (a fresh unit in
//!   between passes its dirty dependencies on), at most [`check::MAX_NEEDS`]
//!   per job, with fan-in barrier jobs above that;
//! - one final job that re-signs the index and publishes, under the
//!   `forge-index-<arch>` `resource_group` so publishers never overlap;
//! - or, when nothing needs building, one no-op job (GitLab refuses to start
//!   a child pipeline with no jobs).
//!
//! Every document is checked ([`check`]) before it is written.

pub mod check;
pub mod kustomize;
pub mod pin;
pub mod yaml;

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::plan::value::{BuildPlan, PlanError};

/// How jobs run forge.
#[derive(Debug, Clone)]
pub struct ChildOptions {
    /// The command that starts forge in a job, with its global flags
    /// (written verbatim into the scripts; e.g. `forge --sandbox none`).
    pub forge: String,
    /// Selection arguments every `forge build --unit` job repeats, so its
    /// plan is the one this pipeline was made from (e.g. `--all`).
    pub selection: Vec<String>,
    /// Most `needs` one job may have before barrier jobs fan in.
    pub max_needs: usize,
    /// Dirty units that need no job: their outputs are in the build cache
    /// (see [`cached_units`]).
    pub cached: BTreeSet<String>,
}

impl Default for ChildOptions {
    fn default() -> Self {
        ChildOptions {
            forge: "forge".to_string(),
            selection: Vec::new(),
            max_needs: check::MAX_NEEDS,
            cached: BTreeSet::new(),
        }
    }
}

/// Generating a pipeline failed.
#[derive(Debug, thiserror::Error)]
pub enum CiError {
    /// The plan is unusable (a cycle, a dependency missing from it).
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The generated document fails forge's own checks (a bug, never input).
    #[error("the generated pipeline is invalid: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<check::CiProblem>),
    /// `max_needs` below 2 cannot fan in.
    #[error("--max-needs must be at least 2")]
    MaxNeeds,
}

/// A generated child pipeline.
#[derive(Debug, Clone)]
pub struct Child {
    /// The document.
    pub doc: Value,
    /// Its YAML text.
    pub yaml: String,
    /// Units that get a build job.
    pub units: usize,
    /// Barrier jobs added to keep `needs` under the limit.
    pub barriers: usize,
}

/// A word for a POSIX shell, single-quoted.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.,:/=+@".contains(&b))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The dirty units of `plan` that need no job: package units whose key
/// `in_cache` finds, then image units none of whose packages gets a job
/// (the child's image jobs only show early that changed packages still
/// make the images; the images pipeline builds and publishes them). A dirty
/// OS unit gets a job, after its packages' jobs, unless it is blocked.
pub fn cached_units<E>(
    plan: &BuildPlan,
    in_cache: impl Fn(&str) -> Result<bool, E>,
) -> Result<BTreeSet<String>, E> {
    let mut cached = BTreeSet::new();
    for u in plan.units.iter().filter(|u| !u.fresh) {
        let needs_no_job = match u.kind {
            crate::plan::value::UnitKind::Package => in_cache(&u.key)?,
            crate::plan::value::UnitKind::Image => u
                .deps
                .iter()
                .all(|d| cached.contains(d) || plan.unit(d).is_ok_and(|d| d.fresh)),
            crate::plan::value::UnitKind::Os => false,
        };
        if needs_no_job {
            cached.insert(u.name.clone());
        }
    }
    Ok(cached)
}

/// A set of dirty-unit indexes.
#[derive(Clone)]
struct Bits(Vec<u64>);

impl Bits {
    fn new(n: usize) -> Bits {
        Bits(vec![0; n.div_ceil(64)])
    }
    fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
    fn get(&self, i: usize) -> bool {
        self.0[i / 64] & (1 << (i % 64)) != 0
    }
    fn or(&mut self, other: &Bits) {
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            *a |= b;
        }
    }
    fn ones(&self) -> impl Iterator<Item = usize> + '_ {
        self.0.iter().enumerate().flat_map(|(w, &word)| {
            (0..64)
                .filter(move |b| word & (1 << b) != 0)
                .map(move |b| w * 64 + b)
        })
    }
}

/// For every dirty unit (by dirty index), the dirty units it needs directly
/// once the graph is transitively reduced; and the dirty units nothing dirty
/// needs (the sinks, which the publish job waits for).
fn reduced_needs(plan: &BuildPlan, dirty: &[usize]) -> (Vec<Vec<usize>>, Vec<usize>) {
    let index: std::collections::BTreeMap<&str, usize> = plan
        .units
        .iter()
        .enumerate()
        .map(|(i, u)| (u.name.as_str(), i))
        .collect();
    let mut dirty_of = vec![None; plan.units.len()];
    for (j, &i) in dirty.iter().enumerate() {
        dirty_of[i] = Some(j);
    }
    // reach[i]: dirty units reachable from unit i (not itself), filled in
    // dependency order (a validated plan has no cycle).
    let mut reach: Vec<Option<Bits>> = vec![None; plan.units.len()];
    let mut stack: Vec<usize> = (0..plan.units.len()).rev().collect();
    while let Some(&i) = stack.last() {
        if reach[i].is_some() {
            stack.pop();
            continue;
        }
        let deps: Vec<usize> = plan.units[i]
            .deps
            .iter()
            .map(|d| index[d.as_str()])
            .collect();
        let pending: Vec<usize> = deps
            .iter()
            .copied()
            .filter(|&d| reach[d].is_none())
            .collect();
        if !pending.is_empty() {
            stack.extend(pending);
            continue;
        }
        let mut bits = Bits::new(dirty.len());
        for d in deps {
            bits.or(reach[d].as_ref().expect("dependencies come first"));
            if let Some(j) = dirty_of[d] {
                bits.set(j);
            }
        }
        reach[i] = Some(bits);
        stack.pop();
    }
    let dirty_reach: Vec<&Bits> = dirty
        .iter()
        .map(|&i| reach[i].as_ref().expect("planned"))
        .collect();
    let mut needed = Bits::new(dirty.len());
    let needs = dirty_reach
        .iter()
        .map(|cand| {
            needed.or(cand);
            let mut covered = Bits::new(dirty.len());
            for e in cand.ones() {
                covered.or(dirty_reach[e]);
            }
            cand.ones().filter(|&j| !covered.get(j)).collect()
        })
        .collect();
    let sinks = (0..dirty.len()).filter(|&j| !needed.get(j)).collect();
    (needs, sinks)
}

/// Job name of a unit's build job.
pub fn build_job(arch: &str, unit: &str) -> String {
    format!("build:{arch}:{unit}")
}

/// Give `job` its `needs`; above `max`, barrier jobs (a trivial script that
/// needs up to `max` jobs each) fan in, in as many levels as it takes.
fn attach_needs(doc: &mut Value, job: &str, mut needs: Vec<String>, max: usize) -> usize {
    let mut barriers = 0;
    let mut level = 0;
    while needs.len() > max {
        level += 1;
        let mut next = Vec::new();
        for (k, chunk) in needs.chunks(max).enumerate() {
            let name = format!("barrier:{job}:{level}-{k}");
            doc[&name] = json!({
                "stage": "build",
                "needs": chunk,
                "script": [format!("echo 'fan-in for {job}: {} jobs done'", chunk.len())],
            });
            next.push(name);
            barriers += 1;
        }
        needs = next;
    }
    doc[job]["needs"] = json!(needs);
    barriers
}

/// The shell line that stops a job with a clear message when the cache
/// variable is missing.
const NEED_CACHE: &str =
    ": \"${FORGE_CACHE:?set FORGE_CACHE (oci://HOST[:PORT]/REPOSITORY) in the CI/CD variables}\"";

/// `forge build SELECTION` with the shared cache, then `extra`.
fn build_command(o: &ChildOptions, extra: &str) -> String {
    let mut cmd = format!("{} build", o.forge);
    for s in &o.selection {
        cmd.push(' ');
        cmd.push_str(&shell_quote(s));
    }
    format!("{cmd} --cache \"$FORGE_CACHE\"{extra}")
}

/// Pull every package from the cache (images are built from them), then
/// re-sign the index, verify it and publish.
fn publish_script(o: &ChildOptions) -> Vec<String> {
    vec![
        ": \"${FORGE_REGISTRY:?set FORGE_REGISTRY (HOST[:PORT]/PREFIX) in the CI/CD variables}\""
            .to_string(),
        NEED_CACHE.to_string(),
        build_command(o, ""),
        format!("{} index", o.forge),
        format!(
            "{} verify \"${{FORGE_OUT:-out}}/repo/$FORGE_ARCH/APKINDEX.tar.gz\"",
            o.forge
        ),
        format!("{} publish --repo $FORGE_PUBLISH_FLAGS", o.forge),
    ]
}

/// The child pipeline for `plan`.
pub fn child_pipeline(plan: &BuildPlan, o: &ChildOptions) -> Result<Child, CiError> {
    if o.max_needs < 2 {
        return Err(CiError::MaxNeeds);
    }
    plan.validate()?;
    let arch = plan.arch.as_str();
    let dirty: Vec<usize> = (0..plan.units.len())
        .filter(|&i| !plan.units[i].fresh && !o.cached.contains(&plan.units[i].name))
        // A blocked unit cannot be built: no job (the plan says why).
        .filter(|&i| !plan.units[i].blocked())
        .collect();
    let mut doc = json!({});
    let mut barriers = 0;
    if dirty.is_empty() {
        doc["stages"] = json!(["build"]);
        doc["nothing-to-build"] = json!({
            "stage": "build",
            "needs": [],
            "script": [format!(
                "echo 'forge: nothing to build for {arch}; {} units fresh, {} in the build cache'",
                plan.units.len() - o.cached.len(),
                o.cached.len()
            )],
        });
    } else {
        doc["stages"] = json!(["build", "publish"]);
        let (needs, sinks) = reduced_needs(plan, &dirty);
        let names: Vec<String> = dirty
            .iter()
            .map(|&i| build_job(arch, &plan.units[i].name))
            .collect();
        for (j, &i) in dirty.iter().enumerate() {
            let u = &plan.units[i];
            let cmd = build_command(o, &format!(" --unit {}", shell_quote(&u.name)));
            doc[&names[j]] = json!({
                "stage": "build",
                "variables": {"FORGE_ARCH": arch, "FORGE_UNIT": u.name, "FORGE_UNIT_KEY": u.key},
                "script": [NEED_CACHE, cmd],
            });
            let mine: Vec<String> = needs[j].iter().map(|&n| names[n].clone()).collect();
            barriers += attach_needs(&mut doc, &names[j], mine, o.max_needs);
        }
        let publish = format!("publish:{arch}");
        doc[&publish] = json!({
            "stage": "publish",
            "resource_group": format!("forge-index-{arch}"),
            "variables": {"FORGE_ARCH": arch},
            "script": publish_script(o),
        });
        let last: Vec<String> = sinks.iter().map(|&j| names[j].clone()).collect();
        barriers += attach_needs(&mut doc, &publish, last, o.max_needs);
    }
    let header = format!(
        "Generated by `forge ci plan` for {arch}: {} units, {} to build. Do not edit.",
        plan.units.len(),
        dirty.len()
    );
    let yaml = yaml::to_yaml(&header, &doc);
    let problems = check::check(&doc, Some(yaml.len()));
    if !problems.is_empty() {
        return Err(CiError::Invalid(problems));
    }
    Ok(Child {
        doc,
        yaml,
        units: dirty.len(),
        barriers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::value::{DirtyCode, PlannedUnit, UnitKind};

    fn plan(units: &[(&str, &[&str], bool)]) -> BuildPlan {
        let mut p = BuildPlan::new("x86_64");
        for (name, deps, fresh) in units {
            p.units.push(PlannedUnit {
                name: name.to_string(),
                kind: UnitKind::Package,
                version: "1-r0".into(),
                arch: "x86_64".into(),
                key: format!("k{name}"),
                fresh: *fresh,
                dirty: (!fresh).then_some(DirtyCode::NeverBuilt),
                reasons: Vec::new(),
                deps: deps.iter().map(|d| d.to_string()).collect(),
            });
        }
        p
    }

    fn needs(doc: &Value, job: &str) -> Vec<String> {
        serde_json::from_value(doc[job]["needs"].clone()).unwrap()
    }

    #[test]
    fn needs_are_transitively_reduced_through_fresh_units() {
        // c needs b and a; b needs a; d needs fresh e, which needs a.
        let p = plan(&[
            ("a", &[], false),
            ("b", &["a"], false),
            ("c", &["a", "b"], false),
            ("e", &["a"], true),
            ("d", &["e"], false),
        ]);
        let child = child_pipeline(&p, &ChildOptions::default()).unwrap();
        let doc = &child.doc;
        assert_eq!(needs(doc, "build:x86_64:a"), Vec::<String>::new());
        assert_eq!(needs(doc, "build:x86_64:c"), ["build:x86_64:b"]);
        assert_eq!(needs(doc, "build:x86_64:d"), ["build:x86_64:a"]);
        assert!(
            doc.get("build:x86_64:e").is_none(),
            "fresh units get no job"
        );
        assert_eq!(
            needs(doc, "publish:x86_64"),
            ["build:x86_64:c", "build:x86_64:d"]
        );
        assert_eq!(
            doc["publish:x86_64"]["resource_group"],
            "forge-index-x86_64"
        );
        assert_eq!(doc["build:x86_64:c"]["script"][0], NEED_CACHE);
        assert_eq!(
            doc["build:x86_64:c"]["script"][1],
            "forge build --cache \"$FORGE_CACHE\" --unit c"
        );
        assert_eq!(child.units, 4);
    }

    #[test]
    fn wide_fan_in_uses_barriers() {
        let leaves: Vec<String> = (0..120).map(|i| format!("l{i:03}")).collect();
        let mut units: Vec<(&str, &[&str], bool)> = leaves
            .iter()
            .map(|l| (l.as_str(), &[][..], false))
            .collect();
        let refs: Vec<&str> = leaves.iter().map(String::as_str).collect();
        units.push(("top", &refs, false));
        let child = child_pipeline(
            &plan(&units),
            &ChildOptions {
                max_needs: 50,
                ..Default::default()
            },
        )
        .unwrap();
        let top = needs(&child.doc, "build:x86_64:top");
        assert_eq!(top.len(), 3);
        assert_eq!(needs(&child.doc, &top[0]).len(), 50);
        assert_eq!(needs(&child.doc, &top[2]).len(), 20);
        assert_eq!(child.barriers, 3);
        assert!(check::check(&child.doc, None).is_empty());
    }

    #[test]
    fn nothing_to_build_is_one_noop_job() {
        let child = child_pipeline(&plan(&[("a", &[], true)]), &ChildOptions::default()).unwrap();
        let jobs: Vec<&String> = child
            .doc
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| *k != "stages")
            .collect();
        assert_eq!(jobs, ["nothing-to-build"]);
    }

    #[test]
    fn a_cycle_or_a_missing_unit_is_an_error() {
        let err = child_pipeline(
            &plan(&[("a", &["b"], false), ("b", &["a"], false)]),
            &ChildOptions::default(),
        );
        assert!(matches!(err, Err(CiError::Plan(PlanError::Cycle(_)))));
        let err =
            child_pipeline(&plan(&[("a", &["zz"], false)]), &ChildOptions::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unit `a` needs `zz`, which is not in the plan"
        );
    }

    #[test]
    fn cached_units_get_no_job_and_images_follow_their_packages() {
        let mut p = plan(&[("a", &[], false), ("b", &["a"], false), ("c", &[], true)]);
        p.units.push(PlannedUnit {
            kind: UnitKind::Image,
            ..plan(&[("image:x", &["a", "b", "c"], false)])
                .units
                .remove(0)
        });
        let cached = |keys: &'static [&'static str]| {
            cached_units(&p, |k| Ok::<_, ()>(keys.contains(&k))).unwrap()
        };
        let all = cached(&["ka", "kb"]);
        assert_eq!(all, BTreeSet::from(["a", "b", "image:x"].map(String::from)));
        let child = child_pipeline(
            &p,
            &ChildOptions {
                cached: all,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(child.units, 0);
        assert!(child.doc.get("nothing-to-build").is_some());
        let some = cached(&["ka"]);
        assert_eq!(some, BTreeSet::from(["a".to_string()]));
        let child = child_pipeline(
            &p,
            &ChildOptions {
                cached: some,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(needs(&child.doc, "build:x86_64:b"), Vec::<String>::new());
        assert_eq!(
            needs(&child.doc, "build:x86_64:image:x"),
            ["build:x86_64:b"]
        );
    }

    #[test]
    fn os_units_get_a_job_after_their_packages_unless_blocked() {
        let mut p = plan(&[("a", &[], false), ("k", &[], true)]);
        let os = |name: &str| PlannedUnit {
            kind: UnitKind::Os,
            ..plan(&[(name, &["a", "k"], false)]).units.remove(0)
        };
        p.units.push(os("os:x"));
        let mut blocked = os("os:y");
        blocked.set_blocked("needs `linux`".into());
        p.units.push(blocked);
        let cached = cached_units(&p, |k| Ok::<_, ()>(k == "ka")).unwrap();
        assert_eq!(cached, BTreeSet::from(["a".to_string()]));
        let child = child_pipeline(&p, &ChildOptions::default()).unwrap();
        assert_eq!(needs(&child.doc, "build:x86_64:os:x"), ["build:x86_64:a"]);
        assert!(child.doc.get("build:x86_64:os:y").is_none());
        assert_eq!(child.units, 2);
    }

    #[test]
    fn shell_words_are_quoted() {
        assert_eq!(shell_quote("--all"), "--all");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote("image:hello"), "image:hello");
    }
}
