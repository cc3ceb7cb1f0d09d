//! Recipes through the CLI: `forge lint` reports every problem with
//! `file:line:column` and a hint, and fails; `forge new` scaffolds a recipe
//! that lints clean and refuses to overwrite.

use crate::support::{self, forge, run_err, run_ok, write};

const SHA: &str = "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae";

fn recipe(name: &str, version: &str, extra: &str) -> String {
    format!(
        r#"schema = 1

[package]
name = "{name}"
version = "{version}"
description = "A test package"
license = "MIT"
{extra}
[build]
script = "make"

[[source]]
url = "https://example.org/{name}-1.0.tar.gz"
sha256 = "{SHA}"
"#
    )
}

#[test]
fn recipe_unknown_field_is_located_with_a_hint() {
    let p = support::project();
    write(
        p.path(),
        "recipes/x/recipe.toml",
        &recipe("x", "1.0", "makedepend = []\n"),
    );
    let err = run_err(forge(p.path()).arg("lint"));
    assert!(
        err.contains(
            "recipes/x/recipe.toml:8:1: unknown field `makedepend` in [package], did you mean `makedepends`?"
        ),
        "{err}"
    );
    assert!(err.contains("1 recipe, 0 images: 1 problem"), "{err}");
}

#[test]
fn recipe_bad_version_is_rejected() {
    let p = support::project();
    for (name, version, why) in [
        ("a", "v1.0", "drop the leading `v`"),
        ("b", "1.2.3-rc1", "written `_rc`"),
        ("c", "1.0_foo", "unknown suffix `_foo`"),
        ("d", "1.0A", "uppercase"),
    ] {
        write(
            p.path(),
            &format!("recipes/{name}/recipe.toml"),
            &recipe(name, version, ""),
        );
        let err = run_err(forge(p.path()).args(["lint", name]));
        let want = format!(
            "recipes/{name}/recipe.toml:5:11: `version` in [package]: invalid apk version `{version}`: "
        );
        assert!(err.contains(&want) && err.contains(why), "{err}");
    }
}

#[test]
fn recipe_new_then_lint_passes() {
    let p = support::project();
    let (_, err) = run_ok(forge(p.path()).args(["new", "greet"]));
    assert!(err.contains("Created recipes/greet/recipe.toml"), "{err}");
    let text = std::fs::read_to_string(p.path().join("recipes/greet/recipe.toml")).unwrap();
    assert!(text.contains("name = \"greet\""), "{text}");
    let (_, err) = run_ok(forge(p.path()).arg("lint"));
    assert!(err.contains("1 recipe, 0 images: no problems"), "{err}");
    let (_, err) = run_ok(forge(p.path()).args(["lint", "greet"]));
    assert!(err.contains("no problems"), "{err}");

    // never overwrites, even an edited recipe
    std::fs::write(p.path().join("recipes/greet/recipe.toml"), "edited").unwrap();
    let err = run_err(forge(p.path()).args(["new", "greet"]));
    assert!(err.contains("already exists"), "{err}");
    let after = std::fs::read_to_string(p.path().join("recipes/greet/recipe.toml")).unwrap();
    assert_eq!(after, "edited");

    for bad in ["Greet", "../x", "-x", "a b"] {
        let err = run_err(forge(p.path()).args(["new", "--", bad]));
        assert!(err.contains("invalid recipe name"), "{bad}: {err}");
    }
    assert!(!p.path().join("x").exists());
}

#[test]
fn recipe_lint_lists_every_recipes_problems() {
    let p = support::project();
    write(
        p.path(),
        "recipes/good/recipe.toml",
        &recipe("good", "1.0", ""),
    );
    write(
        p.path(),
        "recipes/one/recipe.toml",
        &recipe("one", "v2", "licence = \"MIT\"\n"),
    );
    write(
        p.path(),
        "recipes/two/recipe.toml",
        &recipe("two", "1.0", "").replace(&format!("sha256 = \"{SHA}\"\n"), ""),
    );
    write(
        p.path(),
        "recipes/three/recipe.toml",
        &recipe("other", "1.0", ""),
    );
    write(p.path(), "recipes/stray/recipe.tml", "");
    let err = run_err(forge(p.path()).arg("lint"));
    assert!(
        err.contains("warning: recipes/stray/ has no recipe.toml; skipped"),
        "{err}"
    );
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(
        lines,
        [
            "error: recipes/one/recipe.toml:5:11: `version` in [package]: invalid apk version `v2`: drop the leading `v`",
            "error: recipes/one/recipe.toml:8:1: unknown field `licence` in [package], did you mean `license`?",
            "error: recipes/three/recipe.toml:4:8: `name` in [package] is `other` but the recipe folder is `three`; they must match",
            "error: recipes/two/recipe.toml:13:7: [[source]] #1 downloads `https://example.org/two-1.0.tar.gz` without a checksum; add `sha256 = \"…\"` (or `sha512`)",
        ],
        "{err}"
    );
    assert!(err.contains("4 recipes, 0 images: 4 problems"), "{err}");

    // naming recipes limits the check
    let (_, err) = run_ok(forge(p.path()).args(["lint", "good"]));
    assert!(err.contains("1 recipe, 0 images: no problems"), "{err}");
    let err = run_err(forge(p.path()).args(["lint", "good", "goood"]));
    assert!(
        err.contains("no recipe named `goood`") && err.contains("did you mean `good`?"),
        "{err}"
    );
}

#[test]
fn recipe_lint_passes_on_the_repository_recipes() {
    let p = support::project();
    support::copy_tree(
        &support::repo_root().join("recipes"),
        &p.path().join("recipes"),
    );
    let (_, err) = run_ok(forge(p.path()).arg("lint"));
    assert!(err.contains("no problems"), "{err}");
}
