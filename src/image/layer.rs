//! Deterministic layer blobs: tar → gzip, hashed on the way.
//!
//! The same entries always give the same bytes:
//! - entries sorted bytewise by path, one header each (ustar; the `tar`
//!   crate adds a GNU long-name record for paths over 100 bytes);
//! - numeric owners as given, user/group name `root` for id 0 and empty
//!   otherwise, mode masked to `0o7777`, mtime = min(entry mtime, epoch), no
//!   atime/ctime, xattrs as `SCHILY.xattr.*` PAX records;
//! - gzip in parallel 1 MiB blocks ([`super::pgzip`]) with flate2's zlib-rs
//!   backend (pinned by `Cargo.lock`; a golden test below fails when the
//!   backend, level or block size changes) at level [`GZIP_LEVEL`], header
//!   MTIME 0, no name.
//!
//! One streaming pass: tar → SHA-256 (the DiffID) → parallel gzip →
//! SHA-256 (the blob digest) → blob file; memory stays at a few blocks.

use std::io::{self, Write};

use sha2::{Digest as _, Sha256};

use super::pgzip;
use super::rootfs::{Entry, EntryKind};
use crate::oci::layout::{Layout, LayoutError};
use crate::oci::{Descriptor, Digest, MEDIA_LAYER_GZIP};

/// The gzip level every layer is compressed with. zlib-rs at 3 (its
/// `deflate_medium` with short hash chains) takes about two thirds of the
/// CPU of level 6 for layers about 3% larger, which is what keeps forge's
/// image assembly ahead of `umoci insert` at no worse a ratio
/// (docs/images.md, "Performance").
pub const GZIP_LEVEL: u32 = 3;

/// The pinned layer compressor, part of every image's unit key: a change
/// means different layer bytes, so images are rebuilt.
pub const COMPRESSOR: &str = "pgzip 1MiB/32KiB flate2-1.1/zlib-rs-0.6 level 3";

/// A written layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerBlob {
    /// The compressed blob as stored.
    pub descriptor: Descriptor,
    /// SHA-256 of the uncompressed tar.
    pub diff_id: Digest,
}

/// Why a layer could not be written.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// Building the tar or gzip stream failed.
    #[error("writing layer entry `{path}`")]
    Entry {
        /// The entry being written.
        path: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Finishing the stream failed.
    #[error("finishing layer stream")]
    Finish(#[source] io::Error),
    /// Storing the blob failed.
    #[error(transparent)]
    Layout(#[from] LayoutError),
}

/// A writer that hashes what passes through.
pub struct HashWriter<W> {
    inner: W,
    hasher: Sha256,
}

impl<W: Write> HashWriter<W> {
    /// Wrap `inner`.
    pub fn new(inner: W) -> Self {
        HashWriter {
            inner,
            hasher: Sha256::new(),
        }
    }
    /// The inner writer and the digest of everything written.
    pub fn finish(self) -> (W, Digest) {
        (
            self.inner,
            Digest::from_sha256(self.hasher.finalize().into()),
        )
    }
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Write `entries` as a deterministic tar stream into `out`.
pub fn write_tar<W: Write>(entries: &[&Entry], epoch: u64, out: W) -> Result<W, LayerError> {
    let mut sorted: Vec<&Entry> = entries.to_vec();
    sorted.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
    let mut builder = tar::Builder::new(out);
    builder.mode(tar::HeaderMode::Complete);
    builder.follow_symlinks(false);
    for e in sorted {
        append(&mut builder, e, epoch).map_err(|source| LayerError::Entry {
            path: e.path.clone(),
            source,
        })?;
    }
    builder.into_inner().map_err(LayerError::Finish)
}

fn append<W: Write>(b: &mut tar::Builder<W>, e: &Entry, epoch: u64) -> io::Result<()> {
    if !e.xattrs.is_empty() {
        let recs: Vec<(String, &[u8])> = e
            .xattrs
            .iter()
            .map(|(k, v)| (format!("SCHILY.xattr.{k}"), v.as_slice()))
            .collect();
        b.append_pax_extensions(recs.iter().map(|(k, v)| (k.as_str(), *v)))?;
    }
    let mut h = tar::Header::new_ustar();
    h.set_mode(e.mode & 0o7777);
    h.set_uid(u64::from(e.uid));
    h.set_gid(u64::from(e.gid));
    h.set_mtime(e.mtime.min(epoch));
    h.set_username(if e.uid == 0 { "root" } else { "" })?;
    h.set_groupname(if e.gid == 0 { "root" } else { "" })?;
    match &e.kind {
        EntryKind::Dir => {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_size(0);
            b.append_data(&mut h, format!("{}/", e.path), io::empty())
        }
        EntryKind::File(data) => {
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(data.len() as u64);
            b.append_data(&mut h, &e.path, data.as_slice())
        }
        EntryKind::Symlink(target) => {
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            b.append_link(&mut h, &e.path, target)
        }
        EntryKind::Hardlink(target) => {
            h.set_entry_type(tar::EntryType::Link);
            h.set_size(0);
            b.append_link(&mut h, &e.path, target)
        }
    }
}

/// Write `entries` as a gzip layer blob into `layout`.
pub fn write_layer(
    layout: &Layout,
    entries: &[&Entry],
    epoch: u64,
    jobs: usize,
) -> Result<LayerBlob, LayerError> {
    let blob = layout.blob_writer()?;
    let gz = pgzip::Writer::new(blob, GZIP_LEVEL, jobs);
    let (gz, diff_id) = write_tar(entries, epoch, HashWriter::new(gz))?.finish();
    let blob = gz.finish().map_err(LayerError::Finish)?;
    let descriptor = blob.finish(MEDIA_LAYER_GZIP)?;
    Ok(LayerBlob {
        descriptor,
        diff_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn sample() -> Vec<Entry> {
        let mut bin = Entry::file("usr/bin/hello", 0o755, b"#!/bin/sh\necho hi\n".to_vec());
        bin.mtime = 5_000;
        let mut cap = Entry::file("usr/bin/ping", 0o4755, b"x".to_vec());
        cap.xattrs
            .insert("security.capability".into(), vec![1, 0, 0, 2]);
        cap.uid = 1000;
        vec![
            bin,
            Entry::dir("usr/bin", 0o755),
            Entry::dir("usr", 0o755),
            Entry::symlink("usr/bin/hi", "hello"),
            cap,
            Entry::file(
                &format!("usr/share/{}", "d/".repeat(60) + "long"),
                0o644,
                b"l".to_vec(),
            ),
        ]
    }

    #[test]
    fn tar_is_sorted_clamped_and_readable() {
        let entries = sample();
        let refs: Vec<&Entry> = entries.iter().collect();
        let bytes = write_tar(&refs, 1_000, Vec::new()).unwrap();
        let mut ar = tar::Archive::new(bytes.as_slice());
        let mut seen = Vec::new();
        for e in ar.entries().unwrap() {
            let mut e = e.unwrap();
            let h = e.header().clone();
            let path = e.path().unwrap().to_string_lossy().into_owned();
            assert!(h.mtime().unwrap() <= 1_000, "{path}");
            if path == "usr/bin/ping" {
                assert_eq!(h.mode().unwrap(), 0o4755);
                assert_eq!(h.uid().unwrap(), 1000);
                let pax: Vec<_> = e
                    .pax_extensions()
                    .unwrap()
                    .unwrap()
                    .map(|x| x.unwrap().key().unwrap().to_string())
                    .collect();
                assert_eq!(pax, vec!["SCHILY.xattr.security.capability"]);
            }
            if path == "usr/bin/hello" {
                let mut s = String::new();
                e.read_to_string(&mut s).unwrap();
                assert_eq!(s, "#!/bin/sh\necho hi\n");
            }
            seen.push(path);
        }
        let long = format!("usr/share/{}long", "d/".repeat(60));
        assert_eq!(
            seen,
            vec![
                "usr/",
                "usr/bin/",
                "usr/bin/hello",
                "usr/bin/hi",
                "usr/bin/ping",
                &long
            ]
        );
    }

    #[test]
    fn same_entries_same_digests_in_any_order() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::create(dir.path()).unwrap();
        let entries = sample();
        let a: Vec<&Entry> = entries.iter().collect();
        let b: Vec<&Entry> = entries.iter().rev().collect();
        let la = write_layer(&layout, &a, 1_000, 2).unwrap();
        let lb = write_layer(&layout, &b, 1_000, 2).unwrap();
        assert_eq!(la, lb);
        let lc = write_layer(&layout, &a, 999, 2).unwrap();
        assert_ne!(la.diff_id, lc.diff_id);
        // The blob is a gzip stream with MTIME 0 whose content hashes to the diff id.
        let blob = std::fs::read(layout.blob_path(&la.descriptor.digest)).unwrap();
        assert_eq!(&blob[..8], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0]);
        let mut tar = Vec::new();
        flate2::read::GzDecoder::new(blob.as_slice())
            .read_to_end(&mut tar)
            .unwrap();
        assert_eq!(Digest::of(&tar), la.diff_id);
        assert_eq!(la.descriptor.size, blob.len() as u64);
    }

    /// Golden digest: fails when the deflate backend or level changes, which
    /// would change every image digest. (Level 6 gave
    /// `sha256:8d9c5ea0…e473b`; level 3 since the speed work of issue #9.)
    #[test]
    fn gzip_backend_is_pinned() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::create(dir.path()).unwrap();
        let text: Vec<u8> = (0..150_000u32)
            .flat_map(|i| format!("line {i} {}\n", i * 7 % 13).into_bytes())
            .collect();
        let e = Entry::file("data.txt", 0o644, text);
        let l = write_layer(&layout, &[&e], 0, 2).unwrap();
        assert_eq!(l.descriptor.digest.as_str(), GOLDEN);
        // The unit key's name for the compressor moves with it.
        assert!(COMPRESSOR.ends_with(&format!("level {GZIP_LEVEL}")));
        assert!(COMPRESSOR.starts_with(&format!("pgzip {}MiB", pgzip::BLOCK >> 20)));
    }
    const GOLDEN: &str = "sha256:5b2332c695c275cb3bed94800af230cfba98097eb23b6a1882fac81879c22ba9";
}
