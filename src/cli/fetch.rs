//! `forge fetch`: make the sources of recipes present and verified in the
//! cache, without building. Useful before going offline, and to warm a cache
//! that CI then serves as a mirror.

use std::process::ExitCode;

use anyhow::{Context as _, Result};

use crate::recipe::{self, Recipe};
use crate::settings::Settings;
use crate::source;

/// Arguments of `forge fetch`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Recipes whose sources to fetch (default: all).
    #[arg(value_name = "NAME")]
    names: Vec<String>,
}

/// Run `forge fetch`.
pub fn run(settings: &Settings, args: Args) -> Result<ExitCode> {
    let dir = settings.recipes_dir();
    let recipes: Vec<Recipe> = if args.names.is_empty() {
        recipe::load_all(&dir).with_context(|| format!("loading recipes from {}", dir.display()))?
    } else {
        args.names
            .iter()
            .map(|n| recipe::find(&dir, n))
            .collect::<Result<_, _>>()?
    };
    let shell = &settings.shell;
    let mut failed = Vec::new();
    let mut count = 0usize;
    for r in &recipes {
        shell.status("Checking", format!("{} {}", r.name, r.full_version()));
        match source::fetch(settings, r) {
            Ok(fetched) => {
                count += fetched.len();
                for f in &fetched {
                    shell.verbose(format!("{} {}", f.digest, f.path.display()));
                }
                shell.event(&serde_json::json!({
                    "event": "fetched",
                    "recipe": r.name,
                    "sources": fetched.iter().map(|f| serde_json::json!({
                        "digest": f.digest,
                        "path": f.path,
                    })).collect::<Vec<_>>(),
                }));
            }
            Err(e) => {
                // Keep going: one run reports every missing source.
                let mut msg = format!("{e}");
                let mut cause = std::error::Error::source(&e);
                while let Some(c) = cause {
                    msg.push_str(&format!("\n  caused by: {c}"));
                    cause = c.source();
                }
                shell.error(msg);
                failed.push(r.name.clone());
            }
        }
    }
    if !failed.is_empty() {
        anyhow::bail!("could not fetch the sources of {}", failed.join(", "));
    }
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    shell.status(
        "Fetched",
        format!(
            "{} of {}, all verified",
            plural(count, "source"),
            plural(recipes.len(), "recipe")
        ),
    );
    Ok(ExitCode::SUCCESS)
}
