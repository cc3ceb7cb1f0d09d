//! `recipes/cri-o` and `recipes/conmon` at the plan level. Their upstream
//! tag archives cannot be seeded into CI (no Debian source package carries
//! them), so CI never builds them; they were built by hand from the
//! upstream tags (docs/real-recipes.md, "cri-o and conmon"). What CI can
//! hold them to: both recipes lint clean as shipped, CRI-O's plan pulls in
//! conmon and crun, and the node image needs neither, so the CI node
//! image keeps building from the seeded mirror alone.

use serde_json::Value;

use crate::support::{Project, forge, run_ok};

/// `forge --json plan TARGET` of the repository's project.
fn plan(p: &Project, target: &str) -> Vec<Value> {
    let (out, _) = run_ok(forge(p.path()).args(["--json", "plan", target]));
    let doc: Value = serde_json::from_str(out.trim()).expect("one JSON document");
    doc["units"].as_array().expect("units").clone()
}

fn names(units: &[Value], key: &str, of: &str) -> Vec<String> {
    let unit = units
        .iter()
        .find(|u| u["name"] == of)
        .unwrap_or_else(|| panic!("no unit {of} in {units:?}"));
    unit[key]
        .as_array()
        .unwrap_or_else(|| panic!("{of}: no {key}"))
        .iter()
        .map(|v| v.as_str().expect("a name").to_string())
        .collect()
}

#[test]
fn cri_o_and_conmon_lint_plan_and_stay_out_of_the_ci_node_image() {
    let p = Project::examples();
    let (_, err) = run_ok(forge(p.path()).args(["lint", "cri-o", "conmon"]));
    assert!(err.contains("no problems"), "{err}");

    let units = plan(&p, "cri-o");
    assert_eq!(names(&units, "deps", "cri-o"), ["conmon", "crun"]);
    let planned: Vec<&str> = units.iter().filter_map(|u| u["name"].as_str()).collect();
    // crun brings the musl base it is built with.
    assert_eq!(
        planned,
        [
            "conmon",
            "zig",
            "musl",
            "argp",
            "libcap",
            "libseccomp",
            "yajl",
            "crun",
            "cri-o"
        ],
        "and nothing else"
    );

    // The CI node image: neither recipe is a unit of its plan, so CI's
    // seeded mirror (which cannot hold their sources) builds it.
    let units = plan(&p, "os:node");
    let deps = names(&units, "deps", "os:node");
    assert!(deps.contains(&"crun".to_string()), "{deps:?}");
    for name in ["cri-o", "conmon"] {
        assert!(
            units.iter().all(|u| u["name"] != name),
            "{name} is in the node image's plan: {units:?}"
        );
    }
}
