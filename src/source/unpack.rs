//! Unpacking source archives: tar (plain, gzip, xz, bzip2, zstd) and zip.
//!
//! The format is recognised by its magic bytes, not by the file name, so a
//! mislabelled upstream file still unpacks (or fails clearly). Every entry goes
//! through [`TreeWriter`], which refuses anything that could land outside the
//! destination; see that module for the rules.

use std::fs::File;
use std::io::{BufReader, Read, Seek};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::SourceError;
use super::tree::TreeWriter;

/// An archive format forge can unpack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// Plain tar.
    Tar,
    /// gzip-compressed tar.
    TarGz,
    /// xz-compressed tar.
    TarXz,
    /// bzip2-compressed tar.
    TarBz2,
    /// zstd-compressed tar.
    TarZst,
    /// zip.
    Zip,
}

/// Recognise an archive by its first bytes; `None` when it is not one.
pub(crate) fn sniff(path: &Path) -> Result<Option<Format>, SourceError> {
    let mut file = File::open(path).map_err(SourceError::io("reading", path))?;
    sniff_file(&mut file, path)
}

/// [`sniff`] on an open file, which is left rewound.
pub(crate) fn sniff_file(file: &mut File, path: &Path) -> Result<Option<Format>, SourceError> {
    let mut head = [0u8; 512];
    let mut n = 0;
    while n < head.len() {
        let got = file
            .read(&mut head[n..])
            .map_err(SourceError::io("reading", path))?;
        if got == 0 {
            break;
        }
        n += got;
    }
    file.rewind().map_err(SourceError::io("reading", path))?;
    Ok(sniff_bytes(&head[..n]))
}

fn sniff_bytes(head: &[u8]) -> Option<Format> {
    let starts = |m: &[u8]| head.starts_with(m);
    if starts(&[0x1f, 0x8b]) {
        Some(Format::TarGz)
    } else if starts(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Some(Format::TarXz)
    } else if starts(b"BZh") {
        Some(Format::TarBz2)
    } else if starts(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Some(Format::TarZst)
    } else if starts(b"PK\x03\x04") || starts(b"PK\x05\x06") {
        Some(Format::Zip)
    } else if head.len() >= 262 && &head[257..262] == b"ustar" {
        Some(Format::Tar)
    } else {
        None
    }
}

/// Unpack `archive` into `dest`; returns the single top-level folder, if any.
pub(crate) fn unpack(
    archive: &Path,
    format: Format,
    dest: &Path,
) -> Result<Option<PathBuf>, SourceError> {
    let file = File::open(archive).map_err(SourceError::io("reading", archive))?;
    unpack_file(file, archive, format, dest)
}

/// [`unpack`] from an open file (read from its start); `archive` names it.
pub(crate) fn unpack_file(
    file: File,
    archive: &Path,
    format: Format,
    dest: &Path,
) -> Result<Option<PathBuf>, SourceError> {
    let reader = BufReader::with_capacity(256 * 1024, file);
    let mut writer = TreeWriter::new(dest, archive)?;
    match format {
        Format::Tar => unpack_tar(reader, archive, &mut writer)?,
        Format::TarGz => unpack_tar(
            flate2::read::MultiGzDecoder::new(reader),
            archive,
            &mut writer,
        )?,
        Format::TarXz => unpack_tar(
            xz2::read::XzDecoder::new_multi_decoder(reader),
            archive,
            &mut writer,
        )?,
        Format::TarBz2 => unpack_tar(
            bzip2::read::MultiBzDecoder::new(reader),
            archive,
            &mut writer,
        )?,
        Format::TarZst => {
            let dec = zstd::stream::read::Decoder::with_buffer(reader)
                .map_err(|e| corrupt(archive, e))?;
            unpack_tar(dec, archive, &mut writer)?
        }
        Format::Zip => {
            let mut file = reader.into_inner();
            file.rewind().map_err(SourceError::io("reading", archive))?;
            unpack_zip(file, archive, &mut writer)?
        }
    }
    writer.finish()
}

fn corrupt(archive: &Path, source: std::io::Error) -> SourceError {
    SourceError::Archive {
        archive: archive.to_path_buf(),
        source,
    }
}

/// A tar mtime as a time, `None` when it is past what the system can
/// represent: a base-256 field holds up to `u64::MAX` seconds, and a plain
/// `UNIX_EPOCH + secs` would panic on it.
fn mtime_from_secs(secs: u64) -> Option<SystemTime> {
    SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(secs))
}

fn unpack_tar<R: Read>(reader: R, archive: &Path, w: &mut TreeWriter) -> Result<(), SourceError> {
    use tar::EntryType as T;
    let mut ar = tar::Archive::new(reader);
    for entry in ar.entries().map_err(|e| corrupt(archive, e))? {
        let mut entry = entry.map_err(|e| corrupt(archive, e))?;
        let path = entry.path().map_err(|e| corrupt(archive, e))?.into_owned();
        let header = entry.header();
        let mode = header.mode().unwrap_or(0o644);
        let mtime = match header.mtime() {
            Ok(secs) => Some(
                mtime_from_secs(secs)
                    .ok_or_else(|| w.refuse(&path, format!("mtime {secs} is out of range")))?,
            ),
            Err(_) => None,
        };
        let kind = header.entry_type();
        match kind {
            // Old tars mark folders as regular files whose name ends in `/`.
            T::Regular if entry.path_bytes().ends_with(b"/") => w.dir(&path, mode, mtime)?,
            T::Regular | T::Continuous | T::GNUSparse => w.file(&path, mode, mtime, &mut entry)?,
            T::Directory => w.dir(&path, mode, mtime)?,
            T::Symlink | T::Link => {
                let target = entry
                    .link_name()
                    .map_err(|e| corrupt(archive, e))?
                    .ok_or_else(|| {
                        corrupt(
                            archive,
                            std::io::Error::other("link entry without a target"),
                        )
                    })?
                    .into_owned();
                if kind == T::Symlink {
                    w.symlink(&path, &target)?
                } else {
                    w.hardlink(&path, &target)?
                }
            }
            T::XGlobalHeader => {}
            T::Char => return Err(w.refuse_kind(&path, "character device")),
            T::Block => return Err(w.refuse_kind(&path, "block device")),
            T::Fifo => return Err(w.refuse_kind(&path, "fifo")),
            other => {
                return Err(
                    w.refuse_kind(&path, &format!("tar type {:?}", other.as_byte() as char))
                );
            }
        }
    }
    Ok(())
}

fn unpack_zip(file: File, archive: &Path, w: &mut TreeWriter) -> Result<(), SourceError> {
    let zerr = |e: zip::result::ZipError| corrupt(archive, std::io::Error::other(e));
    let mut zip = zip::ZipArchive::new(BufReader::new(file)).map_err(zerr)?;
    for i in 0..zip.len() {
        let mut f = zip.by_index(i).map_err(zerr)?;
        let name = PathBuf::from(f.name().map_err(zerr)?.into_owned());
        let mode = f.unix_mode();
        let kind = mode.map(|m| m & 0o170000).unwrap_or(0);
        if f.is_dir() || kind == 0o040000 {
            w.dir(&name, mode.unwrap_or(0o755) & 0o7777, None)?;
        } else if kind == 0o120000 {
            let mut target = String::new();
            f.read_to_string(&mut target)
                .map_err(|e| corrupt(archive, e))?;
            w.symlink(&name, Path::new(&target))?;
        } else if kind == 0o100000 || kind == 0 {
            w.file(&name, mode.unwrap_or(0o644) & 0o7777, None, &mut f)?;
        } else {
            let what = match kind {
                0o020000 => "character device",
                0o060000 => "block device",
                0o010000 => "fifo",
                0o140000 => "socket",
                _ => "unknown file type",
            };
            return Err(w.refuse_kind(&name, what));
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "unpack_tests.rs"]
mod tests;
