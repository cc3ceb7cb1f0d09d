//! The table's bytes: CRCs, both headers, and sgdisk's own check of a disk
//! file carrying them.

use super::*;
use crate::os::seed::Seed;

fn table() -> Gpt {
    let s = Seed::for_image("t");
    let linux = Guid::from_fields(0x0FC63DAF, 0x8483, 0x4772, 0x8E79, 0x3D69D8477DE4);
    Gpt {
        disk_guid: s.guid("disk"),
        total_sectors: 8192,
        partitions: vec![
            Partition {
                type_guid: linux,
                guid: s.guid("a"),
                name: "USR-A".into(),
                first_lba: 2048,
                last_lba: 4095,
                attributes: ATTR_READ_ONLY,
            },
            Partition {
                type_guid: linux,
                guid: s.guid("b"),
                name: "ROOT".into(),
                first_lba: 4096,
                last_lba: 6143,
                attributes: 0,
            },
        ],
    }
}

#[test]
fn crc32_is_the_ieee_polynomial() {
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
}

#[test]
fn headers_point_at_each_other_and_their_crcs_hold() {
    let t = table();
    t.check().unwrap();
    let p = t.primary();
    let b = t.backup();
    assert_eq!(p.len() as u64, FIRST_USABLE * SECTOR);
    assert_eq!(b.len() as u64, BACKUP_SECTORS * SECTOR);
    assert_eq!(&p[510..512], &[0x55, 0xAA]);
    assert_eq!(p[446 + 4], 0xEE);
    let u64_at = |h: &[u8], o: usize| u64::from_le_bytes(h[o..o + 8].try_into().unwrap());
    let primary = &p[512..1024];
    let backup = &b[b.len() - 512..];
    for (h, mine, other, array) in [(primary, 1, 8191, 2), (backup, 8191, 1, 8191 - 32)] {
        assert_eq!(&h[0..8], b"EFI PART");
        assert_eq!(u64_at(h, 24), mine);
        assert_eq!(u64_at(h, 32), other);
        assert_eq!(u64_at(h, 40), 34);
        assert_eq!(u64_at(h, 48), 8192 - 34);
        assert_eq!(u64_at(h, 72), array);
        let mut zeroed = h[..92].to_vec();
        zeroed[16..20].fill(0);
        assert_eq!(crc32(&zeroed).to_le_bytes(), h[16..20]);
    }
    let array = &p[1024..];
    assert_eq!(crc32(array).to_le_bytes(), primary[88..92]);
    assert_eq!(array, &b[..b.len() - 512]);
    // Entry 1: the name in UTF-16LE, the read-only attribute.
    assert_eq!(
        &array[56..66],
        "USR-A"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect::<Vec<_>>()
    );
    assert_eq!(u64_at(array, 48), ATTR_READ_ONLY);
}

#[test]
fn bad_layouts_are_refused() {
    let mut t = table();
    t.partitions[1].first_lba = 4000;
    assert!(matches!(t.check(), Err(GptError::Placement(n)) if n == "ROOT"));
    let mut t = table();
    t.partitions[1].last_lba = 8192 - 33;
    assert!(t.check().is_err());
    let mut t = table();
    t.partitions[0].name = "x".repeat(37);
    assert!(matches!(t.check(), Err(GptError::Label(_))));
}

#[test]
fn sgdisk_verifies_the_table() {
    if !crate::test_tools::require_tool("sgdisk") {
        return;
    }
    let t = table();
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("disk.raw");
    let mut bytes = vec![0u8; 8192 * 512];
    bytes[..t.primary().len()].copy_from_slice(&t.primary());
    let b = t.backup();
    let at = bytes.len() - b.len();
    bytes[at..].copy_from_slice(&b);
    std::fs::write(&disk, &bytes).unwrap();
    let out = crate::process::Cmd::new("sgdisk")
        .arg("-v")
        .arg(&disk)
        .run_stdout()
        .unwrap();
    assert!(out.contains("No problems found"), "{out}");
    let info = crate::process::Cmd::new("sgdisk")
        .args(["-i", "1"])
        .arg(&disk)
        .run_stdout()
        .unwrap();
    let guid = Seed::for_image("t").guid("a").to_string().to_uppercase();
    assert!(
        info.contains(&format!("Partition unique GUID: {guid}")),
        "{info}"
    );
    assert!(info.contains("Partition name: 'USR-A'"), "{info}");
    assert!(info.contains("First sector: 2048"), "{info}");
    assert!(info.contains("Attribute flags: 1000000000000000"), "{info}");
}
