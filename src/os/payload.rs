//! `forge os payload NAME`: the update for the passive `/usr` slot as a
//! signed OCI artifact, in an OCI layout at `out/os/NAME.payload/`, which
//! `forge publish` pushes like an image and `forge os apply` writes into a
//! disk.
//!
//! One artifact manifest (`artifactType` [`ARTIFACT_TYPE`]):
//! - the config ([`MEDIA_CONFIG`], [`PayloadConfig`]): name, version, root
//!   hash, hash-tree offset and size, the signed identity, and each slot's
//!   PARTUUID;
//! - layer `usr.img` ([`MEDIA_USR`]): the slot's bytes, erofs then its
//!   dm-verity hash tree, exactly as in USR-A;
//! - layers `uki-a.efi` and `uki-b.efi` ([`MEDIA_UKI`]): the UKI for each
//!   slot. A UKI's signed `.cmdline` names its slot's PARTUUID, so an
//!   updater that writes whichever slot is passive needs both; they differ
//!   only in that PARTUUID.
//!
//! Signed in cosign's format by the project's image key, with the same
//! primitives as a published image ([`crate::imagesign`]); the signature
//! manifest sits in the layout's `index.json` under cosign's tag name
//! (`sha256-<hex>.sig`), so the layout verifies offline. Its identity
//! (`docker-reference`) is the repository the payload is published to:
//! `<containers.registry>/NAME` (`os/NAME` without `[containers]`).

use std::collections::BTreeMap;
use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::json;

use super::{BuiltOs, OsError};

mod open;
use crate::imagesign::attach::{self, MEDIA_SIMPLE_SIGNING};
use crate::imagesign::keys::ImageKey;
use crate::oci::layout::Layout;
use crate::oci::{ANNOTATION_REF_NAME, Descriptor, Digest, Index, MEDIA_MANIFEST, Manifest};
pub use open::{Blob, MAX_UKI, Payload, open, read_blob};

/// `artifactType` of an OS update payload.
pub const ARTIFACT_TYPE: &str = "application/vnd.forge.os.payload.v1";
/// Media type of its config.
pub const MEDIA_CONFIG: &str = "application/vnd.forge.os.payload.config.v1+json";
/// Media type of the slot's bytes (erofs, then the dm-verity hash tree).
pub const MEDIA_USR: &str = "application/vnd.forge.os.usr.v1.erofs+verity";
/// Media type of a UKI.
pub const MEDIA_UKI: &str = "application/vnd.forge.os.uki.v1+efi";
/// Layer titles.
pub const TITLE_USR: &str = "usr.img";
/// The UKI whose `.cmdline` names USR-A.
pub const TITLE_UKI_A: &str = "uki-a.efi";
/// The UKI whose `.cmdline` names USR-B.
pub const TITLE_UKI_B: &str = "uki-b.efi";
/// The layer annotation holding a title.
const ANNOTATION_TITLE: &str = "org.opencontainers.image.title";

/// The payload's config: what an updater checks before writing a byte.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayloadConfig {
    /// The OS image name.
    pub name: String,
    /// Its version (the UKI is named `NAME-VERSION`).
    pub version: String,
    /// The profile (`x86_64-uefi`).
    pub profile: String,
    /// The `docker-reference` the signature names.
    pub identity: String,
    /// The dm-verity root hash.
    pub usr_root_hash: String,
    /// Bytes of erofs; the hash tree starts here.
    pub usr_hash_offset: u64,
    /// Data blocks covered by the hash tree.
    pub usr_data_blocks: u64,
    /// Bytes of the `usr.img` layer (erofs + hash tree).
    pub usr_bytes: u64,
    /// PARTUUID of each slot (`a`, `b`), as the UKIs name them.
    pub slots: BTreeMap<String, String>,
}

/// A written payload.
#[derive(Debug, Clone)]
pub struct Written {
    /// `out/os/NAME.payload`.
    pub dir: PathBuf,
    /// The artifact manifest's digest.
    pub digest: Digest,
    /// Its config.
    pub config: PayloadConfig,
    /// Bytes of all layers.
    pub bytes: u64,
}

/// The identity a payload of `name` is signed for.
pub fn identity(registry: Option<&str>, name: &str) -> String {
    match registry {
        Some(r) => format!("{}/{name}", r.trim_end_matches('/')),
        None => format!("os/{name}"),
    }
}

fn partition<'a>(built: &'a BuiltOs, label: &str) -> Result<&'a super::disk::Placed, OsError> {
    built
        .manifest
        .partitions
        .iter()
        .find(|p| p.label == label)
        .ok_or_else(|| OsError::BadDisk {
            disk: built.disk.clone(),
            reason: format!("no partition {label}"),
        })
}

/// Write the payload of the freshly built `built` to `out_dir/NAME.payload`
/// (a temporary folder renamed into place), signed by `key` for `identity`.
pub fn write(
    built: &BuiltOs,
    identity: &str,
    key: &ImageKey,
    out_dir: &Path,
) -> Result<Written, OsError> {
    let m = &built.manifest;
    let uki = m
        .uki
        .as_deref()
        .ok_or_else(|| OsError::NoUki(m.name.clone()))?;
    let usr_a = partition(built, "USR-A")?;
    let usr_b = partition(built, "USR-B")?;
    let work = tempfile::Builder::new()
        .prefix(&format!(".{}.payload.tmp-", m.name))
        .tempdir_in(out_dir)
        .map_err(OsError::io("creating a folder in", out_dir))?;
    let layout = Layout::create(work.path()).map_err(layout_err)?;
    let usr_bytes = m.usr_hash_offset + m.usr_hash_bytes;
    let usr = copy_region(&built.disk, usr_a.offset, usr_bytes, &layout)?;
    let esp = partition(built, "EFI-SYSTEM")?;
    let uki_a = super::esp::read(&built.disk, esp.offset, uki, work.path())?;
    let uki_b = super::pe::replace_in_cmdline(
        &uki_a,
        &format!("PARTUUID={}", usr_a.partuuid),
        &format!("PARTUUID={}", usr_b.partuuid),
    )
    .ok_or_else(|| OsError::BadDisk {
        disk: built.disk.clone(),
        reason: format!("{uki} has no .cmdline naming USR-A's PARTUUID"),
    })?;
    let config = PayloadConfig {
        name: m.name.clone(),
        version: m.version.clone(),
        profile: m.profile.clone(),
        identity: identity.to_string(),
        usr_root_hash: m.usr_root_hash.clone(),
        usr_hash_offset: m.usr_hash_offset,
        usr_data_blocks: m.usr_data_blocks,
        usr_bytes,
        slots: BTreeMap::from([
            ("a".to_string(), usr_a.partuuid.clone()),
            ("b".to_string(), usr_b.partuuid.clone()),
        ]),
    };
    let config_json = serde_json::to_value(&config).map_err(|e| OsError::BadPayload {
        payload: work.path().to_path_buf(),
        reason: e.to_string(),
    })?;
    let config_desc = layout
        .write_json_blob(MEDIA_CONFIG, &config_json)
        .map_err(layout_err)?;
    let mut layers = vec![titled(usr, TITLE_USR)];
    for (title, bytes) in [(TITLE_UKI_A, &uki_a), (TITLE_UKI_B, &uki_b)] {
        let d = layout.write_blob(MEDIA_UKI, bytes).map_err(layout_err)?;
        layers.push(titled(d, title));
    }
    let bytes = layers.iter().map(|l| l.size).sum();
    let manifest = Manifest {
        config: config_desc,
        layers,
        annotations: BTreeMap::from([(
            "org.opencontainers.image.version".to_string(),
            m.version.clone(),
        )]),
    };
    let mut v = manifest.to_json();
    v["artifactType"] = json!(ARTIFACT_TYPE);
    let desc = layout
        .write_json_blob(MEDIA_MANIFEST, &v)
        .map_err(layout_err)?;
    let sig = sign(&layout, key, identity, &desc.digest)?;
    let tag = |d: &Descriptor, t: &str| {
        let mut d = d.clone();
        d.annotations.insert(ANNOTATION_REF_NAME.into(), t.into());
        d
    };
    let index = Index {
        manifests: vec![
            tag(&desc, &m.version),
            tag(&desc, "latest"),
            tag(&sig, &attach::signature_tag(&desc.digest)),
        ],
        annotations: BTreeMap::new(),
    };
    layout.write_index_json(&index).map_err(layout_err)?;
    let dir = out_dir.join(format!("{}.payload", m.name));
    replace_dir(work, &dir)?;
    Ok(Written {
        dir,
        digest: desc.digest,
        config,
        bytes,
    })
}

fn titled(mut d: Descriptor, title: &str) -> Descriptor {
    d.annotations
        .insert(ANNOTATION_TITLE.to_string(), title.to_string());
    d
}

fn layout_err(e: crate::oci::layout::LayoutError) -> OsError {
    OsError::Io {
        what: "writing the payload layout",
        path: e.path,
        source: e.source,
    }
}

/// The cosign signature manifest of `digest` (for `identity`), stored in
/// the layout; returns its descriptor.
fn sign(
    layout: &Layout,
    key: &ImageKey,
    identity: &str,
    digest: &Digest,
) -> Result<Descriptor, OsError> {
    let payload = crate::imagesign::payload::simple_signing(identity, digest);
    let signature = key.sign(&payload).map_err(|e| OsError::BadPayload {
        payload: layout.dir().to_path_buf(),
        reason: format!("signing: {e}"),
    })?;
    let b64 = base64::engine::general_purpose::STANDARD.encode(signature);
    let a = attach::manifest(
        MEDIA_SIMPLE_SIGNING,
        vec![attach::signature_layer(payload, &b64)],
    );
    for (d, bytes) in &a.blobs {
        layout
            .write_blob(&d.media_type, bytes)
            .map_err(layout_err)?;
    }
    layout
        .write_blob(MEDIA_MANIFEST, &a.manifest)
        .map_err(layout_err)
}

/// Stream `len` bytes of `disk` at `offset` into a blob of the layout.
fn copy_region(disk: &Path, offset: u64, len: u64, layout: &Layout) -> Result<Descriptor, OsError> {
    let mut f = std::fs::File::open(disk).map_err(OsError::io("opening", disk))?;
    f.seek(SeekFrom::Start(offset))
        .map_err(OsError::io("reading", disk))?;
    let mut w = layout.blob_writer().map_err(layout_err)?;
    let copied = std::io::copy(&mut f.take(len), &mut w).map_err(OsError::io("reading", disk))?;
    if copied != len {
        return Err(OsError::BadDisk {
            disk: disk.to_path_buf(),
            reason: format!("USR-A ends after {copied} of {len} bytes"),
        });
    }
    w.finish(MEDIA_USR).map_err(layout_err)
}

/// Move the finished `work` folder to `dir`, replacing an older payload:
/// the old one is renamed aside first and removed after.
fn replace_dir(work: tempfile::TempDir, dir: &Path) -> Result<(), OsError> {
    let parent = dir.parent().unwrap_or(Path::new("."));
    let aside = tempfile::Builder::new()
        .prefix(".old-payload.tmp-")
        .tempdir_in(parent)
        .map_err(OsError::io("creating a folder in", parent))?;
    let old = aside.path().join("old");
    if dir.exists() {
        std::fs::rename(dir, &old).map_err(OsError::io("moving aside", dir))?;
    }
    let new = work.keep();
    std::fs::rename(&new, dir).map_err(OsError::io("moving into place", dir))?;
    std::fs::File::open(parent)
        .and_then(|d| d.sync_all())
        .map_err(OsError::io("syncing", parent))?;
    Ok(())
}
