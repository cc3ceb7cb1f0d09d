//! One recipe's update, from its feed's tags to its branch. Every failure
//! becomes that recipe's [`Outcome::Failed`], naming the recipe and the feed.

use super::fetch::{Answer, FetchError};
use super::state::{FeedMemo, State};
use super::{UpdateError, UpdateOptions, dependents, download, feed, git, pick, rewrite};
use crate::recipe::{self, Recipe};
use crate::settings::Settings;

/// What happened to one recipe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// No allowed version above the current one.
    UpToDate {
        /// The version in `HEAD`.
        current: String,
        /// The newest allowed version in the feed, if any.
        newest: Option<String>,
        /// The feed answered 304.
        not_modified: bool,
    },
    /// The branch for the newest version exists already; nothing was done.
    AlreadyProposed {
        /// The branch.
        branch: String,
    },
    /// `--dry-run`: what would be done.
    WouldUpdate {
        /// The version in `HEAD`.
        from: String,
        /// The new version.
        to: String,
        /// The branch that would be made.
        branch: String,
        /// Recipes whose release would be bumped.
        dependents: Vec<String>,
    },
    /// A branch was made.
    Proposed {
        /// The version in `HEAD`.
        from: String,
        /// The new version.
        to: String,
        /// The new branch.
        branch: String,
        /// Its one commit.
        commit: String,
        /// Recipes whose release was bumped in the same commit.
        dependents: Vec<String>,
        /// References published by the prebuild.
        published: Vec<String>,
    },
    /// The recipe could not be updated; the message names recipe and feed.
    Failed(String),
}

/// The feed's tags and whether the feed answered 304; updates the memo.
pub(super) fn tags_of(
    url: &str,
    answer: Result<Answer, FetchError>,
    shape: feed::Shape,
    state: &mut State,
) -> Result<(Vec<String>, bool), UpdateError> {
    match answer.map_err(|e| UpdateError::Fetch(url.to_string(), e))? {
        Answer::NotModified => {
            let memo = state.feeds.get(url).cloned().unwrap_or_default();
            Ok((memo.tags, true))
        }
        Answer::Body {
            bytes,
            etag,
            last_modified,
        } => {
            let entries = feed::parse(&bytes).map_err(|e| UpdateError::Feed(url.to_string(), e))?;
            let tags: Vec<String> = entries
                .iter()
                .filter_map(|e| feed::tag_of(e, shape))
                .collect();
            state.feeds.insert(
                url.to_string(),
                FeedMemo {
                    etag,
                    last_modified,
                    tags: tags.clone(),
                },
            );
            Ok((tags, false))
        }
    }
}

/// What every recipe's update shares.
pub(super) struct Context<'a> {
    pub settings: &'a Settings,
    pub opts: &'a UpdateOptions<'a>,
    pub everyone: &'a [Recipe],
    pub repo: Option<git::Repo>,
}

impl Context<'_> {
    /// Update one recipe; never fails, a failure is an outcome.
    pub fn check(&self, r: &Recipe, url: &str, tags: &[String], not_modified: bool) -> Outcome {
        match self.try_check(r, tags, not_modified) {
            Ok(o) => o,
            Err(e) => Outcome::Failed(format!(
                "recipe `{}` (feed {url}): {}",
                r.name,
                crate::util::error_chain(&e)
            )),
        }
    }

    /// The recipe text in `HEAD` (the work tree's without a repository, for
    /// `--dry-run`) and the recipe it holds.
    fn current(&self, r: &Recipe) -> Result<(String, Recipe), UpdateError> {
        let text = match &self.repo {
            Some(repo) => repo.head_text(&repo.relative(&r.file)?)?,
            None if self.opts.dry_run => std::fs::read_to_string(&r.file)
                .map_err(|e| UpdateError::Invalid(format!("{}: {e}", r.file.display())))?,
            None => {
                return Err(UpdateError::Invalid(format!(
                    "{} is not in a git repository (forge update commits to a branch)",
                    self.settings.root.display()
                )));
            }
        };
        let recipe = recipe::parse_text(&r.file, &text)?;
        Ok((text, recipe))
    }

    fn try_check(
        &self,
        r: &Recipe,
        tags: &[String],
        not_modified: bool,
    ) -> Result<Outcome, UpdateError> {
        let shell = &self.settings.shell;
        let (text, current) = self.current(r)?;
        let spec = current
            .update
            .as_ref()
            .ok_or_else(|| UpdateError::Invalid("no [update] section in HEAD".into()))?;
        let picked = pick::pick(tags, &r.name, spec);
        for (tag, why) in &picked.skipped {
            shell.verbose(format!("{}: skipped `{tag}`: {why}", r.name));
        }
        let newest = match picked.newest {
            Some(n) if n > current.version => n,
            other => {
                return Ok(Outcome::UpToDate {
                    current: current.version.to_string(),
                    newest: other.map(|v| v.to_string()),
                    not_modified,
                });
            }
        };
        let branch = format!("update/{}-{newest}", r.name);
        if self.repo.as_ref().is_some_and(|g| g.has_branch(&branch)) {
            return Ok(Outcome::AlreadyProposed { branch });
        }
        let deps = dependents::of(&current, self.everyone);
        let dep_names: Vec<String> = deps.iter().map(|d| d.name.clone()).collect();
        let from = current.version.to_string();
        let to = newest.to_string();
        if self.opts.dry_run {
            return Ok(Outcome::WouldUpdate {
                from,
                to,
                branch,
                dependents: dep_names,
            });
        }
        let repo = self.repo.as_ref().expect("current() needs a repository");
        let fetch = &self.opts.fetch;
        let sums = download::sources(self.settings, &r.name, &text, spec, &to, fetch)?;
        let new_text = rewrite::bump_version(&text, &to, &sums)?;
        recipe::parse_text(&r.file, &new_text)?;
        let mut files = vec![(repo.relative(&r.file)?, new_text)];
        for d in &deps {
            let rel = repo.relative(&d.file)?;
            let bumped = rewrite::bump_release(&repo.head_text(&rel)?)?;
            recipe::parse_text(&d.file, &bumped)?;
            files.push((rel, bumped));
        }
        let message = commit_message(&r.name, &from, &to, &dep_names);
        let commit = repo.commit(&files, &message)?;
        let published = match self.opts.prebuild {
            Some(p) => {
                let mut names = vec![r.name.clone()];
                names.extend(dep_names.iter().cloned());
                super::prebuild::run(self.settings, repo, commit, &names, &to, p)
                    .map_err(UpdateError::Prebuild)?
            }
            None => Vec::new(),
        };
        repo.create_branch(&branch, commit)?;
        Ok(Outcome::Proposed {
            from,
            to,
            branch,
            commit: commit.to_string(),
            dependents: dep_names,
            published,
        })
    }
}

fn commit_message(name: &str, from: &str, to: &str, deps: &[String]) -> String {
    let mut m = format!("{name}: update to {to}\n\nforge update: {from} -> {to}, release 0.\n");
    if !deps.is_empty() {
        m.push_str(&format!(
            "Build dependents' releases bumped: {}.\n",
            deps.join(", ")
        ));
    }
    m
}
