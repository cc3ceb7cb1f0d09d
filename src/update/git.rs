//! The update's commit: built from `HEAD`'s tree with the edited files
//! replaced, written as an object, and only then given a branch
//! (`update/NAME-VERSION`). The current branch, the index and the working
//! tree are never touched, so `forge update` is safe in a dirty checkout.

use std::path::{Path, PathBuf};

use git2::build::{CheckoutBuilder, TreeUpdateBuilder};
use git2::{FileMode, ObjectType, Oid, Repository, Signature};

/// Why git failed.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// A libgit2 failure.
    #[error("git: {what}")]
    Git {
        /// What was being done.
        what: String,
        /// The cause.
        #[source]
        source: git2::Error,
    },
    /// The file is not in `HEAD`.
    #[error("{0} is not committed (forge update edits what `HEAD` holds)")]
    NotCommitted(String),
    /// The project is not inside a work tree.
    #[error("{0} is not inside a git work tree")]
    NoWorkTree(PathBuf),
}

fn git<T>(what: impl Into<String>, r: Result<T, git2::Error>) -> Result<T, GitError> {
    r.map_err(|source| GitError::Git {
        what: what.into(),
        source,
    })
}

/// The project's repository and the project root's path inside it.
pub struct Repo {
    repo: Repository,
    workdir: PathBuf,
}

impl Repo {
    /// Discover the repository that holds `root`.
    pub fn open(root: &Path) -> Result<Repo, GitError> {
        let repo = git(
            format!("opening the repository of {}", root.display()),
            Repository::discover(root),
        )?;
        let workdir = repo
            .workdir()
            .ok_or_else(|| GitError::NoWorkTree(root.to_path_buf()))?
            .canonicalize()
            .map_err(|_| GitError::NoWorkTree(root.to_path_buf()))?;
        Ok(Repo { repo, workdir })
    }

    /// `path` relative to the work tree, with `/` separators.
    pub fn relative(&self, path: &Path) -> Result<String, GitError> {
        let abs = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        abs.strip_prefix(&self.workdir)
            .map(|p| p.to_string_lossy().into_owned())
            .map_err(|_| GitError::NoWorkTree(path.to_path_buf()))
    }

    /// The text of `rel` in `HEAD`.
    pub fn head_text(&self, rel: &str) -> Result<String, GitError> {
        let tree = git(
            "reading HEAD",
            self.repo.head().and_then(|h| h.peel_to_tree()),
        )?;
        let entry = tree
            .get_path(Path::new(rel))
            .map_err(|_| GitError::NotCommitted(rel.to_string()))?;
        let blob = git(
            format!("reading {rel} in HEAD"),
            entry.to_object(&self.repo).and_then(|o| o.peel_to_blob()),
        )?;
        Ok(String::from_utf8_lossy(blob.content()).into_owned())
    }

    /// Whether `refs/heads/<branch>` exists.
    pub fn has_branch(&self, branch: &str) -> bool {
        self.repo
            .find_reference(&format!("refs/heads/{branch}"))
            .is_ok()
    }

    /// A commit on top of `HEAD` that replaces `files` (work-tree-relative
    /// path, new text); no ref points at it yet.
    pub fn commit(&self, files: &[(String, String)], message: &str) -> Result<Oid, GitError> {
        let head = git(
            "reading HEAD",
            self.repo.head().and_then(|h| h.peel_to_commit()),
        )?;
        let base = git("reading HEAD's tree", head.tree())?;
        let mut update = TreeUpdateBuilder::new();
        for (rel, text) in files {
            let mode = match base.get_path(Path::new(rel)).map(|e| e.filemode()) {
                Ok(0o100755) => FileMode::BlobExecutable,
                _ => FileMode::Blob,
            };
            let blob = git(format!("storing {rel}"), self.repo.blob(text.as_bytes()))?;
            update.upsert(rel, blob, mode);
        }
        let tree_id = git("writing the tree", update.create_updated(&self.repo, &base))?;
        let tree = git("reading the tree", self.repo.find_tree(tree_id))?;
        let sig = self
            .repo
            .signature()
            .or_else(|_| Signature::now("forge", "forge@localhost"));
        let sig = git("making a signature", sig)?;
        git(
            "writing the commit",
            self.repo.commit(None, &sig, &sig, message, &tree, &[&head]),
        )
    }

    /// Point a new branch at `commit`; fails if the branch exists.
    pub fn create_branch(&self, branch: &str, commit: Oid) -> Result<(), GitError> {
        git(
            format!("creating branch {branch}"),
            self.repo.reference(
                &format!("refs/heads/{branch}"),
                commit,
                false,
                "forge update",
            ),
        )?;
        Ok(())
    }

    /// Write the files of `commit` into `dir` (not a work tree: no index,
    /// no `.git`), for a prebuild.
    pub fn export(&self, commit: Oid, dir: &Path) -> Result<(), GitError> {
        let obj = git(
            "reading the commit",
            self.repo.find_object(commit, Some(ObjectType::Commit)),
        )?;
        let mut cb = CheckoutBuilder::new();
        cb.target_dir(dir)
            .force()
            .update_index(false)
            .recreate_missing(true);
        git(
            format!("writing the tree into {}", dir.display()),
            self.repo.checkout_tree(&obj, Some(&mut cb)),
        )
    }

    /// Every file path in `HEAD`'s tree (work-tree relative, `/`-separated).
    pub fn head_paths(&self) -> Result<Vec<String>, GitError> {
        let tree = git(
            "reading HEAD",
            self.repo.head().and_then(|h| h.peel_to_tree()),
        )?;
        let mut paths = Vec::new();
        git(
            "listing HEAD",
            tree.walk(git2::TreeWalkMode::PreOrder, |dir, entry| {
                if entry.kind() == Some(ObjectType::Blob) {
                    paths.push(format!("{dir}{}", entry.name().unwrap_or("")));
                }
                git2::TreeWalkResult::Ok
            }),
        )?;
        Ok(paths)
    }

    /// The commit `refs/heads/<branch>` points at.
    pub fn branch_commit(&self, branch: &str) -> Result<Oid, GitError> {
        let r = git(
            format!("reading branch {branch}"),
            self.repo.find_reference(&format!("refs/heads/{branch}")),
        )?;
        git(format!("reading branch {branch}"), r.peel_to_commit()).map(|c| c.id())
    }

    /// The tree of `refs/heads/<branch>`'s commit.
    pub fn branch_tree(&self, branch: &str) -> Result<Oid, GitError> {
        self.commit_tree(self.branch_commit(branch)?)
    }

    /// The tree of `commit`.
    pub fn commit_tree(&self, commit: Oid) -> Result<Oid, GitError> {
        git(
            "reading a commit",
            self.repo.find_commit(commit).map(|c| c.tree_id()),
        )
    }

    /// The work tree root.
    pub fn workdir(&self) -> &Path {
        &self.workdir
    }
}
