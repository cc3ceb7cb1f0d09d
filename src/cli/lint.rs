//! `forge lint`.

use std::process::ExitCode;

use anyhow::Result;

use crate::settings::Settings;

/// Arguments of `forge lint`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `forge lint`.
pub fn run(_settings: &Settings, _args: Args) -> Result<ExitCode> {
    anyhow::bail!("forge lint is not wired yet")
}
