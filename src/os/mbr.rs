//! An MBR (DOS) partition table written byte by byte, for firmware that
//! reads no GPT reliably (the Raspberry Pi's: its EEPROM boots GPT only
//! since 2020 and numbers partitions with bugs). forge controls every
//! byte: the disk signature at 0x1B8 comes from the image seed, so Linux's
//! `PARTUUID=<signature>-<NN>` names are known when the image is built.
//!
//! Up to three primary partitions are written as such; the rest become
//! logical partitions (5, 6, …) in an extended partition (entry 4, type
//! 0x0F), each preceded by its extended boot record (EBR): entry 1 points at
//! the logical partition relative to the EBR, entry 2 at the next EBR
//! relative to the extended partition's start.
//!
//! Pure: [`Mbr::sectors`] returns the sectors to write; the disk writer puts
//! them in place.

use super::gpt::SECTOR;

/// Type of the extended partition (W95 extended, LBA).
const TYPE_EXTENDED_LBA: u8 = 0x0F;
/// Type of a link to the next EBR (plain extended, as fdisk writes it).
const TYPE_EBR_LINK: u8 = 0x05;
/// Primary entries before the extended one.
const PRIMARIES: usize = 3;

/// One partition, in table order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MbrPartition {
    /// The type byte (`0x0C` FAT32 LBA, `0x83` Linux).
    pub kind: u8,
    /// First sector.
    pub first_lba: u64,
    /// Number of sectors.
    pub sectors: u64,
    /// Where its EBR goes, for a logical partition (before `first_lba`, after
    /// the previous partition); ignored for the first three.
    pub ebr_lba: u64,
}

/// A whole table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mbr {
    /// The disk signature (0x1B8, little-endian), never zero.
    pub signature: u32,
    /// Size of the disk in sectors.
    pub total_sectors: u64,
    /// Partitions: the first three primary, the rest logical.
    pub partitions: Vec<MbrPartition>,
}

/// A layout no MBR can hold (forge computes layouts, so a bug or an absurd
/// size).
#[derive(Debug, thiserror::Error)]
pub enum MbrError {
    /// A partition outside the disk, overlapping another, or past 2 TiB.
    #[error("MBR partition {0} is outside the disk, past 2 TiB or overlaps another")]
    Placement(usize),
    /// A zero disk signature (Linux would print `00000000`; tools treat it as unset).
    #[error("the MBR disk signature must not be zero")]
    Signature,
}

impl Mbr {
    /// The partition number Linux gives the `index`-th partition (from 0):
    /// 1–3 for primaries, 5 on for logical ones (4 is the extended).
    pub fn number(index: usize) -> usize {
        if index < PRIMARIES {
            index + 1
        } else {
            index + 2
        }
    }

    /// `PARTUUID` of the `index`-th partition: `<signature>-<NN>`.
    pub fn partuuid(&self, index: usize) -> String {
        format!("{:08x}-{:02x}", self.signature, Self::number(index))
    }

    /// Check that the layout fits: in order, not overlapping (EBRs
    /// included), within the disk and below 2^32 sectors.
    pub fn check(&self) -> Result<(), MbrError> {
        if self.signature == 0 {
            return Err(MbrError::Signature);
        }
        let mut next_free = 1u64;
        for (i, p) in self.partitions.iter().enumerate() {
            let start = if i < PRIMARIES {
                p.first_lba
            } else {
                p.ebr_lba
            };
            let ok = start >= next_free
                && p.first_lba >= start
                && (i < PRIMARIES || p.first_lba > p.ebr_lba)
                && p.sectors > 0
                && p.first_lba + p.sectors <= self.total_sectors
                && p.first_lba + p.sectors <= u64::from(u32::MAX);
            if !ok {
                return Err(MbrError::Placement(Self::number(i)));
            }
            next_free = p.first_lba + p.sectors;
        }
        Ok(())
    }

    /// Every sector to write, as (byte offset on the disk, 512 bytes): the
    /// MBR, then each EBR.
    pub fn sectors(&self) -> Vec<(u64, Vec<u8>)> {
        let mut mbr = boot_record();
        mbr[0x1B8..0x1BC].copy_from_slice(&self.signature.to_le_bytes());
        for (i, p) in self.partitions.iter().take(PRIMARIES).enumerate() {
            entry(&mut mbr, i, p.kind, p.first_lba, p.sectors, 0);
        }
        let logical = self.partitions.get(PRIMARIES..).unwrap_or_default();
        let mut out = Vec::new();
        if let (Some(first), Some(last)) = (logical.first(), logical.last()) {
            let ext_start = first.ebr_lba;
            let ext_end = last.first_lba + last.sectors;
            let n = PRIMARIES;
            entry(
                &mut mbr,
                n,
                TYPE_EXTENDED_LBA,
                ext_start,
                ext_end - ext_start,
                0,
            );
            for (k, p) in logical.iter().enumerate() {
                let mut ebr = boot_record();
                let rel = p.first_lba - p.ebr_lba;
                entry_at(&mut ebr, 0, p.kind, p.ebr_lba, rel, p.sectors);
                if let Some(next) = logical.get(k + 1) {
                    let len = next.first_lba + next.sectors - next.ebr_lba;
                    entry_at(
                        &mut ebr,
                        1,
                        TYPE_EBR_LINK,
                        ext_start,
                        next.ebr_lba - ext_start,
                        len,
                    );
                }
                out.push((p.ebr_lba * SECTOR, ebr));
            }
        }
        out.insert(0, (0, mbr));
        out
    }
}

/// At most this many logical partitions are followed (a loop of EBRs in
/// a hostile disk ends here).
const MAX_LOGICAL: usize = 64;

/// Read the table of a disk: sector 0 and the EBR chain of its extended
/// partition, every entry checked to lie inside the disk of `disk_sectors`.
/// `read(lba)` returns one sector. Partitions come back in Linux's
/// numbering order (1–3, then 5…); an empty primary entry ends the
/// primaries. The extended entry itself is not returned.
pub fn parse(
    disk_sectors: u64,
    mut read: impl FnMut(u64) -> std::io::Result<Vec<u8>>,
) -> Result<Mbr, ReadError> {
    let mbr = read(0)?;
    if mbr.len() != SECTOR as usize || mbr[510..] != [0x55, 0xAA] {
        return Err(ReadError::Bad(
            "no MBR boot signature (0x55AA) in sector 0".into(),
        ));
    }
    let signature = u32::from_le_bytes([mbr[0x1B8], mbr[0x1B9], mbr[0x1BA], mbr[0x1BB]]);
    let field = |rec: &[u8], slot: usize| {
        let e = &rec[446 + 16 * slot..446 + 16 * (slot + 1)];
        let rel = u64::from(u32::from_le_bytes([e[8], e[9], e[10], e[11]]));
        let len = u64::from(u32::from_le_bytes([e[12], e[13], e[14], e[15]]));
        (e[4], rel, len)
    };
    let inside = |start: u64, len: u64| len > 0 && start > 0 && start + len <= disk_sectors;
    let mut partitions = Vec::new();
    let mut extended = None;
    for slot in 0..4 {
        let (kind, start, len) = field(&mbr, slot);
        if kind == 0 {
            continue;
        }
        if !inside(start, len) {
            return Err(ReadError::Bad(format!(
                "partition {} lies outside the disk",
                slot + 1
            )));
        }
        if kind == TYPE_EXTENDED_LBA || kind == TYPE_EBR_LINK {
            extended = Some((start, len));
        } else if slot < PRIMARIES {
            partitions.push(MbrPartition {
                kind,
                first_lba: start,
                sectors: len,
                ebr_lba: 0,
            });
        }
    }
    if let Some((ext, ext_len)) = extended {
        let mut ebr_lba = ext;
        for _ in 0..MAX_LOGICAL {
            let ebr = read(ebr_lba)?;
            if ebr.len() != SECTOR as usize || ebr[510..] != [0x55, 0xAA] {
                return Err(ReadError::Bad(format!(
                    "no EBR signature at sector {ebr_lba}"
                )));
            }
            let (kind, rel, len) = field(&ebr, 0);
            let first = ebr_lba + rel;
            if kind == 0 || rel == 0 || !inside(first, len) || first + len > ext + ext_len {
                return Err(ReadError::Bad(format!(
                    "the EBR at sector {ebr_lba} points outside its extended partition"
                )));
            }
            partitions.push(MbrPartition {
                kind,
                first_lba: first,
                sectors: len,
                ebr_lba,
            });
            let (link, next, _) = field(&ebr, 1);
            if link == 0 {
                return Ok(Mbr {
                    signature,
                    total_sectors: disk_sectors,
                    partitions,
                });
            }
            if next == 0 || next >= ext_len || ext + next <= ebr_lba {
                return Err(ReadError::Bad(format!(
                    "the EBR at sector {ebr_lba} links backwards or outside"
                )));
            }
            ebr_lba = ext + next;
        }
        return Err(ReadError::Bad(format!(
            "more than {MAX_LOGICAL} logical partitions"
        )));
    }
    Ok(Mbr {
        signature,
        total_sectors: disk_sectors,
        partitions,
    })
}

/// Why a disk's MBR could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Reading a sector failed.
    #[error("reading the partition table")]
    Io(#[from] std::io::Error),
    /// The table is not one forge can use.
    #[error("{0}")]
    Bad(String),
}

/// An empty boot record with its 0x55AA signature.
fn boot_record() -> Vec<u8> {
    let mut s = vec![0u8; SECTOR as usize];
    s[510] = 0x55;
    s[511] = 0xAA;
    s
}

/// A primary entry: `start` is absolute (`base` 0).
fn entry(rec: &mut [u8], slot: usize, kind: u8, start: u64, sectors: u64, base: u64) {
    entry_at(rec, slot, kind, base, start - base, sectors);
}

/// Entry `slot` of a boot record: type, CHS and LBA of a partition that
/// starts `rel` sectors after `base` and spans `sectors`.
fn entry_at(rec: &mut [u8], slot: usize, kind: u8, base: u64, rel: u64, sectors: u64) {
    let e = &mut rec[446 + 16 * slot..446 + 16 * (slot + 1)];
    let first = base + rel;
    e[1..4].copy_from_slice(&chs(first));
    e[4] = kind;
    e[5..8].copy_from_slice(&chs(first + sectors - 1));
    let rel = u32::try_from(rel).unwrap_or(u32::MAX);
    let sectors = u32::try_from(sectors).unwrap_or(u32::MAX);
    e[8..12].copy_from_slice(&rel.to_le_bytes());
    e[12..16].copy_from_slice(&sectors.to_le_bytes());
}

/// Cylinder-head-sector bytes of `lba` in the 255-head, 63-sector geometry
/// fdisk uses; past cylinder 1023, the conventional 1023/254/63.
fn chs(lba: u64) -> [u8; 3] {
    let (c, h, s) = if lba / (255 * 63) > 1023 {
        (1023, 254, 63)
    } else {
        (lba / (255 * 63), (lba / 63) % 255, lba % 63 + 1)
    };
    [h as u8, (s as u8) | (((c >> 8) as u8 & 3) << 6), c as u8]
}

#[cfg(test)]
mod tests;
