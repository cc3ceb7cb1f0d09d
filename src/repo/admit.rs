//! Which `.apk` files found in a repository folder may enter its index.
//!
//! The index forge signs vouches for every package it names (apk trusts a
//! package whose control member hashes to an indexed `C:`), so a file in the
//! folder is never indexed on the strength of being there. A file is admitted
//! only when:
//!
//! 1. it is vouched for: the current index, verified against the trusted
//!    keys, names its file name with the same identity (`C:`, the SHA-1 of
//!    the compressed control member); or else its own signature over that
//!    member verifies against the trusted keys;
//! 2. only then is its control member parsed, with a `pkgname` and `pkgver`
//!    in apk's grammar;
//! 3. its file name is exactly `<pkgname>-<pkgver>.apk`;
//! 4. its arch is the folder's (or `noarch`).
//!
//! Steps 1-2 are the verified reader's front half
//! ([`VerifiedHead`]), so an untrusted control member is inflated
//! (capped) but never parsed. Anything else is left out with the reason, and
//! the caller warns naming the file. Step 1 keeps the common path cheap:
//! packages the signed index already names cost no RSA check (see
//! "Freshness" in docs/architecture.md).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use super::{INDEX_FILE, RepoError, io_err};
use crate::apk::index::{Index, IndexEntry};
use crate::apk::{PackageError, Trust, VerifiedHead, VerifyError};
use crate::sign::TrustedKeys;

/// The outcome of scanning a folder.
#[derive(Debug, Default)]
pub(super) struct Scan {
    /// Admitted packages, by file name.
    pub entries: BTreeMap<String, IndexEntry>,
    /// `.apk` files left out, with why.
    pub left_out: Vec<(PathBuf, String)>,
}

/// Scan `dir` for `.apk` files and admit what may be indexed.
pub(super) fn scan(dir: &Path, arch: &str, trusted: &TrustedKeys) -> Result<Scan, RepoError> {
    let vouched = vouched(dir, trusted);
    let mut out = Scan::default();
    let mut paths = Vec::new();
    for item in fs::read_dir(dir).map_err(io_err("reading", dir))? {
        let path = item.map_err(io_err("reading", dir))?.path();
        if path.extension().is_some_and(|e| e == "apk") && path.is_file() {
            paths.push(path);
        }
    }
    paths.sort();
    for path in paths {
        match admit(&path, arch, &vouched, trusted) {
            Ok((name, entry)) => {
                out.entries.insert(name, entry);
            }
            Err(why) => out.left_out.push((path, why)),
        }
    }
    Ok(out)
}

/// File name → identity of every entry of the current index, when that index
/// verifies against `trusted` (else nothing is vouched for by it).
fn vouched(dir: &Path, trusted: &TrustedKeys) -> BTreeMap<String, [u8; 20]> {
    let path = dir.join(INDEX_FILE);
    if !path.exists() {
        return BTreeMap::new();
    }
    match Index::read(&path, trusted) {
        Ok(index) => index
            .entries
            .iter()
            .map(|e| (e.file_name(), e.checksum))
            .collect(),
        Err(e) => {
            tracing::debug!(
                "{}: not trusted ({e}); every package is checked on its own",
                path.display()
            );
            BTreeMap::new()
        }
    }
}

/// Admit one file, or say why not.
fn admit(
    path: &Path,
    arch: &str,
    vouched: &BTreeMap<String, [u8; 20]>,
    trusted: &TrustedKeys,
) -> Result<(String, IndexEntry), String> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or("the file name is not UTF-8")?
        .to_string();
    let trust = match vouched.get(&name) {
        Some(identity) => Trust::IndexedOrSigned(identity, trusted),
        None => Trust::Signed(trusted),
    };
    let pkg = VerifiedHead::open(path, trust).map_err(|e| match e {
        PackageError::Verify(v) if is_signature_failure(&v) => {
            format!("it is not vouched for: {v}")
        }
        e => crate::util::error_chain(&e),
    })?;
    let expected = pkg.info.file_name();
    if name != expected {
        return Err(format!(
            "its file name must be `{expected}` (from its pkgname and pkgver)"
        ));
    }
    if pkg.info.arch != arch && pkg.info.arch != "noarch" {
        return Err(format!("it is for {}, not {arch}", pkg.info.arch));
    }
    let entry = IndexEntry::from_package(&pkg.info, pkg.identity, pkg.file_size);
    Ok((name, entry))
}

/// Whether `e` says that nothing trusted vouches for the package.
fn is_signature_failure(e: &VerifyError) -> bool {
    matches!(
        e,
        VerifyError::Unsigned
            | VerifyError::UntrustedKey { .. }
            | VerifyError::Sha1Refused { .. }
            | VerifyError::BadSignature { .. }
    )
}
