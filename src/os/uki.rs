//! The unified kernel image: systemd's EFI stub with `.osrel`, `.cmdline`
//! (carrying `usrhash=`, so signing the UKI covers the root hash), `.linux`
//! and `.initrd` added by `objcopy` at the VMAs systemd 252's stub expects,
//! plus systemd-boot as the ESP's default loader.
//!
//! The kernel comes from the packages: the one
//! `/usr/lib/modules/<version>/vmlinuz` in `/usr`, with the `initrd` beside
//! it when there is one. Without a kernel there is no UKI (the manifest says
//! so); two kernels are an error.

use std::path::{Path, PathBuf};

use super::OsError;
use crate::process::Cmd;

/// systemd-boot's EFI stub (Debian package systemd-boot-efi).
pub const STUB: &str = "/usr/lib/systemd/boot/efi/linuxx64.efi.stub";
/// systemd-boot itself, installed as `EFI/BOOT/BOOTX64.EFI`.
pub const BOOT_EFI: &str = "/usr/lib/systemd/boot/efi/systemd-bootx64.efi";

/// A kernel found in `/usr`.
#[derive(Debug, Clone)]
pub struct Kernel {
    /// The `<version>` folder name.
    pub version: String,
    /// The kernel image.
    pub vmlinuz: PathBuf,
    /// The initramfs beside it, if any.
    pub initrd: Option<PathBuf>,
}

/// The one `lib/modules/*/vmlinuz` under the `/usr` tree `usr`, if any.
pub fn find_kernel(usr: &Path) -> Result<Option<Kernel>, OsError> {
    let modules = usr.join("lib/modules");
    let Ok(dir) = std::fs::read_dir(&modules) else {
        return Ok(None);
    };
    let mut found: Vec<Kernel> = Vec::new();
    for e in dir {
        let e = e.map_err(OsError::io("reading", &modules))?;
        let vmlinuz = e.path().join("vmlinuz");
        if vmlinuz.is_file() {
            let initrd = e.path().join("initrd");
            found.push(Kernel {
                version: e.file_name().to_string_lossy().into_owned(),
                vmlinuz,
                initrd: initrd.is_file().then_some(initrd),
            });
        }
    }
    found.sort_by(|a, b| a.version.cmp(&b.version));
    if found.len() > 1 {
        return Err(OsError::Kernels(
            found.iter().map(|k| k.version.clone()).collect(),
        ));
    }
    Ok(found.pop())
}

/// Build the UKI at `out` from `kernel`, `/usr/lib/os-release` and `cmdline`.
pub fn make(
    kernel: &Kernel,
    os_release: &Path,
    cmdline: &str,
    work: &Path,
    out: &Path,
    epoch: u64,
) -> Result<(), OsError> {
    for f in [STUB, BOOT_EFI] {
        if !Path::new(f).is_file() {
            return Err(OsError::MissingFile {
                path: PathBuf::from(f),
                package: "systemd-boot-efi".into(),
            });
        }
    }
    let cmdline_file = work.join("cmdline");
    std::fs::write(&cmdline_file, format!("{cmdline}\n"))
        .map_err(OsError::io("writing", &cmdline_file))?;
    let mut sections: Vec<(&str, &Path, &str)> = vec![
        (".osrel", os_release, "0x20000"),
        (".cmdline", &cmdline_file, "0x30000"),
        (".linux", &kernel.vmlinuz, "0x2000000"),
    ];
    if let Some(initrd) = &kernel.initrd {
        sections.push((".initrd", initrd, "0x3000000"));
    }
    let mut cmd = Cmd::new("objcopy");
    for (name, file, vma) in sections {
        cmd.arg("--add-section")
            .arg(format!("{name}={}", file.display()))
            .arg("--change-section-vma")
            .arg(format!("{name}={vma}"));
    }
    cmd.arg(STUB).arg(out).run()?;
    // objcopy (binutils 2.40) stamps the PE header with the current time
    // whatever SOURCE_DATE_EPOCH says: pin it, and the checksum with it.
    let mut pe = std::fs::read(out).map_err(OsError::io("reading", out))?;
    pin_pe_time(&mut pe, u32::try_from(epoch).unwrap_or(u32::MAX))
        .ok_or_else(|| OsError::io("reading", out)(std::io::Error::other("not a PE file")))?;
    std::fs::write(out, pe).map_err(OsError::io("writing", out))?;
    Ok(())
}

/// Set a PE file's `TimeDateStamp` to `time` and recompute its checksum
/// (the 16-bit one's-complement sum of the file plus its length, with the
/// checksum field taken as zero). `None` when `pe` is not a PE file.
pub fn pin_pe_time(pe: &mut [u8], time: u32) -> Option<()> {
    let at = |b: &[u8], o: usize| Some(u32::from_le_bytes(b.get(o..o + 4)?.try_into().ok()?));
    let header = at(pe, 0x3C)? as usize;
    if pe.get(header..header + 4)? != b"PE\0\0" {
        return None;
    }
    let checksum = header + 24 + 64;
    pe.get_mut(header + 8..header + 12)?
        .copy_from_slice(&time.to_le_bytes());
    pe.get_mut(checksum..checksum + 4)?.fill(0);
    let mut sum: u64 = 0;
    for word in pe.chunks(2) {
        let w = u16::from_le_bytes([word[0], *word.get(1).unwrap_or(&0)]);
        sum += u64::from(w);
        sum = (sum & 0xffff) + (sum >> 16);
    }
    let total = (sum & 0xffff) as u32 + pe.len() as u32;
    pe[checksum..checksum + 4].copy_from_slice(&total.to_le_bytes());
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The checksum forge computes equals objcopy's own for the same bytes.
    #[test]
    fn pinned_pe_checksum_matches_objcopys() {
        if !crate::test_tools::require_tool("objcopy")
            || !crate::test_tools::require_file(Path::new(STUB))
        {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("u.efi");
        Cmd::new("objcopy").arg(STUB).arg(&out).run().unwrap();
        let made = std::fs::read(&out).unwrap();
        let header = u32::from_le_bytes(made[0x3C..0x40].try_into().unwrap()) as usize;
        let stamp = u32::from_le_bytes(made[header + 8..header + 12].try_into().unwrap());
        let mut again = made.clone();
        pin_pe_time(&mut again, stamp).unwrap();
        assert_eq!(again, made, "same time, same checksum as objcopy wrote");
        pin_pe_time(&mut again, 1_700_000_000).unwrap();
        assert_ne!(again, made);
        assert_eq!(
            &again[header + 8..header + 12],
            &1_700_000_000u32.to_le_bytes()
        );
        assert!(pin_pe_time(&mut b"not a PE file at all, no header".to_vec(), 0).is_none());
    }
}
