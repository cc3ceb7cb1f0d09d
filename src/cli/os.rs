//! `forge os build NAME`: build the OS image `images/NAME.toml`
//! (`kind = "os"`) into `out/os/NAME.raw` (docs/os.md). `forge image NAME`
//! on an OS image does the same.

use std::process::ExitCode;

use anyhow::{Context as _, Result};

use crate::settings::Settings;

/// Arguments of `forge os`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Build a raw GPT disk (out/os/NAME.raw) from an OS image definition.
    Build {
        /// The OS image to build (`images/NAME.toml`, `kind = "os"`).
        #[arg(value_name = "NAME")]
        name: String,
    },
}

/// Run `forge os`.
pub fn run(settings: &Settings, args: Args) -> Result<ExitCode> {
    match args.command {
        Command::Build { name } => build(settings, &name),
    }
}

/// Build one OS image under `out/.lock`, reporting the disk and root hash.
pub(super) fn build(settings: &Settings, name: &str) -> Result<ExitCode> {
    let _lock = crate::pipeline::OutLock::acquire(settings)?;
    let built =
        crate::os::build(settings, name).with_context(|| format!("building OS image `{name}`"))?;
    let m = &built.manifest;
    settings.shell.event(&serde_json::json!({
        "event": "os-image",
        "name": m.name,
        "disk": built.disk,
        "manifest": built.manifest_path,
        "usr_root_hash": m.usr_root_hash,
        "partitions": m.partitions,
    }));
    if !settings.shell.is_json() {
        settings.shell.data(&m.usr_root_hash);
    }
    Ok(ExitCode::SUCCESS)
}
