//! The raw disk: partitions placed at aligned boundaries, each filled from
//! its filesystem file, the partition table (GPT, or MBR for the Pi)
//! written around them, all into a temporary file
//! in the destination folder that is fsynced and renamed over
//! `out/os/NAME.raw` only when complete. An error at any step drops the
//! temporary file: there is never a partial `.raw`.
//!
//! Blocks of zeros are not written (the file stays sparse), so an empty
//! USR-B, or ROOT's empty ext4 beyond its metadata, costs no disk space.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::OsError;
use super::gpt::{self, Gpt, Partition, SECTOR};
use super::mbr::{Mbr, MbrPartition};
use super::seed::Guid;

/// GPT partitions start and end on this boundary.
const ALIGN: u64 = 1 << 20;

/// One partition to place, with the files that fill it (in order, each
/// starting where the previous ended).
#[derive(Debug, Clone)]
pub struct Piece {
    /// Label (GPT `PARTLABEL`; on MBR only the manifest carries it).
    pub label: &'static str,
    /// Its type in the partition table.
    pub kind: Kind,
    /// Size in bytes (a whole number of MiB).
    pub size: u64,
    /// Contents: (offset inside the partition, file).
    pub content: Vec<(u64, PathBuf)>,
}

/// A partition's identity in its table.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// A GPT entry.
    Gpt {
        /// Type GUID.
        type_guid: Guid,
        /// Unique GUID.
        guid: Guid,
        /// Attribute bits.
        attributes: u64,
    },
    /// An MBR entry with this type byte (`PARTUUID` from the disk signature).
    Mbr(u8),
}

/// A laid-out table: the disk size, the sectors the table takes, and where
/// each piece goes.
#[derive(Debug, Clone)]
pub struct Table {
    /// Size of the disk in sectors.
    pub total_sectors: u64,
    /// The table's own bytes: (offset on the disk, bytes).
    pub writes: Vec<(u64, Vec<u8>)>,
    /// Each piece's partition number, `PARTUUID`, first and last sector.
    pub spans: Vec<(usize, String, u64, u64)>,
}

/// Where each partition landed.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Placed {
    /// Label.
    pub label: String,
    /// Partition number (from 1).
    pub number: usize,
    /// Unique GUID (`PARTUUID`).
    pub partuuid: String,
    /// First byte on the disk.
    pub offset: u64,
    /// Size in bytes.
    pub size: u64,
}

/// The GPT for `pieces`, laid out from 1 MiB with 1 MiB alignment and
/// 1 MiB free at the end (the backup table lives there).
pub fn layout(disk_guid: Guid, pieces: &[Piece]) -> Result<Table, OsError> {
    let mut at = ALIGN;
    let mut partitions = Vec::new();
    for p in pieces {
        let size = p.size.div_ceil(ALIGN) * ALIGN;
        let Kind::Gpt {
            type_guid,
            guid,
            attributes,
        } = p.kind
        else {
            return Err(gpt::GptError::Placement(p.label.to_string()).into());
        };
        partitions.push(Partition {
            type_guid,
            guid,
            name: p.label.to_string(),
            first_lba: at / SECTOR,
            last_lba: (at + size) / SECTOR - 1,
            attributes,
        });
        at += size;
    }
    let g = Gpt {
        disk_guid,
        total_sectors: (at + ALIGN) / SECTOR,
        partitions,
    };
    g.check()?;
    let backup_at = (g.total_sectors - gpt::BACKUP_SECTORS) * SECTOR;
    Ok(Table {
        total_sectors: g.total_sectors,
        writes: vec![(0, g.primary()), (backup_at, g.backup())],
        spans: g
            .partitions
            .iter()
            .enumerate()
            .map(|(i, p)| (i + 1, p.guid.to_string(), p.first_lba, p.last_lba))
            .collect(),
    })
}

/// The MBR for `pieces`, every partition on an `align` boundary from
/// `align` on; the fourth piece on are logical partitions, each with its
/// EBR `align` before it.
pub fn layout_mbr(signature: u32, pieces: &[Piece], align: u64) -> Result<Table, OsError> {
    let mut at = align;
    let mut partitions = Vec::new();
    for (i, p) in pieces.iter().enumerate() {
        let Kind::Mbr(kind) = p.kind else {
            return Err(super::mbr::MbrError::Placement(Mbr::number(i)).into());
        };
        let ebr_lba = at / SECTOR;
        if i >= 3 {
            at += align;
        }
        let size = p.size.div_ceil(align) * align;
        partitions.push(MbrPartition {
            kind,
            first_lba: at / SECTOR,
            sectors: size / SECTOR,
            ebr_lba,
        });
        at += size;
    }
    let m = Mbr {
        signature,
        total_sectors: at / SECTOR,
        partitions,
    };
    m.check()?;
    Ok(Table {
        total_sectors: m.total_sectors,
        writes: m.sectors(),
        spans: m
            .partitions
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let last = p.first_lba + p.sectors - 1;
                (Mbr::number(i), m.partuuid(i), p.first_lba, last)
            })
            .collect(),
    })
}

/// Write the disk to `dest` atomically; returns where each piece landed.
pub fn write(dest: &Path, table: &Table, pieces: &[Piece]) -> Result<Vec<Placed>, OsError> {
    let dir = dest.parent().unwrap_or(Path::new("."));
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}.tmp-"))
        .tempfile_in(dir)
        .map_err(OsError::io("creating a file in", dir))?;
    let tmp_path = tmp.path().to_path_buf();
    let io = |what| OsError::io(what, &tmp_path);
    let f = tmp.as_file_mut();
    {
        use std::os::unix::fs::PermissionsExt as _;
        f.set_permissions(std::fs::Permissions::from_mode(0o644))
            .map_err(io("setting the mode of"))?;
    }
    f.set_len(table.total_sectors * SECTOR)
        .map_err(io("sizing"))?;
    for (at, bytes) in &table.writes {
        f.seek(SeekFrom::Start(*at)).map_err(io("seeking"))?;
        f.write_all(bytes).map_err(io("writing"))?;
    }
    let mut placed = Vec::new();
    for (piece, (number, partuuid, first, last)) in pieces.iter().zip(&table.spans) {
        let start = first * SECTOR;
        let size = (last + 1 - first) * SECTOR;
        for (offset, file) in &piece.content {
            splice(f, start + offset, start + size, file, &tmp_path)?;
        }
        placed.push(Placed {
            label: piece.label.to_string(),
            number: *number,
            partuuid: partuuid.clone(),
            offset: start,
            size,
        });
    }
    f.sync_all().map_err(io("syncing"))?;
    tmp.persist(dest)
        .map_err(|e| OsError::io("renaming", dest)(e.error))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(OsError::io("syncing", dir))?;
    Ok(placed)
}

/// Copy `file` into `disk` at `at`, never past `end`, skipping zero blocks.
pub(super) fn splice(
    disk: &mut File,
    at: u64,
    end: u64,
    file: &Path,
    disk_path: &Path,
) -> Result<(), OsError> {
    let mut src = File::open(file).map_err(OsError::io("opening", file))?;
    let len = src.metadata().map_err(OsError::io("reading", file))?.len();
    if at + len > end {
        return Err(OsError::io("placing", file)(std::io::Error::other(
            "the file is larger than its partition",
        )));
    }
    let mut buf = vec![0u8; 1 << 20];
    let mut pos = at;
    loop {
        let n = read_full(&mut src, &mut buf).map_err(OsError::io("reading", file))?;
        if n == 0 {
            return Ok(());
        }
        if buf[..n].iter().any(|&b| b != 0) {
            disk.seek(SeekFrom::Start(pos))
                .map_err(OsError::io("seeking", disk_path))?;
            disk.write_all(&buf[..n])
                .map_err(OsError::io("writing", disk_path))?;
        }
        pos += n as u64;
    }
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Zero `len` bytes of `disk` from `at`, writing only blocks that hold
/// data (holes stay holes), so a partition can be refilled by [`splice`].
pub(super) fn punch(disk: &File, at: u64, len: u64, disk_path: &Path) -> Result<(), OsError> {
    use std::os::unix::fs::FileExt as _;
    let mut buf = vec![0u8; 1 << 20];
    let zeros = vec![0u8; 1 << 20];
    let mut done = 0;
    while done < len {
        let n = buf
            .len()
            .min(usize::try_from(len - done).unwrap_or(usize::MAX));
        disk.read_exact_at(&mut buf[..n], at + done)
            .map_err(OsError::io("reading", disk_path))?;
        if buf[..n].iter().any(|&b| b != 0) {
            disk.write_all_at(&zeros[..n], at + done)
                .map_err(OsError::io("writing", disk_path))?;
        }
        done += n as u64;
    }
    Ok(())
}
