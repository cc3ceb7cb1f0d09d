//! The package repository (`out/repo`) as an OCI artifact, and back.
//!
//! One manifest with `artifactType` [`ARTIFACT_TYPE`], the empty config, and
//! one layer per file: every `<arch>/APKINDEX.tar.gz` ([`MEDIA_APK_INDEX`])
//! and every `<arch>/*.apk` ([`MEDIA_APK`]), each titled with its path
//! relative to the repository (`org.opencontainers.image.title`). Files are
//! listed in path order, so the same repository gives the same digest.
//!
//! Pulling trusts nothing the registry says: before any download every
//! layer must be titled `<arch>/APKINDEX.tar.gz` or `<arch>/<name>.apk`
//! with the matching media type ([`repository_files`]), so a layer such as
//! `keys/evil.rsa.pub` is refused with nothing written; blobs stream into a
//! staging folder held to their descriptor's size and digest
//! ([`pull_repository`]); the caller verifies the staged files against its
//! trusted keys and only then moves them into place, packages first and
//! indexes last ([`install_staged`]).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
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
    let io = |source| RegistryError::Io {
        what: "reading",
        path: path.to_path_buf(),
        source,
    };
    let (sha256, size) = crate::util::sha256_file(path).map_err(io)?;
    Ok(Descriptor {
        media_type: media.to_string(),
        digest: Digest::from_sha256(sha256),
        size,
        platform: None,
        annotations: BTreeMap::new(),
    })
}

/// One file of a repository artifact, as its layer describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoFile {
    /// The architecture folder.
    pub arch: String,
    /// The file name: `APKINDEX.tar.gz` or `<name>.apk`.
    pub name: String,
    /// The blob digest.
    pub digest: Digest,
    /// The blob size.
    pub size: u64,
}

impl RepoFile {
    /// `<arch>/<name>`.
    pub fn rel(&self) -> PathBuf {
        Path::new(&self.arch).join(&self.name)
    }

    /// Whether this is the architecture's index.
    pub fn is_index(&self) -> bool {
        self.name == INDEX_NAME
    }
}

/// The index file name.
pub const INDEX_NAME: &str = "APKINDEX.tar.gz";
/// The most layers a repository artifact may list.
pub const MAX_FILES: usize = 100_000;

/// An architecture folder name: `[a-z0-9_]`, 1 to 32 characters.
fn valid_arch(a: &str) -> bool {
    (1..=32).contains(&a.len())
        && a.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// A package file name: `<name>.apk`, printable, no `/`, not hidden.
pub(crate) fn valid_apk_name(n: &str) -> bool {
    n.len() <= 255
        && n.len() > ".apk".len()
        && n.ends_with(".apk")
        && !n.starts_with('.')
        && n.bytes()
            .all(|b| b.is_ascii_graphic() && b != b'/' && b != b'\\')
}

/// The file a layer title names: only `<arch>/APKINDEX.tar.gz` and
/// `<arch>/<name>.apk` are accepted, anything else (`keys/…`, hidden
/// files, deeper paths) is refused; the media type must match.
fn layer_file(title: &str, media: &str) -> Option<(String, String)> {
    let (arch, name) = title.split_once('/')?;
    let want = if name == INDEX_NAME {
        MEDIA_APK_INDEX
    } else if valid_apk_name(name) {
        MEDIA_APK
    } else {
        return None;
    };
    (valid_arch(arch) && media == want).then(|| (arch.to_string(), name.to_string()))
}

/// The files a repository artifact manifest lists, each checked before
/// anything is downloaded: an accepted title, a matching media type, a
/// valid digest and size, no title twice.
pub fn repository_files(v: &Value) -> Result<Vec<RepoFile>, RegistryError> {
    let layers = v
        .get("layers")
        .and_then(Value::as_array)
        .ok_or_else(|| RegistryError::Invalid("artifact manifest without layers".into()))?;
    if layers.len() > MAX_FILES {
        return Err(RegistryError::Invalid(format!(
            "artifact lists {} files, more than the {MAX_FILES} accepted",
            layers.len()
        )));
    }
    let mut files: Vec<RepoFile> = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for l in layers {
        let title = l
            .pointer("/annotations/org.opencontainers.image.title")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let media = l.get("mediaType").and_then(Value::as_str).unwrap_or("");
        let (arch, name) = layer_file(title, media).ok_or_else(|| {
            RegistryError::Invalid(format!(
                "refusing layer `{title}` ({media}): only <arch>/APKINDEX.tar.gz and <arch>/<name>.apk are accepted"
            ))
        })?;
        let digest = l
            .get("digest")
            .and_then(Value::as_str)
            .and_then(|d| Digest::parse(d).ok())
            .ok_or_else(|| RegistryError::Invalid(format!("layer `{title}`: no valid digest")))?;
        let size = l
            .get("size")
            .and_then(Value::as_u64)
            .ok_or_else(|| RegistryError::Invalid(format!("layer `{title}`: no valid size")))?;
        if !seen.insert(title.to_string()) {
            return Err(RegistryError::Invalid(format!(
                "layer `{title}` listed twice"
            )));
        }
        files.push(RepoFile {
            arch,
            name,
            digest,
            size,
        });
    }
    Ok(files)
}

/// Download the repository artifact `reference` (tag or digest) of
/// `repository` into `staging` (`staging/<arch>/<name>`, each file synced),
/// holding every blob to its descriptor's size and digest. Nothing is
/// verified against keys here: the caller does that before moving the
/// files anywhere they are used.
pub fn pull_repository(
    client: &Client,
    repository: &str,
    reference: &str,
    staging: &Path,
) -> Result<Vec<RepoFile>, RegistryError> {
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
    let files = repository_files(&v)?;
    for f in &files {
        let path = staging.join(f.rel());
        let io = |source| RegistryError::Io {
            what: "writing",
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(staging.join(&f.arch)).map_err(io)?;
        let mut file = std::fs::File::create_new(&path).map_err(io)?;
        {
            let mut w = std::io::BufWriter::new(&mut file);
            client.get_blob_to(repository, &f.digest, f.size, &scopes, &mut w)?;
            w.flush().map_err(io)?;
        }
        file.sync_all().map_err(io)?;
    }
    Ok(files)
}

/// Move verified files from `staging` into `out`: packages first, each
/// architecture's index last, so `out` never has an index naming a
/// package not yet in place.
pub fn install_staged(
    staging: &Path,
    files: &[RepoFile],
    out: &Path,
) -> Result<Vec<PathBuf>, RegistryError> {
    let mut order: Vec<&RepoFile> = files.iter().collect();
    order.sort_by_key(|f| f.is_index());
    let mut written = Vec::new();
    for f in order {
        let dest = out.join(f.rel());
        let io = |source| RegistryError::Io {
            what: "moving into place",
            path: dest.clone(),
            source,
        };
        std::fs::create_dir_all(out.join(&f.arch)).map_err(io)?;
        std::fs::rename(staging.join(f.rel()), &dest).map_err(io)?;
        written.push(dest);
    }
    let mut arches: Vec<&str> = files.iter().map(|f| f.arch.as_str()).collect();
    arches.dedup();
    for a in arches {
        let dir = out.join(a);
        std::fs::File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(|source| RegistryError::Io {
                what: "syncing",
                path: dir.clone(),
                source,
            })?;
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_indexes_and_packages_in_arch_folders_are_accepted() {
        assert_eq!(
            layer_file("x86_64/APKINDEX.tar.gz", MEDIA_APK_INDEX),
            Some(("x86_64".into(), INDEX_NAME.into()))
        );
        assert_eq!(
            layer_file("aarch64/hello-1.0-r0.apk", MEDIA_APK),
            Some(("aarch64".into(), "hello-1.0-r0.apk".into()))
        );
        for (bad, media) in [
            ("", MEDIA_APK),
            ("../x.apk", MEDIA_APK),
            ("/etc/passwd", MEDIA_APK),
            ("a/../../b.apk", MEDIA_APK),
            ("a/b/c.apk", MEDIA_APK),
            ("keys/evil.rsa.pub", MEDIA_APK),
            ("keys/evil.rsa.pub", MEDIA_APK_INDEX),
            ("x86_64/.hidden.apk", MEDIA_APK),
            ("x86_64/notes.txt", MEDIA_APK),
            ("X86/a.apk", MEDIA_APK),
            ("x86_64/a.apk", MEDIA_APK_INDEX),
            ("x86_64/APKINDEX.tar.gz", MEDIA_APK),
            ("x86_64/a b.apk", MEDIA_APK),
            (".apk", MEDIA_APK),
            ("x86_64", MEDIA_APK),
        ] {
            assert!(layer_file(bad, media).is_none(), "{bad} {media}");
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
