//! Reading packages for an image: the signed index, resolution, and every
//! chosen `.apk` read once through [`VerifiedPackage`] (signature, identity
//! = the index's `C:`, `datahash`, file checksums, entry kinds and paths)
//! before its files are used; plus the recipe sources the SBOM cites.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use base64::Engine as _;

use super::ImageError;
use super::assemble::ArchInput;
use super::rootfs::{Entry, EntryKind, InstalledPackage, PackageMeta};
use super::sbom::SourceRef;
use crate::apk::index::{Index, IndexEntry};
use crate::apk::tar::Kind;
use crate::apk::{PackageError, Trust, VerifiedPackage};
use crate::resolve::{Candidate, Request, resolve};
use crate::settings::Settings;
use crate::sign::TrustedKeys;

/// Resolve `packages` (apk dependency strings) for `arch` and read them,
/// verified. Container images and OS images (`crate::os`) both use it.
pub(crate) fn load_arch(
    settings: &Settings,
    packages: &[String],
    arch: &str,
    trusted: &TrustedKeys,
) -> Result<ArchInput, ImageError> {
    let repo_dir = settings.repo_dir().join(arch);
    let index_path = repo_dir.join("APKINDEX.tar.gz");
    if !index_path.is_file() {
        return Err(ImageError::NoRepository {
            arch: arch.to_string(),
            path: index_path,
        });
    }
    let index = Index::read(&index_path, trusted).map_err(|e| ImageError::Index {
        path: index_path.clone(),
        source: Box::new(e),
    })?;
    let candidates: Vec<Candidate> = index.entries.iter().map(Candidate::from).collect();
    let request = Request {
        deps: packages,
        by: "the image",
        missing_transitive_ok: false,
    };
    let res = resolve(&request, &candidates).map_err(|source| ImageError::Resolve {
        arch: arch.to_string(),
        source,
    })?;
    let chosen: Vec<&IndexEntry> = res.order.iter().map(|&i| &index.entries[i]).collect();
    let position: BTreeMap<usize, usize> =
        res.order.iter().enumerate().map(|(n, &i)| (i, n)).collect();
    let deps: Vec<BTreeSet<usize>> = res
        .order
        .iter()
        .map(|i| {
            res.deps
                .get(i)
                .into_iter()
                .flatten()
                .map(|d| position[d])
                .collect()
        })
        .collect();
    // Verify and read packages in parallel.
    let next = std::sync::atomic::AtomicUsize::new(0);
    let slots: std::sync::Mutex<Vec<Option<Result<InstalledPackage, ImageError>>>> =
        std::sync::Mutex::new((0..chosen.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..settings.jobs.clamp(1, chosen.len().max(1)) {
            s.spawn(|| {
                loop {
                    let n = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let Some(entry) = chosen.get(n) else { break };
                    let r = load_package(&repo_dir.join(entry.file_name()), entry, trusted);
                    slots.lock().unwrap_or_else(|e| e.into_inner())[n] = Some(r);
                }
            });
        }
    });
    let mut packages = Vec::new();
    for r in slots.into_inner().unwrap_or_else(|e| e.into_inner()) {
        packages.push(r.expect("every package was loaded")?);
    }
    Ok(ArchInput {
        arch: arch.to_string(),
        packages,
        deps,
    })
}

/// Open, verify and read one package; its identity must equal the index's.
pub fn load_package(
    path: &Path,
    entry: &IndexEntry,
    trusted: &TrustedKeys,
) -> Result<InstalledPackage, ImageError> {
    let boxed = |e: Box<dyn std::error::Error + Send + Sync>| ImageError::Package {
        path: path.to_path_buf(),
        source: e,
    };
    let mut pkg = VerifiedPackage::open(path, Trust::SignedAndIndexed(trusted, &entry.checksum))
        .map_err(|e| match e {
            PackageError::Identity { actual } => ImageError::IdentityMismatch {
                path: path.to_path_buf(),
                expected: q1(&entry.checksum),
                actual: q1(&actual),
            },
            e => boxed(Box::new(e)),
        })?;
    let entries = take_entries(&mut pkg).map_err(|e| boxed(Box::new(e)))?;
    let i = &pkg.info;
    let meta = PackageMeta {
        name: i.name.clone(),
        version: i.version.clone(),
        arch: i.arch.clone(),
        description: i.description.clone(),
        url: i.url.clone(),
        license: i.license.clone(),
        origin: i.origin.clone(),
        maintainer: i.maintainer.clone().unwrap_or_default(),
        packager: i.packager.clone(),
        builddate: u64::try_from(i.builddate).unwrap_or(0),
        commit: i.commit.clone().unwrap_or_default(),
        depends: i.depends.clone(),
        provides: i.provides.clone(),
        installed_size: i.size,
        file_size: pkg.file_size,
        identity: q1(&pkg.identity),
        sha256: hex::encode(pkg.sha256),
    };
    Ok(InstalledPackage { meta, entries })
}

fn q1(raw: &[u8; 20]) -> String {
    format!(
        "Q1{}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

/// The verified entries as rootfs entries, contents moved out of the spool.
fn take_entries(pkg: &mut VerifiedPackage) -> std::io::Result<Vec<Entry>> {
    let mut out = Vec::with_capacity(pkg.entries().len());
    for n in 0..pkg.entries().len() {
        let e = &pkg.entries()[n];
        let (path, mode, mtime) = (e.path.clone(), e.mode, e.mtime);
        // The reader hashed every file and symlink target and checked it
        // against the package's record: the image's apk database reuses it.
        let sha1 = e.actual_sha1.as_deref().and_then(|h| {
            let mut raw = [0u8; 20];
            hex::decode_to_slice(h, &mut raw).ok().map(|()| raw)
        });
        let kind = match e.kind {
            Kind::Dir => EntryKind::Dir,
            Kind::Symlink => EntryKind::Symlink(e.link.clone()),
            Kind::HardLink => EntryKind::Hardlink(e.link.clone()),
            _ => EntryKind::File(pkg.take_content(n)?),
        };
        out.push(Entry {
            path,
            kind,
            mode,
            uid: 0,
            gid: 0,
            mtime,
            xattrs: BTreeMap::new(),
            sha1,
        });
    }
    Ok(out)
}

/// Recipe sources by origin, for the SBOM. Only recipes whose version equals
/// the installed version of their main package are used (the recipe may have
/// moved on since the package was built); others are left out.
pub(super) fn recipe_sources(
    settings: &Settings,
    inputs: &[ArchInput],
) -> BTreeMap<String, (String, Vec<SourceRef>)> {
    let mut versions: BTreeMap<&str, &str> = BTreeMap::new();
    for p in inputs.iter().flat_map(|i| &i.packages) {
        if p.meta.name == p.meta.origin {
            versions.insert(&p.meta.origin, &p.meta.version);
        }
    }
    let mut out = BTreeMap::new();
    for (origin, version) in versions {
        let Ok(recipe) = crate::recipe::find(&settings.recipes_dir(), origin) else {
            continue;
        };
        if recipe.full_version() != version {
            settings.shell.verbose(format!(
                "SBOM: recipe {origin} is at {}, the package at {version}; sources left out",
                recipe.full_version()
            ));
            continue;
        }
        let refs = recipe
            .sources
            .iter()
            .filter_map(|s| match s {
                crate::recipe::Source::Http { url, checksum, .. } => Some(SourceRef {
                    location: url.clone(),
                    checksum: Some((
                        checksum.algorithm().to_uppercase(),
                        checksum.hex().to_string(),
                    )),
                }),
                crate::recipe::Source::Git { url, commit, .. } => Some(SourceRef {
                    location: format!("git+{url}@{commit}"),
                    checksum: None,
                }),
                crate::recipe::Source::Local { .. } => None,
            })
            .collect();
        out.insert(origin.to_string(), (recipe.full_version(), refs));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apk::tests::{craft_package, raw_data_tar};

    /// A `..` path in a correctly signed package is refused, naming the
    /// entry. Before, the image reader took it as the rootfs path
    /// `usr/../../etc/evil`.
    #[test]
    fn load_package_refuses_dotdot_paths() {
        let dir = tempfile::tempdir().unwrap();
        let trusted = crate::sign::tests::test_trust();
        let tar = raw_data_tar(&[(Kind::File, "usr/../../etc/evil", "", b"x")]);
        let (bytes, entry) = craft_package("evil", &tar);
        let path = dir.path().join(entry.file_name());
        std::fs::write(&path, bytes).unwrap();
        let err = load_package(&path, &entry, &trusted).unwrap_err();
        let text = crate::util::error_chain(&err);
        assert!(text.contains("evil-2.12-r0.apk"), "{text}");
        assert!(
            text.contains("entry `usr/../../etc/evil`: path contains `..`"),
            "{text}"
        );
        // A good package loads with its contents, in one pass.
        let tar = raw_data_tar(&[
            (Kind::Dir, "usr/", "", b""),
            (Kind::File, "usr/x", "", b"hello"),
            (Kind::HardLink, "usr/y", "usr/x", b""),
        ]);
        let (bytes, entry) = craft_package("good", &tar);
        let path = dir.path().join(entry.file_name());
        std::fs::write(&path, &bytes).unwrap();
        let p = load_package(&path, &entry, &trusted).unwrap();
        assert_eq!(p.entries[1].kind, EntryKind::File(b"hello".to_vec()));
        assert_eq!(p.entries[2].kind, EntryKind::Hardlink("usr/x".into()));
        // The reader's SHA-1 travels with the entry (the apk database reuses it).
        assert_eq!(p.entries[1].sha1, Some(sha1::Sha1::digest(b"hello").into()));
        assert_eq!(p.entries[0].sha1, None);
        assert_eq!(p.entries[0].path, "usr");
        use sha2::Digest as _;
        assert_eq!(p.meta.sha256, hex::encode(sha2::Sha256::digest(&bytes)));
        // The identity must be the index's.
        let mut other = entry.clone();
        other.checksum = [0; 20];
        assert!(matches!(
            load_package(&path, &other, &trusted),
            Err(ImageError::IdentityMismatch { .. })
        ));
    }
}
