//! Reading and verifying package files.
//!
//! The file is read once, front to back, through a [`Tap`]: a `BufRead`
//! wrapper that counts, captures or hashes exactly the compressed bytes each
//! gzip member consumes. One `bufread::GzDecoder` per member stops at that
//! member's trailer, so the boundaries are exact: the signature and control
//! members are captured (the control bytes are what the signature covers and
//! what the identity hashes), the data member is hashed with SHA-256 on the
//! fly. A data member that fails to decompress is still hashed to the end of
//! the file, so verification can say "datahash mismatch" rather than a bare
//! decoder error.
//!
//! Verification follows apk's order: a trusted signature over the control
//! member, then `datahash` against the data member, then each file's SHA-1
//! against its PAX `APK-TOOLS.checksum.SHA1` record.

use std::fs;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use sha1::{Digest as _, Sha1};
use sha2::Sha256;

use super::PkgInfo;
use super::tar::{self, Kind};
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
    /// A file or symlink has no checksum record.
    #[error("file checksum: {path} has no APK-TOOLS.checksum.SHA1 record")]
    MissingChecksum {
        /// The file.
        path: String,
    },
}

/// One entry of the data section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// Path as stored (directories end in `/`).
    pub path: String,
    /// Kind.
    pub kind: Kind,
    /// Permission bits.
    pub mode: u32,
    /// Content length.
    pub size: u64,
    /// Link target (symlinks and hard links).
    pub link: String,
    /// The PAX checksum, hex.
    pub expected_sha1: Option<String>,
    /// The computed checksum (files: content; symlinks: target), hex.
    pub actual_sha1: Option<String>,
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
    pub files: Vec<FileEntry>,
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
        let Head {
            info,
            signatures,
            control_entries,
            control_raw,
        } = read_head(&mut tap)?;
        let identity: [u8; 20] = Sha1::digest(&control_raw).into();
        let mut pkg = Package {
            path: path.to_path_buf(),
            info,
            signatures,
            control_entries,
            control: control_raw,
            identity,
            file_size,
            data_sha256: None,
            files: Vec::new(),
            data_error: None,
        };
        if with_data {
            tap.hash = Some(Sha256::new());
            match read_data(&mut tap, &mut pkg.files) {
                Ok(()) => {
                    if !tap.fill_buf().map_err(io_err)?.is_empty() {
                        pkg.data_error = Some("more than one data member".into());
                    }
                }
                Err(e) => pkg.data_error = Some(e),
            }
            // Hash whatever is left, so datahash covers the rest of the file.
            loop {
                let n = tap.fill_buf().map_err(io_err)?.len();
                if n == 0 {
                    break;
                }
                tap.consume(n);
            }
            pkg.data_sha256 = tap.hash.take().map(|h| h.finalize().into());
        }
        Ok(pkg)
    }

    /// Check signature, datahash and every file checksum, in apk's order.
    /// Returns the name of the key that signed the package.
    pub fn verify(&self, trusted: &TrustedKeys) -> Result<String, VerifyError> {
        let signer = check_signatures(&self.signatures, &self.control, trusted)?;
        let expected = self
            .info
            .datahash
            .clone()
            .ok_or(VerifyError::MissingDataHash)?;
        let actual = self.data_sha256.map(hex::encode).unwrap_or_default();
        if !expected.eq_ignore_ascii_case(&actual) {
            return Err(VerifyError::DataHash { expected, actual });
        }
        if let Some(e) = &self.data_error {
            return Err(VerifyError::DataCorrupt(e.clone()));
        }
        for f in &self.files {
            if !matches!(f.kind, Kind::File | Kind::Symlink) {
                continue;
            }
            match (&f.expected_sha1, &f.actual_sha1) {
                (None, _) => {
                    return Err(VerifyError::MissingChecksum {
                        path: f.path.clone(),
                    });
                }
                (Some(e), Some(a)) if e.eq_ignore_ascii_case(a) => {}
                (Some(e), a) => {
                    return Err(VerifyError::FileChecksum {
                        path: f.path.clone(),
                        expected: e.clone(),
                        actual: a.clone().unwrap_or_default(),
                    });
                }
            }
        }
        Ok(signer)
    }
}

/// The signature and control parts of a package.
struct Head {
    info: PkgInfo,
    signatures: Vec<Signature>,
    control_entries: Vec<String>,
    control_raw: Vec<u8>,
}

/// Read the signature member (if any) and the control member from `tap`,
/// leaving it at the start of the data member.
fn read_head<R: BufRead>(tap: &mut Tap<R>) -> Result<Head, ReadError> {
    let corrupt = |part, reason: String| ReadError::Corrupt { part, reason };

    tap.capture = Some(Vec::new());
    let first = read_small_member(tap).map_err(|e| corrupt(Part::Signature, e))?;
    let first_raw = tap.capture.take().unwrap_or_default();
    let is_sig = first.first().is_some_and(|(n, _)| n.starts_with(".SIGN."));
    let (signatures, control_members, control_raw) = if is_sig {
        let mut sigs = Vec::new();
        for (name, bytes) in first {
            if !name.starts_with(".SIGN.") {
                return Err(corrupt(
                    Part::Signature,
                    format!("unexpected entry `{name}`"),
                ));
            }
            if let Some((alg, key)) = SigAlg::parse_entry_name(&name) {
                sigs.push(Signature {
                    alg,
                    key: key.to_string(),
                    bytes,
                });
            }
        }
        tap.capture = Some(Vec::new());
        let control = read_small_member(tap).map_err(|e| corrupt(Part::Control, e))?;
        (sigs, control, tap.capture.take().unwrap_or_default())
    } else {
        (Vec::new(), first, first_raw)
    };
    let mut info = None;
    let mut control_entries = Vec::new();
    for (name, bytes) in &control_members {
        if !name.starts_with('.') || name.contains('/') || name.starts_with(".SIGN.") {
            return Err(corrupt(Part::Control, format!("unexpected entry `{name}`")));
        }
        if name == ".PKGINFO" {
            info = Some(
                PkgInfo::parse(bytes)
                    .map_err(|e| corrupt(Part::Control, format!(".PKGINFO: {e}")))?,
            );
        }
        control_entries.push(name.clone());
    }
    let info = info.ok_or_else(|| corrupt(Part::Control, "no .PKGINFO".into()))?;
    Ok(Head {
        info,
        signatures,
        control_entries,
        control_raw,
    })
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
    for s in signatures {
        match trusted.verify(&s.key, s.alg, signed, &s.bytes) {
            Some(true) => return Ok(s.key.clone()),
            Some(false) => bad = bad.or(Some(s.key.clone())),
            None => {}
        }
    }
    match bad {
        Some(key) => Err(VerifyError::BadSignature { key }),
        None => Err(VerifyError::UntrustedKey {
            names: signatures.iter().map(|s| s.key.clone()).collect(),
        }),
    }
}

/// Read one gzip member holding a small (cut) tar: entry names and contents.
fn read_small_member<R: BufRead>(tap: &mut Tap<R>) -> Result<Vec<(String, Vec<u8>)>, String> {
    if tap.fill_buf().map_err(|e| e.to_string())?.is_empty() {
        return Err("missing".into());
    }
    let dec = flate2::bufread::GzDecoder::new(&mut *tap);
    let mut r = tar::Reader::new(dec);
    let mut out = Vec::new();
    while let Some(e) = r.next_entry().map_err(|e| crate::util::error_chain(&e))? {
        let mut content = Vec::new();
        r.content()
            .read_to_end(&mut content)
            .map_err(|e| e.to_string())?;
        out.push((e.path, content));
    }
    if out.is_empty() {
        return Err("no entries".into());
    }
    Ok(out)
}

fn read_data<R: BufRead>(tap: &mut Tap<R>, files: &mut Vec<FileEntry>) -> Result<(), String> {
    if tap.fill_buf().map_err(|e| e.to_string())?.is_empty() {
        return Err("missing".into());
    }
    let dec = flate2::bufread::GzDecoder::new(&mut *tap);
    let mut r = tar::Reader::new(dec);
    let mut buf = vec![0u8; 1 << 16];
    while let Some(e) = r.next_entry().map_err(|e| crate::util::error_chain(&e))? {
        let actual = match e.kind {
            Kind::File => {
                let mut h = Sha1::new();
                let mut c = r.content();
                loop {
                    let n = c.read(&mut buf).map_err(|e| e.to_string())?;
                    if n == 0 {
                        break;
                    }
                    h.update(&buf[..n]);
                }
                Some(hex::encode(h.finalize()))
            }
            Kind::Symlink => Some(hex::encode(Sha1::digest(e.link.as_bytes()))),
            _ => None,
        };
        files.push(FileEntry {
            path: e.path,
            kind: e.kind,
            mode: e.mode,
            size: e.size,
            link: e.link,
            expected_sha1: e.sha1,
            actual_sha1: actual,
        });
    }
    Ok(())
}

/// A `BufRead` that captures or hashes exactly the bytes consumed through it.
pub(crate) struct Tap<R> {
    inner: R,
    /// Collects consumed bytes when set.
    pub(crate) capture: Option<Vec<u8>>,
    /// Hashes consumed bytes when set.
    pub(crate) hash: Option<Sha256>,
    /// Bytes consumed so far.
    pub(crate) pos: u64,
}

impl<R: BufRead> Tap<R> {
    pub(crate) fn new(inner: R) -> Tap<R> {
        Tap {
            inner,
            capture: None,
            hash: None,
            pos: 0,
        }
    }
}

impl<R: BufRead> Read for Tap<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let avail = self.fill_buf()?;
        let n = avail.len().min(buf.len());
        buf[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Tap<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }
    fn consume(&mut self, amt: usize) {
        if amt == 0 {
            return;
        }
        if let Ok(buf) = self.inner.fill_buf() {
            let used = &buf[..amt.min(buf.len())];
            if let Some(c) = &mut self.capture {
                c.extend_from_slice(used);
            }
            if let Some(h) = &mut self.hash {
                h.update(used);
            }
        }
        self.pos += amt as u64;
        self.inner.consume(amt);
    }
}

/// Split a signed file held in memory (an index) into its signatures and the
/// offset where the signed content starts. `None` when the first member holds
/// no `.SIGN.*` entry (an unsigned file).
pub(crate) fn split_signature(bytes: &[u8]) -> Result<Option<(Vec<Signature>, usize)>, String> {
    let mut tap = Tap::new(bytes);
    let entries = read_small_member(&mut tap)?;
    if !entries.iter().all(|(n, _)| n.starts_with(".SIGN.")) {
        return Ok(None);
    }
    let sigs = entries
        .into_iter()
        .filter_map(|(name, bytes)| {
            SigAlg::parse_entry_name(&name).map(|(alg, key)| Signature {
                alg,
                key: key.to_string(),
                bytes,
            })
        })
        .collect();
    Ok(Some((sigs, tap.pos as usize)))
}
