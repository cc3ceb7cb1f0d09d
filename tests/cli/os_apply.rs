//! A/B updates: `forge os payload` writes the passive slot's update as a
//! signed OCI artifact; `forge os apply` verifies it, writes it into USR-B
//! of a built disk and arms slot B with a boot counter. Checked with the
//! real tools: sgdisk, veritysetup against B's root hash, mtools and
//! objcopy on the ESP; a tampered or foreign payload leaves the disk
//! byte for byte as it was.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use serde_json::Value;

use crate::os::{OS_IMAGE, extract, manifest, partition, project_with_hello, ready, sha256, tool};
use crate::support::{self, cosign_fixture, forge, forge_signing, run_err, run_ok};

fn mtools(program: &str, disk: &Path, offset: u64) -> Command {
    let mut c = Command::new(program);
    c.env("MTOOLS_SKIP_CHECK", "1")
        .arg("-i")
        .arg(format!("{}@@{offset}", disk.display()));
    c
}

/// Files in a folder of the disk's ESP.
fn esp_files(disk: &Path, esp: u64) -> Vec<String> {
    let (out, _) = run_ok(mtools("mdir", disk, esp).args(["-b", "::/EFI/Linux"]));
    let mut names: Vec<String> = out
        .lines()
        .filter_map(|l| l.trim().strip_prefix("::/EFI/Linux/"))
        .map(str::to_string)
        .collect();
    names.sort();
    names
}

/// The `.cmdline` of the UKI at `path` on the ESP.
fn uki_cmdline(disk: &Path, esp: u64, path: &str, tmp: &Path) -> String {
    let uki = tmp.join("uki.efi");
    let line = tmp.join("cmdline");
    run_ok(
        mtools("mcopy", disk, esp)
            .args(["-n", "-o"])
            .arg(format!("::/{path}"))
            .arg(&uki),
    );
    run_ok(
        Command::new("objcopy")
            .args(["-O", "binary", "--only-section", ".cmdline"])
            .arg(&uki)
            .arg(&line),
    );
    String::from_utf8(std::fs::read(line).unwrap())
        .unwrap()
        .trim_end_matches(['\0', '\n'])
        .to_string()
}

fn json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Files beside the disk: nothing but the disk (no temporary copy left).
fn dir_names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn payload_applies_to_usr_b_with_a_boot_counter_and_a_tampered_one_changes_nothing() {
    if !ready() || !support::require_tool("mdir") {
        return;
    }
    let p = project_with_hello(OS_IMAGE);
    run_ok(forge(p.path()).args(["os", "build", "t"]));
    let m1 = manifest(p.path());
    let disks = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let disk = disks.path().join("node.raw");
    run_ok(
        Command::new("cp")
            .arg("--sparse=always")
            .arg(p.path().join("out/os/t.raw"))
            .arg(&disk),
    );
    // Version 2.0: another /usr (its os-release), another root hash.
    support::write(
        p.path(),
        "images/t.toml",
        &OS_IMAGE.replace("version = \"1.0\"", "version = \"2.0\""),
    );
    let t = Instant::now();
    let (digest, _) = run_ok(forge_signing(p.path()).args(["os", "payload", "t"]));
    eprintln!(
        "forge os payload (disk + payload): {:.2}s",
        t.elapsed().as_secs_f64()
    );
    let m2 = manifest(p.path());
    let hash_b = m2["usr_root_hash"].as_str().unwrap().to_string();
    assert_ne!(hash_b, m1["usr_root_hash"].as_str().unwrap());
    let payload = p.path().join("out/os/t.payload");
    let index = json(&payload.join("index.json"));
    let artifact = index["manifests"][0]["digest"].as_str().unwrap();
    assert_eq!(digest.trim(), artifact);
    let am = json(&payload.join("blobs/sha256").join(&artifact[7..]));
    assert_eq!(am["artifactType"], "application/vnd.forge.os.payload.v1");
    let sizes: Vec<u64> = am["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["size"].as_u64().unwrap())
        .collect();
    eprintln!("payload layers (usr.img, uki-a, uki-b): {sizes:?} bytes");
    let before = sha256(&disk);
    let (_, usr_a_len) = partition(&m1, "USR-A");
    let (usr_a, _) = partition(&m1, "USR-A");
    let usr_a_before = sha256(&extract(
        &disk,
        usr_a,
        usr_a_len,
        &scratch.path().join("a-before"),
    ));

    // Refusals first: each leaves the disk as it was and nothing beside it.
    let tampered = tempfile::tempdir().unwrap();
    run_ok(
        Command::new("cp")
            .arg("-a")
            .arg(&payload)
            .arg(tampered.path()),
    );
    let bad = tampered.path().join("t.payload");
    let usr_blob = am["layers"][0]["digest"].as_str().unwrap();
    let blob = bad.join("blobs/sha256").join(&usr_blob[7..]);
    let mut bytes = std::fs::read(&blob).unwrap();
    bytes[4096 + 7] ^= 0x20;
    std::fs::write(&blob, bytes).unwrap();
    let apply = |payload: &Path, key: &Path| {
        let mut c = forge(p.path());
        c.args(["os", "apply"])
            .arg(&disk)
            .arg(payload)
            .arg("--key")
            .arg(key);
        c
    };
    let err = run_err(&mut apply(&bad, &cosign_fixture("kat.pub")));
    assert!(err.contains("usr.img does not match its digest"), "{err}");
    let other = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        other.path(),
        forge::imagesign::keys::ImageKey::generate()
            .unwrap()
            .public_pem()
            .unwrap(),
    )
    .unwrap();
    let err = run_err(&mut apply(&payload, other.path()));
    assert!(
        err.contains("signature") && err.contains("another key"),
        "{err}"
    );
    let cfg = am["config"]["digest"].as_str().unwrap();
    std::fs::write(bad.join("blobs/sha256").join(&cfg[7..]), b"{}").unwrap();
    let err = run_err(&mut apply(&bad, &cosign_fixture("kat.pub")));
    assert!(err.contains("does not match its digest"), "{err}");
    assert_eq!(sha256(&disk), before, "a refused payload changes nothing");
    assert_eq!(dir_names(disks.path()), ["node.raw"]);

    // The real thing.
    let t = Instant::now();
    let (_, err) = run_ok(&mut apply(&payload, &cosign_fixture("kat.pub")));
    eprintln!("forge os apply: {:.2}s", t.elapsed().as_secs_f64());
    assert!(err.contains("next boot: EFI/Linux/t-2.0+3.efi"), "{err}");
    assert_eq!(dir_names(disks.path()), ["node.raw"]);
    let gpt = tool("sgdisk", &["-v"], &[&disk]);
    assert!(gpt.contains("No problems found"), "{gpt}");

    // USR-B verifies against B's root hash; USR-A is untouched.
    let (b_off, b_len) = partition(&m1, "USR-B");
    let usr_b = extract(&disk, b_off, b_len, &scratch.path().join("b"));
    let fs_bytes = m2["usr_hash_offset"].as_u64().unwrap();
    tool(
        "veritysetup",
        &[
            "verify",
            &format!("--hash-offset={fs_bytes}"),
            &format!("--data-blocks={}", m2["usr_data_blocks"]),
        ],
        &[&usr_b, &usr_b, Path::new(&hash_b)],
    );
    assert_eq!(
        sha256(&extract(
            &disk,
            usr_a,
            usr_a_len,
            &scratch.path().join("a-after")
        )),
        usr_a_before
    );

    // The ESP: A's UKI as it was, B's with three tries, naming USR-B.
    let (esp, esp_len) = partition(&m1, "EFI-SYSTEM");
    assert_eq!(esp_files(&disk, esp), ["t-1.0.efi", "t-2.0+3.efi"]);
    let tmp = tempfile::tempdir().unwrap();
    let esp_img = extract(&disk, esp, esp_len, &tmp.path().join("esp"));
    tool("fsck.vfat", &["-n"], &[&esp_img]);
    let b_uuid = m1["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["label"] == "USR-B")
        .unwrap()["partuuid"]
        .as_str()
        .unwrap()
        .to_string();
    let line = uki_cmdline(&disk, esp, "EFI/Linux/t-2.0+3.efi", tmp.path());
    assert!(
        line.contains(&format!("mount.usr=PARTUUID={b_uuid}")),
        "{line}"
    );
    assert!(line.ends_with(&format!("usrhash={hash_b}")), "{line}");
    let line_a = uki_cmdline(&disk, esp, "EFI/Linux/t-1.0.efi", tmp.path());
    assert_eq!(line_a, m1["cmdline"].as_str().unwrap());

    // Applying the same version again replaces B's entry (disarmed first),
    // it does not add a second one.
    run_ok(&mut apply(&payload, &cosign_fixture("kat.pub")));
    assert_eq!(esp_files(&disk, esp), ["t-1.0.efi", "t-2.0+3.efi"]);

    // `forge publish` pushes the payload, signed for the registry's
    // repository; a node's key accepts it there.
    if support::require_tool("docker-registry") {
        publish_and_verify(p.path(), artifact);
    }

    // An older version than what stays bootable (A's 1.0) is refused:
    // systemd-boot would boot A first. The disk is unchanged.
    support::write(
        p.path(),
        "images/t.toml",
        &OS_IMAGE.replace("version = \"1.0\"", "version = \"0.9\""),
    );
    run_ok(forge_signing(p.path()).args(["os", "payload", "t"]));
    let applied = sha256(&disk);
    let err = run_err(&mut apply(&payload, &cosign_fixture("kat.pub")));
    assert!(
        err.contains("version 0.9 is not newer than 1.0 (EFI/Linux/t-1.0.efi"),
        "{err}"
    );
    assert_eq!(sha256(&disk), applied);
    assert_eq!(dir_names(disks.path()), ["node.raw"]);
}

/// `forge publish` of the payload to a real registry, then `verify-image`
/// with the node's key at the version tag.
fn publish_and_verify(project: &Path, artifact: &str) {
    let reg = support::Registry::start();
    let host = reg.host();
    let (out, _) = run_ok(forge_signing(project).args([
        "publish",
        "--insecure",
        "t",
        "--registry",
        &format!("{host}/forge"),
    ]));
    assert_eq!(out.trim(), format!("{host}/forge/t@{artifact}"));
    let (_, err) = run_ok(
        forge(project)
            .args([
                "verify-image",
                "--insecure",
                &format!("{host}/forge/t:2.0"),
                "--key",
            ])
            .arg(cosign_fixture("kat.pub")),
    );
    assert!(err.contains("Verified"), "{err}");
}
