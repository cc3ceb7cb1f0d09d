//! The EFI system partition inside a disk image, through mtools'
//! `-i DISK@@OFFSET` (no loop device, no mount): read, list, write, rename
//! and delete files. Used by `forge os payload` (the built UKI) and by the
//! UEFI slot switch of `forge os apply`.

use std::path::Path;

use super::OsError;
use crate::process::Cmd;

fn mtools(program: &str, disk: &Path, offset: u64) -> Cmd {
    let mut c = Cmd::new(program);
    c.env("MTOOLS_SKIP_CHECK", "1")
        .env("TZ", "UTC")
        .arg("-i")
        .arg(format!("{}@@{offset}", disk.display()));
    c
}

/// The bytes of `path` (`EFI/Linux/x.efi`) on the FAT at `offset` of
/// `disk`; `work` holds the copy while it is read.
pub fn read(disk: &Path, offset: u64, path: &str, work: &Path) -> Result<Vec<u8>, OsError> {
    let tmp = tempfile::Builder::new()
        .prefix(".esp-read-")
        .tempfile_in(work)
        .map_err(OsError::io("creating a file in", work))?;
    mtools("mcopy", disk, offset)
        .args(["-n", "-o"])
        .arg(format!("::/{path}"))
        .arg(tmp.path())
        .run()?;
    std::fs::read(tmp.path()).map_err(OsError::io("reading", tmp.path()))
}

/// The plain file names in folder `dir` (`EFI/Linux`), sorted.
pub fn list(disk: &Path, offset: u64, dir: &str) -> Result<Vec<String>, OsError> {
    let out = mtools("mdir", disk, offset)
        .arg("-b")
        .arg(format!("::/{dir}"))
        .run_stdout()?;
    let prefix = format!("::/{dir}/");
    let mut names: Vec<String> = out
        .lines()
        .filter_map(|l| l.trim().strip_prefix(&prefix))
        .filter(|n| !n.is_empty() && !n.ends_with('/'))
        .map(str::to_string)
        .collect();
    names.sort();
    Ok(names)
}

/// Copy the host file `src` to `path` on the FAT (replacing it).
pub fn write(disk: &Path, offset: u64, src: &Path, path: &str) -> Result<(), OsError> {
    mtools("mcopy", disk, offset)
        .args(["-o", "-m"])
        .arg(src)
        .arg(format!("::/{path}"))
        .run()?;
    Ok(())
}

/// Rename `from` to `to` (same folder): one directory entry changes.
pub fn rename(disk: &Path, offset: u64, from: &str, to: &str) -> Result<(), OsError> {
    let name = to.rsplit('/').next().unwrap_or(to);
    mtools("mren", disk, offset)
        .arg(format!("::/{from}"))
        .arg(name)
        .run()?;
    Ok(())
}

/// Delete `path`.
pub fn delete(disk: &Path, offset: u64, path: &str) -> Result<(), OsError> {
    mtools("mdel", disk, offset)
        .arg(format!("::/{path}"))
        .run()?;
    Ok(())
}
