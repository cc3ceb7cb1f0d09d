//! OS image definitions (`kind = "os"`): the same file, the same TOML
//! mechanism and the same `file:line:col` errors as container images, with
//! their own schema so a container-only key (`entrypoint`, `layering`) in an
//! OS image is an unknown field with a did-you-mean hint, not silently
//! ignored. The format is documented in `docs/os.md`.

use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::model::{ContainersDef, OemFile, OsDef, PartitionSizes, Profile};
use super::{DefError, Src, check_packages};

/// Partition sizes when the definition names none.
pub const DEFAULT_SIZES: PartitionSizes = PartitionSizes {
    esp: 64 << 20,
    usr: 512 << 20,
    oem: 32 << 20,
    root: 64 << 20,
};

/// The smallest EFI system partition that FAT32 can fill with 512-byte
/// clusters (65525 clusters plus the FATs and reserved sectors).
const MIN_ESP: u64 = 36 << 20;
/// The largest EFI system partition: FAT32 made with 512-byte clusters
/// holds at most 2^28 clusters (128 GiB); 4 GiB is plenty for UKIs.
const MAX_ESP: u64 = 4 << 30;
/// The smallest ROOT: below 2048 blocks of 4 KiB, `mke2fs -t ext4` leaves
/// out the journal (`src/os/root.rs`).
const MIN_ROOT: u64 = 8 << 20;
/// The largest size accepted for any other partition (a typo guard: 1 TiB).
const MAX_PART: u64 = 1 << 40;
/// The Pi's boot partitions when the definition names none: pi-gen's 512M
/// holds a few kernels; forge's hold one kernel and initramfs each.
pub const DEFAULT_PI_BOOT: u64 = 256 << 20;
/// Kernel command-line keys forge sets itself.
const RESERVED_CMDLINE: [&str; 5] = [
    "usrhash",
    "mount.usr",
    "mount.usrflags",
    "dm-mod.create",
    "dm-mod.waitfor",
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOs {
    schema: Spanned<u32>,
    #[serde(rename = "kind")]
    _kind: serde::de::IgnoredAny,
    #[serde(default)]
    description: String,
    version: Option<String>,
    profile: Spanned<String>,
    packages: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    cmdline: Vec<Spanned<String>>,
    partitions: Option<RawPartitions>,
    #[serde(default)]
    oem: Vec<Spanned<RawOem>>,
    containers: Option<RawContainers>,
    #[serde(default, rename = "oem-images")]
    oem_images: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawContainers {
    registry: Spanned<String>,
    key: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPartitions {
    esp: Option<Spanned<String>>,
    boot: Option<Spanned<String>>,
    usr: Option<Spanned<String>>,
    oem: Option<Spanned<String>>,
    root: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOem {
    path: String,
    content: String,
}

/// Validate an OS image file (`kind = "os"` already seen).
pub(super) fn parse(name: &str, file: &Path, src: &Src<'_>) -> Result<OsDef, DefError> {
    let raw: RawOs = src.deserialize()?;
    src.check_schema(&raw.schema)?;
    let profile = profile(src, &raw.profile)?;
    let packages = check_packages(src, &raw.packages)?;
    let mut cmdline = Vec::new();
    for arg in &raw.cmdline {
        cmdline.push(cmdline_arg(arg.get_ref(), profile).map_err(|m| src.fail(arg.span(), m))?);
    }
    let partitions = sizes(src, raw.partitions, profile)?;
    let mut oem: Vec<OemFile> = Vec::new();
    for entry in raw.oem {
        let span = entry.span();
        let e = entry.into_inner();
        let path = oem_path(&e.path).map_err(|m| src.fail(span.clone(), m))?;
        // FAT names are case-insensitive: `A` and `a` would be one file.
        if oem.iter().any(|o| o.path.eq_ignore_ascii_case(&path)) {
            return Err(src.fail(
                span,
                format!(
                    "oem path `{}` listed twice (OEM is FAT: names are case-insensitive)",
                    e.path
                ),
            ));
        }
        oem.push(OemFile {
            path,
            content: e.content,
        });
    }
    let containers = match raw.containers {
        None => None,
        Some(c) => Some(Box::new(containers(src, c)?)),
    };
    let mut oem_images: Vec<String> = Vec::new();
    for c in &raw.oem_images {
        let n = c.get_ref();
        let valid = n.bytes().enumerate().all(|(i, b)| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || (i > 0 && b"._-".contains(&b))
        });
        if n.is_empty() || !valid || oem_images.contains(n) {
            return Err(src.fail(
                c.span(),
                format!("`oem-images`: `{n}` is not an image name ([a-z0-9][a-z0-9._-]*), or is listed twice"),
            ));
        }
        oem_images.push(n.clone());
    }
    Ok(OsDef {
        name: name.to_string(),
        file: file.to_path_buf(),
        description: raw.description,
        version: raw.version,
        profile,
        packages,
        cmdline,
        partitions,
        oem,
        oem_images,
        containers,
    })
}

fn containers(src: &Src<'_>, raw: RawContainers) -> Result<ContainersDef, DefError> {
    let registry = registry_scope(raw.registry.get_ref())
        .map_err(|m| src.fail(raw.registry.span(), format!("`containers.registry`: {m}")))?;
    let key = match raw.key {
        None => None,
        Some(k) => {
            let path = k.get_ref();
            let ok = !path.is_empty()
                && !path.starts_with('/')
                && path
                    .split('/')
                    .all(|c| !c.is_empty() && c != "." && c != "..");
            if !ok {
                return Err(src.fail(
                    k.span(),
                    format!("`containers.key`: `{path}` must be a relative path inside the project (keys/NAME.cosign.pub)"),
                ));
            }
            Some(path.clone())
        }
    };
    Ok(ContainersDef { registry, key })
}

/// A policy scope for the cluster's registry: `HOST[:PORT][/PATH]`, lower
/// case, no scheme, tag or digest (containers-policy.json(5) scopes).
fn registry_scope(text: &str) -> Result<String, String> {
    let bad = |why: &str| {
        format!(
            "`{text}` is not a registry scope HOST[:PORT][/PATH] ({why}), e.g. \"registry.lan:5000/forge\""
        )
    };
    if text.contains("://") {
        return Err(bad("no scheme"));
    }
    if text.contains('@') {
        return Err(bad("no digest"));
    }
    let (hostport, path) = text.split_once('/').unwrap_or((text, ""));
    let (host, port) = hostport.split_once(':').unwrap_or((hostport, ""));
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
    if !host_ok {
        return Err(bad("lower-case host name"));
    }
    if hostport.contains(':')
        && (port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(bad("the port is a number"));
    }
    let comp_ok = |c: &str| {
        !c.is_empty()
            && c.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
    };
    if !path.is_empty() && !path.split('/').all(comp_ok) {
        return Err(bad("path components are [a-z0-9._-], no tag"));
    }
    Ok(text.to_string())
}

fn profile(src: &Src<'_>, raw: &Spanned<String>) -> Result<Profile, DefError> {
    let want = raw.get_ref();
    if let Some(p) = Profile::ALL.iter().find(|p| p.name() == want) {
        return Ok(*p);
    }
    let known: Vec<&str> = Profile::ALL.iter().map(|p| p.name()).collect();
    let close = known
        .iter()
        .map(|k| (strsim::jaro_winkler(want, k), k))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    let hint = match close {
        Some((_, k)) => format!(" (did you mean `{k}`?)"),
        None => String::new(),
    };
    Err(src.fail(
        raw.span(),
        format!(
            "unknown profile `{want}`{hint}; known profiles: {}",
            known.join(", ")
        ),
    ))
}

fn cmdline_arg(arg: &str, profile: Profile) -> Result<String, String> {
    if arg.is_empty()
        || arg
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '"')
    {
        return Err(format!(
            "invalid kernel argument `{arg}` (one word: no spaces, quotes or control characters)"
        ));
    }
    let key = arg.split('=').next().unwrap_or(arg);
    if RESERVED_CMDLINE.contains(&key) {
        return Err(format!(
            "kernel argument `{key}` is set by forge (it points at the verity /usr)"
        ));
    }
    if profile == Profile::Rpi4Arm64 && key == "root" {
        return Err(format!(
            "kernel argument `{key}` is set by forge (on {} it names ROOT by PARTUUID)",
            profile.name()
        ));
    }
    Ok(arg.to_string())
}

fn sizes(
    src: &Src<'_>,
    raw: Option<RawPartitions>,
    profile: Profile,
) -> Result<PartitionSizes, DefError> {
    let default_boot = match profile {
        Profile::X86_64Uefi => DEFAULT_SIZES.esp,
        Profile::Rpi4Arm64 => DEFAULT_PI_BOOT,
    };
    let Some(raw) = raw else {
        return Ok(PartitionSizes {
            esp: default_boot,
            ..DEFAULT_SIZES
        });
    };
    let one = |field: &str, v: Option<Spanned<String>>, default: u64, range: (u64, u64)| match v {
        None => Ok(default),
        Some(s) => size(s.get_ref(), range)
            .map_err(|m| src.fail(s.span(), format!("`partitions.{field}`: {m}"))),
    };
    // `esp` on UEFI, `boot` on the Pi: the other key is an error naming it.
    let (key, given, wrong) = match profile {
        Profile::X86_64Uefi => ("esp", raw.esp, raw.boot),
        Profile::Rpi4Arm64 => ("boot", raw.boot, raw.esp),
    };
    if let Some(w) = wrong {
        let other = if key == "esp" { "boot" } else { "esp" };
        return Err(src.fail(
            w.span(),
            format!(
                "`partitions.{other}` does not apply to profile {}; its FAT partition is `partitions.{key}`",
                profile.name()
            ),
        ));
    }
    let any = (1 << 20, MAX_PART);
    Ok(PartitionSizes {
        esp: one(key, given, default_boot, (MIN_ESP, MAX_ESP))?,
        usr: one("usr", raw.usr, DEFAULT_SIZES.usr, any)?,
        oem: one("oem", raw.oem, DEFAULT_SIZES.oem, any)?,
        root: one("root", raw.root, DEFAULT_SIZES.root, (MIN_ROOT, MAX_PART))?,
    })
}

/// `"64M"` or `"2G"` → bytes, within `(min, max)`.
fn size(text: &str, (min, max): (u64, u64)) -> Result<u64, String> {
    let bad = || format!("invalid size `{text}` (a whole number of MiB or GiB: \"64M\", \"2G\")");
    let (digits, shift) = if let Some(d) = text.strip_suffix('M') {
        (d, 20)
    } else if let Some(d) = text.strip_suffix('G') {
        (d, 30)
    } else {
        return Err(bad());
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() > 7 {
        return Err(bad());
    }
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let bytes = n << shift;
    if bytes < min {
        return Err(format!("{text} is below the minimum of {}M", min >> 20));
    }
    if bytes > max {
        return Err(format!("{text} is above the maximum of {}G", max >> 30));
    }
    Ok(bytes)
}

fn oem_path(path: &str) -> Result<String, String> {
    let rel = path.strip_prefix('/').unwrap_or(path);
    let plain = |c: &str| {
        !c.is_empty()
            && c != "."
            && c != ".."
            && c.len() <= 255
            && !c.starts_with('-')
            && c.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-+".contains(&b))
    };
    if rel.is_empty() || rel.len() > 1024 || !rel.split('/').all(plain) {
        return Err(format!(
            "oem path `{path}` must be a normalized path of plain names ([A-Za-z0-9._+-], no `.`, `..`, `//`)"
        ));
    }
    Ok(rel.to_string())
}

#[cfg(test)]
mod tests;
