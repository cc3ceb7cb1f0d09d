//! Recipes: `recipes/NAME/recipe.toml`, parsed, validated, with errors that
//! name file:line:column and the field.

mod model;

pub use model::{Checksum, Options, Recipe, Source, Subpackage};
