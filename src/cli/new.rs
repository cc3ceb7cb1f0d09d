//! `forge new`.

use std::process::ExitCode;

use anyhow::Result;

use crate::settings::Settings;

/// Arguments of `forge new`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `forge new`.
pub fn run(_settings: &Settings, _args: Args) -> Result<ExitCode> {
    anyhow::bail!("forge new is not wired yet")
}
