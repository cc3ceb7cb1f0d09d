//! Sources: fetching, verifying and unpacking what a recipe builds from.
//!
//! Two entry points serve the later stages:
//!
//! - [`fetch`] makes every source of a recipe present and verified in the
//!   cache (distfiles by checksum, git repositories as bare mirrors, local
//!   files hashed in place) and reports each as a [`Fetched`];
//! - [`prepare`] fetches and then lays everything out in a fresh `$srcdir`:
//!   archives unpacked, plain files copied, git trees checked out at the pinned
//!   commit, local files copied. It also picks the build folder.
//!
//! [`input_digests`] gives the same digests as [`fetch`] without any network
//! or cache access, so the build graph can key units on source identity
//! before anything is downloaded.
//!
//! Trust flows one way: nothing enters the cache unverified
//! ([`distfile`]), and nothing from an archive or repository is written
//! outside `$srcdir` (the private `tree` module). `docs/sources.md` describes the cache and
//! mirror layouts for users.

mod digest;
pub mod distfile;
mod error;
pub mod git;
pub(crate) mod http;
mod local;
pub(crate) mod tree;
pub(crate) mod unpack;

use std::io::Seek as _;
use std::path::{Path, PathBuf};

pub use error::SourceError;

use crate::recipe::{Checksum, Recipe, Source};
use crate::settings::Settings;

/// One source, present and verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// The source as written in the recipe.
    pub source: Source,
    /// The cached file (http), the bare repository (git) or the file or
    /// folder in the recipe folder (local).
    pub path: PathBuf,
    /// The source's identity: `sha256:<hex>`/`sha512:<hex>` for http, the
    /// commit id for git, `sha256:<hex>` of the content for local sources.
    pub digest: String,
}

/// A populated `$srcdir`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    /// Where the build runs, relative to `$srcdir`: the recipe's `builddir`,
    /// else the single top-level folder of the first unpacked archive, else `.`.
    pub builddir: PathBuf,
    /// Every source, in recipe order.
    pub inputs: Vec<Fetched>,
}

/// Make every source of `recipe` present and verified in the cache.
pub fn fetch(settings: &Settings, recipe: &Recipe) -> Result<Vec<Fetched>, SourceError> {
    Ok(fetch_open(settings, recipe)?
        .into_iter()
        .map(|(f, _)| f)
        .collect())
}

/// [`fetch`], keeping for each http source the open file that was hashed.
fn fetch_open(
    settings: &Settings,
    recipe: &Recipe,
) -> Result<Vec<(Fetched, Option<std::fs::File>)>, SourceError> {
    recipe
        .sources
        .iter()
        .map(|source| fetch_one(settings, recipe, source))
        .collect()
}

fn fetch_one(
    settings: &Settings,
    recipe: &Recipe,
    source: &Source,
) -> Result<(Fetched, Option<std::fs::File>), SourceError> {
    let mut handle = None;
    let (path, digest) = match source {
        Source::Http {
            url,
            checksum,
            filename,
            ..
        } => {
            let want = distfile::Want {
                recipe: &recipe.name,
                url,
                filename,
                checksum,
            };
            let (path, file) = distfile::ensure(settings, &want)?;
            handle = Some(file);
            (path, checksum.to_prefixed())
        }
        Source::Git {
            url, commit, tag, ..
        } => {
            let want = git::Want {
                recipe: &recipe.name,
                recipe_dir: &recipe.dir,
                url,
                commit,
                tag: tag.as_deref(),
            };
            (git::ensure(settings, &want)?, commit.clone())
        }
        Source::Local { path } => {
            let full = local::resolve(recipe, path)?;
            let digest = digest::local_digest(&full)?;
            (full, digest)
        }
    };
    Ok((
        Fetched {
            source: source.clone(),
            path,
            digest,
        },
        handle,
    ))
}

/// Download a file whose checksum is not known yet (a new upstream version
/// found by `forge update`) into the distfile cache; returns its checksum,
/// of the same algorithm as `like`, and its cache path.
pub fn download_new(
    settings: &Settings,
    url: &str,
    filename: &str,
    like: &Checksum,
) -> Result<(Checksum, PathBuf), SourceError> {
    distfile::fetch_new(settings, url, filename, like)
}

/// Make one http file present in the cache, verified against `checksum`
/// (cache, mirrors, then upstream), as `fetch` does for a recipe's source.
pub fn ensure_http(
    settings: &Settings,
    recipe: &str,
    url: &str,
    filename: &str,
    checksum: &Checksum,
) -> Result<PathBuf, SourceError> {
    let want = distfile::Want {
        recipe,
        url,
        filename,
        checksum,
    };
    distfile::ensure(settings, &want).map(|(path, _)| path)
}

/// The identity of every source of `recipe`, in order, equal to the
/// [`Fetched::digest`]s that [`fetch`] would return, computed without
/// network or cache: checksums and commits come from the recipe, local
/// sources are hashed in the recipe folder.
pub fn input_digests(recipe: &Recipe) -> Result<Vec<String>, SourceError> {
    recipe
        .sources
        .iter()
        .map(|source| match source {
            Source::Http { checksum, .. } => Ok(checksum.to_prefixed()),
            Source::Git { commit, .. } => Ok(commit.clone()),
            Source::Local { path } => digest::local_digest(&local::resolve(recipe, path)?),
        })
        .collect()
}

/// Fetch every source of `recipe` and lay it out in `srcdir` (created if
/// missing; expected to be empty).
///
/// Every mtime under `srcdir` newer than `source_date_epoch` is clamped to
/// it, so local files, copied downloads and zip entries (placed "now") do not
/// carry the build's wall-clock time into outputs that embed mtimes (gzip,
/// tar, .pyc). Upstream archive times are older and stay as they are.
pub fn prepare(
    settings: &Settings,
    recipe: &Recipe,
    srcdir: &Path,
    source_date_epoch: i64,
) -> Result<Prepared, SourceError> {
    let opened = fetch_open(settings, recipe)?;
    let builddir = lay_out(
        settings,
        recipe,
        opened.iter().map(|(f, h)| (f, h.as_ref())),
        srcdir,
    )?;
    clamp_mtimes(srcdir, source_date_epoch)?;
    Ok(Prepared {
        builddir,
        inputs: opened.into_iter().map(|(f, _)| f).collect(),
    })
}

/// Lay the fetched sources out in `srcdir`; the build folder. Distfiles are
/// read from the handles their check hashed, never reopened by path.
fn lay_out<'a>(
    settings: &Settings,
    recipe: &Recipe,
    inputs: impl Iterator<Item = (&'a Fetched, Option<&'a std::fs::File>)>,
    srcdir: &Path,
) -> Result<PathBuf, SourceError> {
    std::fs::create_dir_all(srcdir).map_err(SourceError::io("creating", srcdir))?;
    let mut first_archive: Option<Option<PathBuf>> = None;
    for (input, handle) in inputs {
        match &input.source {
            Source::Http {
                filename, extract, ..
            } => {
                let verified = handle.expect("http sources come with their verified file");
                let mut file = verified
                    .try_clone()
                    .map_err(SourceError::io("reading", &input.path))?;
                file.rewind()
                    .map_err(SourceError::io("reading", &input.path))?;
                if *extract {
                    let format = unpack::sniff_file(&mut file, &input.path)?.ok_or_else(|| {
                        SourceError::UnknownFormat {
                            recipe: recipe.name.clone(),
                            filename: filename.clone(),
                        }
                    })?;
                    settings.shell.verbose(format!("unpacking {filename}"));
                    let top = unpack::unpack_file(file, &input.path, format, srcdir)?;
                    first_archive.get_or_insert(top);
                } else {
                    copy_distfile(recipe, file, &input.path, filename, srcdir)?;
                }
            }
            Source::Git {
                url, commit, dest, ..
            } => {
                let target = srcdir.join(dest);
                if target.symlink_metadata().is_ok() {
                    return Err(SourceError::Collision {
                        recipe: recipe.name.clone(),
                        path: target,
                    });
                }
                check_single_name(recipe, dest)?;
                git::checkout(settings, &input.path, url, commit, &target)?;
            }
            Source::Local { path } => local::place(recipe, &input.path, path, srcdir)?,
        }
    }
    let builddir = match &recipe.builddir {
        Some(dir) => PathBuf::from(dir),
        None => first_archive
            .flatten()
            .unwrap_or_else(|| PathBuf::from(".")),
    };
    if !srcdir.join(&builddir).is_dir() {
        let mut found: Vec<String> = std::fs::read_dir(srcdir)
            .map_err(SourceError::io("reading", srcdir))?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        found.sort();
        return Err(SourceError::NoBuilddir {
            recipe: recipe.name.clone(),
            builddir,
            found,
        });
    }
    Ok(builddir)
}

/// Set every file and folder time under `root` that is newer than `epoch` to
/// `epoch` (symlinks keep theirs: nothing reads a link's own time).
fn clamp_mtimes(root: &Path, epoch: i64) -> Result<(), SourceError> {
    let limit = std::time::UNIX_EPOCH + std::time::Duration::from_secs(epoch.max(0) as u64);
    for entry in walkdir::WalkDir::new(root).contents_first(true) {
        let entry = entry.map_err(|e| {
            let path = e.path().unwrap_or(root).to_path_buf();
            SourceError::io("reading", &path)(std::io::Error::other(e))
        })?;
        if entry.file_type().is_symlink() {
            continue;
        }
        let path = entry.path();
        let meta = entry
            .metadata()
            .map_err(|e| SourceError::io("reading", path)(std::io::Error::other(e)))?;
        if meta.modified().is_ok_and(|m| m > limit) {
            std::fs::File::open(path)
                .and_then(|f| f.set_modified(limit))
                .map_err(SourceError::io("setting the time of", path))?;
        }
    }
    Ok(())
}

fn check_single_name(recipe: &Recipe, name: &str) -> Result<(), SourceError> {
    let mut comps = Path::new(name).components();
    match (comps.next(), comps.next()) {
        (Some(std::path::Component::Normal(_)), None) => Ok(()),
        _ => Err(SourceError::Local {
            recipe: recipe.name.clone(),
            path: name.to_string(),
            reason: "must be a single file or folder name".to_string(),
        }),
    }
}

fn copy_distfile(
    recipe: &Recipe,
    mut verified: std::fs::File,
    cached: &Path,
    filename: &str,
    srcdir: &Path,
) -> Result<(), SourceError> {
    check_single_name(recipe, filename)?;
    let dest = srcdir.join(filename);
    if dest.symlink_metadata().is_ok() {
        return Err(SourceError::Collision {
            recipe: recipe.name.clone(),
            path: dest,
        });
    }
    let mut w = tree::TreeWriter::new(srcdir, cached)?;
    w.file(Path::new(filename), 0o644, None, &mut verified)?;
    w.finish()?;
    Ok(())
}

#[cfg(test)]
mod tests;
