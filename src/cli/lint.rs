//! `forge lint`: load every recipe (and image file) and print every problem
//! with its location, without building anything. Exit status 1 when any
//! problem was found.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

use crate::graph::UnitGraph;
use crate::image::def as image_def;
use crate::recipe;
use crate::settings::Settings;

/// Arguments of `forge lint`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Recipes or images to check (default: all).
    #[arg(value_name = "NAME")]
    names: Vec<String>,
}

/// Run `forge lint`.
pub fn run(settings: &Settings, args: Args) -> Result<ExitCode> {
    let shell = &settings.shell;
    let recipes_dir = settings.recipes_dir();
    let images_dir = settings.images_dir();
    let all_recipes = recipe::names(&recipes_dir)?;
    let all_images = image_names(&images_dir)?;

    let mut problems: Vec<String> = Vec::new();
    if args.names.is_empty() {
        for stray in folders_without_recipe(&recipes_dir)? {
            shell.warn(format!(
                "recipes/{stray}/ has no {}; skipped",
                recipe::RECIPE_FILE
            ));
        }
    }
    let (recipe_names, image_names) = if args.names.is_empty() {
        (all_recipes.clone(), all_images.clone())
    } else {
        let mut r = Vec::new();
        let mut i = Vec::new();
        for name in &args.names {
            let is_recipe = all_recipes.contains(name);
            let is_image = all_images.contains(name);
            if is_recipe {
                r.push(name.clone());
            }
            if is_image {
                i.push(name.clone());
            }
            if !is_recipe && !is_image {
                // `find` words the error, with a did-you-mean hint
                if let Err(e) = recipe::find(&recipes_dir, name) {
                    problems.push(e.to_string());
                }
            }
        }
        (r, i)
    };

    let mut loaded = Vec::new();
    for name in &recipe_names {
        match recipe::find(&recipes_dir, name) {
            Ok(r) => loaded.push(r),
            Err(e) => problems.extend(e.problems().into_iter().map(|p| with_causes(p))),
        }
    }
    // Cross-recipe checks only make sense over the whole set.
    if args.names.is_empty()
        && problems.is_empty()
        && let Err(e) = UnitGraph::new(&loaded, &Default::default())
    {
        problems.push(e.to_string());
    }
    for name in &image_names {
        if let Err(e) = image_def::load_any(&image_def::path_for(&images_dir, name)) {
            problems.push(with_causes(&e));
        }
    }

    for p in &problems {
        shell.error(p);
        shell.event(&serde_json::json!({ "event": "lint-problem", "message": p }));
    }
    let summary = format!(
        "{} recipe{}, {} image{}: {}",
        recipe_names.len(),
        plural(recipe_names.len()),
        image_names.len(),
        plural(image_names.len()),
        match problems.len() {
            0 => "no problems".to_string(),
            1 => "1 problem".to_string(),
            n => format!("{n} problems"),
        }
    );
    shell.status("Checked", summary);
    Ok(if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// The error text followed by its causes (`: cause`), on one line.
fn with_causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(&format!(": {c}"));
        cause = c.source();
    }
    text
}

/// Folders under `recipes/` that hold no `recipe.toml` (a misnamed file?).
fn folders_without_recipe(dir: &Path) -> Result<Vec<String>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for entry in entries {
        let path = entry?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if path.is_dir() && !name.starts_with('.') && !path.join(recipe::RECIPE_FILE).is_file() {
            out.push(name.into_owned());
        }
    }
    out.sort();
    Ok(out)
}

/// Image names: the stems of `images/*.toml`, sorted.
fn image_names(dir: &Path) -> Result<Vec<String>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(anyhow::Error::new(e).context(format!("listing {}", dir.display()))),
    };
    let mut out = Vec::new();
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_some_and(|x| x == "toml")
            && path.is_file()
            && let Some(stem) = path.file_stem()
        {
            out.push(stem.to_string_lossy().into_owned());
        }
    }
    out.sort();
    Ok(out)
}
