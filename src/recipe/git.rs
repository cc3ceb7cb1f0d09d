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
//! 5. `commit` is that same last commit touching the folder, not `HEAD`: an
//!    unrelated commit must not change a package's bytes or its input key.
//!
//! [`git_info_many`] does this for many folders with one history walk: per
//! commit it compares the parent folder's tree with the parents' and, only
//! where it differs, the entries below it, so a 1,000-recipe tree costs about
//! one tree comparison per commit. One status scan covers every folder.
//! 4. fallback (no repository, or the folder was never committed): the
//!    `SOURCE_DATE_EPOCH` environment variable, else 315532800
//!    (1980-01-01T00:00:00Z, the earliest time zip can store). This is the
//!    one rule of [`crate::epoch`], which images follow too.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use git2::{ObjectType, Oid, Repository, Sort, StatusOptions, Tree};

use super::error::RecipeError;
use super::model::Recipe;
use crate::epoch::EpochSource;

pub use crate::epoch::DEFAULT_EPOCH;

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
    /// The last commit (40 hex) that touched the folder, when it is in a git
    /// repository and was ever committed.
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
    let mut all = git_info_many(&[dir])?;
    Ok(all.pop().expect("one folder in, one answer out"))
}

/// The newest commit touching a folder, with its committer time.
type Touch = Option<(Oid, i64)>;

/// A folder's entries by name, and the folder's own tree id.
type Entries = (Oid, BTreeMap<String, Oid>);

/// [`git_info`] for many folders at once, in the order given.
pub fn git_info_many(dirs: &[&Path]) -> Result<Vec<GitInfo>, RecipeError> {
    let mut found: Vec<Option<(Touch, bool)>> = vec![None; dirs.len()];
    let mut repos: BTreeMap<PathBuf, Vec<usize>> = BTreeMap::new();
    let real = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
    let mut rels: Vec<PathBuf> = Vec::with_capacity(dirs.len());
    for (i, dir) in dirs.iter().enumerate() {
        rels.push(PathBuf::new());
        let dir = real(dir);
        // Opening a repository reads its config: do it once per work tree.
        // (A nested repository below a known work tree is not looked for.)
        let known = repos.keys().find(|w| dir.starts_with(w)).cloned();
        let workdir = match known {
            Some(w) => w,
            None => {
                let Ok(repo) = Repository::discover(&dir) else {
                    continue;
                };
                let Some(workdir) = repo.workdir() else {
                    continue;
                };
                real(workdir)
            }
        };
        if let Ok(rel) = dir.strip_prefix(&workdir) {
            rels[i] = rel.to_path_buf();
            repos.entry(workdir).or_default().push(i);
        }
    }
    for (workdir, members) in repos {
        let git_err = |source| RecipeError::Git {
            dir: workdir.clone(),
            source,
        };
        let repo = Repository::open(&workdir).map_err(git_err)?;
        let wanted: Vec<&Path> = members.iter().map(|&i| rels[i].as_path()).collect();
        let last = last_touch_many(&repo, &wanted).map_err(git_err)?;
        let dirty = dirty_many(&repo, &wanted).map_err(git_err)?;
        for (k, &i) in members.iter().enumerate() {
            found[i] = Some((last[k], dirty[k]));
        }
    }
    let mut out = Vec::with_capacity(dirs.len());
    for f in found {
        let (touch, dirty) = f.unwrap_or((None, false));
        // The one rule (crate::epoch): the last commit's time, else the
        // environment, else the default.
        let (source_date_epoch, source) = crate::epoch::from_env(touch.map(|(_, t)| t))
            .map_err(|e| RecipeError::InvalidEpoch { value: e.value })?;
        let origin = match source {
            EpochSource::Inputs if dirty => SdeOrigin::LastCommitDirty,
            EpochSource::Inputs => SdeOrigin::LastCommit,
            EpochSource::Environment => SdeOrigin::Environment,
            EpochSource::Default => SdeOrigin::Default,
        };
        out.push(GitInfo {
            source_date_epoch,
            commit: touch.map(|(id, _)| id.to_string()),
            origin,
        });
    }
    Ok(out)
}

/// The tree at `rel` (the root tree for an empty path), if `rel` is a folder.
fn subtree<'r>(repo: &'r Repository, root: Tree<'r>, rel: &Path) -> Option<Tree<'r>> {
    if rel.as_os_str().is_empty() {
        return Some(root);
    }
    let entry = root.get_path(rel).ok()?;
    if entry.kind() != Some(ObjectType::Tree) {
        return None;
    }
    repo.find_tree(entry.id()).ok()
}

/// Entry ids by name at `parent` in `commit`'s tree, or `None` when the
/// folder is absent; also the folder's own id for a quick equality test.
fn entries_at(
    repo: &Repository,
    commit: Oid,
    parent: &Path,
) -> Result<Option<Entries>, git2::Error> {
    let root = repo.find_commit(commit)?.tree()?;
    let Some(tree) = subtree(repo, root, parent) else {
        return Ok(None);
    };
    let names = tree
        .iter()
        .filter_map(|e| e.name().ok().map(|n| (n.to_string(), e.id())))
        .collect();
    Ok(Some((tree.id(), names)))
}

/// For each `rel`: the newest commit (from HEAD) whose entry for `rel`
/// differs from every parent's (root commits: exists), with its time.
fn last_touch_many(repo: &Repository, rels: &[&Path]) -> Result<Vec<Touch>, git2::Error> {
    let mut out = vec![None; rels.len()];
    // Group by parent folder: usually every recipe sits in `recipes/`.
    let mut groups: BTreeMap<PathBuf, Vec<(usize, String)>> = BTreeMap::new();
    for (i, rel) in rels.iter().enumerate() {
        match (rel.parent(), rel.file_name()) {
            (Some(p), Some(n)) => groups
                .entry(p.to_path_buf())
                .or_default()
                .push((i, n.to_string_lossy().into_owned())),
            // The work tree's root itself: its "entry" is the root tree.
            _ => groups
                .entry(PathBuf::from("\0root"))
                .or_default()
                .push((i, String::new())),
        }
    }
    if repo.head().is_err() {
        return Ok(out); // unborn branch: nothing committed yet
    }
    let mut walk = repo.revwalk()?;
    walk.set_sorting(Sort::TOPOLOGICAL | Sort::TIME)?;
    walk.push_head()?;
    let mut open: BTreeSet<usize> = (0..rels.len()).collect();
    for id in walk {
        if open.is_empty() {
            break;
        }
        let id = id?;
        let commit = repo.find_commit(id)?;
        let parents: Vec<Oid> = commit.parent_ids().collect();
        for (parent_dir, members) in &groups {
            if members.iter().all(|(i, _)| !open.contains(i)) {
                continue;
            }
            if parent_dir.as_os_str() == "\0root" {
                let here = commit.tree_id();
                let mut touched = true;
                for p in &parents {
                    if repo.find_commit(*p)?.tree_id() == here {
                        touched = false;
                    }
                }
                if touched {
                    for (i, _) in members {
                        if open.remove(i) {
                            out[*i] = Some((id, commit.time().seconds()));
                        }
                    }
                }
                continue;
            }
            let Some((here_id, here)) = entries_at(repo, id, parent_dir)? else {
                continue;
            };
            let mut parent_entries = Vec::new();
            let mut same_folder = false;
            for p in &parents {
                match entries_at(repo, *p, parent_dir)? {
                    Some((pid, _)) if pid == here_id => same_folder = true,
                    Some((_, e)) => parent_entries.push(e),
                    None => parent_entries.push(BTreeMap::new()),
                }
            }
            if same_folder {
                continue; // nothing below the folder changed against some parent
            }
            for (i, name) in members {
                if !open.contains(i) {
                    continue;
                }
                let Some(mine) = here.get(name) else { continue };
                if parent_entries.iter().all(|pe| pe.get(name) != Some(mine)) {
                    open.remove(i);
                    out[*i] = Some((id, commit.time().seconds()));
                }
            }
        }
    }
    Ok(out)
}

/// For each `rel`: whether anything under it differs from HEAD (staged,
/// unstaged or new); one status scan over their common folders.
fn dirty_many(repo: &Repository, rels: &[&Path]) -> Result<Vec<bool>, git2::Error> {
    let mut opts = StatusOptions::new();
    opts.include_untracked(true)
        .recurse_untracked_dirs(true)
        .include_ignored(false);
    let parents: BTreeSet<PathBuf> = rels
        .iter()
        .map(|r| r.parent().map(Path::to_path_buf).unwrap_or_default())
        .collect();
    if !parents.iter().any(|p| p.as_os_str().is_empty()) {
        for p in &parents {
            opts.pathspec(p);
        }
    }
    let statuses = repo.statuses(Some(&mut opts))?;
    let changed: Vec<PathBuf> = statuses
        .iter()
        .filter(|s| !s.status().is_empty() && !s.status().is_ignored())
        .filter_map(|s| s.path().ok().map(PathBuf::from))
        .collect();
    Ok(rels
        .iter()
        .map(|rel| {
            rel.as_os_str().is_empty() && !changed.is_empty()
                || changed.iter().any(|c| c.starts_with(rel))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_project::git;

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
        // each folder's commit is the last one touching it, not HEAD
        assert_ne!(a.commit, b.commit);
        assert_eq!(b.commit.as_deref().map(str::len), Some(40));
        let many = git_info_many(&[&root.join("recipes/b"), &root.join("recipes/a")]).unwrap();
        assert_eq!(many, vec![b.clone(), a.clone()]);

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
        } else {
            crate::test_tools::missing("SOURCE_DATE_EPOCH is set, so the fallback is not checked");
        }
        assert_eq!(c.commit, None);
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
