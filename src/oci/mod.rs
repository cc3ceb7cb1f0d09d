//! OCI image documents: media types, digests, descriptors, manifests,
//! indexes, image configs, and their canonical JSON encoding (pure, no I/O
//! except in [`layout`]).
//!
//! Why canonical JSON: a manifest digest covers the exact bytes of the config
//! and of every layer descriptor, so a key order that varies between runs (a
//! `HashMap`) changes the image identity. Every document here is rendered as
//! a [`serde_json::Value`] and then written by [`canonical_json`]: object keys
//! sorted bytewise, no whitespace, array order kept. The bytes that are hashed
//! are the bytes that are written.
//!
//! Flow: layers are written as blobs ([`layout::Layout::blob_writer`]) giving
//! [`Descriptor`]s; an [`ImageConfig`] lists their diff ids; a [`Manifest`]
//! references config and layers; an [`Index`] lists one manifest per
//! [`Platform`]; `index.json` of the layout lists that index under a tag.

pub mod layout;

use std::collections::BTreeMap;

use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

/// `application/vnd.oci.image.manifest.v1+json`.
pub const MEDIA_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// `application/vnd.oci.image.index.v1+json`.
pub const MEDIA_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// `application/vnd.oci.image.config.v1+json`.
pub const MEDIA_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// `application/vnd.oci.image.layer.v1.tar+gzip`.
pub const MEDIA_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// The annotation that names a tag in a layout's `index.json`.
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";

/// A content digest, always `sha256:<64 lowercase hex>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest(String);

/// A digest string that is not `sha256:<64 lowercase hex>`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid digest `{0}` (expected sha256:<64 lowercase hex>)")]
pub struct DigestError(pub String);

impl Digest {
    /// The SHA-256 digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest::from_sha256(Sha256::digest(bytes).into())
    }
    /// A digest from a finished SHA-256 state.
    pub fn from_sha256(raw: [u8; 32]) -> Digest {
        Digest(format!("sha256:{}", hex::encode(raw)))
    }
    /// Parse `sha256:<hex>`.
    pub fn parse(s: &str) -> Result<Digest, DigestError> {
        let ok = s.strip_prefix("sha256:").is_some_and(|h| {
            h.len() == 64
                && h.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        });
        if ok {
            Ok(Digest(s.to_string()))
        } else {
            Err(DigestError(s.to_string()))
        }
    }
    /// The lowercase hex part.
    pub fn hex(&self) -> &str {
        &self.0["sha256:".len()..]
    }
    /// The full `sha256:<hex>` text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// An OS/architecture pair in Go's naming (`linux`, `amd64`, `arm64` + `v8`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    /// GOARCH name.
    pub architecture: String,
    /// GOOS name (always `linux` for forge).
    pub os: String,
    /// CPU variant (`v8` for arm64, `v7` for arm), if any.
    pub variant: Option<String>,
}

impl Platform {
    /// Map an apk architecture name to its OCI platform; `None` if unknown.
    pub fn from_apk_arch(arch: &str) -> Option<Platform> {
        let (a, v) = match arch {
            "x86_64" => ("amd64", None),
            "aarch64" => ("arm64", Some("v8")),
            "x86" => ("386", None),
            "armv7" => ("arm", Some("v7")),
            "armhf" => ("arm", Some("v6")),
            "ppc64le" => ("ppc64le", None),
            "s390x" => ("s390x", None),
            "riscv64" => ("riscv64", None),
            "loongarch64" => ("loong64", None),
            _ => return None,
        };
        Some(Platform {
            architecture: a.to_string(),
            os: "linux".to_string(),
            variant: v.map(str::to_string),
        })
    }

    fn to_json(&self) -> Value {
        let mut m = serde_json::Map::new();
        m.insert("architecture".into(), json!(self.architecture));
        m.insert("os".into(), json!(self.os));
        if let Some(v) = &self.variant {
            m.insert("variant".into(), json!(v));
        }
        Value::Object(m)
    }
}

/// A content descriptor: what a manifest or index says about a blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    /// The blob's media type.
    pub media_type: String,
    /// The blob's digest.
    pub digest: Digest,
    /// The blob's size in bytes.
    pub size: u64,
    /// The platform (index entries only).
    pub platform: Option<Platform>,
    /// Annotations (sorted).
    pub annotations: BTreeMap<String, String>,
}

impl Descriptor {
    /// A descriptor for `bytes` of `media_type`.
    pub fn for_bytes(media_type: &str, bytes: &[u8]) -> Descriptor {
        Descriptor {
            media_type: media_type.to_string(),
            digest: Digest::of(bytes),
            size: bytes.len() as u64,
            platform: None,
            annotations: BTreeMap::new(),
        }
    }

    /// The JSON form.
    pub fn to_json(&self) -> Value {
        let mut m = serde_json::Map::new();
        m.insert("mediaType".into(), json!(self.media_type));
        m.insert("digest".into(), json!(self.digest.as_str()));
        m.insert("size".into(), json!(self.size));
        if let Some(p) = &self.platform {
            m.insert("platform".into(), p.to_json());
        }
        if !self.annotations.is_empty() {
            m.insert("annotations".into(), json!(self.annotations));
        }
        Value::Object(m)
    }
}

/// The runtime part of an image config (`config.config`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunConfig {
    /// `Env`, `KEY=value`, in order.
    pub env: Vec<String>,
    /// `Entrypoint`.
    pub entrypoint: Vec<String>,
    /// `Cmd`.
    pub cmd: Vec<String>,
    /// `WorkingDir` (empty: unset).
    pub workdir: String,
    /// `User` (empty: unset).
    pub user: String,
    /// `Labels`.
    pub labels: BTreeMap<String, String>,
}

/// One `history` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct History {
    /// What made the layer (`forge image: hello`).
    pub created_by: String,
    /// A comment (the packages in the layer).
    pub comment: String,
}

/// An image config (`application/vnd.oci.image.config.v1+json`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageConfig {
    /// The platform the image runs on.
    pub platform: Platform,
    /// RFC 3339 creation time.
    pub created: String,
    /// Runtime configuration.
    pub config: RunConfig,
    /// SHA-256 of each uncompressed layer, base first.
    pub diff_ids: Vec<Digest>,
    /// One entry per layer.
    pub history: Vec<History>,
}

impl ImageConfig {
    /// The JSON form.
    pub fn to_json(&self) -> Value {
        let c = &self.config;
        let mut rc = serde_json::Map::new();
        if !c.env.is_empty() {
            rc.insert("Env".into(), json!(c.env));
        }
        if !c.entrypoint.is_empty() {
            rc.insert("Entrypoint".into(), json!(c.entrypoint));
        }
        if !c.cmd.is_empty() {
            rc.insert("Cmd".into(), json!(c.cmd));
        }
        if !c.workdir.is_empty() {
            rc.insert("WorkingDir".into(), json!(c.workdir));
        }
        if !c.user.is_empty() {
            rc.insert("User".into(), json!(c.user));
        }
        if !c.labels.is_empty() {
            rc.insert("Labels".into(), json!(c.labels));
        }
        let history: Vec<Value> = self
            .history
            .iter()
            .map(|h| json!({"created": self.created, "created_by": h.created_by, "comment": h.comment}))
            .collect();
        let mut m = serde_json::Map::new();
        m.insert("created".into(), json!(self.created));
        m.insert("architecture".into(), json!(self.platform.architecture));
        m.insert("os".into(), json!(self.platform.os));
        if let Some(v) = &self.platform.variant {
            m.insert("variant".into(), json!(v));
        }
        m.insert("config".into(), Value::Object(rc));
        let ids: Vec<&str> = self.diff_ids.iter().map(Digest::as_str).collect();
        m.insert("rootfs".into(), json!({"type": "layers", "diff_ids": ids}));
        m.insert("history".into(), Value::Array(history));
        Value::Object(m)
    }
}

/// An image manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The config blob.
    pub config: Descriptor,
    /// The layer blobs, base first.
    pub layers: Vec<Descriptor>,
    /// Manifest annotations.
    pub annotations: BTreeMap<String, String>,
}

impl Manifest {
    /// The JSON form.
    pub fn to_json(&self) -> Value {
        let layers: Vec<Value> = self.layers.iter().map(Descriptor::to_json).collect();
        let mut m = serde_json::Map::new();
        m.insert("schemaVersion".into(), json!(2));
        m.insert("mediaType".into(), json!(MEDIA_MANIFEST));
        m.insert("config".into(), self.config.to_json());
        m.insert("layers".into(), Value::Array(layers));
        if !self.annotations.is_empty() {
            m.insert("annotations".into(), json!(self.annotations));
        }
        Value::Object(m)
    }
}

/// An image index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Index {
    /// The entries, in their semantic order.
    pub manifests: Vec<Descriptor>,
    /// Index annotations.
    pub annotations: BTreeMap<String, String>,
}

impl Index {
    /// The JSON form.
    pub fn to_json(&self) -> Value {
        let ms: Vec<Value> = self.manifests.iter().map(Descriptor::to_json).collect();
        let mut m = serde_json::Map::new();
        m.insert("schemaVersion".into(), json!(2));
        m.insert("mediaType".into(), json!(MEDIA_INDEX));
        m.insert("manifests".into(), Value::Array(ms));
        if !self.annotations.is_empty() {
            m.insert("annotations".into(), json!(self.annotations));
        }
        Value::Object(m)
    }
}

/// Encode `value` canonically: object keys sorted bytewise, no insignificant
/// whitespace, arrays in order, strings escaped as serde_json does.
pub fn canonical_json(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
            out.push(b'{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(&Value::String(k.clone()), out);
                out.push(b':');
                write_canonical(&map[k], out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(v, out);
            }
            out.push(b']');
        }
        // Scalars: serde_json's compact rendering is already canonical.
        other => out.extend_from_slice(other.to_string().as_bytes()),
    }
}

/// RFC 3339 UTC rendering of a Unix time (`1970-01-01T00:00:00Z` for 0).
pub fn rfc3339(epoch: u64) -> String {
    let days = (epoch / 86_400) as i64;
    let secs = epoch % 86_400;
    // Civil-from-days (Howard Hinnant's algorithm, public domain facts).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_sorts_keys_and_is_compact() {
        let v = json!({"b": 1, "a": {"z": [3, 1, {"y": "x", "c": null}], "B": true}, "é": "\n"});
        assert_eq!(
            String::from_utf8(canonical_json(&v)).unwrap(),
            r#"{"a":{"B":true,"z":[3,1,{"c":null,"y":"x"}]},"b":1,"é":"\n"}"#
        );
    }

    #[test]
    fn rfc3339_table() {
        for (t, s) in [
            (0, "1970-01-01T00:00:00Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (1_700_000_000, "2023-11-14T22:13:20Z"),
            (4_102_444_799, "2099-12-31T23:59:59Z"),
        ] {
            assert_eq!(rfc3339(t), s);
        }
    }

    #[test]
    fn digest_parse() {
        let d = Digest::of(b"{}");
        assert_eq!(
            d.as_str(),
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        assert_eq!(Digest::parse(d.as_str()).unwrap(), d);
        assert!(Digest::parse("sha256:ABC").is_err());
        assert!(Digest::parse(&d.as_str().to_uppercase()).is_err());
        assert!(Digest::parse("sha512:00").is_err());
    }

    #[test]
    fn platform_mapping() {
        let p = Platform::from_apk_arch("aarch64").unwrap();
        assert_eq!(
            (p.architecture.as_str(), p.variant.as_deref()),
            ("arm64", Some("v8"))
        );
        let p = Platform::from_apk_arch("x86_64").unwrap();
        assert_eq!((p.architecture.as_str(), p.variant), ("amd64", None));
        assert!(Platform::from_apk_arch("sparc").is_none());
    }

    #[test]
    fn manifest_json_shape() {
        let cfg = Descriptor::for_bytes(MEDIA_CONFIG, b"{}");
        let m = Manifest {
            config: cfg,
            layers: vec![],
            annotations: BTreeMap::new(),
        };
        let text = String::from_utf8(canonical_json(&m.to_json())).unwrap();
        assert_eq!(
            text,
            "{\"config\":{\"digest\":\"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a\",\
             \"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"size\":2},\"layers\":[],\
             \"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"schemaVersion\":2}"
        );
    }
}
