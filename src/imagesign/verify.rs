//! Checking a `.sig` / `.att` manifest against a public key, an expected
//! image digest and the repository the image is pulled from. Each failure is
//! a distinct [`VerifyError`] so the CLI can say exactly what is wrong.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use openssl::pkey::{PKey, Public};
use serde_json::Value;

use super::attach::{ANNOTATION_SIGNATURE, MEDIA_DSSE, MEDIA_SIMPLE_SIGNING};
use super::keys::verify;
use super::payload::{
    INTOTO_PAYLOAD_TYPE, SIGNATURE_TYPE, STATEMENT_TYPE, pae, parse_envelope, parse_simple_signing,
};
use crate::oci::Digest;

/// Why an image's signature or attestation is not accepted.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    /// No `sha256-<hex>.sig` manifest, or one without signature layers.
    #[error("no signature: {0} does not exist or holds no simple-signing layer")]
    NoSignature(String),
    /// No `sha256-<hex>.att` manifest.
    #[error("no attestations: {0} does not exist or holds no DSSE layer")]
    NoAttestation(String),
    /// A blob's bytes do not hash to the digest the manifest names.
    #[error("blob {0} does not match its digest (tampered in the registry)")]
    BlobMismatch(String),
    /// The signature does not verify with the key.
    #[error(
        "signature does not verify with the given key: the payload or the signature was altered, or another key signed it"
    )]
    BadSignature,
    /// The payload signs another image.
    #[error("signature is for another image: payload names {claimed}, the image is {expected}")]
    WrongDigest {
        /// What the payload names.
        claimed: String,
        /// The image's digest.
        expected: String,
    },
    /// The payload names another repository.
    #[error("signature is for another repository: payload names {claimed}, expected {expected}")]
    WrongReference {
        /// What the payload names.
        claimed: String,
        /// Where the image was pulled from.
        expected: String,
    },
    /// The document is not what cosign writes.
    #[error("malformed {0}")]
    Malformed(String),
    /// No attestation of a required predicate type verified.
    #[error("no attestation of type {0} signed by the given key")]
    MissingPredicate(String),
    /// Fetching a blob failed.
    #[error("fetching {digest}: {reason}")]
    Fetch {
        /// The blob.
        digest: String,
        /// Why.
        reason: String,
    },
}

/// Fetches a blob by digest.
pub type FetchBlob<'a> = &'a dyn Fn(&Digest) -> Result<Vec<u8>, String>;

struct LayerRef {
    media_type: String,
    digest: Digest,
    annotations: serde_json::Map<String, Value>,
}

fn layers(manifest: &[u8]) -> Result<Vec<LayerRef>, VerifyError> {
    let v: Value = serde_json::from_slice(manifest)
        .map_err(|_| VerifyError::Malformed("manifest json".into()))?;
    let arr = v
        .get("layers")
        .and_then(Value::as_array)
        .ok_or_else(|| VerifyError::Malformed("manifest without layers".into()))?;
    arr.iter()
        .map(|l| {
            let digest = l
                .get("digest")
                .and_then(Value::as_str)
                .and_then(|d| Digest::parse(d).ok())
                .ok_or_else(|| VerifyError::Malformed("layer digest".into()))?;
            Ok(LayerRef {
                media_type: l
                    .get("mediaType")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                digest,
                annotations: l
                    .get("annotations")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default(),
            })
        })
        .collect()
}

fn fetch_checked(fetch: FetchBlob<'_>, d: &Digest) -> Result<Vec<u8>, VerifyError> {
    let bytes = fetch(d).map_err(|reason| VerifyError::Fetch {
        digest: d.to_string(),
        reason,
    })?;
    if Digest::of(&bytes) != *d {
        return Err(VerifyError::BlobMismatch(d.to_string()));
    }
    Ok(bytes)
}

/// What a good signature said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The payload's `docker-reference`.
    pub docker_reference: String,
    /// The signed payload bytes.
    pub payload: Vec<u8>,
    /// The DER signature.
    pub signature: Vec<u8>,
}

/// Verify the simple-signing layers of the `.sig` manifest `tag`: at least one
/// must verify with `key` and name `expected` and `reference`. When none does,
/// the most specific failure is returned (a verified payload naming the wrong
/// image or repository beats a bad signature).
pub fn verify_signatures(
    tag: &str,
    manifest: Option<&[u8]>,
    fetch: FetchBlob<'_>,
    key: &PKey<Public>,
    expected: &Digest,
    reference: &str,
) -> Result<Verified, VerifyError> {
    let Some(manifest) = manifest else {
        return Err(VerifyError::NoSignature(tag.to_string()));
    };
    let sigs: Vec<LayerRef> = layers(manifest)?
        .into_iter()
        .filter(|l| l.media_type == MEDIA_SIMPLE_SIGNING)
        .collect();
    if sigs.is_empty() {
        return Err(VerifyError::NoSignature(tag.to_string()));
    }
    let mut worst: Option<VerifyError> = None;
    let rank = |e: &VerifyError| match e {
        VerifyError::WrongDigest { .. } | VerifyError::WrongReference { .. } => 3,
        VerifyError::BlobMismatch(_) => 2,
        VerifyError::BadSignature => 1,
        _ => 0,
    };
    for l in &sigs {
        let result = check_one(l, fetch, key, expected, reference);
        match result {
            Ok(v) => return Ok(v),
            Err(e) => {
                if worst.as_ref().is_none_or(|w| rank(&e) > rank(w)) {
                    worst = Some(e);
                }
            }
        }
    }
    Err(worst.unwrap_or(VerifyError::BadSignature))
}

fn check_one(
    l: &LayerRef,
    fetch: FetchBlob<'_>,
    key: &PKey<Public>,
    expected: &Digest,
    reference: &str,
) -> Result<Verified, VerifyError> {
    let payload = fetch_checked(fetch, &l.digest)?;
    let sig = l
        .annotations
        .get(ANNOTATION_SIGNATURE)
        .and_then(Value::as_str)
        .and_then(|s| B64.decode(s).ok())
        .ok_or_else(|| VerifyError::Malformed("signature annotation (not base64)".into()))?;
    if !verify(key, &payload, &sig) {
        return Err(VerifyError::BadSignature);
    }
    let p = parse_simple_signing(&payload)
        .ok_or_else(|| VerifyError::Malformed("simple-signing payload".into()))?;
    if p.kind != SIGNATURE_TYPE {
        return Err(VerifyError::Malformed(format!("payload type `{}`", p.kind)));
    }
    if p.digest != expected.as_str() {
        return Err(VerifyError::WrongDigest {
            claimed: p.digest,
            expected: expected.to_string(),
        });
    }
    if p.docker_reference != reference {
        return Err(VerifyError::WrongReference {
            claimed: p.docker_reference,
            expected: reference.to_string(),
        });
    }
    Ok(Verified {
        docker_reference: p.docker_reference,
        payload,
        signature: sig,
    })
}

/// Verify the DSSE layers of the `.att` manifest `tag` and return the
/// predicate types of those signed by `key` whose statement's subject is
/// `expected`, in layer order. Layers from other signers are skipped (as
/// cosign does); every predicate type in `required` must be among the
/// verified ones, otherwise the failure of a layer of that type (or
/// [`VerifyError::MissingPredicate`]) is returned.
pub fn verify_attestations(
    tag: &str,
    manifest: Option<&[u8]>,
    fetch: FetchBlob<'_>,
    key: &PKey<Public>,
    expected: &Digest,
    required: &[&str],
) -> Result<Vec<String>, VerifyError> {
    let Some(manifest) = manifest else {
        return Err(VerifyError::NoAttestation(tag.to_string()));
    };
    let atts: Vec<LayerRef> = layers(manifest)?
        .into_iter()
        .filter(|l| l.media_type == MEDIA_DSSE)
        .collect();
    if atts.is_empty() {
        return Err(VerifyError::NoAttestation(tag.to_string()));
    }
    let mut good = Vec::new();
    let mut bad: Vec<(String, VerifyError)> = Vec::new();
    for l in &atts {
        let claimed = l
            .annotations
            .get("predicateType")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        match check_attestation(l, fetch, key, expected) {
            Ok(t) => good.push(t),
            Err(e) => bad.push((claimed, e)),
        }
    }
    if good.is_empty()
        && let Some((_, e)) = bad.first()
    {
        return Err(e.clone());
    }
    for want in required {
        if !good.iter().any(|g| g == want) {
            return Err(bad
                .iter()
                .find(|(t, _)| t == want)
                .map(|(_, e)| e.clone())
                .unwrap_or_else(|| VerifyError::MissingPredicate(want.to_string())));
        }
    }
    Ok(good)
}

fn check_attestation(
    l: &LayerRef,
    fetch: FetchBlob<'_>,
    key: &PKey<Public>,
    expected: &Digest,
) -> Result<String, VerifyError> {
    let bytes = fetch_checked(fetch, &l.digest)?;
    let env =
        parse_envelope(&bytes).ok_or_else(|| VerifyError::Malformed("dsse envelope".into()))?;
    if env.payload_type != INTOTO_PAYLOAD_TYPE {
        return Err(VerifyError::Malformed(format!(
            "payload type `{}`",
            env.payload_type
        )));
    }
    let signed = pae(&env.payload_type, &env.payload);
    if !env.signatures.iter().any(|s| verify(key, &signed, s)) {
        return Err(VerifyError::BadSignature);
    }
    let st: Value = serde_json::from_slice(&env.payload)
        .map_err(|_| VerifyError::Malformed("in-toto statement".into()))?;
    if st.get("_type").and_then(Value::as_str) != Some(STATEMENT_TYPE) {
        return Err(VerifyError::Malformed("in-toto statement type".into()));
    }
    let subject = st
        .pointer("/subject/0/digest/sha256")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if subject != expected.hex() {
        return Err(VerifyError::WrongDigest {
            claimed: format!("sha256:{subject}"),
            expected: expected.to_string(),
        });
    }
    Ok(st
        .get("predicateType")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::imagesign::attach::{manifest, signature_layer};
    use crate::imagesign::keys::ImageKey;
    use crate::imagesign::payload::simple_signing;

    fn store(a: &crate::imagesign::attach::Attachment) -> HashMap<Digest, Vec<u8>> {
        a.blobs
            .iter()
            .map(|(d, b)| (d.digest.clone(), b.clone()))
            .collect()
    }

    #[test]
    fn signature_failures_are_distinct() {
        let key = ImageKey::generate().unwrap();
        let other = ImageKey::generate().unwrap();
        let pubkey = key.public_key().unwrap();
        let img = Digest::of(b"image");
        let repo = "127.0.0.1:1/forge/hello";
        let sign = |k: &ImageKey, r: &str, d: &Digest| {
            let p = simple_signing(r, d);
            let s = B64.encode(k.sign(&p).unwrap());
            manifest(MEDIA_SIMPLE_SIGNING, vec![signature_layer(p, &s)])
        };
        let cases: Vec<(
            crate::imagesign::attach::Attachment,
            Result<(), VerifyError>,
        )> = vec![
            (sign(&key, repo, &img), Ok(())),
            (sign(&other, repo, &img), Err(VerifyError::BadSignature)),
            (
                sign(&key, repo, &Digest::of(b"other")),
                Err(VerifyError::WrongDigest {
                    claimed: Digest::of(b"other").to_string(),
                    expected: img.to_string(),
                }),
            ),
            (
                sign(&key, "127.0.0.1:1/evil", &img),
                Err(VerifyError::WrongReference {
                    claimed: "127.0.0.1:1/evil".into(),
                    expected: repo.into(),
                }),
            ),
        ];
        for (a, want) in cases {
            let blobs = store(&a);
            let fetch = |d: &Digest| blobs.get(d).cloned().ok_or_else(|| "missing".to_string());
            let got =
                verify_signatures("t", Some(&a.manifest), &fetch, &pubkey, &img, repo).map(|_| ());
            assert_eq!(got, want);
        }
        let nothing = |_: &Digest| Err("missing".to_string());
        assert_eq!(
            verify_signatures("t.sig", None, &nothing, &pubkey, &img, repo),
            Err(VerifyError::NoSignature("t.sig".into()))
        );
        // A payload altered in the registry (bytes no longer match the digest).
        let a = sign(&key, repo, &img);
        let mut blobs = store(&a);
        for (d, b) in blobs.iter_mut() {
            if *d == a.blobs[1].0.digest {
                b.push(b' ');
            }
        }
        let fetch = |d: &Digest| blobs.get(d).cloned().ok_or_else(|| "missing".to_string());
        assert!(matches!(
            verify_signatures("t", Some(&a.manifest), &fetch, &pubkey, &img, repo),
            Err(VerifyError::BlobMismatch(_))
        ));
    }

    #[test]
    fn attestations_from_other_keys_are_skipped_but_required_types_must_verify() {
        use crate::imagesign::attach::{MEDIA_DSSE, attestation_layer};
        use crate::imagesign::keys::key_id;
        use crate::imagesign::payload::{PREDICATE_SLSA, PREDICATE_SPDX, dsse_envelope, statement};
        let key = ImageKey::generate().unwrap();
        let other = ImageKey::generate().unwrap();
        let pubkey = key.public_key().unwrap();
        let img = Digest::of(b"image");
        let layer = |k: &ImageKey, t: &str, subject: &Digest| {
            let body =
                crate::oci::canonical_json(&statement("r", subject, t, serde_json::json!({})));
            let sig = k.sign(&pae(INTOTO_PAYLOAD_TYPE, &body)).unwrap();
            let env = dsse_envelope(INTOTO_PAYLOAD_TYPE, &body, &key_id(&pubkey), &sig);
            attestation_layer(serde_json::to_vec(&env).unwrap(), t)
        };
        let run = |layers: Vec<crate::imagesign::attach::Layer>, required: &[&str]| {
            let a = manifest(MEDIA_DSSE, layers);
            let blobs = store(&a);
            let fetch = |d: &Digest| blobs.get(d).cloned().ok_or_else(|| "missing".to_string());
            verify_attestations("t.att", Some(&a.manifest), &fetch, &pubkey, &img, required)
        };
        let both = [PREDICATE_SPDX, PREDICATE_SLSA];
        assert_eq!(
            run(
                vec![
                    layer(&key, PREDICATE_SPDX, &img),
                    layer(&other, PREDICATE_SPDX, &img),
                    layer(&key, PREDICATE_SLSA, &img)
                ],
                &both
            ),
            Ok(vec![PREDICATE_SPDX.to_string(), PREDICATE_SLSA.to_string()])
        );
        assert_eq!(
            run(
                vec![
                    layer(&key, PREDICATE_SPDX, &img),
                    layer(&other, PREDICATE_SLSA, &img)
                ],
                &both
            ),
            Err(VerifyError::BadSignature)
        );
        assert_eq!(
            run(vec![layer(&key, PREDICATE_SPDX, &img)], &both),
            Err(VerifyError::MissingPredicate(PREDICATE_SLSA.into()))
        );
        assert!(matches!(
            run(vec![layer(&key, PREDICATE_SPDX, &Digest::of(b"x"))], &[]),
            Err(VerifyError::WrongDigest { .. })
        ));
        assert_eq!(
            run(vec![], &[]),
            Err(VerifyError::NoAttestation("t.att".into()))
        );
    }
}
