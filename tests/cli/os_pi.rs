//! The Raspberry Pi 4 disk (`profile = "rpi4-arm64"`): `forge os build`
//! writes `out/os/NAME.img`, an MBR disk that sfdisk reads with partition 1
//! as FAT32 (type c) at the planned start and size; mtools lists every boot
//! file with the expected contents (the real firmware from the
//! `raspi-firmware` recipe, `config.txt`, a one-line `cmdline.txt` naming
//! ROOT and USR-A by PARTUUID and the root hash, `autoboot.txt`);
//! `fsck.vfat -n` and `veritysetup verify` pass; two projects in different
//! folders give the same bytes.
//!
//! These tests check the layout, not a boot, so they do not build the arm64
//! kernel (tens of minutes; `os_boot_arm64.rs` does, and boots it): they
//! build a clearly-labelled stand-in kernel package (placeholder text for
//! the kernel and device trees) and a stand-in busybox (what forge's
//! initramfs carries) as `noarch`, with the real firmware recipe and a
//! small `/usr` package, and add those `noarch` packages to
//! `out/repo/aarch64` through the library (the repository takes `noarch`
//! packages in every architecture's folder).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use forge::repo::Repo;
use forge::sign::{SigningKey, TrustedKeys, find_signing_key};
use serde_json::Value;

use crate::os::{extract, out_os, partition, sha256, tool};
use crate::support::{self, Project, forge, run_err, run_ok};

/// Every host tool these tests run.
const TOOLS: [&str; 10] = [
    "mkfs.erofs",
    "veritysetup",
    "mkfs.vfat",
    "fsck.vfat",
    "mmd",
    "mcopy",
    "mdir",
    "mtype",
    "sfdisk",
    "objcopy",
];

/// A stand-in for an arm64 kernel package, clearly not one: the boot
/// partition's layout and contents are checked, nothing is booted. The
/// CM4's tree carries mainline's name (`-cm4-io`), which forge installs as
/// the `bcm2711-rpi-cm4.dtb` the firmware asks for.
const PLACEHOLDER_KERNEL: &str = r#"d=$pkgdir/usr/lib/modules/0.0-placeholder
mkdir -p $d/dtbs/broadcom $d/dtbs/overlays
printf 'FORGE TEST PLACEHOLDER: NOT A KERNEL\n' > $d/vmlinuz
for t in bcm2711-rpi-4-b bcm2711-rpi-400 bcm2711-rpi-cm4-io; do
  printf 'FORGE TEST PLACEHOLDER: NOT A DEVICE TREE (%s)\n' $t > $d/dtbs/broadcom/$t.dtb
done
printf 'FORGE TEST PLACEHOLDER: NOT AN OVERLAY\n' > $d/dtbs/overlays/disable-bt.dtbo"#;

/// A stand-in busybox: forge writes its initramfs around `/usr/bin/busybox`.
const PLACEHOLDER_BUSYBOX: &str = "mkdir -p $pkgdir/usr/bin && printf 'FORGE TEST PLACEHOLDER: NOT A BUSYBOX\\n' > $pkgdir/usr/bin/busybox";

const PI_IMAGE: &str = r#"schema = 1
kind = "os"
version = "1.0"
profile = "rpi4-arm64"
packages = ["raspi-firmware", "testkernel", "testbusybox", "motd"]
cmdline = ["console=ttyS1,115200"]
[partitions]
boot = "40M"
usr = "8M"
oem = "4M"
root = "8M"
[[oem]]
path = "forge/site.conf"
content = "registry = \"registry.lan:5000/forge\"\n"
"#;

/// The seeded firmware files, when present (see `.ci/seed-mirror.sh`).
fn ready() -> Option<PathBuf> {
    let mirror = support::require_mirror_file("start4.elf")?;
    support::require_mirror_file("fixup4.dat")?;
    (support::require_bwrap() && support::require_tools(&TOOLS)).then_some(mirror)
}

fn key(root: &Path) -> SigningKey {
    find_signing_key(&root.join("keys")).unwrap().unwrap()
}

/// A project whose `out/repo/aarch64` holds the real firmware package, the
/// stand-in kernel and `motd`, with `images/pi.toml` = `image`.
fn pi_project(mirror: &Path, image: &str) -> Project {
    let p = Project::new();
    p.copy_recipes(&["raspi-firmware"])
        .write("images/pi.toml", image);
    p.recipe("testkernel")
        .arch(&["noarch"])
        .script(PLACEHOLDER_KERNEL)
        .write();
    p.recipe("testbusybox")
        .arch(&["noarch"])
        .options(&["!strip"])
        .script(PLACEHOLDER_BUSYBOX)
        .write();
    p.recipe("motd")
        .arch(&["noarch"])
        .script("mkdir -p $pkgdir/usr/share/forge && printf 'forge on a Pi\\n' > $pkgdir/usr/share/forge/motd")
        .write();
    p.key().commit();
    let mirror = mirror.to_str().unwrap();
    run_ok(forge(p.path()).args([
        "--offline",
        "--mirror",
        mirror,
        "build",
        "raspi-firmware",
        "testkernel",
        "testbusybox",
        "motd",
        "--no-images",
    ]));
    noarch_to_aarch64(p.path());
    p
}

/// Add every package of `out/repo/x86_64` (all `noarch` here) to
/// `out/repo/aarch64` and sign its index.
pub(crate) fn noarch_to_aarch64(root: &Path) {
    let trusted = TrustedKeys::load_dir(&root.join("keys")).unwrap();
    let mut repo = Repo::open(&root.join("out/repo"), "aarch64", &trusted).unwrap();
    for e in std::fs::read_dir(root.join("out/repo/x86_64")).unwrap() {
        let path = e.unwrap().path();
        if path.extension().is_some_and(|x| x == "apk") {
            repo.add(&path).unwrap();
        }
    }
    repo.write_index(&key(root), None).unwrap();
}

fn manifest(root: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(root.join("out/os/pi.json")).unwrap()).unwrap()
}

/// `sfdisk -d` of `disk` without the device names.
fn table_dump(disk: &Path) -> String {
    let (dump, _) = run_ok(Command::new("sfdisk").arg("-d").arg(disk));
    dump.lines()
        .filter(|l| !l.starts_with("device:"))
        .map(|l| l.split_once(" : ").map_or(l, |(_, r)| r))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Names on the FAT at `offset` of `disk`, sorted.
fn listing(disk: &Path, offset: u64) -> Vec<String> {
    let (out, _) = run_ok(
        Command::new("mdir")
            .env("MTOOLS_SKIP_CHECK", "1")
            .args(["-b", "-/", "-i"])
            .arg(format!("{}@@{offset}", disk.display()))
            .arg("::/"),
    );
    let mut names: Vec<String> = out
        .lines()
        .map(|l| l.trim_start_matches("::/").to_string())
        .collect();
    names.sort();
    names
}

/// `veritysetup verify` of the USR partition `label` of `disk`.
fn verify_usr(disk: &Path, layout: &Value, label: &str, m: &Value, work: &Path) {
    let (off, len) = partition(layout, label);
    let usr = extract(disk, off, len, &work.join(label));
    let hash = m["usr_root_hash"].as_str().unwrap();
    tool(
        "veritysetup",
        &[
            "verify",
            &format!("--hash-offset={}", m["usr_hash_offset"]),
            &format!("--data-blocks={}", m["usr_data_blocks"]),
        ],
        &[&usr, &usr, Path::new(hash)],
    );
}

/// `mtype` of `file` on the FAT at `offset` of `disk`.
fn mtype(disk: &Path, offset: u64, file: &str) -> Vec<u8> {
    let out = Command::new("mtype")
        .env("MTOOLS_SKIP_CHECK", "1")
        .arg("-i")
        .arg(format!("{}@@{offset}", disk.display()))
        .arg(format!("::/{file}"))
        .output()
        .unwrap();
    assert!(out.status.success(), "mtype {file}: {out:?}");
    out.stdout
}

#[test]
fn pi_image_has_the_boot_files_and_two_builds_are_identical() {
    let Some(mirror) = ready() else {
        return;
    };
    let a = pi_project(&mirror, PI_IMAGE);
    let t = Instant::now();
    let (stdout, _) = run_ok(forge(a.path()).args(["os", "build", "pi"]));
    eprintln!("forge os build pi: {:.2}s", t.elapsed().as_secs_f64());
    // A different folder, a later time (FAT times have 2 s resolution).
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let b = pi_project(&mirror, PI_IMAGE);
    run_ok(forge(b.path()).args(["os", "build", "pi"]));
    let disk = a.path().join("out/os/pi.img");
    assert_eq!(sha256(&disk), sha256(&b.path().join("out/os/pi.img")));
    assert_eq!(out_os(a.path()), ["pi.img", "pi.json"]);
    let m = manifest(a.path());
    let root_hash = m["usr_root_hash"].as_str().unwrap().to_string();
    assert_eq!(stdout.trim(), root_hash);
    let sig = m["disk_signature"].as_str().unwrap().to_string();
    assert!(m.get("disk_guid").is_none(), "{m}");

    check_table(&disk, &m, &sig);
    let (boot, _) = partition(&m, "BOOT-A");
    check_boot_files(&disk, boot, &mirror, &m, &sig, &root_hash);
    let tmp = tempfile::tempdir().unwrap();
    let (off, len) = partition(&m, "BOOT-A");
    tool(
        "fsck.vfat",
        &["-n"],
        &[&extract(&disk, off, len, &tmp.path().join("boot"))],
    );
    let (off, len) = partition(&m, "USR-A");
    let usr = extract(&disk, off, len, &tmp.path().join("usr"));
    let fs_bytes = m["usr_hash_offset"].as_u64().unwrap();
    let blocks = m["usr_data_blocks"].as_u64().unwrap();
    tool(
        "veritysetup",
        &[
            "verify",
            &format!("--hash-offset={fs_bytes}"),
            &format!("--data-blocks={blocks}"),
        ],
        &[&usr, &usr, Path::new(&root_hash)],
    );
}

/// sfdisk's view: the signature, each partition's start, size and type as
/// the manifest and the layout say (8 MiB aligned, logical 5–7).
fn check_table(disk: &Path, m: &Value, sig: &str) {
    let (dump, _) = run_ok(Command::new("sfdisk").arg("-d").arg(disk));
    assert!(dump.contains(&format!("label-id: 0x{sig}")), "{dump}");
    let rows: Vec<(String, u64, u64, String)> = dump
        .lines()
        .filter_map(|l| l.split_once(" : "))
        .map(|(dev, rest)| {
            let field = |k: &str| {
                let v = rest
                    .split(',')
                    .find_map(|f| f.trim().strip_prefix(k))
                    .unwrap();
                v.trim().to_string()
            };
            let n = dev.trim().trim_start_matches(&disk.display().to_string());
            (
                n.to_string(),
                field("start=").parse().unwrap(),
                field("size=").parse().unwrap(),
                field("type="),
            )
        })
        .collect();
    let mib = 2048;
    let want = [
        ("1", 8 * mib, 40 * mib, "c", "BOOT-A"),
        ("2", 48 * mib, 40 * mib, "c", "BOOT-B"),
        ("3", 88 * mib, 8 * mib, "83", "USR-A"),
        ("4", 96 * mib, 48 * mib, "f", ""),
        ("5", 104 * mib, 8 * mib, "83", "USR-B"),
        ("6", 120 * mib, 8 * mib, "83", "OEM"),
        ("7", 136 * mib, 8 * mib, "83", "ROOT"),
    ];
    assert_eq!(rows.len(), want.len(), "{dump}");
    for (row, (n, start, size, kind, label)) in rows.iter().zip(want) {
        assert_eq!(
            (row.0.as_str(), row.1, row.2, row.3.as_str()),
            (n, start, size, kind),
            "{dump}"
        );
        if !label.is_empty() {
            let (off, len) = partition(m, label);
            assert_eq!((off / 512, len / 512), (start, size), "{label}");
        }
    }
    let parts = m["partitions"].as_array().unwrap();
    let usr_b = parts.iter().find(|p| p["label"] == "USR-B").unwrap();
    assert_eq!(usr_b["partuuid"], format!("{sig}-05").as_str());
}

/// Every file on BOOT-A, with its content.
fn check_boot_files(disk: &Path, boot: u64, mirror: &Path, m: &Value, sig: &str, hash: &str) {
    let (listing, _) = run_ok(
        Command::new("mdir")
            .env("MTOOLS_SKIP_CHECK", "1")
            .args(["-b", "-/", "-i"])
            .arg(format!("{}@@{boot}", disk.display()))
            .arg("::/"),
    );
    let mut names: Vec<&str> = listing
        .lines()
        .map(|l| l.trim_start_matches("::/"))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "autoboot.txt",
            "bcm2711-rpi-4-b.dtb",
            "bcm2711-rpi-400.dtb",
            "bcm2711-rpi-cm4.dtb",
            "cmdline.txt",
            "config.txt",
            "fixup4.dat",
            "initramfs8",
            "kernel8.img",
            "overlays/",
            "overlays/disable-bt.dtbo",
            "start4.elf",
        ]
    );
    for f in ["start4.elf", "fixup4.dat"] {
        let real = std::fs::read(mirror.join(f)).unwrap();
        assert!(mtype(disk, boot, f) == real, "{f} is the firmware file");
    }
    let text = |f: &str| String::from_utf8(mtype(disk, boot, f)).unwrap();
    assert_eq!(
        text("config.txt"),
        "# forge pi 1.0 (rpi4-arm64), slot A: written by forge os build\n\
         arm_64bit=1\nkernel=kernel8.img\ninitramfs initramfs8 followkernel\nenable_uart=1\n"
    );
    assert_eq!(
        text("autoboot.txt"),
        "[all]\ntryboot_a_b=1\nboot_partition=1\n"
    );
    let cmdline = text("cmdline.txt");
    assert_eq!(cmdline.lines().count(), 1, "{cmdline:?}");
    assert_eq!(cmdline.trim_end(), m["cmdline"].as_str().unwrap());
    // The kernel sets up the verity /usr from dm-mod.create=, as on x86_64:
    // USR-A by PARTUUID, the hash tree one block past the filesystem.
    let blocks = m["usr_data_blocks"].as_u64().unwrap();
    let salt = cmdline
        .split(&format!(" sha256 {hash} "))
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_default();
    assert!(
        salt.len() == 64 && salt.bytes().all(|b| b.is_ascii_hexdigit()),
        "{cmdline}"
    );
    let usr = format!("PARTUUID={sig}-03");
    assert_eq!(
        cmdline,
        format!(
            "console=ttyS1,115200 root=PARTUUID={sig}-07 rootwait \
             dm-mod.create=\"usr,,,ro,0 {} verity 1 {usr} {usr} 4096 4096 {blocks} {} \
             sha256 {hash} {salt}\" dm-mod.waitfor={usr} \
             mount.usr={usr} mount.usrflags=ro usrhash={hash}\n",
            blocks * 8,
            blocks + 1
        )
    );
    assert!(text("kernel8.img").starts_with("FORGE TEST PLACEHOLDER: NOT A KERNEL"));
    // forge's initramfs (the kernel package has none): a newc cpio of the
    // /usr's busybox and forge's /init.
    let initramfs = mtype(disk, boot, "initramfs8");
    assert!(initramfs.starts_with(b"070701"), "a newc cpio");
    let has = |needle: &[u8]| initramfs.windows(needle.len()).any(|w| w == needle);
    assert!(has(b"FORGE TEST PLACEHOLDER: NOT A BUSYBOX"));
    assert!(has(b"forge initramfs /init"));
    assert!(text("bcm2711-rpi-cm4.dtb").contains("(bcm2711-rpi-cm4-io)"));
    assert!(text("bcm2711-rpi-4-b.dtb").contains("(bcm2711-rpi-4-b)"));
}

#[test]
fn a_pi_image_without_firmware_names_the_missing_file() {
    let Some(mirror) = ready() else {
        return;
    };
    let p = pi_project(&mirror, &PI_IMAGE.replace(r#""raspi-firmware", "#, ""));
    let err = run_err(forge(p.path()).args(["os", "build", "pi"]));
    assert!(
        err.contains("/usr/lib/raspi-firmware/start4.elf is missing: the rpi4-arm64 boot partition needs it (from raspi-firmware)"),
        "{err}"
    );
    assert!(out_os(p.path()).is_empty(), "{:?}", out_os(p.path()));
}

#[test]
fn apply_writes_slot_b_from_a_newer_build_and_arms_tryboot() {
    let Some(mirror) = ready() else {
        return;
    };
    let p = pi_project(&mirror, PI_IMAGE);
    let root = p.path();
    run_ok(forge(root).args(["os", "build", "pi"]));
    let node = root.join("node.img");
    std::fs::copy(root.join("out/os/pi.img"), &node).unwrap();
    let old = manifest(root);
    // A newer /usr: another motd, version 1.1.
    p.recipe("motd")
        .arch(&["noarch"])
        .script("mkdir -p $pkgdir/usr/share/forge && printf 'forge 1.1 on a Pi\\n' > $pkgdir/usr/share/forge/motd")
        .write();
    p.write(
        "images/pi.toml",
        &PI_IMAGE.replace("version = \"1.0\"", "version = \"1.1\""),
    );
    support::git_commit_all(root, "@1700000100 +0000");
    run_ok(forge(root).args(["build", "motd", "--no-images"]));
    noarch_to_aarch64(root);
    run_ok(forge(root).args(["os", "build", "pi"]));
    let new = manifest(root);
    let source = root.join("out/os/pi.img");
    assert_ne!(old["usr_root_hash"], new["usr_root_hash"]);

    let t = Instant::now();
    let (stdout, _) = run_ok(forge(root).arg("os").arg("apply").arg(&node).arg(&source));
    eprintln!("forge os apply: {:.2}s", t.elapsed().as_secs_f64());
    assert_eq!(stdout.trim(), new["usr_root_hash"].as_str().unwrap());
    assert_eq!(
        table_dump(&node),
        table_dump(&source),
        "the table is unchanged"
    );
    let sig = old["disk_signature"].as_str().unwrap();
    let (boot_a, _) = partition(&old, "BOOT-A");
    let (boot_b, boot_b_len) = partition(&old, "BOOT-B");
    assert_eq!(
        String::from_utf8(mtype(&node, boot_a, "autoboot.txt")).unwrap(),
        "[all]\ntryboot_a_b=1\nboot_partition=1\n[tryboot]\nboot_partition=2\n"
    );
    // Slot A is untouched: its cmdline and /usr are the old build's.
    assert_eq!(
        String::from_utf8(mtype(&node, boot_a, "cmdline.txt"))
            .unwrap()
            .trim_end(),
        old["cmdline"].as_str().unwrap()
    );
    let tmp = tempfile::tempdir().unwrap();
    verify_usr(&node, &old, "USR-A", &old, tmp.path());
    // Slot B: the new /usr, and BOOT-A's files of the new build naming USR-B.
    verify_usr(&node, &old, "USR-B", &new, tmp.path());
    let mut want = listing(&source, boot_a);
    want.retain(|n| n != "autoboot.txt");
    assert_eq!(listing(&node, boot_b), want);
    let cmdline = String::from_utf8(mtype(&node, boot_b, "cmdline.txt")).unwrap();
    assert_eq!(
        cmdline,
        format!(
            "{}\n",
            new["cmdline"]
                .as_str()
                .unwrap()
                .replace(&format!("{sig}-03"), &format!("{sig}-05"))
        )
    );
    assert!(cmdline.contains(&format!("mount.usr=PARTUUID={sig}-05 ")));
    assert!(!cmdline.contains(&format!("{sig}-03")), "{cmdline}");
    let config = String::from_utf8(mtype(&node, boot_b, "config.txt")).unwrap();
    assert!(
        config.starts_with("# forge pi 1.1 (rpi4-arm64), slot B:"),
        "{config}"
    );
    assert_eq!(
        mtype(&node, boot_b, "start4.elf"),
        mtype(&source, boot_a, "start4.elf")
    );
    let b = extract(&node, boot_b, boot_b_len, &tmp.path().join("boot-b"));
    tool("fsck.vfat", &["-n"], &[&b]);

    // Once B is committed, writing slot A is refused and the disk is kept.
    let committed = tmp.path().join("autoboot.txt");
    std::fs::write(&committed, "[all]\ntryboot_a_b=1\nboot_partition=2\n").unwrap();
    run_ok(
        Command::new("mcopy")
            .env("MTOOLS_SKIP_CHECK", "1")
            .arg("-o")
            .arg("-i")
            .arg(format!("{}@@{boot_a}", node.display()))
            .arg(&committed)
            .arg("::/autoboot.txt"),
    );
    let before = sha256(&node);
    let err = run_err(forge(root).arg("os").arg("apply").arg(&node).arg(&source));
    assert!(
        err.contains("slot B is committed (boot_partition=2)"),
        "{err}"
    );
    assert_eq!(sha256(&node), before);
    // An update for another image (another disk signature) is refused.
    let other = tmp.path().join("other.img");
    std::fs::copy(&node, &other).unwrap();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&other)
        .unwrap();
    std::os::unix::fs::FileExt::write_all_at(&f, &[1, 2, 3, 4], 0x1B8).unwrap();
    let err = run_err(forge(root).arg("os").arg("apply").arg(&other).arg(&source));
    assert!(err.contains("an update for another image"), "{err}");
}
