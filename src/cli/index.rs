//! `forge index`: rebuild and sign `out/repo/<arch>/APKINDEX.tar.gz` from the
//! packages in each architecture folder. Only packages signed by a key in
//! `keys/` (or already in the signed index) are indexed; any other `.apk` is
//! left out with a warning naming it.

use std::process::ExitCode;

use anyhow::{Context as _, Result};

use crate::settings::Settings;
use crate::{repo, sign};

/// Arguments of `forge index`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Repository description stored in the index (at most 160 bytes).
    #[arg(short, long, value_name = "TEXT")]
    description: Option<String>,
}

/// Run `forge index`.
pub fn run(settings: &Settings, args: Args) -> Result<ExitCode> {
    let key = sign::ensure_default_key(settings).context("loading the signing key")?;
    let trusted = sign::load_trust(settings, &settings.keys_dir()).context("loading keys/")?;
    let written = repo::reindex(settings, &key, &trusted, args.description.as_deref())
        .with_context(|| format!("indexing {}", settings.repo_dir().display()))?;
    if written.is_empty() {
        settings.shell.warn(format!(
            "no architecture folders in {}",
            settings.repo_dir().display()
        ));
    }
    for path in &written {
        settings
            .shell
            .event(&serde_json::json!({"event": "index", "path": path, "key": key.name()}));
    }
    Ok(ExitCode::SUCCESS)
}
