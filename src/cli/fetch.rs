//! `forge fetch`.

use std::process::ExitCode;

use anyhow::Result;

use crate::settings::Settings;

/// Arguments of `forge fetch`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `forge fetch`.
pub fn run(_settings: &Settings, _args: Args) -> Result<ExitCode> {
    anyhow::bail!("forge fetch is not wired yet")
}
