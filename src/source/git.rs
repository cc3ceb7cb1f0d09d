//! git sources: a bare mirror per repository in the cache, fetched only when
//! the pinned commit (or the named tag) is missing, and a checkout that writes
//! exactly the commit's tree into `$srcdir/<dest>`, with no `.git` folder.
//!
//! Cache layout: `<cache>/git/<name>-<first 16 hex of sha256(url)>`, a bare
//! repository, guarded by `<same>.lock` while fetching so parallel builds
//! sharing a repository do not race. The checkout reuses the
//! archive tree writer, so a hostile repository cannot place symlinks or files
//! outside `$srcdir` either. File times are the commit time, like `git archive`.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use git2::{FetchOptions, Oid, RemoteCallbacks, Repository};
use sha2::{Digest, Sha256};

use super::SourceError;
use super::tree::TreeWriter;
use crate::settings::Settings;

/// One git source to make present.
pub(crate) struct Want<'a> {
    /// The recipe it belongs to.
    pub recipe: &'a str,
    /// The recipe folder (relative repository paths resolve against it).
    pub recipe_dir: &'a Path,
    /// The repository URL as written in the recipe.
    pub url: &'a str,
    /// The pinned commit (40 hex).
    pub commit: &'a str,
    /// The tag that must point at `commit`, if any.
    pub tag: Option<&'a str>,
}

/// The bare repository caching `url`.
pub fn repo_path(cache: &Path, url: &str) -> PathBuf {
    let hash = hex::encode(Sha256::digest(url.as_bytes()));
    let name: String = url
        .trim_end_matches('/')
        .trim_end_matches(".git")
        .rsplit(['/', ':'])
        .next()
        .unwrap_or("repo")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    let name = if name.is_empty() || name.starts_with('.') {
        format!("repo{name}")
    } else {
        name
    };
    cache.join("git").join(format!("{name}-{}", &hash[..16]))
}

/// The URL handed to libgit2: relative paths resolve against the recipe folder.
fn effective_url(want: &Want) -> Result<String, SourceError> {
    let url = want.url;
    if let Some((scheme, _)) = url.split_once("://") {
        let supported = match scheme {
            "file" | "git" => true,
            "http" | "https" => git2::Version::get().https(),
            "ssh" => git2::Version::get().ssh(),
            _ => false,
        };
        if !supported {
            return Err(SourceError::GitTransport {
                url: url.to_string(),
                scheme: scheme.to_string(),
            });
        }
        return Ok(url.to_string());
    }
    if url.contains('@') && url.contains(':') {
        if !git2::Version::get().ssh() {
            return Err(SourceError::GitTransport {
                url: url.to_string(),
                scheme: "ssh".to_string(),
            });
        }
        return Ok(url.to_string());
    }
    Ok(want.recipe_dir.join(url).display().to_string())
}

fn git_err(op: &'static str, url: &str) -> impl FnOnce(git2::Error) -> SourceError {
    let url = url.to_string();
    move |source| SourceError::Git { op, url, source }
}

/// Make sure the pinned commit (and tag) is in the cache; returns the bare
/// repository's path.
pub(crate) fn ensure(settings: &Settings, want: &Want) -> Result<PathBuf, SourceError> {
    let path = repo_path(&settings.cache, want.url);
    let parent = path.parent().expect("under the cache");
    std::fs::create_dir_all(parent).map_err(SourceError::io("creating", parent))?;
    let lock_path = path.with_extension("lock");
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(SourceError::io("creating", &lock_path))?;
    lock.lock()
        .map_err(SourceError::io("locking", &lock_path))?;

    let repo = if path.join("HEAD").exists() {
        Repository::open_bare(&path).map_err(git_err("opening the cache of", want.url))?
    } else {
        Repository::init_bare(&path).map_err(git_err("creating the cache of", want.url))?
    };
    let oid = Oid::from_str(want.commit).map_err(git_err("parsing the commit of", want.url))?;
    let mut fetched = false;
    loop {
        let verdict = check(&repo, want, oid, settings.offline);
        match verdict {
            Ok(()) => return Ok(path),
            // Missing objects or refs, or a tag moved upstream since the
            // cache was filled: fetch once, then judge again.
            Err(_) if !fetched && !settings.offline => {
                fetch(settings, &repo, want, oid)?;
                fetched = true;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Whether the cached repository has the pinned commit and, if named, the
/// tag pointing at it.
fn check(repo: &Repository, want: &Want, oid: Oid, offline: bool) -> Result<(), SourceError> {
    if repo.find_commit(oid).is_err() {
        return Err(SourceError::CommitMissing {
            recipe: want.recipe.to_string(),
            url: want.url.to_string(),
            commit: want.commit.to_string(),
            offline,
        });
    }
    if let Some(tag) = want.tag {
        let r = repo
            .find_reference(&format!("refs/tags/{tag}"))
            .map_err(|_| SourceError::TagMissing {
                recipe: want.recipe.to_string(),
                url: want.url.to_string(),
                tag: tag.to_string(),
            })?;
        let actual = r
            .peel_to_commit()
            .map_err(git_err("resolving a tag of", want.url))?
            .id();
        if actual != oid {
            return Err(SourceError::TagMismatch {
                recipe: want.recipe.to_string(),
                url: want.url.to_string(),
                tag: tag.to_string(),
                expected: want.commit.to_string(),
                actual: actual.to_string(),
            });
        }
    }
    Ok(())
}

fn fetch(settings: &Settings, repo: &Repository, want: &Want, oid: Oid) -> Result<(), SourceError> {
    let url = effective_url(want)?;
    settings
        .shell
        .status("Fetching", format!("git {}", want.url));
    let bar = settings.shell.bytes_bar(None, want.recipe);
    let mut callbacks = RemoteCallbacks::new();
    callbacks.transfer_progress(|p| {
        bar.set_position(p.received_bytes() as u64);
        true
    });
    let mut opts = FetchOptions::new();
    opts.remote_callbacks(callbacks);
    let mut remote = repo
        .remote_anonymous(&url)
        .map_err(git_err("connecting to", want.url))?;
    remote
        .fetch(
            &["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"],
            Some(&mut opts),
            None,
        )
        .map_err(git_err("fetching", want.url))?;
    // A commit reachable from no branch or tag: ask for it by id (servers
    // that allow it answer; the others make this a no-op error).
    if repo.find_commit(oid).is_err() {
        let spec = format!("+{oid}:refs/forge/pinned/{oid}");
        if let Err(e) = remote.fetch(&[spec.as_str()], None, None) {
            settings
                .shell
                .verbose(format!("fetching {oid} by id from {}: {e}", want.url));
        }
    }
    bar.finish_and_clear();
    Ok(())
}

/// How many folders deep a checked-out tree may go. Deeper nesting (which a
/// hostile repository can make cheaply, one tiny tree object per level) is
/// refused with an error rather than walked without end; real trees stay
/// far below it.
pub(crate) const MAX_TREE_DEPTH: usize = 128;

/// Write the tree of `commit` from the bare repository `repo_path` into `dest`.
pub(crate) fn checkout(
    settings: &Settings,
    repo_path: &Path,
    url: &str,
    commit: &str,
    dest: &Path,
) -> Result<(), SourceError> {
    let repo = Repository::open_bare(repo_path).map_err(git_err("opening the cache of", url))?;
    let oid = Oid::from_str(commit).map_err(git_err("parsing the commit of", url))?;
    let commit = repo
        .find_commit(oid)
        .map_err(git_err("reading the commit of", url))?;
    let secs = commit.time().seconds().max(0) as u64;
    let mtime = Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs));
    let tree = commit.tree().map_err(git_err("reading the tree of", url))?;
    let mut w = TreeWriter::new(dest, Path::new(url))?;
    let walk = Walk {
        settings,
        repo: &repo,
        mtime,
        url,
    };
    walk.write_tree(&tree, Path::new(""), 0, &mut w)?;
    w.finish()?;
    Ok(())
}

/// What a tree walk carries from level to level.
struct Walk<'a> {
    settings: &'a Settings,
    repo: &'a Repository,
    mtime: Option<SystemTime>,
    url: &'a str,
}

impl Walk<'_> {
    /// Write `tree` at `prefix`, `depth` folders below the top; refuses to go
    /// deeper than [`MAX_TREE_DEPTH`].
    fn write_tree(
        &self,
        tree: &git2::Tree,
        prefix: &Path,
        depth: usize,
        w: &mut TreeWriter,
    ) -> Result<(), SourceError> {
        for entry in tree.iter() {
            self.write_entry(&entry, prefix, depth, w)?;
        }
        Ok(())
    }

    fn write_entry(
        &self,
        entry: &git2::TreeEntry,
        prefix: &Path,
        depth: usize,
        w: &mut TreeWriter,
    ) -> Result<(), SourceError> {
        use std::os::unix::ffi::OsStrExt;
        let Walk {
            settings,
            repo,
            mtime,
            url,
        } = *self;
        let path = prefix.join(std::ffi::OsStr::from_bytes(entry.name_bytes()));
        let mode = entry.filemode() as u32;
        match mode {
            0o040000 => {
                if depth >= MAX_TREE_DEPTH {
                    return Err(w.refuse(
                        &path,
                        format!("the tree is more than {MAX_TREE_DEPTH} folders deep"),
                    ));
                }
                w.dir(&path, 0o755, mtime)?;
                let sub = repo
                    .find_tree(entry.id())
                    .map_err(git_err("reading a tree of", url))?;
                self.write_tree(&sub, &path, depth + 1, w)?;
            }
            0o100644 | 0o100664 | 0o100755 | 0o120000 => {
                let blob = repo
                    .find_blob(entry.id())
                    .map_err(git_err("reading a file of", url))?;
                if mode == 0o120000 {
                    let target = std::ffi::OsStr::from_bytes(blob.content());
                    w.symlink(&path, Path::new(target))?;
                } else {
                    let perm = if mode == 0o100755 { 0o755 } else { 0o644 };
                    w.file(&path, perm, mtime, &mut blob.content())?;
                }
            }
            0o160000 => {
                settings.shell.warn(format!(
                    "{url}: submodule {} is not checked out (list it as its own git source)",
                    path.display()
                ));
                w.dir(&path, 0o755, mtime)?;
            }
            other => return Err(w.refuse_kind(&path, &format!("git mode {other:o}"))),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_transport_is_built_in() {
        assert!(
            git2::Version::get().https(),
            "git2 built without the https feature"
        );
        let want = Want {
            recipe: "r",
            recipe_dir: Path::new("/r"),
            url: "https://example.invalid/x.git",
            commit: "0123456789abcdef0123456789abcdef01234567",
            tag: None,
        };
        assert_eq!(effective_url(&want).unwrap(), want.url);
        let svn = Want {
            url: "svn://example.invalid/x",
            ..want
        };
        assert!(matches!(
            effective_url(&svn),
            Err(SourceError::GitTransport { .. })
        ));
        let rel = Want {
            url: "vendor/x",
            ..svn
        };
        assert_eq!(effective_url(&rel).unwrap(), "/r/vendor/x");
    }

    #[test]
    fn repo_paths_are_stable_and_distinct() {
        let c = Path::new("/c");
        let a = repo_path(c, "https://example.invalid/org/proj.git");
        assert!(a.starts_with("/c/git"));
        let name = a.file_name().unwrap().to_str().unwrap();
        assert!(
            name.starts_with("proj-") && name.len() == "proj-".len() + 16,
            "{name}"
        );
        assert_eq!(a, repo_path(c, "https://example.invalid/org/proj.git"));
        assert_ne!(a, repo_path(c, "https://example.invalid/other/proj.git"));
        let odd = repo_path(c, "/srv/../..");
        assert!(odd.parent().unwrap().ends_with("git"), "{}", odd.display());
        assert!(!odd.file_name().unwrap().to_str().unwrap().starts_with('.'));
    }

    /// A bare repository whose commit holds `levels` nested folders
    /// (`d/d/d/…/f`), each a tiny tree object.
    fn nested_repo(dir: &Path, levels: usize) -> (PathBuf, String) {
        let path = dir.join(format!("nested-{levels}.git"));
        let repo = Repository::init_bare(&path).unwrap();
        let blob = repo.blob(b"x\n").unwrap();
        let mut b = repo.treebuilder(None).unwrap();
        b.insert("f", blob, 0o100644).unwrap();
        let mut tree = b.write().unwrap();
        for _ in 0..levels {
            let mut b = repo.treebuilder(None).unwrap();
            b.insert("d", tree, 0o040000).unwrap();
            tree = b.write().unwrap();
        }
        let tree = repo.find_tree(tree).unwrap();
        let sig = git2::Signature::new("t", "t@t", &git2::Time::new(1_600_000_000, 0)).unwrap();
        let commit = repo.commit(None, &sig, &sig, "deep", &tree, &[]).unwrap();
        (path, commit.to_string())
    }

    #[test]
    fn tree_depth_is_capped_with_a_clear_error() {
        let tmp = tempfile::tempdir().unwrap();
        let settings = Settings::for_root(tmp.path());
        let (ok, commit) = nested_repo(tmp.path(), MAX_TREE_DEPTH);
        let dest = tmp.path().join("ok");
        checkout(&settings, &ok, "ok", &commit, &dest).unwrap();
        let deepest: PathBuf = std::iter::repeat_n("d", MAX_TREE_DEPTH).collect();
        assert!(dest.join(deepest).join("f").is_file());

        let (deep, commit) = nested_repo(tmp.path(), MAX_TREE_DEPTH + 1);
        let err =
            checkout(&settings, &deep, "deep", &commit, &tmp.path().join("deep")).unwrap_err();
        let text = crate::util::error_chain(&err);
        assert!(matches!(err, SourceError::UnsafeEntry { .. }), "{text}");
        assert!(
            text.contains(&format!("more than {MAX_TREE_DEPTH} folders deep")),
            "{text}"
        );
    }
}
