//! Reading packages for an image: the signed index, resolution, and every
//! chosen `.apk` verified (signature, `datahash`, file checksums, identity =
//! the index's `C:`) before its files are read; plus the recipe sources the
//! SBOM cites.
//!
//! `apk::Package` verifies but does not keep file contents, so contents are
//! read in a second pass over the file, and each file's SHA-1 must equal the
//! one verification computed: the file cannot change in between unnoticed.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufReader, Read};
use std::path::Path;

use base64::Engine as _;
use sha1::{Digest as _, Sha1};
use sha2::Sha256;

use super::ImageError;
use super::assemble::ArchInput;
use super::def::ImageDef;
use super::resolve::{Candidate, resolve};
use super::rootfs::{Entry, EntryKind, InstalledPackage, PackageMeta};
use super::sbom::SourceRef;
use crate::apk::Package;
use crate::apk::index::{Index, IndexEntry};
use crate::apk::tar::{Kind, Reader};
use crate::settings::Settings;
use crate::sign::TrustedKeys;

/// Resolve the definition's packages for `arch` and read them, verified.
pub(super) fn load_arch(
    settings: &Settings,
    def: &ImageDef,
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
    let candidates: Vec<Candidate> = index
        .entries
        .iter()
        .map(|e| Candidate {
            name: e.name.clone(),
            version: e.version.clone(),
            depends: e.depends.clone(),
            provides: e.provides.clone(),
        })
        .collect();
    let res = resolve(&def.packages, &candidates, crate::version::compare).map_err(|source| {
        ImageError::Resolve {
            arch: arch.to_string(),
            source,
        }
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
    let pkg = Package::open(path).map_err(|e| boxed(Box::new(e)))?;
    pkg.verify(trusted).map_err(|e| boxed(Box::new(e)))?;
    let identity = q1(&pkg.identity);
    if pkg.identity != entry.checksum {
        return Err(ImageError::IdentityMismatch {
            path: path.to_path_buf(),
            expected: q1(&entry.checksum),
            actual: identity,
        });
    }
    let verified: BTreeMap<&str, Option<&str>> = pkg
        .files
        .iter()
        .map(|f| (f.path.as_str(), f.actual_sha1.as_deref()))
        .collect();
    let (entries, sha256) = read_entries(path, &verified).map_err(boxed)?;
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
        identity,
        sha256,
    };
    Ok(InstalledPackage { meta, entries })
}

fn q1(raw: &[u8; 20]) -> String {
    format!(
        "Q1{}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        sha2::Digest::update(&mut self.hasher, &buf[..n]);
        Ok(n)
    }
}

/// Read the data entries of a verified package; every file's content must
/// hash to what verification computed (the file could change in between).
/// Returns the entries and the file's SHA-256.
fn read_entries(
    path: &Path,
    verified: &BTreeMap<&str, Option<&str>>,
) -> Result<(Vec<Entry>, String), Box<dyn std::error::Error + Send + Sync>> {
    let file = std::fs::File::open(path)?;
    let mut hashing = HashingReader {
        inner: BufReader::with_capacity(1 << 20, file),
        hasher: Sha256::new(),
    };
    let mut out = Vec::new();
    {
        // The three members decompress to one tar: signature and control
        // entries (top-level dot files) first, then the data entries.
        let mut r = Reader::new(flate2::read::MultiGzDecoder::new(&mut hashing));
        let mut in_data = false;
        while let Some(e) = r.next_entry()? {
            if !in_data && e.path.starts_with('.') && !e.path.contains('/') {
                continue;
            }
            in_data = true;
            let Some(expected) = verified.get(e.path.as_str()) else {
                return Err(format!("entry `{}` was not seen during verification", e.path).into());
            };
            let kind = match e.kind {
                Kind::Dir => EntryKind::Dir,
                Kind::File => {
                    let mut data = Vec::with_capacity(e.size as usize);
                    r.content().read_to_end(&mut data)?;
                    if expected
                        .is_some_and(|x| !x.eq_ignore_ascii_case(&hex::encode(Sha1::digest(&data))))
                    {
                        return Err(format!("`{}` changed after verification", e.path).into());
                    }
                    EntryKind::File(data)
                }
                Kind::Symlink => EntryKind::Symlink(e.link.clone()),
                Kind::HardLink => EntryKind::Hardlink(e.link.trim_end_matches('/').to_string()),
                Kind::Pax | Kind::Other(_) => {
                    return Err(format!("unsupported entry type for `{}`", e.path).into());
                }
            };
            out.push(Entry {
                path: e.path.trim_matches('/').to_string(),
                kind,
                mode: e.mode & 0o7777,
                uid: 0,
                gid: 0,
                mtime: e.mtime,
                xattrs: BTreeMap::new(),
            });
        }
    }
    std::io::copy(&mut hashing, &mut std::io::sink())?;
    let sha256 = hex::encode(sha2::Digest::finalize(hashing.hasher));
    Ok((out, sha256))
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
