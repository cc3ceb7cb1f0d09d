//! Reading a package for inspection (`forge inspect`, indexing), and the
//! error types shared with the verified reader.
//!
//! [`Package`] checks nothing: it reports what a file claims (signatures,
//! `.PKGINFO`, entries with their recorded and computed checksums). It uses
//! the same member and entry parsing, with the same caps, as
//! [`super::VerifiedPackage`], which is what everything that *uses* a
//! package's files goes through.

use std::fs;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};

use sha1::{Digest as _, Sha1};
use sha2::Sha256;

use super::PkgInfo;
use super::data::DataEntry;
use super::member::{MAX_CONTROL_MEMBER, Tap, inflate_member, parse_small_tar, signatures};
use super::spool::Spool;
use super::verified::{parse_control, read_data};
use crate::sign::{SigAlg, TrustedKeys};

/// A section of a package file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The signature member.
    Signature,
    /// The control member (`.PKGINFO`).
    Control,
    /// The data member (the files).
    Data,
}

impl std::fmt::Display for Part {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Part::Signature => "signature",
            Part::Control => "control",
            Part::Data => "data",
        })
    }
}

/// A package file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file could not be opened or read.
    #[error("reading {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A section is corrupt or malformed.
    #[error("{part} section is corrupt: {reason}")]
    Corrupt {
        /// Which section.
        part: Part,
        /// What is wrong.
        reason: String,
    },
}

/// A package failed verification.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    /// No `.SIGN.*` entry.
    #[error("signature: package is not signed")]
    Unsigned,
    /// Signed, but by no trusted key.
    #[error("signature: signed by untrusted key {}", names.join(", "))]
    UntrustedKey {
        /// The key names in the signature entries.
        names: Vec<String>,
    },
    /// The only signature by a trusted key uses SHA-1, which the project
    /// does not accept.
    #[error(
        "signature: only a SHA-1 signature (.SIGN.RSA.) by {key}, and SHA-1 signatures are refused (set accept-sha1-signatures = true in forge.toml to accept them)"
    )]
    Sha1Refused {
        /// The key.
        key: String,
    },
    /// A trusted key's signature does not match the control section.
    #[error(
        "signature: signature by {key} does not match the control section (control or signature altered)"
    )]
    BadSignature {
        /// The key.
        key: String,
    },
    /// `.PKGINFO` has no `datahash`.
    #[error("control: .PKGINFO has no datahash")]
    MissingDataHash,
    /// The data section's SHA-256 differs from `datahash`.
    #[error("datahash: data section hashes to {actual}, .PKGINFO says {expected}")]
    DataHash {
        /// From `.PKGINFO`.
        expected: String,
        /// Computed.
        actual: String,
    },
    /// The data section does not decompress or parse.
    #[error("data: {0}")]
    DataCorrupt(String),
    /// A file's content differs from its checksum.
    #[error("file checksum: {path}: content hashes to {actual}, header says {expected}")]
    FileChecksum {
        /// The file.
        path: String,
        /// From the PAX record.
        expected: String,
        /// Computed.
        actual: String,
    },
    /// An entry is of a refused kind or at a refused path.
    #[error("entry `{entry}`: {reason}")]
    UnsafeEntry {
        /// The entry path as stored.
        entry: String,
        /// Why it is refused.
        reason: String,
    },
    /// A file or symlink has no checksum record.
    #[error("file checksum: {path} has no APK-TOOLS.checksum.SHA1 record")]
    MissingChecksum {
        /// The file.
        path: String,
    },
}

/// A signature entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// The digest algorithm.
    pub alg: SigAlg,
    /// The public key file name.
    pub key: String,
    /// The raw signature.
    pub bytes: Vec<u8>,
}

/// A parsed package file.
#[derive(Debug, Clone)]
pub struct Package {
    /// The file.
    pub path: PathBuf,
    /// `.PKGINFO`.
    pub info: PkgInfo,
    /// The `.SIGN.*` entries (other algorithms are skipped).
    pub signatures: Vec<Signature>,
    /// Names of the control entries (`.PKGINFO`, scripts).
    pub control_entries: Vec<String>,
    /// The compressed control member.
    pub control: Vec<u8>,
    /// SHA-1 of the control member: the identity (`C:`).
    pub identity: [u8; 20],
    /// The file size.
    pub file_size: u64,
    /// SHA-256 of everything after the control member (the data member).
    pub data_sha256: Option<[u8; 32]>,
    /// The data entries (empty when only the control part was read).
    pub files: Vec<DataEntry>,
    /// Why the data section could not be read completely, if so.
    pub data_error: Option<String>,
}

impl Package {
    /// Read a whole package: signature, control and data.
    pub fn open(path: &Path) -> Result<Package, ReadError> {
        Self::read(path, true)
    }

    /// Read only the signature and control members (for indexing).
    pub fn open_control(path: &Path) -> Result<Package, ReadError> {
        Self::read(path, false)
    }

    fn read(path: &Path, with_data: bool) -> Result<Package, ReadError> {
        let io_err = |source| ReadError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = fs::File::open(path).map_err(io_err)?;
        let file_size = file.metadata().map_err(io_err)?.len();
        let capacity = if with_data { 1 << 20 } else { 64 << 10 };
        let mut tap = Tap::new(BufReader::with_capacity(capacity, file));
        let (signatures, control_tar, control) = read_head(&mut tap)?;
        let (info, control_entries) = parse_control(&control_tar)?;
        let identity: [u8; 20] = Sha1::digest(&control).into();
        let mut pkg = Package {
            path: path.to_path_buf(),
            info,
            signatures,
            control_entries,
            control,
            identity,
            file_size,
            data_sha256: None,
            files: Vec::new(),
            data_error: None,
        };
        if with_data {
            tap.hash = Some(Sha256::new());
            let walked =
                read_data(&mut tap, &mut Spool::discard(), &mut pkg.files).map_err(io_err)?;
            pkg.data_error = walked.err().map(|e| e.to_string());
            pkg.data_sha256 = tap.hash.take().map(|h| h.finalize().into());
        }
        Ok(pkg)
    }
}

/// What [`read_head`] returns: the signatures, the decompressed control tar
/// and the compressed control member.
type RawHead = (Vec<Signature>, Vec<u8>, Vec<u8>);

/// The signatures (empty when unsigned), the decompressed control tar and
/// the compressed control member, leaving `tap` at the data member.
fn read_head<R: BufRead>(tap: &mut Tap<R>) -> Result<RawHead, ReadError> {
    let corrupt = |part| move |reason| ReadError::Corrupt { part, reason };
    tap.capture(MAX_CONTROL_MEMBER);
    let first = inflate_member(tap, MAX_CONTROL_MEMBER);
    let first_raw = tap.take_capture();
    let first = first.map_err(corrupt(Part::Signature))?;
    let entries = parse_small_tar(&first).map_err(corrupt(Part::Signature))?;
    if !entries
        .first()
        .is_some_and(|(n, _)| n.starts_with(".SIGN."))
    {
        return Ok((Vec::new(), first, first_raw));
    }
    let sigs = signatures(entries).ok_or_else(|| {
        corrupt(Part::Signature)("unexpected entry after the signatures".to_string())
    })?;
    tap.capture(MAX_CONTROL_MEMBER);
    let control = inflate_member(tap, MAX_CONTROL_MEMBER);
    let raw = tap.take_capture();
    Ok((sigs, control.map_err(corrupt(Part::Control))?, raw))
}

/// Check the package's own signature over its control member against
/// `trusted` (what an index vouches for: the control member carries
/// `datahash`). Returns the signing key's name. For indexing only: whatever
/// uses the package's files goes through [`super::VerifiedPackage`].
pub fn verify_control_signature(
    pkg: &Package,
    trusted: &TrustedKeys,
) -> Result<String, VerifyError> {
    check_signatures(&pkg.signatures, &pkg.control, trusted)
}

/// Find a trusted signature over `signed`; the signer's key name.
pub(crate) fn check_signatures(
    signatures: &[Signature],
    signed: &[u8],
    trusted: &TrustedKeys,
) -> Result<String, VerifyError> {
    if signatures.is_empty() {
        return Err(VerifyError::Unsigned);
    }
    let mut bad = None;
    let mut sha1_refused = None;
    for s in signatures {
        // SHA-1 (`.SIGN.RSA.`) counts only where the project accepts it.
        if s.alg == SigAlg::Rsa && !trusted.accepts_sha1() {
            if trusted.contains(&s.key) {
                sha1_refused = sha1_refused.or(Some(s.key.clone()));
            }
            continue;
        }
        match trusted.verify(&s.key, s.alg, signed, &s.bytes) {
            Some(true) => return Ok(s.key.clone()),
            Some(false) => bad = bad.or(Some(s.key.clone())),
            None => {}
        }
    }
    match (bad, sha1_refused) {
        (Some(key), _) => Err(VerifyError::BadSignature { key }),
        (None, Some(key)) => Err(VerifyError::Sha1Refused { key }),
        (None, None) => Err(VerifyError::UntrustedKey {
            names: signatures.iter().map(|s| s.key.clone()).collect(),
        }),
    }
}
