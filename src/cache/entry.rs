//! The format of one cache entry (pure: no I/O).
//!
//! An entry is one OCI image manifest, tagged [`tag_for`] the unit key:
//!
//! - `artifactType` [`ARTIFACT_TYPE`];
//! - the config blob ([`MEDIA_ENTRY`]): canonical JSON naming the format,
//!   the unit, its version, arch and key, and every package file with its
//!   SHA-256 and size ([`EntryConfig`]);
//! - one layer per package ([`MEDIA_APK`]), titled with its file name, in
//!   the config's order;
//! - the manifest annotations [`ANNOTATION_SIGNER`] (the public key's file
//!   name) and [`ANNOTATION_SIGNATURE`] (base64 RSA PKCS#1 v1.5 over SHA-256
//!   of the config bytes, by the package signing key).
//!
//! The signature covers the config, and the config names every layer's
//! digest, so one signature vouches for the whole entry. RSA PKCS#1 v1.5 is
//! deterministic and every part is canonical, so two runners that built
//! the same key push byte-identical blobs and manifests: a race between
//! them stores the same thing twice.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::CacheError;
use crate::oci::{Descriptor, Digest, Manifest, canonical_json};
use crate::registry::artifact::{ANNOTATION_TITLE, MEDIA_APK, valid_apk_name};
use crate::sign::{SigAlg, TrustedKeys};

/// `artifactType` of a build cache entry.
pub const ARTIFACT_TYPE: &str = "application/vnd.forge.cache.unit.v1";
/// Media type of the entry's config blob.
pub const MEDIA_ENTRY: &str = "application/vnd.forge.cache.unit.v1+json";
/// Manifest annotation: the signing key's public file name.
pub const ANNOTATION_SIGNER: &str = "dev.forge.cache.signer";
/// Manifest annotation: the base64 signature over the config bytes.
pub const ANNOTATION_SIGNATURE: &str = "dev.forge.cache.signature";
/// Version of the config's shape.
pub const FORMAT: u32 = 1;
/// The largest config forge reads.
pub const MAX_CONFIG: u64 = 1 << 20;
/// The most packages one entry may hold.
pub const MAX_FILES: usize = 1000;

/// The tag of the entry for unit key `key` (64 hex digits):
/// `unit-<key>`, 69 characters, inside OCI's tag grammar
/// (`[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`).
pub fn tag_for(key: &str) -> Result<String, CacheError> {
    if key.len() == 64
        && key
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(format!("unit-{key}"))
    } else {
        Err(CacheError::BadKey(key.to_string()))
    }
}

/// One package of an entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntryFile {
    /// File name in `out/repo/<arch>/`.
    pub name: String,
    /// SHA-256 (hex) of the whole file.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
}

impl EntryFile {
    /// The layer digest.
    pub fn digest(&self) -> Result<Digest, CacheError> {
        Digest::parse(&format!("sha256:{}", self.sha256))
            .map_err(|_| CacheError::Refused(format!("`{}`: bad sha256", self.name)))
    }
}

/// What an entry holds: the signed config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntryConfig {
    /// [`FORMAT`].
    pub format: u32,
    /// The unit (recipe) name.
    pub unit: String,
    /// `version-rN`.
    pub version: String,
    /// The architecture it was built for.
    pub arch: String,
    /// The unit key.
    pub key: String,
    /// Its packages, in file-name order.
    pub files: Vec<EntryFile>,
}

impl EntryConfig {
    /// The canonical bytes (what is signed and stored).
    pub fn to_bytes(&self) -> Vec<u8> {
        canonical_json(&serde_json::to_value(self).expect("plain data serializes"))
    }

    /// Parse and check a config against the unit it should be for.
    pub fn parse(bytes: &[u8], want: &Expected<'_>) -> Result<EntryConfig, CacheError> {
        let c: EntryConfig = serde_json::from_slice(bytes)
            .map_err(|e| CacheError::Refused(format!("config: {e}")))?;
        let refuse = |what: String| Err(CacheError::Refused(what));
        if c.format != FORMAT {
            return refuse(format!("config format {} (forge reads {FORMAT})", c.format));
        }
        if (c.unit.as_str(), c.key.as_str(), c.arch.as_str()) != (want.unit, want.key, want.arch) {
            return refuse(format!(
                "config is for unit `{}` key {} ({}), not this unit",
                c.unit, c.key, c.arch
            ));
        }
        if c.files.is_empty() || c.files.len() > MAX_FILES {
            return refuse(format!("config lists {} packages", c.files.len()));
        }
        let mut seen = BTreeSet::new();
        for f in &c.files {
            if !valid_apk_name(&f.name) || !seen.insert(f.name.as_str()) {
                return refuse(format!(
                    "config lists `{}`, not a package file name",
                    f.name
                ));
            }
            f.digest()?;
        }
        Ok(c)
    }
}

/// The unit a looked-up entry must be for.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// The unit name.
    pub unit: &'a str,
    /// Its key.
    pub key: &'a str,
    /// The architecture.
    pub arch: &'a str,
}

/// The layer descriptor of a package file.
fn layer(f: &EntryFile) -> Result<Descriptor, CacheError> {
    Ok(Descriptor {
        media_type: MEDIA_APK.to_string(),
        digest: f.digest()?,
        size: f.size,
        platform: None,
        annotations: BTreeMap::from([(ANNOTATION_TITLE.to_string(), f.name.clone())]),
    })
}

/// The manifest of an entry whose config is `config` (bytes), signed by
/// `signer` with `signature`.
pub fn manifest(
    config: &EntryConfig,
    config_bytes: &[u8],
    signer: &str,
    signature: &[u8],
) -> Result<Vec<u8>, CacheError> {
    let layers = config.files.iter().map(layer).collect::<Result<_, _>>()?;
    let m = Manifest {
        config: Descriptor::for_bytes(MEDIA_ENTRY, config_bytes),
        layers,
        annotations: BTreeMap::from([
            (ANNOTATION_SIGNER.to_string(), signer.to_string()),
            (ANNOTATION_SIGNATURE.to_string(), B64.encode(signature)),
        ]),
    };
    let mut v = m.to_json();
    v["artifactType"] = json!(ARTIFACT_TYPE);
    Ok(canonical_json(&v))
}

/// The parts of a stored manifest forge acts on, each checked for shape.
#[derive(Debug, Clone)]
pub struct ManifestParts {
    /// The config descriptor.
    pub config: (Digest, u64),
    /// The layers: title, digest, size.
    pub layers: Vec<(String, Digest, u64)>,
    /// The signer and the decoded signature.
    pub signature: (String, Vec<u8>),
}

fn str_at<'v>(v: &'v Value, ptr: &str) -> Option<&'v str> {
    v.pointer(ptr).and_then(Value::as_str)
}

fn descriptor(v: &Value, media: &str, what: &str) -> Result<(Digest, u64), CacheError> {
    let bad = || CacheError::Refused(format!("{what}: not a {media} descriptor"));
    if str_at(v, "/mediaType") != Some(media) {
        return Err(bad());
    }
    let digest = str_at(v, "/digest")
        .and_then(|d| Digest::parse(d).ok())
        .ok_or_else(bad)?;
    let size = v.get("size").and_then(Value::as_u64).ok_or_else(bad)?;
    Ok((digest, size))
}

/// Read a stored manifest: the artifact type, the config and layer
/// descriptors, and the signature annotations (their absence is
/// [`CacheError::Unsigned`]).
pub fn parse_manifest(bytes: &[u8]) -> Result<ManifestParts, CacheError> {
    let v: Value =
        serde_json::from_slice(bytes).map_err(|e| CacheError::Refused(format!("manifest: {e}")))?;
    if str_at(&v, "/artifactType") != Some(ARTIFACT_TYPE) {
        return Err(CacheError::Refused(
            "not a forge build cache entry (artifactType)".into(),
        ));
    }
    let config = descriptor(&v["config"], MEDIA_ENTRY, "config")?;
    let layers = v["layers"]
        .as_array()
        .ok_or_else(|| CacheError::Refused("manifest without layers".into()))?;
    if layers.len() > MAX_FILES {
        return Err(CacheError::Refused(format!("{} layers", layers.len())));
    }
    let layers = layers
        .iter()
        .map(|l| {
            let title = str_at(l, "/annotations/org.opencontainers.image.title").unwrap_or("");
            let (d, size) = descriptor(l, MEDIA_APK, &format!("layer `{title}`"))?;
            Ok((title.to_string(), d, size))
        })
        .collect::<Result<_, CacheError>>()?;
    let signer = str_at(&v, "/annotations/dev.forge.cache.signer");
    let sig = str_at(&v, "/annotations/dev.forge.cache.signature");
    let (Some(signer), Some(sig)) = (signer, sig) else {
        return Err(CacheError::Unsigned);
    };
    let sig = B64
        .decode(sig)
        .map_err(|_| CacheError::Refused("the signature is not base64".into()))?;
    Ok(ManifestParts {
        config,
        layers,
        signature: (signer.to_string(), sig),
    })
}

/// Check the signature over `config_bytes` against the trusted keys.
pub fn verify_signature(
    parts: &ManifestParts,
    config_bytes: &[u8],
    trusted: &TrustedKeys,
) -> Result<(), CacheError> {
    let (signer, sig) = &parts.signature;
    match trusted.verify(signer, SigAlg::Rsa256, config_bytes, sig) {
        Some(true) => Ok(()),
        Some(false) => Err(CacheError::Refused(format!(
            "the signature by `{signer}` does not verify"
        ))),
        None => Err(CacheError::Refused(format!(
            "signed by `{signer}`, which is not a trusted key"
        ))),
    }
}

/// The layers must be exactly the config's files, in order.
pub fn check_layers(parts: &ManifestParts, config: &EntryConfig) -> Result<(), CacheError> {
    let want: Vec<(String, Digest, u64)> = config
        .files
        .iter()
        .map(|f| Ok((f.name.clone(), f.digest()?, f.size)))
        .collect::<Result<_, CacheError>>()?;
    if parts.layers != want {
        return Err(CacheError::Refused(
            "the layers differ from the signed list of packages".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> EntryConfig {
        EntryConfig {
            format: FORMAT,
            unit: "hello".into(),
            version: "1.0-r0".into(),
            arch: "x86_64".into(),
            key: "ab".repeat(32),
            files: vec![EntryFile {
                name: "hello-1.0-r0.apk".into(),
                sha256: "cd".repeat(32),
                size: 3,
            }],
        }
    }

    fn want(key: &str) -> Expected<'_> {
        Expected {
            unit: "hello",
            key,
            arch: "x86_64",
        }
    }

    #[test]
    fn tags_follow_the_oci_grammar_and_refuse_non_keys() {
        let t = tag_for(&"0f".repeat(32)).unwrap();
        assert_eq!(t.len(), 69);
        assert!(t.starts_with("unit-"));
        for bad in ["", "../x", &"AB".repeat(32), &"a".repeat(65)] {
            assert!(tag_for(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn manifest_round_trips_and_is_deterministic() {
        let c = config();
        let bytes = c.to_bytes();
        let m = manifest(&c, &bytes, "forge.rsa.pub", b"sig").unwrap();
        assert_eq!(m, manifest(&c, &bytes, "forge.rsa.pub", b"sig").unwrap());
        let parts = parse_manifest(&m).unwrap();
        assert_eq!(parts.signature, ("forge.rsa.pub".into(), b"sig".to_vec()));
        assert_eq!(parts.config, (Digest::of(&bytes), bytes.len() as u64));
        let key = "ab".repeat(32);
        let parsed = EntryConfig::parse(&bytes, &want(&key)).unwrap();
        check_layers(&parts, &parsed).unwrap();
    }

    #[test]
    fn a_manifest_without_signature_is_unsigned() {
        let c = config();
        let bytes = c.to_bytes();
        let mut v: Value =
            serde_json::from_slice(&manifest(&c, &bytes, "k", b"s").unwrap()).unwrap();
        v.as_object_mut().unwrap().remove("annotations");
        let err = parse_manifest(&serde_json::to_vec(&v).unwrap()).unwrap_err();
        assert!(matches!(err, CacheError::Unsigned), "{err}");
    }

    #[test]
    fn configs_for_another_unit_or_with_bad_names_are_refused() {
        let key = "ab".repeat(32);
        let other = "ee".repeat(32);
        let bytes = config().to_bytes();
        let err = EntryConfig::parse(&bytes, &want(&other)).unwrap_err();
        assert!(err.to_string().contains("not this unit"), "{err}");
        for name in ["../x.apk", "x86_64/a.apk", ".hidden.apk", "notes.txt"] {
            let mut c = config();
            c.files[0].name = name.into();
            let err = EntryConfig::parse(&c.to_bytes(), &want(&key)).unwrap_err();
            assert!(
                err.to_string().contains("not a package file name"),
                "{name}: {err}"
            );
        }
        let mut c = config();
        c.files[0].sha256 = "zz".into();
        assert!(EntryConfig::parse(&c.to_bytes(), &want(&key)).is_err());
    }

    #[test]
    fn signatures_verify_only_by_a_trusted_key_over_the_same_config() {
        let (_, key) = crate::sign::tests::test_key();
        let c = config();
        let bytes = c.to_bytes();
        let sig = key.sign(SigAlg::Rsa256, &bytes).unwrap();
        assert_eq!(
            sig,
            key.sign(SigAlg::Rsa256, &bytes).unwrap(),
            "deterministic"
        );
        let parts = parse_manifest(&manifest(&c, &bytes, key.name(), &sig).unwrap()).unwrap();
        let trusted = crate::sign::tests::test_trust();
        verify_signature(&parts, &bytes, &trusted).unwrap();
        let mut edited = c.clone();
        edited.version = "6.6-r6".into();
        let err = verify_signature(&parts, &edited.to_bytes(), &trusted).unwrap_err();
        assert!(err.to_string().contains("does not verify"), "{err}");
        let err = verify_signature(&parts, &bytes, &TrustedKeys::new()).unwrap_err();
        assert!(
            err.to_string().contains("which is not a trusted key"),
            "{err}"
        );
    }

    #[test]
    fn layers_that_differ_from_the_config_are_refused() {
        let c = config();
        let bytes = c.to_bytes();
        let mut other = c.clone();
        other.files[0].sha256 = "ef".repeat(32);
        let m = manifest(&other, &bytes, "k", b"s").unwrap();
        let err = check_layers(&parse_manifest(&m).unwrap(), &c).unwrap_err();
        assert!(
            err.to_string().contains("differ from the signed list"),
            "{err}"
        );
    }
}
