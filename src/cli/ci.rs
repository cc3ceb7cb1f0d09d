//! `forge ci plan`: the build plan as a GitLab child pipeline (see
//! docs/ci.md). `forge pin` lives in its own file.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result};

use super::build::Selection;
use crate::cache::{Cache, CacheUrl};
use crate::ci::{self, ChildOptions};
use crate::pipeline;
use crate::settings::Settings;

/// Arguments of `forge ci`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Write a GitLab child pipeline: one job per unit to build, then publish.
    Plan(PlanArgs),
}

/// Arguments of `forge ci plan`.
#[derive(Debug, clap::Args)]
struct PlanArgs {
    #[command(flatten)]
    selection: Selection,
    /// Where to write the child pipeline.
    #[arg(short, long, default_value = "child.yml", value_name = "FILE")]
    output: PathBuf,
    /// The command jobs run forge with, global flags included.
    #[arg(long, default_value = "forge", value_name = "COMMAND")]
    forge: String,
    /// Most `needs` per job before barrier jobs fan in.
    #[arg(long, default_value_t = ci::check::MAX_NEEDS, value_name = "N")]
    max_needs: usize,
    /// The build cache the jobs share: units whose key it holds get no job
    /// (their jobs pull them). Without it every dirty unit gets a job.
    #[arg(long, value_name = "oci://HOST[:PORT]/REPO")]
    cache: Option<String>,
}

/// Run `forge ci`.
pub fn run(settings: &Settings, args: Args) -> Result<ExitCode> {
    match args.command {
        Command::Plan(a) => plan(settings, a),
    }
}

fn plan(settings: &Settings, a: PlanArgs) -> Result<ExitCode> {
    let plan = pipeline::plan(settings, &a.selection.options(settings)).context("planning")?;
    let mut selection = a.selection.names.clone();
    for (on, flag) in [
        (a.selection.all, "--all"),
        (a.selection.rdeps, "--rdeps"),
        (a.selection.sha1_signature, "--sha1-signature"),
        (a.selection.no_images, "--no-images"),
    ] {
        if on {
            selection.push(flag.to_string());
        }
    }
    let cached = match &a.cache {
        Some(url) => {
            let cache = Cache::open(&settings.shell, &CacheUrl::parse(url)?)?;
            ci::cached_units(&plan, |key| cache.contains(key)).context("asking the build cache")?
        }
        None => Default::default(),
    };
    let opts = ChildOptions {
        forge: a.forge,
        selection,
        max_needs: a.max_needs,
        cached,
    };
    let child = ci::child_pipeline(&plan, &opts).context("writing the child pipeline")?;
    crate::util::write_atomic(&a.output, child.yaml.as_bytes(), None)
        .with_context(|| format!("writing {}", a.output.display()))?;
    let shell = &settings.shell;
    shell.status(
        "Planned",
        format!(
            "{} of {} units to build, {} in the cache ({} barrier jobs) -> {}",
            child.units,
            plan.units.len(),
            opts.cached.len(),
            child.barriers,
            a.output.display()
        ),
    );
    shell.event(&serde_json::json!({
        "event": "ci-plan", "units": plan.units.len(), "dirty": child.units,
        "cached": opts.cached.len(),
        "barriers": child.barriers, "output": a.output, "pipeline": child.doc,
    }));
    Ok(ExitCode::SUCCESS)
}
