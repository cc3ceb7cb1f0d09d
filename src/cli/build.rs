//! `forge build`.

use std::process::ExitCode;

use anyhow::Result;

use crate::settings::Settings;

/// Arguments of `forge build`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `forge build`.
pub fn run(_settings: &Settings, _args: Args) -> Result<ExitCode> {
    anyhow::bail!("forge build is not wired yet")
}
