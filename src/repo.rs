//! The package repository: `out/repo/<arch>/` with the `.apk` files and a
//! signed `APKINDEX.tar.gz`, laid out as apk expects.
//!
//! Updates are ordered so that no crash leaves an index naming a missing or
//! different file:
//!
//! 1. new packages are written (or copied) into `<arch>/.staging/` and fsynced;
//! 2. if a staged package replaces an existing file with different content,
//!    an interim index *without* that entry is written first;
//! 3. staged packages are renamed into place (atomic, same filesystem);
//! 4. the new index is written to a temp file, fsynced and renamed last.
//!
//! Between steps the index only names files whose bytes match its `C:` and
//! `S:`. The index is deterministic: entries sorted by apk's order and all tar
//! mtimes set to the newest `builddate` among the entries.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use crate::apk::index::{self, IndexEntry, IndexError};
use crate::apk::{self, PackageSpec, VerifyError, WriteError, WriteOptions};
use crate::settings::Settings;
use crate::sign::{SigningKey, TrustedKeys};

mod admit;

/// The index file name.
pub const INDEX_FILE: &str = "APKINDEX.tar.gz";

const STAGING: &str = ".staging";

/// A repository operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// A file operation failed.
    #[error("{action} {}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A package in (or added to) the repository cannot be read.
    #[error("reading package {}", path.display())]
    Package {
        /// The package file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: apk::PackageError,
    },
    /// A package is for another architecture.
    #[error("{} is for {pkg_arch}, not {arch}", path.display())]
    WrongArch {
        /// The package file.
        path: PathBuf,
        /// The package's arch.
        pkg_arch: String,
        /// The repository's arch.
        arch: String,
    },
    /// A package added is not signed by a trusted key.
    #[error("{} cannot be indexed", path.display())]
    Untrusted {
        /// The package file.
        path: PathBuf,
        /// Why its signature does not verify.
        #[source]
        source: VerifyError,
    },
    /// Writing a package failed.
    #[error(transparent)]
    Write(#[from] WriteError),
    /// Writing the index failed.
    #[error("writing the index")]
    Index(#[from] IndexError),
}

pub(crate) fn io_err<'a>(
    action: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> RepoError + 'a {
    move |source| RepoError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// A package waiting to be renamed into place.
#[derive(Debug)]
struct Staged {
    tmp: PathBuf,
    entry: IndexEntry,
}

/// One architecture folder of a repository.
#[derive(Debug)]
pub struct Repo {
    dir: PathBuf,
    arch: String,
    /// Entries of the packages in place, by file name.
    entries: BTreeMap<String, IndexEntry>,
    staged: BTreeMap<String, Staged>,
    /// Files to drop with the next index write.
    removed: Vec<String>,
    /// The keys a package added to the index must be signed with.
    trusted: TrustedKeys,
    /// `.apk` files found but not admitted to the index, with why.
    left_out: Vec<(PathBuf, String)>,
    sha1_signature: bool,
}

impl Repo {
    /// Open (creating) `repo_root/arch`, reading the control part of every
    /// `.apk` already there and admitting only those that may be indexed:
    /// well-formed, named `<pkgname>-<pkgver>.apk`, of this arch, and vouched
    /// for by the current signed index or their own signature against
    /// `trusted` (see `admit`). The rest are left out; see
    /// [`Repo::left_out`].
    pub fn open(repo_root: &Path, arch: &str, trusted: &TrustedKeys) -> Result<Repo, RepoError> {
        let dir = repo_root.join(arch);
        fs::create_dir_all(&dir).map_err(io_err("creating", &dir))?;
        let scan = admit::scan(&dir, arch, trusted)?;
        Ok(Repo {
            dir,
            arch: arch.to_string(),
            trusted: trusted.clone(),
            entries: scan.entries,
            staged: BTreeMap::new(),
            removed: Vec::new(),
            left_out: scan.left_out,
            sha1_signature: false,
        })
    }

    /// Also sign the index with the legacy SHA-1 scheme (`.SIGN.RSA.`), for
    /// apk clients that predate `.SIGN.RSA256.`.
    pub fn set_sha1_signature(&mut self, on: bool) {
        self.sha1_signature = on;
    }

    /// `.apk` files in the folder that were not admitted when it was opened
    /// (unreadable, misnamed, another arch, or not signed by a trusted key),
    /// with the reason. They stay out of every index this value writes.
    pub fn left_out(&self) -> &[(PathBuf, String)] {
        &self.left_out
    }

    /// Drop the package `file_name` (e.g. `foo-1.0-r0.apk`): the next
    /// [`Repo::write_index`] leaves it out, and only then deletes the file, so
    /// the index never names a missing file. A file staged again before that
    /// write stays.
    pub fn remove(&mut self, file_name: &str) {
        if self.entries.remove(file_name).is_some() {
            self.removed.push(file_name.to_string());
        }
    }

    /// The architecture folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The index file path.
    pub fn index_path(&self) -> PathBuf {
        self.dir.join(INDEX_FILE)
    }

    /// The entries the next index will hold (in place and staged).
    pub fn entries(&self) -> Vec<IndexEntry> {
        let mut all = self.entries.clone();
        for (name, s) in &self.staged {
            all.insert(name.clone(), s.entry.clone());
        }
        all.into_values().collect()
    }

    fn staging_dir(&self) -> Result<PathBuf, RepoError> {
        let d = self.dir.join(STAGING);
        fs::create_dir_all(&d).map_err(io_err("creating", &d))?;
        Ok(d)
    }

    /// Write a package for `spec` into staging; it lands in the repository
    /// with the next [`Repo::write_index`].
    pub fn write_package(
        &mut self,
        spec: &PackageSpec,
        key: &SigningKey,
        opts: &WriteOptions,
    ) -> Result<IndexEntry, RepoError> {
        let staging = self.staging_dir()?;
        let written = apk::write_package(spec, key, opts, &staging)?;
        self.check_arch(&written.path, &written.info.arch)?;
        let entry = IndexEntry::from_package(&written.info, written.identity, written.file_size);
        self.stage(written.path, entry.clone());
        Ok(entry)
    }

    /// Add an existing package file: its signature must verify against the
    /// trusted keys; it is copied into staging (unless it is already in place
    /// under its canonical name) and lands with the next
    /// [`Repo::write_index`].
    pub fn add(&mut self, package_file: &Path) -> Result<IndexEntry, RepoError> {
        // Signature first: the control member is parsed only once trusted.
        let path = package_file.to_path_buf();
        let pkg = apk::VerifiedHead::open(package_file, apk::Trust::Signed(&self.trusted))
            .map_err(|e| match e {
                apk::PackageError::Verify(source) => RepoError::Untrusted { path, source },
                source => RepoError::Package { path, source },
            })?;
        self.check_arch(package_file, &pkg.info.arch)?;
        let entry = IndexEntry::from_package(&pkg.info, pkg.identity, pkg.file_size);
        let name = entry.file_name();
        let in_place = self.dir.join(&name);
        let same_file = match (fs::canonicalize(package_file), fs::canonicalize(&in_place)) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        };
        if same_file {
            self.entries.insert(name, entry.clone());
            return Ok(entry);
        }
        let staging = self.staging_dir()?;
        let tmp = staging.join(format!("{name}.{}.tmp", std::process::id()));
        copy_synced(package_file, &tmp)?;
        self.stage(tmp, entry.clone());
        Ok(entry)
    }

    fn check_arch(&self, path: &Path, pkg_arch: &str) -> Result<(), RepoError> {
        if pkg_arch == self.arch || pkg_arch == "noarch" {
            Ok(())
        } else {
            Err(RepoError::WrongArch {
                path: path.to_path_buf(),
                pkg_arch: pkg_arch.to_string(),
                arch: self.arch.clone(),
            })
        }
    }

    fn stage(&mut self, tmp: PathBuf, entry: IndexEntry) {
        let name = entry.file_name();
        if let Some(old) = self.staged.insert(name, Staged { tmp, entry }) {
            let _ = fs::remove_file(old.tmp);
        }
    }

    /// Land staged packages and write the signed index (see the module docs
    /// for the order). Returns the index path.
    pub fn write_index(
        &mut self,
        key: &SigningKey,
        description: Option<&str>,
    ) -> Result<PathBuf, RepoError> {
        let replaced: Vec<&String> = self
            .staged
            .iter()
            .filter(|(name, s)| {
                self.entries
                    .get(*name)
                    .is_some_and(|e| e.checksum != s.entry.checksum)
            })
            .map(|(name, _)| name)
            .collect();
        if !replaced.is_empty() && self.index_path().exists() {
            let interim: Vec<IndexEntry> = self
                .entries
                .iter()
                .filter(|(name, _)| !replaced.contains(name))
                .map(|(_, e)| e.clone())
                .collect();
            self.write_index_file(&interim, key, description)?;
        }
        let staged = std::mem::take(&mut self.staged);
        for (name, s) in staged {
            let dest = self.dir.join(&name);
            fs::rename(&s.tmp, &dest).map_err(io_err("renaming into", &dest))?;
            self.entries.insert(name, s.entry);
        }
        sync_dir(&self.dir)?;
        let _ = fs::remove_dir(self.dir.join(STAGING));
        let all: Vec<IndexEntry> = self.entries.values().cloned().collect();
        self.write_index_file(&all, key, description)?;
        // The index no longer names them: now the files can go.
        for name in std::mem::take(&mut self.removed) {
            if !self.entries.contains_key(&name) {
                let path = self.dir.join(&name);
                match fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_err("removing", &path)(e)),
                }
            }
        }
        Ok(self.index_path())
    }

    fn write_index_file(
        &self,
        entries: &[IndexEntry],
        key: &SigningKey,
        description: Option<&str>,
    ) -> Result<(), RepoError> {
        let mtime = entries
            .iter()
            .map(|e| e.builddate.max(0) as u64)
            .max()
            .unwrap_or(0);
        let bytes = index::build_signed(entries, description, mtime, key, self.sha1_signature)?;
        let path = self.index_path();
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir)
            .map_err(io_err("creating a temp file in", &self.dir))?;
        let werr = io_err("writing", &path);
        tmp.write_all(&bytes)
            .and_then(|()| {
                tmp.as_file()
                    .set_permissions(fs::Permissions::from_mode(0o644))
            })
            .and_then(|()| tmp.as_file().sync_all())
            .map_err(werr)?;
        tmp.persist(&path).map_err(|e| RepoError::Io {
            action: "renaming into",
            path: path.clone(),
            source: e.error,
        })?;
        sync_dir(&self.dir)
    }
}

impl Drop for Repo {
    fn drop(&mut self) {
        for s in self.staged.values() {
            let _ = fs::remove_file(&s.tmp);
        }
    }
}

fn copy_synced(from: &Path, to: &Path) -> Result<(), RepoError> {
    let mut src = fs::File::open(from).map_err(io_err("reading", from))?;
    let mut dst = fs::File::create(to).map_err(io_err("creating", to))?;
    std::io::copy(&mut src, &mut dst)
        .and_then(|_| dst.set_permissions(fs::Permissions::from_mode(0o644)))
        .and_then(|()| dst.sync_all())
        .map_err(io_err("writing", to))
}

fn sync_dir(dir: &Path) -> Result<(), RepoError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("syncing", dir))
}

/// Warn about every package [`Repo::open`] left out, naming the file.
pub fn warn_left_out(settings: &Settings, repo: &Repo) {
    for (path, why) in repo.left_out() {
        settings.shell.warn(format!(
            "{} is left out of the index: {why}",
            path.display()
        ));
    }
}

/// Rebuild the index of every architecture folder under `out/repo/`
/// (`forge index`), admitting only packages signed by a key in `keys/` (see
/// [`Repo::open`]). Returns the index paths written.
pub fn reindex(
    settings: &Settings,
    key: &SigningKey,
    trusted: &TrustedKeys,
    description: Option<&str>,
) -> Result<Vec<PathBuf>, RepoError> {
    let root = settings.repo_dir();
    let mut arches = Vec::new();
    match fs::read_dir(&root) {
        Ok(items) => {
            for item in items {
                let item = item.map_err(io_err("reading", &root))?;
                let name = item.file_name().to_string_lossy().into_owned();
                if item.path().is_dir() && !name.starts_with('.') {
                    arches.push(name);
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err("reading", &root)(e)),
    }
    arches.sort();
    let mut written = Vec::new();
    for arch in arches {
        let mut repo = Repo::open(&root, &arch, trusted)?;
        warn_left_out(settings, &repo);
        let path = repo.write_index(key, description)?;
        settings.shell.status(
            "Indexed",
            format!("{} ({} packages)", path.display(), repo.entries().len()),
        );
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apk::index::Index;
    use crate::apk::tests::{fixture_tree, spec};
    use crate::sign::tests::{test_key, test_trust};

    fn check_consistent(repo: &Repo) -> Index {
        let idx = Index::read(&repo.index_path(), &test_trust()).unwrap();
        for e in &idx.entries {
            let pkg = apk::Package::open(&repo.dir().join(e.file_name())).unwrap();
            assert_eq!(pkg.identity, e.checksum, "{}", e.file_name());
            assert_eq!(pkg.file_size, e.size);
            apk::VerifiedPackage::open(
                &repo.dir().join(e.file_name()),
                apk::Trust::Signed(&test_trust()),
            )
            .unwrap();
        }
        idx
    }

    #[test]
    fn packages_land_and_index_matches_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        fixture_tree(&root);
        let (_, key) = test_key();
        let mut repo = Repo::open(&dir.path().join("repo"), "x86_64", &test_trust()).unwrap();
        repo.write_package(&spec(&root), key, &WriteOptions::default())
            .unwrap();
        let mut doc = spec(&root);
        doc.name = "Hello-doc".into();
        repo.write_package(&doc, key, &WriteOptions::default())
            .unwrap();
        // Nothing lands before the index is written.
        assert!(!repo.dir().join("hello-2.12-r0.apk").exists());
        let path = repo.write_index(key, Some("test repo")).unwrap();
        assert_eq!(path, dir.path().join("repo/x86_64/APKINDEX.tar.gz"));
        assert!(!repo.dir().join(STAGING).exists());
        let idx = check_consistent(&repo);
        let names: Vec<&str> = idx.entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, vec!["hello", "Hello-doc"]);
        assert_eq!(idx.description.as_deref(), Some("test repo"));
        let first = fs::read(&path).unwrap();

        // Reopening reads the packages back; the same index comes out.
        let mut again = Repo::open(&dir.path().join("repo"), "x86_64", &test_trust()).unwrap();
        assert_eq!(again.entries().len(), 2);
        again.write_index(key, Some("test repo")).unwrap();
        assert_eq!(fs::read(&path).unwrap(), first);

        // Replacing a package with different content keeps file and index in step.
        fs::write(root.join("etc/hello.conf"), "greeting=hey\n").unwrap();
        let new = again
            .write_package(&spec(&root), key, &WriteOptions::default())
            .unwrap();
        again.write_index(key, Some("test repo")).unwrap();
        let idx = check_consistent(&again);
        let hello = idx.entries.iter().find(|e| e.name == "hello").unwrap();
        assert_eq!(hello.checksum, new.checksum);
    }

    #[test]
    fn add_copies_and_rejects_other_arches() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        fixture_tree(&root);
        let (_, key) = test_key();
        let built = apk::write_package(
            &spec(&root),
            key,
            &WriteOptions::default(),
            &dir.path().join("built"),
        )
        .unwrap();
        let mut repo = Repo::open(&dir.path().join("repo"), "x86_64", &test_trust()).unwrap();
        repo.add(&built.path).unwrap();
        repo.write_index(key, None).unwrap();
        assert_eq!(
            fs::read(repo.dir().join("hello-2.12-r0.apk")).unwrap(),
            fs::read(&built.path).unwrap()
        );
        let idx = check_consistent(&repo);
        assert_eq!(idx.description, None);
        let mut arm = Repo::open(&dir.path().join("repo"), "aarch64", &test_trust()).unwrap();
        let err = arm.add(&built.path).unwrap_err();
        assert!(
            err.to_string().ends_with("is for x86_64, not aarch64"),
            "{err}"
        );
    }

    /// A second key pair, trusted by nobody.
    fn foreign_key() -> &'static (tempfile::TempDir, SigningKey) {
        static KEY: std::sync::OnceLock<(tempfile::TempDir, SigningKey)> =
            std::sync::OnceLock::new();
        KEY.get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let g = crate::sign::generate(dir.path(), "stranger", 2048).unwrap();
            let key = SigningKey::load(&g.private).unwrap();
            (dir, key)
        })
    }

    fn built(dir: &Path, name: &str, key: &SigningKey) -> PathBuf {
        let root = dir.join(format!("root-{name}"));
        fixture_tree(&root);
        let mut s = spec(&root);
        s.name = name.into();
        let out = dir.join(format!("built-{name}"));
        apk::write_package(&s, key, &WriteOptions::default(), &out)
            .unwrap()
            .path
    }

    #[test]
    fn foreign_signed_and_misnamed_packages_are_never_indexed() {
        let dir = tempfile::tempdir().unwrap();
        let (_, key) = test_key();
        let (_, stranger) = foreign_key();
        let arch_dir = dir.path().join("repo/x86_64");
        fs::create_dir_all(&arch_dir).unwrap();
        let ours = built(dir.path(), "ours", key);
        let theirs = built(dir.path(), "theirs", stranger);
        fs::copy(&ours, arch_dir.join("ours-2.12-r0.apk")).unwrap();
        fs::copy(&theirs, arch_dir.join("theirs-2.12-r0.apk")).unwrap();
        // Signed by us, but under a name its pkgname/pkgver do not give.
        fs::copy(&ours, arch_dir.join("other-1.0-r0.apk")).unwrap();

        let mut repo = Repo::open(&dir.path().join("repo"), "x86_64", &test_trust()).unwrap();
        let mut left: Vec<(String, String)> = repo
            .left_out()
            .iter()
            .map(|(p, why)| (p.file_name().unwrap().to_string_lossy().into(), why.clone()))
            .collect();
        left.sort();
        assert_eq!(left.len(), 2, "{left:?}");
        assert_eq!(left[0].0, "other-1.0-r0.apk");
        assert!(left[0].1.contains("must be `ours-2.12-r0.apk`"), "{left:?}");
        assert_eq!(left[1].0, "theirs-2.12-r0.apk");
        assert!(left[1].1.contains("untrusted key stranger"), "{left:?}");
        repo.write_index(key, None).unwrap();
        let idx = check_consistent(&repo);
        let names: Vec<&str> = idx.entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, vec!["ours"]);

        // Adding a foreign package is refused outright.
        let err = repo.add(&theirs).unwrap_err();
        assert!(matches!(err, RepoError::Untrusted { .. }), "{err}");
        assert!(
            crate::util::error_chain(&err).contains("untrusted key stranger"),
            "{err}"
        );
    }

    /// The vouch check comes before the control member is parsed: a
    /// foreign package is refused for its signature, whatever its
    /// `.PKGINFO` claims (here a name its file name does not match, which
    /// the name check would otherwise report first).
    #[test]
    fn signature_is_checked_before_the_control_member_is_parsed() {
        let dir = tempfile::tempdir().unwrap();
        let (_, stranger) = foreign_key();
        let arch_dir = dir.path().join("repo/x86_64");
        fs::create_dir_all(&arch_dir).unwrap();
        let theirs = built(dir.path(), "theirs", stranger);
        fs::copy(&theirs, arch_dir.join("evil-1.0-r0.apk")).unwrap();
        let repo = Repo::open(&dir.path().join("repo"), "x86_64", &test_trust()).unwrap();
        let left = repo.left_out();
        assert_eq!(left.len(), 1, "{left:?}");
        assert!(
            left[0]
                .1
                .starts_with("it is not vouched for: signature: signed by untrusted key stranger"),
            "{left:?}"
        );
    }

    #[test]
    fn packages_the_signed_index_vouches_for_need_no_own_signature_check() {
        let dir = tempfile::tempdir().unwrap();
        let (_, key) = test_key();
        let (_, stranger) = foreign_key();
        let both = {
            let mut t = test_trust();
            t.insert(stranger.name(), stranger.public_key().unwrap());
            t
        };
        let theirs = built(dir.path(), "theirs", stranger);
        let mut repo = Repo::open(&dir.path().join("repo"), "x86_64", &both).unwrap();
        repo.add(&theirs).unwrap();
        repo.write_index(key, None).unwrap();
        // The stranger's key is no longer trusted, but our signed index still
        // names the package with its identity: it stays, without an RSA check.
        let again = Repo::open(&dir.path().join("repo"), "x86_64", &test_trust()).unwrap();
        assert!(again.left_out().is_empty(), "{:?}", again.left_out());
        assert_eq!(again.entries().len(), 1);
        // An index signed by an untrusted key vouches for nothing.
        let untrusted =
            Repo::open(&dir.path().join("repo"), "x86_64", &TrustedKeys::new()).unwrap();
        assert_eq!(untrusted.entries().len(), 0);
        assert_eq!(untrusted.left_out().len(), 1);
    }
}
