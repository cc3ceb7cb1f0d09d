//! A GUID partition table written byte by byte, so forge controls every
//! byte of the disk (no sgdisk run, no randomness): the protective MBR, the
//! primary header and entry array at LBA 1–33, the backup entry array and
//! header in the last 33 sectors, and their CRC32s (UEFI 2.10 §5.3).
//!
//! Pure: [`Gpt::primary`] and [`Gpt::backup`] return the bytes; the disk
//! writer puts them in place.

use super::seed::Guid;

/// Bytes per logical sector.
pub const SECTOR: u64 = 512;
/// Entries in the array (the UEFI minimum array size: 128 × 128 bytes).
const ENTRIES: usize = 128;
/// Bytes per entry.
const ENTRY_SIZE: usize = 128;
/// Sectors of the entry array.
const ARRAY_SECTORS: u64 = (ENTRIES * ENTRY_SIZE) as u64 / SECTOR;
/// The first LBA a partition may use (MBR, header, array).
pub const FIRST_USABLE: u64 = 2 + ARRAY_SECTORS;
/// Sectors at the end of the disk taken by the backup array and header.
pub const BACKUP_SECTORS: u64 = 1 + ARRAY_SECTORS;

/// GPT attribute bit 60: read-only (Discoverable Partitions: mount read-only).
pub const ATTR_READ_ONLY: u64 = 1 << 60;

/// One partition entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    /// Partition type.
    pub type_guid: Guid,
    /// Unique partition GUID (`PARTUUID`).
    pub guid: Guid,
    /// Label (`PARTLABEL`), at most 36 UTF-16 code units.
    pub name: String,
    /// First sector.
    pub first_lba: u64,
    /// Last sector, inclusive.
    pub last_lba: u64,
    /// Attribute bits.
    pub attributes: u64,
}

/// A whole partition table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gpt {
    /// Disk GUID.
    pub disk_guid: Guid,
    /// Size of the disk in sectors.
    pub total_sectors: u64,
    /// Partitions, numbered from 1 in this order.
    pub partitions: Vec<Partition>,
}

/// A layout that no table can hold (forge computes layouts, so this is a bug
/// or an absurd size, never user input alone).
#[derive(Debug, thiserror::Error)]
pub enum GptError {
    /// A partition outside the usable sectors or overlapping another.
    #[error("partition `{0}` is outside the usable sectors or overlaps another")]
    Placement(String),
    /// A label longer than 36 UTF-16 code units.
    #[error("partition label `{0}` is longer than 36 UTF-16 code units")]
    Label(String),
    /// More than 128 partitions.
    #[error("more than {ENTRIES} partitions")]
    TooMany,
}

impl Gpt {
    /// Check the layout: labels fit, partitions lie within the usable
    /// sectors and do not overlap.
    pub fn check(&self) -> Result<(), GptError> {
        if self.partitions.len() > ENTRIES {
            return Err(GptError::TooMany);
        }
        let last_usable = self.last_usable();
        let mut spans: Vec<(u64, u64, &str)> = Vec::new();
        for p in &self.partitions {
            if p.name.encode_utf16().count() > 36 {
                return Err(GptError::Label(p.name.clone()));
            }
            let inside = p.first_lba >= FIRST_USABLE
                && p.first_lba <= p.last_lba
                && p.last_lba <= last_usable;
            let overlaps = spans
                .iter()
                .any(|&(a, b, _)| p.first_lba <= b && a <= p.last_lba);
            if !inside || overlaps {
                return Err(GptError::Placement(p.name.clone()));
            }
            spans.push((p.first_lba, p.last_lba, &p.name));
        }
        Ok(())
    }

    fn last_usable(&self) -> u64 {
        self.total_sectors.saturating_sub(BACKUP_SECTORS + 1)
    }

    /// The entry array (128 × 128 bytes).
    fn array(&self) -> Vec<u8> {
        let mut a = vec![0u8; ENTRIES * ENTRY_SIZE];
        for (i, p) in self.partitions.iter().enumerate() {
            let e = &mut a[i * ENTRY_SIZE..(i + 1) * ENTRY_SIZE];
            e[0..16].copy_from_slice(&p.type_guid.to_gpt_bytes());
            e[16..32].copy_from_slice(&p.guid.to_gpt_bytes());
            e[32..40].copy_from_slice(&p.first_lba.to_le_bytes());
            e[40..48].copy_from_slice(&p.last_lba.to_le_bytes());
            e[48..56].copy_from_slice(&p.attributes.to_le_bytes());
            for (j, unit) in p.name.encode_utf16().take(36).enumerate() {
                e[56 + 2 * j..58 + 2 * j].copy_from_slice(&unit.to_le_bytes());
            }
        }
        a
    }

    /// One header sector: `mine` is where it lives, `other` where its twin is.
    fn header(&self, mine: u64, other: u64, array_lba: u64, array_crc: u32) -> Vec<u8> {
        let mut h = vec![0u8; SECTOR as usize];
        h[0..8].copy_from_slice(b"EFI PART");
        h[8..12].copy_from_slice(&0x0001_0000u32.to_le_bytes());
        h[12..16].copy_from_slice(&92u32.to_le_bytes());
        h[24..32].copy_from_slice(&mine.to_le_bytes());
        h[32..40].copy_from_slice(&other.to_le_bytes());
        h[40..48].copy_from_slice(&FIRST_USABLE.to_le_bytes());
        h[48..56].copy_from_slice(&self.last_usable().to_le_bytes());
        h[56..72].copy_from_slice(&self.disk_guid.to_gpt_bytes());
        h[72..80].copy_from_slice(&array_lba.to_le_bytes());
        h[80..84].copy_from_slice(&(ENTRIES as u32).to_le_bytes());
        h[84..88].copy_from_slice(&(ENTRY_SIZE as u32).to_le_bytes());
        h[88..92].copy_from_slice(&array_crc.to_le_bytes());
        let crc = crc32(&h[..92]);
        h[16..20].copy_from_slice(&crc.to_le_bytes());
        h
    }

    /// The protective MBR: one partition of type 0xEE over the whole disk.
    fn protective_mbr(&self) -> Vec<u8> {
        let mut m = vec![0u8; SECTOR as usize];
        let e = &mut m[446..462];
        e[1..4].copy_from_slice(&[0x00, 0x02, 0x00]);
        e[4] = 0xEE;
        e[5..8].copy_from_slice(&[0xFF, 0xFF, 0xFF]);
        e[8..12].copy_from_slice(&1u32.to_le_bytes());
        let size = u32::try_from(self.total_sectors - 1).unwrap_or(u32::MAX);
        e[12..16].copy_from_slice(&size.to_le_bytes());
        m[510] = 0x55;
        m[511] = 0xAA;
        m
    }

    /// Sectors 0 to 33: protective MBR, primary header, entry array.
    pub fn primary(&self) -> Vec<u8> {
        let array = self.array();
        let backup_lba = self.total_sectors - 1;
        let mut out = self.protective_mbr();
        out.extend(self.header(1, backup_lba, 2, crc32(&array)));
        out.extend(array);
        out
    }

    /// The last 33 sectors: the entry array, then the backup header.
    pub fn backup(&self) -> Vec<u8> {
        let array = self.array();
        let backup_lba = self.total_sectors - 1;
        let array_lba = self.total_sectors - BACKUP_SECTORS;
        let header = self.header(backup_lba, 1, array_lba, crc32(&array));
        let mut out = array;
        out.extend(header);
        out
    }
}

pub(crate) fn crc32(bytes: &[u8]) -> u32 {
    let mut c = flate2::Crc::new();
    c.update(bytes);
    c.sum()
}

mod read;
pub use read::read_table;

#[cfg(test)]
mod tests;
