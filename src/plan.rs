//! Build plan: for every unit, an input key and a verdict, fresh or dirty and why.
//!
//! A unit's key is the SHA-256 over named *components*:
//!
//! - `format`: forge's output-format version ([`FORMAT_VERSION`]);
//! - `recipe`: the normalized recipe (every validated field, in a fixed order),
//!   plus its SOURCE_DATE_EPOCH and commit;
//! - `source:<n>`: each source's identity (checksum, commit, or content hash);
//! - `dep:<name>`: the key of each unit it needs built first;
//! - `env`: the build environment's identity (arch, sandbox mode, stage; in
//!   the bootstrap stage also the host toolchain's versions);
//! - `root` (hermetic stage only): the build root's identity, every package
//!   installed in it by name, version and checksum ([`root_identity`]), so a
//!   change of the root rebuilds and the host's tools do not count.
//!
//! Everything hashed is in one stable encoding ([`Fields`], netstrings), never
//! Rust `Debug` output, and a test pins a key for fixed inputs.
//!
//! The components are recorded beside the artifacts in a unit state file
//! (`out/state/<arch>/<name>.json`), written last, after the packages and the
//! index. `--explain` compares the recorded components with the new ones and
//! names exactly which input changed. A state file is only a claim: the
//! artifacts it lists are re-verified (signature, datahash, file digest) every
//! time they are used.

pub mod value;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::recipe::{Recipe, Source};

mod fields;

pub use fields::Fields;

/// Bump when anything that changes output bytes changes (tar, gzip, .PKGINFO,
/// index layout, build environment set-up).
pub const FORMAT_VERSION: u32 = 2;

/// The named inputs of one unit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inputs {
    /// Component name -> hex digest.
    pub components: BTreeMap<String, String>,
}

impl Inputs {
    /// The unit key: SHA-256 over the components in name order, in the
    /// [`Fields`] encoding (`<len>:<name>,<len>:<digest>,` each).
    pub fn key(&self) -> String {
        let mut f = Fields::new();
        for (k, v) in &self.components {
            f.field(k, v);
        }
        sha256_hex(f.finish().as_bytes())
    }

    /// Set the `root` component from a build root's identity text
    /// ([`root_identity`]).
    pub fn set_root(&mut self, identity: &str) {
        self.components
            .insert("root".to_string(), sha256_hex(identity.as_bytes()));
    }

    /// Human-readable differences from `old` (what changed since the last build).
    pub fn diff(&self, old: &Inputs) -> Vec<String> {
        let mut out = Vec::new();
        for (k, v) in &self.components {
            match old.components.get(k) {
                None => out.push(format!("{} added", describe(k))),
                Some(o) if o != v => out.push(format!("{} changed", describe(k))),
                Some(_) => {}
            }
        }
        for k in old.components.keys() {
            if !self.components.contains_key(k) {
                out.push(format!("{} removed", describe(k)));
            }
        }
        out
    }
}

fn describe(component: &str) -> String {
    match component.split_once(':') {
        Some(("source", n)) => format!("source #{n}"),
        Some(("dep", n)) => format!("build dependency `{n}`"),
        _ => match component {
            "recipe" => "recipe".to_string(),
            "env" => "build environment".to_string(),
            "root" => "build root".to_string(),
            "format" => "forge output format".to_string(),
            other => other.to_string(),
        },
    }
}

use crate::util::sha256_hex;

/// The normalized recipe: every validated field in a fixed order, in the
/// stable [`Fields`] encoding, so that formatting, comments and key order in
/// the TOML file do not matter, and neither does how Rust prints a type.
pub fn normalized_recipe(recipe: &Recipe, source_date_epoch: i64, commit: Option<&str>) -> String {
    let mut f = Fields::new();
    f.field("name", &recipe.name)
        .field("version", recipe.version.as_str())
        .field("release", &recipe.release.to_string())
        .field("description", &recipe.description)
        .field("url", &recipe.url)
        .field("license", &recipe.license)
        .list("arch", &recipe.arch)
        .list("depends", &recipe.depends)
        .list("makedepends", &recipe.makedepends)
        .list("host_tools", &recipe.host_tools);
    // Written only when declared, so keys of recipes that do not say stay
    // as they were; the stage in effect is in the `env` component.
    if let Some(stage) = recipe.stage {
        f.field("stage", stage.as_str());
    }
    f.list("provides", &recipe.provides)
        .field("builddir", recipe.builddir.as_deref().unwrap_or(""))
        .field("build", &recipe.build)
        .field("check", &recipe.check);
    let o = recipe.options;
    let flag = |b: bool| if b { "1" } else { "0" };
    f.field("option:check", flag(!o.no_check))
        .field("option:strip", flag(!o.no_strip))
        .field("option:net", flag(o.net))
        .field("option:suid", flag(o.suid));
    f.field("subpackages", &recipe.subpackages.len().to_string());
    for sp in &recipe.subpackages {
        f.field("subpackage", &sp.name)
            .field("description", &sp.description)
            .list("paths", &sp.paths)
            .list("depends", &sp.depends)
            .list("provides", &sp.provides);
    }
    f.field("sources", &recipe.sources.len().to_string());
    for src in &recipe.sources {
        // How a source is placed (file name, extract, dest) shapes the build.
        source_fields(&mut f, src);
    }
    f.field("source_date_epoch", &source_date_epoch.to_string())
        .field("commit", commit.unwrap_or(""));
    f.finish()
}

fn source_fields(f: &mut Fields, src: &Source) {
    match src {
        Source::Http {
            url,
            checksum,
            filename,
            extract,
        } => f
            .field("source", "http")
            .field("url", url)
            .field("checksum", &checksum.to_prefixed())
            .field("filename", filename)
            .field("extract", if *extract { "1" } else { "0" }),
        Source::Git {
            url,
            commit,
            tag,
            dest,
        } => f
            .field("source", "git")
            .field("url", url)
            .field("commit", commit)
            .field("tag", tag.as_deref().unwrap_or(""))
            .field("dest", dest),
        Source::Local { path } => f.field("source", "local").field("path", path),
    };
}

/// Assemble a unit's inputs.
///
/// `source_digests` are the sources' identities in recipe order, as
/// [`crate::source::input_digests`] gives them (checksums, commits, content
/// digests of local files), so no download is needed to plan.
pub fn unit_inputs(
    recipe: &Recipe,
    source_date_epoch: i64,
    commit: Option<&str>,
    source_digests: &[String],
    dep_keys: &BTreeMap<String, String>,
    env_identity: &str,
) -> Inputs {
    let mut c = BTreeMap::new();
    c.insert("format".to_string(), FORMAT_VERSION.to_string());
    c.insert(
        "recipe".to_string(),
        sha256_hex(normalized_recipe(recipe, source_date_epoch, commit).as_bytes()),
    );
    for (i, d) in source_digests.iter().enumerate() {
        c.insert(format!("source:{}", i + 1), sha256_hex(d.as_bytes()));
    }
    for (name, key) in dep_keys {
        c.insert(format!("dep:{name}"), key.clone());
    }
    c.insert("env".to_string(), sha256_hex(env_identity.as_bytes()));
    Inputs { components: c }
}

/// The identity of a build root: each installed package as
/// `name`, `version-rN` and the hex of its `C:` checksum, the base's (from
/// the host architecture's repository) apart from the makedepends' (from
/// the target's), in install order.
pub fn root_identity<'a>(
    base: impl IntoIterator<Item = (&'a str, &'a str, &'a [u8; 20])>,
    deps: impl IntoIterator<Item = (&'a str, &'a str, &'a [u8; 20])>,
) -> String {
    let mut f = Fields::new();
    for (part, list) in [
        ("base", base.into_iter().collect::<Vec<_>>()),
        ("deps", deps.into_iter().collect()),
    ] {
        f.field("part", part);
        for (name, version, checksum) in list {
            f.field("name", name)
                .field("version", version)
                .field("checksum", &hex::encode(checksum));
        }
    }
    f.finish()
}

/// One artifact a unit produced, as recorded in its state file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactRecord {
    /// File name inside `out/repo/<arch>/`.
    pub file: String,
    /// SHA-256 of the whole file.
    pub sha256: String,
}

/// What a finished unit left behind: `out/state/<arch>/<name>.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitState {
    /// The unit key.
    pub key: String,
    /// The inputs that made the key.
    pub inputs: Inputs,
    /// The packages it produced.
    pub artifacts: Vec<ArtifactRecord>,
}

/// Why a unit must be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirtyReason {
    /// Never built (no state file).
    NeverBuilt,
    /// Some inputs changed (human-readable list).
    InputsChanged(Vec<String>),
    /// An artifact is missing or failed verification.
    ArtifactInvalid(String),
    /// Asked for explicitly (`--force` / `--rdeps` target).
    Forced,
}

impl std::fmt::Display for DirtyReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DirtyReason::NeverBuilt => f.write_str("never built"),
            DirtyReason::InputsChanged(v) => f.write_str(&v.join(", ")),
            DirtyReason::ArtifactInvalid(why) => write!(f, "artifact unusable: {why}"),
            DirtyReason::Forced => f.write_str("forced"),
        }
    }
}

/// A unit's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Freshness {
    /// Artifacts exist, verify, and match the key.
    Fresh,
    /// Must be built.
    Dirty(DirtyReason),
}

/// Path of a unit's state file.
pub fn state_path(out: &Path, arch: &str, name: &str) -> PathBuf {
    out.join("state").join(arch).join(format!("{name}.json"))
}

/// Read a unit's state file; a missing or unreadable file is `None`.
pub fn read_state(path: &Path) -> Option<UnitState> {
    let bytes = std::fs::read(path).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Decide freshness from the previous state (if any), the new inputs, and an
/// artifact check that returns `Err(why)` for a missing or invalid file.
pub fn freshness(
    previous: Option<&UnitState>,
    inputs: &Inputs,
    mut check_artifact: impl FnMut(&ArtifactRecord) -> Result<(), String>,
) -> Freshness {
    let Some(prev) = previous else {
        return Freshness::Dirty(DirtyReason::NeverBuilt);
    };
    if prev.key != inputs.key() {
        let mut changes = inputs.diff(&prev.inputs);
        if changes.is_empty() {
            changes.push("state file key mismatch".to_string());
        }
        return Freshness::Dirty(DirtyReason::InputsChanged(changes));
    }
    for a in &prev.artifacts {
        if let Err(why) = check_artifact(a) {
            return Freshness::Dirty(DirtyReason::ArtifactInvalid(format!("{}: {why}", a.file)));
        }
    }
    Freshness::Fresh
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(pairs: &[(&str, &str)]) -> Inputs {
        Inputs {
            components: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn key_is_stable_and_order_independent() {
        let a = inputs(&[("recipe", "1"), ("env", "2")]);
        let b = inputs(&[("env", "2"), ("recipe", "1")]);
        assert_eq!(a.key(), b.key());
        assert_ne!(a.key(), inputs(&[("recipe", "1"), ("env", "3")]).key());
    }

    /// A fixed recipe and fixed inputs give this exact key. If this test
    /// fails, every unit key changed: that must be deliberate (and then the
    /// pinned values are updated in the same commit).
    #[test]
    fn unit_key_is_pinned_for_a_fixed_input() {
        use crate::recipe::{Checksum, Options, Subpackage};
        let recipe = Recipe {
            dir: "/nowhere/hello".into(),
            file: "/nowhere/hello/recipe.toml".into(),
            name: "hello".into(),
            version: crate::version::Version::parse("2.12").unwrap(),
            release: 1,
            description: "Say hello".into(),
            url: "https://example.org/hello".into(),
            license: "GPL-3.0-or-later".into(),
            arch: vec!["x86_64".into(), "aarch64".into()],
            depends: vec!["so:libc.so.6".into()],
            makedepends: vec!["gettext-dev>=0.21".into()],
            host_tools: vec!["make".into()],
            stage: None,
            provides: vec![],
            sources: vec![
                Source::Http {
                    url: "https://example.org/hello-2.12.tar.gz".into(),
                    checksum: Checksum::Sha256("ab".repeat(32)),
                    filename: "hello-2.12.tar.gz".into(),
                    extract: true,
                },
                Source::Git {
                    url: "https://example.org/x.git".into(),
                    commit: "0123456789abcdef0123456789abcdef01234567".into(),
                    tag: None,
                    dest: "x".into(),
                },
                Source::Local {
                    path: "files/hello.conf".into(),
                },
            ],
            build: "./configure --prefix=/usr\nmake\nmake DESTDIR=\"$pkgdir\" install\n".into(),
            check: "make check\n".into(),
            builddir: None,
            subpackages: vec![Subpackage {
                name: "hello-doc".into(),
                description: "docs".into(),
                paths: vec!["usr/share/doc".into()],
                depends: vec![],
                provides: vec![],
            }],
            options: Options::default(),
            update: None,
        };
        let normalized = normalized_recipe(&recipe, 1_700_000_000, Some("c0ffee"));
        assert!(
            normalized.starts_with("4:name,5:hello,7:version,4:2.12,7:release,1:1,"),
            "{normalized}"
        );
        let deps = BTreeMap::from([("gettext".to_string(), "k".repeat(64))]);
        let inputs = unit_inputs(
            &recipe,
            1_700_000_000,
            Some("c0ffee"),
            &["sha256:".to_string() + &"ab".repeat(32)],
            &deps,
            "4:arch,6:x86_64,",
        );
        assert_eq!(
            sha256_hex(normalized.as_bytes()),
            inputs.components["recipe"]
        );
        assert_eq!(
            inputs.key(),
            "7d399bfb80c4eb8b735e1eb88e049cc6ecdf38798de4594e56bf2ab261782dba"
        );
    }

    #[test]
    fn diff_names_each_changed_component() {
        let old = inputs(&[
            ("recipe", "1"),
            ("source:1", "a"),
            ("dep:libgreet", "k1"),
            ("env", "e"),
        ]);
        let new = inputs(&[
            ("recipe", "1"),
            ("source:1", "b"),
            ("dep:libgreet", "k2"),
            ("source:2", "c"),
        ]);
        assert_eq!(
            new.diff(&old),
            vec![
                "build dependency `libgreet` changed",
                "source #1 changed",
                "source #2 added",
                "build environment removed",
            ]
        );
    }

    #[test]
    fn freshness_verdicts() {
        let inp = inputs(&[("recipe", "1")]);
        assert_eq!(
            freshness(None, &inp, |_| Ok(())),
            Freshness::Dirty(DirtyReason::NeverBuilt)
        );
        let state = UnitState {
            key: inp.key(),
            inputs: inp.clone(),
            artifacts: vec![ArtifactRecord {
                file: "a-1-r0.apk".into(),
                sha256: "x".into(),
            }],
        };
        assert_eq!(freshness(Some(&state), &inp, |_| Ok(())), Freshness::Fresh);
        assert_eq!(
            freshness(Some(&state), &inp, |_| Err("missing".into())),
            Freshness::Dirty(DirtyReason::ArtifactInvalid("a-1-r0.apk: missing".into()))
        );
        let changed = inputs(&[("recipe", "2")]);
        assert_eq!(
            freshness(Some(&state), &changed, |_| Ok(())),
            Freshness::Dirty(DirtyReason::InputsChanged(vec!["recipe changed".into()]))
        );
    }
}
