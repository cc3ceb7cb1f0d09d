//! Signing and attesting an image that is (or is about to be) in a
//! registry: adds the `.sig` / `.att` manifests to a push [`Plan`].
//!
//! A `.sig` that already holds a valid signature by the same key for the
//! same digest and repository is left alone (ECDSA signatures are
//! randomised, so re-signing would change the manifest on every publish);
//! otherwise the new signature is appended to the existing simple-signing
//! layers, as cosign does. The `.att` is replaced unless it already holds
//! exactly the same statements, validly signed by the key.

use std::collections::BTreeSet;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::Value;

use super::RegistryError;
use super::client::Client;
use super::push::{BlobSource, Plan, push_scopes};
use crate::imagesign::attach::{self, Attachment, Layer, MEDIA_DSSE, MEDIA_SIMPLE_SIGNING};
use crate::imagesign::keys::{ImageKey, key_id};
use crate::imagesign::payload::{self, INTOTO_PAYLOAD_TYPE, pae};
use crate::imagesign::verify::{verify_attestations, verify_signatures};
use crate::oci::{Digest, MEDIA_MANIFEST, canonical_json};

fn sign_err(e: crate::imagesign::ImageSignError) -> RegistryError {
    RegistryError::Invalid(format!("signing: {e}"))
}

fn add_attachment(plan: &mut Plan, a: Attachment, tag: String) {
    for (d, bytes) in a.blobs {
        plan.add_blob(d, BlobSource::Bytes(Arc::new(bytes)));
    }
    let digest = plan.add_manifest(MEDIA_MANIFEST, a.manifest);
    plan.tags.push((tag, digest));
}

/// Add a signature of `digest` (pulled as `reference` = `registry/repo`) to
/// `plan`. Returns false when a valid one is already stored.
pub fn plan_signature(
    client: &Client,
    plan: &mut Plan,
    reference: &str,
    digest: &Digest,
    key: &ImageKey,
) -> Result<bool, RegistryError> {
    let repo = plan.repository.clone();
    let scopes = push_scopes(&repo);
    let tag = attach::signature_tag(digest);
    let existing = client.get_manifest(&repo, &tag, &scopes)?;
    let pubkey = key.public_key().map_err(sign_err)?;
    let fetch = |d: &Digest| {
        client
            .get_blob(&repo, d, &scopes)
            .map_err(|e| e.to_string())
    };
    if let Some((_, m)) = &existing
        && verify_signatures(&tag, Some(m), &fetch, &pubkey, digest, reference).is_ok()
    {
        return Ok(false);
    }
    let mut layers = Vec::new();
    if let Some((_, m)) = &existing {
        let v: Value = serde_json::from_slice(m).unwrap_or(Value::Null);
        for l in v
            .get("layers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if l.get("mediaType").and_then(Value::as_str) != Some(MEDIA_SIMPLE_SIGNING) {
                continue;
            }
            let Some(d) = l
                .get("digest")
                .and_then(Value::as_str)
                .and_then(|d| Digest::parse(d).ok())
            else {
                continue;
            };
            let sig = l
                .pointer("/annotations/dev.cosignproject.cosign~1signature")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if let Ok(bytes) = client.get_blob(&repo, &d, &scopes) {
                layers.push(attach::signature_layer(bytes, sig));
            }
        }
    }
    let p = payload::simple_signing(reference, digest);
    let sig = key.sign(&p).map_err(sign_err)?;
    layers.push(attach::signature_layer(p, &B64.encode(sig)));
    add_attachment(plan, attach::manifest(MEDIA_SIMPLE_SIGNING, layers), tag);
    Ok(true)
}

/// Add attestations (in-toto statements about `digest`, each
/// `(predicate type, predicate)`) to `plan`. Returns false when the stored
/// `.att` already holds exactly these statements signed by `key`.
pub fn plan_attestations(
    client: &Client,
    plan: &mut Plan,
    reference: &str,
    digest: &Digest,
    key: &ImageKey,
    predicates: &[(String, Value)],
) -> Result<bool, RegistryError> {
    let repo = plan.repository.clone();
    let scopes = push_scopes(&repo);
    let tag = attach::attestation_tag(digest);
    let statements: Vec<(String, Vec<u8>)> = predicates
        .iter()
        .map(|(t, p)| {
            (
                t.clone(),
                canonical_json(&payload::statement(reference, digest, t, p.clone())),
            )
        })
        .collect();
    let pubkey = key.public_key().map_err(sign_err)?;
    if let Some((_, m)) = client.get_manifest(&repo, &tag, &scopes)? {
        let fetch = |d: &Digest| {
            client
                .get_blob(&repo, d, &scopes)
                .map_err(|e| e.to_string())
        };
        if verify_attestations(&tag, Some(&m), &fetch, &pubkey, digest, &[]).is_ok() {
            let stored = stored_payloads(client, &repo, &scopes, &m);
            let want: BTreeSet<Vec<u8>> = statements.iter().map(|(_, s)| s.clone()).collect();
            if stored == want {
                return Ok(false);
            }
        }
    }
    let keyid = key_id(&pubkey);
    let mut layers: Vec<Layer> = Vec::new();
    for (t, body) in statements {
        let sig = key
            .sign(&pae(INTOTO_PAYLOAD_TYPE, &body))
            .map_err(sign_err)?;
        let env = payload::dsse_envelope(INTOTO_PAYLOAD_TYPE, &body, &keyid, &sig);
        layers.push(attach::attestation_layer(canonical_json(&env), &t));
    }
    add_attachment(plan, attach::manifest(MEDIA_DSSE, layers), tag);
    Ok(true)
}

fn stored_payloads(
    client: &Client,
    repo: &str,
    scopes: &[String],
    manifest: &[u8],
) -> BTreeSet<Vec<u8>> {
    let v: Value = serde_json::from_slice(manifest).unwrap_or(Value::Null);
    v.get("layers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|l| Digest::parse(l.get("digest")?.as_str()?).ok())
        .filter_map(|d| client.get_blob(repo, &d, scopes).ok())
        .filter_map(|b| payload::parse_envelope(&b).map(|e| e.payload))
        .collect()
}
