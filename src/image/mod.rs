//! Container images from packages: `images/NAME.toml` → an OCI image layout
//! under `out/images/NAME`, plus one SPDX SBOM per architecture.
//!
//! Flow, per architecture listed in the definition:
//! 1. [`def`]: parse and validate the image file;
//! 2. read the signed `APKINDEX.tar.gz` of `out/repo/<arch>` and
//!    [`resolve`](crate::resolve) the requested packages with their dependencies;
//! 3. open every chosen `.apk`, verify signature, `datahash`, per-file
//!    checksums and that its identity equals the index's `C:`, giving
//!    [`rootfs::InstalledPackage`]s;
//! 4. [`assemble`]: [`plan`] the layers (one per origin by default), write
//!    them with [`layer`] (deterministic tar + gzip), add the final layer of
//!    image files ([`accounts`], [`apkdb`], extra paths), then config and
//!    manifest;
//! 5. an image index lists the per-arch manifests in definition order;
//!    `index.json` tags it `latest`; [`sbom`] writes the SPDX documents.
//!
//! Reproducibility: every timestamp comes from one epoch (see
//! [`build::source_date_epoch`]), every JSON document is canonical, and the
//! output depends only on the definition and the package files.

pub mod accounts;
pub mod apkdb;
pub mod assemble;
pub mod build;
pub mod def;
pub mod layer;
pub mod packages;
pub mod pgzip;
pub mod plan;
pub mod rootfs;
pub mod sbom;

pub use build::{BuildOptions, BuiltImage, build};

use std::path::PathBuf;

/// Why an image could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// `SOURCE_DATE_EPOCH` is needed and unusable.
    #[error(transparent)]
    Epoch(#[from] crate::epoch::InvalidEpoch),
    /// The definition is invalid.
    #[error(transparent)]
    Def(#[from] def::DefError),
    /// No definition file for this name.
    #[error("no image definition {}", path.display())]
    NotFound {
        /// The expected path.
        path: PathBuf,
    },
    /// An image name that is not `[a-z0-9][a-z0-9._-]*`.
    #[error("invalid image name `{0}` (expected [a-z0-9][a-z0-9._-]*)")]
    InvalidName(String),
    /// An architecture without an OCI mapping.
    #[error("unknown architecture `{0}`")]
    UnknownArch(String),
    /// Package resolution failed.
    #[error("resolving packages for {arch}")]
    Resolve {
        /// The architecture.
        arch: String,
        /// The cause.
        #[source]
        source: crate::resolve::ResolveError,
    },
    /// Two packages install different files at one path.
    #[error("packages `{first}` and `{second}` both install `/{path}` with different content")]
    FileConflict {
        /// The path.
        path: String,
        /// The first package.
        first: String,
        /// The second package.
        second: String,
    },
    /// The trusted keys could not be loaded.
    #[error("loading the trusted keys")]
    Keys(#[source] crate::sign::SignError),
    /// No repository index for an architecture.
    #[error("no package repository for {arch}: {} is missing (build the packages first: `forge build`)", path.display())]
    NoRepository {
        /// The architecture.
        arch: String,
        /// The expected index file.
        path: PathBuf,
    },
    /// The repository index could not be read or verified.
    #[error("reading the package index {}", path.display())]
    Index {
        /// The index file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A package file could not be read or verified.
    #[error("verifying package {}", path.display())]
    Package {
        /// The package file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A package's identity differs from the signed index record.
    #[error("package {} does not match the signed index (identity {actual}, index says {expected})", path.display())]
    IdentityMismatch {
        /// The package file.
        path: PathBuf,
        /// `C:` from the index.
        expected: String,
        /// The file's identity.
        actual: String,
    },
    /// Writing a layer failed.
    #[error(transparent)]
    Layer(#[from] layer::LayerError),
    /// Writing the layout failed.
    #[error(transparent)]
    Layout(#[from] crate::oci::layout::LayoutError),
    /// Other file-system failures.
    #[error("{what} {}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}
