//! Cheap re-verification of a package: identity or signature, and
//! `datahash`, without decompressing the data section.
//!
//! The build planner checks every recorded artifact on every run, so this
//! must cost a hash of the file, not a full unpack. Two ways to trust a
//! package, as apk itself does:
//!
//! - [`verify_indexed`]: the package's identity (SHA-1 of its control
//!   member) equals the `C:` of a signed index whose signature was already
//!   checked, so the index signature covers the package (no RSA per package);
//! - [`verify_signed_parts`]: the package's own signature, for a package that
//!   no trusted index names yet.
//!
//! Both then check `datahash` against the SHA-256 of the data member. The
//! per-file SHA-1 checks ([`super::Package::verify`]) still run whenever a
//! package's files are used: installed as a build dependency, put in an
//! image, or checked by `forge verify`.

use std::path::Path;

use sha2::{Digest as _, Sha256};

use super::read::{Package, ReadError, VerifyError, check_signatures, split_signature};
use crate::sign::TrustedKeys;

/// Why a quick check failed.
#[derive(Debug, thiserror::Error)]
pub enum QuickCheckError {
    /// The file could not be read or parsed.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// Signature, identity or datahash did not verify.
    #[error(transparent)]
    Verify(#[from] VerifyError),
    /// The identity differs from the one the signed index gives.
    #[error("identity differs from the signed index (C:)")]
    Identity,
}

/// Check the package's own signature over its control member against
/// `trusted` (what an index vouches for: the control member carries
/// `datahash`). Returns the signing key's name.
pub fn verify_control_signature(
    pkg: &Package,
    trusted: &TrustedKeys,
) -> Result<String, VerifyError> {
    check_signatures(&pkg.signatures, &pkg.control, trusted)
}

/// Check the package's own signature against `trusted` and its data member
/// against `datahash`. `bytes` are the whole file at `path`. Returns the
/// signing key's name.
pub fn verify_signed_parts(
    path: &Path,
    bytes: &[u8],
    trusted: &TrustedKeys,
) -> Result<String, QuickCheckError> {
    let pkg = Package::open_control(path)?;
    let end = control_end(&pkg, bytes)?;
    let signer = check_signatures(&pkg.signatures, &pkg.control, trusted)?;
    check_datahash(&pkg, &bytes[end..])?;
    Ok(signer)
}

/// Check that the package at `path` (whole file in `bytes`) has the identity
/// that a signed, already verified index gives it, and that its data member
/// matches `datahash`.
pub fn verify_indexed(
    path: &Path,
    bytes: &[u8],
    identity: &[u8; 20],
) -> Result<(), QuickCheckError> {
    let pkg = Package::open_control(path)?;
    if &pkg.identity != identity {
        return Err(QuickCheckError::Identity);
    }
    let end = control_end(&pkg, bytes)?;
    check_datahash(&pkg, &bytes[end..])
}

/// Where the control member ends in `bytes`.
fn control_end(pkg: &Package, bytes: &[u8]) -> Result<usize, QuickCheckError> {
    let corrupt = |reason: String| ReadError::Corrupt {
        part: super::Part::Control,
        reason,
    };
    let start = match split_signature(bytes).map_err(corrupt)? {
        Some((_, offset)) => offset,
        None => 0,
    };
    let end = start + pkg.control.len();
    if bytes.get(start..end) != Some(pkg.control.as_slice()) {
        return Err(corrupt("the file changed while it was read".into()).into());
    }
    Ok(end)
}

fn check_datahash(pkg: &Package, data: &[u8]) -> Result<(), QuickCheckError> {
    let expected = pkg
        .info
        .datahash
        .clone()
        .ok_or(VerifyError::MissingDataHash)?;
    let actual = hex::encode(Sha256::digest(data));
    if !expected.eq_ignore_ascii_case(&actual) {
        return Err(VerifyError::DataHash { expected, actual }.into());
    }
    Ok(())
}
