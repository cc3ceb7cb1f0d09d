//! The plan as a value: `forge plan --json`'s shape, exact dirty sets,
//! `forge build --unit`, and the errors for an unknown unit and a cycle.

use std::collections::BTreeSet;
use std::path::Path;

use crate::support::{self, Project, forge, run_err, run_ok};

/// `forge --json plan` parsed.
pub fn plan_json(root: &Path, extra: &[&str]) -> serde_json::Value {
    let mut cmd = forge(root);
    cmd.args(["--sandbox", "none", "--json", "plan"])
        .args(extra);
    let (out, _) = run_ok(&mut cmd);
    serde_json::from_str(out.trim()).expect("forge plan --json prints one JSON document")
}

/// Names of the dirty units of a plan.
pub fn dirty_units(plan: &serde_json::Value) -> BTreeSet<String> {
    plan["units"]
        .as_array()
        .expect("units")
        .iter()
        .filter(|u| u["fresh"] == false)
        .map(|u| u["name"].as_str().expect("name").to_string())
        .collect()
}

/// lib ← app, and an unrelated tool; all noarch, built without a sandbox.
pub fn small_project() -> Project {
    let p = Project::new();
    let script = |n: &str| {
        format!("mkdir -p \"$pkgdir/usr/share/{n}\"\ncp data.txt \"$pkgdir/usr/share/{n}/\"")
    };
    for (name, deps) in [("lib", &[][..]), ("app", &["lib"][..]), ("tool", &[][..])] {
        p.recipe(name)
            .arch(&["noarch"])
            .makedepends(deps)
            .options(&["!check", "!strip"])
            .source("data.txt", &format!("{name}\n"))
            .script(&script(name))
            .write();
    }
    p.key().commit();
    p
}

#[test]
fn plan_json_has_stable_field_names() {
    let p = Project::examples();
    let plan = plan_json(p.path(), &[]);
    assert_eq!(plan["format"], 1);
    assert_eq!(plan["arch"], std::env::consts::ARCH);
    let units = plan["units"].as_array().unwrap();
    let names: Vec<&str> = units.iter().map(|u| u["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["hello", "libgreet", "greet", "image:hello", "os:node"]
    );
    let fields: BTreeSet<&str> = [
        "name",
        "kind",
        "version",
        "arch",
        "key",
        "fresh",
        "dirty",
        "reasons",
        "deps",
        "arch_deps",
    ]
    .into();
    for u in units {
        let have: BTreeSet<&str> = u.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(have, fields, "{u}");
        assert_eq!(u["key"].as_str().unwrap().len(), 64);
        if u["kind"] == "os" {
            // images/node.toml's kernel is not among the default targets.
            assert_eq!(u["dirty"], "blocked");
            continue;
        }
        assert_eq!(u["dirty"], "never-built");
        assert_eq!(u["reasons"], serde_json::json!(["never built"]));
    }
    assert_eq!(units[2]["deps"], serde_json::json!(["libgreet"]));
    assert_eq!(units[3]["kind"], "image");
    assert_eq!(
        units[3]["deps"],
        serde_json::json!(["greet", "hello", "libgreet"])
    );
    // Planning writes nothing.
    assert!(!p.path().join("out").exists());
}

#[test]
fn plan_change_to_a_library_marks_it_and_its_reverse_dependencies() {
    let p = small_project();
    let root = p.path();
    run_ok(forge(root).args(["--sandbox", "none", "build"]));
    let plan = plan_json(root, &[]);
    assert!(dirty_units(&plan).is_empty(), "{plan}");
    let before = plan["units"].clone();

    std::fs::write(root.join("recipes/lib/data.txt"), "lib 2\n").unwrap();
    let plan = plan_json(root, &[]);
    let expected: BTreeSet<String> = ["app", "lib"].map(String::from).into();
    assert_eq!(dirty_units(&plan), expected);
    let app = plan["units"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "app")
        .unwrap();
    assert_eq!(app["dirty"], "inputs-changed");
    assert_eq!(
        app["reasons"],
        serde_json::json!(["build dependency `lib` changed"])
    );
    let tool = |units: &serde_json::Value| {
        units
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["name"] == "tool")
            .unwrap()["key"]
            .clone()
    };
    assert_eq!(
        tool(&plan["units"]),
        tool(&before),
        "an unrelated unit keeps its key"
    );

    // One unit at a time, as CI jobs run them: app waits for lib.
    let err = run_err(forge(root).args(["--sandbox", "none", "build", "--unit", "app"]));
    assert!(
        err.contains("unit `app` needs units that are not built yet: lib"),
        "{err}"
    );
    let (out, _) =
        run_ok(forge(root).args(["--sandbox", "none", "--json", "build", "--unit", "lib"]));
    let built: Vec<(String, String)> = support::unit_events(&out);
    assert_eq!(built, [("lib".to_string(), "built".to_string())]);
    let expected: BTreeSet<String> = ["app".to_string()].into();
    assert_eq!(dirty_units(&plan_json(root, &[])), expected);
    run_ok(forge(root).args(["--sandbox", "none", "build", "--unit", "app"]));
    assert!(dirty_units(&plan_json(root, &[])).is_empty());
}

#[test]
fn plan_errors_name_the_unknown_unit_and_the_cycle() {
    let p = small_project();
    let err = run_err(forge(p.path()).args(["--sandbox", "none", "build", "--unit", "nope"]));
    assert!(err.contains("no unit named `nope` in the plan"), "{err}");
    let err = run_err(forge(p.path()).args(["plan", "nope"]));
    assert!(err.contains("no recipe named `nope`"), "{err}");

    p.recipe("a").arch(&["noarch"]).makedepends(&["b"]).write();
    p.recipe("b").arch(&["noarch"]).makedepends(&["a"]).write();
    let err = run_err(forge(p.path()).args(["plan"]));
    assert!(err.contains("dependency cycle: a -> b -> a"), "{err}");
}

/// The musl base and crun plan for aarch64 in the bootstrap stage (they
/// cross-compile with the seed): crun's graph holds the target's
/// libraries, and zig, a program for the build machine that only the
/// host's recipes make, is an `arch_dep` on the host's plan instead of a
/// unit of this one.
#[test]
fn foreign_bootstrap_units_take_zig_from_the_hosts_plan() {
    let p = Project::new();
    p.copy_from_repo("recipes")
        .copy_from_repo("forge.toml")
        .key()
        .commit();
    let plan = plan_json(p.path(), &["--arch", "aarch64", "crun"]);
    assert_eq!(plan["arch"], "aarch64");
    let units = plan["units"].as_array().unwrap();
    let names: BTreeSet<&str> = units.iter().map(|u| u["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["argp", "crun", "libcap", "libseccomp", "musl", "yajl"].into()
    );
    let crun = units.iter().find(|u| u["name"] == "crun").unwrap();
    assert_eq!(
        crun["deps"],
        serde_json::json!(["argp", "libcap", "libseccomp", "musl", "yajl"])
    );
    assert_eq!(
        crun["arch_deps"],
        serde_json::json!([{"arch": "x86_64", "unit": "zig"}])
    );
}

/// For a foreign architecture only hermetic recipes are planned, and
/// bootstrap ones that cross-compile (a tool names `${carch}`).
#[test]
fn a_foreign_architecture_plans_cross_compiling_bootstrap_recipes() {
    let p = Project::new();
    p.forge_toml("arch = [\"x86_64\", \"aarch64\"]\n");
    p.recipe("hostonly")
        .arch(&["x86_64", "aarch64"])
        .tools(&["cc"])
        .write();
    p.recipe("crossed")
        .arch(&["x86_64", "aarch64"])
        .tools(&["cc", "${carch}-linux-gnu-gcc"])
        .write();
    p.commit();
    let foreign = if cfg!(target_arch = "x86_64") {
        "aarch64"
    } else {
        "x86_64"
    };
    let (out, _) = run_ok(forge(p.path()).args(["plan", "--arch", foreign]));
    assert!(out.contains("crossed 1.0-r0"), "{out}");
    assert!(!out.contains("hostonly"), "{out}");
    let (out, _) = run_ok(forge(p.path()).args(["plan"]));
    assert!(
        out.contains("crossed 1.0-r0") && out.contains("hostonly 1.0-r0"),
        "{out}"
    );
}
