//! The data member of a package: one streaming pass over the decompressed
//! tar that checks every entry's shape, computes each file's SHA-1 and keeps
//! contents in a `Spool`.
//!
//! Only what apk and forge's writer produce is accepted: regular files,
//! folders, symlinks and hard links to an earlier regular file of the same
//! package, at relative paths of plain names (no `..`, no `.`, no empty
//! component, nothing absolute). Devices, FIFOs, GNU long-name and sparse
//! entries, global PAX headers, a path given twice and anything else are
//! refused by name; so are names that are not UTF-8 ([`super::tar`]),
//! oversized paths, too many entries and a decompressed size past
//! [`MAX_DATA_SIZE`] (gzip bombs). Setuid/setgid bits are kept: they are
//! part of the signed package (Alpine ships setuid programs), and each
//! consumer decides: images keep them, build roots drop them.

use std::collections::BTreeSet;
use std::io::{self, Read};

use sha1::{Digest as _, Sha1};

use super::read::VerifyError;
use super::spool::{Slot, Spool};
use super::tar::{self, Kind};

/// The largest decompressed data tar.
pub const MAX_DATA_SIZE: u64 = 8 << 30;

/// The most entries one package may hold.
pub const MAX_ENTRIES: usize = 1 << 20;

/// The longest entry path or link target.
pub const MAX_PATH: usize = 4096;

/// One entry of the data member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataEntry {
    /// Relative path, without a trailing `/` (`usr/bin/hello`).
    pub path: String,
    /// File, folder, symlink or hard link.
    pub kind: Kind,
    /// Permission bits, including setuid/setgid/sticky.
    pub mode: u32,
    /// Modification time.
    pub mtime: u64,
    /// Content length (files).
    pub size: u64,
    /// Symlink target as stored, or hard link target (a package path).
    pub link: String,
    /// The PAX `APK-TOOLS.checksum.SHA1`, hex.
    pub expected_sha1: Option<String>,
    /// The computed checksum (files: content; symlinks: target), hex.
    pub actual_sha1: Option<String>,
    pub(crate) slot: Option<Slot>,
}

/// Fails reads once more than `left` bytes came through.
struct Capped<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.left = self.left.checked_sub(n as u64).ok_or_else(|| {
            io::Error::other(format!(
                "data section decompresses to more than {MAX_DATA_SIZE} bytes"
            ))
        })?;
        Ok(n)
    }
}

fn unsafe_entry(entry: &str, reason: impl Into<String>) -> VerifyError {
    VerifyError::UnsafeEntry {
        entry: entry.chars().take(MAX_PATH).collect(),
        reason: reason.into(),
    }
}

/// A package path made of plain names; without its trailing `/`.
fn check_path(path: &str) -> Result<&str, String> {
    if path.len() > MAX_PATH {
        return Err(format!("path is longer than {MAX_PATH} bytes"));
    }
    if path.starts_with('/') {
        return Err("absolute path".into());
    }
    let rel = path.strip_suffix('/').unwrap_or(path);
    for c in rel.split('/') {
        match c {
            "" => return Err("empty path component".into()),
            "." | ".." => return Err(format!("path contains `{c}`")),
            _ if c.contains('\0') => return Err("path contains NUL".into()),
            _ => {}
        }
    }
    Ok(rel)
}

fn kind_name(flag: u8) -> String {
    match flag {
        b'3' => "character device".into(),
        b'4' => "block device".into(),
        b'6' => "FIFO".into(),
        b'L' => "GNU long name".into(),
        b'K' => "GNU long link name".into(),
        b'S' => "GNU sparse".into(),
        b'g' => "PAX global header".into(),
        other => format!("type `{}`", other.escape_ascii()),
    }
}

/// Walk the decompressed data tar `stream`, appending entries to `out` and
/// contents to `spool`. Stops at the first malformed or refused entry.
pub(crate) fn walk<R: Read>(
    stream: R,
    spool: &mut Spool,
    out: &mut Vec<DataEntry>,
) -> Result<(), VerifyError> {
    let corrupt = |e: &dyn std::error::Error| VerifyError::DataCorrupt(crate::util::error_chain(e));
    let mut r = tar::Reader::new(Capped {
        inner: stream,
        left: MAX_DATA_SIZE,
    });
    // Every path seen (a second entry at the same path would leave which
    // one counts to the consumer), and the regular files among them.
    let mut paths = BTreeSet::new();
    let mut files = BTreeSet::new();
    let mut buf = vec![0u8; 1 << 16];
    while let Some(e) = r.next_entry().map_err(|e| corrupt(&e))? {
        if out.len() >= MAX_ENTRIES {
            return Err(VerifyError::DataCorrupt(format!(
                "more than {MAX_ENTRIES} entries"
            )));
        }
        if let Kind::Other(f) = e.kind {
            return Err(unsafe_entry(
                &e.path,
                format!("{} entries are not allowed in packages", kind_name(f)),
            ));
        }
        let path = check_path(&e.path).map_err(|why| unsafe_entry(&e.path, why))?;
        if !paths.insert(path.to_string()) {
            return Err(unsafe_entry(&e.path, "duplicate path in the package"));
        }
        let mut slot = None;
        let actual = match e.kind {
            Kind::File => {
                slot = spool.start(e.size).map_err(|e| corrupt(&e))?;
                let mut h = Sha1::new();
                let mut c = r.content();
                loop {
                    let n = c.read(&mut buf).map_err(|e| corrupt(&e))?;
                    if n == 0 {
                        break;
                    }
                    h.update(&buf[..n]);
                    spool.write(slot, &buf[..n]).map_err(|e| corrupt(&e))?;
                }
                files.insert(path.to_string());
                Some(hex::encode(h.finalize()))
            }
            Kind::Dir => None,
            Kind::Symlink => {
                if e.link.is_empty() || e.link.len() > MAX_PATH || e.link.contains('\0') {
                    return Err(unsafe_entry(&e.path, "bad symlink target"));
                }
                Some(hex::encode(Sha1::digest(e.link.as_bytes())))
            }
            Kind::HardLink => {
                let target = check_path(&e.link).map_err(|why| {
                    unsafe_entry(&e.path, format!("hard link target `{}`: {why}", e.link))
                })?;
                if !files.contains(target) {
                    return Err(unsafe_entry(
                        &e.path,
                        format!(
                            "hard link target `{}` is not an earlier regular file of the package",
                            e.link
                        ),
                    ));
                }
                None
            }
            Kind::Pax | Kind::Other(_) => {
                return Err(unsafe_entry(&e.path, "PAX header without an entry"));
            }
        };
        let link = match e.kind {
            Kind::HardLink => e.link.trim_end_matches('/').to_string(),
            _ => e.link,
        };
        out.push(DataEntry {
            path: path.to_string(),
            kind: e.kind,
            mode: e.mode & 0o7777,
            mtime: e.mtime,
            size: if e.kind == Kind::File { e.size } else { 0 },
            link,
            expected_sha1: e.sha1,
            actual_sha1: actual,
            slot,
        });
    }
    Ok(())
}

/// Every file and symlink must carry a checksum equal to its content's.
pub(crate) fn check_checksums(entries: &[DataEntry]) -> Result<(), VerifyError> {
    for f in entries {
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
    Ok(())
}
