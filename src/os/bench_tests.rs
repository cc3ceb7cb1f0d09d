//! The assembly-time figure of docs/os.md: forge's [`assemble`] against the
//! same steps as a plain shell pipeline (mkfs.erofs + veritysetup +
//! mkfs.vfat/mmd/mcopy + mke2fs + sgdisk + dd), on one tree, in one run. Ignored by
//! default (it measures, it checks nothing a test must); run by hand:
//!
//! ```sh
//! FORGE_OS_BENCH_TREE=/usr/lib/python3 cargo test --release --lib \
//!   os::bench_tests -- --ignored --nocapture
//! ```

use std::path::Path;
use std::time::Instant;

use super::build::assemble;
use crate::image::def::{Definition, parse_any};
use crate::image::rootfs::{Entry, EntryKind, InstalledPackage, PackageMeta};

/// A host folder as one package installing it under `usr/bench/`.
fn package_of(dir: &Path) -> InstalledPackage {
    use std::os::unix::fs::PermissionsExt as _;
    let mut entries = Vec::new();
    for e in walkdir::WalkDir::new(dir).sort_by_file_name().min_depth(1) {
        let e = e.unwrap();
        let rel = e.path().strip_prefix(dir).unwrap().display().to_string();
        let path = format!("usr/bench/{rel}");
        let meta = e.path().symlink_metadata().unwrap();
        let mode = meta.permissions().mode() & 0o777;
        let kind = if meta.is_dir() {
            EntryKind::Dir
        } else if meta.file_type().is_symlink() {
            EntryKind::Symlink(std::fs::read_link(e.path()).unwrap().display().to_string())
        } else if meta.is_file() {
            EntryKind::File(std::fs::read(e.path()).unwrap_or_default())
        } else {
            continue;
        };
        let mut entry = Entry::dir(&path, mode);
        entry.kind = kind;
        entries.push(entry);
    }
    InstalledPackage {
        meta: PackageMeta {
            name: "bench".into(),
            ..PackageMeta::default()
        },
        entries,
    }
}

const DEF: &str = "schema = 1\nkind = \"os\"\nprofile = \"x86_64-uefi\"\npackages = [\"bench\"]\n\
[partitions]\nusr = \"1G\"\n[[oem]]\npath = \"forge/site.conf\"\ncontent = \"x = 1\\n\"\n";

/// The shell pipeline: the same filesystems and table from `usrtree/`.
const SCRIPT: &str = r#"set -eu
cd "$WORK"
export SOURCE_DATE_EPOCH=1700000000 TZ=UTC MTOOLS_SKIP_CHECK=1
mkfs.erofs -zlz4hc --quiet --all-root --ignore-mtime -T1700000000 \
  -U11111111-1111-4111-8111-111111111111 usr.img usrtree
veritysetup format --hash=sha256 --data-block-size=4096 --hash-block-size=4096 \
  --salt=$(printf '%064d' 1) --uuid=22222222-2222-4222-8222-222222222222 usr.img usr.hash >/dev/null
mkfs.vfat -F 32 -s 1 --invariant -i 12345678 -n EFI-SYSTEM -C esp.img 65536 >/dev/null
mmd -i esp.img ::/EFI ::/EFI/BOOT ::/EFI/Linux ::/loader
printf 'timeout 0\n' > loader.conf && touch -d @1700000000 loader.conf
mcopy -p -Q -m -o -i esp.img loader.conf ::/loader
mkfs.vfat --invariant -i 87654321 -n OEM -C oem.img 32768 >/dev/null
printf 'x = 1\n' > site.conf && touch -d @1700000000 site.conf
mmd -i oem.img ::/forge && mcopy -p -Q -m -o -i oem.img site.conf ::/forge
truncate -s 64M root.img
E2FSPROGS_FAKE_TIME=1700000000 mke2fs -q -F -t ext4 -L ROOT -U 44444444-4444-4444-8444-444444444444 \
  -E hash_seed=44444444-4444-4444-8444-444444444444,root_owner=0:0,nodiscard root.img
truncate -s $(( (1 + 64 + 1024 + 1024 + 32 + 64 + 1) * 1048576 )) disk.raw
sgdisk -U 33333333-3333-4333-8333-333333333333 \
  -n 1:2048:+64M -t 1:C12A7328-F81F-11D2-BA4B-00A0C93EC93B -c 1:EFI-SYSTEM \
  -n 2:0:+1024M -t 2:8484680C-9521-48C6-9C11-B0720656F69E -c 2:USR-A \
  -n 3:0:+1024M -t 3:8484680C-9521-48C6-9C11-B0720656F69E -c 3:USR-B \
  -n 4:0:+32M -t 4:0FC63DAF-8483-4772-8E79-3D69D8477DE4 -c 4:OEM \
  -n 5:0:+64M -t 5:4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709 -c 5:ROOT disk.raw >/dev/null
dd if=esp.img of=disk.raw bs=1M seek=1 conv=notrunc,sparse status=none
dd if=usr.img of=disk.raw bs=1M seek=65 conv=notrunc,sparse status=none
dd if=usr.hash of=disk.raw bs=4096 seek=$(( 65 * 256 + $(stat -c %s usr.img) / 4096 )) conv=notrunc,sparse status=none
dd if=oem.img of=disk.raw bs=1M seek=2113 conv=notrunc,sparse status=none
dd if=root.img of=disk.raw bs=1M seek=2145 conv=notrunc,sparse status=none
sync disk.raw
"#;

#[test]
#[ignore = "a measurement; run by hand (see the module docs)"]
fn assembly_time_against_a_shell_pipeline() {
    let tools = [
        "mkfs.erofs",
        "veritysetup",
        "mkfs.vfat",
        "mcopy",
        "mmd",
        "sgdisk",
        "mke2fs",
    ];
    if !crate::test_tools::require_tools(&tools) {
        return;
    }
    let tree = std::env::var("FORGE_OS_BENCH_TREE").unwrap_or_else(|_| "/usr/lib/python3".into());
    let Definition::Os(def) = parse_any("bench", Path::new("images/bench.toml"), DEF).unwrap()
    else {
        panic!("an OS image");
    };
    let pkg = package_of(Path::new(&tree));
    let bytes: u64 = pkg.content_size();
    let work = tempfile::tempdir().unwrap();
    let (fw, out) = (
        work.path().join("forge-work"),
        work.path().join("forge-out"),
    );
    std::fs::create_dir_all(&fw).unwrap();
    std::fs::create_dir_all(&out).unwrap();
    let t = Instant::now();
    let built = assemble(
        &def,
        &[pkg],
        &[],
        Default::default(),
        &fw,
        &out,
        1_700_000_000,
    )
    .unwrap();
    let forge_s = t.elapsed().as_secs_f64();
    // forge writes the /usr tree from the packages in memory; the shell
    // pipeline's counterpart is copying the tree (timed apart, so the ratio
    // can be read both ways).
    let sw = work.path().join("shell");
    std::fs::create_dir_all(sw.join("usrtree")).unwrap();
    let t = Instant::now();
    crate::process::Cmd::new("cp")
        .args(["-a", &tree])
        .arg(sw.join("usrtree/bench"))
        .run()
        .unwrap();
    let copy_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    crate::process::Cmd::new("bash")
        .args(["-c", SCRIPT])
        .env("WORK", &sw)
        .run()
        .unwrap();
    let shell_s = t.elapsed().as_secs_f64();
    let size = std::fs::metadata(&built.disk).unwrap().len();
    eprintln!(
        "tree {tree} ({:.1} MiB of files): forge {forge_s:.2}s; shell pipeline {shell_s:.2}s \
         + {copy_s:.2}s to copy the tree; ratio {:.2} with the copy, {:.2} without; disk {:.0} MiB",
        bytes as f64 / 1048576.0,
        forge_s / (shell_s + copy_s),
        forge_s / shell_s,
        size as f64 / 1048576.0
    );
}
