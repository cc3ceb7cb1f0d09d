//! `forge pin`: write the digests just published into a manifests checkout.
//!
//! Every `kustomization.yaml` (or `.yml`, or `Kustomization`) committed in
//! the checkout (read from `HEAD`, not the work tree) has its matching `images:` entries rewritten in place
//! ([`super::kustomize`]): `newTag` and `digest` both, so the reference is
//! readable and pinned. The edited files go into one commit on top of
//! `HEAD`, given a new branch; the current branch, index and work tree are
//! untouched ([`crate::update::git`], the same mechanism `forge update`
//! uses). Nothing is ever applied to a cluster: a human merges the branch.
//!
//! When every entry already carries the digests, nothing is committed. A
//! published image that no entry names is an error naming the files read.

use std::path::{Path, PathBuf};

use super::kustomize::{self, KustomizeError, Pin};
use crate::update::git::{GitError, Repo};

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum PinError {
    /// A reference is not `REPOSITORY[:TAG]@sha256:<64 hex>`.
    #[error("`{0}` is not an image reference REPOSITORY[:TAG]@sha256:<64 hex digits>")]
    BadReference(String),
    /// A tag outside the OCI tag grammar.
    #[error("`{0}` is not a valid tag ([A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}})")]
    BadTag(String),
    /// No tag from the reference nor `--tag`.
    #[error("no tag for `{0}`: give REPOSITORY:TAG@DIGEST or --tag")]
    NoTag(String),
    /// No kustomization in the checkout.
    #[error("no kustomization.yaml committed under {}", .0.display())]
    NoKustomization(PathBuf),
    /// A published image no entry names.
    #[error("no kustomize `images:` entry has newName or name `{repository}` (read: {})", .files.join(", "))]
    NoMatch {
        /// The repository.
        repository: String,
        /// The kustomizations read.
        files: Vec<String>,
    },
    /// A kustomization that cannot be edited safely.
    #[error("{file}: {source}")]
    Kustomize {
        /// The file.
        file: String,
        /// What is wrong.
        #[source]
        source: KustomizeError,
    },
    /// The branch exists and holds something else.
    #[error("branch `{0}` already exists with other content; pick another --branch")]
    BranchExists(String),
    /// Git failed.
    #[error(transparent)]
    Git(#[from] GitError),
}

/// What `forge pin` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pinned {
    /// Every entry already had the digests: nothing committed.
    AlreadyPinned,
    /// A commit on a new branch, changing these files.
    Committed {
        /// The branch.
        branch: String,
        /// The commit id.
        commit: String,
        /// The files changed (work-tree relative).
        files: Vec<String>,
    },
}

fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(c))
}

/// Parse `REPOSITORY[:TAG]@sha256:<hex>`; `tag` is used when the reference
/// has none.
pub fn parse_reference(reference: &str, tag: Option<&str>) -> Result<Pin, PinError> {
    let bad = || PinError::BadReference(reference.to_string());
    let (name, digest) = reference.split_once('@').ok_or_else(bad)?;
    let hex = digest.strip_prefix("sha256:").ok_or_else(bad)?;
    if hex.len() != 64
        || !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(bad());
    }
    // A tag follows the last `:` after the last `/` (a port has a `/` after it).
    let last = name.rsplit('/').next().unwrap_or(name);
    let (repository, own_tag) = match last.rsplit_once(':') {
        Some((_, t)) => (&name[..name.len() - t.len() - 1], Some(t)),
        None => (name, None),
    };
    if repository.is_empty()
        || repository
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b == b'"' || b == b'\'')
    {
        return Err(bad());
    }
    let tag = own_tag
        .or(tag)
        .ok_or_else(|| PinError::NoTag(reference.to_string()))?;
    if !valid_tag(tag) {
        return Err(PinError::BadTag(tag.to_string()));
    }
    Ok(Pin {
        repository: repository.to_string(),
        tag: tag.to_string(),
        digest: digest.to_string(),
    })
}

/// Kustomization files committed under `dir`, work-tree relative, sorted
/// (what the work tree holds besides, such as CI build copies, is not read).
fn kustomizations(repo: &Repo, dir: &Path) -> Result<Vec<String>, PinError> {
    let prefix = repo.relative(dir)?;
    let mut files: Vec<String> = repo
        .head_paths()?
        .into_iter()
        .filter(|p| prefix.is_empty() || p.starts_with(&format!("{prefix}/")))
        .filter(|p| {
            let name = p.rsplit('/').next().unwrap_or(p);
            name == "kustomization.yaml" || name == "kustomization.yml" || name == "Kustomization"
        })
        .collect();
    files.sort();
    Ok(files)
}

/// Pin `pins` in the manifests checkout at `dir`, committing on `branch`.
pub fn pin(dir: &Path, pins: &[Pin], branch: &str, message: &str) -> Result<Pinned, PinError> {
    let repo = Repo::open(dir)?;
    let files = kustomizations(&repo, dir)?;
    if files.is_empty() {
        return Err(PinError::NoKustomization(dir.to_path_buf()));
    }
    let mut counts = vec![0; pins.len()];
    let mut changed = Vec::new();
    for rel in &files {
        let text = repo.head_text(rel)?;
        let (new, hits) = kustomize::apply(&text, pins).map_err(|source| PinError::Kustomize {
            file: rel.clone(),
            source,
        })?;
        for (c, h) in counts.iter_mut().zip(hits) {
            *c += h;
        }
        if new != text {
            changed.push((rel.clone(), new));
        }
    }
    if let Some(i) = counts.iter().position(|&c| c == 0) {
        return Err(PinError::NoMatch {
            repository: pins[i].repository.clone(),
            files,
        });
    }
    if changed.is_empty() {
        return Ok(Pinned::AlreadyPinned);
    }
    let commit = repo.commit(&changed, message)?;
    if repo.has_branch(branch) {
        // A re-run of a killed job: the branch is already what we made.
        if repo.branch_tree(branch)? == repo.commit_tree(commit)? {
            return Ok(Pinned::Committed {
                branch: branch.to_string(),
                commit: repo.branch_commit(branch)?.to_string(),
                files: changed.into_iter().map(|(f, _)| f).collect(),
            });
        }
        return Err(PinError::BranchExists(branch.to_string()));
    }
    repo.create_branch(branch, commit)?;
    Ok(Pinned::Committed {
        branch: branch.to_string(),
        commit: commit.to_string(),
        files: changed.into_iter().map(|(f, _)| f).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_parsed_strictly() {
        let d = format!("sha256:{}", "a".repeat(64));
        let p = parse_reference(&format!("reg.lan:5000/forge/hello@{d}"), Some("v1")).unwrap();
        assert_eq!(
            (p.repository.as_str(), p.tag.as_str()),
            ("reg.lan:5000/forge/hello", "v1")
        );
        let p = parse_reference(&format!("reg.lan:5000/forge/hello:v3@{d}"), Some("v1")).unwrap();
        assert_eq!(
            (p.repository.as_str(), p.tag.as_str()),
            ("reg.lan:5000/forge/hello", "v3")
        );
        for bad in [
            "hello",
            "hello@sha256:abc",
            "hello@md5:00",
            &format!("@{d}"),
        ] {
            assert!(
                matches!(
                    parse_reference(bad, Some("v1")),
                    Err(PinError::BadReference(_))
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            parse_reference(&format!("h@{d}"), None),
            Err(PinError::NoTag(_))
        ));
        assert!(matches!(
            parse_reference(&format!("h@{d}"), Some("a b")),
            Err(PinError::BadTag(_))
        ));
    }
}
