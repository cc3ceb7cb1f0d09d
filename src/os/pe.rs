//! Reading and patching the sections of a UKI (a PE file): the `.cmdline`
//! a slot's UKI carries, and the same UKI for the other slot, which differs
//! only in the slot's PARTUUID on that line (same length, so the section's
//! bytes are replaced in place and the PE checksum recomputed).
//!
//! Every offset comes from the file, so every read is bounds-checked: a
//! truncated or hostile file gives `None`, never a panic.

/// The raw bytes of section `name` (`.cmdline`), as stored in the file
/// (at most its virtual size: the file may pad the section).
pub fn section<'a>(pe: &'a [u8], name: &str) -> Option<&'a [u8]> {
    let (start, len) = section_range(pe, name)?;
    pe.get(start..start + len)
}

fn u16_at(b: &[u8], o: usize) -> Option<usize> {
    Some(u16::from_le_bytes(b.get(o..o + 2)?.try_into().ok()?) as usize)
}

fn u32_at(b: &[u8], o: usize) -> Option<usize> {
    Some(u32::from_le_bytes(b.get(o..o + 4)?.try_into().ok()?) as usize)
}

/// Offset and length in the file of section `name`.
fn section_range(pe: &[u8], name: &str) -> Option<(usize, usize)> {
    let header = u32_at(pe, 0x3C)?;
    if pe.get(header..header.checked_add(4)?)? != b"PE\0\0" {
        return None;
    }
    let coff = header + 4;
    let sections = u16_at(pe, coff + 2)?;
    let optional = u16_at(pe, coff + 16)?;
    let table = coff.checked_add(20)?.checked_add(optional)?;
    (0..sections).find_map(|i| {
        let s = table.checked_add(i.checked_mul(40)?)?;
        let raw_name = pe.get(s..s + 8)?;
        let end = raw_name.iter().position(|&b| b == 0).unwrap_or(8);
        if &raw_name[..end] != name.as_bytes() {
            return None;
        }
        let virtual_size = u32_at(pe, s + 8)?;
        let raw_size = u32_at(pe, s + 16)?;
        let raw_at = u32_at(pe, s + 20)?;
        let len = virtual_size.min(raw_size);
        (raw_at.checked_add(len)? <= pe.len()).then_some((raw_at, len))
    })
}

/// `pe` with every `from` in its `.cmdline` replaced by `to` (same length),
/// the checksum recomputed and the time stamp kept. `None` when `pe` is not
/// a PE file with a `.cmdline`, the lengths differ, or `from` is absent.
pub fn replace_in_cmdline(pe: &[u8], from: &str, to: &str) -> Option<Vec<u8>> {
    if from.len() != to.len() || from.is_empty() {
        return None;
    }
    let (start, len) = section_range(pe, ".cmdline")?;
    let line = std::str::from_utf8(&pe[start..start + len]).ok()?;
    if !line.contains(from) {
        return None;
    }
    let patched = line.replace(from, to);
    let mut out = pe.to_vec();
    out[start..start + len].copy_from_slice(patched.as_bytes());
    let header = u32_at(&out, 0x3C)?;
    let stamp = u32::try_from(u32_at(&out, header + 8)?).ok()?;
    super::uki::pin_pe_time(&mut out, stamp)?;
    Some(out)
}

/// The `.cmdline` of a UKI as text, without trailing NULs or whitespace.
pub fn cmdline(pe: &[u8]) -> Option<String> {
    let raw = section(pe, ".cmdline")?;
    let text = std::str::from_utf8(raw).ok()?;
    Some(text.trim_end_matches(['\0', '\n', ' ']).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal PE: DOS header pointing at a PE header with one section.
    fn tiny_pe(cmdline: &[u8]) -> Vec<u8> {
        let mut pe = vec![0u8; 0x200];
        pe[0x3C..0x40].copy_from_slice(&0x40u32.to_le_bytes());
        pe[0x40..0x44].copy_from_slice(b"PE\0\0");
        let coff = 0x44;
        pe[coff + 2..coff + 4].copy_from_slice(&1u16.to_le_bytes());
        let optional = 96u16;
        pe[coff + 16..coff + 18].copy_from_slice(&optional.to_le_bytes());
        let s = coff + 20 + optional as usize;
        pe[s..s + 8].copy_from_slice(b".cmdline");
        let n = cmdline.len() as u32;
        pe[s + 8..s + 12].copy_from_slice(&n.to_le_bytes());
        pe[s + 16..s + 20].copy_from_slice(&n.to_le_bytes());
        pe[s + 20..s + 24].copy_from_slice(&0x200u32.to_le_bytes());
        pe.extend_from_slice(cmdline);
        pe
    }

    #[test]
    fn cmdline_is_read_and_patched_in_place() {
        let pe = tiny_pe(b"console=ttyS0 mount.usr=PARTUUID=aaaa usrhash=00\0");
        assert_eq!(
            cmdline(&pe).unwrap(),
            "console=ttyS0 mount.usr=PARTUUID=aaaa usrhash=00"
        );
        let b = replace_in_cmdline(&pe, "PARTUUID=aaaa", "PARTUUID=bbbb").unwrap();
        assert_eq!(b.len(), pe.len());
        assert_eq!(
            cmdline(&b).unwrap(),
            "console=ttyS0 mount.usr=PARTUUID=bbbb usrhash=00"
        );
        assert!(replace_in_cmdline(&pe, "PARTUUID=aaaa", "PARTUUID=bb").is_none());
        assert!(replace_in_cmdline(&pe, "PARTUUID=cccc", "PARTUUID=dddd").is_none());
    }

    #[test]
    fn hostile_headers_are_none_not_a_panic() {
        assert!(cmdline(b"MZ").is_none());
        let mut pe = tiny_pe(b"x");
        pe[0x3C..0x40].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(cmdline(&pe).is_none());
        let mut pe = tiny_pe(b"x");
        let s = 0x44 + 20 + 96;
        pe[s + 20..s + 24].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(cmdline(&pe).is_none());
        let mut pe = tiny_pe(b"x");
        pe[0x44 + 2..0x44 + 4].copy_from_slice(&u16::MAX.to_le_bytes());
        assert!(section(&pe, ".linux").is_none());
    }
}
