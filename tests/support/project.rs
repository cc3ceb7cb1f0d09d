//! Test projects written fluently: `recipes/NAME/recipe.toml` with local
//! sources, `forge.toml`, the fixed test keys, a git commit at a fixed date.
//!
//! ```ignore
//! let p = Project::new();
//! p.recipe("a").arch("noarch").source("data.txt", "a\n").script("cp data.txt \"$pkgdir\"/").write();
//! p.recipe("b").makedepends(&["a"]).write();
//! p.key().commit();
//! ```
//!
//! Integration tests, unit tests (`crate::test_project`) and bench binaries
//! share this one file through `#[path]`, so a recipe fixture is written one
//! way everywhere. It depends on nothing from forge itself.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The commit date of [`Project::commit`]: fixed, so `SOURCE_DATE_EPOCH` and
/// every byte that depends on it are the same on every run.
pub const COMMIT_DATE: &str = "@1700000000 +0000";

/// The forge repository root (holds `recipes/`, `tests/fixtures/`).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fresh project folder with an empty `recipes/`, removed on drop.
pub struct Project {
    dir: tempfile::TempDir,
}

impl Default for Project {
    fn default() -> Self {
        Self::new()
    }
}

impl Project {
    /// An empty project (`recipes/` only).
    pub fn new() -> Project {
        let dir = tempfile::Builder::new()
            .prefix("forge-test-")
            .tempdir()
            .expect("project folder");
        std::fs::create_dir_all(dir.path().join("recipes")).expect("recipes folder");
        Project { dir }
    }

    /// The repository's example project: every recipe, `images/` and
    /// `forge.toml` (whose default targets are the offline examples hello,
    /// libgreet and greet), with the test keys, committed.
    pub fn examples() -> Project {
        let p = Project::new();
        p.copy_from_repo("recipes")
            .copy_from_repo("images")
            .copy_from_repo("forge.toml")
            .key()
            .commit();
        p
    }

    /// The project folder.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Hand over the folder (removed when the `TempDir` drops).
    pub fn into_temp_dir(self) -> tempfile::TempDir {
        self.dir
    }

    /// Write `text` to `rel`, creating folders.
    pub fn write(&self, rel: &str, text: &str) -> &Self {
        write(self.path(), rel, text);
        self
    }

    /// Write `forge.toml`.
    pub fn forge_toml(&self, text: &str) -> &Self {
        self.write("forge.toml", text)
    }

    /// Copy `rel` (a file or folder) of the forge repository to the same
    /// place in the project.
    pub fn copy_from_repo(&self, rel: &str) -> &Self {
        copy_tree(&repo_root().join(rel), &self.path().join(rel));
        self
    }

    /// Copy the repository's recipes `names` (sources included).
    pub fn copy_recipes(&self, names: &[&str]) -> &Self {
        for name in names {
            self.copy_from_repo(&format!("recipes/{name}"));
        }
        self
    }

    /// Install the fixed test signing keys in `keys/`.
    pub fn key(&self) -> &Self {
        install_test_key(self.path());
        self
    }

    /// Commit everything at [`COMMIT_DATE`] (`git init` first if needed).
    pub fn commit(&self) -> &Self {
        git_commit_all(self.path(), COMMIT_DATE);
        self
    }

    /// Start a recipe `name`; [`RecipeBuilder::write`] puts it on disk.
    pub fn recipe(&self, name: &str) -> RecipeBuilder {
        RecipeBuilder::new(self.path(), name)
    }
}

/// One `recipes/NAME/recipe.toml`, built field by field. Defaults: version
/// 1.0, release 0, license MIT, arch x86_64, script `true`.
pub struct RecipeBuilder {
    root: PathBuf,
    name: String,
    package: Vec<(String, String)>,
    files: Vec<(String, String)>,
    tools: Vec<String>,
    script: String,
    check: String,
    stage: Option<String>,
    tail: String,
}

/// A TOML string literal.
fn quoted(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A TOML array of strings.
fn list(items: &[&str]) -> String {
    let q: Vec<String> = items.iter().map(|s| quoted(s)).collect();
    format!("[{}]", q.join(", "))
}

impl RecipeBuilder {
    /// A recipe `name` under `root/recipes/`.
    pub fn new(root: &Path, name: &str) -> RecipeBuilder {
        let mut r = RecipeBuilder {
            root: root.to_path_buf(),
            name: name.to_string(),
            package: Vec::new(),
            files: Vec::new(),
            tools: Vec::new(),
            script: "true".into(),
            check: String::new(),
            stage: None,
            tail: String::new(),
        };
        r.set("name", quoted(name))
            .set("version", quoted("1.0"))
            .set("release", "0".into())
            .set("description", quoted(&format!("{name} test recipe")))
            .set("license", quoted("MIT"))
            .set("arch", list(&["x86_64"]));
        r
    }

    /// Set a `[package]` field to a raw TOML value (replacing it if set).
    pub fn set(&mut self, key: &str, toml_value: String) -> &mut Self {
        match self.package.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = toml_value,
            None => self.package.push((key.to_string(), toml_value)),
        }
        self
    }

    /// `version` (apk grammar, no `-rN`).
    pub fn version(&mut self, v: &str) -> &mut Self {
        self.set("version", quoted(v))
    }

    /// `release`.
    pub fn release(&mut self, n: u32) -> &mut Self {
        self.set("release", n.to_string())
    }

    /// `description`.
    pub fn description(&mut self, d: &str) -> &mut Self {
        self.set("description", quoted(d))
    }

    /// `arch`, e.g. `&["noarch"]`.
    pub fn arch(&mut self, arch: &[&str]) -> &mut Self {
        self.set("arch", list(arch))
    }

    /// `depends`.
    pub fn depends(&mut self, names: &[&str]) -> &mut Self {
        self.set("depends", list(names))
    }

    /// `makedepends`.
    pub fn makedepends(&mut self, names: &[&str]) -> &mut Self {
        self.set("makedepends", list(names))
    }

    /// `provides`.
    pub fn provides(&mut self, names: &[&str]) -> &mut Self {
        self.set("provides", list(names))
    }

    /// `options`, e.g. `&["!check"]`.
    pub fn options(&mut self, opts: &[&str]) -> &mut Self {
        self.set("options", list(opts))
    }

    /// `subpackages`, e.g. `&["doc", "dev"]`.
    pub fn subpackages(&mut self, subs: &[&str]) -> &mut Self {
        self.set("subpackages", list(subs))
    }

    /// A local source: `file` with `text` beside the recipe, and its
    /// `[[source]] path`.
    pub fn source(&mut self, file: &str, text: &str) -> &mut Self {
        self.files.push((file.to_string(), text.to_string()));
        self
    }

    /// `[build] tools` (host commands checked on PATH).
    pub fn tools(&mut self, tools: &[&str]) -> &mut Self {
        self.tools = tools.iter().map(|s| s.to_string()).collect();
        self
    }

    /// `[build] script`.
    pub fn script(&mut self, script: &str) -> &mut Self {
        self.script = script.to_string();
        self
    }

    /// `[build] stage` (`bootstrap` or `hermetic`).
    pub fn stage(&mut self, stage: &str) -> &mut Self {
        self.stage = Some(stage.to_string());
        self
    }

    /// `[build] check`.
    pub fn check(&mut self, check: &str) -> &mut Self {
        self.check = check.to_string();
        self
    }

    /// Raw TOML appended after everything else (`[[source]]` downloads,
    /// `[[subpackage]]` tables, deliberate mistakes).
    pub fn raw(&mut self, toml: &str) -> &mut Self {
        self.tail.push_str(toml);
        self.tail.push('\n');
        self
    }

    /// The recipe text as it will be written.
    pub fn text(&self) -> String {
        let mut t = String::from("schema = 1\n\n[package]\n");
        for (k, v) in &self.package {
            t.push_str(&format!("{k} = {v}\n"));
        }
        for (f, _) in &self.files {
            t.push_str(&format!("\n[[source]]\npath = {}\n", quoted(f)));
        }
        t.push_str("\n[build]\n");
        if !self.tools.is_empty() {
            let tools: Vec<&str> = self.tools.iter().map(String::as_str).collect();
            t.push_str(&format!("tools = {}\n", list(&tools)));
        }
        if let Some(stage) = &self.stage {
            t.push_str(&format!("stage = {}\n", quoted(stage)));
        }
        t.push_str(&format!("script = '''\n{}\n'''\n", self.script));
        if !self.check.is_empty() {
            t.push_str(&format!("check = '''\n{}\n'''\n", self.check));
        }
        if !self.tail.is_empty() {
            t.push('\n');
            t.push_str(&self.tail);
        }
        t
    }

    /// Write the recipe and its sources; returns the `recipe.toml` path.
    pub fn write(&self) -> PathBuf {
        let dir = self.root.join("recipes").join(&self.name);
        for (f, text) in &self.files {
            write(&dir, f, text);
        }
        let file = dir.join("recipe.toml");
        write(&dir, "recipe.toml", &self.text());
        file
    }
}

/// Write `text` to `root/rel`, creating folders.
pub fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().expect("a parent")).expect("parent folder");
    std::fs::write(&p, text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
}

/// Copy a file or a folder tree (files, folders, symlinks).
pub fn copy_tree(from: &Path, to: &Path) {
    for entry in walkdir::WalkDir::new(from) {
        let entry = entry.expect("walking the source tree");
        let rel = entry.path().strip_prefix(from).expect("below the root");
        let dest = if rel.as_os_str().is_empty() {
            to.to_path_buf()
        } else {
            to.join(rel)
        };
        let ft = entry.file_type();
        if ft.is_dir() {
            std::fs::create_dir_all(&dest).expect("folder");
            continue;
        }
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).expect("parent folder");
        }
        if ft.is_symlink() {
            let target = std::fs::read_link(entry.path()).expect("link");
            std::os::unix::fs::symlink(target, &dest).expect("symlink");
        } else {
            std::fs::copy(entry.path(), &dest).expect("copy");
        }
    }
}

/// Run `git args` in `dir` with a fixed identity and both dates at `date`.
pub fn git(dir: &Path, args: &[&str], date: &str) {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_DATE", date)
        .env("GIT_COMMITTER_DATE", date)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@t")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@t")
        .output()
        .expect("git runs");
    assert!(out.status.success(), "git {args:?}: {out:?}");
}

/// Run `git args` in `dir` as it is (the caller's identity and dates) and
/// return its trimmed stdout.
pub fn git_stdout(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git runs");
    assert!(out.status.success(), "git {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Every entry of a tree, sorted: relative path, mode (with type bits),
/// mtime, and contents or link target (folders: empty).
pub fn tree_listing(root: &Path) -> Vec<(String, u32, i64, Vec<u8>)> {
    use std::os::unix::fs::MetadataExt as _;
    walkdir::WalkDir::new(root)
        .sort_by_file_name()
        .into_iter()
        .map(|e| {
            let e = e.expect("walking the tree");
            let m = std::fs::symlink_metadata(e.path()).expect("metadata");
            let rel = e.path().strip_prefix(root).expect("below the root");
            let data = if m.is_file() {
                std::fs::read(e.path()).expect("reading a file")
            } else if m.file_type().is_symlink() {
                let target = std::fs::read_link(e.path()).expect("reading a link");
                target.into_os_string().into_encoded_bytes()
            } else {
                Vec::new()
            };
            (rel.display().to_string(), m.mode(), m.mtime(), data)
        })
        .collect()
}

/// `git init` (if needed) and commit everything in `dir` at `date`.
pub fn git_commit_all(dir: &Path, date: &str) {
    if !dir.join(".git").exists() {
        git(dir, &["init", "-q", "-b", "main"], date);
    }
    git(dir, &["add", "-A"], date);
    git(dir, &["commit", "-q", "-m", "test", "--allow-empty"], date);
}

/// Copy the test suite's fixed signing keys into `root/keys/` (private keys
/// 0600), so a test pays no key generation and two projects sign identically.
pub fn install_test_key(root: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let keys = root.join("keys");
    std::fs::create_dir_all(&keys).expect("keys folder");
    let fixtures = repo_root().join("tests/fixtures/keys");
    for entry in std::fs::read_dir(&fixtures).expect("tests/fixtures/keys") {
        let entry = entry.expect("key entry");
        let dest = keys.join(entry.file_name());
        std::fs::copy(entry.path(), &dest).expect("copy key");
        let mode = if dest.extension().is_some_and(|e| e == "pub") {
            0o644
        } else {
            0o600
        };
        std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(mode)).expect("key mode");
    }
}
