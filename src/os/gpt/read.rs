//! Reading a disk's partition table back (for `forge os apply`): the
//! primary header at LBA 1 and its entry array, both CRCs checked, every
//! size capped before anything is allocated. The disk is untrusted input:
//! a bad table is an error naming the disk, never a panic.

use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::Path;

use super::{Partition, SECTOR, crc32};
use crate::os::OsError;
use crate::os::seed::Guid;

/// The most entries a table may declare (the UEFI minimum array is 128).
const MAX_ENTRIES: usize = 1024;

fn bad(disk: &Path, why: &str) -> OsError {
    OsError::BadDisk {
        disk: disk.to_path_buf(),
        reason: why.to_string(),
    }
}

fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap_or([0; 4]))
}

fn u64_at(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap_or([0; 8]))
}

/// The GUID in GPT's mixed-endian byte order at `b[..16]`.
fn guid_at(b: &[u8]) -> Guid {
    let mut g = [0u8; 16];
    g.copy_from_slice(&b[..16]);
    Guid([
        g[3], g[2], g[1], g[0], g[5], g[4], g[7], g[6], g[8], g[9], g[10], g[11], g[12], g[13],
        g[14], g[15],
    ])
}

/// The used partition entries of `disk`'s primary table, in entry order.
pub fn read_table(disk: &Path) -> Result<Vec<Partition>, OsError> {
    let mut f = std::fs::File::open(disk).map_err(OsError::io("opening", disk))?;
    let size = f.metadata().map_err(OsError::io("reading", disk))?.len();
    let mut header = [0u8; SECTOR as usize];
    f.seek(SeekFrom::Start(SECTOR))
        .and_then(|_| f.read_exact(&mut header))
        .map_err(|_| bad(disk, "too small for a GPT header"))?;
    if &header[..8] != b"EFI PART" {
        return Err(bad(disk, "no GPT header at LBA 1"));
    }
    let header_size = u32_at(&header, 12) as usize;
    if !(92..=SECTOR as usize).contains(&header_size) {
        return Err(bad(disk, "GPT header size out of range"));
    }
    let mut h = header[..header_size].to_vec();
    let crc = u32_at(&h, 16);
    h[16..20].fill(0);
    if crc32(&h) != crc {
        return Err(bad(disk, "GPT header CRC mismatch"));
    }
    let array_lba = u64_at(&header, 72);
    let count = u32_at(&header, 80) as usize;
    let entry_size = u32_at(&header, 84) as usize;
    if count > MAX_ENTRIES || !(128..=1024).contains(&entry_size) || !entry_size.is_multiple_of(8) {
        return Err(bad(disk, "GPT entry array size out of range"));
    }
    let array_at = array_lba
        .checked_mul(SECTOR)
        .filter(|a| a.saturating_add((count * entry_size) as u64) <= size)
        .ok_or_else(|| bad(disk, "GPT entry array outside the disk"))?;
    let mut array = vec![0u8; count * entry_size];
    f.seek(SeekFrom::Start(array_at))
        .and_then(|_| f.read_exact(&mut array))
        .map_err(OsError::io("reading", disk))?;
    if crc32(&array) != u32_at(&header, 88) {
        return Err(bad(disk, "GPT entry array CRC mismatch"));
    }
    let mut out = Vec::new();
    for e in array.chunks(entry_size) {
        if e[..16].iter().all(|&b| b == 0) {
            continue;
        }
        let (first_lba, last_lba) = (u64_at(e, 32), u64_at(e, 40));
        if last_lba < first_lba || last_lba.saturating_add(1).saturating_mul(SECTOR) > size {
            return Err(bad(disk, "a partition lies outside the disk"));
        }
        let units: Vec<u16> = e[56..128]
            .chunks(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .take_while(|&u| u != 0)
            .collect();
        out.push(Partition {
            type_guid: guid_at(&e[..16]),
            guid: guid_at(&e[16..32]),
            name: String::from_utf16_lossy(&units),
            first_lba,
            last_lba,
            attributes: u64_at(e, 48),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::Gpt;
    use super::*;

    #[test]
    fn a_written_table_reads_back_and_damage_is_named() {
        let part = |name: &str, first, last| Partition {
            type_guid: crate::os::TYPE_USR_X86_64,
            guid: Guid([7; 16]),
            name: name.into(),
            first_lba: first,
            last_lba: last,
            attributes: super::super::ATTR_READ_ONLY,
        };
        let gpt = Gpt {
            disk_guid: Guid([1; 16]),
            total_sectors: 8192,
            partitions: vec![part("USR-A", 2048, 4095), part("USR-B", 4096, 6143)],
        };
        let dir = tempfile::tempdir().unwrap();
        let disk = dir.path().join("d.raw");
        let mut bytes = vec![0u8; 8192 * 512];
        let p = gpt.primary();
        bytes[..p.len()].copy_from_slice(&p);
        std::fs::write(&disk, &bytes).unwrap();
        assert_eq!(read_table(&disk).unwrap(), gpt.partitions);

        bytes[512 + 40] ^= 1;
        std::fs::write(&disk, &bytes).unwrap();
        let e = read_table(&disk).unwrap_err().to_string();
        assert!(e.contains("GPT header CRC mismatch"), "{e}");
        bytes[512 + 40] ^= 1;
        bytes[1024 + 60] ^= 1;
        std::fs::write(&disk, &bytes).unwrap();
        let e = read_table(&disk).unwrap_err().to_string();
        assert!(
            e.contains("entry array CRC mismatch") && e.contains("d.raw"),
            "{e}"
        );
        std::fs::write(&disk, b"short").unwrap();
        assert!(read_table(&disk).is_err());
    }
}
