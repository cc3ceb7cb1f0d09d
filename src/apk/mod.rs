//! Alpine apk v2 packages: writing, reading and verifying them.
//!
//! A package is three gzip members concatenated (see
//! `shared/reference/apk.md`):
//!
//! ```text
//! name-1.0-r0.apk = gzip(signature tar, cut) ++ gzip(control tar, cut) ++ gzip(data tar)
//! ```
//!
//! Writing goes data first, because each later part depends on the one after
//! it in the file: the data tar is compressed into a temp file while its
//! SHA-256 (`datahash`) is computed; `.PKGINFO` (ending in that `datahash`) is
//! tarred and compressed into the control member; the control member's bytes
//! are signed into the signature member; finally the three are concatenated
//! into the output file, which is renamed into place.
//!
//! Every step is deterministic: entries sorted bytewise, owners 0/0 `root`,
//! mtimes clamped to `builddate`, no atime/ctime, pinned gzip header and
//! compressor ([`gzip`]), PKCS#1 v1.5 signatures. Same tree, metadata and key
//! give the same bytes.
//!
//! | file | what |
//! |---|---|
//! | [`tar`] | hand-written tar headers, PAX records, a small reader |
//! | [`gzip`] | the pinned gzip member writer |
//! | [`pkginfo`] | `.PKGINFO` rendering and parsing |
//! | [`autodeps`] | `so:`/`pc:` depends and provides from the staged tree |
//! | `write` | the package writer |
//! | [`member`] | gzip member boundaries, signature and control members, size caps |
//! | `verified` | [`VerifiedPackage`]: the one verified, single-pass reader |
//! | [`data`] | the data tar: entry checks, per-file SHA-1 |
//! | `spool` | contents kept between the check and their use |
//! | `read` | [`Package`]: unverified inspection; shared error types |
//! | [`index`] | APKINDEX records, ordering, the signed index file |
//! | [`name`] | the package name and version grammar |

use std::path::PathBuf;

pub mod autodeps;
pub mod data;
pub mod gzip;
pub mod index;
pub mod member;
pub mod name;
pub mod pkginfo;
mod read;
mod spool;
pub mod tar;
mod verified;
mod write;

pub use autodeps::{AutoDeps, scan_auto_deps};
pub use data::DataEntry;
pub use pkginfo::PkgInfo;
pub use read::{Package, Part, ReadError, Signature, VerifyError, verify_control_signature};
pub use spool::SPOOL_MEMORY;
pub use verified::{PackageError, Trust, VerifiedHead, VerifiedPackage, verify_parts};
pub use write::{WriteError, WriteOptions, WrittenPackage, write_package};

/// Everything the writer needs to know about one (sub)package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageSpec {
    /// Package name (`pkgname`).
    pub name: String,
    /// Full version with the release: `1.2-r0`.
    pub version: String,
    /// One-line description.
    pub description: String,
    /// Upstream home page.
    pub url: String,
    /// SPDX license expression.
    pub license: String,
    /// Architecture (`x86_64`, `noarch`).
    pub arch: String,
    /// The recipe this package comes from (the main package's name).
    pub origin: String,
    /// The recipe's git commit, when known.
    pub commit: Option<String>,
    /// SOURCE_DATE_EPOCH: written as `builddate`, and the upper bound of every
    /// entry's mtime.
    pub builddate: i64,
    /// `packager`.
    pub packager: String,
    /// Explicit runtime dependencies.
    pub depends: Vec<String>,
    /// Explicit provides.
    pub provides: Vec<String>,
    /// The staged tree: its contents become the package's files.
    pub root: PathBuf,
}

impl PackageSpec {
    /// `name-version.apk`.
    pub fn file_name(&self) -> String {
        format!("{}-{}.apk", self.name, self.version)
    }
}

#[cfg(test)]
pub(crate) mod tests;
