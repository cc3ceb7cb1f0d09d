//! OS disk images (`forge os build`): the disk from the example `hello`
//! package passes sgdisk, fsck.vfat, fsck.erofs and `veritysetup verify`
//! with its root hash; two projects in different folders, built at
//! different times, give the same bytes; bad input is a clear error that
//! leaves no partial `out/os/*.raw`.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::support::{self, Project, forge, run_err, run_ok};

/// Every host tool these tests run.
const TOOLS: [&str; 12] = [
    "mkfs.erofs",
    "fsck.erofs",
    "veritysetup",
    "mkfs.vfat",
    "fsck.vfat",
    "mmd",
    "mcopy",
    "sgdisk",
    "objcopy",
    "objdump",
    "e2fsck",
    "dumpe2fs",
];

/// A stand-in for the kernel package, clearly not a kernel: the UKI is
/// assembled and checked for its sections and `.cmdline`, not booted.
const PLACEHOLDER_KERNEL: &str = "mkdir -p $pkgdir/usr/lib/modules/0.0-placeholder
printf 'FORGE TEST PLACEHOLDER: NOT A KERNEL\\n' > $pkgdir/usr/lib/modules/0.0-placeholder/vmlinuz
printf 'FORGE TEST PLACEHOLDER: NOT AN INITRAMFS\\n' > $pkgdir/usr/lib/modules/0.0-placeholder/initrd";

pub(crate) const OS_IMAGE: &str = r#"schema = 1
kind = "os"
version = "1.0"
profile = "x86_64-uefi"
packages = ["hello", "testkernel"]
cmdline = ["console=ttyS0"]
[partitions]
esp = "40M"
usr = "4M"
oem = "4M"
root = "8M"
[[oem]]
path = "forge/site.conf"
content = "registry = \"registry.lan:5000/forge\"\n"
[containers]
registry = "registry.lan:5000/forge"
"#;

pub(crate) fn ready() -> bool {
    support::require_bwrap()
        && support::require_tools(&TOOLS)
        && support::require_file(Path::new("/usr/lib/systemd/boot/efi/linuxx64.efi.stub"))
}

/// A project with the `hello` example and a placeholder kernel built and
/// `images/t.toml` = `image`.
pub(crate) fn project_with_hello(image: &str) -> Project {
    let p = Project::new();
    p.copy_recipes(&["hello"]).write("images/t.toml", image);
    p.recipe("testkernel").script(PLACEHOLDER_KERNEL).write();
    p.key().commit();
    image_public_key(p.path());
    run_ok(forge(p.path()).args(["build", "hello", "testkernel", "--no-images"]));
    p
}

/// The image-signing public key the node will trust: the committed test
/// key's, as `forge keygen --image` would leave it in `keys/`.
fn image_public_key(root: &Path) {
    std::fs::copy(
        support::cosign_fixture("kat.pub"),
        root.join("keys/forge-kat.cosign.pub"),
    )
    .unwrap();
}

pub(crate) fn manifest(root: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(root.join("out/os/t.json")).unwrap()).unwrap()
}

pub(crate) fn sha256(path: &Path) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

/// Copy `len` bytes at `offset` of `disk` into a file of their own.
pub(crate) fn extract(disk: &Path, offset: u64, len: u64, to: &Path) -> PathBuf {
    use std::io::{Read as _, Seek as _};
    let mut f = std::fs::File::open(disk).unwrap();
    f.seek(std::io::SeekFrom::Start(offset)).unwrap();
    let mut buf = vec![0u8; len as usize];
    f.read_exact(&mut buf).unwrap();
    std::fs::write(to, buf).unwrap();
    to.to_path_buf()
}

pub(crate) fn partition(m: &Value, label: &str) -> (u64, u64) {
    let p = m["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["label"] == label)
        .unwrap_or_else(|| panic!("no partition {label}"));
    (p["offset"].as_u64().unwrap(), p["size"].as_u64().unwrap())
}

pub(crate) fn tool(program: &str, args: &[&str], paths: &[&Path]) -> String {
    let (out, err) = run_ok(Command::new(program).args(args).args(paths));
    format!("{out}{err}")
}

/// Names of files in `out/os/`: no temporary leftovers, no partial disk.
pub(crate) fn out_os(root: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root.join("out/os"))
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn os_image_passes_the_checks_and_two_builds_are_identical() {
    if !ready() {
        return;
    }
    let a = project_with_hello(OS_IMAGE);
    let (stdout, _) = run_ok(forge(a.path()).args(["os", "build", "t"]));
    // A different folder, a later time (FAT times have 2 s resolution).
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let b = project_with_hello(OS_IMAGE);
    run_ok(forge(b.path()).args(["image", "t"]));
    let disk = a.path().join("out/os/t.raw");
    let m = manifest(a.path());
    let root_hash = m["usr_root_hash"].as_str().unwrap().to_string();
    assert_eq!(stdout.trim(), root_hash, "the root hash is forge's output");
    assert_eq!(sha256(&disk), sha256(&b.path().join("out/os/t.raw")));
    assert_eq!(manifest(b.path())["usr_root_hash"], root_hash.as_str());
    assert_eq!(out_os(a.path()), ["t.json", "t.raw"]);

    let gpt = tool("sgdisk", &["-v"], &[&disk]);
    assert!(gpt.contains("No problems found"), "{gpt}");
    let parts = tool("sgdisk", &["-p"], &[&disk]);
    for label in ["EFI-SYSTEM", "USR-A", "USR-B", "OEM", "ROOT"] {
        assert!(parts.contains(label), "{parts}");
    }
    let tmp = tempfile::tempdir().unwrap();
    let (off, len) = partition(&m, "EFI-SYSTEM");
    let esp = extract(&disk, off, len, &tmp.path().join("esp"));
    tool("fsck.vfat", &["-n"], &[&esp]);
    // The UKI: systemd-boot's stub with the placeholder kernel, the
    // initramfs, os-release and the command line with the root hash.
    assert_eq!(m["uki"], "EFI/Linux/t-1.0.efi");
    let uki = tmp.path().join("uki.efi");
    let boot = tmp.path().join("boot.efi");
    for (from, to) in [
        ("::/EFI/Linux/t-1.0.efi", &uki),
        ("::/EFI/BOOT/BOOTX64.EFI", &boot),
    ] {
        run_ok(
            Command::new("mcopy")
                .env("MTOOLS_SKIP_CHECK", "1")
                .arg("-i")
                .arg(&esp)
                .arg(from)
                .arg(to),
        );
    }
    assert_eq!(
        std::fs::read(&boot).unwrap(),
        std::fs::read("/usr/lib/systemd/boot/efi/systemd-bootx64.efi").unwrap()
    );
    let sections = tool("objdump", &["-h"], &[&uki]);
    for s in [".osrel", ".cmdline", ".linux", ".initrd"] {
        assert!(sections.contains(s), "{sections}");
    }
    let section = |name: &str| {
        let out = tmp.path().join(name.trim_start_matches('.'));
        run_ok(
            Command::new("objcopy")
                .args(["-O", "binary", "--only-section", name])
                .arg(&uki)
                .arg(&out),
        );
        String::from_utf8(std::fs::read(&out).unwrap()).unwrap()
    };
    assert_eq!(
        section(".cmdline").trim_end(),
        m["cmdline"].as_str().unwrap()
    );
    assert!(section(".linux").starts_with("FORGE TEST PLACEHOLDER: NOT A KERNEL"));
    assert!(section(".osrel").contains("IMAGE_VERSION=1.0"));

    let (off, len) = partition(&m, "OEM");
    let oem = extract(&disk, off, len, &tmp.path().join("oem"));
    tool("fsck.vfat", &["-n"], &[&oem]);
    let (site, _) = run_ok(
        Command::new("mtype")
            .env("MTOOLS_SKIP_CHECK", "1")
            .arg("-i")
            .arg(&oem)
            .arg("::/forge/site.conf"),
    );
    assert_eq!(site, "registry = \"registry.lan:5000/forge\"\n");

    // ROOT: an empty ext4 (journal, extents) filling its partition.
    let (off, len) = partition(&m, "ROOT");
    let root = extract(&disk, off, len, &tmp.path().join("root"));
    tool("e2fsck", &["-f", "-n"], &[&root]);
    let head = tool("dumpe2fs", &["-h"], &[&root]);
    assert!(head.contains("Filesystem volume name:   ROOT"), "{head}");
    let features = head
        .lines()
        .find(|l| l.starts_with("Filesystem features:"))
        .unwrap_or_default();
    for f in ["has_journal", "extent", "64bit", "metadata_csum"] {
        assert!(features.contains(f), "{head}");
    }
    let blocks = format!("Block count:              {}", len / 4096);
    assert!(head.contains(&blocks), "{head}");

    let (off, len) = partition(&m, "USR-A");
    let usr = extract(&disk, off, len, &tmp.path().join("usr"));
    let fs_bytes = m["usr_hash_offset"].as_u64().unwrap();
    let fs = extract(&disk, off, fs_bytes, &tmp.path().join("usr.erofs"));
    let tree = tmp.path().join("tree");
    tool(
        "fsck.erofs",
        &[&format!("--extract={}", tree.display())],
        &[&fs],
    );
    assert!(tree.join("bin/hello").is_file(), "usr/bin/hello is in /usr");
    let release = std::fs::read_to_string(tree.join("lib/os-release")).unwrap();
    assert!(release.contains("IMAGE_VERSION=1.0"), "{release}");
    node_trust_files_are_valid(&tree);
    let blocks = m["usr_data_blocks"].as_u64().unwrap().to_string();
    tool(
        "veritysetup",
        &[
            "verify",
            &format!("--hash-offset={fs_bytes}"),
            &format!("--data-blocks={blocks}"),
        ],
        &[&usr, &usr, Path::new(&root_hash)],
    );
    let cmdline = m["cmdline"].as_str().unwrap();
    assert!(cmdline.starts_with("console=ttyS0 "), "{cmdline}");
    assert!(
        cmdline.ends_with(&format!(" usrhash={root_hash}")),
        "{cmdline}"
    );

    // One flipped byte inside the filesystem and verity refuses it.
    let mut bytes = std::fs::read(&usr).unwrap();
    bytes[1024] ^= 0x01;
    std::fs::write(&usr, bytes).unwrap();
    let out = Command::new("veritysetup")
        .args([
            "verify",
            &format!("--hash-offset={fs_bytes}"),
            &format!("--data-blocks={blocks}"),
        ])
        .args([&usr, &usr, Path::new(&root_hash)])
        .output()
        .unwrap();
    assert!(!out.status.success(), "a corrupted /usr must not verify");
}

/// The trust loop in the extracted `/usr`: `policy.json` valid per
/// containers-policy.json(5) (and loaded by skopeo's own parser), naming
/// forge's key; registries.d and CRI-O's drop-in; the factory links
/// that put them in the node's `/etc`.
fn node_trust_files_are_valid(usr: &Path) {
    let policy_path = usr.join("share/forge/containers/policy.json");
    let policy: Value = serde_json::from_slice(&std::fs::read(&policy_path).unwrap()).unwrap();
    check_policy(&policy);
    assert_eq!(policy["default"], serde_json::json!([{"type": "reject"}]));
    let docker = policy["transports"]["docker"].as_object().unwrap();
    assert_eq!(
        docker.keys().collect::<Vec<_>>(),
        ["registry.lan:5000/forge"]
    );
    let req = &docker["registry.lan:5000/forge"][0];
    assert_eq!(req["type"], "sigstoreSigned");
    assert_eq!(req["signedIdentity"]["type"], "matchRepository");
    let key_path = req["keyPath"].as_str().unwrap();
    let key = usr.join(key_path.strip_prefix("/usr/").expect("the key is in /usr"));
    assert_eq!(
        public_der(&key),
        public_der(&support::cosign_fixture("kat.pub")),
        "policy.json names forge's image-signing key"
    );
    // skopeo (containers/image's own parser, strict about unknown keys)
    // loads it: the error is about the missing source, not the policy.
    if support::require_tool("skopeo") {
        let out = Command::new("skopeo")
            .arg("--policy")
            .arg(&policy_path)
            .args([
                "copy",
                "oci:/nonexistent-forge-test",
                "dir:/nonexistent-forge-test",
            ])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("policy"), "skopeo refused the policy: {err}");
        assert!(err.contains("nonexistent-forge-test"), "{err}");
    }
    let yaml = std::fs::read_to_string(usr.join("share/forge/containers/registries.d/forge.yaml"))
        .unwrap();
    assert_eq!(
        yaml,
        "docker:\n  registry.lan:5000/forge:\n    use-sigstore-attachments: true\n"
    );
    let crio =
        std::fs::read_to_string(usr.join("share/forge/crio/crio.conf.d/10-crun.conf")).unwrap();
    assert!(
        crio.contains("[crio.runtime]\ndefault_runtime = \"crun\"\n"),
        "{crio}"
    );
    for (etc, file) in [
        ("containers/policy.json", "containers/policy.json"),
        (
            "containers/registries.d/forge.yaml",
            "containers/registries.d/forge.yaml",
        ),
        (
            "crio/crio.conf.d/10-crun.conf",
            "crio/crio.conf.d/10-crun.conf",
        ),
    ] {
        let link = usr.join("share/factory/etc").join(etc);
        assert_eq!(
            std::fs::read_link(&link).unwrap(),
            Path::new("/usr/share/forge").join(file),
            "{etc}"
        );
    }
}

/// The public key of a PEM file as DER, by openssl.
fn public_der(pem: &Path) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(["pkey", "-pubin", "-outform", "DER", "-in"])
        .arg(pem)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// containers-policy.json(5), strictly: `default` and `transports` only;
/// each requirement of a known type with its own fields; `sigstoreSigned`
/// with exactly one of keyPath/keyPaths/keyData/keyDatas and a known
/// `signedIdentity`; docker scopes `HOST[:PORT][/PATH]` without tag or
/// digest.
fn check_policy(v: &Value) {
    let top = v.as_object().expect("policy is an object");
    for k in top.keys() {
        assert!(
            ["default", "transports"].contains(&k.as_str()),
            "unknown key {k}"
        );
    }
    let default = v["default"].as_array().expect("default is an array");
    assert!(!default.is_empty(), "default must not be empty");
    default.iter().for_each(check_requirement);
    let transports = [
        "docker",
        "atomic",
        "containers-storage",
        "dir",
        "docker-archive",
        "docker-daemon",
        "oci",
        "oci-archive",
        "sif",
        "tarball",
    ];
    for (t, scopes) in v["transports"]
        .as_object()
        .expect("transports is an object")
    {
        assert!(transports.contains(&t.as_str()), "unknown transport {t}");
        for (scope, reqs) in scopes.as_object().expect("scopes are an object") {
            if t == "docker" {
                let name = scope.split('/').next_back().unwrap_or("");
                assert!(
                    !name.contains(':') || !scope.contains('/'),
                    "tag in scope {scope}"
                );
                assert!(
                    !scope.contains('@') && !scope.contains("://"),
                    "scope {scope}"
                );
            }
            let reqs = reqs.as_array().expect("requirements are an array");
            assert!(!reqs.is_empty(), "empty requirements for {scope}");
            reqs.iter().for_each(check_requirement);
        }
    }
}

fn check_requirement(r: &Value) {
    let o = r.as_object().expect("a requirement is an object");
    let allowed: &[&str] = match r["type"].as_str().expect("type") {
        "insecureAcceptAnything" | "reject" => &["type"],
        "signedBy" => &[
            "type",
            "keyType",
            "keyPath",
            "keyPaths",
            "keyData",
            "signedIdentity",
        ],
        "sigstoreSigned" => &[
            "type",
            "keyPath",
            "keyPaths",
            "keyData",
            "keyDatas",
            "fulcio",
            "rekorPublicKeyPath",
            "rekorPublicKeyPaths",
            "rekorPublicKeyData",
            "rekorPublicKeyDatas",
            "pki",
            "signedIdentity",
        ],
        other => panic!("unknown requirement type {other}"),
    };
    for k in o.keys() {
        assert!(allowed.contains(&k.as_str()), "unknown key {k} in {r}");
    }
    if r["type"] == "sigstoreSigned" {
        let sources = [
            "keyPath", "keyPaths", "keyData", "keyDatas", "fulcio", "pki",
        ];
        assert_eq!(
            sources.iter().filter(|s| o.contains_key(**s)).count(),
            1,
            "{r}"
        );
        if let Some(p) = o.get("keyPath") {
            assert!(
                p.as_str().is_some_and(|p| p.starts_with('/')),
                "keyPath is absolute"
            );
        }
    }
    if let Some(id) = o.get("signedIdentity") {
        let fields: &[&str] = match id["type"].as_str().expect("signedIdentity type") {
            "matchExact" | "matchRepoDigestOrExact" | "matchRepository" => &["type"],
            "exactReference" => &["type", "dockerReference"],
            "exactRepository" => &["type", "dockerRepository"],
            "remapIdentity" => &["type", "prefix", "signedPrefix"],
            other => panic!("unknown signedIdentity type {other}"),
        };
        for k in id.as_object().unwrap().keys() {
            assert!(fields.contains(&k.as_str()), "unknown key {k} in {id}");
        }
        for f in &fields[1..] {
            assert!(id[f].is_string(), "{f} missing in {id}");
        }
    }
}

#[test]
fn containers_without_an_image_public_key_is_an_error_before_anything_is_written() {
    if !ready() {
        return;
    }
    let p = Project::new();
    p.write("images/t.toml", OS_IMAGE).key().commit();
    let err = run_err(forge(p.path()).args(["os", "build", "t"]));
    assert!(
        err.contains("`[containers]` needs the image-signing public key")
            && err.contains("forge keygen --image"),
        "{err}"
    );
    assert!(out_os(p.path()).is_empty(), "{:?}", out_os(p.path()));
    // A registry scope with a tag is a positioned error.
    p.write(
        "images/t.toml",
        &OS_IMAGE.replace(
            "[containers]\nregistry = \"registry.lan:5000/forge\"",
            "[containers]\nregistry = \"registry.lan:5000/forge:v1\"",
        ),
    );
    let err = run_err(forge(p.path()).args(["os", "build", "t"]));
    assert!(err.contains("`containers.registry`"), "{err}");
}

#[test]
fn unknown_profile_is_a_positioned_error_and_writes_nothing() {
    let p = Project::new();
    p.write(
        "images/t.toml",
        &OS_IMAGE.replace("x86_64-uefi", "x86_64-bios"),
    )
    .key()
    .commit();
    let err = run_err(forge(p.path()).args(["os", "build", "t"]));
    assert!(
        err.contains("images/t.toml:4:11: unknown profile `x86_64-bios`")
            && err.contains("known profiles: x86_64-uefi"),
        "{err}"
    );
    assert!(out_os(p.path()).is_empty(), "{:?}", out_os(p.path()));
}

#[test]
fn missing_package_and_oversized_usr_fail_cleanly_and_keep_the_old_disk() {
    if !ready() {
        return;
    }
    let p = project_with_hello(OS_IMAGE);
    run_ok(forge(p.path()).args(["os", "build", "t"]));
    let disk = p.path().join("out/os/t.raw");
    let good = sha256(&disk);

    support::write(
        p.path(),
        "images/t.toml",
        &OS_IMAGE.replace(
            r#"["hello", "testkernel"]"#,
            r#"["hello", "testkernel", "linux"]"#,
        ),
    );
    let err = run_err(forge(p.path()).args(["os", "build", "t"]));
    assert!(
        err.contains("reading the packages of OS image `t`")
            && err.contains("nothing in the repository provides `linux`"),
        "{err}"
    );
    assert_eq!(out_os(p.path()), ["t.json", "t.raw"]);
    assert_eq!(sha256(&disk), good, "the old disk is untouched");

    // A package bigger than USR-A (incompressible, so erofs cannot shrink it).
    p.recipe("blob")
        .tools(&["head"])
        .script(
            "mkdir -p $pkgdir/usr/share && head -c 5000000 /dev/urandom > $pkgdir/usr/share/blob",
        )
        .write();
    support::git_commit_all(p.path(), "@1700000000 +0000");
    run_ok(forge(p.path()).args(["build", "blob", "--no-images"]));
    support::write(
        p.path(),
        "images/t.toml",
        &OS_IMAGE.replace(
            r#"["hello", "testkernel"]"#,
            r#"["hello", "testkernel", "blob"]"#,
        ),
    );
    let err = run_err(forge(p.path()).args(["os", "build", "t"]));
    assert!(
        err.contains("images/t.toml: `partitions.usr` is 4194304 bytes, but /usr needs")
            && err.contains("raise it to at least"),
        "{err}"
    );
    assert_eq!(out_os(p.path()), ["t.json", "t.raw"]);
    assert_eq!(sha256(&disk), good, "the old disk is untouched");
}

#[test]
fn a_missing_host_tool_is_named_before_anything_is_written() {
    if !ready() {
        return;
    }
    let p = project_with_hello(OS_IMAGE);
    // A PATH with every tool but mkfs.erofs.
    let bin = tempfile::tempdir().unwrap();
    let path = std::env::var_os("PATH").unwrap();
    for t in ["veritysetup", "mkfs.vfat", "mmd", "mcopy", "objcopy"] {
        let real = std::env::split_paths(&path)
            .map(|d| d.join(t))
            .find(|p| p.is_file())
            .unwrap();
        std::os::unix::fs::symlink(real, bin.path().join(t)).unwrap();
    }
    let err = run_err(
        forge(p.path())
            .env("PATH", bin.path())
            .args(["os", "build", "t"]),
    );
    assert!(
        err.contains("host tool `mkfs.erofs` is not installed (Debian package erofs-utils)"),
        "{err}"
    );
    assert!(out_os(p.path()).is_empty(), "{:?}", out_os(p.path()));
}
