//! Build dependencies from forge's own repository.
//!
//! Before a unit builds, its `makedepends` that forge packages provide are
//! installed into a private build root (`out/deps/NAME/`), together with their
//! runtime dependencies that the repository also provides. Every package is
//! verified (signature against `keys/`, identity against the signed index,
//! datahash and file checksums) before a byte of it is unpacked.
//!
//! Unlike image resolution, a transitive dependency the repository does not
//! provide (`so:libc.so.6`) is not an error here: the host toolchain, mounted
//! read-only in the sandbox, provides it.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fs;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use crate::apk::Package;
use crate::apk::index::{Index, IndexEntry};
use crate::graph::dep_name;
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
    /// A makedepends the repository does not provide.
    #[error("makedepends `{0}` is not in the repository (was its recipe built?)")]
    Missing(String),
    /// A package failed verification.
    #[error("build dependency {} failed verification: {why}", path.display())]
    Unverified {
        /// The package file.
        path: PathBuf,
        /// What failed.
        why: String,
    },
    /// Unpacking failed.
    #[error("unpacking {} into {}", path.display(), dest.display())]
    Unpack {
        /// The package file.
        path: PathBuf,
        /// The build root.
        dest: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

fn provides_name(e: &IndexEntry, name: &str) -> bool {
    e.name == name || e.provides.iter().any(|p| dep_name(p) == name)
}

/// The repository packages needed for `makedepends`, dependencies first
/// resolved breadth-first; the highest version wins among providers.
pub fn closure(
    makedepends: &[String],
    entries: &[IndexEntry],
) -> Result<Vec<IndexEntry>, DepsError> {
    let mut chosen: BTreeMap<String, IndexEntry> = BTreeMap::new();
    let mut queue: VecDeque<(String, bool)> =
        makedepends.iter().map(|d| (d.clone(), true)).collect();
    let mut seen = BTreeSet::new();
    while let Some((dep, direct)) = queue.pop_front() {
        let name = dep_name(&dep).to_string();
        if dep.starts_with('!') || !seen.insert(name.clone()) {
            continue;
        }
        if chosen.values().any(|e| provides_name(e, &name)) {
            continue;
        }
        let best = entries
            .iter()
            .filter(|e| provides_name(e, &name))
            .max_by(|a, b| {
                (a.name == name)
                    .cmp(&(b.name == name))
                    .then_with(|| crate::version::compare(&a.version, &b.version))
                    .then_with(|| b.name.cmp(&a.name))
            });
        match best {
            Some(e) => {
                for d in &e.depends {
                    queue.push_back((d.clone(), false));
                }
                chosen.insert(e.name.clone(), e.clone());
            }
            None if direct => return Err(DepsError::Missing(dep)),
            None => {}
        }
    }
    Ok(chosen.into_values().collect())
}

/// Install the build dependencies of a unit into `dest` (recreated). Returns
/// the installed packages as `name-version`, or `None` when there are none.
pub fn install(
    makedepends: &[String],
    repo_dir: &Path,
    trusted: &TrustedKeys,
    dest: &Path,
) -> Result<Option<Vec<String>>, DepsError> {
    if makedepends.is_empty() {
        return Ok(None);
    }
    let index_path = repo_dir.join(crate::repo::INDEX_FILE);
    let index = Index::read(&index_path, trusted).map_err(|source| DepsError::Index {
        path: index_path.clone(),
        source,
    })?;
    let needed = closure(makedepends, &index.entries)?;
    let unpack_err = |path: &Path, source| DepsError::Unpack {
        path: path.to_path_buf(),
        dest: dest.to_path_buf(),
        source,
    };
    if dest.exists() {
        fs::remove_dir_all(dest).map_err(|e| unpack_err(dest, e))?;
    }
    fs::create_dir_all(dest).map_err(|e| unpack_err(dest, e))?;
    let mut installed = Vec::new();
    for entry in &needed {
        let path = repo_dir.join(entry.file_name());
        let unverified = |why: String| DepsError::Unverified {
            path: path.clone(),
            why,
        };
        let pkg = Package::open(&path).map_err(|e| unverified(e.to_string()))?;
        pkg.verify(trusted).map_err(|e| unverified(e.to_string()))?;
        if pkg.identity != entry.checksum {
            return Err(unverified("identity differs from the signed index".into()));
        }
        unpack_data(&path, dest).map_err(|e| unpack_err(&path, e))?;
        installed.push(format!("{}-{}", entry.name, entry.version));
    }
    Ok(Some(installed))
}

/// Unpack the data section of a package (its non-metadata entries).
fn unpack_data(path: &Path, dest: &Path) -> std::io::Result<()> {
    let file = fs::File::open(path)?;
    let gz = flate2::read::MultiGzDecoder::new(std::io::BufReader::new(file));
    let mut archive = tar::Archive::new(gz);
    archive.set_preserve_permissions(true);
    archive.set_overwrite(true);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let name = entry.path()?.to_string_lossy().into_owned();
        if name.starts_with('.') && !name.contains('/') {
            // .SIGN.*, .PKGINFO and scripts: metadata, not files.
            let mut sink = Vec::new();
            entry.read_to_end(&mut sink)?;
            continue;
        }
        // `unpack_in` refuses `..` and absolute paths.
        entry.unpack_in(dest)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn missing_direct_makedepends_is_an_error() {
        let err = closure(&["nothere>=1".into()], &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "makedepends `nothere>=1` is not in the repository (was its recipe built?)"
        );
    }
}
