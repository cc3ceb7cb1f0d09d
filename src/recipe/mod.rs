//! Recipes: `recipes/NAME/recipe.toml`, parsed, validated, with errors that
//! name file:line:column and the field.
//!
//! Flow: [`load`] reads one file, parses it into toml's spanned tree
//! (`parse.rs`, `sources.rs`, via the located readers in `read.rs`), checks
//! every value (`check.rs`, built-in subpackages in `defaults.rs`) and
//! returns a [`Recipe`] or every problem found. [`load_all`] does that for
//! every folder of `recipes/` and collects all problems of all recipes.
//! [`git_info`] derives `SOURCE_DATE_EPOCH` and the commit from git history.
//! The format is documented in `docs/recipes.md`.

mod check;
mod defaults;
mod error;
mod git;
mod model;
pub(crate) mod parse;
mod read;
mod sources;
mod template;
mod update;

use std::path::{Path, PathBuf};

pub use error::RecipeError;
pub use git::{DEFAULT_EPOCH, GitInfo, SdeOrigin, git_info, git_info_at, git_info_many};
pub use model::{Checksum, Feed, Options, Recipe, Source, Stage, Subpackage, UpdateSpec};
pub use parse::{DEFAULT_ARCH, SCHEMA};
pub use update::REGEX_SIZE_LIMIT;

/// The file name of a recipe inside its folder.
pub const RECIPE_FILE: &str = "recipe.toml";

/// Load and validate one recipe file (`recipes/NAME/recipe.toml`). All
/// problems in the file are reported together (as [`RecipeError::Many`] when
/// there are several).
pub fn load(path: &Path) -> Result<Recipe, RecipeError> {
    let file = absolute(path);
    let shown = error::display_path(&file);
    let text = std::fs::read_to_string(&file).map_err(|source| RecipeError::Read {
        file: shown.clone(),
        source,
    })?;
    parse::parse(&file, &shown, &text).map_err(RecipeError::from_list)
}

/// Validate recipe text as if it were the file at `path` (which need not
/// hold it): `forge update` checks a rewritten recipe before committing it.
pub fn parse_text(path: &Path, text: &str) -> Result<Recipe, RecipeError> {
    let file = absolute(path);
    let shown = error::display_path(&file);
    parse::parse(&file, &shown, text).map_err(RecipeError::from_list)
}

/// Load every recipe under `recipes_dir` (each sub-folder holding a
/// `recipe.toml`), sorted by name. Every problem of every recipe is collected
/// before failing.
pub fn load_all(recipes_dir: &Path) -> Result<Vec<Recipe>, RecipeError> {
    let mut recipes = Vec::new();
    let mut errors = Vec::new();
    for name in names(recipes_dir)? {
        match load(&recipes_dir.join(&name).join(RECIPE_FILE)) {
            Ok(r) => recipes.push(r),
            Err(RecipeError::Many(list)) => errors.extend(list),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        recipes.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(recipes)
    } else {
        Err(RecipeError::from_list(errors))
    }
}

/// Load the recipe called `name` from `recipes_dir`; an unknown name gets a
/// did-you-mean hint.
pub fn find(recipes_dir: &Path, name: &str) -> Result<Recipe, RecipeError> {
    let file = recipes_dir.join(name).join(RECIPE_FILE);
    if check::package_name(name).is_ok() && file.is_file() {
        return load(&file);
    }
    let known = names(recipes_dir).unwrap_or_default();
    let refs: Vec<&str> = known.iter().map(String::as_str).collect();
    Err(RecipeError::NotFound {
        name: name.to_string(),
        dir: recipes_dir.to_path_buf(),
        hint: error::did_you_mean(name, &refs).map(str::to_string),
    })
}

/// The names of the folders under `recipes_dir` that hold a `recipe.toml`,
/// sorted. A missing `recipes_dir` has none.
pub fn names(recipes_dir: &Path) -> Result<Vec<String>, RecipeError> {
    let list_err = |source| RecipeError::List {
        dir: recipes_dir.to_path_buf(),
        source,
    };
    let entries = match std::fs::read_dir(recipes_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(list_err(e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(list_err)?;
        if entry.path().join(RECIPE_FILE).is_file() {
            out.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    out.sort();
    Ok(out)
}

/// Check a name for `forge new`: a valid package name.
pub fn check_name(name: &str) -> Result<(), String> {
    check::package_name(name)
}

fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(path))
            .unwrap_or_else(|_| path.to_path_buf())
    }
}

#[cfg(test)]
mod tests;

/// Expand `${version}` in `text` as recipes do (any other `${…}` is an error).
pub fn expand_version(text: &str, version: &str) -> Result<String, String> {
    template::expand(text, version)
}
