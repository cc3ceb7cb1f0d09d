//! Images as units of the build plan: every `images/NAME.toml` is planned
//! beside the packages and assembled again when its key changes.
//!
//! An image's key is made of named components, like a package unit's:
//!
//! - `format`: forge's output-format version;
//! - `definition`: the bytes of `images/NAME.toml`;
//! - `git`: the git facts of the images folder (they feed the `created` and
//!   `revision` annotations);
//! - `env-sde`: `SOURCE_DATE_EPOCH` from the environment;
//! - `dep:<unit>`: the key of every package unit of the plan (a unit key
//!   fixes its packages' bytes, and any of them may be pulled in as a
//!   runtime dependency), so the key is known before the packages are built;
//! - `index:<arch>`: the identities of the index entries no planned unit
//!   makes (packages of recipes outside the selection), and for every other
//!   architecture the image uses, that index's bytes.
//!
//! The state (`out/state/images/NAME.json`) records the key, its inputs and
//! the digest of the layout's `index.json`, after the layout is in place; an
//! image is fresh when the key matches and that `index.json` is unchanged.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

use super::PipelineError;
use super::report::{Report, UnitReport, Verdict};
use crate::image::{self, BuildOptions};
use crate::plan::value::{ArchDep, PlannedUnit, UnitKind};
use crate::plan::{self, ArtifactRecord, Inputs, UnitState};
use crate::settings::Settings;

/// Names of `images/*.toml`, sorted.
pub fn image_names(images_dir: &Path) -> Result<Vec<String>, PipelineError> {
    let mut names = Vec::new();
    let items = match fs::read_dir(images_dir) {
        Ok(i) => i,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(names),
        Err(source) => {
            return Err(PipelineError::Io {
                action: "reading",
                path: images_dir.to_path_buf(),
                source,
            });
        }
    };
    for item in items.flatten() {
        let p = item.path();
        if p.extension().is_some_and(|e| e == "toml")
            && let Some(stem) = p.file_stem()
        {
            names.push(stem.to_string_lossy().into_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// Whether `images/NAME.toml` declares `kind = "os"`: OS images are the
/// `os:NAME` units of [`super::osunits`]. An invalid file is left to the
/// container path, whose build reports it.
fn is_os_image(file: &Path) -> bool {
    matches!(
        image::def::load_any(file),
        Ok(image::def::Definition::Os(_))
    )
}

use crate::util::sha256_hex;

fn state_path(settings: &Settings, name: &str) -> PathBuf {
    plan::state_path(&settings.out, "images", name)
}

fn layout_index(settings: &Settings, name: &str) -> PathBuf {
    settings.out.join("images").join(name).join("index.json")
}

/// The inputs shared by every image: git facts, environment, format, the
/// layer compressor.
fn common_inputs(settings: &Settings) -> BTreeMap<String, String> {
    let mut c = BTreeMap::new();
    c.insert("format".to_string(), plan::FORMAT_VERSION.to_string());
    let git = crate::recipe::git_info_at(&settings.images_dir())
        .map(|g| {
            format!(
                "sde={} commit={}",
                g.source_date_epoch,
                g.commit.unwrap_or_default()
            )
        })
        .unwrap_or_else(|e| format!("unreadable: {e}"));
    c.insert("git".to_string(), sha256_hex(git.as_bytes()));
    let sde = std::env::var("SOURCE_DATE_EPOCH").unwrap_or_default();
    c.insert("env-sde".to_string(), sha256_hex(sde.as_bytes()));
    c.insert(
        "layer-gzip".to_string(),
        crate::image::layer::COMPRESSOR.to_string(),
    );
    c
}

/// Plan every image: a unit per `images/NAME.toml`, needing every package
/// unit of `packages`. `foreign` lists the index entries (file name, identity)
/// of `arch` that no planned unit makes.
pub(super) fn plan(
    settings: &Settings,
    arch: &str,
    packages: &[PlannedUnit],
    foreign: &[(String, [u8; 20])],
) -> Result<Vec<(PlannedUnit, Inputs)>, PipelineError> {
    let mut common = common_inputs(settings);
    for u in packages {
        common.insert(format!("dep:{}", u.name), u.key.clone());
    }
    let mut h = Sha256::new();
    for (file, identity) in foreign {
        h.update(format!("{file} {}\n", hex::encode(identity)));
    }
    common.insert(format!("index:{arch}"), hex::encode(h.finalize()));
    let mut deps: Vec<String> = packages.iter().map(|u| u.name.clone()).collect();
    deps.sort();
    let mut out = Vec::new();
    for name in image_names(&settings.images_dir())? {
        let file = image::def::path_for(&settings.images_dir(), &name);
        if is_os_image(&file) {
            continue;
        }
        let bytes = fs::read(&file).map_err(|source| PipelineError::Io {
            action: "reading",
            path: file.clone(),
            source,
        })?;
        let mut c = common.clone();
        c.insert("definition".to_string(), sha256_hex(&bytes));
        // A definition that does not load is still a unit: building it
        // reports the error with the file and field.
        let def = image::def::load(&file).ok();
        let mut arch_deps = Vec::new();
        for other in def.iter().flat_map(|d| &d.archs).filter(|a| *a != arch) {
            // Its packages for `other` are built by that architecture's plan.
            arch_deps.extend(
                super::planner::recipes_for(settings, other)?
                    .into_iter()
                    .map(|r| ArchDep {
                        arch: other.clone(),
                        unit: r.name,
                    }),
            );
            let index = settings
                .repo_dir()
                .join(other)
                .join(crate::repo::INDEX_FILE);
            c.insert(
                format!("index:{other}"),
                sha256_hex(&fs::read(index).unwrap_or_default()),
            );
        }
        let inputs = Inputs { components: c };
        let previous = plan::read_state(&state_path(settings, &name));
        let layout = layout_index(settings, &name);
        let freshness = plan::freshness(previous.as_ref(), &inputs, |a| {
            let bytes = fs::read(&layout).map_err(|e| format!("cannot read: {e}"))?;
            (sha256_hex(&bytes) == a.sha256)
                .then_some(())
                .ok_or_else(|| "content differs from the recorded digest".to_string())
        });
        let mut pu = PlannedUnit {
            name: format!("image:{name}"),
            kind: UnitKind::Image,
            version: def.and_then(|d| d.version).unwrap_or_default(),
            arch: arch.to_string(),
            key: inputs.key(),
            fresh: true,
            dirty: None,
            reasons: Vec::new(),
            deps: deps.clone(),
            arch_deps,
        };
        pu.set_freshness(&freshness);
        out.push((pu, inputs));
    }
    Ok(out)
}

/// Build the images named in `dirty` (image names without `image:`), in
/// order, recording each one's state after its layout is in place. Fresh
/// images in `fresh` are reported as such.
pub(super) fn build(settings: &Settings, fresh: &[String], dirty: &[(String, &Inputs)]) -> Report {
    let started = Instant::now();
    let mut report = Report {
        what: "images",
        ..Report::default()
    };
    for name in fresh {
        report.units.push(UnitReport {
            name: format!("image:{name}"),
            version: String::new(),
            verdict: Verdict::Fresh,
            elapsed: Duration::ZERO,
        });
    }
    for (name, inputs) in dirty {
        let t = Instant::now();
        // image::build reports the digest and folder itself.
        let verdict = match image::build(settings, &BuildOptions { name: name.clone() }) {
            Ok(_) => {
                if let Err(e) = record(settings, name, inputs) {
                    settings
                        .shell
                        .warn(format!("could not record the state of image {name}: {e}"));
                }
                Verdict::Built
            }
            Err(e) => Verdict::Failed(crate::util::error_chain(&e)),
        };
        report.units.push(UnitReport {
            name: format!("image:{name}"),
            version: String::new(),
            verdict,
            elapsed: t.elapsed(),
        });
    }
    report.elapsed = started.elapsed();
    report
}

fn record(settings: &Settings, name: &str, inputs: &Inputs) -> std::io::Result<()> {
    let bytes = fs::read(layout_index(settings, name))?;
    let state = UnitState {
        key: inputs.key(),
        inputs: inputs.clone(),
        artifacts: vec![ArtifactRecord {
            file: "index.json".to_string(),
            sha256: sha256_hex(&bytes),
        }],
    };
    let json = serde_json::to_vec_pretty(&state).map_err(std::io::Error::other)?;
    crate::util::write_atomic(&state_path(settings, name), &json, None)
}
