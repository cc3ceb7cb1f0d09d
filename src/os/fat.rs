//! FAT filesystems as files (the EFI system partition, OEM), rootless and
//! without mounts: `mkfs.vfat` formats the file, `mmd` and `mcopy` (mtools)
//! fill it.
//!
//! Reproducibility: `--invariant` *before* `-i <id>` (after it, the id is
//! reset to `1234ABCD`), a seed-derived volume id, and every file and
//! folder written one directory at a time in sorted order with its time
//! pinned (`mcopy -m` from sources whose mtime is the epoch; `TZ=UTC`,
//! `SOURCE_DATE_EPOCH` for the folders mtools makes), so directory entry
//! order never follows the host's `readdir`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, SystemTime};

use super::OsError;
use crate::process::Cmd;

/// What to put in one FAT filesystem.
#[derive(Debug, Clone)]
pub struct FatSpec<'a> {
    /// The volume label (≤ 11 characters).
    pub label: &'a str,
    /// The volume id (8 hex digits).
    pub volume_id: String,
    /// Size in bytes (a whole number of KiB).
    pub size: u64,
    /// FAT32 (the ESP must be); otherwise mkfs.vfat picks by size.
    pub fat32: bool,
    /// Folders to create (relative, `/`-separated), besides files' parents.
    pub dirs: Vec<String>,
    /// Files: relative path → content.
    pub files: BTreeMap<String, Vec<u8>>,
}

/// Format `image` and fill it; `work` is a scratch folder for the sources.
pub fn make(image: &Path, spec: &FatSpec<'_>, work: &Path, epoch: u64) -> Result<(), OsError> {
    let mut mkfs = Cmd::new("mkfs.vfat");
    if spec.fat32 {
        mkfs.args(["-F", "32", "-s", "1"]);
    }
    mkfs.args(["--invariant", "-i", &spec.volume_id, "-n", spec.label, "-C"])
        .arg(image)
        .arg((spec.size / 1024).to_string())
        .env("SOURCE_DATE_EPOCH", epoch.to_string())
        .run()?;
    let mut dirs: BTreeSet<String> = spec.dirs.iter().cloned().collect();
    for f in spec.files.keys() {
        let mut p = f.as_str();
        while let Some((parent, _)) = p.rsplit_once('/') {
            dirs.insert(parent.to_string());
            p = parent;
        }
    }
    let mtools = |program: &str| {
        let mut c = Cmd::new(program);
        c.env("MTOOLS_SKIP_CHECK", "1")
            .env("TZ", "UTC")
            .env("SOURCE_DATE_EPOCH", epoch.to_string())
            .arg("-i")
            .arg(image);
        c
    };
    if !dirs.is_empty() {
        // BTreeSet order puts every parent before its children.
        let mut mmd = mtools("mmd");
        mmd.args(dirs.iter().map(|d| format!("::/{d}")));
        mmd.run()?;
    }
    let when = SystemTime::UNIX_EPOCH + Duration::from_secs(epoch);
    let mut by_dir: BTreeMap<&str, Vec<std::path::PathBuf>> = BTreeMap::new();
    for (i, (path, content)) in spec.files.iter().enumerate() {
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
        // One scratch folder per file keeps the file's own name.
        let src = work.join(format!("{i}")).join(name);
        let parent = src.parent().unwrap_or(work);
        std::fs::create_dir_all(parent).map_err(OsError::io("creating", parent))?;
        std::fs::write(&src, content).map_err(OsError::io("writing", &src))?;
        let f = std::fs::File::options()
            .write(true)
            .open(&src)
            .map_err(OsError::io("opening", &src))?;
        f.set_modified(when)
            .map_err(OsError::io("setting the time of", &src))?;
        by_dir.entry(dir).or_default().push(src);
    }
    for (dir, sources) in by_dir {
        let mut mcopy = mtools("mcopy");
        mcopy.args(["-p", "-Q", "-m", "-o"]).args(&sources);
        mcopy.arg(format!("::/{dir}"));
        mcopy.run()?;
    }
    Ok(())
}
