//! Publishing a built image: its OCI layout, signatures of the index and of
//! every platform manifest (a node checks the one it pulls), the SBOM and
//! SLSA provenance attestations, in one push plan (blobs, then manifests,
//! then the `.sig`/`.att` tags, then the image's own tags last, so a
//! consumer that requires a signature never sees the tag before the
//! signature).

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::RegistryError;
use super::client::Client;
use super::push::{self, Plan, PushOptions, PushReport, plan_layout};
use super::reference::Target;
use super::referrers::plan_sboms;
use super::sign::{plan_attestations, plan_signature};
use super::state::MountState;
use crate::imagesign::keys::ImageKey;
use crate::imagesign::payload::{PREDICATE_SLSA, PREDICATE_SPDX};
use crate::imagesign::provenance::{self, ProvenanceInput};
use crate::oci::Digest;
use crate::output::Shell;

/// One image to publish.
#[derive(Debug, Clone)]
pub struct ImageToPublish {
    /// The image name.
    pub name: String,
    /// Its layout (`out/images/NAME`).
    pub layout: PathBuf,
    /// Its SBOM files (`out/images/NAME.<arch>.spdx.json`).
    pub sboms: Vec<PathBuf>,
    /// `recipes/`, for the provenance's source digests.
    pub recipes_dir: PathBuf,
    /// An OS update payload (`out/os/NAME.payload`): signed, not attested
    /// (it has no SBOM; its config names what it holds).
    pub os_payload: bool,
}

impl ImageToPublish {
    /// The image `name` as built under `out`: the container image's layout,
    /// or else the OS image's payload (`forge os payload NAME`).
    pub fn from_out(out: &Path, recipes_dir: &Path, name: &str) -> ImageToPublish {
        let images = out.join("images");
        let payload = out.join("os").join(format!("{name}.payload"));
        if !images.join(name).join("index.json").is_file() && payload.join("index.json").is_file() {
            return ImageToPublish {
                name: name.to_string(),
                layout: payload,
                sboms: Vec::new(),
                recipes_dir: recipes_dir.to_path_buf(),
                os_payload: true,
            };
        }
        let prefix = format!("{name}.");
        let mut sboms: Vec<PathBuf> = std::fs::read_dir(&images)
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                    n.starts_with(&prefix)
                        && n.ends_with(".spdx.json")
                        && n[prefix.len()..].matches('.').count() == 2
                })
            })
            .collect();
        sboms.sort();
        ImageToPublish {
            name: name.to_string(),
            layout: images.join(name),
            sboms,
            recipes_dir: recipes_dir.to_path_buf(),
            os_payload: false,
        }
    }
}

/// What publishing one image did.
#[derive(Debug, Clone)]
pub struct Published {
    /// The image name.
    pub name: String,
    /// `registry/repository`.
    pub repository: String,
    /// The image (index) digest.
    pub digest: Digest,
    /// Whether a new signature was written (false: already signed, or unsigned).
    pub signed: bool,
    /// Whether new attestations were written.
    pub attested: bool,
    /// SBOM referrers (OCI 1.1 artifacts) the registry did not list yet.
    pub sbom_referrers: usize,
    /// The push counts.
    pub report: PushReport,
}

fn read_json(path: &Path) -> Result<Value, RegistryError> {
    let bytes = std::fs::read(path).map_err(|source| RegistryError::Io {
        what: "reading",
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_slice(&bytes)
        .map_err(|e| RegistryError::Invalid(format!("{}: {e}", path.display())))
}

/// The attestation predicates of `image`: one SPDX document per SBOM file and
/// the SLSA provenance.
pub fn predicates(
    image: &ImageToPublish,
    repository: &str,
    revision: Option<String>,
) -> Result<Vec<(String, Value)>, RegistryError> {
    let mut out = Vec::new();
    let mut packages = Vec::new();
    let mut created = String::new();
    for s in &image.sboms {
        let doc = read_json(s)?;
        packages.extend(provenance::packages_from_sbom(&doc));
        if let Some(c) = doc.pointer("/creationInfo/created").and_then(Value::as_str) {
            created = created.max(c.to_string());
        }
        out.push((PREDICATE_SPDX.to_string(), doc));
    }
    packages.sort();
    packages.dedup();
    let sources = provenance::recipe_sources(
        &image.recipes_dir,
        packages.iter().map(|p| p.origin.as_str()),
    );
    let input = ProvenanceInput {
        image: image.name.clone(),
        repository: repository.to_string(),
        revision,
        packages,
        sources,
        created,
    };
    out.push((PREDICATE_SLSA.to_string(), provenance::predicate(&input)));
    Ok(out)
}

/// The platform manifests an image index lists (none for a single manifest).
pub fn platform_manifests(root: &Value) -> Vec<Digest> {
    root.get("manifests")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|m| Digest::parse(m.get("digest")?.as_str()?).ok())
        .collect()
}

/// Options of [`publish_image`].
#[derive(Debug)]
pub struct PublishOptions<'a> {
    /// Where to.
    pub target: &'a Target,
    /// The signing key (None: publish unsigned).
    pub key: Option<&'a ImageKey>,
    /// Extra tags besides the layout's own.
    pub extra_tags: Vec<String>,
    /// Set the layout's own tags (`latest` and the per-arch ones); off for a
    /// prebuild, which must never move `latest`.
    pub layout_tags: bool,
    /// Push options.
    pub push: PushOptions,
}

/// Push `image` (layout, signature, attestations) to `opts.target`.
pub fn publish_image(
    client: &Client,
    image: &ImageToPublish,
    opts: &PublishOptions<'_>,
    state: &mut MountState,
    shell: &Shell,
) -> Result<Published, RegistryError> {
    if !image.layout.join("index.json").is_file() {
        return Err(RegistryError::Invalid(format!(
            "image `{}` is not built ({} is missing; run `forge image {}`)",
            image.name,
            image.layout.join("index.json").display(),
            image.name
        )));
    }
    let repo = opts.target.repository(&image.name);
    let reference = format!("{}/{repo}", opts.target.registry);
    let lp = plan_layout(&image.layout, &repo)?;
    let mut plan: Plan = lp.plan;
    let digest = lp.root.digest.clone();
    let (mut signed, mut attested) = (false, false);
    if let Some(key) = opts.key {
        let root = read_json(&image.layout.join("blobs/sha256").join(digest.hex()))?;
        let revision = root
            .pointer("/annotations/org.opencontainers.image.revision")
            .and_then(Value::as_str)
            .map(str::to_string);
        // The index (what a tag resolves to, what `cosign verify` checks)
        // and every platform manifest: containers/image (CRI-O, podman,
        // skopeo) checks the signature of the manifest it pulls for its
        // platform, never the index's.
        signed = plan_signature(client, &mut plan, &reference, &digest, key)?;
        for child in platform_manifests(&root) {
            signed |= plan_signature(client, &mut plan, &reference, &child, key)?;
        }
        if !image.os_payload {
            let preds = predicates(image, &reference, revision)?;
            attested = plan_attestations(client, &mut plan, &reference, &digest, key, &preds)?;
        }
    }
    let mut sboms = Vec::new();
    for path in &image.sboms {
        let bytes = std::fs::read(path).map_err(|source| RegistryError::Io {
            what: "reading",
            path: path.clone(),
            source,
        })?;
        let arch = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".spdx.json"))
            .and_then(|n| n.rsplit('.').next())
            .unwrap_or("image");
        sboms.push((format!("sbom-{arch}.spdx.json"), bytes));
    }
    let sbom_referrers = plan_sboms(client, &mut plan, &lp.root, &sboms)?;
    // The image's tags go last: per-arch tags, extra tags, then `latest`.
    // A layout's own cosign tags (an OS payload's offline signature) stay
    // home: the signatures above name this registry's repository.
    let mut tags: Vec<(String, Digest)> = if opts.layout_tags {
        lp.tags
            .into_iter()
            .filter(|(t, _)| !(t.starts_with("sha256-") && t.ends_with(".sig")))
            .collect()
    } else {
        Vec::new()
    };
    tags.sort_by_key(|(t, _)| t == crate::image::build::TAG);
    for t in &opts.extra_tags {
        tags.insert(tags.len().saturating_sub(1), (t.clone(), digest.clone()));
    }
    plan.tags.extend(tags);
    let report = push::push(client, &plan, &opts.push, state, shell)?;
    Ok(Published {
        name: image.name.clone(),
        repository: reference,
        digest,
        signed: signed && !opts.push.dry_run,
        attested: attested && !opts.push.dry_run,
        sbom_referrers,
        report,
    })
}
