//! Bounded reading of registry replies.
//!
//! A registry is untrusted: its `Content-Length` may lie and its body may
//! be endless. Every reply forge reads into memory goes through
//! [`read_capped`] with a cap chosen for what it holds (manifests and
//! indexes [`MAX_MANIFEST`], token replies [`MAX_TOKEN_REPLY`], error
//! bodies [`MAX_ERROR_BODY`]); blobs are streamed through [`copy_checked`],
//! which holds the stream to the size and digest of its descriptor while
//! copying, so a body longer or shorter than announced is an error.

use std::io::{Read, Write};

use reqwest::blocking::Response;

use super::RegistryError;
use crate::oci::Digest;

/// The most bytes a manifest, image index or referrers list may have.
pub const MAX_MANIFEST: u64 = 4 << 20;
/// The most bytes a token endpoint's reply may have.
pub const MAX_TOKEN_REPLY: u64 = 64 << 10;
/// The most bytes of an error reply kept for its message.
pub const MAX_ERROR_BODY: u64 = 64 << 10;
/// The most bytes a blob read into memory (signature payloads,
/// attestations) may have.
pub const MAX_IN_MEMORY_BLOB: u64 = 32 << 20;

fn read_error(url: &str, source: std::io::Error) -> RegistryError {
    RegistryError::Io {
        what: "reading the reply to GET",
        path: url.into(),
        source,
    }
}

/// The whole body of `resp`, refused when longer than `cap` bytes
/// (before reading when `Content-Length` says so, else once the cap is
/// passed). `what` names the document in the error.
pub fn read_capped(resp: Response, cap: u64, what: &str) -> Result<Vec<u8>, RegistryError> {
    let url = resp.url().to_string();
    let too_large = || RegistryError::TooLarge {
        what: format!("{what} ({url})"),
        limit: cap,
    };
    if resp.content_length().is_some_and(|n| n > cap) {
        return Err(too_large());
    }
    let mut out = Vec::new();
    resp.take(cap + 1)
        .read_to_end(&mut out)
        .map_err(|e| read_error(&url, e))?;
    if out.len() as u64 > cap {
        return Err(too_large());
    }
    Ok(out)
}

/// How long a streamed blob must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Exactly this many bytes (the descriptor's size).
    Exact(u64),
    /// At most this many bytes (no descriptor at hand).
    AtMost(u64),
}

/// Copy the blob body of `resp` into `w`, checking its length against
/// `expect` as it streams and its digest at the end; returns its size.
pub fn copy_checked(
    mut resp: Response,
    digest: &Digest,
    expect: Expect,
    what: &str,
    w: &mut dyn Write,
) -> Result<u64, RegistryError> {
    use sha2::Digest as _;
    let url = resp.url().to_string();
    let limit = match expect {
        Expect::Exact(n) | Expect::AtMost(n) => n,
    };
    let size_error = |got: String| RegistryError::SizeMismatch {
        what: what.to_string(),
        expected: match expect {
            Expect::Exact(n) => format!("{n} bytes"),
            Expect::AtMost(n) => format!("at most {n} bytes"),
        },
        got,
    };
    if let Some(n) = resp.content_length()
        && (n > limit || matches!(expect, Expect::Exact(e) if e != n))
    {
        return Err(size_error(format!("Content-Length {n}")));
    }
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let k = resp.read(&mut buf).map_err(|e| read_error(&url, e))?;
        if k == 0 {
            break;
        }
        n += k as u64;
        if n > limit {
            return Err(size_error(format!("more than {limit} bytes")));
        }
        hasher.update(&buf[..k]);
        w.write_all(&buf[..k]).map_err(|source| RegistryError::Io {
            what: "writing",
            path: what.into(),
            source,
        })?;
    }
    if matches!(expect, Expect::Exact(e) if e != n) {
        return Err(size_error(format!("{n} bytes")));
    }
    let got = Digest::from_sha256(hasher.finalize().into());
    if got != *digest {
        return Err(RegistryError::DigestMismatch {
            what: what.to_string(),
            expected: digest.to_string(),
            got: got.to_string(),
        });
    }
    Ok(n)
}
