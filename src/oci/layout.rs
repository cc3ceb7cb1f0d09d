//! Writing an OCI image layout on disk: `oci-layout`, `index.json`,
//! `blobs/sha256/<hex>`.
//!
//! Every blob is streamed into a temporary file in `blobs/sha256/` while its
//! SHA-256 is computed, fsynced, then renamed to its digest, so a blob file
//! always matches its name. `index.json` is written the same way, last.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use super::{Descriptor, Digest, Index, canonical_json};

/// Why writing the layout failed.
#[derive(Debug, thiserror::Error)]
#[error("writing OCI layout file {}", path.display())]
pub struct LayoutError {
    /// The file being written.
    pub path: PathBuf,
    /// The I/O failure.
    #[source]
    pub source: io::Error,
}

fn err(path: &Path) -> impl FnOnce(io::Error) -> LayoutError + '_ {
    move |source| LayoutError {
        path: path.to_path_buf(),
        source,
    }
}

/// An OCI image layout being written.
#[derive(Debug, Clone)]
pub struct Layout {
    dir: PathBuf,
}

impl Layout {
    /// Create (or reuse) the layout folder `dir` and write `oci-layout`.
    pub fn create(dir: &Path) -> Result<Layout, LayoutError> {
        let blobs = dir.join("blobs").join("sha256");
        fs::create_dir_all(&blobs).map_err(err(&blobs))?;
        let layout = Layout {
            dir: dir.to_path_buf(),
        };
        layout.write_file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        Ok(layout)
    }

    /// The layout folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The path of a blob.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.dir.join("blobs").join("sha256").join(digest.hex())
    }

    /// Store `bytes` as a blob of `media_type`.
    pub fn write_blob(&self, media_type: &str, bytes: &[u8]) -> Result<Descriptor, LayoutError> {
        let mut w = self.blob_writer()?;
        w.write_all(bytes).map_err(err(&self.dir))?;
        w.finish(media_type)
    }

    /// Store a JSON document canonically as a blob of `media_type`.
    pub fn write_json_blob(
        &self,
        media_type: &str,
        value: &serde_json::Value,
    ) -> Result<Descriptor, LayoutError> {
        self.write_blob(media_type, &canonical_json(value))
    }

    /// A streaming blob writer; call [`BlobWriter::finish`] to store it.
    pub fn blob_writer(&self) -> Result<BlobWriter, LayoutError> {
        let dir = self.dir.join("blobs").join("sha256");
        let tmp = tempfile::Builder::new()
            .prefix(".tmp-blob-")
            .tempfile_in(&dir)
            .map_err(err(&dir))?;
        Ok(BlobWriter {
            layout: self.clone(),
            out: BufWriter::with_capacity(1 << 20, tmp),
            hasher: Sha256::new(),
            size: 0,
        })
    }

    /// Write `index.json` (canonical JSON), atomically.
    pub fn write_index_json(&self, index: &Index) -> Result<(), LayoutError> {
        self.write_file("index.json", &canonical_json(&index.to_json()))
    }

    fn write_file(&self, name: &str, bytes: &[u8]) -> Result<(), LayoutError> {
        let path = self.dir.join(name);
        let mut tmp = tempfile::Builder::new()
            .prefix(".tmp-")
            .tempfile_in(&self.dir)
            .map_err(err(&path))?;
        tmp.write_all(bytes).map_err(err(&path))?;
        tmp.as_file().sync_all().map_err(err(&path))?;
        set_readable(tmp.as_file(), &path)?;
        tmp.persist(&path).map_err(|e| LayoutError {
            path: path.clone(),
            source: e.error,
        })?;
        Ok(())
    }
}

fn set_readable(file: &File, path: &Path) -> Result<(), LayoutError> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(fs::Permissions::from_mode(0o644))
        .map_err(err(path))
}

/// A blob being streamed into the layout.
pub struct BlobWriter {
    layout: Layout,
    out: BufWriter<tempfile::NamedTempFile>,
    hasher: Sha256,
    size: u64,
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.out.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

impl BlobWriter {
    /// Flush, fsync and rename the blob to its digest; return its descriptor.
    pub fn finish(self, media_type: &str) -> Result<Descriptor, LayoutError> {
        let digest = Digest::from_sha256(self.hasher.finalize().into());
        let path = self.layout.blob_path(&digest);
        let tmp = self.out.into_inner().map_err(|e| LayoutError {
            path: path.clone(),
            source: e.into_error(),
        })?;
        tmp.as_file().sync_all().map_err(err(&path))?;
        set_readable(tmp.as_file(), &path)?;
        tmp.persist(&path).map_err(|e| LayoutError {
            path: path.clone(),
            source: e.error,
        })?;
        Ok(Descriptor {
            media_type: media_type.to_string(),
            digest,
            size: self.size,
            platform: None,
            annotations: Default::default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::{ANNOTATION_REF_NAME, MEDIA_CONFIG, MEDIA_INDEX};

    #[test]
    fn blobs_are_named_by_digest_and_index_is_canonical() {
        let tmp = tempfile::tempdir().unwrap();
        let layout = Layout::create(tmp.path()).unwrap();
        let d = layout.write_blob(MEDIA_CONFIG, b"{}").unwrap();
        assert_eq!(d.size, 2);
        assert_eq!(fs::read(layout.blob_path(&d.digest)).unwrap(), b"{}");
        let mut entry = d.clone();
        entry.media_type = MEDIA_INDEX.into();
        entry
            .annotations
            .insert(ANNOTATION_REF_NAME.into(), "latest".into());
        let index = Index {
            manifests: vec![entry],
            annotations: Default::default(),
        };
        layout.write_index_json(&index).unwrap();
        let text = fs::read_to_string(tmp.path().join("index.json")).unwrap();
        assert!(text.starts_with("{\"manifests\":[{\"annotations\":{\"org.opencontainers"));
        assert_eq!(
            fs::read_to_string(tmp.path().join("oci-layout")).unwrap(),
            r#"{"imageLayoutVersion":"1.0.0"}"#
        );
        let leftovers: Vec<_> = fs::read_dir(tmp.path().join("blobs/sha256"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(leftovers, vec![d.digest.hex().to_string()]);
    }
}
