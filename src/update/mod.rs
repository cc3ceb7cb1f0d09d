//! `forge update`: notice new upstream versions in release feeds, and
//! propose them as branches (optionally prebuilt and published under a
//! prebuild tag). Applying anything stays a human step.
//!
//! Flow (see `docs/update.md`):
//! 1. recipes with an `[update]` section → feed URLs (`feed_url`);
//! 2. every feed fetched at once, bounded and paced (`fetch`), conditionally
//!    with the validators kept in `<cache>/update/feeds.json` (`state`);
//! 3. per recipe, alone (one recipe's failure never stops another): tags
//!    (`feed`, pure) → the newest allowed version by apk order (`pick`,
//!    pure); when it is above the version in `HEAD`:
//! 4. the new sources are downloaded into the distfile cache and hashed
//!    (`download`, through `source`);
//! 5. `recipe.toml` is edited with `toml_edit` (`rewrite`): version, release 0,
//!    checksums; direct build dependents get `release + 1` (`dependents`);
//!    every edited text must load as a recipe;
//! 6. with prebuild: the commit's tree is built and published under
//!    `VERSION-prebuild` (`prebuild`); a failure leaves no branch;
//! 7. the commit gets its branch, `update/NAME-VERSION` (`git`). The current
//!    branch, index and work tree are never touched.
//!
//! Nothing is written for a recipe before its downloads are verified, and
//! its branch appears last, so a failure at any step leaves the repository
//! as it was for that recipe.

mod dependents;
mod download;
pub mod feed;
pub mod fetch;
pub mod git;
pub mod pick;
pub mod prebuild;
mod recipe_run;
pub mod rewrite;
pub mod state;

use std::collections::BTreeMap;

pub use fetch::FetchOptions;
pub use prebuild::Prebuild;
pub use recipe_run::Outcome;

use crate::recipe::{self, Feed, Recipe};
use crate::settings::Settings;

/// What `forge update` does.
pub struct UpdateOptions<'a> {
    /// Recipes to check (empty: every recipe with an `[update]` section).
    pub names: Vec<String>,
    /// Report only: no download, no edit, no branch.
    pub dry_run: bool,
    /// How feeds are fetched.
    pub fetch: FetchOptions,
    /// Where `github = "…"` feeds live (default `https://github.com`).
    pub github_url: String,
    /// Build and publish each update before its branch is made.
    pub prebuild: Option<&'a dyn Prebuild>,
}

/// Why an update step failed (always reported against one recipe).
#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    /// The feed could not be fetched.
    #[error("feed {0}")]
    Fetch(String, #[source] fetch::FetchError),
    /// The feed could not be read.
    #[error("feed {0}")]
    Feed(String, #[source] feed::FeedError),
    /// The checksum list could not be fetched.
    #[error("checksum list {0}")]
    Sums(String, #[source] fetch::FetchError),
    /// A download failed or did not match.
    #[error("downloading the new sources")]
    Source(#[source] Box<crate::source::SourceError>),
    /// The recipe could not be loaded or the edit would not load.
    #[error(transparent)]
    Recipe(Box<recipe::RecipeError>),
    /// The edit could not be made.
    #[error(transparent)]
    Rewrite(#[from] rewrite::RewriteError),
    /// git failed.
    #[error(transparent)]
    Git(#[from] git::GitError),
    /// Something about the recipe or the files does not fit.
    #[error("{0}")]
    Invalid(String),
    /// The prebuild failed.
    #[error("prebuild")]
    Prebuild(#[source] anyhow::Error),
}

impl From<recipe::RecipeError> for UpdateError {
    fn from(e: recipe::RecipeError) -> Self {
        UpdateError::Recipe(Box::new(e))
    }
}

/// The feed URL of a recipe's `[update]` section.
pub fn feed_url(feed: &Feed, github_url: &str) -> (String, feed::Shape) {
    match feed {
        Feed::GitHub { repo, tags } => {
            let which = if *tags { "tags" } else { "releases" };
            let base = github_url.trim_end_matches('/');
            (format!("{base}/{repo}/{which}.atom"), feed::Shape::GitHub)
        }
        Feed::GitLab { project, tags } => {
            let base = if project.starts_with("http://") || project.starts_with("https://") {
                project.clone()
            } else {
                format!("https://{project}")
            };
            let path = if *tags {
                "-/tags?format=atom"
            } else {
                "-/releases.atom"
            };
            (format!("{base}/{path}"), feed::Shape::GitLab)
        }
        Feed::Url(u) => (u.clone(), feed::Shape::Generic),
    }
}

/// Check every selected recipe's feed; returns one outcome per recipe,
/// sorted by name. Per-recipe failures are outcomes, not errors.
pub fn run(settings: &Settings, opts: &UpdateOptions<'_>) -> Vec<(String, Outcome)> {
    let dir = settings.recipes_dir();
    let names = if opts.names.is_empty() {
        recipe::names(&dir).unwrap_or_default()
    } else {
        opts.names.clone()
    };
    let all = recipe::names(&dir).unwrap_or_default();
    let everyone: Vec<Recipe> = all
        .iter()
        .filter_map(|n| recipe::find(&dir, n).ok())
        .collect();
    let mut outcomes = Vec::new();
    let mut work: Vec<(Recipe, String, feed::Shape)> = Vec::new();
    for name in &names {
        match recipe::find(&dir, name) {
            Ok(r) => match &r.update {
                Some(spec) => {
                    let (url, shape) = feed_url(&spec.feed, &opts.github_url);
                    work.push((r, url, shape));
                }
                None if opts.names.is_empty() => {}
                None => outcomes.push((
                    name.clone(),
                    Outcome::Failed(format!("recipe `{name}` has no [update] section")),
                )),
            },
            Err(e) => outcomes.push((
                name.clone(),
                Outcome::Failed(format!("recipe `{name}`: {}", crate::util::error_chain(&e))),
            )),
        }
    }
    let mut state = state::State::load(&settings.cache);
    let mut urls: Vec<String> = work.iter().map(|(_, u, _)| u.clone()).collect();
    urls.sort();
    urls.dedup();
    let answers = fetch::fetch_all(&urls, &state.feeds, &opts.fetch);
    let mut tags_by_url = BTreeMap::new();
    for (url, answer) in answers {
        let shape = work
            .iter()
            .find(|w| w.1 == url)
            .map_or(feed::Shape::Generic, |w| w.2);
        let tags = recipe_run::tags_of(&url, answer, shape, &mut state);
        tags_by_url.insert(url, tags);
    }
    let ctx = recipe_run::Context {
        settings,
        opts,
        everyone: &everyone,
        repo: git::Repo::open(&settings.root).ok(),
    };
    for (r, url, _) in &work {
        let outcome = match &tags_by_url[url] {
            Ok((tags, fresh)) => ctx.check(r, url, tags, *fresh),
            Err(e) => Outcome::Failed(format!(
                "recipe `{}`: {}",
                r.name,
                crate::util::error_chain(e)
            )),
        };
        outcomes.push((r.name.clone(), outcome));
    }
    if let Err(e) = state.save() {
        settings.shell.warn(format!(
            "cannot save the feed state {}: {e}",
            state::State::path_in(&settings.cache).display()
        ));
    }
    outcomes.sort_by(|a, b| a.0.cmp(&b.0));
    outcomes
}
