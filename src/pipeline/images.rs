//! Images as part of `forge build`: every `images/NAME.toml` whose inputs
//! changed is assembled again.
//!
//! An image's key hashes its definition file, the signed index of every
//! architecture it uses (which names each package by identity), the git
//! facts of the images folder (they feed the `created` and `revision`
//! annotations), `SOURCE_DATE_EPOCH` from the environment, and forge's
//! output-format version. The key is recorded in `out/state/images/NAME.json`
//! after the layout is in place; an image is fresh when the key matches and
//! its layout's `index.json` still exists.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

use super::report::{Report, UnitReport, Verdict};
use crate::image::{self, BuildOptions};
use crate::settings::Settings;
use crate::util::write_atomic;

/// Building images failed before any image was tried.
#[derive(Debug, thiserror::Error)]
pub enum ImagesError {
    /// The images folder could not be read.
    #[error("reading {}", path.display())]
    Io {
        /// The folder.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// Names of `images/*.toml`, sorted.
pub fn image_names(images_dir: &Path) -> Result<Vec<String>, ImagesError> {
    let mut names = Vec::new();
    let items = match fs::read_dir(images_dir) {
        Ok(i) => i,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(names),
        Err(source) => {
            return Err(ImagesError::Io {
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

fn image_key(settings: &Settings, name: &str) -> Option<String> {
    let file = image::def::path_for(&settings.images_dir(), name);
    let def = image::def::load(&file).ok()?;
    let mut h = Sha256::new();
    h.update(format!("format={}\n", crate::plan::FORMAT_VERSION));
    h.update(fs::read(&file).ok()?);
    for arch in &def.archs {
        h.update(format!("arch={arch}\n"));
        let index = settings.repo_dir().join(arch).join(crate::repo::INDEX_FILE);
        h.update(fs::read(index).unwrap_or_default());
    }
    if let Ok(git) = crate::recipe::git_info_at(&settings.images_dir()) {
        h.update(format!(
            "sde={} commit={}\n",
            git.source_date_epoch,
            git.commit.unwrap_or_default()
        ));
    }
    h.update(format!(
        "env-sde={}\n",
        std::env::var("SOURCE_DATE_EPOCH").unwrap_or_default()
    ));
    Some(hex::encode(h.finalize()))
}

fn state_path(settings: &Settings, name: &str) -> PathBuf {
    settings
        .out
        .join("state")
        .join("images")
        .join(format!("{name}.json"))
}

/// Build every image whose key changed; returns a report like the package one.
pub fn build_changed(settings: &Settings, explain: bool) -> Result<Report, ImagesError> {
    let started = Instant::now();
    let mut report = Report {
        what: "images",
        ..Report::default()
    };
    for name in image_names(&settings.images_dir())? {
        let key = image_key(settings, &name);
        let state = state_path(settings, &name);
        let recorded = fs::read_to_string(&state).ok();
        let layout_ok = settings
            .out
            .join("images")
            .join(&name)
            .join("index.json")
            .is_file();
        let fresh =
            key.is_some() && recorded.as_deref().map(str::trim) == key.as_deref() && layout_ok;
        if explain {
            let why = if fresh {
                "fresh".to_string()
            } else if recorded.is_none() || !layout_ok {
                "dirty: never built".to_string()
            } else {
                "dirty: definition or packages changed".to_string()
            };
            settings
                .shell
                .status("Explain", format!("image {name}: {why}"));
        }
        if fresh {
            report.units.push(UnitReport {
                name: format!("image:{name}"),
                version: String::new(),
                verdict: Verdict::Fresh,
                elapsed: Duration::ZERO,
            });
            continue;
        }
        let t = Instant::now();
        let verdict = match image::build(settings, &BuildOptions { name: name.clone() }) {
            Ok(_) => {
                // image::build reports the digest and folder itself.

                if let Some(k) = key
                    && let Err(e) = write_atomic(&state, k.as_bytes(), None)
                {
                    settings
                        .shell
                        .warn(format!("could not record the state of image {name}: {e}"));
                }
                Verdict::Built
            }
            Err(e) => {
                let mut msg = e.to_string();
                let mut c = std::error::Error::source(&e);
                while let Some(cause) = c {
                    msg.push_str(&format!(": {cause}"));
                    c = cause.source();
                }
                Verdict::Failed(msg)
            }
        };
        report.units.push(UnitReport {
            name: format!("image:{name}"),
            version: String::new(),
            verdict,
            elapsed: t.elapsed(),
        });
    }
    report.elapsed = started.elapsed();
    Ok(report)
}
