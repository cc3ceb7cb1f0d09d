//! Cache entries in the registry: look up and pull (verifying everything
//! before it is used), and push.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::entry::{self, EntryConfig, EntryFile, Expected, MAX_CONFIG};
use super::{Cache, CacheError, registry_err};
use crate::apk::{Trust, VerifiedPackage};
use crate::oci::{Descriptor, Digest, MEDIA_MANIFEST};
use crate::registry::RegistryError;
use crate::registry::push::{self, BlobSource, Plan, PushOptions};
use crate::registry::state::MountState;
use crate::sign::{SigAlg, SigningKey, TrustedKeys};

/// A pulled and verified entry.
#[derive(Debug)]
pub struct Fetched {
    /// The packages, in `dest`, each verified in full.
    pub files: Vec<PathBuf>,
    /// Time to find and check the entry (manifest, config, signature).
    pub lookup: Duration,
    /// Time to download and verify the packages.
    pub pull: Duration,
}

fn pull_scopes(repo: &str) -> Vec<String> {
    vec![format!("repository:{repo}:pull")]
}

impl Cache {
    fn repo(&self) -> &str {
        &self.url.repository
    }

    /// Whether an entry is tagged for `key` (no verification: planning
    /// uses this to leave cached units out of a CI pipeline; the job that
    /// pulls verifies).
    pub fn contains(&self, key: &str) -> Result<bool, CacheError> {
        let tag = entry::tag_for(key)?;
        let found = self
            .client
            .manifest_digest(self.repo(), &tag, &pull_scopes(self.repo()))
            .map_err(registry_err(format!("looking up {}:{tag}", self.url)))?;
        Ok(found.is_some())
    }

    /// Look up the entry for `want`, and on a hit download its packages
    /// into `dest` (which must exist and be empty) and verify them against
    /// `trusted`. `Ok(None)` is a miss; any refusal is an error.
    pub fn fetch(
        &self,
        want: &Expected<'_>,
        trusted: &TrustedKeys,
        dest: &Path,
    ) -> Result<Option<Fetched>, CacheError> {
        let started = Instant::now();
        let Some(config) = self.lookup(want, trusted)? else {
            return Ok(None);
        };
        let lookup = started.elapsed();
        let mut files = Vec::with_capacity(config.files.len());
        for f in &config.files {
            let path = self.download(f, dest)?;
            check_package(&path, f, want, trusted)?;
            files.push(path);
        }
        Ok(Some(Fetched {
            files,
            lookup,
            pull: started.elapsed() - lookup,
        }))
    }

    /// The signed config, checked against the manifest's layers; `None`
    /// when no entry is tagged for the key.
    fn lookup(
        &self,
        want: &Expected<'_>,
        trusted: &TrustedKeys,
    ) -> Result<Option<EntryConfig>, CacheError> {
        let tag = entry::tag_for(want.key)?;
        let scopes = pull_scopes(self.repo());
        let Some((_, bytes)) = self
            .client
            .get_manifest(self.repo(), &tag, &scopes)
            .map_err(registry_err(format!("reading {}:{tag}", self.url)))?
        else {
            return Ok(None);
        };
        let parts = entry::parse_manifest(&bytes)?;
        let (digest, size) = &parts.config;
        if *size > MAX_CONFIG {
            return Err(CacheError::Refused(format!(
                "the config is {size} bytes, more than the {MAX_CONFIG} accepted"
            )));
        }
        let mut config_bytes = Vec::new();
        self.client
            .get_blob_to(self.repo(), digest, *size, &scopes, &mut config_bytes)
            .map_err(registry_err("reading the entry's config"))?;
        entry::verify_signature(&parts, &config_bytes, trusted)?;
        let config = EntryConfig::parse(&config_bytes, want)?;
        entry::check_layers(&parts, &config)?;
        Ok(Some(config))
    }

    /// Stream one package into `dest`, held to its signed digest and size.
    fn download(&self, f: &EntryFile, dest: &Path) -> Result<PathBuf, CacheError> {
        let path = dest.join(&f.name);
        let io = |source| CacheError::Io {
            what: "writing",
            path: path.clone(),
            source,
        };
        let mut file = std::fs::File::create_new(&path).map_err(io)?;
        {
            let mut w = std::io::BufWriter::new(&mut file);
            self.client
                .get_blob_to(
                    self.repo(),
                    &f.digest()?,
                    f.size,
                    &pull_scopes(self.repo()),
                    &mut w,
                )
                .map_err(registry_err(format!("downloading {}", f.name)))?;
            w.flush().map_err(io)?;
        }
        file.sync_all().map_err(io)?;
        Ok(path)
    }

    /// Push the entry for `config` (the packages `files`, in the config's
    /// order), signed by `key`: blobs, then the manifest, then the tag.
    /// Returns the manifest digest.
    pub fn store(
        &self,
        config: &EntryConfig,
        files: &[PathBuf],
        key: &SigningKey,
        shell: &crate::output::Shell,
    ) -> Result<Digest, CacheError> {
        let tag = entry::tag_for(&config.key)?;
        let config_bytes = config.to_bytes();
        let signature = key.sign(SigAlg::Rsa256, &config_bytes)?;
        let manifest = entry::manifest(config, &config_bytes, key.name(), &signature)?;
        let mut plan = Plan::new(self.repo());
        let cd = Descriptor::for_bytes(entry::MEDIA_ENTRY, &config_bytes);
        plan.add_blob(cd, BlobSource::Bytes(Arc::new(config_bytes)));
        for (f, path) in config.files.iter().zip(files) {
            let d = Descriptor {
                media_type: crate::registry::artifact::MEDIA_APK.to_string(),
                digest: f.digest()?,
                size: f.size,
                platform: None,
                annotations: Default::default(),
            };
            plan.add_blob(d, BlobSource::File(path.clone()));
        }
        let digest = plan.add_manifest(MEDIA_MANIFEST, manifest);
        plan.tags.push((tag.clone(), digest.clone()));
        let opts = PushOptions::default();
        let mut attempt = 0;
        loop {
            match push::push(
                &self.client,
                &plan,
                &opts,
                &mut MountState::default(),
                shell,
            ) {
                Ok(_) => return Ok(digest),
                Err(e) if attempt < RACE_RETRIES && lost_race(&e) => {
                    shell.verbose(format!("{tag}: {e}; pushing again"));
                    std::thread::sleep(Duration::from_millis(50 << attempt));
                    attempt += 1;
                }
                Err(e) => return Err(registry_err(format!("pushing {}:{tag}", self.url))(e)),
            }
        }
    }
}

/// How often a push that lost a race with another runner's push of the
/// same entry is tried again.
const RACE_RETRIES: u32 = 4;

/// Whether a push failed because another runner was storing the same
/// blobs at that moment: distribution's filesystem storage links a blob
/// into a repository with a plain file write, and a manifest put that
/// reads the link mid-write is answered 400 `DIGEST_INVALID` (or
/// `MANIFEST_BLOB_UNKNOWN`). The same push, a moment later, succeeds.
fn lost_race(e: &RegistryError) -> bool {
    matches!(e, RegistryError::Status { status: 400, detail, .. }
        if detail.contains("DIGEST_INVALID") || detail.contains("BLOB_UNKNOWN"))
}

/// The entry's description of `path` (file name, SHA-256, size).
pub fn describe(path: &Path) -> Result<EntryFile, CacheError> {
    let io = |source| CacheError::Io {
        what: "reading",
        path: path.to_path_buf(),
        source,
    };
    let (sha256, size) = crate::util::sha256_file(path).map_err(io)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    Ok(EntryFile {
        name,
        sha256: hex::encode(sha256),
        size,
    })
}

/// A pulled package must verify in full against `trusted` and be what its
/// name says: `<pkgname>-<pkgver>.apk`, made by this unit, for this arch.
fn check_package(
    path: &Path,
    f: &EntryFile,
    want: &Expected<'_>,
    trusted: &TrustedKeys,
) -> Result<(), CacheError> {
    let pkg = VerifiedPackage::open(path, Trust::Signed(trusted)).map_err(|source| {
        CacheError::Package {
            file: f.name.clone(),
            source,
        }
    })?;
    let i = &pkg.info;
    let named = format!("{}-{}.apk", i.name, i.version);
    if named != f.name || i.origin != want.unit || !(i.arch == want.arch || i.arch == "noarch") {
        return Err(CacheError::Refused(format!(
            "{} holds {named} of origin `{}` for {}",
            f.name, i.origin, i.arch
        )));
    }
    Ok(())
}
