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

use std::collections::{BTreeMap, BTreeSet};
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

/// A fresh folder beside `out` (in its parent, so renames stay on one
/// filesystem and `out` itself is untouched until the end); inside `out`
/// only when the parent cannot be written.
fn staging_dir(out: &Path) -> Result<tempfile::TempDir> {
    let abs = std::path::absolute(out).with_context(|| format!("resolving {}", out.display()))?;
    let make = |dir: &Path| {
        tempfile::Builder::new()
            .prefix(".forge-pull-")
            .tempdir_in(dir)
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
