//! The Raspberry Pi 4 disk (`profile = "rpi4-arm64"`): an MBR disk whose
//! first partitions are the FAT boot partitions the firmware reads, one per
//! A/B slot, then the same verity `/usr` as on x86_64.
//!
//! | # | label | MBR type | content |
//! |---|---|---|---|
//! | 1 | BOOT-A | `0x0C` FAT32 LBA | firmware, device trees, `config.txt`, `cmdline.txt`, `kernel8.img`, `initramfs8`, `autoboot.txt` |
//! | 2 | BOOT-B | `0x0C` | empty: slot B's boot files, written by an update |
//! | 3 | USR-A | `0x83` | erofs `/usr`, then its dm-verity hash tree |
//! | 4 | — | `0x0F` | the extended partition holding 5–7 |
//! | 5 | USR-B | `0x83` | empty: the passive `/usr` |
//! | 6 | OEM | `0x83` | FAT: the `[[oem]]` files |
//! | 7 | ROOT | `0x83` | an empty ext4 ([`super::root`]) |
//!
//! The boot partition is a function of `/usr` and the command line: the
//! firmware (`start4.elf`, `fixup4.dat`) comes from `/usr/lib/raspi-firmware/`
//! (the `raspi-firmware` package), the kernel, its initramfs and its device
//! trees from `/usr/lib/modules/<version>/` (`vmlinuz`, `initrd`,
//! `dtbs/broadcom/*.dtb`, `dtbs/overlays/*.dtbo`), as Debian's raspi-firmware
//! hook copies them from the kernel package. So an update that carries a
//! new `/usr` carries its boot files too.
//!
//! A/B uses the firmware's `tryboot`: `autoboot.txt` on partition 1 says
//! `tryboot_a_b=1` and `boot_partition=1`; an update writes BOOT-B and
//! USR-B and adds `[tryboot] boot_partition=2`, and `reboot "0 tryboot"`
//! boots B once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::OsError;
use super::disk::{Kind, Piece};
use super::fat::FatSpec;
use super::mbr::Mbr;
use super::seed::Seed;
use super::uki::Kernel;
use crate::image::def::OsDef;

pub mod slot;

/// Partitions start on this boundary (pi-gen's; SD cards erase in such blocks).
pub const ALIGN: u64 = 8 << 20;
/// MBR type of the boot partitions: FAT32 with LBA (what the firmware wants).
pub const TYPE_FAT32_LBA: u8 = 0x0C;
/// MBR type of the Linux partitions.
pub const TYPE_LINUX: u8 = 0x83;
/// Where the firmware files are inside `/usr`.
pub const FIRMWARE_DIR: &str = "lib/raspi-firmware";
/// The Pi 4's firmware pair (a matched `start4.elf` + `fixup4.dat`).
pub const FIRMWARE: [&str; 2] = ["start4.elf", "fixup4.dat"];
/// The device trees the firmware looks up on a Pi 4 B, a Pi 400 and a CM4.
pub const DTBS: [&str; 3] = [
    "bcm2711-rpi-4-b.dtb",
    "bcm2711-rpi-400.dtb",
    "bcm2711-rpi-cm4.dtb",
];
/// Mainline Linux names the CM4's tree after its IO board; the firmware
/// asks for [`DTBS`]`[2]`, so this one stands in when that is absent.
const CM4_MAINLINE: &str = "bcm2711-rpi-cm4-io.dtb";
/// The initramfs' name on the boot partition (Raspberry Pi OS's for a
/// 64-bit Pi 4).
pub const INITRAMFS: &str = "initramfs8";

/// Indexes into the piece list (and [`Mbr::number`]).
const BOOT_A: usize = 0;
const BOOT_B: usize = 1;
const USR_A: usize = 2;
const USR_B: usize = 3;
const ROOT: usize = 5;

/// One of the two slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// Partitions 1 (boot) and 3 (`/usr`).
    A,
    /// Partitions 2 (boot) and 5 (`/usr`).
    B,
}

impl Slot {
    /// The slot's boot partition number (what `boot_partition=` says).
    pub fn boot_partition(self) -> usize {
        Mbr::number(self.boot_index())
    }

    fn boot_index(self) -> usize {
        match self {
            Slot::A => BOOT_A,
            Slot::B => BOOT_B,
        }
    }

    fn usr_index(self) -> usize {
        match self {
            Slot::A => USR_A,
            Slot::B => USR_B,
        }
    }
}

/// The disk signature of an image: 4 seed bytes, never zero.
pub fn signature(seed: &Seed) -> u32 {
    let d = seed.derive("mbr-disk-signature");
    u32::from_le_bytes([d[0], d[1], d[2], d[3]]).max(1)
}

/// `PARTUUID` of the partition at `index` on a disk with `signature`.
fn partuuid(signature: u32, index: usize) -> String {
    format!("{signature:08x}-{:02x}", Mbr::number(index))
}

/// `cmdline.txt` of `slot` (without its newline): the definition's
/// additions, ROOT, then forge's `/usr` arguments for the slot (the
/// kernel's dm-verity table naming it by PARTUUID and the root hash, as on
/// x86_64: [`super::cmdline::for_slot`]).
pub fn cmdline(def: &OsDef, signature: u32, slot: Slot, usr: &super::usr::UsrImage) -> String {
    let mut args = def.cmdline.clone();
    args.push(format!("root=PARTUUID={}", partuuid(signature, ROOT)));
    args.push("rootwait".into());
    let usr_part = partuuid(signature, slot.usr_index());
    super::cmdline::for_slot(&args, &usr_part, usr)
}

/// `config.txt`: 64-bit, forge's kernel and initramfs, the serial console.
pub fn config_txt(def: &OsDef, slot: Slot, initramfs: bool) -> String {
    let version = def.version.as_deref().unwrap_or("0");
    let mut s = format!(
        "# forge {} {version} ({}), slot {slot:?}: written by forge os build\n",
        def.name,
        def.profile.name()
    );
    s.push_str("arm_64bit=1\nkernel=kernel8.img\n");
    if initramfs {
        s.push_str(&format!("initramfs {INITRAMFS} followkernel\n"));
    }
    s.push_str("enable_uart=1\n");
    s
}

/// `autoboot.txt` on partition 1: A/B through tryboot, booting `current`,
/// and `trying` once after `reboot "0 tryboot"` when an update armed it.
pub fn autoboot_txt(current: Slot, trying: Option<Slot>) -> String {
    let mut s = format!(
        "[all]\ntryboot_a_b=1\nboot_partition={}\n",
        current.boot_partition()
    );
    if let Some(t) = trying {
        s.push_str(&format!(
            "[tryboot]\nboot_partition={}\n",
            t.boot_partition()
        ));
    }
    s
}

/// Every file of a slot's boot partition, read from the `/usr` tree.
pub fn boot_files(
    def: &OsDef,
    tree: &Path,
    kernel: &Kernel,
    cmdline: &str,
    slot: Slot,
) -> Result<BTreeMap<String, Vec<u8>>, OsError> {
    let mut files = BTreeMap::new();
    let need = |path: PathBuf, package: &str| -> Result<Vec<u8>, OsError> {
        if !path.is_file() {
            return Err(OsError::BootFile {
                path: path
                    .strip_prefix(tree)
                    .map_or(path.clone(), |p| Path::new("/usr").join(p)),
                profile: def.profile.name(),
                package: package.to_string(),
            });
        }
        std::fs::read(&path).map_err(OsError::io("reading", &path))
    };
    for f in FIRMWARE {
        files.insert(
            f.to_string(),
            need(tree.join(FIRMWARE_DIR).join(f), "raspi-firmware")?,
        );
    }
    let dtbs = kernel.vmlinuz.with_file_name("dtbs");
    for f in DTBS {
        let mut path = dtbs.join("broadcom").join(f);
        if f == DTBS[2] && !path.is_file() {
            path = dtbs.join("broadcom").join(CM4_MAINLINE);
        }
        files.insert(f.to_string(), need(path, "the kernel")?);
    }
    let overlays = dtbs.join("overlays");
    if let Ok(dir) = std::fs::read_dir(&overlays) {
        for e in dir {
            let e = e.map_err(OsError::io("reading", &overlays))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".dtbo") && e.path().is_file() {
                files.insert(format!("overlays/{name}"), need(e.path(), "the kernel")?);
            }
        }
    }
    files.insert(
        "kernel8.img".into(),
        need(kernel.vmlinuz.clone(), "the kernel")?,
    );
    if let Some(initrd) = &kernel.initrd {
        files.insert(INITRAMFS.into(), need(initrd.clone(), "the kernel")?);
    }
    let config = config_txt(def, slot, kernel.initrd.is_some());
    files.insert("config.txt".into(), config.into_bytes());
    files.insert("cmdline.txt".into(), format!("{cmdline}\n").into_bytes());
    if slot == Slot::A {
        files.insert(
            "autoboot.txt".into(),
            autoboot_txt(Slot::A, None).into_bytes(),
        );
    }
    Ok(files)
}

/// Copy the files `names` of `disk`'s BOOT-A into the folder `to` (what
/// `forge os boot-test` boots directly on QEMU's virt machine).
pub fn copy_boot_a(disk: &Path, names: &[&str], to: &Path) -> Result<(), OsError> {
    let table = slot::read_table(disk)?;
    let boot = table
        .partitions
        .get(BOOT_A)
        .ok_or_else(|| OsError::BadDisk {
            disk: disk.to_path_buf(),
            reason: "no partition 1 (not an rpi4-arm64 disk)".into(),
        })?;
    for name in names {
        slot::mtools("mcopy", disk, boot)
            .args(["-n", &format!("::/{name}")])
            .arg(to.join(name))
            .run()?;
    }
    Ok(())
}

/// The FAT of `slot`'s boot partition holding `files`.
pub fn boot_spec<'a>(
    def: &OsDef,
    seed: &Seed,
    slot: Slot,
    files: BTreeMap<String, Vec<u8>>,
) -> FatSpec<'a> {
    let (label, role) = match slot {
        Slot::A => ("BOOT-A", "boot-a-volume-id"),
        Slot::B => ("BOOT-B", "boot-b-volume-id"),
    };
    FatSpec {
        label,
        volume_id: seed.hex4(role),
        size: def.partitions.esp,
        fat32: true,
        dirs: Vec::new(),
        files,
    }
}

/// The pieces of the disk, in partition order (see the module docs).
pub fn pieces(
    def: &OsDef,
    usr: &super::usr::UsrImage,
    boot_a: PathBuf,
    oem: PathBuf,
    root: PathBuf,
) -> Vec<Piece> {
    let sizes = def.partitions;
    let piece = |label, kind, size, content| Piece {
        label,
        kind: Kind::Mbr(kind),
        size,
        content,
    };
    vec![
        piece("BOOT-A", TYPE_FAT32_LBA, sizes.esp, vec![(0, boot_a)]),
        piece("BOOT-B", TYPE_FAT32_LBA, sizes.esp, Vec::new()),
        piece(
            "USR-A",
            TYPE_LINUX,
            sizes.usr,
            vec![(0, usr.fs.clone()), (usr.fs_bytes, usr.hash.clone())],
        ),
        piece("USR-B", TYPE_LINUX, sizes.usr, Vec::new()),
        piece("OEM", TYPE_LINUX, sizes.oem, vec![(0, oem)]),
        piece("ROOT", TYPE_LINUX, sizes.root, vec![(0, root)]),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn autoboot_arms_tryboot_for_slot_b() {
        assert_eq!(
            autoboot_txt(Slot::A, None),
            "[all]\ntryboot_a_b=1\nboot_partition=1\n"
        );
        assert_eq!(
            autoboot_txt(Slot::A, Some(Slot::B)),
            "[all]\ntryboot_a_b=1\nboot_partition=1\n[tryboot]\nboot_partition=2\n"
        );
        assert_eq!(Slot::B.boot_partition(), 2);
    }

    #[test]
    fn partuuids_follow_the_mbr_numbering() {
        assert_eq!(partuuid(0x0a0b0c0d, USR_A), "0a0b0c0d-03");
        assert_eq!(partuuid(0x0a0b0c0d, USR_B), "0a0b0c0d-05");
        assert_eq!(partuuid(0x0a0b0c0d, ROOT), "0a0b0c0d-07");
        let s = Seed::for_image("node-rpi4");
        assert_eq!(signature(&s), signature(&Seed::for_image("node-rpi4")));
        assert_ne!(signature(&s), signature(&Seed::for_image("node")));
    }
}
