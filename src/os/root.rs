//! ROOT, the node's writable partition, as an empty ext4 filesystem made
//! when the disk is built: the node's initramfs carries only busybox, whose
//! `mke2fs` makes ext2 (no journal, no extents), so a real ext4 has to come
//! from the build host's `mke2fs -t ext4` (e2fsprogs), written into a file
//! (no loop device, no mount) that [`super::disk`] splices into ROOT.
//!
//! The filesystem is reproducible: the features are fixed by a forge-written
//! `mke2fs.conf` (`MKE2FS_CONFIG`), not the host's `/etc/mke2fs.conf`; the
//! UUID and the directory hash seed come from the image's [`Seed`]; every
//! time is the epoch (`E2FSPROGS_FAKE_TIME`); the root folder is owned by
//! 0:0 whoever builds. Its inode tables and journal are left to be zeroed
//! lazily, so the file stays sparse (a few hundred KiB of metadata).
//!
//! It fills the partition exactly. `resize_inode` reserves group
//! descriptor blocks so that the filesystem can later be grown online, but
//! nothing on the node grows it yet (docs/os.md, "ROOT").

use std::path::Path;

use super::OsError;
use super::seed::Seed;
use crate::process::Cmd;

/// ext4's features as e2fsprogs 1.47's `mke2fs -t ext4` gives them.
const CONFIG: &str = "[defaults]
\tblocksize = 4096
\tinode_size = 256
\tinode_ratio = 16384
\treserved_ratio = 0
\tlazy_itable_init = true
\tlazy_journal_init = true

[fs_types]
\text4 = {
\t\tfeatures = has_journal,extent,huge_file,flex_bg,metadata_csum,64bit,dir_nlink,extra_isize,sparse_super,large_file,filetype,resize_inode,dir_index,ext_attr
\t}
";

/// The filesystem label, which the initramfs finds ROOT by as well.
pub const LABEL: &str = "ROOT";

/// Write an empty ext4 of `size` bytes to `out`.
pub fn make(out: &Path, size: u64, seed: &Seed, work: &Path, epoch: u64) -> Result<(), OsError> {
    let conf = work.join("mke2fs.conf");
    std::fs::write(&conf, CONFIG).map_err(OsError::io("writing", &conf))?;
    let file = std::fs::File::create(out).map_err(OsError::io("creating", out))?;
    file.set_len(size).map_err(OsError::io("sizing", out))?;
    drop(file);
    let uuid = seed.guid("root-ext4").to_string();
    Cmd::new("mke2fs")
        .args(["-q", "-F", "-t", "ext4", "-L", LABEL, "-U"])
        .arg(&uuid)
        .arg("-E")
        .arg(format!("hash_seed={uuid},root_owner=0:0,nodiscard"))
        .arg(out)
        .env("MKE2FS_CONFIG", &conf)
        .env("E2FSPROGS_FAKE_TIME", epoch.to_string())
        .env("SOURCE_DATE_EPOCH", epoch.to_string())
        .run()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dumpe2fs(fs: &Path) -> String {
        let out = std::process::Command::new("dumpe2fs")
            .arg("-h")
            .arg(fs)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    }

    #[test]
    fn root_is_a_reproducible_ext4_filling_its_size() {
        if !crate::test_tools::require_tools(&["mke2fs", "dumpe2fs", "e2fsck"]) {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let seed = Seed::for_image("t");
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        make(&a, 64 << 20, &seed, dir.path(), 1_700_000_000).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1100));
        make(&b, 64 << 20, &seed, dir.path(), 1_700_000_000).unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
        let h = dumpe2fs(&a);
        let features = h.lines().find(|l| l.starts_with("Filesystem features:"));
        let features = features.unwrap_or_default();
        for f in ["has_journal", "extent", "flex_bg", "metadata_csum", "64bit"] {
            assert!(features.contains(f), "{h}");
        }
        assert!(h.contains(&seed.guid("root-ext4").to_string()), "{h}");
        assert!(h.contains("Filesystem volume name:   ROOT"), "{h}");
        // 64 MiB in 4 KiB blocks: the whole partition.
        assert!(h.contains("Block count:              16384"), "{h}");
        let fsck = std::process::Command::new("e2fsck")
            .args(["-f", "-n"])
            .arg(&a)
            .output()
            .unwrap();
        assert!(fsck.status.success(), "{fsck:?}");
    }
}
