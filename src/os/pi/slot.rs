//! Writing the passive slot of a Raspberry Pi disk and arming `tryboot`:
//! `forge os apply DISK SOURCE.img`, where SOURCE is a newer build of the
//! same image (`out/os/NAME.img` with its manifest `NAME.json` beside it).
//!
//! Slot B gets SOURCE's slot A: USR-A's bytes (erofs and hash tree, checked
//! with `veritysetup verify` against the manifest's root hash first) go to
//! USR-B, and BOOT-A's files, with `cmdline.txt` naming USR-B
//! (`PARTUUID=<sig>-05`) and no `autoboot.txt`, become a fresh BOOT-B.
//!
//! Order: the disk is copied (sparse) beside itself and only the copy is
//! changed: **disarm** (`autoboot.txt` without `[tryboot]`, so nothing
//! boots B while it is written), write USR-B, write BOOT-B, **arm**
//! (`[tryboot] boot_partition=2`), sync, rename over DISK. A refused or
//! failed apply leaves DISK as it was. On a node the same order holds on
//! the block device: the `autoboot.txt` rewrite is the commit point.
//!
//! Only slot B is written, while `[all] boot_partition=1`: writing slot A
//! would rewrite partition 1, which also holds `autoboot.txt`, so a crash
//! there could leave nothing bootable. Once a node commits B
//! (`boot_partition=2`), this refuses; a layout with a small partition 1
//! for `autoboot.txt` alone (the firmware documentation's) lifts that.

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::FileExt as _;
use std::path::Path;
use std::time::{Duration, SystemTime};

use super::{Slot, autoboot_txt};
use crate::os::OsError;
use crate::os::build::Manifest;
use crate::os::fat::{self, FatSpec};
use crate::os::gpt::SECTOR;
use crate::os::mbr::{self, Mbr, MbrPartition};
use crate::os::seed::Seed;
use crate::process::Cmd;

/// What an apply did.
#[derive(Debug, Clone)]
pub struct Applied {
    /// SOURCE's version, now in slot B.
    pub version: String,
    /// The root hash now in USR-B.
    pub usr_root_hash: String,
    /// `autoboot.txt` as it now reads.
    pub autoboot: String,
}

/// Write SOURCE's slot A into DISK's slot B and arm tryboot.
pub fn apply(disk: &Path, source: &Path) -> Result<Applied, OsError> {
    let bad = |path: &Path, reason: String| OsError::BadDisk {
        disk: path.to_path_buf(),
        reason,
    };
    let m = source_manifest(source)?;
    let src = read_table(source)?;
    let dst = read_table(disk)?;
    if src.signature != dst.signature {
        return Err(bad(
            disk,
            format!(
                "disk signature {:08x}, but {} is for {:08x}: an update for another image",
                dst.signature,
                source.display(),
                src.signature
            ),
        ));
    }
    let part = |t: &Mbr, path: &Path, index: usize| {
        t.partitions.get(index).cloned().ok_or_else(|| {
            bad(
                path,
                format!(
                    "no partition {} (not an rpi4-arm64 disk)",
                    Mbr::number(index)
                ),
            )
        })
    };
    let (src_boot, src_usr) = (part(&src, source, 0)?, part(&src, source, 2)?);
    let (boot_a, boot_b, usr_b) = (
        part(&dst, disk, 0)?,
        part(&dst, disk, 1)?,
        part(&dst, disk, 3)?,
    );
    if src_usr.sectors > usr_b.sectors || src_boot.sectors > boot_b.sectors {
        return Err(bad(
            disk,
            "its slot B is smaller than the source's slot A".into(),
        ));
    }
    let current = autoboot_current(&mtype(disk, &boot_a, "autoboot.txt")?)
        .ok_or_else(|| bad(disk, "autoboot.txt names no [all] boot_partition".into()))?;
    if current != Slot::A.boot_partition() {
        return Err(bad(
            disk,
            format!(
                "slot B is committed (boot_partition={current}); writing slot A is not supported (partition 1 holds autoboot.txt)"
            ),
        ));
    }
    let dir = crate::os::apply::disk_dir(disk);
    let work = tempfile::Builder::new()
        .prefix(".pi-apply.tmp-work-")
        .tempdir_in(dir)
        .map_err(OsError::io("creating a folder in", dir))?;
    let usr = work.path().join("usr");
    copy_range(source, &src_usr, &usr)?;
    verify_usr(&usr, &m).map_err(|e| {
        bad(
            source,
            format!("USR-A does not verify with its root hash: {e}"),
        )
    })?;
    let files = slot_b_files(source, &src_boot, &m, src.signature, work.path())?;
    let boot = work.path().join("boot-b.fat");
    let spec = FatSpec {
        label: "BOOT-B",
        volume_id: Seed::for_image(&m.name).hex4("boot-b-volume-id"),
        size: boot_b.sectors * SECTOR,
        fat32: true,
        dirs: Vec::new(),
        files,
    };
    fat::make(&boot, &spec, &work.path().join("boot-b-src"), m.epoch)?;
    let tmp = crate::os::apply::sparse_copy(disk)?;
    let copy = tmp.path().to_path_buf();
    write_autoboot(
        &copy,
        &boot_a,
        &autoboot_txt(Slot::A, None),
        m.epoch,
        work.path(),
    )?;
    splice_into(&copy, &usr_b, &usr)?;
    splice_into(&copy, &boot_b, &boot)?;
    let armed = autoboot_txt(Slot::A, Some(Slot::B));
    write_autoboot(&copy, &boot_a, &armed, m.epoch, work.path())?;
    tmp.as_file()
        .sync_all()
        .map_err(OsError::io("syncing", &copy))?;
    tmp.persist(disk)
        .map_err(|e| OsError::io("renaming", disk)(e.error))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(OsError::io("syncing", dir))?;
    Ok(Applied {
        version: m.version,
        usr_root_hash: m.usr_root_hash,
        autoboot: armed,
    })
}

/// SOURCE's manifest (`NAME.json` beside `NAME.img`), which must be a Pi's.
fn source_manifest(source: &Path) -> Result<Manifest, OsError> {
    let path = source.with_extension("json");
    let text = std::fs::read(&path).map_err(OsError::io("reading", &path))?;
    let m: Manifest = serde_json::from_slice(&text)
        .map_err(|e| OsError::io("parsing", &path)(std::io::Error::other(e)))?;
    if m.profile != "rpi4-arm64" {
        return Err(OsError::BadDisk {
            disk: path,
            reason: format!("profile {}, not rpi4-arm64", m.profile),
        });
    }
    Ok(m)
}

pub(super) fn read_table(disk: &Path) -> Result<Mbr, OsError> {
    let f = File::open(disk).map_err(OsError::io("opening", disk))?;
    let len = f.metadata().map_err(OsError::io("reading", disk))?.len();
    mbr::parse(len / SECTOR, |lba| {
        let mut buf = vec![0u8; SECTOR as usize];
        f.read_exact_at(&mut buf, lba * SECTOR)?;
        Ok(buf)
    })
    .map_err(|e| OsError::BadDisk {
        disk: disk.to_path_buf(),
        reason: crate::util::error_chain(&e),
    })
}

/// The `[all]` section's `boot_partition` of an `autoboot.txt`.
pub fn autoboot_current(text: &str) -> Option<usize> {
    let mut section = "all";
    let mut found = None;
    for line in text.lines().map(str::trim) {
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = s;
        } else if let Some(v) = line.strip_prefix("boot_partition=")
            && section == "all"
        {
            found = v.trim().parse().ok();
        }
    }
    found
}

/// BOOT-A's files of SOURCE, made slot B's: `cmdline.txt` names USR-B,
/// `config.txt` says slot B, no `autoboot.txt`.
fn slot_b_files(
    source: &Path,
    boot: &MbrPartition,
    m: &Manifest,
    signature: u32,
    work: &Path,
) -> Result<BTreeMap<String, Vec<u8>>, OsError> {
    let out = work.join("boot-a");
    std::fs::create_dir_all(&out).map_err(OsError::io("creating", &out))?;
    mtools("mcopy", source, boot)
        .args(["-s", "-n", "::/*"])
        .arg(&out)
        .run()?;
    let mut files = BTreeMap::new();
    collect(&out, "", &mut files)?;
    files.remove("autoboot.txt");
    let usr_a = format!("mount.usr=PARTUUID={signature:08x}-03");
    let cmdline =
        String::from_utf8(files.remove("cmdline.txt").unwrap_or_default()).unwrap_or_default();
    let words: Vec<&str> = cmdline.split_whitespace().collect();
    let hash = format!("usrhash={}", m.usr_root_hash);
    if !words.contains(&usr_a.as_str()) || !words.contains(&hash.as_str()) {
        return Err(OsError::BadDisk {
            disk: source.to_path_buf(),
            reason: format!("BOOT-A's cmdline.txt does not name {usr_a} and {hash}"),
        });
    }
    // Every mention of USR-A (the verity table's devices, dm-mod.waitfor,
    // mount.usr) becomes USR-B: the same bytes are in both.
    let (part_a, part_b) = (
        format!("PARTUUID={signature:08x}-03"),
        format!("PARTUUID={signature:08x}-05"),
    );
    files.insert(
        "cmdline.txt".into(),
        cmdline.replace(&part_a, &part_b).into_bytes(),
    );
    if let Some(config) = files.get_mut("config.txt") {
        let text = String::from_utf8_lossy(config).replace(", slot A:", ", slot B:");
        *config = text.into_bytes();
    }
    Ok(files)
}

/// Every file under `dir` as (relative `/` path, content).
fn collect(dir: &Path, prefix: &str, files: &mut BTreeMap<String, Vec<u8>>) -> Result<(), OsError> {
    for e in std::fs::read_dir(dir).map_err(OsError::io("reading", dir))? {
        let e = e.map_err(OsError::io("reading", dir))?;
        let name = format!("{prefix}{}", e.file_name().to_string_lossy());
        let path = e.path();
        if path.is_dir() {
            collect(&path, &format!("{name}/"), files)?;
        } else {
            files.insert(
                name,
                std::fs::read(&path).map_err(OsError::io("reading", &path))?,
            );
        }
    }
    Ok(())
}

pub(super) fn mtools(program: &str, disk: &Path, part: &MbrPartition) -> Cmd {
    let mut c = Cmd::new(program);
    c.env("MTOOLS_SKIP_CHECK", "1")
        .env("TZ", "UTC")
        .arg("-i")
        .arg(format!("{}@@{}", disk.display(), part.first_lba * SECTOR));
    c
}

fn mtype(disk: &Path, part: &MbrPartition, file: &str) -> Result<String, OsError> {
    Ok(mtools("mtype", disk, part)
        .arg(format!("::/{file}"))
        .run_stdout()?)
}

/// Replace `autoboot.txt` on BOOT-A (its time pinned to the epoch).
fn write_autoboot(
    disk: &Path,
    boot_a: &MbrPartition,
    text: &str,
    epoch: u64,
    work: &Path,
) -> Result<(), OsError> {
    let src = work.join("autoboot.txt");
    std::fs::write(&src, text).map_err(OsError::io("writing", &src))?;
    let f = File::options()
        .write(true)
        .open(&src)
        .map_err(OsError::io("opening", &src))?;
    f.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(epoch))
        .map_err(OsError::io("setting the time of", &src))?;
    mtools("mcopy", disk, boot_a)
        .env("SOURCE_DATE_EPOCH", epoch.to_string())
        .args(["-o", "-m", "-p"])
        .arg(&src)
        .arg("::/autoboot.txt")
        .run()?;
    Ok(())
}

/// Copy partition `part` of `disk` into the file `to`.
fn copy_range(disk: &Path, part: &MbrPartition, to: &Path) -> Result<(), OsError> {
    let src = File::open(disk).map_err(OsError::io("opening", disk))?;
    let out = File::create(to).map_err(OsError::io("creating", to))?;
    let mut buf = vec![0u8; 1 << 20];
    let (start, len) = (part.first_lba * SECTOR, part.sectors * SECTOR);
    let mut done = 0;
    while done < len {
        let n = buf.len().min((len - done) as usize);
        src.read_exact_at(&mut buf[..n], start + done)
            .map_err(OsError::io("reading", disk))?;
        out.write_all_at(&buf[..n], done)
            .map_err(OsError::io("writing", to))?;
        done += n as u64;
    }
    Ok(())
}

/// `veritysetup verify` of a USR partition copy with the manifest's numbers.
fn verify_usr(usr: &Path, m: &Manifest) -> Result<(), crate::process::ProcessError> {
    Cmd::new("veritysetup")
        .arg("verify")
        .arg(format!("--hash-offset={}", m.usr_hash_offset))
        .arg(format!("--data-blocks={}", m.usr_data_blocks))
        .arg(usr)
        .arg(usr)
        .arg(&m.usr_root_hash)
        .run()
        .map(|_| ())
}

/// Put `file` at the start of `part` on `disk`, clearing the rest.
fn splice_into(disk: &Path, part: &MbrPartition, file: &Path) -> Result<(), OsError> {
    let mut f = File::options()
        .read(true)
        .write(true)
        .open(disk)
        .map_err(OsError::io("opening", disk))?;
    let (start, len) = (part.first_lba * SECTOR, part.sectors * SECTOR);
    crate::os::disk::punch(&f, start, len, disk)?;
    crate::os::disk::splice(&mut f, start, start + len, file, disk)?;
    f.sync_all().map_err(OsError::io("syncing", disk))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn autoboot_current_reads_the_all_section_only() {
        assert_eq!(
            autoboot_current(&autoboot_txt(Slot::A, Some(Slot::B))),
            Some(1)
        );
        assert_eq!(
            autoboot_current("[all]\ntryboot_a_b=1\nboot_partition=2\n"),
            Some(2)
        );
        assert_eq!(autoboot_current("[tryboot]\nboot_partition=2\n"), None);
        assert_eq!(
            autoboot_current("boot_partition=1\n[tryboot]\nboot_partition=2\n"),
            Some(1)
        );
    }
}
