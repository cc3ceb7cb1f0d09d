//! The `x86_64-uefi` slot switch: systemd-boot's boot counting, per the
//! Boot Loader Specification. UKIs live in `EFI/Linux/` on the ESP, where
//! systemd-boot finds them; the newest version boots first. A new slot's
//! UKI is named `NAME-VERSION+3.efi`: each attempt renames it (`+2-1`,
//! `+1-2`, `+0-3`), an entry at `+0` is tried only after every other, so
//! after three failed boots the other slot's UKI boots again;
//! `systemd-bless-boot` drops the counter after a good boot.

use std::path::Path;

use super::{Disk, Slot, SlotSwitch};
use crate::os::payload::Payload;
use crate::os::{OsError, esp, pe};

/// Boot attempts a new slot gets before systemd-boot falls back.
pub const TRIES: u32 = 3;
/// Where the UKIs live on the ESP.
const DIR: &str = "EFI/Linux";

/// systemd-boot with boot counting in the UKI's file name.
pub struct UefiSwitch;

/// A UKI on the ESP.
struct Entry {
    /// `NAME-VERSION+3-0.efi`.
    file: String,
    /// Without the counter and `.efi`: `NAME-VERSION`.
    id: String,
    /// Its `.cmdline`.
    cmdline: String,
}

/// `NAME-1.0+2-1.efi` → `NAME-1.0` (the BLS counter `+LEFT[-DONE]` removed).
fn entry_id(file: &str) -> Option<&str> {
    let stem = file
        .strip_suffix(".efi")
        .or_else(|| file.strip_suffix(".EFI"))?;
    let Some((id, counter)) = stem.rsplit_once('+') else {
        return Some(stem);
    };
    let (left, done) = counter.split_once('-').unwrap_or((counter, "0"));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    Some(if digits(left) && digits(done) {
        id
    } else {
        stem
    })
}

fn esp_offset(disk: &Disk) -> Result<u64, OsError> {
    Ok(disk.partition("EFI-SYSTEM")?.first_lba * crate::os::gpt::SECTOR)
}

fn work_dir(disk: &Disk) -> &Path {
    disk.path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

fn entries(disk: &Disk) -> Result<Vec<Entry>, OsError> {
    let offset = esp_offset(disk)?;
    let mut out = Vec::new();
    for file in esp::list(&disk.path, offset, DIR)? {
        let Some(id) = entry_id(&file) else { continue };
        let id = id.to_string();
        let bytes = esp::read(&disk.path, offset, &format!("{DIR}/{file}"), work_dir(disk))?;
        let cmdline = pe::cmdline(&bytes).unwrap_or_default();
        out.push(Entry { file, id, cmdline });
    }
    Ok(out)
}

fn boots(e: &Entry, disk: &Disk, slot: Slot) -> Result<bool, OsError> {
    let guid = disk.partition(slot.label())?.guid;
    Ok(e.cmdline.contains(&format!("PARTUUID={guid}")))
}

impl SlotSwitch for UefiSwitch {
    fn check(
        &self,
        disk: &Disk,
        slot: Slot,
        payload: &Payload,
        _uki: &[u8],
    ) -> Result<(), OsError> {
        let cfg = &payload.config;
        let prefix = format!("{}-", cfg.name);
        for e in entries(disk)? {
            if boots(&e, disk, slot)? {
                continue;
            }
            let Some(version) = e.id.strip_prefix(&prefix) else {
                continue;
            };
            if crate::version::compare(&cfg.version, version) != std::cmp::Ordering::Greater {
                return Err(OsError::BadPayload {
                    payload: payload.dir.clone(),
                    reason: format!(
                        "version {} is not newer than {version} ({DIR}/{}, which stays bootable): systemd-boot boots the newest version first",
                        cfg.version, e.file
                    ),
                });
            }
        }
        Ok(())
    }

    fn disarm(&self, disk: &Disk, slot: Slot) -> Result<(), OsError> {
        let offset = esp_offset(disk)?;
        for e in entries(disk)? {
            if boots(&e, disk, slot)? {
                esp::delete(&disk.path, offset, &format!("{DIR}/{}", e.file))?;
            }
        }
        Ok(())
    }

    fn arm(
        &self,
        disk: &Disk,
        _slot: Slot,
        payload: &Payload,
        uki: &[u8],
    ) -> Result<String, OsError> {
        let offset = esp_offset(disk)?;
        let cfg = &payload.config;
        let name = format!("{DIR}/{}-{}+{TRIES}.efi", cfg.name, cfg.version);
        let staged = format!("{name}.tmp");
        let src = tempfile::Builder::new()
            .prefix(".uki-")
            .tempfile_in(work_dir(disk))
            .map_err(OsError::io("creating a file in", work_dir(disk)))?;
        std::fs::write(src.path(), uki).map_err(OsError::io("writing", src.path()))?;
        // Written under a name systemd-boot ignores, then renamed: the
        // rename is the one step that makes the slot bootable.
        esp::write(&disk.path, offset, src.path(), &staged)?;
        esp::rename(&disk.path, offset, &staged, &name)?;
        Ok(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_counters_are_stripped_from_entry_ids() {
        for (file, id) in [
            ("node-0.2+3.efi", Some("node-0.2")),
            ("node-0.2+0-3.efi", Some("node-0.2")),
            ("node-0.1.efi", Some("node-0.1")),
            ("node-1+x.efi", Some("node-1+x")),
            ("notes.txt", None),
        ] {
            assert_eq!(entry_id(file), id, "{file}");
        }
    }
}
