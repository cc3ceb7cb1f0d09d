//! The front of a signed apk file (package or index): gzip member
//! boundaries, the signature member and the control member, with a cap on
//! every size.
//!
//! The file is read once, front to back, through a `Tap`: a `BufRead`
//! wrapper that captures or hashes exactly the compressed bytes each gzip
//! member consumes. One `bufread::GzDecoder` per member stops at that
//! member's trailer, so the boundaries are exact.
//!
//! Nothing here is trusted yet, so nothing is sized from the input: each
//! member is decompressed into a buffer of at most its cap, and the captured
//! compressed bytes are capped too (a deflate stream of empty blocks consumes
//! input without producing output).

use std::io::{self, BufRead, Read};

use sha2::{Digest as _, Sha256};

use super::read::Signature;
use super::tar;
use crate::sign::SigAlg;

/// The largest signature member, compressed and decompressed. A signature
/// entry is a few hundred bytes; a handful of keys fit many times over.
pub const MAX_SIGNATURE_MEMBER: usize = 64 << 10;

/// The largest control member, compressed and decompressed (`.PKGINFO` and
/// install scripts).
pub const MAX_CONTROL_MEMBER: usize = 4 << 20;

/// The largest `.PKGINFO`.
pub const MAX_PKGINFO: usize = 1 << 20;

/// A `BufRead` that captures or hashes exactly the bytes consumed through it.
pub(crate) struct Tap<R> {
    inner: R,
    /// Collects consumed bytes when set.
    pub(crate) capture: Option<Vec<u8>>,
    /// Reading fails once `capture` holds this many bytes.
    pub(crate) capture_limit: usize,
    /// Hashes consumed bytes when set (the data member: `datahash`).
    pub(crate) hash: Option<Sha256>,
    /// Hashes every consumed byte when set (the whole file).
    pub(crate) file_hash: Option<Sha256>,
    /// Bytes consumed so far.
    pub(crate) pos: u64,
}

impl<R: BufRead> Tap<R> {
    pub(crate) fn new(inner: R) -> Tap<R> {
        Tap {
            inner,
            capture: None,
            capture_limit: usize::MAX,
            hash: None,
            file_hash: None,
            pos: 0,
        }
    }

    /// Start capturing, failing reads past `limit` bytes.
    pub(crate) fn capture(&mut self, limit: usize) {
        self.capture = Some(Vec::new());
        self.capture_limit = limit;
    }

    /// Stop capturing; the captured bytes.
    pub(crate) fn take_capture(&mut self) -> Vec<u8> {
        self.capture_limit = usize::MAX;
        self.capture.take().unwrap_or_default()
    }

    /// Consume (and hash) everything that is left.
    pub(crate) fn drain(&mut self) -> io::Result<()> {
        loop {
            let n = self.fill_buf()?.len();
            if n == 0 {
                return Ok(());
            }
            self.consume(n);
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
        if let Some(c) = &self.capture
            && c.len() >= self.capture_limit
        {
            return Err(io::Error::other(format!(
                "member is larger than the {}-byte limit",
                self.capture_limit
            )));
        }
        let room = match &self.capture {
            Some(c) => self.capture_limit - c.len(),
            None => usize::MAX,
        };
        let buf = self.inner.fill_buf()?;
        Ok(&buf[..buf.len().min(room)])
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
            if let Some(h) = &mut self.file_hash {
                h.update(used);
            }
        }
        self.pos += amt as u64;
        self.inner.consume(amt);
    }
}

/// Decompress one gzip member into memory, failing past `limit` bytes.
pub(crate) fn inflate_member<R: BufRead>(
    tap: &mut Tap<R>,
    limit: usize,
) -> Result<Vec<u8>, String> {
    if tap.fill_buf().map_err(|e| e.to_string())?.is_empty() {
        return Err("missing".into());
    }
    let dec = flate2::bufread::GzDecoder::new(&mut *tap);
    let mut out = Vec::new();
    dec.take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| e.to_string())?;
    if out.len() > limit {
        return Err(format!("decompresses to more than the {limit}-byte limit"));
    }
    Ok(out)
}

/// The entries of a small (cut) tar held in memory: names and contents.
pub(crate) fn parse_small_tar(bytes: &[u8]) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut r = tar::Reader::new(bytes);
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

/// The entries of a small tar: names and contents.
pub(crate) type SmallTar = Vec<(String, Vec<u8>)>;

/// Read one gzip member holding a small tar, capped at `limit` bytes
/// compressed and decompressed; the entries and the compressed bytes.
pub(crate) fn read_small_member<R: BufRead>(
    tap: &mut Tap<R>,
    limit: usize,
) -> Result<(SmallTar, Vec<u8>), String> {
    tap.capture(limit);
    let tar = inflate_member(tap, limit);
    let raw = tap.take_capture();
    Ok((parse_small_tar(&tar?)?, raw))
}

/// The `.SIGN.*` entries of a signature member (other algorithms skipped);
/// `None` when an entry is not a signature.
pub(crate) fn signatures(entries: Vec<(String, Vec<u8>)>) -> Option<Vec<Signature>> {
    if !entries.iter().all(|(n, _)| n.starts_with(".SIGN.")) {
        return None;
    }
    Some(
        entries
            .into_iter()
            .filter_map(|(name, bytes)| {
                SigAlg::parse_entry_name(&name).map(|(alg, key)| Signature {
                    alg,
                    key: key.to_string(),
                    bytes,
                })
            })
            .collect(),
    )
}

/// Split a signed file held in memory (an index) into its signatures and the
/// offset where the signed content starts. `None` when the first member holds
/// no `.SIGN.*` entry (an unsigned file).
pub(crate) fn split_signature(bytes: &[u8]) -> Result<Option<(Vec<Signature>, usize)>, String> {
    let mut tap = Tap::new(bytes);
    let (entries, _) = read_small_member(&mut tap, MAX_SIGNATURE_MEMBER)?;
    Ok(signatures(entries).map(|sigs| (sigs, tap.pos as usize)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A member that decompresses past its cap is refused with a clear error
    /// instead of being read whole.
    #[test]
    fn oversized_member_is_refused() {
        let big = crate::apk::gzip::compress(&vec![0u8; MAX_SIGNATURE_MEMBER + 1]).unwrap();
        let mut tap = Tap::new(&big[..]);
        let err = read_small_member(&mut tap, MAX_SIGNATURE_MEMBER).unwrap_err();
        assert_eq!(err, "decompresses to more than the 65536-byte limit");
        // Compressed bytes are capped too: a member whose compressed form is
        // larger than the cap fails while reading.
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let noise: Vec<u8> = (0..MAX_SIGNATURE_MEMBER)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 32) as u8
            })
            .collect();
        let member = crate::apk::gzip::compress(&noise).unwrap();
        assert!(member.len() > MAX_SIGNATURE_MEMBER);
        let mut tap = Tap::new(&member[..]);
        let err = read_small_member(&mut tap, MAX_SIGNATURE_MEMBER).unwrap_err();
        assert_eq!(err, "member is larger than the 65536-byte limit");
    }
}
