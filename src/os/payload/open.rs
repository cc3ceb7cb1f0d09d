//! Opening a payload layout for `forge os apply`: everything it says is
//! untrusted until the signature over the manifest digest verifies with the
//! node's key. Every document is read with a size cap and checked against
//! its digest before it is parsed; the large `/usr` blob is only described
//! here and is hashed while it is written ([`super::super::apply`]).

use std::io::Read as _;
use std::path::{Path, PathBuf};

use openssl::pkey::{PKey, Public};
use serde_json::Value;

use super::{
    ARTIFACT_TYPE, MEDIA_UKI, MEDIA_USR, PayloadConfig, TITLE_UKI_A, TITLE_UKI_B, TITLE_USR,
};
use crate::imagesign::attach::signature_tag;
use crate::imagesign::verify::verify_signatures;
use crate::oci::{ANNOTATION_REF_NAME, Digest};
use crate::os::OsError;

/// The largest JSON document read (index, manifest, config, signature).
const MAX_DOC: u64 = 1 << 20;
/// The largest UKI read into memory.
pub const MAX_UKI: u64 = 512 << 20;

/// A blob the manifest names.
#[derive(Debug, Clone)]
pub struct Blob {
    /// Its file in the layout.
    pub path: PathBuf,
    /// Its digest.
    pub digest: Digest,
    /// Its size.
    pub size: u64,
}

/// A payload whose signature verified.
#[derive(Debug, Clone)]
pub struct Payload {
    /// The layout.
    pub dir: PathBuf,
    /// The artifact manifest's digest (what the signature covers).
    pub digest: Digest,
    /// Its config.
    pub config: PayloadConfig,
    /// The slot's bytes.
    pub usr: Blob,
    /// The UKI for slot `a` and for slot `b`.
    pub uki_a: Blob,
    /// See `uki_a`.
    pub uki_b: Blob,
}

fn bad(dir: &Path, reason: impl Into<String>) -> OsError {
    OsError::BadPayload {
        payload: dir.to_path_buf(),
        reason: reason.into(),
    }
}

fn blob_path(dir: &Path, d: &Digest) -> PathBuf {
    dir.join("blobs").join("sha256").join(d.hex())
}

/// Read a file of at most `cap` bytes.
fn read_capped(dir: &Path, path: &Path, cap: u64) -> Result<Vec<u8>, OsError> {
    let f = std::fs::File::open(path).map_err(OsError::io("opening", path))?;
    let mut bytes = Vec::new();
    f.take(cap + 1)
        .read_to_end(&mut bytes)
        .map_err(OsError::io("reading", path))?;
    if bytes.len() as u64 > cap {
        return Err(bad(
            dir,
            format!("{} is larger than {cap} bytes", path.display()),
        ));
    }
    Ok(bytes)
}

/// The blob `d`, at most `cap` bytes, whose bytes must hash to `d`.
pub fn read_blob(dir: &Path, d: &Digest, cap: u64) -> Result<Vec<u8>, OsError> {
    let bytes = read_capped(dir, &blob_path(dir, d), cap)?;
    if Digest::of(&bytes) != *d {
        return Err(bad(
            dir,
            format!("blob {d} does not match its digest (tampered)"),
        ));
    }
    Ok(bytes)
}

fn digest_of(dir: &Path, v: &Value, what: &str) -> Result<Digest, OsError> {
    v.get("digest")
        .and_then(Value::as_str)
        .and_then(|d| Digest::parse(d).ok())
        .ok_or_else(|| bad(dir, format!("{what} has no valid digest")))
}

/// The manifest `index.json` tags `tag`.
fn tagged(dir: &Path, index: &Value, tag: &str) -> Option<Result<Digest, OsError>> {
    let entry = index.get("manifests")?.as_array()?.iter().find(|e| {
        e.pointer(&format!(
            "/annotations/{}",
            ANNOTATION_REF_NAME.replace('/', "~1")
        ))
        .and_then(Value::as_str)
            == Some(tag)
    })?;
    Some(digest_of(dir, entry, &format!("index.json entry `{tag}`")))
}

/// Open the payload layout `dir` and verify its signature with `key`.
pub fn open(dir: &Path, key: &PKey<Public>) -> Result<Payload, OsError> {
    let index: Value = serde_json::from_slice(&read_capped(dir, &dir.join("index.json"), MAX_DOC)?)
        .map_err(|e| bad(dir, format!("index.json: {e}")))?;
    let digest = tagged(dir, &index, "latest")
        .ok_or_else(|| bad(dir, "index.json tags no manifest `latest`"))??;
    let manifest_bytes = read_blob(dir, &digest, MAX_DOC)?;
    let manifest: Value =
        serde_json::from_slice(&manifest_bytes).map_err(|e| bad(dir, format!("manifest: {e}")))?;
    if manifest.get("artifactType").and_then(Value::as_str) != Some(ARTIFACT_TYPE) {
        return Err(bad(
            dir,
            format!("not an OS payload (artifactType is not {ARTIFACT_TYPE})"),
        ));
    }
    let config_digest = digest_of(dir, &manifest["config"], "the config")?;
    let config: PayloadConfig = serde_json::from_slice(&read_blob(dir, &config_digest, MAX_DOC)?)
        .map_err(|e| bad(dir, format!("config: {e}")))?;
    let tag = signature_tag(&digest);
    let sig = match tagged(dir, &index, &tag) {
        Some(d) => Some(read_blob(dir, &d?, MAX_DOC)?),
        None => None,
    };
    let fetch = |d: &Digest| read_blob(dir, d, MAX_DOC).map_err(|e| e.to_string());
    verify_signatures(&tag, sig.as_deref(), &fetch, key, &digest, &config.identity)
        .map_err(|e| bad(dir, format!("signature: {e}")))?;
    let layer = |title: &str, media: &str| -> Result<Blob, OsError> {
        let l = manifest["layers"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|l| {
                l.pointer("/annotations/org.opencontainers.image.title")
                    .and_then(Value::as_str)
                    == Some(title)
            })
            .ok_or_else(|| bad(dir, format!("no layer `{title}`")))?;
        if l.get("mediaType").and_then(Value::as_str) != Some(media) {
            return Err(bad(dir, format!("layer `{title}` is not {media}")));
        }
        let d = digest_of(dir, l, title)?;
        Ok(Blob {
            path: blob_path(dir, &d),
            size: l.get("size").and_then(Value::as_u64).unwrap_or(0),
            digest: d,
        })
    };
    let usr = layer(TITLE_USR, MEDIA_USR)?;
    if usr.size != config.usr_bytes || config.usr_hash_offset >= usr.size {
        return Err(bad(
            dir,
            "the usr.img layer's size disagrees with the config",
        ));
    }
    Ok(Payload {
        dir: dir.to_path_buf(),
        digest,
        usr,
        uki_a: layer(TITLE_UKI_A, MEDIA_UKI)?,
        uki_b: layer(TITLE_UKI_B, MEDIA_UKI)?,
        config,
    })
}
