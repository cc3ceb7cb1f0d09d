//! `forge image NAME`: build `images/NAME.toml` into an OCI image layout.

use std::process::ExitCode;

use anyhow::{Context as _, Result};

use crate::image::{self, BuildOptions};
use crate::settings::Settings;

/// Arguments of `forge image`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The image to build (`images/NAME.toml`).
    #[arg(value_name = "NAME")]
    name: String,
}

/// Run `forge image`.
pub fn run(settings: &Settings, args: Args) -> Result<ExitCode> {
    let file = image::def::path_for(&settings.images_dir(), &args.name);
    if let Ok(image::def::Definition::Os(_)) = image::def::load_any(&file) {
        return super::os::build(settings, &args.name);
    }
    let opts = BuildOptions {
        name: args.name.clone(),
    };
    // One writer at a time under out/ (and stale temp files cleaned first).
    let _lock = crate::pipeline::OutLock::acquire(settings)?;
    let built =
        image::build(settings, &opts).with_context(|| format!("building image `{}`", args.name))?;
    settings.shell.event(&serde_json::json!({
        "event": "image",
        "name": built.name,
        "dir": built.dir,
        "digest": built.index.digest.as_str(),
        "epoch": built.epoch,
        "manifests": built.arches.iter().map(|a| serde_json::json!({
            "arch": a.arch,
            "digest": a.manifest.digest.as_str(),
            "layers": a.layers.iter().map(|l| serde_json::json!({
                "digest": l.blob.descriptor.digest.as_str(),
                "diff_id": l.blob.diff_id.as_str(),
                "size": l.blob.descriptor.size,
                "title": l.title,
                "packages": l.packages,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "sboms": built.sboms,
    }));
    if !settings.shell.is_json() {
        settings.shell.data(built.index.digest.as_str());
    }
    Ok(ExitCode::SUCCESS)
}
