//! `forge pull-repo REF --out DIR`: fetch a package repository published with
//! `forge publish --repo` and install it only once all of it verifies.
//!
//! The registry is untrusted, so the order matters:
//!
//! 1. the trusted keys are loaded before anything is pulled (so nothing
//!    pulled can add to them), and an empty key set is an error;
//! 2. the artifact is downloaded into a staging folder next to `DIR` (same
//!    filesystem, so the final renames are atomic), refusing any layer that
//!    is not `<arch>/APKINDEX.tar.gz` or `<arch>/<name>.apk` and any blob
//!    whose size or digest differs from its descriptor;
//! 3. every architecture must have an index signed by a trusted key, every
//!    package the index names must be there and match its `C:`/`S:` and
//!    verify in full, and no package may be there that the index does not
//!    name;
//! 4. only then are the files renamed into `DIR`, packages first and each
//!    index last. On any failure `DIR` is left exactly as it was.
//!
//! A pull killed with `kill -9` leaves its staging folder behind, so each
//! run first removes stale ones: folders named `.forge-pull-*` beside (or
//! in) `DIR` whose `.lock` file no process holds. A running pull holds an
//! exclusive lock on its own `.lock` from before the file has that name to
//! its end, so a folder in use is never touched; a folder without `.lock`
//! (not made by this version) is left alone.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};

use crate::registry::artifact::{self, RepoFile};
use crate::registry::{Reference, artifact::INDEX_NAME};
use crate::settings::Settings;
use crate::sign::TrustedKeys;

/// Arguments of `forge pull-repo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The artifact: HOST[:PORT]/REPO[:TAG|@DIGEST].
    #[arg(value_name = "REF")]
    reference: String,
    /// Where to write the repository (`DIR/<arch>/…`).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Trust the `*.rsa.pub` keys in DIR instead of the project's `keys/`.
    #[arg(long, value_name = "DIR")]
    keys_dir: Option<PathBuf>,
    /// Plain HTTP.
    #[arg(long)]
    insecure: bool,
}

/// Run `forge pull-repo`.
pub fn run(settings: &Settings, args: Args) -> Result<ExitCode> {
    let dir = args.keys_dir.clone().unwrap_or_else(|| settings.keys_dir());
    let trusted = crate::sign::load_trust(settings, &dir)
        .with_context(|| format!("loading keys from {}", dir.display()))?;
    if trusted.names().next().is_none() {
        bail!(
            "no trusted keys (*.rsa.pub) in {}: pull-repo installs only what they verify",
            dir.display()
        );
    }
    let r = Reference::parse(&args.reference)?;
    let client = super::publish::client_for(settings, &r.registry, args.insecure, false)?;
    for stale in sweep_stale_staging(&args.out) {
        settings.shell.status(
            "Removed",
            format!("stale staging folder {}", stale.display()),
        );
    }
    let staging = staging_dir(&args.out)?;
    let files = artifact::pull_repository(&client, &r.repository, &r.selector(), staging.path())
        .with_context(|| format!("pulling {}", args.reference))?;
    for (index, signer) in verify_staged(staging.path(), &files, &trusted)
        .with_context(|| format!("verifying {}", args.reference))?
    {
        settings.shell.status(
            "Verified",
            format!("{} (signed by {signer})", index.display()),
        );
    }
    let written = artifact::install_staged(staging.path(), &files, &args.out)
        .with_context(|| format!("installing into {}", args.out.display()))?;
    settings.shell.status(
        "Pulled",
        format!(
            "{} files from {} into {}",
            written.len(),
            args.reference,
            args.out.display()
        ),
    );
    settings.shell.event(&serde_json::json!({
        "event": "pull-repo", "reference": args.reference, "files": written, "ok": true,
    }));
    Ok(ExitCode::SUCCESS)
}

/// The name prefix of staging folders.
const STAGING_PREFIX: &str = ".forge-pull-";
/// The lock file in a staging folder, held while its pull runs.
const STAGING_LOCK: &str = ".lock";

/// A staging folder and the lock that marks it in use. Dropping it removes
/// the folder, then releases the lock.
struct Staging {
    dir: tempfile::TempDir,
    _lock: File,
}

impl Staging {
    fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// A fresh, locked folder beside `out` (in its parent, so renames stay on
/// one filesystem and `out` itself is untouched until the end); inside `out`
/// only when the parent cannot be written.
fn staging_dir(out: &Path) -> Result<Staging> {
    let abs = std::path::absolute(out).with_context(|| format!("resolving {}", out.display()))?;
    let make = |dir: &Path| -> std::io::Result<Staging> {
        let dir = tempfile::Builder::new()
            .prefix(STAGING_PREFIX)
            .tempdir_in(dir)?;
        // Locked before it is named `.lock`: a sweeper that finds `.lock`
        // always finds it held.
        let tmp = dir.path().join(".lock.new");
        let lock = File::create_new(&tmp)?;
        lock.try_lock().map_err(std::io::Error::from)?;
        std::fs::rename(&tmp, dir.path().join(STAGING_LOCK))?;
        Ok(Staging { dir, _lock: lock })
    };
    if let Some(parent) = abs.parent()
        && std::fs::create_dir_all(parent).is_ok()
        && let Ok(t) = make(parent)
    {
        return Ok(t);
    }
    std::fs::create_dir_all(&abs).with_context(|| format!("creating {}", abs.display()))?;
    make(&abs).with_context(|| format!("creating a staging folder in {}", abs.display()))
}

/// Remove the staging folders of killed pulls where [`staging_dir`] makes
/// them (beside `out` and in it); returns the folders removed. Cleaning up is
/// best effort: what cannot be read or removed is left, logged at debug.
fn sweep_stale_staging(out: &Path) -> Vec<PathBuf> {
    let Ok(abs) = std::path::absolute(out) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for dir in abs.parent().into_iter().chain([abs.as_path()]) {
        let Ok(items) = std::fs::read_dir(dir) else {
            continue;
        };
        for item in items.flatten() {
            let ours = item
                .file_name()
                .to_string_lossy()
                .starts_with(STAGING_PREFIX);
            // `file_type` does not follow symlinks: only real folders.
            if ours && item.file_type().is_ok_and(|t| t.is_dir()) {
                let path = item.path();
                match remove_if_stale(&path) {
                    Ok(true) => removed.push(path),
                    Ok(false) => {}
                    Err(e) => tracing::debug!("leaving {}: {e}", path.display()),
                }
            }
        }
    }
    removed
}

/// Remove `dir` when its `.lock` exists and no process holds it.
fn remove_if_stale(dir: &Path) -> std::io::Result<bool> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let lock = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(dir.join(STAGING_LOCK))
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    match lock.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => return Ok(false),
        Err(std::fs::TryLockError::Error(e)) => return Err(e),
    }
    // Held until the folder is gone, so no other sweeper races this one.
    std::fs::remove_dir_all(dir)?;
    drop(lock);
    Ok(true)
}

/// Check the staged repository as a whole: an index per architecture,
/// signed by a trusted key, naming exactly the packages present, each of
/// which verifies. Returns each index with its signer.
fn verify_staged(
    staging: &Path,
    files: &[RepoFile],
    trusted: &TrustedKeys,
) -> Result<Vec<(PathBuf, String)>> {
    let mut by_arch: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for f in files {
        by_arch.entry(&f.arch).or_default().insert(&f.name);
    }
    if by_arch.is_empty() {
        bail!("the artifact holds no files (an {INDEX_NAME} is required)");
    }
    let mut verified = Vec::new();
    for (arch, names) in by_arch {
        if !names.contains(INDEX_NAME) {
            bail!("{arch}/ has packages but no {INDEX_NAME}: nothing vouches for them");
        }
        let rel = Path::new(arch).join(INDEX_NAME);
        let index = super::verify::verify_index(&staging.join(&rel), trusted)
            .map_err(|problem| anyhow::anyhow!("{}: {problem}", rel.display()))?;
        let named: BTreeSet<String> = index.entries.iter().map(|e| e.file_name()).collect();
        if let Some(extra) = names
            .iter()
            .find(|n| **n != INDEX_NAME && !named.contains(**n))
        {
            bail!("{arch}/{extra} is not named by {}", rel.display());
        }
        verified.push((rel, index.signer));
    }
    Ok(verified)
}
