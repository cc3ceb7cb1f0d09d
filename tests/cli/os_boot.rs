//! The node OS image booted for real: the `linux` recipe built from Debian's
//! `linux-source-6.1` tarball (through a recipe copy whose source points at
//! it: Debian's tarball is repacked, so it is not the kernel.org file the
//! recipe pins), busybox and crun from the seeded mirror, `node-init`, the
//! `hello` image on OEM, all made by `forge build os:node` (the planner's OS
//! unit); then `forge os boot-test node` under QEMU/TCG with OVMF reaches
//! the node's marker, ROOT's (an ext4 with a journal) and hello's greeting
//! printed by crun, and a copy with one byte flipped inside USR-A's
//! filesystem fails with a dm-verity error. The kernel is built once, and
//! the same project then shows the A/B update: `forge os apply` of a 0.2
//! payload to a copy of the 0.1 disk boots slot B (`node 0.2`), and with B's
//! UKI out of tries (`+0-3`) systemd-boot falls back to A (`node 0.1`).

use std::path::Path;

use crate::support::{self, Project, forge, run_err, run_ok};

/// Debian's kernel source tarball (package linux-source-6.1).
const LINUX_SOURCE: &str = "/usr/src/linux-source-6.1.tar.xz";
/// The hello example's greeting (recipes/hello/hello.h).
const GREETING: &str = "Hello from forge!";

fn ready() -> bool {
    support::require_bwrap()
        && support::require_tools(&[
            "qemu-system-x86_64",
            "mkfs.erofs",
            "veritysetup",
            "mkfs.vfat",
            "mmd",
            "mcopy",
            "objcopy",
            "bc",
            "flex",
            "bison",
            "mren",
        ])
        && support::require_file(Path::new("/usr/share/OVMF/OVMF_CODE_4M.fd"))
        && support::require_file(Path::new("/usr/lib/systemd/boot/efi/linuxx64.efi.stub"))
        && support::require_file(Path::new(LINUX_SOURCE))
}

fn sha256(path: &Path) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

/// Point the project's copy of `recipes/linux` at Debian's tarball.
pub(crate) fn use_debian_kernel_source(p: &Project) {
    let file = p.path().join("recipes/linux/recipe.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    let url_line = text
        .lines()
        .find(|l| l.starts_with("url = \"https://cdn.kernel.org/"))
        .expect("the linux recipe's kernel.org url")
        .to_string();
    let sha_line = text
        .lines()
        .find(|l| l.starts_with("sha256 = "))
        .unwrap()
        .to_string();
    let text = text
        .replace(&url_line, &format!("url = \"file://{LINUX_SOURCE}\""))
        .replace(
            &sha_line,
            &format!("sha256 = \"{}\"", sha256(Path::new(LINUX_SOURCE))),
        );
    std::fs::write(&file, text).unwrap();
}

/// A project with the repository's recipes, forge.toml and images, every
/// package of the node image built and the hello image made.
fn node_project(mirror: &Path) -> Project {
    let p = Project::new();
    p.copy_from_repo("recipes")
        .copy_from_repo("forge.toml")
        .copy_from_repo("images")
        .key()
        .commit();
    // The public key node.toml's [containers] trust loop needs.
    std::fs::copy(
        support::cosign_fixture("kat.pub"),
        p.path().join("keys/forge-kat.cosign.pub"),
    )
    .unwrap();
    use_debian_kernel_source(&p);
    let t = std::time::Instant::now();
    let offline = |p: &Project| {
        let mut c = forge(p.path());
        c.arg("--offline").arg("--mirror").arg(mirror);
        c
    };
    run_ok(offline(&p).args(["build", "hello", "--no-images"]));
    run_ok(forge(p.path()).args(["image", "hello"]));
    // `forge build` makes the disk: the OS unit builds the recipes making
    // its packages (the kernel, busybox, crun, node-init), then the image.
    let (_, err) = run_ok(offline(&p).args(["build", "os:node"]));
    eprintln!(
        "node packages and disk built in {:.0}s",
        t.elapsed().as_secs_f64()
    );
    let built = |unit: &str| {
        err.lines()
            .any(|l| l.contains("Summary") && l.contains(unit) && l.contains("built"))
    };
    for unit in ["linux", "busybox", "crun", "node-init", "os:node"] {
        assert!(built(unit), "`forge build os:node` built no {unit}:\n{err}");
    }
    assert!(p.path().join("out/os/node.raw").is_file());
    p
}

/// Flip one byte of `disk` at `offset`.
fn flip_byte(disk: &Path, offset: u64) {
    use std::io::{Read as _, Seek as _, Write as _};
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(disk)
        .unwrap();
    f.seek(std::io::SeekFrom::Start(offset)).unwrap();
    let mut b = [0u8; 1];
    f.read_exact(&mut b).unwrap();
    f.seek(std::io::SeekFrom::Start(offset)).unwrap();
    f.write_all(&[b[0] ^ 0xff]).unwrap();
}

#[test]
fn node_image_boots_to_its_marker_and_hello_a_flipped_usr_byte_is_a_verity_error_and_an_update_boots_slot_b()
 {
    let Some(mirror) = support::require_mirror_file("busybox-1.35.0.tar.bz2") else {
        return;
    };
    // crun is built with forge's musl base: argp's source too.
    let crun_sources = ["crun-1.8.1.tar.xz", "inetutils-2.4.tar.xz"];
    if crun_sources
        .iter()
        .any(|f| support::require_mirror_file(f).is_none())
        || !ready()
    {
        return;
    }
    let p = node_project(&mirror);
    let stage = p.path().join("out/stage/linux/linux/usr/lib/modules");
    let release = std::fs::read_dir(&stage).unwrap().next().unwrap().unwrap();
    let vmlinuz = std::fs::read(release.path().join("vmlinuz")).unwrap();
    assert_eq!(&vmlinuz[..2], b"MZ", "the EFI stub's PE header");
    assert_eq!(
        &vmlinuz[0x202..0x206],
        b"HdrS",
        "an x86 boot protocol header"
    );

    let (out, err) = run_ok(forge(p.path()).args([
        "os",
        "boot-test",
        "node",
        "--timeout",
        "900",
        "--expect",
        GREETING,
    ]));
    let log = std::fs::read_to_string(p.path().join("out/os/node.boot.log")).unwrap();
    let marker = log
        .lines()
        .find(|l| l.contains("forge-node: up"))
        .unwrap_or_default();
    assert!(
        marker.contains("node 0.1, /usr is /dev/dm-0"),
        "{marker}\n{out}{err}"
    );
    // ROOT: forge's empty ext4, mounted by the kernel with its journal.
    assert!(
        log.contains("forge-node: root: /dev/vda5 is ext4 with a journal"),
        "{log}"
    );
    assert!(
        log.contains("forge-node: starting container hello with crun"),
        "{log}"
    );
    assert!(log.lines().any(|l| l.trim_end() == GREETING), "{log}");

    // One byte inside USR-A's erofs (block 0, before the erofs superblock,
    // so only dm-verity can notice it) on a copy of the disk.
    let usr_a = partition(&p, "USR-A")["offset"].as_u64().unwrap();
    let bad = p.path().join("bad.raw");
    std::fs::copy(p.path().join("out/os/node.raw"), &bad).unwrap();
    flip_byte(&bad, usr_a + 100);
    let err = run_err(
        forge(p.path())
            .args(["os", "boot-test", "node", "--timeout", "900", "--disk"])
            .arg(&bad),
    );
    assert!(err.contains("dm-verity error"), "{err}");
    assert!(err.contains("is corrupted"), "{err}");
    let log = std::fs::read_to_string(p.path().join("out/os/node.boot.log")).unwrap();
    assert!(!log.contains("forge-node: up"), "{log}");

    let t = std::time::Instant::now();
    slot_b_boots_after_apply_and_a_falls_back(&p, usr_a);
    eprintln!(
        "slot B: payload, apply and two boots in {:.0}s",
        t.elapsed().as_secs_f64()
    );
}

/// The partition `label` of the manifest `out/os/node.json`.
fn partition(p: &Project, label: &str) -> serde_json::Value {
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(p.path().join("out/os/node.json")).unwrap()).unwrap();
    manifest["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["label"] == label)
        .unwrap()
        .clone()
}

/// Boot `disk` to the node's marker and return that line and the log.
fn boot_marker(p: &Project, disk: &Path) -> (String, String) {
    let (_, err) = run_ok(
        forge(p.path())
            .args(["os", "boot-test", "node", "--timeout", "900", "--disk"])
            .arg(disk),
    );
    eprintln!("{}", err.trim_end());
    let log = std::fs::read_to_string(p.path().join("out/os/node.boot.log")).unwrap();
    let marker = log
        .lines()
        .find(|l| l.contains("forge-node: up"))
        .unwrap_or_default()
        .to_string();
    (marker, log)
}

/// The A/B update on a copy of the 0.1 disk: a 0.2 payload applied to USR-B
/// boots B; B out of tries boots A.
fn slot_b_boots_after_apply_and_a_falls_back(p: &Project, usr_a_offset: u64) {
    let disk = p.path().join("node-0.1.raw");
    std::fs::copy(p.path().join("out/os/node.raw"), &disk).unwrap();
    let esp = partition(p, "EFI-SYSTEM")["offset"].as_u64().unwrap();
    let usr_b = partition(p, "USR-B")["partuuid"]
        .as_str()
        .unwrap()
        .to_string();
    let file = p.path().join("images/node.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("\nversion = \"0.1\"\n"), "{text}");
    std::fs::write(
        &file,
        text.replace("\nversion = \"0.1\"\n", "\nversion = \"0.2\"\n"),
    )
    .unwrap();
    run_ok(support::forge_signing(p.path()).args(["os", "payload", "node"]));
    run_ok(
        forge(p.path())
            .args(["os", "apply"])
            .arg(&disk)
            .arg(p.path().join("out/os/node.payload"))
            .arg("--key")
            .arg(support::cosign_fixture("kat.pub")),
    );
    assert_eq!(
        partition(p, "USR-A")["offset"].as_u64(),
        Some(usr_a_offset),
        "the 0.2 build keeps the layout"
    );

    // systemd-boot boots the newest entry, B's `node-0.2+3.efi`, whose
    // dm-verity table names USR-B; B's /usr says 0.2.
    let (marker, log) = boot_marker(p, &disk);
    assert!(
        marker.contains("up: node 0.2, /usr is /dev/dm-0"),
        "{marker}\n{log}"
    );
    let cmdline = log
        .lines()
        .find(|l| l.contains("Kernel command line:"))
        .unwrap_or_default();
    assert!(
        cmdline.contains(&format!("verity 1 PARTUUID={usr_b} PARTUUID={usr_b} ")),
        "{cmdline}"
    );
    assert!(log.contains("forge-node: root: /dev/vda5 is ext4"), "{log}");

    // Three failed tries later B's entry is `+0-3`: sorted after every
    // other, so A boots again.
    run_ok(
        std::process::Command::new("mren")
            .arg("-i")
            .arg(format!("{}@@{esp}", disk.display()))
            .arg("::/EFI/Linux/node-0.2+3.efi")
            .arg("::/EFI/Linux/node-0.2+0-3.efi"),
    );
    let (marker, log) = boot_marker(p, &disk);
    assert!(
        marker.contains("up: node 0.1, /usr is /dev/dm-0"),
        "{marker}\n{log}"
    );
}
