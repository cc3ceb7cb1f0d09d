//! CI pipeline generation: the build plan ([`crate::plan::value::BuildPlan`])
//! as a GitLab child pipeline, one job per unit that must be built.
//!
//! A tag pipeline cannot tell what changed (`rules:changes` is always true
//! for tags), so forge decides from its own unit keys: the parent's plan job
//! runs `forge ci plan`, which writes a child pipeline holding
//!
//! - one job per dirty unit and architecture, running `forge build --arch
//!   ARCH --unit NAME` with the same selection, so a job builds exactly that
//!   unit of that architecture's plan;
//! - `needs` from the unit graph of every architecture at once ([`graph`]:
//!   a foreign architecture's hermetic unit needs the host's build-root
//!   base, a multi-architecture image the other architectures' packages),
//!   transitively reduced (a fresh unit in between passes its dirty
//!   dependencies on), at most [`check::MAX_NEEDS`] per job, with fan-in
//!   barrier jobs above that;
//! - one final `publish` job for all architectures, since the package
//!   repository is published as one artifact holding every architecture:
//!   it re-signs the indexes and publishes under the `forge-index`
//!   `resource_group`, so publishers never overlap;
//! - or, when nothing needs building, one no-op job (GitLab refuses to start
//!   a child pipeline with no jobs).
//!
//! Every document is checked ([`check`]) before it is written.

pub mod check;
mod graph;
pub mod kustomize;
pub mod pin;
pub mod yaml;

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::plan::value::{BuildPlan, PlanError, UnitKind};

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
    /// Build jobs (`build:<arch>:<unit>`) not to make: those units'
    /// outputs are in the build cache (see [`cached_units`]).
    pub cached: BTreeSet<String>,
    /// The architecture of the machine the jobs run on: the publish job
    /// pulls it last (see [`publish_script`]).
    pub host: String,
}

impl Default for ChildOptions {
    fn default() -> Self {
        ChildOptions {
            forge: "forge".to_string(),
            selection: Vec::new(),
            max_needs: check::MAX_NEEDS,
            cached: BTreeSet::new(),
            host: crate::pipeline::host_arch().to_string(),
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

/// The build jobs of `plan` not to make, as job names: package units whose key
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
            UnitKind::Package => in_cache(&u.key)?,
            UnitKind::Image => u.deps.iter().all(|d| {
                cached.contains(&build_job(&plan.arch, d)) || plan.unit(d).is_ok_and(|d| d.fresh)
            }),
            UnitKind::Os => false,
        };
        if needs_no_job {
            cached.insert(build_job(&plan.arch, &u.name));
        }
    }
    Ok(cached)
}

/// The final job: publishes every architecture's repository at once.
pub const PUBLISH_JOB: &str = "publish";

/// Its `resource_group`: one publisher of the repository at a time, across
/// pipelines.
pub const PUBLISH_GROUP: &str = "forge-index";

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

/// `forge build SELECTION --arch ARCH` with the shared cache, then `extra`.
fn build_command(o: &ChildOptions, arch: &str, extra: &str) -> String {
    let mut cmd = format!("{} build", o.forge);
    for s in &o.selection {
        cmd.push(' ');
        cmd.push_str(&shell_quote(s));
    }
    format!(
        "{cmd} --arch {} --cache \"$FORGE_CACHE\"{extra}",
        shell_quote(arch)
    )
}

/// Pull every architecture's packages from the cache (the host's images are
/// built from them), then re-sign the indexes, verify them and publish the
/// repository once. `arches` are those with package units; the host's comes
/// last: a foreign plan's hermetic keys are predicted from the host's
/// repository as each job found it (empty), and the host's images read the
/// other architectures' indexes.
fn publish_script(o: &ChildOptions, arches: &[&str]) -> Vec<String> {
    let mut order: Vec<&str> = arches.iter().copied().filter(|a| *a != o.host).collect();
    order.extend(arches.iter().copied().filter(|a| *a == o.host));
    let mut script = vec![
        ": \"${FORGE_REGISTRY:?set FORGE_REGISTRY (HOST[:PORT]/PREFIX) in the CI/CD variables}\""
            .to_string(),
        NEED_CACHE.to_string(),
    ];
    script.extend(order.iter().map(|a| build_command(o, a, "")));
    script.push(format!("{} index", o.forge));
    script.extend(order.iter().map(|a| {
        format!(
            "{} verify \"${{FORGE_OUT:-out}}/repo/{a}/APKINDEX.tar.gz\"",
            o.forge
        )
    }));
    script.push(format!("{} publish --repo $FORGE_PUBLISH_FLAGS", o.forge));
    script
}

/// The one job of a child pipeline with nothing to build.
fn nothing_to_build(plans: &[BuildPlan], o: &ChildOptions) -> Value {
    let arches: Vec<&str> = plans.iter().map(|p| p.arch.as_str()).collect();
    let count = |f: fn(&crate::plan::value::PlannedUnit) -> bool| -> usize {
        plans
            .iter()
            .map(|p| p.units.iter().filter(|u| f(u)).count())
            .sum()
    };
    json!({
        "stage": "build",
        "needs": [],
        "script": [format!(
            "echo 'forge: nothing to build for {}; {} units fresh, {} in the build cache, {} blocked'",
            arches.join(", "),
            count(|u| u.fresh),
            o.cached.len(),
            count(|u| u.blocked()),
        )],
    })
}

/// The child pipeline for the plans of every architecture (one plan per
/// architecture, each as `forge build --arch ARCH` plans it).
pub fn child_pipeline(plans: &[BuildPlan], o: &ChildOptions) -> Result<Child, CiError> {
    if o.max_needs < 2 {
        return Err(CiError::MaxNeeds);
    }
    let all = graph::combined(plans)?;
    let dirty: Vec<usize> = (0..all.units.len())
        .filter(|&i| !all.units[i].fresh && !o.cached.contains(&all.units[i].name))
        // A blocked unit cannot be built: no job (the plan says why).
        .filter(|&i| !all.units[i].blocked())
        .collect();
    let mut doc = json!({});
    let mut barriers = 0;
    if dirty.is_empty() {
        doc["stages"] = json!(["build"]);
        doc["nothing-to-build"] = nothing_to_build(plans, o);
    } else {
        doc["stages"] = json!(["build", "publish"]);
        let (needs, sinks) = graph::reduced_needs(&all, &dirty);
        for (j, &i) in dirty.iter().enumerate() {
            let u = &all.units[i];
            let unit = &u.name[build_job(&u.arch, "").len()..];
            let cmd = build_command(o, &u.arch, &format!(" --unit {}", shell_quote(unit)));
            doc[&u.name] = json!({
                "stage": "build",
                "variables": {"FORGE_ARCH": u.arch, "FORGE_UNIT": unit, "FORGE_UNIT_KEY": u.key},
                "script": [NEED_CACHE, cmd],
            });
            let mine: Vec<String> = needs[j]
                .iter()
                .map(|&n| all.units[dirty[n]].name.clone())
                .collect();
            barriers += attach_needs(&mut doc, &u.name, mine, o.max_needs);
        }
        let with_packages: Vec<&str> = plans
            .iter()
            .filter(|p| p.units.iter().any(|u| u.kind == UnitKind::Package))
            .map(|p| p.arch.as_str())
            .collect();
        doc[PUBLISH_JOB] = json!({
            "stage": "publish",
            "resource_group": PUBLISH_GROUP,
            "script": publish_script(o, &with_packages),
        });
        let last: Vec<String> = sinks
            .iter()
            .map(|&j| all.units[dirty[j]].name.clone())
            .collect();
        barriers += attach_needs(&mut doc, PUBLISH_JOB, last, o.max_needs);
    }
    let arches: Vec<&str> = plans.iter().map(|p| p.arch.as_str()).collect();
    let header = format!(
        "Generated by `forge ci plan` for {}: {} units, {} to build. Do not edit.",
        arches.join(", "),
        all.units.len(),
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
                arch_deps: Vec::new(),
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
        let child = child_pipeline(std::slice::from_ref(&p), &ChildOptions::default()).unwrap();
        let doc = &child.doc;
        assert_eq!(needs(doc, "build:x86_64:a"), Vec::<String>::new());
        assert_eq!(needs(doc, "build:x86_64:c"), ["build:x86_64:b"]);
        assert_eq!(needs(doc, "build:x86_64:d"), ["build:x86_64:a"]);
        assert!(
            doc.get("build:x86_64:e").is_none(),
            "fresh units get no job"
        );
        assert_eq!(
            needs(doc, PUBLISH_JOB),
            ["build:x86_64:c", "build:x86_64:d"]
        );
        assert_eq!(doc[PUBLISH_JOB]["resource_group"], "forge-index");
        assert_eq!(doc["build:x86_64:c"]["script"][0], NEED_CACHE);
        assert_eq!(
            doc["build:x86_64:c"]["script"][1],
            "forge build --arch x86_64 --cache \"$FORGE_CACHE\" --unit c"
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
            &[plan(&units)],
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
        let child = child_pipeline(&[plan(&[("a", &[], true)])], &ChildOptions::default()).unwrap();
        let jobs: Vec<&String> = child
            .doc
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| *k != "stages")
            .collect();
        assert_eq!(jobs, ["nothing-to-build"]);
        assert_eq!(
            child.doc["nothing-to-build"]["script"][0],
            "echo 'forge: nothing to build for x86_64; 1 units fresh, 0 in the build cache, 0 blocked'"
        );
    }

    #[test]
    fn a_cycle_or_a_missing_unit_is_an_error() {
        let err = child_pipeline(
            &[plan(&[("a", &["b"], false), ("b", &["a"], false)])],
            &ChildOptions::default(),
        );
        assert!(matches!(err, Err(CiError::Plan(PlanError::Cycle(_)))));
        let err = child_pipeline(&[plan(&[("a", &["zz"], false)])], &ChildOptions::default())
            .unwrap_err();
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
        assert_eq!(
            all,
            BTreeSet::from(["a", "b", "image:x"].map(|u| build_job("x86_64", u)))
        );
        let child = child_pipeline(
            std::slice::from_ref(&p),
            &ChildOptions {
                cached: all,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(child.units, 0);
        assert!(child.doc.get("nothing-to-build").is_some());
        let some = cached(&["ka"]);
        assert_eq!(some, BTreeSet::from([build_job("x86_64", "a")]));
        let child = child_pipeline(
            std::slice::from_ref(&p),
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
        assert_eq!(cached, BTreeSet::from([build_job("x86_64", "a")]));
        let child = child_pipeline(std::slice::from_ref(&p), &ChildOptions::default()).unwrap();
        assert_eq!(needs(&child.doc, "build:x86_64:os:x"), ["build:x86_64:a"]);
        assert!(child.doc.get("build:x86_64:os:y").is_none());
        assert_eq!(child.units, 2);
    }

    /// A plan for `arch`: (name, deps, needs of other arches as ARCH/UNIT),
    /// all dirty.
    fn arch_plan(arch: &str, units: &[(&str, &[&str], &[&str])]) -> BuildPlan {
        let mut p = plan(
            &units
                .iter()
                .map(|(n, d, _)| (*n, *d, false))
                .collect::<Vec<_>>(),
        );
        p.arch = arch.to_string();
        for (u, (_, _, cross)) in p.units.iter_mut().zip(units) {
            u.arch = arch.to_string();
            u.arch_deps = cross
                .iter()
                .map(|c| {
                    let (arch, unit) = c.split_once('/').unwrap();
                    crate::plan::value::ArchDep {
                        arch: arch.into(),
                        unit: unit.into(),
                    }
                })
                .collect();
        }
        p
    }

    #[test]
    fn two_architectures_one_graph_with_needs_across_them() {
        let mut host = arch_plan(
            "x86_64",
            &[
                ("zig", &[], &[]),
                ("lib", &["zig"], &[]),
                (
                    "image:img",
                    &["lib", "zig"],
                    &["aarch64/lib", "aarch64/app"],
                ),
            ],
        );
        host.units[2].kind = UnitKind::Image;
        let foreign = arch_plan(
            "aarch64",
            &[
                ("lib", &[], &["x86_64/zig"]),
                // `absent` is not in the host's plan: left to the cache.
                ("app", &["lib"], &["x86_64/zig", "x86_64/absent"]),
            ],
        );
        let o = ChildOptions {
            host: "x86_64".into(),
            ..ChildOptions::default()
        };
        let child = child_pipeline(&[host.clone(), foreign.clone()], &o).unwrap();
        let doc = &child.doc;
        let jobs: Vec<&String> = doc.as_object().unwrap().keys().collect();
        assert_eq!(
            jobs,
            [
                "build:aarch64:app",
                "build:aarch64:lib",
                "build:x86_64:image:img",
                "build:x86_64:lib",
                "build:x86_64:zig",
                "publish",
                "stages"
            ]
        );
        assert_eq!(needs(doc, "build:aarch64:lib"), ["build:x86_64:zig"]);
        // zig comes through lib: reduced away.
        assert_eq!(needs(doc, "build:aarch64:app"), ["build:aarch64:lib"]);
        assert_eq!(
            needs(doc, "build:x86_64:image:img"),
            ["build:x86_64:lib", "build:aarch64:app"]
        );
        assert_eq!(needs(doc, PUBLISH_JOB), ["build:x86_64:image:img"]);
        assert_eq!(
            doc["build:aarch64:app"]["script"][1],
            "forge build --arch aarch64 --cache \"$FORGE_CACHE\" --unit app"
        );
        assert_eq!(
            doc["build:aarch64:app"]["variables"]["FORGE_ARCH"],
            "aarch64"
        );
        assert_eq!(doc["build:aarch64:app"]["variables"]["FORGE_UNIT"], "app");
        // The foreign architecture is pulled first, the host's last.
        let script: Vec<String> =
            serde_json::from_value(doc[PUBLISH_JOB]["script"].clone()).unwrap();
        assert_eq!(
            script[2..],
            [
                "forge build --arch aarch64 --cache \"$FORGE_CACHE\"",
                "forge build --arch x86_64 --cache \"$FORGE_CACHE\"",
                "forge index",
                "forge verify \"${FORGE_OUT:-out}/repo/aarch64/APKINDEX.tar.gz\"",
                "forge verify \"${FORGE_OUT:-out}/repo/x86_64/APKINDEX.tar.gz\"",
                "forge publish --repo $FORGE_PUBLISH_FLAGS",
            ]
        );
        assert_eq!(child.units, 5);
        assert!(check::check(doc, None).is_empty());

        // Everything of aarch64 in the cache: the host's jobs remain, and the
        // image needs only what gets a job.
        let cached = cached_units(&foreign, |_| Ok::<_, ()>(true)).unwrap();
        let child = child_pipeline(
            &[host.clone(), foreign.clone()],
            &ChildOptions {
                cached,
                ..o.clone()
            },
        )
        .unwrap();
        assert!(child.doc.get("build:aarch64:lib").is_none());
        assert_eq!(
            needs(&child.doc, "build:x86_64:image:img"),
            ["build:x86_64:lib"]
        );

        // A cycle across architectures is an error naming it.
        let mut looped = host.clone();
        looped.units[0].arch_deps = vec![crate::plan::value::ArchDep {
            arch: "aarch64".into(),
            unit: "app".into(),
        }];
        let err = child_pipeline(&[looped, foreign], &o).unwrap_err();
        assert!(matches!(err, CiError::Plan(PlanError::Cycle(_))), "{err}");
    }

    #[test]
    fn shell_words_are_quoted() {
        assert_eq!(shell_quote("--all"), "--all");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote("image:hello"), "image:hello");
    }
}
