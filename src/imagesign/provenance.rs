//! SLSA provenance v1 for a published image.
//!
//! What went in: every apk in the image (name, version, SHA-256 of the
//! `.apk`, the recipe it came from and the recipe commit recorded in its
//! `.PKGINFO`, as the image's SPDX SBOM lists them), and every source of
//! those recipes by digest ([`crate::source::input_digests`]: archive
//! checksums, pinned git commits, local file digests). The external
//! parameters name the image definition and the project revision.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};

/// The SLSA `buildType` of forge images.
pub const BUILD_TYPE: &str = "urn:forge:build-type:image:v1";

/// One apk in the image.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PackageInput {
    /// Package name.
    pub name: String,
    /// `version-rN`.
    pub version: String,
    /// apk architecture.
    pub arch: String,
    /// The recipe (`origin`).
    pub origin: String,
    /// Recipe commit from `.PKGINFO` (empty when unknown).
    pub commit: String,
    /// SHA-256 of the `.apk` file, hex.
    pub sha256: String,
}

/// Everything the provenance says.
#[derive(Debug, Clone, Default)]
pub struct ProvenanceInput {
    /// Image name (`images/NAME.toml`).
    pub image: String,
    /// Where it was published (`registry/repo`).
    pub repository: String,
    /// The project's git revision, if known.
    pub revision: Option<String>,
    /// Packages, sorted.
    pub packages: Vec<PackageInput>,
    /// Per recipe: source digests (`sha256:…`, git commit, …).
    pub sources: BTreeMap<String, Vec<String>>,
    /// The image's creation time (RFC 3339, from SOURCE_DATE_EPOCH).
    pub created: String,
}

fn digest_set(d: &str) -> Value {
    match d.split_once(':') {
        Some((alg, hex)) => json!({ alg: hex }),
        None => json!({ "gitCommit": d }),
    }
}

/// The `https://slsa.dev/provenance/v1` predicate.
pub fn predicate(input: &ProvenanceInput) -> Value {
    let mut deps = Vec::new();
    for p in &input.packages {
        let mut ann = json!({"origin": p.origin, "arch": p.arch});
        if !p.commit.is_empty() {
            ann["recipeCommit"] = json!(p.commit);
        }
        deps.push(json!({
            "uri": format!("pkg:apk/forge/{}@{}?arch={}", p.name, p.version, p.arch),
            "digest": {"sha256": p.sha256},
            "annotations": ann,
        }));
    }
    for (origin, digests) in &input.sources {
        for (i, d) in digests.iter().enumerate() {
            deps.push(json!({
                "name": format!("recipe:{origin}/source/{i}"),
                "digest": digest_set(d),
            }));
        }
    }
    let mut ext = json!({"image": input.image, "repository": input.repository});
    if let Some(r) = &input.revision {
        ext["revision"] = json!(r);
    }
    json!({
        "buildDefinition": {
            "buildType": BUILD_TYPE,
            "externalParameters": ext,
            "internalParameters": {"created": input.created},
            "resolvedDependencies": deps,
        },
        "runDetails": {
            "builder": {"id": format!("urn:forge:builder:forge@{}", env!("CARGO_PKG_VERSION"))},
            "metadata": {"startedOn": input.created, "finishedOn": input.created},
        },
    })
}

/// The apks an SPDX SBOM written by [`crate::image::sbom`] lists, and the
/// SBOM's creation time as an epoch hint.
pub fn packages_from_sbom(doc: &Value) -> Vec<PackageInput> {
    let mut out = Vec::new();
    for p in doc
        .get("packages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let purl = p
            .pointer("/externalRefs/0/referenceLocator")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let Some(rest) = purl.strip_prefix("pkg:apk/") else {
            continue;
        };
        let query: BTreeMap<&str, &str> = rest
            .split_once('?')
            .map(|(_, q)| q.split('&').filter_map(|kv| kv.split_once('=')).collect())
            .unwrap_or_default();
        let commit = p
            .get("sourceInfo")
            .and_then(Value::as_str)
            .and_then(|s| s.split(" at commit ").nth(1))
            .unwrap_or_default();
        out.push(PackageInput {
            name: p
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            version: p
                .get("versionInfo")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            arch: query.get("arch").copied().unwrap_or_default().to_string(),
            origin: query.get("origin").copied().unwrap_or_default().to_string(),
            commit: commit.to_string(),
            sha256: p
                .pointer("/checksums/0/checksumValue")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        });
    }
    out.sort();
    out.dedup();
    out
}

/// Source digests of each recipe in `origins` found under `recipes_dir`
/// (recipes that are gone are left out).
pub fn recipe_sources<'a>(
    recipes_dir: &Path,
    origins: impl IntoIterator<Item = &'a str>,
) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for o in origins {
        if out.contains_key(o) {
            continue;
        }
        let Ok(recipe) = crate::recipe::find(recipes_dir, o) else {
            continue;
        };
        if let Ok(d) = crate::source::input_digests(&recipe) {
            out.insert(o.to_string(), d);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sbom_packages_and_predicate() {
        let doc = json!({"packages": [
            {"name": "img", "externalRefs": [{"referenceLocator": "pkg:oci/img@sha256%3A00"}]},
            {"name": "hello", "versionInfo": "1.0-r0", "sourceInfo": "built by forge from recipe hello at commit abc123",
             "checksums": [{"algorithm": "SHA256", "checksumValue": "ff"}],
             "externalRefs": [{"referenceLocator": "pkg:apk/forge/hello@1.0-r0?arch=x86_64&origin=hello"}]},
        ]});
        let pkgs = packages_from_sbom(&doc);
        assert_eq!(
            pkgs,
            vec![PackageInput {
                name: "hello".into(),
                version: "1.0-r0".into(),
                arch: "x86_64".into(),
                origin: "hello".into(),
                commit: "abc123".into(),
                sha256: "ff".into(),
            }]
        );
        let input = ProvenanceInput {
            image: "hello".into(),
            repository: "127.0.0.1:1/forge/hello".into(),
            revision: Some("abc123".into()),
            packages: pkgs,
            sources: BTreeMap::from([(
                "hello".to_string(),
                vec!["sha256:aa".to_string(), "0123abcd".to_string()],
            )]),
            created: "1970-01-01T00:00:00Z".into(),
        };
        let p = predicate(&input);
        let deps = p["buildDefinition"]["resolvedDependencies"]
            .as_array()
            .unwrap();
        assert_eq!(deps.len(), 3);
        assert_eq!(deps[0]["annotations"]["recipeCommit"], "abc123");
        assert_eq!(deps[1]["digest"], json!({"sha256": "aa"}));
        assert_eq!(deps[2]["digest"], json!({"gitCommit": "0123abcd"}));
        assert_eq!(
            p["runDetails"]["metadata"]["startedOn"],
            "1970-01-01T00:00:00Z"
        );
    }
}
