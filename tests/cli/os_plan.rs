//! OS images as units of the build plan (`os:NAME`): shown by `forge plan
//! --json` with their package deps, built by `forge build os:NAME` and then
//! fresh, dirty with the reason when a package or the definition changes,
//! blocked (not failing `forge build`) when a package has no recipe, and
//! given a CI job after their packages' jobs.

use std::path::Path;

use serde_json::Value;

use crate::os::{OS_IMAGE, out_os, project_with_hello, ready};
use crate::support::{forge, run_ok};

/// `forge --json plan` (the default sandbox, as the packages were built).
fn plan(root: &Path) -> Value {
    let (out, _) = run_ok(forge(root).args(["--json", "plan"]));
    serde_json::from_str(out.trim()).expect("one JSON document")
}

fn unit(plan: &Value, name: &str) -> Value {
    plan["units"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == name)
        .unwrap_or_else(|| panic!("no unit {name} in {plan}"))
        .clone()
}

#[test]
fn os_unit_is_planned_built_when_asked_then_fresh_and_dirty_on_change() {
    if !ready() {
        return;
    }
    let p = project_with_hello(OS_IMAGE);
    let root = p.path();
    let u = unit(&plan(root), "os:t");
    assert_eq!(u["kind"], "os");
    assert_eq!(u["deps"], serde_json::json!(["hello", "testkernel"]));
    assert_eq!(
        (u["fresh"].clone(), u["dirty"].clone()),
        (false.into(), "never-built".into())
    );

    // The default build leaves the OS unit alone: nobody asked for it.
    run_ok(forge(root).arg("build"));
    assert!(!out_os(root).contains(&"t.raw".to_string()));

    let (_, err) = run_ok(forge(root).args(["build", "os:t"]));
    assert!(err.contains("Assembling"), "{err}");
    assert!(out_os(root).contains(&"t.raw".to_string()));
    assert_eq!(unit(&plan(root), "os:t")["fresh"], true);
    let (_, err) = run_ok(forge(root).args(["build", "os:t"]));
    assert!(
        !err.contains("Assembling"),
        "a second build is a no-op: {err}"
    );

    let (out, err) = run_ok(forge(root).args(["build", "--explain", "--dry-run", "os:t"]));
    assert!(
        format!("{out}{err}").contains("OS image t 1.0: fresh"),
        "{out}{err}"
    );

    // A package changes: dirty, naming its key.
    p.recipe("testkernel")
        .script(concat!(
            "d=$pkgdir/usr/lib/modules/0.0-placeholder\nmkdir -p $d\n",
            "printf 'PLACEHOLDER v2\\n' > $d/vmlinuz\nprintf 'PLACEHOLDER\\n' > $d/initrd"
        ))
        .write();
    let u = unit(&plan(root), "os:t");
    assert_eq!(u["dirty"], "inputs-changed");
    assert!(
        u["reasons"]
            .to_string()
            .contains("build dependency `testkernel` changed"),
        "{u}"
    );

    // The CI plan builds it after the package's job.
    let yml = root.join("child.yml");
    let (out, _) = run_ok(
        forge(root)
            .args(["--json", "ci", "plan", "--output"])
            .arg(&yml),
    );
    let arch = std::env::consts::ARCH;
    let doc: Value = out
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["event"] == "ci-plan")
        .expect("a ci-plan event")["pipeline"]
        .clone();
    let job = &doc[format!("build:{arch}:os:t")];
    assert_eq!(
        job["needs"],
        serde_json::json!([format!("build:{arch}:testkernel")]),
        "{doc}"
    );
    assert!(job["script"].to_string().contains("--unit os:t"), "{job}");
    crate::ci::schema_check(&[yml]);

    run_ok(forge(root).args(["build", "os:t"]));
    assert_eq!(unit(&plan(root), "os:t")["fresh"], true);

    // The definition changes: dirty, naming it.
    let def = OS_IMAGE.replace("console=ttyS0", "console=ttyS1");
    std::fs::write(root.join("images/t.toml"), def).unwrap();
    let u = unit(&plan(root), "os:t");
    assert!(u["reasons"].to_string().contains("definition"), "{u}");
    // ... and `forge build os:t` rebuilds it (the no-op stamp must not
    // hide the change).
    let (_, err) = run_ok(forge(root).args(["build", "os:t"]));
    assert!(err.contains("Assembling"), "{err}");
    assert_eq!(unit(&plan(root), "os:t")["fresh"], true);
}

#[test]
fn os_unit_without_its_kernel_is_blocked_and_build_still_succeeds() {
    if !ready() {
        return;
    }
    let p = project_with_hello(&OS_IMAGE.replace("\"testkernel\"", "\"linux\""));
    let root = p.path();
    let u = unit(&plan(root), "os:t");
    assert_eq!(u["dirty"], "blocked");
    assert_eq!(
        u["reasons"],
        serde_json::json!(["needs `linux`, which no recipe makes and the repository lacks"])
    );
    assert_eq!(u["deps"], serde_json::json!(["hello"]));
    run_ok(forge(root).arg("build"));
    let (out, _) = run_ok(
        forge(root)
            .args(["--json", "ci", "plan", "--output"])
            .arg(root.join("c.yml")),
    );
    assert!(!out.contains("os:t"), "a blocked unit gets no job: {out}");
}

#[test]
fn os_unit_needs_its_oem_images() {
    if !ready() {
        return;
    }
    let def = OS_IMAGE.replace("cmdline =", "oem-images = [\"web\"]\ncmdline =");
    let p = project_with_hello(&def);
    let root = p.path();
    p.write(
        "images/web.toml",
        "schema = 1\npackages = [\"hello\"]\nentrypoint = [\"/usr/bin/hello\"]\n",
    );
    let u = unit(&plan(root), "os:t");
    assert_eq!(
        u["deps"],
        serde_json::json!(["hello", "image:web", "testkernel"])
    );
    let key = u["key"].clone();
    p.write(
        "images/web.toml",
        "schema = 1\npackages = [\"hello\"]\nentrypoint = [\"/usr/bin/hi\"]\n",
    );
    let u = unit(&plan(root), "os:t");
    assert_ne!(
        u["key"], key,
        "the OEM image's key is part of the OS unit's"
    );
    // Asked for alone, images are not planned: the layout must be built.
    let (out, _) = run_ok(forge(root).args(["--json", "plan", "os:t"]));
    let u = unit(&serde_json::from_str(out.trim()).unwrap(), "os:t");
    assert_eq!(u["dirty"], "blocked");
    assert!(u["reasons"].to_string().contains("image `web`"), "{u}");
}

/// The OS unit key hashes the parsed definition, as a recipe's does: a
/// comment or a blank line in `images/NAME.toml` is no reason to rebuild a
/// disk; a changed value is.
#[test]
fn os_unit_key_ignores_comments_and_layout_of_the_definition() {
    let p = crate::support::Project::new();
    p.copy_recipes(&["hello"]).write("images/t.toml", OS_IMAGE);
    p.recipe("testkernel").script("mkdir -p $pkgdir").write();
    p.key().commit();
    let root = p.path();
    let key = |root: &Path| unit(&plan(root), "os:t")["key"].clone();
    let before = key(root);
    let commented = format!(
        "# the test node\n\n{}",
        OS_IMAGE.replace("\n[partitions]", "\n\n[partitions]  # sizes")
    );
    std::fs::write(root.join("images/t.toml"), commented).unwrap();
    assert_eq!(key(root), before, "a comment changes no byte of the disk");
    std::fs::write(
        root.join("images/t.toml"),
        OS_IMAGE.replace("console=ttyS0", "console=ttyS1"),
    )
    .unwrap();
    assert_ne!(key(root), before, "a changed value changes the key");
}
