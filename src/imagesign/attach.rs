//! The manifests cosign stores beside an image: `sha256-<hex>.sig` (simple
//! signing layers) and `sha256-<hex>.att` (DSSE envelope layers). Pure: the
//! caller pushes the returned blobs, then the manifest, then the tag.

use std::collections::BTreeMap;

use serde_json::json;

use crate::oci::{Descriptor, Digest, MEDIA_CONFIG, Manifest, canonical_json};

/// Media type of a simple-signing payload layer.
pub const MEDIA_SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// Media type of a DSSE envelope layer.
pub const MEDIA_DSSE: &str = "application/vnd.dsse.envelope.v1+json";
/// The annotation holding a layer's base64 signature.
pub const ANNOTATION_SIGNATURE: &str = "dev.cosignproject.cosign/signature";
/// The annotation naming an attestation layer's predicate type.
pub const ANNOTATION_PREDICATE: &str = "predicateType";

/// The tag holding the signatures of `digest`.
pub fn signature_tag(digest: &Digest) -> String {
    format!("sha256-{}.sig", digest.hex())
}

/// The tag holding the attestations of `digest`.
pub fn attestation_tag(digest: &Digest) -> String {
    format!("sha256-{}.att", digest.hex())
}

/// A manifest with the blobs it needs.
#[derive(Debug, Clone)]
pub struct Attachment {
    /// Blobs (config first, then layers) with their bytes.
    pub blobs: Vec<(Descriptor, Vec<u8>)>,
    /// The manifest bytes (canonical JSON).
    pub manifest: Vec<u8>,
    /// Its descriptor.
    pub descriptor: Descriptor,
}

/// One layer: bytes plus annotations.
#[derive(Debug, Clone)]
pub struct Layer {
    /// The blob bytes.
    pub bytes: Vec<u8>,
    /// Layer annotations.
    pub annotations: BTreeMap<String, String>,
}

/// A simple-signing layer: `payload` with its base64 signature.
pub fn signature_layer(payload: Vec<u8>, signature_b64: &str) -> Layer {
    Layer {
        bytes: payload,
        annotations: BTreeMap::from([(
            ANNOTATION_SIGNATURE.to_string(),
            signature_b64.to_string(),
        )]),
    }
}

/// A DSSE envelope layer of `predicate_type`.
pub fn attestation_layer(envelope: Vec<u8>, predicate_type: &str) -> Layer {
    Layer {
        bytes: envelope,
        annotations: BTreeMap::from([
            (ANNOTATION_SIGNATURE.to_string(), String::new()),
            (ANNOTATION_PREDICATE.to_string(), predicate_type.to_string()),
        ]),
    }
}

/// The manifest of `layers` (all of `media_type`), with cosign's minimal
/// config (empty platform, zero time, the layers' digests as diff ids).
pub fn manifest(media_type: &str, layers: Vec<Layer>) -> Attachment {
    let descs: Vec<Descriptor> = layers
        .iter()
        .map(|l| {
            let mut d = Descriptor::for_bytes(media_type, &l.bytes);
            d.annotations = l.annotations.clone();
            d
        })
        .collect();
    let zero = "0001-01-01T00:00:00Z";
    let ids: Vec<&str> = descs.iter().map(|d| d.digest.as_str()).collect();
    let config = canonical_json(&json!({
        "architecture": "",
        "os": "",
        "created": zero,
        "history": [{"created": zero}],
        "rootfs": {"type": "layers", "diff_ids": ids},
        "config": {},
    }));
    let config_desc = Descriptor::for_bytes(MEDIA_CONFIG, &config);
    let m = Manifest {
        config: config_desc.clone(),
        layers: descs.clone(),
        annotations: BTreeMap::new(),
    };
    let bytes = canonical_json(&m.to_json());
    let mut blobs = vec![(config_desc, config)];
    blobs.extend(descs.into_iter().zip(layers.into_iter().map(|l| l.bytes)));
    Attachment {
        descriptor: Descriptor::for_bytes(crate::oci::MEDIA_MANIFEST, &bytes),
        manifest: bytes,
        blobs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_manifest_shape() {
        let d = Digest::of(b"img");
        assert_eq!(signature_tag(&d), format!("sha256-{}.sig", d.hex()));
        assert_eq!(attestation_tag(&d), format!("sha256-{}.att", d.hex()));
        let a = manifest(
            MEDIA_SIMPLE_SIGNING,
            vec![signature_layer(b"payload".to_vec(), "c2ln")],
        );
        let v: serde_json::Value = serde_json::from_slice(&a.manifest).unwrap();
        assert_eq!(v["layers"][0]["mediaType"], MEDIA_SIMPLE_SIGNING);
        assert_eq!(v["layers"][0]["annotations"][ANNOTATION_SIGNATURE], "c2ln");
        assert_eq!(v["layers"][0]["digest"], Digest::of(b"payload").as_str());
        assert_eq!(a.blobs.len(), 2);
        let cfg: serde_json::Value = serde_json::from_slice(&a.blobs[0].1).unwrap();
        assert_eq!(
            cfg["rootfs"]["diff_ids"][0],
            Digest::of(b"payload").as_str()
        );
        assert_eq!(a.descriptor.digest, Digest::of(&a.manifest));
    }
}
