//! The end-of-run report: what was built, fresh, failed or skipped, and how long it took.

use std::time::Duration;

use crate::output::Shell;

/// How one unit ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing to do: the artifacts match the inputs.
    Fresh,
    /// Built in this run.
    Built,
    /// Taken from the build cache in this run (nothing was built).
    Pulled,
    /// Failed, with the message (and log tail).
    Failed(String),
    /// Not started, with the reason.
    Skipped(String),
}

/// One unit's line in the report.
#[derive(Debug, Clone)]
pub struct UnitReport {
    /// Unit (recipe) name.
    pub name: String,
    /// `version-rN`.
    pub version: String,
    /// How it ended.
    pub verdict: Verdict,
    /// Wall time.
    pub elapsed: Duration,
}

/// The whole run.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// What the units are, for the summary line (`packages`, `images`).
    pub what: &'static str,
    /// Every unit of the run.
    pub units: Vec<UnitReport>,
    /// Wall time of the run.
    pub elapsed: Duration,
}

impl Report {
    /// Units that were built.
    pub fn built(&self) -> impl Iterator<Item = &UnitReport> {
        self.units.iter().filter(|u| u.verdict == Verdict::Built)
    }
    /// Whether any unit failed or was skipped.
    pub fn failed(&self) -> bool {
        self.units
            .iter()
            .any(|u| matches!(u.verdict, Verdict::Failed(_) | Verdict::Skipped(_)))
    }

    /// Print the report: failures with their log tails, a table, a summary
    /// line; and one `--json` event per unit.
    pub fn print(&self, shell: &Shell) {
        for u in &self.units {
            let (status, detail) = match &u.verdict {
                Verdict::Fresh => ("fresh", String::new()),
                Verdict::Built => ("built", String::new()),
                Verdict::Pulled => ("pulled", String::new()),
                Verdict::Failed(m) => ("failed", m.clone()),
                Verdict::Skipped(m) => ("skipped", m.clone()),
            };
            shell.event(&serde_json::json!({
                "event": "unit", "unit": u.name, "version": u.version, "status": status,
                "seconds": u.elapsed.as_secs_f64(), "detail": detail,
            }));
            if let Verdict::Failed(m) = &u.verdict {
                shell.error(format!("{} {} failed: {m}", u.name, u.version));
            }
        }
        let count = |f: fn(&Verdict) -> bool| self.units.iter().filter(|u| f(&u.verdict)).count();
        let built = count(|v| *v == Verdict::Built);
        let pulled = count(|v| *v == Verdict::Pulled);
        let fresh = count(|v| *v == Verdict::Fresh);
        let failed = count(|v| matches!(v, Verdict::Failed(_)));
        let skipped = count(|v| matches!(v, Verdict::Skipped(_)));
        let interesting: Vec<&UnitReport> = self
            .units
            .iter()
            .filter(|u| u.verdict != Verdict::Fresh)
            .collect();
        if !interesting.is_empty() && interesting.len() <= 200 {
            for u in &interesting {
                let (word, extra) = match &u.verdict {
                    Verdict::Built => ("built", String::new()),
                    Verdict::Pulled => ("pulled", String::new()),
                    Verdict::Failed(_) => ("FAILED", String::new()),
                    Verdict::Skipped(why) => ("skipped", format!(" ({why})")),
                    Verdict::Fresh => ("fresh", String::new()),
                };
                shell.status(
                    "Summary",
                    format!(
                        "{:<24} {:<16} {:<8} {:>7.1}s{extra}",
                        u.name,
                        u.version,
                        word,
                        u.elapsed.as_secs_f64()
                    ),
                );
            }
        }
        let msg = if built + pulled + failed + skipped == 0 {
            format!(
                "nothing to build: {fresh} fresh ({:.2}s)",
                self.elapsed.as_secs_f64()
            )
        } else {
            let from_cache = if pulled > 0 {
                format!("{pulled} pulled from the cache, ")
            } else {
                String::new()
            };
            format!(
                "{built} built, {from_cache}{fresh} fresh, {failed} failed, {skipped} skipped in {:.1}s",
                self.elapsed.as_secs_f64()
            )
        };
        if self.units.is_empty() && self.what == "images" {
            return;
        }
        shell.status("Finished", format!("{}: {msg}", self.what));
        shell.event(&serde_json::json!({
            "event": "finished", "built": built, "pulled": pulled, "fresh": fresh, "failed": failed,
            "skipped": skipped, "seconds": self.elapsed.as_secs_f64(),
        }));
    }
}
