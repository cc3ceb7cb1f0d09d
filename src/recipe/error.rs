//! Recipe errors: every problem found in a recipe file carries its
//! `file:line:column` location, so an editor or a terminal can jump to it.

use std::ops::Range;
use std::path::{Path, PathBuf};

/// Why a recipe could not be loaded. `Display` is the complete text a user
/// needs, e.g. `recipes/x/recipe.toml:7:1: unknown field `makedepend` in
/// [package], did you mean `makedepends`?`.
#[derive(Debug, thiserror::Error)]
pub enum RecipeError {
    /// A problem at a place in a recipe file.
    #[error("{file}:{line}:{column}: {message}")]
    At {
        /// The file as shown to the user (`recipes/NAME/recipe.toml`).
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column, in characters.
        column: usize,
        /// What is wrong, naming the field.
        message: String,
    },
    /// The recipe file could not be read.
    #[error("{file}: cannot read the recipe")]
    Read {
        /// The file as shown to the user.
        file: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The recipes folder could not be listed.
    #[error("{}: cannot list the recipes folder", dir.display())]
    List {
        /// The recipes folder.
        dir: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// No recipe of that name.
    #[error("no recipe named `{name}` in {}{}", dir.display(), hint_text(hint))]
    NotFound {
        /// The requested name.
        name: String,
        /// The recipes folder searched.
        dir: PathBuf,
        /// The closest existing recipe name, if any is close.
        hint: Option<String>,
    },
    /// Reading the git history of a recipe failed.
    #[error("{}: cannot read the git history of the recipe", dir.display())]
    Git {
        /// The recipe folder.
        dir: PathBuf,
        /// The git error.
        #[source]
        source: git2::Error,
    },
    /// `SOURCE_DATE_EPOCH` in the environment is not a number of seconds.
    #[error("SOURCE_DATE_EPOCH=`{value}` is not a non-negative number of seconds")]
    InvalidEpoch {
        /// The variable's value.
        value: String,
    },
    /// Several problems (one file or many); one per line.
    #[error("{}", join(.0))]
    Many(Vec<RecipeError>),
}

fn hint_text(hint: &Option<String>) -> String {
    match hint {
        Some(h) => format!(", did you mean `{h}`?"),
        None => String::new(),
    }
}

fn join(errors: &[RecipeError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

impl RecipeError {
    /// The individual problems, with [`RecipeError::Many`] flattened.
    pub fn problems(&self) -> Vec<&RecipeError> {
        match self {
            RecipeError::Many(list) => list.iter().flat_map(RecipeError::problems).collect(),
            other => vec![other],
        }
    }

    /// One error from a list (the list itself when it holds several).
    pub(crate) fn from_list(mut list: Vec<RecipeError>) -> RecipeError {
        if list.len() == 1 {
            list.remove(0)
        } else {
            RecipeError::Many(list)
        }
    }
}

/// How a recipe file is named in messages: `recipes/NAME/recipe.toml` when it
/// sits in a `recipes/` folder (the project-relative path), else as given.
pub(crate) fn display_path(file: &Path) -> String {
    let parts: Vec<_> = file.components().rev().take(3).collect();
    if parts.len() == 3 && parts[2].as_os_str() == "recipes" {
        let name = parts[1].as_os_str().to_string_lossy();
        let leaf = parts[0].as_os_str().to_string_lossy();
        format!("recipes/{name}/{leaf}")
    } else {
        file.display().to_string()
    }
}

/// Maps byte offsets in one file to 1-based line and column.
#[derive(Debug)]
pub(crate) struct LineIndex<'t> {
    text: &'t str,
    starts: Vec<usize>,
}

impl<'t> LineIndex<'t> {
    pub(crate) fn new(text: &'t str) -> LineIndex<'t> {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { text, starts }
    }

    /// `(line, column)` of a byte offset; the column counts characters.
    pub(crate) fn locate(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.starts.partition_point(|&s| s <= offset) - 1;
        let start = self.starts[line];
        let column = self
            .text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count());
        (line + 1, column + 1)
    }
}

/// Collects located problems for one file.
#[derive(Debug)]
pub(crate) struct Problems<'t> {
    file: String,
    index: LineIndex<'t>,
    list: Vec<(usize, RecipeError)>,
}

impl<'t> Problems<'t> {
    pub(crate) fn new(file: String, text: &'t str) -> Problems<'t> {
        Problems {
            file,
            index: LineIndex::new(text),
            list: Vec::new(),
        }
    }

    /// Record a problem at the start of `span`.
    pub(crate) fn at(&mut self, span: Range<usize>, message: impl Into<String>) {
        let (line, column) = self.index.locate(span.start);
        let err = RecipeError::At {
            file: self.file.clone(),
            line,
            column,
            message: message.into(),
        };
        self.list.push((span.start, err));
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The problems in file order.
    pub(crate) fn into_errors(mut self) -> Vec<RecipeError> {
        self.list.sort_by_key(|(offset, _)| *offset);
        self.list.into_iter().map(|(_, e)| e).collect()
    }
}

/// The closest candidate to `word`, if it is a plausible typo of it.
pub(crate) fn did_you_mean<'c>(word: &str, candidates: &[&'c str]) -> Option<&'c str> {
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), *c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locate_lines_and_columns() {
        let idx = LineIndex::new("ab\ncdé\n\nx");
        let cases = [
            (0, (1, 1)),
            (1, (1, 2)),
            (3, (2, 1)),
            (7, (2, 4)),
            (8, (3, 1)),
            (9, (4, 1)),
            (99, (4, 2)),
        ];
        for (offset, want) in cases {
            assert_eq!(idx.locate(offset), want, "offset {offset}");
        }
    }

    #[test]
    fn display_paths() {
        assert_eq!(
            display_path(Path::new("/a/b/recipes/x/recipe.toml")),
            "recipes/x/recipe.toml"
        );
        assert_eq!(display_path(Path::new("/tmp/r.toml")), "/tmp/r.toml");
    }

    #[test]
    fn suggestions() {
        let fields = ["makedepends", "depends", "description"];
        assert_eq!(did_you_mean("makedepend", &fields), Some("makedepends"));
        assert_eq!(did_you_mean("descripton", &fields), Some("description"));
        assert_eq!(did_you_mean("zzz", &fields), None);
    }

    #[test]
    fn many_flattens_and_displays_one_per_line() {
        let at = |line| RecipeError::At {
            file: "f".into(),
            line,
            column: 1,
            message: "m".into(),
        };
        let e = RecipeError::Many(vec![at(1), RecipeError::Many(vec![at(2), at(3)])]);
        assert_eq!(e.problems().len(), 3);
        assert_eq!(e.to_string(), "f:1:1: m\nf:2:1: m\nf:3:1: m");
    }
}
