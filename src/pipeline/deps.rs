//! Build dependencies from forge's own repository.
//!
//! Before a unit builds, its `makedepends` that forge packages provide are
//! installed into a private build root (`out/deps/NAME/`), together with their
//! runtime dependencies that the repository also provides; in the hermetic
//! stage, the project's base packages become the sandbox's `/` the same way.
//! Every package is read once through [`crate::apk::VerifiedPackage`]
//! (signature against `keys/`, identity against the signed index, datahash,
//! file checksums, entry kinds and paths) before a byte of it is written,
//! unpacked once into the package store and linked from there
//! ([`super::store`]).
//!
//! Unlike image resolution, a transitive dependency the repository does not
//! provide (`so:libc.so.6`) is not an error here: in the bootstrap stage the
//! host toolchain, mounted read-only in the sandbox, provides it.

use std::path::{Path, PathBuf};

use super::store::{Link, RootWriter, Store, StoreError};
use crate::apk::Trust;
use crate::apk::index::{Index, IndexEntry};
use crate::resolve::{Candidate, Request, ResolveError, resolve};
use crate::sign::TrustedKeys;

/// Installing build dependencies failed.
#[derive(Debug, thiserror::Error)]
pub enum DepsError {
    /// The repository index could not be read or trusted.
    #[error("reading the repository index {}", path.display())]
    Index {
        /// The index file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: crate::apk::index::IndexError,
    },
    /// The makedepends cannot be satisfied from the repository.
    #[error("resolving {by} from the repository (was every recipe they need built?)")]
    Resolve {
        /// What asked: `makedepends` or the build root's base.
        by: &'static str,
        /// The cause.
        #[source]
        source: ResolveError,
    },
    /// The hermetic stage was asked for with no base to make a root of.
    #[error(
        "the hermetic stage needs a base: list the seed and the base tools in forge.toml, [build-root] base = [\"zig\", …]"
    )]
    EmptyBase,
    /// A package could not be verified, unpacked or linked.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One package installed into a build root: what the unit key hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    /// Package name.
    pub name: String,
    /// `version-rN`.
    pub version: String,
    /// The package identity (`C:`, SHA-1 of the control member).
    pub checksum: [u8; 20],
}

impl Installed {
    /// `name-version`.
    pub fn id(&self) -> String {
        format!("{}-{}", self.name, self.version)
    }
}

impl From<&IndexEntry> for Installed {
    fn from(e: &IndexEntry) -> Installed {
        Installed {
            name: e.name.clone(),
            version: e.version.clone(),
            checksum: e.checksum,
        }
    }
}

/// The repository packages needed for `makedepends`, in install order
/// (dependencies first), chosen by the one resolver ([`crate::resolve`]):
/// version constraints, provides and `provider_priority` as apk applies
/// them. A runtime dependency whose name the repository does not have at
/// all is left out (the bootstrap stage's host toolchain provides
/// `so:libc.so.6`).
pub fn closure(
    makedepends: &[String],
    entries: &[IndexEntry],
) -> Result<Vec<IndexEntry>, DepsError> {
    closure_for(makedepends, "makedepends", entries)
}

/// [`closure`] of `deps`, asked for by `by` (named in errors).
pub fn closure_for(
    deps: &[String],
    by: &'static str,
    entries: &[IndexEntry],
) -> Result<Vec<IndexEntry>, DepsError> {
    let candidates: Vec<Candidate> = entries.iter().map(Candidate::from).collect();
    let request = Request {
        deps,
        by,
        missing_transitive_ok: true,
    };
    let res = resolve(&request, &candidates).map_err(|source| DepsError::Resolve { by, source })?;
    Ok(res.order.iter().map(|&i| entries[i].clone()).collect())
}

/// Read and verify the signed index of `repo_dir`.
pub fn read_index(repo_dir: &Path, trusted: &TrustedKeys) -> Result<Index, DepsError> {
    let index_path = repo_dir.join(crate::repo::INDEX_FILE);
    Index::read(&index_path, trusted).map_err(|source| DepsError::Index {
        path: index_path.clone(),
        source,
    })
}

/// Where a set of packages comes from and goes to.
pub struct InstallTo<'a> {
    /// `out/repo/<arch>/` holding the packages and their signed index.
    pub repo_dir: &'a Path,
    /// The keys the packages and the index must be signed with.
    pub trusted: &'a TrustedKeys,
    /// The unpacked-package store.
    pub store: &'a Store,
}

/// Install `deps` (asked for by `by`) and what they need from the
/// repository into `root`; returns the installed packages in order.
pub fn install_into(
    deps: &[String],
    by: &'static str,
    from: &InstallTo<'_>,
    root: &mut RootWriter,
) -> Result<Vec<Installed>, DepsError> {
    if deps.is_empty() {
        return Ok(Vec::new());
    }
    let index = read_index(from.repo_dir, from.trusted)?;
    let needed = closure_for(deps, by, &index.entries)?;
    let mut installed = Vec::new();
    for entry in &needed {
        let path = from.repo_dir.join(entry.file_name());
        let trust = Trust::SignedAndIndexed(from.trusted, &entry.checksum);
        let (tree, _) = from.store.ensure(&path, &entry.checksum, trust)?;
        root.add(&entry.name, &tree)?;
        installed.push(Installed::from(entry));
    }
    Ok(installed)
}

/// Install the build dependencies of a unit into `dest` (recreated), linked
/// as `link` says: `makedepends` from `from`, then `from_host` (a foreign
/// architecture's build-machine packages, [`super::cross`]) from the host's
/// repository. Returns the packages installed from each, or `None` when
/// there are none at all.
pub fn install(
    makedepends: &[String],
    from: &InstallTo<'_>,
    from_host: (&[String], &InstallTo<'_>),
    dest: &Path,
    link: Link,
) -> Result<Option<InstalledDeps>, DepsError> {
    let (host_deps, host) = from_host;
    if makedepends.is_empty() && host_deps.is_empty() {
        return Ok(None);
    }
    let mut root = RootWriter::new(dest, link)?;
    let target = install_into(makedepends, "makedepends", from, &mut root)?;
    let from_host = install_into(host_deps, super::cross::FROM_HOST, host, &mut root)?;
    Ok(Some(InstalledDeps { target, from_host }))
}

/// What [`install`] installed, in order.
#[derive(Debug)]
pub struct InstalledDeps {
    /// From the target architecture's repository.
    pub target: Vec<Installed>,
    /// From the host's ([`super::cross`]).
    pub from_host: Vec<Installed>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apk::tar::Kind;
    use std::fs;

    fn entry(name: &str, version: &str, depends: &[&str], provides: &[&str]) -> IndexEntry {
        IndexEntry {
            name: name.into(),
            version: version.into(),
            depends: depends.iter().map(|s| s.to_string()).collect(),
            provides: provides.iter().map(|s| s.to_string()).collect(),
            ..IndexEntry::default()
        }
    }

    #[test]
    fn closure_follows_provides_and_tolerates_host_deps() {
        let repo = vec![
            entry(
                "libgreet",
                "1.0-r0",
                &["so:libc.so.6"],
                &["so:libgreet.so.1=1"],
            ),
            entry(
                "libgreet-dev",
                "1.0-r0",
                &["libgreet=1.0-r0", "pc:zlib"],
                &["pc:greet=1.0"],
            ),
            entry("libgreet-dev", "0.9-r0", &[], &[]),
            entry("unrelated", "1-r0", &[], &[]),
        ];
        let got = closure(&["libgreet-dev".into()], &repo).unwrap();
        let names: Vec<String> = got
            .iter()
            .map(|e| format!("{}-{}", e.name, e.version))
            .collect();
        assert_eq!(names, vec!["libgreet-1.0-r0", "libgreet-dev-1.0-r0"]);
        let got = closure(&["pc:greet".into()], &repo).unwrap();
        assert_eq!(got.len(), 2);
    }

    /// A signed repository in `dir/repo` holding one package `evil` around
    /// `data_tar`.
    fn repo_with(dir: &Path, data_tar: &[u8]) -> PathBuf {
        let (bytes, entry) = crate::apk::tests::craft_package("evil", data_tar);
        let repo = dir.join("repo");
        fs::create_dir_all(&repo).unwrap();
        fs::write(repo.join(entry.file_name()), bytes).unwrap();
        let (_, key) = crate::sign::tests::test_key();
        let index = crate::apk::index::build_signed(&[entry], None, 0, key, false).unwrap();
        fs::write(repo.join(crate::repo::INDEX_FILE), index).unwrap();
        repo
    }

    /// A FIFO in a correctly signed package is refused, naming the package
    /// and the entry. Before, verification skipped it and the `tar` crate
    /// then created it in the build root.
    #[test]
    fn install_refuses_a_fifo_entry() {
        use crate::apk::tests::raw_data_tar;
        let dir = tempfile::tempdir().unwrap();
        let tar = raw_data_tar(&[
            (Kind::Dir, "usr/", "", b""),
            (Kind::Other(b'6'), "usr/fifo", "", b""),
        ]);
        let repo = repo_with(dir.path(), &tar);
        let dest = dir.path().join("deps");
        let trusted = crate::sign::tests::test_trust();
        let store = Store::new(dir.path());
        let from = InstallTo {
            repo_dir: &repo,
            trusted: &trusted,
            store: &store,
        };
        let err = install(&["evil".into()], &from, (&[], &from), &dest, Link::Hard).unwrap_err();
        let text = crate::util::error_chain(&err);
        assert!(text.contains("evil-2.12-r0.apk"), "{text}");
        assert!(
            text.contains("entry `usr/fifo`: FIFO entries are not allowed in packages"),
            "{text}"
        );
        assert!(fs::symlink_metadata(dest.join("usr/fifo")).is_err());
    }

    /// What is written is what was verified: contents, links (absolute
    /// targets kept), hard links; setuid bits dropped in the build root.
    #[test]
    fn install_writes_the_verified_entries() {
        use crate::apk::tests::raw_data_tar;
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let mut tar = raw_data_tar(&[
            (Kind::Dir, "usr/", "", b""),
            (Kind::Dir, "usr/bin/", "", b""),
            (Kind::File, "usr/bin/tool", "", b"#!/bin/sh\n"),
            (Kind::HardLink, "usr/bin/tool2", "usr/bin/tool", b""),
            (Kind::Symlink, "usr/bin/sh", "/bin/busybox", b""),
        ]);
        // Make `usr/bin/tool` setuid (mode field of its header block).
        let at = tar.windows(12).position(|w| w == b"usr/bin/tool").unwrap();
        tar[at + 100..at + 108].copy_from_slice(b"0004755\0");
        let mut sum_block = tar[at..at + 512].to_vec();
        sum_block[148..156].fill(b' ');
        let sum: u64 = sum_block.iter().map(|&x| u64::from(x)).sum();
        tar[at + 148..at + 156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        let repo = repo_with(dir.path(), &tar);
        let dest = dir.path().join("deps");
        let trusted = crate::sign::tests::test_trust();
        let store = Store::new(dir.path());
        let from = InstallTo {
            repo_dir: &repo,
            trusted: &trusted,
            store: &store,
        };
        let got = install(&["evil".into()], &from, (&[], &from), &dest, Link::Hard).unwrap();
        let ids: Vec<String> = got.unwrap().target.iter().map(Installed::id).collect();
        assert_eq!(ids, ["evil-2.12-r0"]);
        assert_eq!(
            fs::read(dest.join("usr/bin/tool2")).unwrap(),
            b"#!/bin/sh\n"
        );
        let mode = fs::metadata(dest.join("usr/bin/tool"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o755);
        assert_eq!(
            fs::read_link(dest.join("usr/bin/sh")).unwrap(),
            Path::new("/bin/busybox")
        );
    }

    #[test]
    fn missing_direct_makedepends_is_an_error() {
        let err = closure(&["nothere>=1".into()], &[]).unwrap_err();
        assert_eq!(
            crate::util::error_chain(&err),
            "resolving makedepends from the repository (was every recipe they need built?): \
             nothing in the repository provides `nothere>=1` (needed by makedepends)"
        );
    }

    /// `foo<2` must not install foo-3 (it used to: constraints were ignored).
    #[test]
    fn makedepends_version_constraints_are_honoured() {
        let repo = vec![
            entry("foo", "1.0-r0", &[], &[]),
            entry("foo", "3.0-r0", &[], &[]),
            entry("tool", "1-r0", &["foo>=3"], &[]),
        ];
        let names = |deps: &[&str], repo: &[IndexEntry]| {
            let deps: Vec<String> = deps.iter().map(|s| s.to_string()).collect();
            closure(&deps, repo).map(|got| {
                got.iter()
                    .map(|e| format!("{}-{}", e.name, e.version))
                    .collect::<Vec<_>>()
            })
        };
        assert_eq!(names(&["foo<2"], &repo).unwrap(), ["foo-1.0-r0"]);
        assert_eq!(
            names(&["tool"], &repo).unwrap(),
            ["foo-3.0-r0", "tool-1-r0"]
        );
        let err = names(&["foo<2"], &repo[1..]).unwrap_err();
        assert!(
            crate::util::error_chain(&err).ends_with(
                "`foo<2` (needed by makedepends) is not satisfied: the repository has foo-3.0-r0"
            ),
            "{}",
            crate::util::error_chain(&err)
        );
    }
}
