//! `forge graph [NAME...] [--dot]`: the dependency graph, in build order.

use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitCode;

use anyhow::Result;

use crate::graph::UnitGraph;
use crate::recipe;
use crate::settings::Settings;

/// Arguments of `forge graph`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Limit to these recipes and what they need (default: all).
    #[arg(value_name = "NAME")]
    names: Vec<String>,
    /// Also include what depends on the named recipes.
    #[arg(long, requires = "names")]
    rdeps: bool,
    /// Print Graphviz dot instead of `name: deps` lines.
    #[arg(long)]
    dot: bool,
}

/// Run `forge graph`.
pub fn run(settings: &Settings, args: Args) -> Result<ExitCode> {
    let recipes = recipe::load_all(&settings.recipes_dir())?;
    let graph = UnitGraph::new(&recipes, &BTreeMap::new())?;
    let subset: BTreeSet<String> = if args.names.is_empty() {
        graph.names().map(str::to_string).collect()
    } else if args.rdeps {
        let up = graph.reverse_closure(&args.names)?;
        graph.closure(&up.into_iter().collect::<Vec<_>>())?
    } else {
        graph.closure(&args.names)?
    };
    let text = if args.dot {
        graph.to_dot(&subset)
    } else {
        graph.to_text(&subset)
    };
    settings.shell.data(text.trim_end());
    Ok(ExitCode::SUCCESS)
}
