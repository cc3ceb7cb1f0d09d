//! `forge os apply DISK PAYLOAD`: write a signed update payload into the
//! passive `/usr` slot of a disk image and make that slot the next boot.
//!
//! Order, each step only after the one before it succeeded:
//! 1. the payload's signature verifies with the node's key
//!    ([`super::payload::open`]); the disk's table reads back with good
//!    CRCs; the slot's PARTUUID is the one the payload's UKI names; the
//!    payload fits; the profile's [`SlotSwitch`] accepts it (a newer
//!    version than what stays bootable);
//! 2. the disk is copied (sparse) to a temporary file beside it, and only
//!    that copy is changed: the switch **disarms** the slot (no boot entry
//!    points at it while it is written), the slot's bytes are written while
//!    being hashed (a blob that does not match its digest stops here), the
//!    UKI's `.cmdline` is checked to name the slot and the root hash, the
//!    switch **arms** the slot (the next boot, with a tries counter);
//! 3. the copy is fsynced and renamed over DISK, and the folder fsynced.
//!
//! So DISK is either the old disk or the fully applied one; a refused
//! payload leaves it byte for byte as it was. On a node, where the slot is a
//! block device, the same order holds without the copy: disarm, write and
//! sync the slot, then arm (one rename on the ESP) is the commit point, and
//! a half-written slot is never named by any boot entry, so slot A boots.
//!
//! How a slot becomes the next boot is the profile's: [`slot_switch`]
//! returns it. `x86_64-uefi` uses systemd-boot's boot counting
//! ([`uefi::UefiSwitch`]); a profile with its own firmware (the Raspberry
//! Pi's `tryboot`) implements [`SlotSwitch`] the same way.

use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};

use openssl::pkey::{PKey, Public};
use sha2::Digest as _;

use super::OsError;
use super::gpt::{Partition, SECTOR, read_table};
use super::payload::{self, Payload};
use crate::oci::Digest;
use crate::process::Cmd;

pub mod uefi;

/// One of the two `/usr` slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// USR-A.
    A,
    /// USR-B.
    B,
}

impl Slot {
    /// The partition label.
    pub fn label(self) -> &'static str {
        match self {
            Slot::A => "USR-A",
            Slot::B => "USR-B",
        }
    }

    /// The key in the payload config's `slots`.
    pub fn key(self) -> &'static str {
        match self {
            Slot::A => "a",
            Slot::B => "b",
        }
    }
}

/// A disk image being applied to: its file and partition table.
#[derive(Debug, Clone)]
pub struct Disk {
    /// The file (the temporary copy while it is changed).
    pub path: PathBuf,
    /// The partitions.
    pub partitions: Vec<Partition>,
}

impl Disk {
    /// The partition labelled `label`.
    pub fn partition(&self, label: &str) -> Result<&Partition, OsError> {
        self.partitions
            .iter()
            .find(|p| p.name == label)
            .ok_or_else(|| OsError::BadDisk {
                disk: self.path.clone(),
                reason: format!("no partition labelled {label}"),
            })
    }
}

/// How a profile makes a slot the next boot.
pub trait SlotSwitch {
    /// Before anything is written: refuse a payload this disk must not take
    /// (an older version than what stays bootable, a foreign image).
    fn check(&self, disk: &Disk, slot: Slot, payload: &Payload, uki: &[u8]) -> Result<(), OsError>;
    /// Before the slot is written: nothing may boot it any more.
    fn disarm(&self, disk: &Disk, slot: Slot) -> Result<(), OsError>;
    /// After the slot is written and synced: make it the next boot, with a
    /// tries counter. Returns what now boots it (a path on the ESP).
    fn arm(
        &self,
        disk: &Disk,
        slot: Slot,
        payload: &Payload,
        uki: &[u8],
    ) -> Result<String, OsError>;
}

/// The slot switch of `profile` (the payload config's profile name).
pub fn slot_switch(profile: &str) -> Option<Box<dyn SlotSwitch>> {
    match profile {
        "x86_64-uefi" => Some(Box::new(uefi::UefiSwitch)),
        _ => None,
    }
}

/// What an apply did.
#[derive(Debug, Clone)]
pub struct Applied {
    /// The slot written.
    pub slot: Slot,
    /// The payload's version.
    pub version: String,
    /// The root hash now in the slot.
    pub usr_root_hash: String,
    /// What boots the slot next (`EFI/Linux/NAME-VERSION+3.efi`).
    pub boot_entry: String,
    /// Bytes written into the slot.
    pub usr_bytes: u64,
    /// The payload's manifest digest.
    pub digest: Digest,
}

/// Apply the payload layout `payload_dir` to `disk`'s `slot`, trusting
/// signatures by `key`.
pub fn apply(
    disk: &Path,
    payload_dir: &Path,
    key: &PKey<Public>,
    slot: Slot,
) -> Result<Applied, OsError> {
    let payload = payload::open(payload_dir, key)?;
    let cfg = &payload.config;
    let switch = slot_switch(&cfg.profile).ok_or_else(|| OsError::BadPayload {
        payload: payload_dir.to_path_buf(),
        reason: format!("profile `{}` has no slot switch", cfg.profile),
    })?;
    let mut target = Disk {
        path: disk.to_path_buf(),
        partitions: read_table(disk)?,
    };
    let part = target.partition(slot.label())?;
    let want = cfg.slots.get(slot.key()).map(String::as_str).unwrap_or("");
    if part.guid.to_string() != want {
        return Err(OsError::BadDisk {
            disk: disk.to_path_buf(),
            reason: format!(
                "{} is PARTUUID {}, but the payload's UKI for slot {} names {want}: a payload for another disk",
                slot.label(),
                part.guid,
                slot.key()
            ),
        });
    }
    let capacity = (part.last_lba + 1 - part.first_lba) * SECTOR;
    if cfg.usr_bytes > capacity {
        return Err(OsError::BadDisk {
            disk: disk.to_path_buf(),
            reason: format!(
                "{} holds {capacity} bytes, the payload needs {}",
                slot.label(),
                cfg.usr_bytes
            ),
        });
    }
    let offset = part.first_lba * SECTOR;
    let blob = match slot {
        Slot::A => &payload.uki_a,
        Slot::B => &payload.uki_b,
    };
    let uki = payload::read_blob(&payload.dir, &blob.digest, payload::MAX_UKI)?;
    check_uki(&payload, &uki, want)?;
    switch.check(&target, slot, &payload, &uki)?;

    let tmp = sparse_copy(disk)?;
    target.path = tmp.path().to_path_buf();
    switch.disarm(&target, slot)?;
    write_slot(&target.path, offset, &payload)?;
    let boot_entry = switch.arm(&target, slot, &payload, &uki)?;
    tmp.as_file()
        .sync_all()
        .map_err(OsError::io("syncing", tmp.path()))?;
    tmp.persist(disk).map_err(|e| OsError::Io {
        what: "moving into place",
        path: disk.to_path_buf(),
        source: e.error,
    })?;
    let dir = disk_dir(disk);
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(OsError::io("syncing", dir))?;
    Ok(Applied {
        slot,
        version: cfg.version.clone(),
        usr_root_hash: cfg.usr_root_hash.clone(),
        boot_entry,
        usr_bytes: cfg.usr_bytes,
        digest: payload.digest.clone(),
    })
}

/// The UKI boots this slot with this root hash: its `.cmdline` names the
/// slot's PARTUUID and `usrhash=` the payload's root hash.
/// The folder a disk's working copies go in: the disk's own.
pub(crate) fn disk_dir(disk: &Path) -> &Path {
    disk.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// A sparse copy of `disk` beside it (`.NAME.tmp-*`), for an apply to work
/// on and rename over `disk` when done; dropped, it leaves nothing behind.
pub(crate) fn sparse_copy(disk: &Path) -> Result<tempfile::NamedTempFile, OsError> {
    let dir = disk_dir(disk);
    let name = disk
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}.tmp-"))
        .tempfile_in(dir)
        .map_err(OsError::io("creating a file in", dir))?;
    Cmd::new("cp")
        .args(["--sparse=always", "--"])
        .arg(disk)
        .arg(tmp.path())
        .run()?;
    Ok(tmp)
}

fn check_uki(payload: &Payload, uki: &[u8], partuuid: &str) -> Result<(), OsError> {
    let line = super::pe::cmdline(uki).unwrap_or_default();
    let words: Vec<&str> = line.split(' ').collect();
    let hash = format!("usrhash={}", payload.config.usr_root_hash);
    if !line.contains(&format!("PARTUUID={partuuid}")) || !words.contains(&hash.as_str()) {
        return Err(OsError::BadPayload {
            payload: payload.dir.clone(),
            reason: format!("the UKI's .cmdline does not name PARTUUID={partuuid} and {hash}"),
        });
    }
    Ok(())
}

/// Stream the `/usr` blob into `disk` at `offset`, hashing it as it goes;
/// a blob that does not match its digest is an error (the caller's copy is
/// then discarded). Synced before returning.
fn write_slot(disk: &Path, offset: u64, payload: &Payload) -> Result<(), OsError> {
    let blob = &payload.usr;
    let mut src = std::fs::File::open(&blob.path).map_err(OsError::io("opening", &blob.path))?;
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .open(disk)
        .map_err(OsError::io("opening", disk))?;
    out.seek(SeekFrom::Start(offset))
        .map_err(OsError::io("writing", disk))?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut left = blob.size;
    while left > 0 {
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = src
            .read(&mut buf[..want])
            .map_err(OsError::io("reading", &blob.path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])
            .map_err(OsError::io("writing", disk))?;
        left -= n as u64;
    }
    let mut extra = [0u8; 1];
    let longer = src
        .read(&mut extra)
        .map_err(OsError::io("reading", &blob.path))?
        > 0;
    if left > 0 || longer || Digest::from_sha256(hasher.finalize().into()) != blob.digest {
        return Err(OsError::BadPayload {
            payload: payload.dir.clone(),
            reason: format!(
                "usr.img does not match its digest {} (tampered)",
                blob.digest
            ),
        });
    }
    out.sync_all().map_err(OsError::io("syncing", disk))
}
