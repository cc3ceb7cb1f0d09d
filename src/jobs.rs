//! The job queue: runs units in dependency order, independent ones at once.
//!
//! Only the coordinator (the calling thread) decides what starts; workers run
//! one unit each on scoped threads and report back over a channel. A unit
//! starts once every dependency inside the run has succeeded. After a failure
//! no new unit starts unless `keep_going` is set; units whose dependency failed
//! are reported as skipped, never started.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How a unit's work succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Done {
    /// It was built.
    Built,
    /// Its outputs were taken from the build cache.
    Pulled,
}

/// How one unit ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Built successfully.
    Built,
    /// Taken from the build cache.
    Pulled,
    /// Failed with this message.
    Failed(String),
    /// Not started: a dependency failed, or the run stopped after a failure.
    Skipped(String),
}

/// One unit's result, with its wall time.
#[derive(Debug, Clone)]
pub struct UnitResult {
    /// Unit name.
    pub name: String,
    /// How it ended.
    pub outcome: Outcome,
    /// Wall time spent running it.
    pub elapsed: Duration,
}

/// Run `units` (already a dependency-closed set, in any order) with at most
/// `jobs` at once. `deps(name)` lists a unit's dependencies; only those inside
/// `units` gate it. `work(name)` builds one unit.
pub fn run<D, W>(
    units: &[String],
    deps: D,
    jobs: usize,
    keep_going: bool,
    work: W,
) -> Vec<UnitResult>
where
    D: Fn(&str) -> Vec<String>,
    W: Fn(&str) -> Result<Done, String> + Sync,
{
    let in_run: BTreeSet<&str> = units.iter().map(String::as_str).collect();
    let mut waiting: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut users: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for u in units {
        let ds: BTreeSet<String> = deps(u)
            .into_iter()
            .filter(|d| in_run.contains(d.as_str()) && d != u)
            .collect();
        for d in &ds {
            users.entry(d.clone()).or_default().push(u.clone());
        }
        waiting.insert(u.clone(), ds);
    }
    let mut ready: BTreeSet<String> = waiting
        .iter()
        .filter(|(_, d)| d.is_empty())
        .map(|(n, _)| n.clone())
        .collect();
    for n in &ready {
        waiting.remove(n);
    }

    let jobs = jobs.max(1);
    let mut results: Vec<UnitResult> = Vec::with_capacity(units.len());
    let mut stopped = false;
    let work = &work;
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::channel::<(String, Result<Done, String>, Duration)>();
        let mut running = 0usize;
        loop {
            while running < jobs && !stopped {
                let Some(name) = ready.pop_first() else { break };
                let tx = tx.clone();
                running += 1;
                scope.spawn(move || {
                    let start = Instant::now();
                    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(&name)))
                        .unwrap_or_else(
                            |_| Err("internal error: the build worker panicked".into()),
                        );
                    let _ = tx.send((name, r, start.elapsed()));
                });
            }
            if running == 0 {
                break;
            }
            let Ok((name, r, elapsed)) = rx.recv() else {
                break;
            };
            running -= 1;
            let ok = r.is_ok();
            results.push(UnitResult {
                name: name.clone(),
                outcome: match r {
                    Ok(Done::Built) => Outcome::Built,
                    Ok(Done::Pulled) => Outcome::Pulled,
                    Err(e) => Outcome::Failed(e),
                },
                elapsed,
            });
            if ok {
                for u in users.get(&name).cloned().unwrap_or_default() {
                    if let Some(ds) = waiting.get_mut(&u) {
                        ds.remove(&name);
                        if ds.is_empty() {
                            waiting.remove(&u);
                            ready.insert(u);
                        }
                    }
                }
            } else if !keep_going {
                stopped = true;
            }
        }
    });
    // Whatever never started: a failed dependency, or the stop after a failure.
    let failed: BTreeSet<&str> = results
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Failed(_) | Outcome::Skipped(_)))
        .map(|r| r.name.as_str())
        .collect();
    let mut skipped = Vec::new();
    for (name, ds) in waiting.iter() {
        let why = match ds.iter().find(|d| failed.contains(d.as_str())) {
            Some(d) => format!("dependency `{d}` failed"),
            None if stopped => "stopped after a failure".to_string(),
            None => "a dependency did not build".to_string(),
        };
        skipped.push((name.clone(), why));
    }
    for name in ready {
        skipped.push((name, "stopped after a failure".to_string()));
    }
    skipped.sort();
    results.extend(skipped.into_iter().map(|(name, why)| UnitResult {
        name,
        outcome: Outcome::Skipped(why),
        elapsed: Duration::ZERO,
    }));
    results
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn deps_of(map: &[(&str, &[&str])]) -> impl Fn(&str) -> Vec<String> {
        let m: BTreeMap<String, Vec<String>> = map
            .iter()
            .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
            .collect();
        move |n| m.get(n).cloned().unwrap_or_default()
    }

    fn names(xs: &[&str]) -> Vec<String> {
        xs.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn dependencies_finish_before_users_start() {
        let log = Mutex::new(Vec::new());
        let graph = [
            ("app", &["lib"][..]),
            ("lib", &["base"][..]),
            ("base", &[][..]),
        ];
        let res = run(
            &names(&["app", "lib", "base"]),
            deps_of(&graph),
            4,
            false,
            |n| {
                log.lock().unwrap().push(n.to_string());
                Ok(Done::Built)
            },
        );
        assert_eq!(*log.lock().unwrap(), vec!["base", "lib", "app"]);
        assert!(res.iter().all(|r| r.outcome == Outcome::Built));
    }

    #[test]
    fn independent_units_run_at_once() {
        let active = Mutex::new((0usize, 0usize));
        let res = run(
            &names(&["a", "b", "c", "d"]),
            deps_of(&[]),
            2,
            false,
            |_| {
                {
                    let mut g = active.lock().unwrap();
                    g.0 += 1;
                    g.1 = g.1.max(g.0);
                }
                std::thread::sleep(Duration::from_millis(50));
                active.lock().unwrap().0 -= 1;
                Ok(Done::Built)
            },
        );
        assert_eq!(res.len(), 4);
        assert_eq!(active.lock().unwrap().1, 2, "two workers should overlap");
    }

    #[test]
    fn failure_skips_users_and_stops_unless_keep_going() {
        let graph = [("app", &["lib"][..]), ("lib", &[][..]), ("z", &[][..])];
        let work = |n: &str| {
            if n == "lib" {
                Err("boom".to_string())
            } else {
                Ok(Done::Built)
            }
        };
        let res = run(
            &names(&["app", "lib", "z"]),
            deps_of(&graph),
            1,
            false,
            work,
        );
        let by: BTreeMap<_, _> = res
            .iter()
            .map(|r| (r.name.as_str(), r.outcome.clone()))
            .collect();
        assert_eq!(by["lib"], Outcome::Failed("boom".into()));
        assert_eq!(
            by["app"],
            Outcome::Skipped("dependency `lib` failed".into())
        );
        // -j1 with sorted readiness runs `lib` first; `z` never starts.
        assert_eq!(by["z"], Outcome::Skipped("stopped after a failure".into()));

        let res = run(&names(&["app", "lib", "z"]), deps_of(&graph), 1, true, work);
        let by: BTreeMap<_, _> = res
            .iter()
            .map(|r| (r.name.as_str(), r.outcome.clone()))
            .collect();
        assert_eq!(by["z"], Outcome::Built);
        assert_eq!(
            by["app"],
            Outcome::Skipped("dependency `lib` failed".into())
        );
    }
}
