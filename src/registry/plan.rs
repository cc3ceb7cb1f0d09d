//! A push plan: the blobs, manifests and tags one push sends to one
//! repository, made from an OCI layout ([`plan_layout`]) or in memory.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

use super::RegistryError;
use crate::oci::{ANNOTATION_REF_NAME, Descriptor, Digest, MEDIA_INDEX, MEDIA_MANIFEST};

/// Where a blob's bytes come from.
#[derive(Debug, Clone)]
pub enum BlobSource {
    /// A file (an OCI layout blob).
    File(PathBuf),
    /// Bytes made in memory (signatures, configs).
    Bytes(Arc<Vec<u8>>),
}

/// One blob to push.
#[derive(Debug, Clone)]
pub struct PlanBlob {
    /// Its descriptor (digest, size, media type).
    pub descriptor: Descriptor,
    /// Its bytes.
    pub source: BlobSource,
}

/// One manifest or index to push (by digest).
#[derive(Debug, Clone)]
pub struct PlanManifest {
    /// `mediaType` (sent as `Content-Type`).
    pub media_type: String,
    /// Its digest.
    pub digest: Digest,
    /// Its exact bytes.
    pub bytes: Vec<u8>,
}

/// Everything one push sends to one repository.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// The repository.
    pub repository: String,
    /// Blobs, deduplicated.
    pub blobs: Vec<PlanBlob>,
    /// Manifests, children before the indexes that name them.
    pub manifests: Vec<PlanManifest>,
    /// Tags to set, in order, each naming a manifest of the plan.
    pub tags: Vec<(String, Digest)>,
}

impl Plan {
    /// An empty plan for `repository`.
    pub fn new(repository: &str) -> Plan {
        Plan {
            repository: repository.to_string(),
            ..Plan::default()
        }
    }

    /// Add a blob unless already present.
    pub fn add_blob(&mut self, descriptor: Descriptor, source: BlobSource) {
        if !self
            .blobs
            .iter()
            .any(|b| b.descriptor.digest == descriptor.digest)
        {
            self.blobs.push(PlanBlob { descriptor, source });
        }
    }

    /// Add a manifest unless already present; returns its digest.
    pub fn add_manifest(&mut self, media_type: &str, bytes: Vec<u8>) -> Digest {
        let digest = Digest::of(&bytes);
        if !self.manifests.iter().any(|m| m.digest == digest) {
            self.manifests.push(PlanManifest {
                media_type: media_type.to_string(),
                digest: digest.clone(),
                bytes,
            });
        }
        digest
    }

    /// Total bytes of all blobs.
    pub fn blob_bytes(&self) -> u64 {
        self.blobs.iter().map(|b| b.descriptor.size).sum()
    }

    pub(super) fn manifest(&self, d: &Digest) -> Option<&PlanManifest> {
        self.manifests.iter().find(|m| m.digest == *d)
    }
}

fn read_json(path: &Path) -> Result<(Vec<u8>, Value), RegistryError> {
    let bytes = std::fs::read(path).map_err(|source| RegistryError::Io {
        what: "reading",
        path: path.to_path_buf(),
        source,
    })?;
    let v = serde_json::from_slice(&bytes)
        .map_err(|e| RegistryError::Invalid(format!("{} is not JSON: {e}", path.display())))?;
    Ok((bytes, v))
}

fn descriptor_of(v: &Value) -> Result<Descriptor, RegistryError> {
    let digest = v
        .get("digest")
        .and_then(Value::as_str)
        .and_then(|d| Digest::parse(d).ok())
        .ok_or_else(|| RegistryError::Invalid(format!("descriptor without a valid digest: {v}")))?;
    Ok(Descriptor {
        media_type: v
            .get("mediaType")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        digest,
        size: v.get("size").and_then(Value::as_u64).unwrap_or(0),
        platform: None,
        annotations: Default::default(),
    })
}

/// What [`plan_layout`] found.
#[derive(Debug, Clone)]
pub struct LayoutPlan {
    /// The plan (tags not yet added).
    pub plan: Plan,
    /// The root manifest or index (the layout's first entry) and its tag.
    pub root: Descriptor,
    /// Tags of `index.json` entries and their digests (`latest`, …).
    pub tags: Vec<(String, Digest)>,
}

/// Read an OCI layout into a push plan for `repository`: every manifest
/// reachable from `index.json`, every config and layer.
pub fn plan_layout(dir: &Path, repository: &str) -> Result<LayoutPlan, RegistryError> {
    let (_, index) = read_json(&dir.join("index.json"))?;
    let entries = index
        .get("manifests")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty())
        .ok_or_else(|| {
            RegistryError::Invalid(format!("{}/index.json lists no manifest", dir.display()))
        })?;
    let mut plan = Plan::new(repository);
    let mut tags = Vec::new();
    let mut root = None;
    for e in entries {
        let d = descriptor_of(e)?;
        add_tree(dir, &d, &mut plan, 0)?;
        if let Some(t) = e
            .pointer(&format!(
                "/annotations/{}",
                ANNOTATION_REF_NAME.replace('/', "~1")
            ))
            .and_then(Value::as_str)
        {
            tags.push((t.to_string(), d.digest.clone()));
        }
        root.get_or_insert(d);
    }
    Ok(LayoutPlan {
        plan,
        root: root.ok_or_else(|| RegistryError::Invalid("empty index.json".into()))?,
        tags,
    })
}

fn blob_path(dir: &Path, d: &Digest) -> PathBuf {
    dir.join("blobs").join("sha256").join(d.hex())
}

fn add_tree(
    dir: &Path,
    d: &Descriptor,
    plan: &mut Plan,
    depth: usize,
) -> Result<(), RegistryError> {
    if depth > 4 {
        return Err(RegistryError::Invalid("manifest nesting too deep".into()));
    }
    let (bytes, v) = read_json(&blob_path(dir, &d.digest))?;
    if Digest::of(&bytes) != d.digest {
        return Err(RegistryError::DigestMismatch {
            what: format!("layout blob {}", d.digest),
            expected: d.digest.to_string(),
            got: Digest::of(&bytes).to_string(),
        });
    }
    let media_type = v
        .get("mediaType")
        .and_then(Value::as_str)
        .unwrap_or(&d.media_type)
        .to_string();
    if let Some(children) = v.get("manifests").and_then(Value::as_array) {
        for c in children {
            add_tree(dir, &descriptor_of(c)?, plan, depth + 1)?;
        }
    } else {
        let config = v.get("config").ok_or_else(|| {
            RegistryError::Invalid(format!("manifest {} has no config", d.digest))
        })?;
        let mut blobs = vec![descriptor_of(config)?];
        for l in v
            .get("layers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            blobs.push(descriptor_of(l)?);
        }
        for b in blobs {
            let path = blob_path(dir, &b.digest);
            let size = std::fs::metadata(&path)
                .map_err(|source| RegistryError::Io {
                    what: "reading",
                    path: path.clone(),
                    source,
                })?
                .len();
            if size != b.size {
                return Err(RegistryError::Invalid(format!(
                    "layout blob {} has {size} bytes, its descriptor says {}",
                    b.digest, b.size
                )));
            }
            plan.add_blob(b, BlobSource::File(path));
        }
    }
    let mt = if media_type.is_empty() {
        if v.get("manifests").is_some() {
            MEDIA_INDEX
        } else {
            MEDIA_MANIFEST
        }
        .to_string()
    } else {
        media_type
    };
    plan.add_manifest(&mt, bytes);
    Ok(())
}
