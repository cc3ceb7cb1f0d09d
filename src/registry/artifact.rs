//! The package repository (`out/repo`) as an OCI artifact, and back.
//!
//! One manifest with `artifactType` [`ARTIFACT_TYPE`], the empty config, and
//! one layer per file: every `<arch>/APKINDEX.tar.gz` ([`MEDIA_APK_INDEX`])
//! and every `<arch>/*.apk` ([`MEDIA_APK`]), each titled with its path
//! relative to the repository (`org.opencontainers.image.title`). Files are
//! listed in path order, so the same repository gives the same digest.
//! Pulling checks every blob's digest, refuses titles that would leave the
//! output folder, and writes each file atomically.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use serde_json::{Value, json};

use super::RegistryError;
use super::client::Client;
use super::push::{BlobSource, Plan};
use crate::oci::{Descriptor, Digest, MEDIA_MANIFEST, Manifest, canonical_json};

/// `artifactType` of a forge apk repository.
pub const ARTIFACT_TYPE: &str = "application/vnd.forge.apk.repository.v1";
/// Media type of an `APKINDEX.tar.gz` layer.
pub const MEDIA_APK_INDEX: &str = "application/vnd.forge.apk.index.v2.tar+gzip";
/// Media type of an `.apk` layer.
pub const MEDIA_APK: &str = "application/vnd.forge.apk.package.v2+gzip";
/// The OCI empty descriptor's media type.
pub const MEDIA_EMPTY: &str = "application/vnd.oci.empty.v1+json";
/// The layer annotation holding the file's path.
pub const ANNOTATION_TITLE: &str = "org.opencontainers.image.title";

/// The artifact manifest of the repository in `repo_dir` and the push plan
/// that stores it under `tag` in `repository`.
pub fn plan_repository(
    repo_dir: &Path,
    repository: &str,
    tag: &str,
) -> Result<(Plan, Digest), RegistryError> {
    let mut files = Vec::new();
    for entry in walkdir::WalkDir::new(repo_dir)
        .min_depth(2)
        .max_depth(2)
        .sort_by_file_name()
    {
        let entry = entry.map_err(|e| RegistryError::Io {
            what: "listing",
            path: repo_dir.to_path_buf(),
            source: e.into(),
        })?;
        let name = entry.file_name().to_string_lossy().to_string();
        let media = if name == "APKINDEX.tar.gz" {
            MEDIA_APK_INDEX
        } else if name.ends_with(".apk") && !name.starts_with('.') {
            MEDIA_APK
        } else {
            continue;
        };
        if entry.file_type().is_file() {
            files.push((entry.path().to_path_buf(), media));
        }
    }
    if !files.iter().any(|(_, m)| *m == MEDIA_APK_INDEX) {
        return Err(RegistryError::Invalid(format!(
            "{} holds no <arch>/APKINDEX.tar.gz (run `forge build` or `forge index`)",
            repo_dir.display()
        )));
    }
    let mut plan = Plan::new(repository);
    let empty = Descriptor::for_bytes(MEDIA_EMPTY, b"{}");
    plan.add_blob(empty.clone(), BlobSource::Bytes(Arc::new(b"{}".to_vec())));
    let mut layers = Vec::new();
    for (path, media) in files {
        let d = file_descriptor(&path, media)?;
        let title = path
            .strip_prefix(repo_dir)
            .map_err(|_| {
                RegistryError::Invalid(format!("{} is outside the repository", path.display()))
            })?
            .to_string_lossy()
            .to_string();
        let mut layer = d.clone();
        layer
            .annotations
            .insert(ANNOTATION_TITLE.to_string(), title);
        plan.add_blob(d, BlobSource::File(path));
        layers.push(layer);
    }
    let manifest = Manifest {
        config: empty,
        layers,
        annotations: BTreeMap::new(),
    };
    let mut v = manifest.to_json();
    v["artifactType"] = json!(ARTIFACT_TYPE);
    let digest = plan.add_manifest(MEDIA_MANIFEST, canonical_json(&v));
    plan.tags.push((tag.to_string(), digest.clone()));
    Ok((plan, digest))
}

fn file_descriptor(path: &Path, media: &str) -> Result<Descriptor, RegistryError> {
    use sha2::Digest as _;
    let io = |source| RegistryError::Io {
        what: "reading",
        path: path.to_path_buf(),
        source,
    };
    let mut f = std::fs::File::open(path).map_err(io)?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = std::io::Read::read(&mut f, &mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        size += n as u64;
    }
    Ok(Descriptor {
        media_type: media.to_string(),
        digest: Digest::from_sha256(h.finalize().into()),
        size,
        platform: None,
        annotations: BTreeMap::new(),
    })
}

/// A title that stays inside the output folder (`arch/file`).
fn safe_title(title: &str) -> Option<PathBuf> {
    let p = Path::new(title);
    let ok = !title.is_empty()
        && p.components().all(|c| matches!(c, Component::Normal(_)))
        && p.components().count() <= 2;
    ok.then(|| p.to_path_buf())
}

/// Pull the repository artifact `reference` (tag or digest) of `repository`
/// into `out`; returns the files written (indexes first).
pub fn pull_repository(
    client: &Client,
    repository: &str,
    reference: &str,
    out: &Path,
) -> Result<Vec<PathBuf>, RegistryError> {
    let scopes = vec![format!("repository:{repository}:pull")];
    let (_, bytes) = client
        .get_manifest(repository, reference, &scopes)?
        .ok_or_else(|| RegistryError::NotFound(format!("{repository}:{reference}")))?;
    let v: Value = serde_json::from_slice(&bytes)
        .map_err(|e| RegistryError::Invalid(format!("artifact manifest: {e}")))?;
    if v.get("artifactType").and_then(Value::as_str) != Some(ARTIFACT_TYPE) {
        return Err(RegistryError::Invalid(format!(
            "{repository}:{reference} is not a forge package repository (artifactType {})",
            v.get("artifactType")
                .map_or("missing".to_string(), |t| t.to_string())
        )));
    }
    let mut written = Vec::new();
    for l in v
        .get("layers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let digest = l
            .get("digest")
            .and_then(Value::as_str)
            .and_then(|d| Digest::parse(d).ok())
            .ok_or_else(|| RegistryError::Invalid("layer without a valid digest".into()))?;
        let title = l
            .pointer("/annotations/org.opencontainers.image.title")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let rel = safe_title(title)
            .ok_or_else(|| RegistryError::Invalid(format!("unsafe layer title `{title}`")))?;
        let path = out.join(&rel);
        let dir = path.parent().unwrap_or(out);
        let io = |source| RegistryError::Io {
            what: "writing",
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
        {
            let mut w = std::io::BufWriter::new(tmp.as_file_mut());
            client.get_blob_to(repository, &digest, &scopes, &mut w)?;
            w.flush().map_err(io)?;
        }
        tmp.as_file().sync_all().map_err(io)?;
        tmp.persist(&path).map_err(|e| io(e.error))?;
        written.push(path);
    }
    written.sort_by_key(|p| !p.ends_with("APKINDEX.tar.gz"));
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_must_stay_inside() {
        assert_eq!(
            safe_title("x86_64/APKINDEX.tar.gz"),
            Some(PathBuf::from("x86_64/APKINDEX.tar.gz"))
        );
        for bad in ["", "../x", "/etc/passwd", "a/../../b", "a/b/c"] {
            assert!(safe_title(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn repository_plan_is_stable_and_lists_files() {
        let tmp = tempfile::tempdir().unwrap();
        let arch = tmp.path().join("x86_64");
        std::fs::create_dir_all(&arch).unwrap();
        std::fs::write(arch.join("APKINDEX.tar.gz"), b"index").unwrap();
        std::fs::write(arch.join("b-1.0-r0.apk"), b"bb").unwrap();
        std::fs::write(arch.join("a-1.0-r0.apk"), b"aa").unwrap();
        std::fs::write(arch.join("notes.txt"), b"x").unwrap();
        let (plan, d) = plan_repository(tmp.path(), "forge/packages", "latest").unwrap();
        let (_, d2) = plan_repository(tmp.path(), "forge/packages", "latest").unwrap();
        assert_eq!(d, d2);
        let m: Value = serde_json::from_slice(&plan.manifests[0].bytes).unwrap();
        assert_eq!(m["artifactType"], ARTIFACT_TYPE);
        assert_eq!(m["config"]["mediaType"], MEDIA_EMPTY);
        let titles: Vec<&str> = m["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["annotations"][ANNOTATION_TITLE].as_str().unwrap())
            .collect();
        assert_eq!(
            titles,
            [
                "x86_64/APKINDEX.tar.gz",
                "x86_64/a-1.0-r0.apk",
                "x86_64/b-1.0-r0.apk"
            ]
        );
        assert_eq!(plan.blobs.len(), 4);
        assert_eq!(plan.tags, vec![("latest".to_string(), d)]);
    }
}
