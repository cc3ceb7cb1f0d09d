//! `forge plan`: the build plan as a value, without building anything.
//! With `--json` it prints the plan as one JSON document (the shape is in
//! docs/ci.md); otherwise one line per unit, as `forge build --explain` does.

use std::process::ExitCode;

use anyhow::{Context as _, Result};

use super::build::Selection;
use crate::pipeline;
use crate::settings::Settings;

/// Arguments of `forge plan`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    selection: Selection,
}

/// Run `forge plan`.
pub fn run(settings: &Settings, args: Args) -> Result<ExitCode> {
    let plan = pipeline::plan(settings, &args.selection.options(settings)).context("planning")?;
    if settings.shell.is_json() {
        settings
            .shell
            .data(serde_json::to_string(&plan).context("serializing the plan")?);
    } else {
        for line in plan.explain_lines() {
            settings.shell.data(line);
        }
    }
    Ok(ExitCode::SUCCESS)
}
