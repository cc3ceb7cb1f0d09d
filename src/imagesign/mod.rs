//! Image signatures and attestations in cosign's formats, so that cosign,
//! containers/image (CRI-O, podman, skopeo) and Kyverno verify what forge
//! publishes with nothing but the public key.
//!
//! Flow for an image pushed as `registry/repo@sha256:D`:
//!
//! 1. [`payload::simple_signing`] renders the payload naming `registry/repo`
//!    and `D`; [`keys::ImageKey::sign`] signs it (ECDSA P-256, SHA-256, DER);
//!    [`attach::signature_layer`] and [`attach::manifest`] wrap payload and
//!    base64 signature into the manifest tagged `sha256-D.sig`.
//! 2. Each attestation (the SPDX SBOMs, SLSA provenance) is an in-toto
//!    statement about `D` ([`payload::statement`]) inside a DSSE envelope
//!    ([`payload::dsse_envelope`]); [`attach::attestation_layer`] and
//!    [`attach::manifest`] list the envelopes under `sha256-D.att`.
//! 3. [`verify`] checks the other way round and names the first thing wrong.
//!
//! No network here: the registry client ([`crate::registry::sign`]) moves
//! the bytes. File access is limited to key files and, for the provenance,
//! the recipes.

pub mod attach;
pub mod keys;
pub mod payload;
pub mod provenance;
pub mod verify;

use std::path::PathBuf;

/// What went wrong with an image key, signature or attestation.
#[derive(Debug, thiserror::Error)]
pub enum ImageSignError {
    /// A key file could not be read.
    #[error("reading {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A key file could not be written.
    #[error("writing {}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A key file is not what it should be.
    #[error("{}: {what}", path.display())]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// Malformed key or document content.
    #[error("{0}")]
    Malformed(String),
    /// The password does not open the encrypted key.
    #[error("wrong password for the encrypted key (set COSIGN_PASSWORD)")]
    WrongPassword,
    /// `forge keygen` would overwrite a key.
    #[error("key {} already exists", path.display())]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// No image signing key exists.
    #[error("no image signing key (*.cosign.key) in {} (run `forge keygen --image`) and FORGE_IMAGE_SIGNING_KEY is unset", dir.display())]
    NoKey {
        /// The keys folder.
        dir: PathBuf,
    },
    /// An OpenSSL operation failed.
    #[error("{0} failed")]
    Crypto(&'static str, #[source] openssl::error::ErrorStack),
}
