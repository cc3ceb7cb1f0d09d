//! `forge image NAME`: from the signed repository to an OCI layout and SBOMs.
//!
//! Per architecture: [`super::packages`] reads and verifies
//! `out/repo/<arch>/APKINDEX.tar.gz` against the project's trusted keys
//! (`keys/*.rsa.pub`), resolves, then opens every chosen `.apk` and verifies
//! it (signature, `datahash`, file checksums, identity = the index's `C:`)
//! before any byte of it is used. Then
//! [`super::assemble`] writes the layers into a staging layout that replaces
//! `out/images/NAME` only when complete.
//!
//! The epoch (SOURCE_DATE_EPOCH) follows the one rule of [`crate::epoch`]:
//! the latest of the packages' `builddate`s and the commit time of the last
//! git commit touching `images/NAME.toml`; only without any of those, the
//! `SOURCE_DATE_EPOCH` environment variable; else 1980-01-01.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::ImageError;
use super::assemble::{ArchImage, Common, assemble};
use super::def::{self, ImageDef};
use super::packages::{load_arch, recipe_sources};
use super::sbom::{self, SbomInput};
use crate::oci::layout::Layout;
use crate::oci::{
    ANNOTATION_REF_NAME, Descriptor, Index as OciIndex, MEDIA_INDEX, canonical_json, rfc3339,
};
use crate::settings::Settings;

/// The tag written into `index.json`.
pub const TAG: &str = "latest";

/// Options of one image build.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// The image name (`images/NAME.toml`).
    pub name: String,
}

/// A finished image.
#[derive(Debug, Clone)]
pub struct BuiltImage {
    /// The image name.
    pub name: String,
    /// The OCI layout folder (`out/images/NAME`).
    pub dir: PathBuf,
    /// The image index descriptor (the image's identity).
    pub index: Descriptor,
    /// Per-architecture results, in definition order.
    pub arches: Vec<ArchImage>,
    /// The SBOM files, per architecture.
    pub sboms: Vec<PathBuf>,
    /// The epoch used for every timestamp.
    pub epoch: u64,
}

/// Build `images/NAME.toml` into `out/images/NAME`.
pub fn build(settings: &Settings, opts: &BuildOptions) -> Result<BuiltImage, ImageError> {
    let shell = &settings.shell;
    let valid = opts.name.bytes().enumerate().all(|(i, b)| {
        b.is_ascii_lowercase() || b.is_ascii_digit() || (i > 0 && b"._-".contains(&b))
    });
    if opts.name.is_empty() || !valid {
        return Err(ImageError::InvalidName(opts.name.clone()));
    }
    let file = def::path_for(&settings.images_dir(), &opts.name);
    if !file.is_file() {
        return Err(ImageError::NotFound { path: file });
    }
    let def = def::load(&file)?;
    let trusted =
        crate::sign::load_trust(settings, &settings.keys_dir()).map_err(ImageError::Keys)?;
    let mut inputs = Vec::new();
    for arch in &def.archs {
        shell.status("Resolving", format!("{} for {arch}", def.name));
        let t = std::time::Instant::now();
        let input = load_arch(settings, &def.packages, arch, &trusted)?;
        shell.verbose(format!(
            "verified and read {} packages for {arch} in {:.2}s",
            input.packages.len(),
            t.elapsed().as_secs_f64()
        ));
        inputs.push(input);
    }
    let git = GitInfo::for_file(&def.file);
    let epoch = source_date_epoch(
        std::env::var(crate::epoch::ENV).ok().as_deref(),
        inputs
            .iter()
            .flat_map(|i| i.packages.iter().map(|p| p.meta.builddate)),
        git.as_ref().and_then(|g| g.file_time),
    )?;
    let annotations = annotations(&def, git.as_ref(), epoch);

    let images_dir = settings.out.join("images");
    std::fs::create_dir_all(&images_dir).map_err(|source| ImageError::Io {
        what: "creating",
        path: images_dir.clone(),
        source,
    })?;
    let staging = tempfile::Builder::new()
        .prefix(&format!(".{}.tmp-", def.name))
        .tempdir_in(&images_dir)
        .map_err(|source| ImageError::Io {
            what: "creating a folder in",
            path: images_dir.clone(),
            source,
        })?;
    let layout = Layout::create(staging.path())?;
    let common = Common {
        def: &def,
        epoch,
        annotations: &annotations,
        jobs: settings.jobs,
    };
    let mut arches = Vec::new();
    for input in &inputs {
        shell.status(
            "Assembling",
            format!(
                "{} for {} ({} packages)",
                def.name,
                input.arch,
                input.packages.len()
            ),
        );
        let t = std::time::Instant::now();
        let img = assemble(&layout, &common, input)?;
        shell.verbose(format!(
            "wrote {} layers for {} in {:.2}s",
            img.layers.len(),
            input.arch,
            t.elapsed().as_secs_f64()
        ));
        for l in &img.layers {
            shell.verbose(format!(
                "{} {} ({} bytes): {}",
                l.blob.descriptor.digest,
                l.title,
                l.blob.descriptor.size,
                l.packages.join(" ")
            ));
        }
        arches.push(img);
    }
    let index = OciIndex {
        manifests: arches.iter().map(|a| a.manifest.clone()).collect(),
        annotations: annotations.clone(),
    };
    let mut index_desc = layout.write_json_blob(MEDIA_INDEX, &index.to_json())?;
    layout.write_index_json(&layout_index(&index_desc, &arches))?;
    index_desc.platform = None;

    let dir = images_dir.join(&def.name);
    replace_dir(staging, &dir)?;

    let sources = recipe_sources(settings, &inputs);
    let mut sboms = Vec::new();
    for (input, img) in inputs.iter().zip(&arches) {
        let platform = img
            .manifest
            .platform
            .clone()
            .ok_or_else(|| ImageError::UnknownArch(input.arch.clone()))?;
        let doc = sbom::document(&SbomInput {
            image: &def.name,
            arch: &input.arch,
            platform: &platform,
            manifest: &img.manifest.digest,
            epoch,
            packages: input.packages.iter().map(|p| &p.meta).collect(),
            deps: &input.deps,
            sources: &sources,
        });
        let path = images_dir.join(format!("{}.{}.spdx.json", def.name, input.arch));
        write_atomic(&path, &canonical_json(&doc))?;
        sboms.push(path);
    }
    shell.status(
        "Finished",
        format!(
            "image {} {} ({})",
            def.name,
            index_desc.digest,
            dir.display()
        ),
    );
    Ok(BuiltImage {
        name: def.name.clone(),
        dir,
        index: index_desc,
        arches,
        sboms,
        epoch,
    })
}

/// The layout's `index.json`: the image index tagged [`TAG`]; for a
/// multi-arch image also each manifest tagged `TAG-<arch>`, because umoci
/// refuses a tag that resolves to several manifests.
fn layout_index(index: &Descriptor, arches: &[ArchImage]) -> OciIndex {
    let mut tagged = index.clone();
    tagged
        .annotations
        .insert(ANNOTATION_REF_NAME.into(), TAG.into());
    let mut manifests = vec![tagged];
    if arches.len() > 1 {
        for a in arches {
            let mut m = a.manifest.clone();
            m.annotations
                .insert(ANNOTATION_REF_NAME.into(), format!("{TAG}-{}", a.arch));
            manifests.push(m);
        }
    }
    OciIndex {
        manifests,
        annotations: BTreeMap::new(),
    }
}

/// The image's epoch by the one rule ([`crate::epoch`]): its inputs' newest
/// time (the packages' build dates and the image file's last commit), else
/// `SOURCE_DATE_EPOCH` from the environment, else 1980-01-01.
pub fn source_date_epoch(
    env: Option<&str>,
    builddates: impl Iterator<Item = u64>,
    file_time: Option<u64>,
) -> Result<u64, ImageError> {
    let newest = builddates.chain(file_time).max();
    let newest = newest.map(|t| i64::try_from(t).unwrap_or(i64::MAX));
    let (epoch, _) = crate::epoch::source_date_epoch(newest, env)?;
    Ok(epoch.max(0) as u64)
}

fn annotations(def: &ImageDef, git: Option<&GitInfo>, epoch: u64) -> BTreeMap<String, String> {
    let mut a = BTreeMap::new();
    let key = |k: &str| format!("org.opencontainers.image.{k}");
    a.insert(key("created"), rfc3339(epoch));
    a.insert(key("title"), def.name.clone());
    if !def.description.is_empty() {
        a.insert(key("description"), def.description.clone());
    }
    if let Some(v) = &def.version {
        a.insert(key("version"), v.clone());
    }
    // Only from the definition: the local remote URL differs between an ssh
    // and an https clone of the same commit, and is not an input.
    if let Some(s) = def.source.clone() {
        a.insert(key("source"), s);
    }
    if let Some(r) = git.and_then(|g| g.head.clone()) {
        a.insert(key("revision"), r);
    }
    for (k, v) in &def.annotations {
        a.insert(k.clone(), v.clone());
    }
    a
}

/// What git says about the project holding the image file.
#[derive(Debug, Clone, Default)]
struct GitInfo {
    head: Option<String>,
    file_time: Option<u64>,
}

impl GitInfo {
    fn for_file(file: &Path) -> Option<GitInfo> {
        let repo = git2::Repository::discover(file.parent()?).ok()?;
        let workdir = repo.workdir()?.canonicalize().ok()?;
        let rel = file
            .canonicalize()
            .ok()?
            .strip_prefix(&workdir)
            .ok()?
            .to_path_buf();
        let head = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
        let file_time = head.as_ref().and_then(|c| last_change(c.clone(), &rel));
        Some(GitInfo {
            head: head.map(|c| c.id().to_string()),
            file_time,
        })
    }
}

/// Commit time of the newest commit that changed `file` (the definition's
/// part of the epoch rule), when `file` is in a git work tree.
pub(crate) fn definition_time(file: &Path) -> Option<u64> {
    GitInfo::for_file(file).and_then(|g| g.file_time)
}

/// Commit time of the newest commit (first-parent walk) that changed `rel`.
fn last_change(mut commit: git2::Commit<'_>, rel: &Path) -> Option<u64> {
    let id_at = |c: &git2::Commit<'_>| {
        c.tree()
            .ok()
            .and_then(|t| t.get_path(rel).ok())
            .map(|e| e.id())
    };
    loop {
        let here = id_at(&commit)?;
        match commit.parent(0) {
            Ok(p) if id_at(&p) == Some(here) => commit = p,
            _ => return u64::try_from(commit.time().seconds()).ok(),
        }
    }
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ImageError> {
    crate::util::write_atomic(path, bytes, None).map_err(|source| ImageError::Io {
        what: "writing",
        path: path.to_path_buf(),
        source,
    })
}

/// Move the finished staging layout to `dir`, replacing an older one.
fn replace_dir(staging: tempfile::TempDir, dir: &Path) -> Result<(), ImageError> {
    let io = |source| ImageError::Io {
        what: "replacing",
        path: dir.to_path_buf(),
        source,
    };
    let fresh = staging.keep();
    // tempdir() made it 0700; a layout is meant to be read by others.
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&fresh, std::fs::Permissions::from_mode(0o755)).map_err(io)?;
    }
    if dir.exists() {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let old = dir.with_file_name(format!(".{name}.old"));
        let _ = std::fs::remove_dir_all(&old);
        std::fs::rename(dir, &old).map_err(io)?;
        std::fs::rename(&fresh, dir).map_err(io)?;
        std::fs::remove_dir_all(&old).map_err(io)?;
    } else {
        std::fs::rename(&fresh, dir).map_err(io)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_follows_the_one_rule() {
        // Inputs win over the environment, as for packages.
        let epoch = |env, dates: &[u64], file| source_date_epoch(env, dates.iter().copied(), file);
        assert_eq!(epoch(Some("42"), &[7, 9], Some(100)).unwrap(), 100);
        assert_eq!(epoch(Some("42"), &[7, 9], Some(8)).unwrap(), 9);
        assert_eq!(epoch(Some("junk"), &[7], None).unwrap(), 7);
        assert_eq!(epoch(Some("42"), &[], None).unwrap(), 42);
        assert_eq!(epoch(None, &[], None).unwrap(), 315_532_800);
        assert!(epoch(Some("junk"), &[], None).is_err());
    }
}
