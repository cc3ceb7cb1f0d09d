//! The unit graph a child pipeline is made from: every architecture's plan
//! as one graph whose units are named by their build jobs (so a need across
//! architectures is an edge like any other), and its transitive reduction
//! over the units that get a job.

use std::collections::BTreeSet;

use super::build_job;
use crate::plan::value::{BuildPlan, PlanError, PlannedUnit};

/// The plans of every architecture as one plan whose unit names are job
/// names (`build:<arch>:<unit>`); each unit keeps its architecture in
/// `arch`. A need across architectures on a unit the other plan does not
/// hold (not selected) is dropped: that job pulls it from the cache. Each
/// plan is validated alone first (so errors name plain units), then the
/// whole (a cycle may run across architectures).
pub(super) fn combined(plans: &[BuildPlan]) -> Result<BuildPlan, PlanError> {
    let mut all = BuildPlan::new("all");
    let mut present = BTreeSet::new();
    for p in plans {
        p.validate()?;
        present.extend(p.units.iter().map(|u| build_job(&p.arch, &u.name)));
    }
    for p in plans {
        for u in &p.units {
            let mut deps: Vec<String> = u.deps.iter().map(|d| build_job(&p.arch, d)).collect();
            deps.extend(
                u.arch_deps
                    .iter()
                    .map(|d| build_job(&d.arch, &d.unit))
                    .filter(|j| present.contains(j)),
            );
            all.units.push(PlannedUnit {
                name: build_job(&p.arch, &u.name),
                arch: p.arch.clone(),
                deps,
                arch_deps: Vec::new(),
                ..u.clone()
            });
        }
    }
    all.validate()?;
    Ok(all)
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
pub(super) fn reduced_needs(plan: &BuildPlan, dirty: &[usize]) -> (Vec<Vec<usize>>, Vec<usize>) {
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
