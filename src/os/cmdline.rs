//! The kernel command line of a `/usr` slot: the definition's additions,
//! then forge's own arguments. One function, so the image build and an
//! update payload for the other slot say the same thing.
//!
//! The kernel itself sets up dm-verity (`CONFIG_DM_INIT`): `dm-mod.create=`
//! carries the whole verity table, naming the slot by PARTUUID, so the
//! initramfs needs no `veritysetup` or `dmsetup` (busybox has neither) and
//! only mounts the device `usr`. `usrhash=` repeats the root hash for the
//! initramfs to check against the table, and `mount.usr=`/`mount.usrflags=`
//! say the same for a systemd-based initramfs. The UKI's `.cmdline` holds
//! all of it, so signing the UKI covers the root hash.

use super::usr::{BLOCK, UsrImage};

/// The command line for `usr` in the partition `partuuid`, after `additions`.
///
/// The hash tree sits in the same partition after the filesystem, behind
/// veritysetup's 4096-byte superblock, so the hash start block is the
/// filesystem's block count plus one.
pub fn for_slot(additions: &[String], partuuid: &str, usr: &UsrImage) -> String {
    let blocks = usr.fs_bytes / BLOCK;
    let sectors = usr.fs_bytes / 512;
    let dev = format!("PARTUUID={partuuid}");
    let table = format!(
        "0 {sectors} verity 1 {dev} {dev} {BLOCK} {BLOCK} {blocks} {} sha256 {} {}",
        blocks + 1,
        usr.root_hash,
        usr.salt
    );
    let mut args = additions.to_vec();
    args.push(format!("dm-mod.create=\"usr,,,ro,{table}\""));
    args.push(format!("dm-mod.waitfor={dev}"));
    args.push(format!("mount.usr={dev}"));
    args.push("mount.usrflags=ro".to_string());
    args.push(format!("usrhash={}", usr.root_hash));
    args.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verity_table_points_past_the_superblock() {
        let usr = UsrImage {
            fs: "fs".into(),
            fs_bytes: 10 * BLOCK,
            hash: "hash".into(),
            hash_bytes: 2 * BLOCK,
            root_hash: "ab".repeat(32),
            salt: "cd".repeat(32),
        };
        let line = for_slot(&["console=ttyS0".into()], "1234", &usr);
        let want = format!(
            "console=ttyS0 dm-mod.create=\"usr,,,ro,0 80 verity 1 PARTUUID=1234 PARTUUID=1234 \
             4096 4096 10 11 sha256 {} {}\" dm-mod.waitfor=PARTUUID=1234 \
             mount.usr=PARTUUID=1234 mount.usrflags=ro usrhash={}",
            "ab".repeat(32),
            "cd".repeat(32),
            "ab".repeat(32)
        );
        assert_eq!(line, want);
    }
}
