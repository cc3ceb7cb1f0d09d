//! `forge build [NAME...]`: packages whose inputs changed, in dependency
//! order, then every image whose inputs changed.

use std::process::ExitCode;

use anyhow::{Context as _, Result};

use crate::pipeline::{self, BuildOptions};
use crate::settings::Settings;

/// Arguments of `forge build`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Recipes to build, with what they need (default: `default-targets`
    /// from forge.toml, or all recipes).
    #[arg(value_name = "NAME")]
    names: Vec<String>,
    /// Build every recipe, ignoring `default-targets`.
    #[arg(long, conflicts_with = "names")]
    all: bool,
    /// Also rebuild what depends on the named recipes.
    #[arg(long)]
    rdeps: bool,
    /// Rebuild the named recipes even when fresh.
    #[arg(long, requires = "names")]
    force: bool,
    /// Keep building independent recipes after a failure.
    #[arg(long)]
    keep_going: bool,
    /// Say for every unit why it is fresh or dirty.
    #[arg(long)]
    explain: bool,
    /// Plan only: show what would be built.
    #[arg(long)]
    dry_run: bool,
    /// Also sign with the legacy SHA-1 scheme (`.SIGN.RSA.`) for old apk clients.
    #[arg(long)]
    sha1_signature: bool,
    /// Skip building images after the packages.
    #[arg(long)]
    no_images: bool,
}

/// Run `forge build`.
pub fn run(settings: &Settings, args: Args) -> Result<ExitCode> {
    let targets = if args.names.is_empty() && !args.all {
        settings.default_targets.clone()
    } else {
        args.names.clone()
    };
    let opts = BuildOptions {
        targets,
        rdeps: args.rdeps,
        force: args.force,
        keep_going: args.keep_going,
        explain: args.explain,
        dry_run: args.dry_run,
        sha1_signature: args.sha1_signature,
    };
    let report = pipeline::build(settings, &opts).context("building packages")?;
    report.print(&settings.shell);
    if report.failed() {
        return Ok(ExitCode::FAILURE);
    }
    if !args.no_images && args.names.is_empty() && !args.dry_run {
        let images =
            pipeline::images::build_changed(settings, args.explain).context("building images")?;
        images.print(&settings.shell);
        if images.failed() {
            return Ok(ExitCode::FAILURE);
        }
    }
    Ok(ExitCode::SUCCESS)
}
