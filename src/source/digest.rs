//! Digests: streaming sha256/sha512 for distfiles, and a deterministic
//! content digest for local sources (a file or a whole folder).
//!
//! The local digest covers exactly what `prepare` copies: entry kinds, paths
//! relative to the source, the executable bit, file contents and symlink
//! targets, in byte-sorted path order. Timestamps, owners and the other mode
//! bits are left out, so a fresh clone of the recipe repository hashes the same.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use sha2::{Digest, Sha256, Sha512};

use super::SourceError;
use crate::recipe::Checksum;

/// A running hash of the algorithm a [`Checksum`] names.
pub(crate) enum Hasher {
    /// SHA-256.
    Sha256(Sha256),
    /// SHA-512.
    Sha512(Sha512),
}

impl Hasher {
    /// A fresh hasher for the same algorithm as `checksum`.
    pub(crate) fn for_checksum(checksum: &Checksum) -> Hasher {
        match checksum {
            Checksum::Sha256(_) => Hasher::Sha256(Sha256::new()),
            Checksum::Sha512(_) => Hasher::Sha512(Sha512::new()),
        }
    }

    /// Feed bytes.
    pub(crate) fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(bytes),
            Hasher::Sha512(h) => h.update(bytes),
        }
    }

    /// The result as a [`Checksum`] of the same algorithm.
    pub(crate) fn finish(self) -> Checksum {
        match self {
            Hasher::Sha256(h) => Checksum::Sha256(hex::encode(h.finalize())),
            Hasher::Sha512(h) => Checksum::Sha512(hex::encode(h.finalize())),
        }
    }
}

/// Hash a file with the algorithm of `like`.
pub(crate) fn hash_file(path: &Path, like: &Checksum) -> Result<Checksum, SourceError> {
    let mut file = std::fs::File::open(path).map_err(SourceError::io("reading", path))?;
    hash_open_file(&mut file, path, like)
}

/// Hash an open file from its current position to the end with the
/// algorithm of `like`; `path` names it in errors.
pub(crate) fn hash_open_file(
    file: &mut std::fs::File,
    path: &Path,
    like: &Checksum,
) -> Result<Checksum, SourceError> {
    let mut hasher = Hasher::for_checksum(like);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file
            .read(&mut buf)
            .map_err(SourceError::io("reading", path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finish())
}

/// The deterministic digest of a local file or folder, `sha256:<hex>`.
pub(crate) fn local_digest(path: &Path) -> Result<String, SourceError> {
    // A top-level symlink counts as what it points at, as `prepare` copies it.
    let path = &path
        .canonicalize()
        .map_err(SourceError::io("reading", path))?;
    let mut outer = Sha256::new();
    let meta = std::fs::symlink_metadata(path).map_err(SourceError::io("reading", path))?;
    if meta.is_dir() {
        let mut entries = Vec::new();
        for entry in walkdir::WalkDir::new(path).min_depth(1) {
            let entry = entry.map_err(|e| {
                let p = e.path().unwrap_or(path).to_path_buf();
                SourceError::Io {
                    op: "reading",
                    path: p,
                    source: e.into(),
                }
            })?;
            let rel = entry
                .path()
                .strip_prefix(path)
                .expect("walkdir stays under its root")
                .to_path_buf();
            entries.push((rel, entry.into_path()));
        }
        entries.sort_by(|a, b| a.0.as_os_str().cmp(b.0.as_os_str()));
        outer.update(b"forge-local-tree-v1\n");
        for (rel, full) in entries {
            hash_entry(&mut outer, &rel, &full)?;
        }
    } else {
        outer.update(b"forge-local-file-v1\n");
        hash_entry(&mut outer, Path::new(""), path)?;
    }
    Ok(format!("sha256:{}", hex::encode(outer.finalize())))
}

fn hash_entry(outer: &mut Sha256, rel: &Path, full: &Path) -> Result<(), SourceError> {
    use std::os::unix::ffi::OsStrExt;
    let meta = std::fs::symlink_metadata(full).map_err(SourceError::io("reading", full))?;
    let rel = rel.as_os_str().as_bytes();
    let ft = meta.file_type();
    if ft.is_dir() {
        outer.update(b"D\0");
        outer.update(rel);
        outer.update(b"\n");
    } else if ft.is_symlink() {
        let target = std::fs::read_link(full).map_err(SourceError::io("reading", full))?;
        outer.update(b"L\0");
        outer.update(rel);
        outer.update(b"\0");
        outer.update(target.as_os_str().as_bytes());
        outer.update(b"\n");
    } else if ft.is_file() {
        let exec = meta.permissions().mode() & 0o111 != 0;
        let content = hash_file(full, &Checksum::Sha256(String::new()))?;
        outer.update(if exec { b"X\0" } else { b"F\0" });
        outer.update(rel);
        outer.update(b"\0");
        outer.update(content.hex().as_bytes());
        outer.update(b"\n");
    } else {
        return Err(SourceError::Io {
            op: "hashing (not a file, folder or symlink)",
            path: full.to_path_buf(),
            source: std::io::Error::from(std::io::ErrorKind::InvalidInput),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors() {
        let cases = [
            (
                Checksum::Sha256(String::new()),
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            ),
            (
                Checksum::Sha512(String::new()),
                "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e",
            ),
        ];
        for (like, want) in cases {
            let h = Hasher::for_checksum(&like);
            assert_eq!(h.finish().hex(), want);
        }
    }

    #[test]
    fn local_digest_is_stable_and_content_sensitive() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        for d in [a.path(), b.path()] {
            std::fs::create_dir_all(d.join("x/y")).unwrap();
            std::fs::write(d.join("x/y/f"), "hello").unwrap();
            std::fs::write(d.join("x/g"), "g").unwrap();
            std::os::unix::fs::symlink("y/f", d.join("x/l")).unwrap();
        }
        let da = local_digest(&a.path().join("x")).unwrap();
        assert!(da.starts_with("sha256:") && da.len() == 71, "{da}");
        assert_eq!(da, local_digest(&b.path().join("x")).unwrap());
        // Executable bit, contents, symlink target each change the digest.
        let mut seen = vec![da.clone()];
        std::fs::set_permissions(b.path().join("x/g"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        seen.push(local_digest(&b.path().join("x")).unwrap());
        std::fs::write(b.path().join("x/y/f"), "hellO").unwrap();
        seen.push(local_digest(&b.path().join("x")).unwrap());
        std::fs::remove_file(b.path().join("x/l")).unwrap();
        std::os::unix::fs::symlink("g", b.path().join("x/l")).unwrap();
        seen.push(local_digest(&b.path().join("x")).unwrap());
        let mut uniq = seen.clone();
        uniq.sort();
        uniq.dedup();
        assert_eq!(uniq.len(), seen.len(), "{seen:?}");
        // A single file hashes differently from a folder holding it.
        let f = local_digest(&a.path().join("x/g")).unwrap();
        assert_ne!(f, da);
        assert_eq!(f, local_digest(&a.path().join("x/g")).unwrap());
    }
}
