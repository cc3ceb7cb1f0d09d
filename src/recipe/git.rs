//! A recipe's place in git history: its `SOURCE_DATE_EPOCH` and commit.
//!
//! Reproducible builds stamp every timestamp with `SOURCE_DATE_EPOCH`. Like
//! abuild's `set_source_date`, forge takes it from the committer time of the
//! last commit that touched the recipe folder, so editing one recipe does not
//! change the bytes of every other package. Flow:
//!
//! 1. discover the repository holding the recipe folder; none → fallback;
//! 2. walk history from `HEAD` (newest first) to the first commit whose tree
//!    entry for the folder differs from every parent's (for a root commit:
//!    exists) — what `git log -1 -- recipes/NAME` reports;
//! 3. note whether the folder has uncommitted changes (the time still comes
//!    from the last commit; the origin says it is dirty);
//! 4. fallback (no repository, or the folder was never committed): the
//!    `SOURCE_DATE_EPOCH` environment variable, else 315532800
//!    (1980-01-01T00:00:00Z, the earliest time zip can store).

use std::path::{Path, PathBuf};

use git2::{Oid, Repository, Sort, StatusOptions};

use super::error::RecipeError;
use super::model::Recipe;

/// The fallback epoch: 1980-01-01T00:00:00Z.
pub const DEFAULT_EPOCH: i64 = 315_532_800;

/// Where [`GitInfo::source_date_epoch`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SdeOrigin {
    /// The committer time of the last commit touching the recipe folder.
    LastCommit,
    /// As [`SdeOrigin::LastCommit`], but the folder has uncommitted changes
    /// that the time does not cover.
    LastCommitDirty,
    /// The `SOURCE_DATE_EPOCH` environment variable (not in git, or the
    /// folder was never committed).
    Environment,
    /// [`DEFAULT_EPOCH`] (not in git and no environment variable).
    Default,
}

impl SdeOrigin {
    /// A short phrase for status lines (`last commit`, `environment`, …).
    pub fn describe(self) -> &'static str {
        match self {
            SdeOrigin::LastCommit => "last commit touching the recipe",
            SdeOrigin::LastCommitDirty => {
                "last commit touching the recipe (which has uncommitted changes)"
            }
            SdeOrigin::Environment => "SOURCE_DATE_EPOCH from the environment",
            SdeOrigin::Default => "default 1980-01-01",
        }
    }
}

/// What git says about one recipe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitInfo {
    /// Seconds since the epoch, used for every timestamp the build writes.
    pub source_date_epoch: i64,
    /// The `HEAD` commit id (40 hex) when the recipe is in a git repository
    /// with at least one commit.
    pub commit: Option<String>,
    /// Where the epoch came from.
    pub origin: SdeOrigin,
}

/// The git facts of `recipe` (see the module docs for the rules).
pub fn git_info(recipe: &Recipe) -> Result<GitInfo, RecipeError> {
    git_info_at(&recipe.dir)
}

/// [`git_info`] for any folder.
pub fn git_info_at(dir: &Path) -> Result<GitInfo, RecipeError> {
    let found = from_git(dir).map_err(|source| RecipeError::Git {
        dir: dir.to_path_buf(),
        source,
    })?;
    let (commit, last) = match found {
        Some(f) => (f.head, f.last),
        None => (None, None),
    };
    if let Some((time, dirty)) = last {
        let origin = if dirty {
            SdeOrigin::LastCommitDirty
        } else {
            SdeOrigin::LastCommit
        };
        return Ok(GitInfo {
            source_date_epoch: time,
            commit,
            origin,
        });
    }
    let (source_date_epoch, origin) = fallback_epoch()?;
    Ok(GitInfo {
        source_date_epoch,
        commit,
        origin,
    })
}

fn fallback_epoch() -> Result<(i64, SdeOrigin), RecipeError> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if !v.trim().is_empty() => match v.trim().parse::<i64>() {
            Ok(n) if n >= 0 => Ok((n, SdeOrigin::Environment)),
            _ => Err(RecipeError::InvalidEpoch { value: v }),
        },
        _ => Ok((DEFAULT_EPOCH, SdeOrigin::Default)),
    }
}

struct Found {
    head: Option<String>,
    /// (committer time, folder dirty) of the last commit touching the folder.
    last: Option<(i64, bool)>,
}

fn from_git(dir: &Path) -> Result<Option<Found>, git2::Error> {
    let Ok(repo) = Repository::discover(dir) else {
        return Ok(None);
    };
    let Some(workdir) = repo.workdir() else {
        return Ok(None);
    };
    let real = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
    let Ok(rel) = real(dir).strip_prefix(real(workdir)).map(Path::to_path_buf) else {
        return Ok(None);
    };
    let head = match repo.head() {
        Ok(h) => h.peel_to_commit()?,
        // an unborn branch: a repository without commits
        Err(_) => {
            return Ok(Some(Found {
                head: None,
                last: None,
            }));
        }
    };
    let last = match last_touch(&repo, &rel)? {
        Some(time) => Some((time, is_dirty(&repo, &rel)?)),
        None => None,
    };
    Ok(Some(Found {
        head: Some(head.id().to_string()),
        last,
    }))
}

/// The tree (or blob) id at `rel` in `commit`, if it exists.
fn entry_at(repo: &Repository, id: Oid, rel: &Path) -> Result<Option<Oid>, git2::Error> {
    let commit = repo.find_commit(id)?;
    if rel.as_os_str().is_empty() {
        return Ok(Some(commit.tree_id()));
    }
    let tree = commit.tree()?;
    Ok(tree.get_path(rel).ok().map(|e| e.id()))
}

/// Committer time of the newest commit (from HEAD) that changed `rel`.
fn last_touch(repo: &Repository, rel: &Path) -> Result<Option<i64>, git2::Error> {
    let mut walk = repo.revwalk()?;
    walk.set_sorting(Sort::TOPOLOGICAL | Sort::TIME)?;
    walk.push_head()?;
    for id in walk {
        let id = id?;
        let Some(here) = entry_at(repo, id, rel)? else {
            continue;
        };
        let commit = repo.find_commit(id)?;
        let mut touched = true;
        for parent in commit.parent_ids() {
            if entry_at(repo, parent, rel)? == Some(here) {
                touched = false;
                break;
            }
        }
        if touched {
            return Ok(Some(commit.time().seconds()));
        }
    }
    Ok(None)
}

/// Whether anything under `rel` differs from HEAD (staged, unstaged or new).
fn is_dirty(repo: &Repository, rel: &Path) -> Result<bool, git2::Error> {
    let mut opts = StatusOptions::new();
    opts.include_untracked(true)
        .recurse_untracked_dirs(true)
        .include_ignored(false);
    let spec: PathBuf = rel.to_path_buf();
    if !spec.as_os_str().is_empty() {
        opts.pathspec(spec);
    }
    let statuses = repo.statuses(Some(&mut opts))?;
    Ok(statuses
        .iter()
        .any(|s| !s.status().is_empty() && !s.status().is_ignored()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn git(dir: &Path, args: &[&str], date: &str) {
        let st = Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_AUTHOR_DATE", date)
            .env("GIT_COMMITTER_DATE", date)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@t")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@t")
            .output()
            .expect("git runs");
        assert!(st.status.success(), "git {args:?}: {st:?}");
    }

    #[test]
    fn epoch_follows_the_last_commit_touching_the_folder() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        std::fs::create_dir_all(root.join("recipes/a")).unwrap();
        std::fs::create_dir_all(root.join("recipes/b")).unwrap();
        std::fs::write(root.join("recipes/a/recipe.toml"), "a1").unwrap();
        std::fs::write(root.join("recipes/b/recipe.toml"), "b1").unwrap();
        git(root, &["init", "-q", "-b", "main"], "@1000000000 +0000");
        git(root, &["add", "-A"], "@1000000000 +0000");
        git(root, &["commit", "-qm", "one"], "@1000000000 +0000");
        std::fs::write(root.join("recipes/b/recipe.toml"), "b2").unwrap();
        git(root, &["commit", "-qam", "two"], "@1100000000 +0000");

        let a = git_info_at(&root.join("recipes/a")).unwrap();
        assert_eq!(a.source_date_epoch, 1_000_000_000);
        assert_eq!(a.origin, SdeOrigin::LastCommit);
        let b = git_info_at(&root.join("recipes/b")).unwrap();
        assert_eq!(b.source_date_epoch, 1_100_000_000);
        assert_eq!(a.commit, b.commit);
        assert_eq!(b.commit.as_deref().map(str::len), Some(40));

        // a new sibling folder whose name extends `a` does not make `a` dirty
        std::fs::create_dir_all(root.join("recipes/ab")).unwrap();
        std::fs::write(root.join("recipes/ab/x"), "x").unwrap();
        let a = git_info_at(&root.join("recipes/a")).unwrap();
        assert_eq!(a.origin, SdeOrigin::LastCommit);

        // an uncommitted edit keeps the commit time but marks the origin
        std::fs::write(root.join("recipes/a/new.patch"), "x").unwrap();
        let a = git_info_at(&root.join("recipes/a")).unwrap();
        assert_eq!(a.source_date_epoch, 1_000_000_000);
        assert_eq!(a.origin, SdeOrigin::LastCommitDirty);
        let b = git_info_at(&root.join("recipes/b")).unwrap();
        assert_eq!(b.origin, SdeOrigin::LastCommit);

        // a folder never committed falls back (no env var in the test run)
        std::fs::create_dir_all(root.join("recipes/c")).unwrap();
        std::fs::write(root.join("recipes/c/recipe.toml"), "c").unwrap();
        let c = git_info_at(&root.join("recipes/c")).unwrap();
        if std::env::var_os("SOURCE_DATE_EPOCH").is_none() {
            assert_eq!(c.source_date_epoch, DEFAULT_EPOCH);
            assert_eq!(c.origin, SdeOrigin::Default);
        }
        assert_eq!(c.commit, b.commit);
    }

    #[test]
    fn outside_git_falls_back() {
        let t = tempfile::tempdir().unwrap();
        let info = git_info_at(t.path()).unwrap();
        assert_eq!(info.commit, None);
        assert!(matches!(
            info.origin,
            SdeOrigin::Default | SdeOrigin::Environment
        ));
    }
}
