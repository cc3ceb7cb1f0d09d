//! The Raspberry Pi 4 image booted for real, on QEMU's arm64 `virt`
//! machine: the `linux` recipe cross-built for aarch64 (`forge build --arch
//! aarch64`, the host's `aarch64-linux-gnu-gcc`) from Debian's
//! `linux-source-6.1` tarball (through a recipe copy, as in `os_boot.rs`),
//! then `forge os build node-rpi4` and `forge os boot-test node-rpi4`:
//! BOOT-A's `kernel8.img`, forge's `initramfs8` and `cmdline.txt` boot
//! under `-M virt -cpu cortex-a72` (TCG) to the node's marker, printed from
//! the verity `/usr`.
//!
//! Two stand-ins, until the aarch64 packages exist (docs/os.md):
//! - busybox: the real recipe compiles with zig against forge's musl, but
//!   its makedepends (zig, an x86_64 package) cannot be installed into an
//!   aarch64 build yet; the test builds the same upstream tarball with the
//!   host's `aarch64-linux-gnu-gcc`, static, into the same paths;
//! - crun: there is no aarch64 crun package yet, so the image is
//!   `images/node-rpi4.toml` without it, and `node-init` (scripts only) is
//!   built `noarch` without its crun dependency.

use std::path::Path;

use crate::os_boot::use_debian_kernel_source;
use crate::os_pi::noarch_to_aarch64;
use crate::support::{self, Project, forge, run_ok};

/// Debian's kernel source tarball (package linux-source-6.1).
const LINUX_SOURCE: &str = "/usr/src/linux-source-6.1.tar.xz";

/// busybox from the real recipe's tarball, cross-compiled static with the
/// host's gcc for `$CARCH` (the `${carch}` tool makes it a cross build).
const CROSS_BUSYBOX: &str = r#"schema = 1
[package]
name = "busybox"
version = "1.35.0"
description = "busybox, cross-compiled with the host's gcc (test stand-in)"
license = "GPL-2.0-only"
arch = ["aarch64"]
options = ["!strip"]
[[source]]
url = "https://busybox.net/downloads/busybox-${version}.tar.bz2"
sha256 = "faeeb244c35a348a334f4a59e44626ee870fb07b6884d68c10ae8bc19f83a694"
[build]
tools = ["cc", "make", "${carch}-linux-gnu-gcc"]
script = '''
export KCONFIG_NOTIMESTAMP=1 KBUILD_BUILD_TIMESTAMP="@$SOURCE_DATE_EPOCH"
bb() { make CROSS_COMPILE="$CARCH-linux-gnu-" HOSTCC=cc SKIP_STRIP=y "$@"; }
bb defconfig
sed -i -e 's/^CONFIG_TC=y$/# CONFIG_TC is not set/' \
  -e 's/^# CONFIG_STATIC is not set$/CONFIG_STATIC=y/' .config
bb oldconfig </dev/null
grep -qx 'CONFIG_STATIC=y' .config
bb -j"$JOBS" busybox
bb CONFIG_PREFIX="$pkgdir" install
rm -f "$pkgdir/linuxrc"
'''
"#;

fn ready() -> bool {
    support::require_bwrap()
        && support::require_tools(&[
            "qemu-system-aarch64",
            "aarch64-linux-gnu-gcc",
            "mkfs.erofs",
            "veritysetup",
            "mkfs.vfat",
            "mmd",
            "mcopy",
            "bc",
            "flex",
            "bison",
        ])
        && support::require_file(Path::new(LINUX_SOURCE))
}

/// `images/node-rpi4.toml` without crun (see the module docs), with
/// `node-init` for the marker.
fn node_rpi4_without_crun(p: &Project) {
    let file = p.path().join("images/node-rpi4.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    let packages = text
        .lines()
        .find(|l| l.starts_with("packages = "))
        .unwrap()
        .to_string();
    assert!(packages.contains("\"crun\""), "{packages}");
    let text = text.replace(
        &packages,
        r#"packages = ["linux", "busybox", "node-init", "raspi-firmware"]"#,
    );
    std::fs::write(&file, text).unwrap();
    let file = p.path().join("recipes/node-init/recipe.toml");
    let text = std::fs::read_to_string(&file)
        .unwrap()
        .replace("arch = [\"x86_64\"]", "arch = [\"noarch\"]")
        .replace(
            "depends = [\"busybox\", \"crun\"]",
            "depends = [\"busybox\"]",
        );
    std::fs::write(&file, text).unwrap();
}

#[test]
fn pi_image_boots_on_arm64_virt_to_its_marker_from_the_verity_usr() {
    let Some(mirror) = support::require_mirror_file("busybox-1.35.0.tar.bz2") else {
        return;
    };
    if support::require_mirror_file("start4.elf").is_none() || !ready() {
        return;
    }
    let p = Project::new();
    p.copy_recipes(&["linux", "node-init", "raspi-firmware"])
        .copy_from_repo("forge.toml")
        .copy_from_repo("images/node-rpi4.toml")
        .write("recipes/busybox/recipe.toml", CROSS_BUSYBOX)
        .key()
        .commit();
    std::fs::copy(
        support::cosign_fixture("kat.pub"),
        p.path().join("keys/forge-kat.cosign.pub"),
    )
    .unwrap();
    use_debian_kernel_source(&p);
    node_rpi4_without_crun(&p);
    support::git_commit_all(p.path(), "@1700000100 +0000");
    let offline = |args: &[&str]| {
        let mut c = forge(p.path());
        c.arg("--offline").arg("--mirror").arg(&mirror).args(args);
        run_ok(&mut c)
    };
    // The noarch packages land in the host's repository; the Pi's /usr is
    // made from out/repo/aarch64.
    offline(&["build", "raspi-firmware", "node-init", "--no-images"]);
    noarch_to_aarch64(p.path());
    let t = std::time::Instant::now();
    offline(&[
        "build",
        "--arch",
        "aarch64",
        "linux",
        "busybox",
        "--no-images",
    ]);
    eprintln!(
        "aarch64 linux + busybox built in {:.0}s",
        t.elapsed().as_secs_f64()
    );
    let stage = p.path().join("out/stage/linux/linux/usr/lib/modules");
    let release = std::fs::read_dir(&stage).unwrap().next().unwrap().unwrap();
    let image = std::fs::read(release.path().join("vmlinuz")).unwrap();
    assert_eq!(&image[56..60], b"ARMd", "an arm64 Image header");
    for dtb in ["bcm2711-rpi-4-b", "bcm2711-rpi-400", "bcm2711-rpi-cm4-io"] {
        let tree = std::fs::read(release.path().join(format!("dtbs/broadcom/{dtb}.dtb"))).unwrap();
        assert_eq!(
            &tree[..4],
            &[0xd0, 0x0d, 0xfe, 0xed],
            "{dtb}: a flattened device tree"
        );
    }

    let t = std::time::Instant::now();
    run_ok(forge(p.path()).args(["os", "build", "node-rpi4"]));
    eprintln!("node-rpi4 image built in {:.1}s", t.elapsed().as_secs_f64());
    let (out, err) =
        run_ok(forge(p.path()).args(["os", "boot-test", "node-rpi4", "--timeout", "900"]));
    eprintln!("{err}");
    let log = std::fs::read_to_string(p.path().join("out/os/node-rpi4.boot.log")).unwrap();
    assert!(log.contains("Machine model: linux,dummy-virt"), "{log}");
    let marker = log
        .lines()
        .find(|l| l.contains("forge-node: up"))
        .unwrap_or_default();
    assert!(
        marker.contains("node-rpi4 0.1, /usr is /dev/dm-0"),
        "{marker}\n{out}{err}"
    );
}
