//! The MBR writer against util-linux's reading of it (`sfdisk -d`), and
//! its refusals.

use super::*;

/// 1 MiB in sectors.
const MIB: u64 = 2048;

fn table() -> Mbr {
    let part = |kind, first_lba, sectors, ebr_lba| MbrPartition {
        kind,
        first_lba,
        sectors,
        ebr_lba,
    };
    Mbr {
        signature: 0x1234_abcd,
        total_sectors: 64 * MIB,
        partitions: vec![
            part(0x0C, 8 * MIB, 8 * MIB, 0),
            part(0x0C, 16 * MIB, 8 * MIB, 0),
            part(0x83, 24 * MIB, 8 * MIB, 0),
            part(0x83, 40 * MIB, 8 * MIB, 32 * MIB),
            part(0x83, 56 * MIB, 4 * MIB, 48 * MIB),
        ],
    }
}

#[test]
fn signature_and_entries_are_where_the_spec_puts_them() {
    let t = table();
    t.check().unwrap();
    let sectors = t.sectors();
    assert_eq!(
        sectors.iter().map(|(at, _)| *at).collect::<Vec<_>>(),
        [0, 32 * MIB * 512, 48 * MIB * 512]
    );
    let mbr = &sectors[0].1;
    assert_eq!(&mbr[0x1B8..0x1BC], &[0xcd, 0xab, 0x34, 0x12]);
    assert_eq!(&mbr[510..], &[0x55, 0xAA]);
    assert_eq!(mbr[446 + 4], 0x0C);
    assert_eq!(mbr[446 + 48 + 4], TYPE_EXTENDED_LBA);
    assert_eq!(t.partuuid(0), "1234abcd-01");
    assert_eq!(t.partuuid(3), "1234abcd-05");
    assert_eq!(Mbr::number(4), 6);
    // The second EBR ends the chain: no link entry.
    assert!(sectors[2].1[446 + 16..446 + 32].iter().all(|&b| b == 0));
}

#[test]
fn sfdisk_reads_the_table_back() {
    if !crate::test_tools::require_tool("sfdisk") {
        return;
    }
    let t = table();
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("disk.img");
    let f = std::fs::File::create(&disk).unwrap();
    f.set_len(t.total_sectors * SECTOR).unwrap();
    for (at, bytes) in t.sectors() {
        use std::os::unix::fs::FileExt as _;
        f.write_all_at(&bytes, at).unwrap();
    }
    let out = std::process::Command::new("sfdisk")
        .arg("-d")
        .arg(&disk)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<String> = text
        .lines()
        .filter(|l| l.starts_with("label") || l.contains(" : "))
        .map(|l| l.split_once(" : ").map_or(l, |(_, r)| r).to_string())
        .collect();
    assert_eq!(
        lines,
        [
            "label: dos",
            "label-id: 0x1234abcd",
            "start=       16384, size=       16384, type=c",
            "start=       32768, size=       16384, type=c",
            "start=       49152, size=       16384, type=83",
            "start=       65536, size=       57344, type=f",
            "start=       81920, size=       16384, type=83",
            "start=      114688, size=        8192, type=83",
        ],
        "{text}"
    );
}

#[test]
fn bad_layouts_are_refused() {
    let mut t = table();
    t.signature = 0;
    assert!(matches!(t.check(), Err(MbrError::Signature)));
    let mut t = table();
    t.partitions[1].first_lba = 10 * MIB;
    assert!(matches!(t.check(), Err(MbrError::Placement(2))));
    let mut t = table();
    t.partitions[3].ebr_lba = 30 * MIB;
    assert!(matches!(t.check(), Err(MbrError::Placement(5))));
    let mut t = table();
    t.partitions[4].sectors = 16 * MIB;
    assert!(matches!(t.check(), Err(MbrError::Placement(6))));
    let mut t = table();
    t.total_sectors = 1 << 33;
    t.partitions[4].first_lba = (1 << 32) - 8;
    assert!(matches!(t.check(), Err(MbrError::Placement(6))));
}

#[test]
fn the_reader_gives_back_what_the_writer_wrote_and_refuses_loops() {
    let t = table();
    let mut disk = vec![0u8; (t.total_sectors * SECTOR) as usize];
    for (at, bytes) in t.sectors() {
        disk[at as usize..at as usize + 512].copy_from_slice(&bytes);
    }
    let read = |d: &[u8]| {
        let d = d.to_vec();
        move |lba: u64| Ok(d[(lba * SECTOR) as usize..((lba + 1) * SECTOR) as usize].to_vec())
    };
    let back = parse(t.total_sectors, read(&disk)).unwrap();
    assert_eq!(back, t);
    // The second EBR links back to the first: a loop.
    let mut looped = disk.clone();
    let second = (48 * MIB * SECTOR) as usize;
    let e = &mut looped[second + 446 + 16..second + 446 + 32];
    e[4] = TYPE_EBR_LINK;
    e[8..12].copy_from_slice(&0u32.to_le_bytes());
    e[12..16].copy_from_slice(&1u32.to_le_bytes());
    let err = parse(t.total_sectors, read(&looped)).unwrap_err();
    assert!(err.to_string().contains("links backwards"), "{err}");
    // A partition past the end of the disk.
    let err = parse(60 * MIB - 1, read(&disk)).unwrap_err();
    assert!(err.to_string().contains("outside"), "{err}");
    let mut blank = disk;
    blank[510] = 0;
    assert!(parse(t.total_sectors, read(&blank)).is_err());
}
