//! OS images (`kind = "os"` in `images/NAME.toml`) as units of the build
//! plan: `os:NAME`, planned for its profile's architecture beside the
//! packages and container images, built by `forge build` only when asked
//! for (`forge build os:NAME`, `os:NAME` in forge.toml's `default-targets`,
//! or `--unit os:NAME`), since its packages (a kernel) are not among the
//! default targets.
//!
//! Its key is made of named components covering what changes the disk's
//! bytes:
//!
//! - `writer`: the format version of forge's OS writer
//!   ([`crate::os::WRITER_FORMAT`]);
//! - `definition`: the parsed definition, every field in a fixed order in
//!   the stable [`crate::plan::Fields`] encoding (as a recipe's), so a
//!   comment or a blank line in `images/NAME.toml` changes nothing;
//! - `seed`: the image name every identifier derives from
//!   ([`crate::os::seed::Seed::for_image`]);
//! - `env-sde`: `SOURCE_DATE_EPOCH` from the environment;
//! - `dep:<unit>`: the key of every package unit making one of its packages
//!   (a unit key fixes its packages' bytes), and of every container image
//!   unit of its `oem-images`; `oem-image:<name>`: the digest of the
//!   `index.json` of an `oem-images` layout built earlier but not planned;
//! - `pkg:<name>`: the identity (`C:`) of the index entry of a package no
//!   planned unit makes, and `index:<arch>` the identities of every index
//!   entry no planned unit makes (runtime dependencies resolve among them).
//!
//! A package that no planned unit makes and the repository lacks (`linux`
//! before any kernel recipe exists) makes the unit *blocked*: shown with the
//! reason, never built, given no CI job. The state
//! (`out/state/os/NAME.json`) records the key and the disk's file name; the
//! unit is fresh when the key matches and the disk is still there.

use std::collections::BTreeMap;
use std::fs;
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

use super::PipelineError;
use super::report::{Report, UnitReport, Verdict};
use crate::apk::index::IndexEntry;
use crate::graph::dep_name;
use crate::image::def::{self, Definition, OsDef};
use crate::plan::value::{PlannedUnit, UnitKind};
use crate::plan::{self, ArtifactRecord, Inputs, UnitState};
use crate::recipe::Recipe;
use crate::settings::Settings;

/// The prefix of OS unit names.
pub const PREFIX: &str = "os:";

use crate::util::sha256_hex;

/// Package names (recipe, subpackage and provided names) → the recipe that
/// makes them.
pub(super) fn providers(recipes: &[Recipe]) -> BTreeMap<String, String> {
    let mut p = BTreeMap::new();
    for r in recipes {
        p.insert(r.name.clone(), r.name.clone());
        for s in &r.subpackages {
            p.insert(s.name.clone(), r.name.clone());
        }
        for d in r
            .provides
            .iter()
            .chain(r.subpackages.iter().flat_map(|s| &s.provides))
        {
            p.entry(dep_name(d).to_string())
                .or_insert_with(|| r.name.clone());
        }
    }
    p
}

/// Every OS definition of `images/` (invalid files are left to
/// `forge os build`, which reports them).
pub(super) fn definitions(settings: &Settings) -> Result<Vec<OsDef>, PipelineError> {
    let dir = settings.images_dir();
    Ok(super::images::image_names(&dir)?
        .into_iter()
        .filter_map(|n| match def::load_any(&def::path_for(&dir, &n)) {
            Ok(Definition::Os(d)) => Some(*d),
            _ => None,
        })
        .collect())
}

/// The recipes the OS units named in `targets` need (their packages'
/// makers), for the selection.
pub(super) fn target_recipes(
    defs: &[OsDef],
    targets: &[String],
    providers: &BTreeMap<String, String>,
) -> Vec<String> {
    defs.iter()
        .filter(|d| {
            targets
                .iter()
                .any(|t| t.strip_prefix(PREFIX) == Some(&d.name))
        })
        .flat_map(|d| &d.packages)
        .filter_map(|p| providers.get(dep_name(p)).cloned())
        .collect()
}

/// What planning OS units needs from the package plan.
pub(super) struct Context<'a> {
    pub arch: &'a str,
    /// forge's output folder (built container image layouts).
    pub out: &'a std::path::Path,
    /// The package and container image units planned so far.
    pub units: &'a [PlannedUnit],
    pub providers: &'a BTreeMap<String, String>,
    pub index: &'a [IndexEntry],
    /// Identities of the index entries no planned unit makes.
    pub foreign: &'a [(String, [u8; 20])],
}

/// Plan an `os:NAME` unit for every OS definition whose profile is for
/// `cx.arch`.
pub(super) fn plan(
    settings: &Settings,
    defs: &[OsDef],
    cx: &Context<'_>,
) -> Result<Vec<(PlannedUnit, Inputs)>, PipelineError> {
    let mut foreign = Sha256::new();
    for (file, identity) in cx.foreign {
        foreign.update(format!("{file} {}\n", hex::encode(identity)));
    }
    let foreign = hex::encode(foreign.finalize());
    let mut out = Vec::new();
    for d in defs.iter().filter(|d| d.profile.arch() == cx.arch) {
        let mut c = BTreeMap::new();
        c.insert("writer".to_string(), crate::os::WRITER_FORMAT.to_string());
        c.insert(
            "definition".to_string(),
            sha256_hex(normalized_definition(d).as_bytes()),
        );
        c.insert("seed".to_string(), d.name.clone());
        let sde = std::env::var(crate::epoch::ENV).unwrap_or_default();
        c.insert("env-sde".to_string(), sha256_hex(sde.as_bytes()));
        c.insert(format!("index:{}", cx.arch), foreign.clone());
        let (deps, missing) = resolve(d, cx, &mut c);
        let inputs = Inputs { components: c };
        let mut pu = PlannedUnit {
            name: format!("{PREFIX}{}", d.name),
            kind: UnitKind::Os,
            version: d.version.clone().unwrap_or_default(),
            arch: cx.arch.to_string(),
            key: inputs.key(),
            fresh: true,
            dirty: None,
            reasons: Vec::new(),
            deps,
            arch_deps: Vec::new(),
        };
        if missing.is_empty() {
            pu.set_freshness(&freshness(settings, d, &inputs));
        } else {
            pu.set_blocked(missing.join(", "));
        }
        out.push((pu, inputs));
    }
    Ok(out)
}

/// Every field of an OS definition in a fixed order, in the stable field
/// encoding (the destructuring makes a new field a compile error here).
fn normalized_definition(d: &OsDef) -> String {
    let OsDef {
        name,
        file: _,
        description,
        version,
        profile,
        packages,
        cmdline,
        partitions,
        oem,
        oem_images,
        containers,
    } = d;
    let mut f = crate::plan::Fields::new();
    f.field("name", name)
        .field("description", description)
        .list("version", &version.iter().collect::<Vec<_>>())
        .field("profile", profile.name())
        .list("packages", packages)
        .list("cmdline", cmdline)
        .list(
            "partitions",
            &[
                partitions.esp,
                partitions.usr,
                partitions.oem,
                partitions.root,
            ]
            .map(|n| n.to_string()),
        );
    for file in oem {
        f.field("oem-path", &file.path)
            .field("oem-content", &file.content);
    }
    f.list("oem-images", oem_images);
    if let Some(c) = containers {
        f.field("containers-registry", &c.registry)
            .list("containers-key", &c.key.iter().collect::<Vec<_>>());
    }
    f.finish()
}

/// The unit's package deps (sorted) and what it needs but cannot have; the
/// key components of its packages go into `c`.
fn resolve(
    d: &OsDef,
    cx: &Context<'_>,
    c: &mut BTreeMap<String, String>,
) -> (Vec<String>, Vec<String>) {
    let mut deps = std::collections::BTreeSet::new();
    let mut missing = Vec::new();
    for p in &d.packages {
        let name = dep_name(p);
        let planned = cx
            .providers
            .get(name)
            .and_then(|origin| cx.units.iter().find(|u| &u.name == origin));
        if let Some(u) = planned {
            c.insert(format!("dep:{}", u.name), u.key.clone());
            deps.insert(u.name.clone());
        } else if let Some(e) = cx.index.iter().find(|e| e.name == name) {
            c.insert(format!("pkg:{name}"), hex::encode(e.checksum));
        } else if let Some(origin) = cx.providers.get(name) {
            missing.push(format!(
                "needs `{name}` (recipe `{origin}`), which is neither selected nor in the repository"
            ));
        } else {
            missing.push(format!(
                "needs `{name}`, which no recipe makes and the repository lacks"
            ));
        }
    }
    for image in &d.oem_images {
        let unit = format!("image:{image}");
        if let Some(u) = cx.units.iter().find(|u| u.name == unit) {
            c.insert(format!("dep:{unit}"), u.key.clone());
            deps.insert(unit);
            continue;
        }
        // Not planned (e.g. `forge build os:NAME` leaves images out): the
        // layout built earlier, by its `index.json` digest.
        let index = cx.out.join("images").join(image).join("index.json");
        match fs::read(&index) {
            Ok(bytes) => {
                c.insert(format!("oem-image:{image}"), sha256_hex(&bytes));
            }
            Err(_) => missing.push(format!(
                "needs the image `{image}` (oem-images), which is neither planned nor built"
            )),
        }
    }
    (deps.into_iter().collect(), missing)
}

fn freshness(settings: &Settings, d: &OsDef, inputs: &Inputs) -> plan::Freshness {
    let previous = plan::read_state(&plan::state_path(&settings.out, "os", &d.name));
    let dir = settings.out.join("os");
    plan::freshness(previous.as_ref(), inputs, |a| {
        let meta = fs::metadata(dir.join(&a.file)).map_err(|e| format!("cannot read: {e}"))?;
        meta.is_file()
            .then_some(())
            .ok_or_else(|| "not a file".to_string())
    })
}

/// Build the OS units in `units` (plan units with their inputs) that are
/// dirty, in order; report the fresh and blocked ones too.
pub(super) fn build(settings: &Settings, units: &[(&PlannedUnit, &Inputs)], report: &mut Report) {
    for (u, inputs) in units {
        let name = u.name.trim_start_matches(PREFIX);
        let t = Instant::now();
        let verdict = if u.fresh {
            Verdict::Fresh
        } else if u.blocked() {
            Verdict::Skipped(u.reasons.join(", "))
        } else {
            match crate::os::build(settings, name) {
                Ok(built) => {
                    if let Err(e) = record(settings, name, &built.disk, inputs) {
                        settings.shell.warn(format!(
                            "could not record the state of OS image {name}: {e}"
                        ));
                    }
                    Verdict::Built
                }
                Err(e) => Verdict::Failed(crate::util::error_chain(&e)),
            }
        };
        report.units.push(UnitReport {
            name: u.name.clone(),
            version: u.version.clone(),
            verdict,
            elapsed: if u.fresh { Duration::ZERO } else { t.elapsed() },
        });
    }
}

fn record(
    settings: &Settings,
    name: &str,
    disk: &std::path::Path,
    inputs: &Inputs,
) -> std::io::Result<()> {
    let file = disk
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let state = UnitState {
        key: inputs.key(),
        inputs: inputs.clone(),
        // A disk is large: its presence is checked, not its digest (the
        // manifest beside it carries the root hash).
        artifacts: vec![ArtifactRecord {
            file,
            sha256: String::new(),
        }],
    };
    let json = serde_json::to_vec_pretty(&state).map_err(std::io::Error::other)?;
    crate::util::write_atomic(&plan::state_path(&settings.out, "os", name), &json, None)
}
