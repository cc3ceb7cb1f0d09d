//! The one verified-package reader: everything that uses a package's files
//! (build-dependency install, images, `forge verify`, `forge pull-repo`) and
//! the planner's quick check go through [`VerifiedPackage`].
//!
//! The file is opened once and read front to back; each step trusts only
//! what the step before it verified, in apk's order:
//!
//! 1. the signature member (≤ [`MAX_SIGNATURE_MEMBER`]) is parsed;
//! 2. the control member (≤ [`MAX_CONTROL_MEMBER`]) is decompressed while
//!    its compressed bytes are captured; those bytes must carry a trusted
//!    signature, or hash (SHA-1, the identity) to the `C:` of a verified
//!    index, *before* the control tar is parsed;
//! 3. `.PKGINFO` (≤ [`MAX_PKGINFO`]) gives `datahash`;
//! 4. the data member is hashed (SHA-256) as it is decompressed, each entry
//!    is checked ([`super::data`]) and its content kept in a spool (memory
//!    up to a cap, then an unlinked temp file);
//! 5. only when the data member hashed to `datahash`, nothing follows it
//!    and every file's SHA-1 equals its `APK-TOOLS.checksum.SHA1` record
//!    does [`VerifiedPackage::open`] return. Contents are then served from
//!    the spool, never from the file again.

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};

use sha1::{Digest as _, Sha1};
use sha2::Sha256;

use super::PkgInfo;
use super::data::{self, DataEntry};
use super::member::{
    MAX_CONTROL_MEMBER, MAX_PKGINFO, MAX_SIGNATURE_MEMBER, Tap, inflate_member, parse_small_tar,
    read_small_member, signatures,
};
use super::read::{Part, ReadError, VerifyError, check_signatures};
use super::spool::{SPOOL_MEMORY, Spool};
use crate::sign::TrustedKeys;

/// What vouches for a package.
#[derive(Debug, Clone, Copy)]
pub enum Trust<'a> {
    /// Its own signature, by one of these keys.
    Signed(&'a TrustedKeys),
    /// Its identity (SHA-1 of the control member) is this `C:` of an index
    /// whose signature was already verified.
    Indexed(&'a [u8; 20]),
    /// Both: a trusted signature and the index's identity.
    SignedAndIndexed(&'a TrustedKeys, &'a [u8; 20]),
    /// Either: an identity equal to this `C:` of a verified index, or else a
    /// trusted signature (what may enter a repository's index).
    IndexedOrSigned(&'a [u8; 20], &'a TrustedKeys),
}

/// A package could not be read or did not verify.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    /// The file is unreadable or a section is malformed.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// A check failed.
    #[error(transparent)]
    Verify(#[from] VerifyError),
    /// The identity differs from the one the signed index gives.
    #[error("identity differs from the signed index (C:)")]
    Identity {
        /// The file's identity.
        actual: [u8; 20],
    },
}

impl PackageError {
    /// The verification failure, if that is what this is.
    pub fn verify_error(&self) -> Option<&VerifyError> {
        match self {
            PackageError::Verify(v) => Some(v),
            _ => None,
        }
    }
}

/// The verified front of a package.
struct Head {
    info: PkgInfo,
    signer: Option<String>,
    identity: [u8; 20],
    control_entries: Vec<String>,
    datahash: String,
}

/// A package that passed every check; its entries and contents.
pub struct VerifiedPackage {
    /// The file it was read from.
    pub path: PathBuf,
    /// `.PKGINFO`.
    pub info: PkgInfo,
    /// The key whose signature verified (`None` when trusted by index only).
    pub signer: Option<String>,
    /// SHA-1 of the control member: the identity (`C:`).
    pub identity: [u8; 20],
    /// Names of the control entries (`.PKGINFO`, scripts).
    pub control_entries: Vec<String>,
    /// The file size.
    pub file_size: u64,
    /// SHA-256 of the whole file.
    pub sha256: [u8; 32],
    entries: Vec<DataEntry>,
    spool: Spool,
}

impl std::fmt::Debug for VerifiedPackage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifiedPackage")
            .field("path", &self.path)
            .field("identity", &hex::encode(self.identity))
            .field("entries", &self.entries.len())
            .finish_non_exhaustive()
    }
}

impl VerifiedPackage {
    /// Open, verify and read the package at `path` in one pass.
    pub fn open(path: &Path, trust: Trust<'_>) -> Result<VerifiedPackage, PackageError> {
        let io_err = |source| ReadError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io_err)?;
        let mut tap = Tap::new(BufReader::with_capacity(1 << 20, file));
        tap.file_hash = Some(Sha256::new());
        let head = verify_head(&mut tap, trust)?;
        let mut spool = Spool::new(SPOOL_MEMORY);
        let mut entries = Vec::new();
        tap.hash = Some(Sha256::new());
        let walked = read_data(&mut tap, &mut spool, &mut entries).map_err(io_err)?;
        check_datahash(&head.datahash, tap.hash.take())?;
        walked?;
        data::check_checksums(&entries)?;
        Ok(VerifiedPackage {
            path: path.to_path_buf(),
            info: head.info,
            signer: head.signer,
            identity: head.identity,
            control_entries: head.control_entries,
            file_size: tap.pos,
            sha256: tap
                .file_hash
                .take()
                .map(|h| h.finalize().into())
                .unwrap_or_default(),
            entries,
            spool,
        })
    }

    /// The data entries, in package order.
    pub fn entries(&self) -> &[DataEntry] {
        &self.entries
    }

    /// A file entry's content (empty for other kinds).
    pub fn content(&self, entry: &DataEntry) -> io::Result<Cow<'_, [u8]>> {
        match entry.slot {
            Some(slot) => self.spool.read(slot, entry.size),
            None => Ok(Cow::Borrowed(&[])),
        }
    }

    /// Move a file entry's content out (in-memory contents are not copied;
    /// a second take gives an empty buffer).
    pub fn take_content(&mut self, index: usize) -> io::Result<Vec<u8>> {
        let Some(e) = self.entries.get(index) else {
            return Ok(Vec::new());
        };
        match e.slot {
            Some(slot) => self.spool.take(slot, e.size),
            None => Ok(Vec::new()),
        }
    }
}

/// The verified front of a package file (signature or identity, then
/// `.PKGINFO`), read without touching the data member: what indexing needs.
/// Nothing of the control member is parsed before it is vouched for.
#[derive(Debug)]
pub struct VerifiedHead {
    /// `.PKGINFO`.
    pub info: PkgInfo,
    /// The key whose signature verified (`None` when trusted by index only).
    pub signer: Option<String>,
    /// SHA-1 of the control member: the identity (`C:`).
    pub identity: [u8; 20],
    /// The file size.
    pub file_size: u64,
}

impl VerifiedHead {
    /// Open `path` and verify its signature and control members.
    pub fn open(path: &Path, trust: Trust<'_>) -> Result<VerifiedHead, PackageError> {
        let io_err = |source| ReadError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io_err)?;
        let file_size = file.metadata().map_err(io_err)?.len();
        let mut tap = Tap::new(BufReader::with_capacity(64 << 10, file));
        let head = verify_head(&mut tap, trust)?;
        Ok(VerifiedHead {
            info: head.info,
            signer: head.signer,
            identity: head.identity,
            file_size,
        })
    }
}

/// Check the signature/identity and datahash of a package held in memory
/// (`bytes` is the whole file), without decompressing the data member: the
/// planner's cheap check of a recorded artifact. Returns the signer, if the
/// package's signature was checked.
pub fn verify_parts(bytes: &[u8], trust: Trust<'_>) -> Result<Option<String>, PackageError> {
    let mut tap = Tap::new(bytes);
    let head = verify_head(&mut tap, trust)?;
    tap.hash = Some(Sha256::new());
    tap.drain().map_err(|e| ReadError::Corrupt {
        part: Part::Data,
        reason: e.to_string(),
    })?;
    check_datahash(&head.datahash, tap.hash.take())?;
    Ok(head.signer)
}

fn corrupt(part: Part) -> impl Fn(String) -> ReadError {
    move |reason| ReadError::Corrupt { part, reason }
}

/// Steps 1-3: signature, control member, `.PKGINFO`.
fn verify_head<R: BufRead>(tap: &mut Tap<R>, trust: Trust<'_>) -> Result<Head, PackageError> {
    let (first, _) =
        read_small_member(tap, MAX_SIGNATURE_MEMBER).map_err(corrupt(Part::Signature))?;
    let sigs = signatures(first).ok_or(VerifyError::Unsigned)?;
    tap.capture(MAX_CONTROL_MEMBER);
    let control_tar = inflate_member(tap, MAX_CONTROL_MEMBER);
    let control_raw = tap.take_capture();
    let control_tar = control_tar.map_err(corrupt(Part::Control))?;
    let identity: [u8; 20] = Sha1::digest(&control_raw).into();
    let (keys, want) = match trust {
        Trust::Signed(k) => (Some(k), None),
        Trust::Indexed(i) => (None, Some(i)),
        Trust::SignedAndIndexed(k, i) => (Some(k), Some(i)),
        Trust::IndexedOrSigned(i, _) if *i == identity => (None, None),
        Trust::IndexedOrSigned(_, k) => (Some(k), None),
    };
    if want.is_some_and(|w| *w != identity) {
        return Err(PackageError::Identity { actual: identity });
    }
    let signer = match keys {
        Some(k) => Some(check_signatures(&sigs, &control_raw, k)?),
        None => None,
    };
    // Only now, trusted, is the control tar parsed.
    let (info, control_entries) = parse_control(&control_tar)?;
    let datahash = info.datahash.clone().ok_or(VerifyError::MissingDataHash)?;
    Ok(Head {
        info,
        signer,
        identity,
        control_entries,
        datahash,
    })
}

/// `.PKGINFO` and the names of the control entries.
pub(crate) fn parse_control(tar: &[u8]) -> Result<(PkgInfo, Vec<String>), ReadError> {
    let bad = corrupt(Part::Control);
    let mut info = None;
    let mut names = Vec::new();
    for (name, bytes) in parse_small_tar(tar).map_err(&bad)? {
        if !name.starts_with('.') || name.contains('/') || name.starts_with(".SIGN.") {
            return Err(bad(format!("unexpected entry `{name}`")));
        }
        if name == ".PKGINFO" {
            if bytes.len() > MAX_PKGINFO {
                return Err(bad(format!(".PKGINFO is larger than {MAX_PKGINFO} bytes")));
            }
            info = Some(PkgInfo::parse(&bytes).map_err(|e| bad(format!(".PKGINFO: {e}")))?);
        }
        names.push(name);
    }
    Ok((info.ok_or_else(|| bad("no .PKGINFO".into()))?, names))
}

/// Step 4: walk the data member into `spool`, then hash the rest of the
/// file. The outer error is I/O on the file; the inner one what was wrong
/// with the data (reported only if the datahash matched).
pub(crate) fn read_data<R: BufRead>(
    tap: &mut Tap<R>,
    spool: &mut Spool,
    entries: &mut Vec<DataEntry>,
) -> io::Result<Result<(), VerifyError>> {
    let walked = if tap.fill_buf()?.is_empty() {
        Err(VerifyError::DataCorrupt("missing".into()))
    } else {
        data::walk(flate2::bufread::GzDecoder::new(&mut *tap), spool, entries).and_then(|()| {
            match tap.fill_buf() {
                Ok(rest) if !rest.is_empty() => {
                    Err(VerifyError::DataCorrupt("more than one data member".into()))
                }
                _ => Ok(()),
            }
        })
    };
    // Hash whatever is left, so datahash covers the rest of the file.
    tap.drain()?;
    Ok(walked)
}

fn check_datahash(expected: &str, hash: Option<Sha256>) -> Result<(), VerifyError> {
    let actual = hash.map(|h| hex::encode(h.finalize())).unwrap_or_default();
    if !expected.eq_ignore_ascii_case(&actual) {
        return Err(VerifyError::DataHash {
            expected: expected.to_string(),
            actual,
        });
    }
    Ok(())
}
