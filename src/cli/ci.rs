//! `forge ci plan`: the build plan as a GitLab child pipeline (see
//! docs/ci.md). `forge pin` lives in its own file.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result};

use super::build::Selection;
use crate::cache::{Cache, CacheUrl};
use crate::ci::{self, ChildOptions};
use crate::pipeline::{self, BuildOptions};
use crate::plan::value::BuildPlan;
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

/// One plan per architecture `forge build` builds for (forge.toml's `arch`,
/// or `--arch ARCH|all`), each as `forge build --arch ARCH` plans it.
fn plans(settings: &Settings, selection: &Selection) -> Result<Vec<BuildPlan>> {
    let arches = super::build::build_arches(settings, selection.arch.as_deref());
    arches
        .iter()
        .map(|arch| {
            let opts = BuildOptions {
                arch: Some(arch.clone()),
                ..selection.options(settings)
            };
            pipeline::plan(settings, &opts).with_context(|| format!("planning for {arch}"))
        })
        .collect()
}

fn plan(settings: &Settings, a: PlanArgs) -> Result<ExitCode> {
    let plans = plans(settings, &a.selection)?;
    // Jobs repeat the selection; each adds its own `--arch`.
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
    let mut cached = std::collections::BTreeSet::new();
    if let Some(url) = &a.cache {
        let cache = Cache::open(&settings.shell, &CacheUrl::parse(url)?)?;
        for plan in &plans {
            cached.extend(
                ci::cached_units(plan, |key| cache.contains(key))
                    .context("asking the build cache")?,
            );
        }
    }
    let opts = ChildOptions {
        forge: a.forge,
        selection,
        max_needs: a.max_needs,
        cached,
        ..ChildOptions::default()
    };
    let child = ci::child_pipeline(&plans, &opts).context("writing the child pipeline")?;
    crate::util::write_atomic(&a.output, child.yaml.as_bytes(), None)
        .with_context(|| format!("writing {}", a.output.display()))?;
    let shell = &settings.shell;
    let units: usize = plans.iter().map(|p| p.units.len()).sum();
    let arches: Vec<&str> = plans.iter().map(|p| p.arch.as_str()).collect();
    shell.status(
        "Planned",
        format!(
            "{} of {} units to build for {}, {} in the cache ({} barrier jobs) -> {}",
            child.units,
            units,
            arches.join(", "),
            opts.cached.len(),
            child.barriers,
            a.output.display()
        ),
    );
    shell.event(&serde_json::json!({
        "event": "ci-plan", "units": units, "arches": arches, "dirty": child.units,
        "cached": opts.cached.len(),
        "barriers": child.barriers, "output": a.output, "pipeline": child.doc,
    }));
    Ok(ExitCode::SUCCESS)
}
