//! SPDX 2.3 JSON software bill of materials, one document per architecture.
//!
//! The document describes the image (purpose `CONTAINER`, checksum = the
//! manifest digest, a `pkg:oci` purl), which `CONTAINS` one SPDX package per
//! apk (version, declared license, supplier from the maintainer or else the
//! packager, SHA-256 of
//! the `.apk` file, a `pkg:apk` purl, the recipe commit). Each apk
//! `DEPENDS_ON` the apks it resolved to and is `GENERATED_FROM` its recipe's
//! sources (URL, pinned commit or checksum) when the recipe is known.
//! Everything is derived from inputs, `created` from SOURCE_DATE_EPOCH, so the
//! SBOM is reproducible too.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::rootfs::PackageMeta;
use crate::oci::{Digest, Platform, rfc3339};

/// One upstream source of a recipe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRef {
    /// SPDX download location (`https://…`, `git+https://…@<commit>`).
    pub location: String,
    /// `(SPDX algorithm, hex)`, e.g. `("SHA256", "ab…")`, for archives.
    pub checksum: Option<(String, String)>,
}

/// What the SBOM needs for one architecture.
#[derive(Debug, Clone)]
pub struct SbomInput<'a> {
    /// Image name.
    pub image: &'a str,
    /// apk architecture.
    pub arch: &'a str,
    /// Its OCI platform.
    pub platform: &'a Platform,
    /// The per-arch manifest digest.
    pub manifest: &'a Digest,
    /// SOURCE_DATE_EPOCH.
    pub epoch: u64,
    /// Installed packages in install order.
    pub packages: Vec<&'a PackageMeta>,
    /// Resolved dependencies (indices into `packages`).
    pub deps: &'a [BTreeSet<usize>],
    /// Recipe sources by origin, with the recipe version.
    pub sources: &'a BTreeMap<String, (String, Vec<SourceRef>)>,
}

/// SPDX element ids allow `[A-Za-z0-9.-]` only.
fn spdx_id(kind: &str, parts: &[&str]) -> String {
    let raw = parts.join("-");
    let clean: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("SPDXRef-{kind}-{clean}")
}

/// `Name <mail>` → `Person: Name (mail)`; empty → `NOASSERTION`.
fn supplier(maintainer: &str) -> String {
    let m = maintainer.trim();
    if m.is_empty() {
        return "NOASSERTION".into();
    }
    match m.split_once('<') {
        Some((name, mail)) => format!(
            "Person: {} ({})",
            name.trim(),
            mail.trim_end_matches('>').trim()
        ),
        None => format!("Person: {m}"),
    }
}

fn or_noassertion(s: &str) -> &str {
    if s.trim().is_empty() {
        "NOASSERTION"
    } else {
        s
    }
}

/// Percent-encode a purl component.
fn purl_enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The SPDX document as JSON.
pub fn document(input: &SbomInput<'_>) -> Value {
    let image_id = "SPDXRef-Image".to_string();
    let plat = input.platform;
    let mut purl = format!(
        "pkg:oci/{}@{}?arch={}&os={}",
        purl_enc(input.image),
        purl_enc(input.manifest.as_str()),
        plat.architecture,
        plat.os
    );
    if let Some(v) = &plat.variant {
        purl.push_str(&format!("&variant={v}"));
    }
    let mut packages = vec![json!({
        "SPDXID": image_id,
        "name": input.image,
        "versionInfo": input.manifest.as_str(),
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "primaryPackagePurpose": "CONTAINER",
        "supplier": "NOASSERTION",
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "NOASSERTION",
        "copyrightText": "NOASSERTION",
        "checksums": [{"algorithm": "SHA256", "checksumValue": input.manifest.hex()}],
        "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": purl}],
    })];
    let mut relationships = vec![json!({
        "spdxElementId": "SPDXRef-DOCUMENT",
        "relationshipType": "DESCRIBES",
        "relatedSpdxElement": image_id,
    })];
    let ids: Vec<String> = input
        .packages
        .iter()
        .map(|p| spdx_id("Package", &[&p.name, &p.version]))
        .collect();
    let mut done_sources: BTreeSet<String> = BTreeSet::new();
    for (i, p) in input.packages.iter().enumerate() {
        let mut pkg = json!({
            "SPDXID": ids[i],
            "name": p.name,
            "versionInfo": p.version,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "primaryPackagePurpose": "APPLICATION",
            "supplier": supplier(if p.maintainer.trim().is_empty() { &p.packager } else { &p.maintainer }),
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": or_noassertion(&p.license),
            "copyrightText": "NOASSERTION",
            "externalRefs": [{
                "referenceCategory": "PACKAGE-MANAGER",
                "referenceType": "purl",
                "referenceLocator": format!("pkg:apk/forge/{}@{}?arch={}&origin={}", purl_enc(&p.name), purl_enc(&p.version), purl_enc(&p.arch), purl_enc(&p.origin)),
            }],
        });
        if !p.sha256.is_empty() {
            pkg["checksums"] = json!([{"algorithm": "SHA256", "checksumValue": p.sha256}]);
        }
        if !p.url.is_empty() {
            pkg["homepage"] = json!(p.url);
        }
        if !p.description.is_empty() {
            pkg["summary"] = json!(p.description);
        }
        let mut info = format!("built by forge from recipe {}", p.origin);
        if !p.commit.is_empty() {
            info.push_str(&format!(" at commit {}", p.commit));
        }
        pkg["sourceInfo"] = json!(info);
        packages.push(pkg);
        relationships.push(json!({"spdxElementId": image_id, "relationshipType": "CONTAINS", "relatedSpdxElement": ids[i]}));
        for &d in input.deps.get(i).into_iter().flatten() {
            relationships.push(json!({"spdxElementId": ids[i], "relationshipType": "DEPENDS_ON", "relatedSpdxElement": ids[d]}));
        }
        if let Some((version, sources)) = input.sources.get(&p.origin) {
            for (n, s) in sources.iter().enumerate() {
                let sid = spdx_id("Source", &[&p.origin, &n.to_string()]);
                if done_sources.insert(sid.clone()) {
                    let mut sp = json!({
                        "SPDXID": sid,
                        "name": format!("{}-source-{}", p.origin, n),
                        "versionInfo": version,
                        "downloadLocation": s.location,
                        "filesAnalyzed": false,
                        "primaryPackagePurpose": "SOURCE",
                        "supplier": "NOASSERTION",
                        "licenseConcluded": "NOASSERTION",
                        "licenseDeclared": "NOASSERTION",
                        "copyrightText": "NOASSERTION",
                    });
                    if let Some((alg, hex)) = &s.checksum {
                        sp["checksums"] = json!([{"algorithm": alg, "checksumValue": hex}]);
                    }
                    packages.push(sp);
                }
                relationships.push(json!({"spdxElementId": ids[i], "relationshipType": "GENERATED_FROM", "relatedSpdxElement": sid}));
            }
        }
    }
    json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": format!("sbom-{}-{}", input.image, input.arch),
        "documentNamespace": format!("urn:forge:sbom:{}:{}:{}", purl_enc(input.image), input.arch, input.manifest.hex()),
        "creationInfo": {
            "created": rfc3339(input.epoch),
            "creators": [format!("Tool: forge-{}", env!("CARGO_PKG_VERSION"))],
        },
        "documentDescribes": [image_id],
        "packages": packages,
        "relationships": relationships,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_lists_packages_relations_and_sources() {
        let a = PackageMeta {
            name: "hello".into(),
            version: "1.0-r0".into(),
            arch: "x86_64".into(),
            license: "MIT".into(),
            origin: "hello".into(),
            maintainer: "Jo Doe <jo@example.org>".into(),
            commit: "abc".into(),
            sha256: "00".repeat(32),
            ..Default::default()
        };
        let c = PackageMeta {
            name: "c".into(),
            packager: "Build Bot <bot@example.org>".into(),
            ..Default::default()
        };
        assert_eq!(supplier(&c.packager), "Person: Build Bot (bot@example.org)");
        let b = PackageMeta {
            name: "lib+x".into(),
            version: "2_rc1-r1".into(),
            origin: "libx".into(),
            ..Default::default()
        };
        let manifest = Digest::of(b"m");
        let platform = Platform::from_apk_arch("aarch64").unwrap();
        let mut sources = BTreeMap::new();
        sources.insert(
            "hello".to_string(),
            (
                "1.0".to_string(),
                vec![SourceRef {
                    location: "https://example.org/h.tar.gz".into(),
                    checksum: Some(("SHA256".into(), "11".repeat(32))),
                }],
            ),
        );
        let deps = vec![BTreeSet::from([1]), BTreeSet::new()];
        let doc = document(&SbomInput {
            image: "hello",
            arch: "aarch64",
            platform: &platform,
            manifest: &manifest,
            epoch: 0,
            packages: vec![&a, &b],
            deps: &deps,
            sources: &sources,
        });
        assert_eq!(doc["creationInfo"]["created"], "1970-01-01T00:00:00Z");
        let pk = doc["packages"].as_array().unwrap();
        assert_eq!(pk.len(), 4);
        assert_eq!(pk[1]["SPDXID"], "SPDXRef-Package-hello-1.0-r0");
        assert_eq!(pk[1]["supplier"], "Person: Jo Doe (jo@example.org)");
        assert_eq!(pk[3]["SPDXID"], "SPDXRef-Package-lib-x-2-rc1-r1");
        assert_eq!(pk[3]["licenseDeclared"], "NOASSERTION");
        assert_eq!(pk[2]["downloadLocation"], "https://example.org/h.tar.gz");
        assert!(
            pk[0]["externalRefs"][0]["referenceLocator"]
                .as_str()
                .unwrap()
                .ends_with("?arch=arm64&os=linux&variant=v8")
        );
        let rel: Vec<String> = doc["relationships"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                format!(
                    "{} {} {}",
                    r["spdxElementId"].as_str().unwrap(),
                    r["relationshipType"].as_str().unwrap(),
                    r["relatedSpdxElement"].as_str().unwrap()
                )
            })
            .collect();
        assert_eq!(
            rel,
            [
                "SPDXRef-DOCUMENT DESCRIBES SPDXRef-Image",
                "SPDXRef-Image CONTAINS SPDXRef-Package-hello-1.0-r0",
                "SPDXRef-Package-hello-1.0-r0 DEPENDS_ON SPDXRef-Package-lib-x-2-rc1-r1",
                "SPDXRef-Package-hello-1.0-r0 GENERATED_FROM SPDXRef-Source-hello-0",
                "SPDXRef-Image CONTAINS SPDXRef-Package-lib-x-2-rc1-r1",
            ]
        );
    }
}
