//! What a `--unit` job needs from another architecture's plan
//! ([`crate::plan::value::PlannedUnit::arch_deps`]): a hermetic unit of a
//! foreign architecture needs the host's build-root base in the host's
//! repository, an image for several architectures needs their packages.
//! With `--cache` those units (and the dirty units they need) are pulled
//! from the build cache into their architecture's repository, verified, as
//! the job's own dependencies are; one of them missing stops the job naming
//! it (its own job must run first).
//!
//! The other plan is made after this job's own plan, so this plan's keys are
//! predicted from the repositories as the job found them, as the CI plan
//! predicted them.

use std::collections::{BTreeMap, BTreeSet};

use super::{BuildOptions, PipelineError, Report, Run, execute_packages, planner};
use crate::plan::value::ArchDep;
use crate::settings::Settings;

/// Pull `needs` (units of other architectures) and what they need from the
/// cache; their outcomes go to `report`.
pub(super) fn pull(
    settings: &Settings,
    opts: &BuildOptions,
    needs: &[ArchDep],
    report: &mut Report,
) -> Result<(), PipelineError> {
    let mut by_arch: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for d in needs {
        by_arch.entry(&d.arch).or_default().push(&d.unit);
    }
    for (arch, names) in by_arch {
        let (arch, other) = super::for_arch(&BuildOptions {
            arch: Some(arch.to_string()),
            unit: None,
            explain: false,
            dry_run: false,
            force: false,
            images: false,
            ..opts.clone()
        });
        let planned = planner::plan(settings, &arch, &other)?;
        let plan = &planned.plan;
        let mut pull_only = BTreeSet::new();
        let mut todo: Vec<&str> = names;
        while let Some(n) = todo.pop() {
            // Not in that plan (not selected) or fresh there: nothing to do.
            let Ok(u) = plan.unit(n) else { continue };
            if !u.fresh && pull_only.insert(u.name.clone()) {
                todo.extend(u.deps.iter().map(String::as_str));
            }
        }
        let dirty: Vec<String> = plan
            .units
            .iter()
            .filter(|u| pull_only.contains(&u.name))
            .map(|u| u.name.clone())
            .collect();
        if dirty.is_empty() {
            continue;
        }
        settings.shell.status(
            "Pulling",
            format!("{} units of {arch} this job needs", dirty.len()),
        );
        let run = Run {
            settings,
            arch: &arch,
            opts: &other,
            planned: &planned,
            pull_only: &pull_only,
        };
        execute_packages(&run, &dirty, report)?;
    }
    Ok(())
}
