//! Tests of OS image definitions: the full form, defaults, and every error
//! carrying file:line:col, the field and a hint.

use std::path::Path;

use super::super::{Definition, OsDef, parse_any};
use super::*;

fn p(text: &str) -> Result<OsDef, String> {
    match parse_any("node", Path::new("images/node.toml"), text) {
        Ok(Definition::Os(d)) => Ok(*d),
        Ok(Definition::Container(_)) => Err("parsed as a container image".into()),
        Err(e) => Err(e.to_string()),
    }
}

const HEAD: &str = "schema = 1\nkind = \"os\"\nprofile = \"x86_64-uefi\"\npackages = [\"hello\"]\n";

#[test]
fn full_definition() {
    let d = p(r#"
schema = 1
kind = "os"
description = "a node"
version = "0.1"
profile = "x86_64-uefi"
packages = ["linux", "busybox>=1.36"]
cmdline = ["console=ttyS0", "panic=-1"]
[partitions]
esp = "128M"
usr = "1G"
[[oem]]
path = "/site/forge.conf"
content = "region=lab\n"
"#)
    .unwrap();
    assert_eq!(d.profile, Profile::X86_64Uefi);
    assert_eq!(d.profile.arch(), "x86_64");
    assert_eq!(d.packages, ["linux", "busybox>=1.36"]);
    assert_eq!(d.cmdline, ["console=ttyS0", "panic=-1"]);
    assert_eq!(
        d.partitions,
        PartitionSizes {
            esp: 128 << 20,
            usr: 1 << 30,
            oem: DEFAULT_SIZES.oem,
            root: DEFAULT_SIZES.root,
        }
    );
    assert_eq!(
        d.oem,
        [OemFile {
            path: "site/forge.conf".into(),
            content: "region=lab\n".into()
        }]
    );
}

#[test]
fn defaults() {
    let d = p(HEAD).unwrap();
    assert_eq!(d.partitions, DEFAULT_SIZES);
    assert!(d.cmdline.is_empty() && d.oem.is_empty() && d.version.is_none());
}

#[test]
fn a_file_without_kind_is_still_a_container_image() {
    let d = parse_any("t", Path::new("t.toml"), "schema = 1\npackages = [\"a\"]\n").unwrap();
    assert!(matches!(d, Definition::Container(_)));
}

#[test]
fn errors_carry_position_field_and_hint() {
    let cases = [
        (
            "schema = 1\nkind = \"os\"\nprofile = \"x86_64-ueif\"\npackages = [\"a\"]\n",
            "images/node.toml:3:11: unknown profile `x86_64-ueif` (did you mean `x86_64-uefi`?); known profiles: x86_64-uefi, rpi4-arm64",
        ),
        (
            "schema = 1\nkind = \"os\"\nprofile = \"riscv\"\npackages = [\"a\"]\n",
            "images/node.toml:3:11: unknown profile `riscv`; known profiles: x86_64-uefi, rpi4-arm64",
        ),
        (
            "schema = 1\nkind = \"vm\"\npackages = [\"a\"]\n",
            "images/node.toml:2:8: unknown kind `vm` (expected `container` or `os`)",
        ),
        (
            "schema = 1\nkind = \"os\"\npackages = [\"a\"]\n",
            "images/node.toml:1:1: missing field `profile`",
        ),
        (
            &format!("{HEAD}entrypoint = [\"/bin/sh\"]\n"),
            "images/node.toml:5:1: unknown field `entrypoint`",
        ),
        (
            &format!("{HEAD}cmdlin = []\n"),
            "unknown field `cmdlin`, expected one of",
        ),
        (
            &format!("{HEAD}cmdline = [\"usrhash=00\"]\n"),
            "images/node.toml:5:12: kernel argument `usrhash` is set by forge",
        ),
        (
            &format!("{HEAD}cmdline = [\"a b\"]\n"),
            "images/node.toml:5:12: invalid kernel argument `a b`",
        ),
        (
            &format!("{HEAD}[partitions]\nusr = \"512\"\n"),
            "images/node.toml:6:7: `partitions.usr`: invalid size `512`",
        ),
        (
            &format!("{HEAD}[partitions]\nesp = \"16M\"\n"),
            "images/node.toml:6:7: `partitions.esp`: 16M is below the minimum of 36M",
        ),
        (
            &format!("{HEAD}[partitions]\nroot = \"4M\"\n"),
            "images/node.toml:6:8: `partitions.root`: 4M is below the minimum of 8M",
        ),
        (
            &format!("{HEAD}[partitions]\nroot = \"2048G\"\n"),
            "`partitions.root`: 2048G is above the maximum",
        ),
        (
            &format!("{HEAD}[partitions]\nesp = \"5G\"\n"),
            "images/node.toml:6:7: `partitions.esp`: 5G is above the maximum of 4G",
        ),
        (
            &format!(
                "{HEAD}[[oem]]\npath = \"a/B.conf\"\ncontent = \"\"\n[[oem]]\npath = \"a/b.conf\"\ncontent = \"\"\n"
            ),
            "images/node.toml:8:1: oem path `a/b.conf` listed twice (OEM is FAT: names are case-insensitive)",
        ),
        (
            &format!("{HEAD}[partitions]\nvar = \"1G\"\n"),
            "images/node.toml:6:1: unknown field `var`",
        ),
        (
            &format!("{HEAD}[[oem]]\npath = \"../etc/x\"\ncontent = \"\"\n"),
            "images/node.toml:5:1: oem path `../etc/x` must be a normalized path",
        ),
        (
            &format!(
                "{HEAD}[[oem]]\npath = \"a\"\ncontent = \"\"\n[[oem]]\npath = \"/a\"\ncontent = \"\"\n"
            ),
            "images/node.toml:8:1: oem path `/a` listed twice",
        ),
        (
            "schema = 1\nkind = \"os\"\nprofile = \"x86_64-uefi\"\npackages = []\n",
            "images/node.toml:4:12: `packages` must list at least one package",
        ),
        (
            "schema = 2\nkind = \"os\"\nprofile = \"x86_64-uefi\"\npackages = [\"a\"]\n",
            "images/node.toml:1:10: unsupported schema 2",
        ),
    ];
    for (text, want) in cases {
        let err = p(text).unwrap_err();
        assert!(err.contains(want), "{text:?}:\n got  {err}\n want {want}");
    }
    let err = p(&format!("{HEAD}cmdlin = []\n")).unwrap_err();
    assert!(err.contains("did you mean `cmdline`?"), "{err}");
}

#[test]
fn load_of_an_os_file_as_a_container_names_the_kind() {
    let err = super::super::parse("node", Path::new("images/node.toml"), HEAD).unwrap_err();
    assert!(
        err.to_string()
            .contains("images/node.toml:2:8: kind `os` is not a container image"),
        "{err}"
    );
}

#[test]
fn containers_registry_and_key() {
    let d = p(&format!(
        "{HEAD}[containers]\nregistry = \"registry.lan:5000/forge\"\nkey = \"keys/node.cosign.pub\"\n"
    ))
    .unwrap();
    let c = d.containers.unwrap();
    assert_eq!(c.registry, "registry.lan:5000/forge");
    assert_eq!(c.key.as_deref(), Some("keys/node.cosign.pub"));
    assert_eq!(p(HEAD).unwrap().containers, None);
    for good in ["registry.lan", "10.0.0.1:5000", "reg.example/a/b-c_d.e"] {
        assert_eq!(registry_scope(good).as_deref(), Ok(good), "{good}");
    }
    for (bad, line) in [
        ("registry = \"https://registry.lan/forge\"", "no scheme"),
        ("registry = \"registry.lan/forge:v1\"", "no tag"),
        ("registry = \"registry.lan/forge@sha256:00\"", "no digest"),
        ("registry = \"Registry.lan/forge\"", "lower-case host"),
        (
            "registry = \"registry.lan:port/forge\"",
            "the port is a number",
        ),
        ("registry = \"registry.lan//forge\"", "path components"),
        ("registry = \"\"", "lower-case host"),
    ] {
        let err = p(&format!("{HEAD}[containers]\n{line}\n", line = bad)).unwrap_err();
        assert!(
            err.starts_with("images/node.toml:6:12: `containers.registry`") && err.contains(line),
            "{bad}: {err}"
        );
    }
    let err = p(&format!(
        "{HEAD}[containers]\nregistry = \"r.lan\"\nkey = \"../outside.pub\"\n"
    ))
    .unwrap_err();
    assert!(err.contains("`containers.key`"), "{err}");
    let err = p(&format!("{HEAD}[containers]\nregistri = \"r.lan\"\n")).unwrap_err();
    assert!(err.contains("registri"), "{err}");
}

#[test]
fn rpi4_profile_takes_boot_not_esp_and_reserves_root() {
    let head = "schema = 1\nkind = \"os\"\nprofile = \"rpi4-arm64\"\npackages = [\"a\"]\n";
    let d = p(head).unwrap();
    assert_eq!(d.profile, Profile::Rpi4Arm64);
    assert_eq!(d.profile.arch(), "aarch64");
    assert_eq!(d.partitions.esp, DEFAULT_PI_BOOT);
    let d = p(&format!("{head}[partitions]\nboot = \"64M\"\n")).unwrap();
    assert_eq!(d.partitions.esp, 64 << 20);
    assert_eq!(d.partitions.usr, DEFAULT_SIZES.usr);
    assert_eq!(
        p(&format!("{head}[partitions]\nesp = \"64M\"\n")).unwrap_err(),
        "images/node.toml:6:7: `partitions.esp` does not apply to profile rpi4-arm64; its FAT partition is `partitions.boot`"
    );
    assert_eq!(
        p(&format!("{HEAD}[partitions]\nboot = \"64M\"\n")).unwrap_err(),
        "images/node.toml:6:8: `partitions.boot` does not apply to profile x86_64-uefi; its FAT partition is `partitions.esp`"
    );
    assert_eq!(
        p(&format!("{head}cmdline = [\"root=/dev/sda2\"]\n")).unwrap_err(),
        "images/node.toml:5:12: kernel argument `root` is set by forge (on rpi4-arm64 it names ROOT by PARTUUID)"
    );
    assert_eq!(
        p(&format!("{head}[partitions]\nboot = \"16M\"\n")).unwrap_err(),
        "images/node.toml:6:8: `partitions.boot`: 16M is below the minimum of 36M"
    );
}
