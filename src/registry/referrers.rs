//! SBOMs as OCI 1.1 artifacts that name the image as their `subject`, so
//! tools that follow the referrers API (oras, zot, Harbor ≥ 2.9, Kyverno's
//! OCI 1.1 mode) find them beside cosign's `.att` attestations.
//!
//! Each SBOM becomes a manifest with `artifactType` [`MEDIA_SPDX`], the empty
//! config and one layer (the SPDX JSON, titled `sbom-<arch>.spdx.json`).
//! Registries with the referrers API index it by `subject` on their own. For
//! the others (distribution 2.8 and 3.x answer 404), the fallback tag
//! `sha256-<hex of the subject>` holds an image index listing the referrers:
//! read it, append the new descriptors (with `artifactType` and
//! annotations), put it back. Both land in the same push plan, the index
//! after the manifests it lists.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};

use super::RegistryError;
use super::client::Client;
use super::plan::{BlobSource, Plan};
use super::push::push_scopes;
use crate::oci::{Descriptor, Digest, MEDIA_INDEX, MEDIA_MANIFEST, Manifest, canonical_json};

/// `artifactType` and layer media type of an SPDX SBOM.
pub const MEDIA_SPDX: &str = "application/spdx+json";
/// The OCI empty descriptor's media type.
const MEDIA_EMPTY: &str = "application/vnd.oci.empty.v1+json";

/// The fallback tag of `subject`.
pub fn fallback_tag(subject: &Digest) -> String {
    format!("sha256-{}", subject.hex())
}

/// An artifact manifest: `(bytes, descriptor as listed in a referrers index)`.
pub fn artifact_manifest(
    subject: &Descriptor,
    artifact_type: &str,
    layer: &Descriptor,
) -> (Vec<u8>, Value) {
    let empty = Descriptor::for_bytes(MEDIA_EMPTY, b"{}");
    let m = Manifest {
        config: empty,
        layers: vec![layer.clone()],
        annotations: BTreeMap::new(),
    };
    let mut v = m.to_json();
    v["artifactType"] = json!(artifact_type);
    let mut s = subject.clone();
    s.platform = None;
    s.annotations.clear();
    v["subject"] = s.to_json();
    let bytes = canonical_json(&v);
    let mut entry = Descriptor::for_bytes(MEDIA_MANIFEST, &bytes).to_json();
    entry["artifactType"] = json!(artifact_type);
    (bytes, entry)
}

/// Add the SBOMs (`(title, bytes)`) of `subject` to `plan` as referrers,
/// with the fallback index when the registry needs one. Returns how many
/// referrers the registry did not list yet.
pub fn plan_sboms(
    client: &Client,
    plan: &mut Plan,
    subject: &Descriptor,
    sboms: &[(String, Vec<u8>)],
) -> Result<usize, RegistryError> {
    let repo = plan.repository.clone();
    let mut entries = Vec::new();
    for (title, bytes) in sboms {
        let mut layer = Descriptor::for_bytes(MEDIA_SPDX, bytes);
        plan.add_blob(layer.clone(), BlobSource::Bytes(Arc::new(bytes.clone())));
        layer
            .annotations
            .insert("org.opencontainers.image.title".into(), title.clone());
        let (m, entry) = artifact_manifest(subject, MEDIA_SPDX, &layer);
        plan.add_manifest(MEDIA_MANIFEST, m);
        entries.push(entry);
    }
    if entries.is_empty() {
        return Ok(0);
    }
    let empty = b"{}".to_vec();
    plan.add_blob(
        Descriptor::for_bytes(MEDIA_EMPTY, &empty),
        BlobSource::Bytes(Arc::new(empty)),
    );
    let scopes = push_scopes(&repo);
    if let Some(listed) = client.get_referrers(&repo, &subject.digest, &scopes)? {
        let known = digests_of(&listed);
        return Ok(entries
            .iter()
            .filter(|e| !known.contains(&e["digest"]))
            .count());
    }
    let tag = fallback_tag(&subject.digest);
    let mut index = match client.get_manifest(&repo, &tag, &scopes)? {
        Some((_, bytes)) => serde_json::from_slice::<Value>(&bytes)
            .map_err(|e| RegistryError::Invalid(format!("referrers index {tag}: {e}")))?,
        None => json!({"schemaVersion": 2, "mediaType": MEDIA_INDEX, "manifests": []}),
    };
    let known = digests_of(&index);
    let new: Vec<Value> = entries
        .into_iter()
        .filter(|e| !known.contains(&e["digest"]))
        .collect();
    let added = new.len();
    if let Some(list) = index["manifests"].as_array_mut() {
        list.extend(new);
    }
    let digest = plan.add_manifest(MEDIA_INDEX, canonical_json(&index));
    plan.tags.push((tag, digest));
    Ok(added)
}

fn digests_of(index: &Value) -> Vec<Value> {
    index["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| m["digest"].clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_manifest_names_its_subject() {
        let subject = Descriptor::for_bytes(MEDIA_INDEX, b"{\"x\":1}");
        let layer = Descriptor::for_bytes(MEDIA_SPDX, b"{}");
        let (bytes, entry) = artifact_manifest(&subject, MEDIA_SPDX, &layer);
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["artifactType"], MEDIA_SPDX);
        assert_eq!(v["subject"]["digest"], subject.digest.as_str());
        assert_eq!(v["subject"]["mediaType"], MEDIA_INDEX);
        assert_eq!(v["config"]["mediaType"], MEDIA_EMPTY);
        assert_eq!(entry["digest"], Digest::of(&bytes).as_str());
        assert_eq!(entry["artifactType"], MEDIA_SPDX);
        assert_eq!(
            fallback_tag(&subject.digest),
            format!("sha256-{}", subject.digest.hex())
        );
    }
}
