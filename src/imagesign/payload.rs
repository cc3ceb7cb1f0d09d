//! The signed documents: cosign's simple-signing payload, DSSE envelopes and
//! in-toto statements (pure functions).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};

use crate::oci::Digest;

/// The `critical.type` of a cosign signature payload.
pub const SIGNATURE_TYPE: &str = "cosign container image signature";
/// DSSE payload type of in-toto statements.
pub const INTOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// in-toto Statement v1 `_type`.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// SPDX predicate type.
pub const PREDICATE_SPDX: &str = "https://spdx.dev/Document";
/// SLSA provenance v1 predicate type.
pub const PREDICATE_SLSA: &str = "https://slsa.dev/provenance/v1";

/// The simple-signing payload for `digest` pulled as `docker_reference`
/// (`registry/repo`, no tag). Key order is cosign's (struct order), so the
/// bytes match what `cosign sign` writes for the same inputs.
pub fn simple_signing(docker_reference: &str, digest: &Digest) -> Vec<u8> {
    // serde_json keeps insertion order only with preserve_order, so render
    // by hand: the order and spacing are part of the signed bytes.
    format!(
        "{{\"critical\":{{\"identity\":{{\"docker-reference\":{}}},\"image\":{{\"docker-manifest-digest\":{}}},\"type\":{}}},\"optional\":null}}",
        Value::String(docker_reference.to_string()),
        Value::String(digest.to_string()),
        Value::String(SIGNATURE_TYPE.to_string()),
    )
    .into_bytes()
}

/// What a simple-signing payload claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimpleSigning {
    /// `critical.identity.docker-reference`.
    pub docker_reference: String,
    /// `critical.image.docker-manifest-digest`.
    pub digest: String,
    /// `critical.type`.
    pub kind: String,
}

/// Parse a simple-signing payload (either capitalisation of the digest key).
pub fn parse_simple_signing(bytes: &[u8]) -> Option<SimpleSigning> {
    let v: Value = serde_json::from_slice(bytes).ok()?;
    let c = v.get("critical")?;
    let image = c.get("image")?;
    let digest = image
        .get("docker-manifest-digest")
        .or_else(|| image.get("Docker-manifest-digest"))?
        .as_str()?;
    Some(SimpleSigning {
        docker_reference: c
            .get("identity")?
            .get("docker-reference")?
            .as_str()?
            .to_string(),
        digest: digest.to_string(),
        kind: c.get("type")?.as_str()?.to_string(),
    })
}

/// DSSE pre-authentication encoding: `DSSEv1 SP len(type) SP type SP len(body) SP body`.
pub fn pae(payload_type: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

/// A DSSE envelope around `body` with one signature (`sig` over [`pae`]).
pub fn dsse_envelope(payload_type: &str, body: &[u8], keyid: &str, sig: &[u8]) -> Value {
    json!({
        "payloadType": payload_type,
        "payload": B64.encode(body),
        "signatures": [{"keyid": keyid, "sig": B64.encode(sig)}],
    })
}

/// An in-toto Statement v1 about `subject` (`name`, digest).
pub fn statement(name: &str, subject: &Digest, predicate_type: &str, predicate: Value) -> Value {
    json!({
        "_type": STATEMENT_TYPE,
        "subject": [{"name": name, "digest": {"sha256": subject.hex()}}],
        "predicateType": predicate_type,
        "predicate": predicate,
    })
}

/// A decoded DSSE envelope.
#[derive(Debug, Clone)]
pub struct Envelope {
    /// `payloadType`.
    pub payload_type: String,
    /// The decoded payload.
    pub payload: Vec<u8>,
    /// The decoded signatures.
    pub signatures: Vec<Vec<u8>>,
}

/// Parse a DSSE envelope.
pub fn parse_envelope(bytes: &[u8]) -> Option<Envelope> {
    let v: Value = serde_json::from_slice(bytes).ok()?;
    let payload = B64.decode(v.get("payload")?.as_str()?).ok()?;
    let signatures = v
        .get("signatures")?
        .as_array()?
        .iter()
        .filter_map(|s| B64.decode(s.get("sig")?.as_str()?).ok())
        .collect();
    Some(Envelope {
        payload_type: v.get("payloadType")?.as_str()?.to_string(),
        payload,
        signatures,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_matches_the_dsse_test_vector() {
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        );
    }

    #[test]
    fn simple_signing_bytes_and_parse() {
        let d = Digest::of(b"x");
        let p = simple_signing("127.0.0.1:5000/forge/hello", &d);
        let want = format!(
            "{{\"critical\":{{\"identity\":{{\"docker-reference\":\"127.0.0.1:5000/forge/hello\"}},\"image\":{{\"docker-manifest-digest\":\"{d}\"}},\"type\":\"cosign container image signature\"}},\"optional\":null}}"
        );
        assert_eq!(String::from_utf8(p.clone()).unwrap(), want);
        let s = parse_simple_signing(&p).unwrap();
        assert_eq!(s.digest, d.as_str());
        assert_eq!(s.docker_reference, "127.0.0.1:5000/forge/hello");
        assert_eq!(s.kind, SIGNATURE_TYPE);
        let cap = want.replace("docker-manifest-digest", "Docker-manifest-digest");
        assert_eq!(
            parse_simple_signing(cap.as_bytes()).unwrap().digest,
            d.as_str()
        );
        assert!(parse_simple_signing(b"{\"critical\":{}}").is_none());
    }

    #[test]
    fn envelope_round_trip() {
        let env = dsse_envelope(INTOTO_PAYLOAD_TYPE, b"{}", "k", b"sig");
        let e = parse_envelope(&serde_json::to_vec(&env).unwrap()).unwrap();
        assert_eq!(e.payload, b"{}");
        assert_eq!(e.signatures, vec![b"sig".to_vec()]);
        assert_eq!(e.payload_type, INTOTO_PAYLOAD_TYPE);
    }
}
