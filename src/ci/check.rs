//! The checks GitLab's JSON schema cannot make, run on every pipeline forge
//! writes (and, in the tests, on every file in `ci/`): at least one job,
//! every job has a script or a trigger, `needs` name jobs that exist and are
//! not in a later stage, at most [`MAX_NEEDS`] of them, at most three
//! includes, and a document small enough to be a child pipeline artifact.

use std::collections::BTreeMap;

use serde_json::Value;

/// GitLab's limit on one job's `needs` (gitlab.com's default).
pub const MAX_NEEDS: usize = 50;
/// GitLab's limit on a child pipeline configuration artifact.
pub const MAX_ARTIFACT_BYTES: usize = 5 * 1024 * 1024;
/// GitLab's limit on `include` entries of a triggered child pipeline.
pub const MAX_INCLUDES: usize = 3;

/// Top-level keys that are not jobs.
const GLOBAL_KEYWORDS: &[&str] = &[
    "after_script",
    "before_script",
    "cache",
    "default",
    "image",
    "include",
    "services",
    "spec",
    "stages",
    "variables",
    "workflow",
];

/// Stages when a document names none.
const DEFAULT_STAGES: &[&str] = &[".pre", "build", "test", "deploy", ".post"];

/// One problem in a pipeline document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CiProblem {
    /// No job at all: GitLab refuses to start such a pipeline.
    #[error("the pipeline has no job (an empty child pipeline fails to start)")]
    NoJobs,
    /// A job with neither `script` nor `trigger` (nor `extends`).
    #[error("job `{0}` has no script")]
    NoScript(String),
    /// `needs` names a job that does not exist.
    #[error("job `{job}` needs `{need}`, which is not a job of this pipeline")]
    UnknownNeed {
        /// The job.
        job: String,
        /// The missing job.
        need: String,
    },
    /// `needs` names a job of a later stage.
    #[error("job `{job}` (stage `{stage}`) needs `{need}` of the later stage `{need_stage}`")]
    LaterStage {
        /// The job.
        job: String,
        /// Its stage.
        stage: String,
        /// The job it needs.
        need: String,
        /// That job's stage.
        need_stage: String,
    },
    /// A stage that is not in `stages`.
    #[error("job `{job}` is in stage `{stage}`, which `stages` does not list")]
    UnknownStage {
        /// The job.
        job: String,
        /// The stage.
        stage: String,
    },
    /// More than [`MAX_NEEDS`] needs.
    #[error("job `{job}` has {count} needs; GitLab allows at most {MAX_NEEDS}")]
    TooManyNeeds {
        /// The job.
        job: String,
        /// How many.
        count: usize,
    },
    /// More than [`MAX_INCLUDES`] includes.
    #[error("{0} include entries; a child pipeline allows at most {MAX_INCLUDES}")]
    TooManyIncludes(usize),
    /// The document is larger than a child pipeline artifact may be.
    #[error(
        "the document is {0} bytes; a child pipeline artifact must be at most {MAX_ARTIFACT_BYTES}"
    )]
    TooLarge(usize),
}

fn job_stage(job: &Value) -> &str {
    job.get("stage").and_then(Value::as_str).unwrap_or("test")
}

fn need_names(job: &Value) -> Vec<&str> {
    let Some(needs) = job.get("needs").and_then(Value::as_array) else {
        return Vec::new();
    };
    needs
        .iter()
        .filter_map(|n| match n {
            Value::String(s) => Some(s.as_str()),
            // `{pipeline: …}` and `{project: …}` point outside this document.
            Value::Object(o) if !o.contains_key("pipeline") && !o.contains_key("project") => {
                o.get("job").and_then(Value::as_str)
            }
            _ => None,
        })
        .collect()
}

/// Check a pipeline document; `size` is its length in bytes when it is a
/// child pipeline artifact. Returns every problem found.
pub fn check(doc: &Value, size: Option<usize>) -> Vec<CiProblem> {
    let mut problems = Vec::new();
    if let Some(n) = size.filter(|&n| n > MAX_ARTIFACT_BYTES) {
        problems.push(CiProblem::TooLarge(n));
    }
    let Some(top) = doc.as_object() else {
        return vec![CiProblem::NoJobs];
    };
    if let Some(n) = top.get("include").and_then(Value::as_array).map(Vec::len)
        && n > MAX_INCLUDES
    {
        problems.push(CiProblem::TooManyIncludes(n));
    }
    let stages: Vec<&str> = match top.get("stages").and_then(Value::as_array) {
        Some(s) => s.iter().filter_map(Value::as_str).collect(),
        None => DEFAULT_STAGES.to_vec(),
    };
    let stage_index = |s: &str| match s {
        ".pre" => Some(0),
        ".post" => Some(usize::MAX),
        _ => stages.iter().position(|x| *x == s).map(|i| i + 1),
    };
    let jobs: BTreeMap<&str, &Value> = top
        .iter()
        .filter(|(k, v)| {
            !GLOBAL_KEYWORDS.contains(&k.as_str()) && !k.starts_with('.') && v.is_object()
        })
        .map(|(k, v)| (k.as_str(), v))
        .collect();
    if jobs.is_empty() {
        problems.push(CiProblem::NoJobs);
    }
    for (name, job) in &jobs {
        let has = |k: &str| job.get(k).is_some_and(|v| !v.is_null());
        let empty_script = job
            .get("script")
            .is_none_or(|s| s.as_array().is_some_and(Vec::is_empty) || s.as_str() == Some(""));
        if empty_script && !has("trigger") && !has("extends") {
            problems.push(CiProblem::NoScript(name.to_string()));
        }
        let stage = job_stage(job);
        let Some(mine) = stage_index(stage) else {
            problems.push(CiProblem::UnknownStage {
                job: name.to_string(),
                stage: stage.to_string(),
            });
            continue;
        };
        let needs = need_names(job);
        if needs.len() > MAX_NEEDS {
            problems.push(CiProblem::TooManyNeeds {
                job: name.to_string(),
                count: needs.len(),
            });
        }
        for need in needs {
            let Some(other) = jobs.get(need) else {
                problems.push(CiProblem::UnknownNeed {
                    job: name.to_string(),
                    need: need.to_string(),
                });
                continue;
            };
            let theirs = job_stage(other);
            if stage_index(theirs).is_some_and(|t| t > mine) {
                problems.push(CiProblem::LaterStage {
                    job: name.to_string(),
                    stage: stage.to_string(),
                    need: need.to_string(),
                    need_stage: theirs.to_string(),
                });
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_what_the_schema_cannot() {
        let doc = serde_json::json!({
            "stages": ["build", "publish"],
            "a": {"stage": "build", "script": ["true"], "needs": ["nope", "p"]},
            "p": {"stage": "publish", "script": []},
            "t": {"trigger": {"include": [{"artifact": "child.yml", "job": "a"}]}, "needs": [{"job": "a"}]},
            ".hidden": {"needs": ["ghost"]},
        });
        assert_eq!(
            check(&doc, Some(10)),
            vec![
                CiProblem::UnknownNeed {
                    job: "a".into(),
                    need: "nope".into()
                },
                CiProblem::LaterStage {
                    job: "a".into(),
                    stage: "build".into(),
                    need: "p".into(),
                    need_stage: "publish".into(),
                },
                CiProblem::NoScript("p".into()),
                CiProblem::UnknownStage {
                    job: "t".into(),
                    stage: "test".into()
                },
            ]
        );
        let many: Vec<String> = (0..51).map(|i| format!("j{i}")).collect();
        let mut doc = serde_json::json!({"x": {"script": ["true"], "needs": many}});
        for i in 0..51 {
            doc[format!("j{i}")] = serde_json::json!({"script": ["true"]});
        }
        assert_eq!(
            check(&doc, Some(MAX_ARTIFACT_BYTES + 1)),
            vec![
                CiProblem::TooLarge(MAX_ARTIFACT_BYTES + 1),
                CiProblem::TooManyNeeds {
                    job: "x".into(),
                    count: 51
                },
            ]
        );
        assert_eq!(
            check(&serde_json::json!({"stages": ["build"]}), None),
            vec![CiProblem::NoJobs]
        );
    }
}
