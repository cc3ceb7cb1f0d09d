//! Recipe loading: a complete valid recipe, and one table row per problem
//! with the exact location and message expected.

use super::*;

const SHA: &str = "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae";
const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

fn minimal() -> String {
    format!(
        r#"schema = 1

[package]
name = "hello"
version = "1.0.0"
description = "Says hello"
license = "MIT"

[build]
script = "make"

[[source]]
url = "https://example.org/hello-1.0.0.tar.gz"
sha256 = "{SHA}"
"#
    )
}

/// Write `text` as `recipes/<name>/recipe.toml` (plus `files`) in a fresh
/// project and load it.
fn load_in(
    name: &str,
    text: &str,
    files: &[&str],
) -> (tempfile::TempDir, Result<Recipe, RecipeError>) {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("recipes").join(name);
    std::fs::create_dir_all(&dir).unwrap();
    for f in files {
        std::fs::write(dir.join(f), "x").unwrap();
    }
    std::fs::write(dir.join(RECIPE_FILE), text).unwrap();
    let r = load(&dir.join(RECIPE_FILE));
    (t, r)
}

fn messages(e: &RecipeError) -> Vec<String> {
    e.problems().iter().map(|p| p.to_string()).collect()
}

#[test]
fn minimal_recipe_gets_defaults() {
    let (t, r) = load_in("hello", &minimal(), &[]);
    let r = r.unwrap();
    assert_eq!(r.name, "hello");
    assert_eq!(r.full_version(), "1.0.0-r0");
    assert_eq!(r.arch, ["x86_64", "aarch64"]);
    assert_eq!(r.url, "");
    assert_eq!(r.check, "");
    assert_eq!(r.builddir, None);
    assert_eq!(r.options, Options::default());
    assert_eq!(r.stage, None, "no stage: the project's default");
    assert!(r.subpackages.is_empty() && r.depends.is_empty() && r.host_tools.is_empty());
    assert_eq!(r.dir, t.path().join("recipes/hello"));
    assert_eq!(
        r.sources,
        [Source::Http {
            url: "https://example.org/hello-1.0.0.tar.gz".into(),
            checksum: Checksum::Sha256(SHA.into()),
            filename: "hello-1.0.0.tar.gz".into(),
            extract: true,
        }]
    );
}

/// The complete example in docs/recipes.md loads and means what it says.
#[test]
fn documented_example_loads() {
    let doc = include_str!("../../docs/recipes.md");
    let start = doc.find("```toml\n").expect("a toml block") + 8;
    let text = &doc[start..start + doc[start..].find("```").unwrap()];
    let (_t, r) = load_in("hello", text, &["hello.c", "fix-build.patch"]);
    let r = r.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.version.as_str(), "2.12.1");
    assert_eq!(r.release, 1);
    assert_eq!(r.license, "GPL-3.0-or-later");
    assert_eq!(r.host_tools, ["cc", "make"]);
    assert_eq!(
        r.options,
        Options {
            no_check: false,
            no_strip: true,
            net: false,
            suid: false
        }
    );
    assert_eq!(r.sources.len(), 4);
    assert!(matches!(&r.sources[1], Source::Git { dest, tag: Some(_), .. } if dest == "gnulib"));
    assert!(matches!(&r.sources[2], Source::Local { path } if path == "hello.c"));
    let names: Vec<&str> = r.subpackages.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["hello-doc", "hello-dev", "hello-lang"]);
    assert_eq!(r.subpackages[0].depends, ["hello=2.12.1-r1"]);
    assert_eq!(r.subpackages[2].paths, ["usr/share/locale/**"]);
}

#[test]
fn every_source_kind() {
    let text = minimal()
        + &format!(
            r#"
[[source]]
url = "https://example.org/dl?id=3"
sha512 = "{sha512}"
filename = "notes.txt"

[[source]]
git = "https://example.org/repo/lib.git"
commit = "{COMMIT}"

[[source]]
path = "files/"
"#,
            sha512 = "ab".repeat(64)
        );
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("recipes/hello/files");
    std::fs::create_dir_all(&dir).unwrap();
    std::os::unix::fs::symlink("../recipe.toml", dir.join("inside-link")).unwrap();
    std::fs::write(dir.parent().unwrap().join(RECIPE_FILE), &text).unwrap();
    let r = load(&dir.parent().unwrap().join(RECIPE_FILE)).unwrap();
    assert_eq!(
        r.sources[1..],
        [
            Source::Http {
                url: "https://example.org/dl?id=3".into(),
                checksum: Checksum::Sha512("ab".repeat(64)),
                filename: "notes.txt".into(),
                extract: false,
            },
            Source::Git {
                url: "https://example.org/repo/lib.git".into(),
                commit: COMMIT.into(),
                tag: None,
                dest: "lib".into(),
            },
            Source::Local {
                path: "files".into()
            },
        ]
    );
}

/// (text edit applied to the minimal recipe, expected `line:col: message`
/// fragments, one per problem in file order)
#[test]
fn problems_are_located_and_named() {
    let cases: Vec<(String, Vec<&str>)> = vec![
        (
            minimal().replace("license = \"MIT\"", "license = \"MIT\"\nmakedepend = []"),
            vec!["8:1: unknown field `makedepend` in [package], did you mean `makedepends`?"],
        ),
        (
            minimal().replace("\"1.0.0\"", "\"v1.0\""),
            vec!["5:11: `version` in [package]: invalid apk version `v1.0`: drop the leading `v`"],
        ),
        (
            minimal().replace("\"1.0.0\"", "\"1.0-rc1\""),
            vec![
                "5:11: `version` in [package]: invalid apk version `1.0-rc1`: pre/post-release markers are written `_rc`",
            ],
        ),
        (
            minimal().replace("schema = 1", "schema = 2"),
            vec!["1:10: unsupported `schema` 2; this forge reads schema 1"],
        ),
        (
            minimal().replace("schema = 1\n", ""),
            vec!["1:1: missing `schema` at the top level"],
        ),
        (
            minimal().replace("name = \"hello\"", "name = \"other\""),
            vec!["4:8: `name` in [package] is `other` but the recipe folder is `hello`"],
        ),
        (
            minimal().replace(&format!("sha256 = \"{SHA}\"\n"), ""),
            vec![
                "13:7: [[source]] #1 downloads `https://example.org/hello-1.0.0.tar.gz` without a checksum",
            ],
        ),
        (
            minimal().replace(SHA, &SHA[1..]),
            vec!["14:10: `sha256` in [[source]] #1: must be 64 hex characters, found 63"],
        ),
        (
            minimal().replace(SHA, &SHA.to_uppercase()),
            vec!["14:10: `sha256` in [[source]] #1: `C` is not a lowercase hex digit"],
        ),
        (
            minimal().replace("script = \"make\"", "script = \"make\"\nstage = \"host\""),
            vec![
                "11:9: `stage` in [build] is `host`; it must be \"bootstrap\" (host tools) or \"hermetic\" (a build root of forge packages)",
            ],
        ),
        (
            minimal() + "git = \"https://example.org/x.git\"\n",
            vec!["15:1: [[source]] #1 has both `url` and `git`"],
        ),
        (
            minimal() + "\n[[source]]\ngit = \"https://e.org/x.git\"\ncommit = \"abc1234\"\n",
            vec!["18:10: `commit` in [[source]] #2: `abc1234` is a short commit id"],
        ),
        (
            minimal() + "\n[[source]]\ngit = \"https://e.org/x.git\"\n",
            vec!["16:1: missing `commit` in [[source]] #2"],
        ),
        (
            minimal()
                + "\n[[source]]\npath = \"../etc/passwd\"\n[[source]]\npath = \"/etc/passwd\"\n[[source]]\npath = \"nope.c\"\n",
            vec![
                "17:8: `path` in [[source]] #2: `../etc/passwd` contains `..`",
                "19:8: `path` in [[source]] #3: `/etc/passwd` is absolute",
                "21:8: `path` in [[source]] #4: `nope.c` does not exist in the recipe folder",
            ],
        ),
        (
            minimal() + "\n[[source]]\n",
            vec!["16:1: [[source]] #2 needs exactly one of `url`, `git` or `path`"],
        ),
        (
            minimal().replace("license = \"MIT\"", "license = \"MIT or GPL\""),
            vec!["7:11: `license` in [package]: write the operator `or` in uppercase"],
        ),
        (
            minimal().replace(
                "license = \"MIT\"",
                "license = \"MIT\"\nrelease = \"1\"\narch = [\"x86-64\"]\noptions = [\"!chek\"]",
            ),
            vec![
                "8:11: `release` in [package] must be an integer, found a string",
                "9:9: `arch` in [package]: unknown architecture `x86-64`, did you mean `x86_64`?",
                "10:12: `options` in [package]: unknown option `!chek`, did you mean `!check`?",
            ],
        ),
        (
            minimal().replace(
                "license = \"MIT\"",
                "license = \"MIT\"\ndepends = [\"foo>=v1\"]\nsubpackages = [\"docs\"]",
            ),
            vec![
                "8:12: `depends` in [package]: `foo>=v1`: drop the leading `v`",
                "9:16: `subpackages` in [package]: unknown built-in subpackage `docs`, did you mean `doc`?",
            ],
        ),
        (
            minimal() + "\n[[subpackage]]\nname = \"hello\"\npaths = [\"/usr/lib\"]\n",
            vec![
                "17:8: `name` in [[subpackage]] #1: package `hello` is defined twice",
                "18:10: `paths` in [[subpackage]] #1: `/usr/lib` is absolute",
            ],
        ),
        (
            minimal().replace("script = \"make\"", "scrip = \"make\""),
            vec![
                "9:1: missing `script` in [build]",
                "10:1: unknown field `scrip` in [build], did you mean `script`?",
            ],
        ),
        (
            minimal().replace("[build]", "[build"),
            vec!["9:7: TOML syntax:"],
        ),
        (
            minimal().replace("description = \"Says hello\"\n", ""),
            vec!["3:1: missing `description` in [package]"],
        ),
        (
            minimal()
                + "\n[[source]]\nurl = \"https://example.org/b/hello-1.0.0.tar.gz\"\nsha256 = \""
                + SHA
                + "\"\n",
            vec![
                "17:7: [[source]] #2 would be stored as `hello-1.0.0.tar.gz` in $srcdir, like [[source]] #1",
            ],
        ),
    ];
    let mut failures = Vec::new();
    for (text, want) in cases {
        let (_t, r) = load_in("hello", &text, &[]);
        let Err(err) = r else {
            failures.push(format!("no error for:\n{text}"));
            continue;
        };
        let got = messages(&err);
        let prefix = "recipes/hello/recipe.toml:";
        let ok = got.len() == want.len()
            && got
                .iter()
                .zip(&want)
                .all(|(g, w)| g.strip_prefix(prefix).is_some_and(|g| g.starts_with(w)));
        if !ok {
            failures.push(format!("want {want:#?}\ngot {got:#?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn escaping_symlinks_are_rejected() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("recipes/hello");
    std::fs::create_dir_all(dir.join("files")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", dir.join("link")).unwrap();
    std::os::unix::fs::symlink("../../..", dir.join("files/up")).unwrap();
    let text = minimal() + "\n[[source]]\npath = \"link\"\n[[source]]\npath = \"files\"\n";
    std::fs::write(dir.join(RECIPE_FILE), text).unwrap();
    let err = load(&dir.join(RECIPE_FILE)).unwrap_err();
    let got = messages(&err);
    assert_eq!(got.len(), 2, "{got:#?}");
    assert!(
        got[0].contains("`link` leads outside the recipe folder"),
        "{}",
        got[0]
    );
    assert!(
        got[1].contains("`files/up` leads outside the recipe folder"),
        "{}",
        got[1]
    );
}

#[test]
fn load_all_sorts_and_collects_every_problem() {
    let t = tempfile::tempdir().unwrap();
    let recipes = t.path().join("recipes");
    for (name, text) in [
        ("zeta", minimal().replace("hello", "zeta")),
        ("alpha", minimal().replace("hello", "alpha")),
    ] {
        std::fs::create_dir_all(recipes.join(name)).unwrap();
        std::fs::write(recipes.join(name).join(RECIPE_FILE), text).unwrap();
    }
    std::fs::create_dir_all(recipes.join("not-a-recipe")).unwrap();
    let all = load_all(&recipes).unwrap();
    let names: Vec<&str> = all.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["alpha", "zeta"]);

    for name in ["bad1", "bad2"] {
        std::fs::create_dir_all(recipes.join(name)).unwrap();
        let text = minimal()
            .replace("hello", name)
            .replace("1.0.0", "1.0A")
            .replace("license", "licence");
        std::fs::write(recipes.join(name).join(RECIPE_FILE), text).unwrap();
    }
    let err = load_all(&recipes).unwrap_err();
    let got = messages(&err);
    assert_eq!(got.len(), 6, "{got:#?}");
    assert!(
        got[0].starts_with("recipes/bad1/recipe.toml:3:1: missing `license`"),
        "{}",
        got[0]
    );
    assert!(
        got[1].starts_with("recipes/bad1/recipe.toml:5:11: `version`"),
        "{}",
        got[1]
    );
    assert!(got[2].contains("unknown field `licence` in [package], did you mean `license`?"));
    assert!(got[3].starts_with("recipes/bad2/"));

    let e = find(&recipes, "alpah").unwrap_err().to_string();
    assert!(
        e.contains("no recipe named `alpah`") && e.ends_with("did you mean `alpha`?"),
        "{e}"
    );
    assert_eq!(find(&recipes, "zeta").unwrap().name, "zeta");
    assert!(find(&recipes, "../x").is_err());
}

/// `[build] stage` reads both stages.
#[test]
fn build_stage_is_read() {
    for (text, want) in [
        ("bootstrap", Stage::Bootstrap),
        ("hermetic", Stage::Hermetic),
    ] {
        let recipe = minimal().replace(
            "script = \"make\"",
            &format!("script = \"make\"\nstage = \"{text}\""),
        );
        let (_t, r) = load_in("hello", &recipe, &[]);
        assert_eq!(r.unwrap().stage, Some(want));
    }
}

/// A tool may name the target architecture (`${carch}`): the recipe then
/// cross-compiles, and each build checks the tool for its architecture.
/// Any other variable in a tool is refused, naming it.
#[test]
fn tools_may_name_the_target_architecture() {
    let recipe = minimal().replace(
        "script = \"make\"",
        "script = \"make\"\ntools = [\"cc\", \"${carch}-linux-gnu-gcc\"]",
    );
    let (_t, r) = load_in("hello", &recipe, &[]);
    let r = r.unwrap();
    assert!(r.cross_compiles());
    assert_eq!(r.tools_for("aarch64"), ["cc", "aarch64-linux-gnu-gcc"]);
    let (_t, plain) = load_in("hello", &minimal(), &[]);
    assert!(!plain.unwrap().cross_compiles());

    let bad = minimal().replace(
        "script = \"make\"",
        "script = \"make\"\ntools = [\"${arch}-gcc\"]",
    );
    let (_t, r) = load_in("hello", &bad, &[]);
    let e = r.unwrap_err().to_string();
    assert!(
        e.contains("`${arch}-gcc`: the only variable a tool may hold is `${carch}`"),
        "{e}"
    );
}
