//! The read-only `/usr`: verified package files laid out as one merged
//! `/usr` tree, made into an erofs image by `mkfs.erofs`, with a dm-verity
//! hash tree from `veritysetup format` whose root hash the kernel command
//! line will carry.
//!
//! Packages install under `/usr`, `/bin`, `/sbin`, `/lib`, `/lib64`, `/etc`
//! and `/var`. On an immutable node only `/usr` ships, so the others are
//! folded in: `bin`, `sbin`, `lib`, `lib64` go to `/usr/…` (merged /usr:
//! the root filesystem links `/bin → usr/bin`), and `etc`, `var` go to
//! `/usr/share/factory/{etc,var}` (systemd's factory defaults, copied into
//! the writable root at boot). Any other top-level path is an error naming
//! the package. Setuid/setgid bits are dropped (the tree writer's rule).
//!
//! Reproducibility: `-T<epoch> --ignore-mtime --all-root -U<uuid>` for
//! erofs, a seed-derived `--salt` and `--uuid` for verity, so the root hash
//! depends only on the files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::OsError;
use super::seed::Seed;
use crate::image::def::OsDef;
use crate::image::rootfs::{Entry, EntryKind, InstalledPackage};
use crate::process::Cmd;
use crate::source::tree::TreeWriter;

/// Block size of the filesystem and of the hash tree.
pub const BLOCK: u64 = 4096;

/// The finished `/usr`: filesystem and hash tree as files.
#[derive(Debug, Clone)]
pub struct UsrImage {
    /// The erofs image, a whole number of blocks.
    pub fs: PathBuf,
    /// Its size in bytes (the hash tree starts here in the partition).
    pub fs_bytes: u64,
    /// The hash tree (with its superblock).
    pub hash: PathBuf,
    /// The hash tree's size in bytes.
    pub hash_bytes: u64,
    /// The dm-verity root hash (64 hex digits).
    pub root_hash: String,
    /// The salt the hash tree was made with (64 hex digits).
    pub salt: String,
}

/// An entry forge adds to `/usr` itself (see [`super::trust`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Extra {
    /// A regular file (mode 0644).
    File(Vec<u8>),
    /// A symlink to this target.
    Symlink(String),
}

/// Where a package's path lands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// The `/usr` folder itself.
    Root,
    /// This path inside `/usr`.
    At(String),
    /// Nowhere: the path is outside what `/usr` takes in.
    Outside,
}

/// Where a package's path lands inside `/usr`.
pub fn usr_path(path: &str) -> Placement {
    let (top, rest) = match path.split_once('/') {
        Some((t, r)) => (t, Some(r)),
        None => (path, None),
    };
    let prefix = match top {
        "usr" => return rest.map_or(Placement::Root, |r| Placement::At(r.to_string())),
        "bin" | "sbin" | "lib" | "lib64" => top.to_string(),
        "etc" | "var" => format!("share/factory/{top}"),
        _ => return Placement::Outside,
    };
    Placement::At(match rest {
        Some(r) => format!("{prefix}/{r}"),
        None => prefix,
    })
}

/// A package symlink's relative `target`, re-pointed from its folded place
/// `folded` in `/usr` (it was at `orig` in the package): busybox's
/// `usr/bin/[ → ../../bin/busybox` becomes `bin/[ → busybox`, since
/// `bin/busybox` folds into `/usr` too. A target outside what `/usr` takes
/// in becomes absolute (it may exist on the root filesystem); absolute
/// targets and ones climbing out of the package stay as they are.
pub fn refold_link(orig: &str, folded: &str, target: &str) -> String {
    if target.starts_with('/') {
        return target.to_string();
    }
    let mut parts: Vec<&str> = orig.split('/').collect();
    parts.pop();
    for c in target.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return target.to_string();
                }
            }
            c => parts.push(c),
        }
    }
    let resolved = parts.join("/");
    let dest = match usr_path(&resolved) {
        Placement::At(t) => t,
        Placement::Root => String::new(),
        Placement::Outside => return format!("/{resolved}"),
    };
    let from: Vec<&str> = folded.split('/').collect();
    let from = &from[..from.len() - 1];
    let to: Vec<&str> = dest.split('/').filter(|c| !c.is_empty()).collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut out: Vec<&str> = vec![".."; from.len() - common];
    out.extend(&to[common..]);
    if out.is_empty() {
        ".".to_string()
    } else {
        out.join("/")
    }
}

/// Map every package entry into `/usr`, refusing stray paths and two
/// packages installing different content at one path.
fn merge(packages: &[InstalledPackage]) -> Result<BTreeMap<String, (&Entry, &str)>, OsError> {
    let mut tree: BTreeMap<String, (&Entry, &str)> = BTreeMap::new();
    for pkg in packages {
        let name = pkg.meta.name.as_str();
        for e in &pkg.entries {
            let path = match usr_path(&e.path) {
                Placement::Root => continue,
                Placement::At(p) => p,
                Placement::Outside => {
                    return Err(OsError::Outside {
                        package: name.to_string(),
                        path: e.path.clone(),
                    });
                }
            };
            match tree.get(&path) {
                Some((old, _)) if old.is_dir() && e.is_dir() => {}
                Some((old, _)) if old.kind == e.kind && old.mode == e.mode => {}
                Some((_, first)) => {
                    return Err(OsError::Conflict {
                        path: format!("usr/{path}"),
                        first: first.to_string(),
                        second: name.to_string(),
                    });
                }
                None => {
                    tree.insert(path, (e, name));
                }
            }
        }
    }
    Ok(tree)
}

/// Write the merged tree, `lib/os-release` and the files forge generates
/// (`generated`: path inside `/usr`, bytes; see [`super::trust`]) under
/// `root`. A package installing a generated path is a conflict, not
/// silently overwritten.
pub fn write_tree(
    def: &OsDef,
    packages: &[InstalledPackage],
    generated: &[(String, Extra)],
    root: &Path,
    epoch: u64,
) -> Result<(), OsError> {
    let tree = merge(packages)?;
    let when = Some(SystemTime::UNIX_EPOCH + Duration::from_secs(epoch));
    let err = |source| OsError::Tree {
        path: root.to_path_buf(),
        source: Box::new(source),
    };
    let mut w = TreeWriter::new(root, Path::new("/usr"))
        .map_err(err)?
        .allow_absolute_links();
    let mut links = Vec::new();
    for (path, (e, _)) in &tree {
        let p = Path::new(path);
        match &e.kind {
            EntryKind::Dir => w.dir(p, e.mode, when).map_err(err)?,
            EntryKind::File(data) => w.file(p, e.mode, when, &mut data.as_slice()).map_err(err)?,
            EntryKind::Symlink(t) => {
                let t = refold_link(&e.path, path, t);
                w.symlink(p, Path::new(&t)).map_err(err)?
            }
            EntryKind::Hardlink(t) => links.push((path, t)),
        }
    }
    for (path, target) in links {
        let target = match usr_path(target) {
            Placement::At(t) => t,
            Placement::Root | Placement::Outside => target.clone(),
        };
        w.hardlink(Path::new(path), Path::new(&target))
            .map_err(err)?;
    }
    let release = os_release(def);
    if !tree.contains_key("lib/os-release") {
        w.dir(Path::new("lib"), 0o755, when).map_err(err)?;
        w.file(
            Path::new("lib/os-release"),
            0o644,
            when,
            &mut release.as_bytes(),
        )
        .map_err(err)?;
    }
    for (path, extra) in generated {
        if let Some((_, package)) = tree.get(path) {
            return Err(OsError::Conflict {
                path: format!("usr/{path}"),
                first: package.to_string(),
                second: "forge (generated from [containers])".to_string(),
            });
        }
        match extra {
            Extra::File(bytes) => w
                .file(Path::new(path), 0o644, when, &mut bytes.as_slice())
                .map_err(err)?,
            Extra::Symlink(target) => w.symlink(Path::new(path), Path::new(target)).map_err(err)?,
        }
    }
    w.finish().map_err(err)?;
    Ok(())
}

/// `/usr/lib/os-release`: the image name and version, which a booted slot
/// reports.
fn os_release(def: &OsDef) -> String {
    let version = def.version.as_deref().unwrap_or("0");
    format!(
        "ID=forge\nNAME=\"forge {name}\"\nIMAGE_ID={name}\nIMAGE_VERSION={version}\nVERSION_ID={version}\n",
        name = def.name
    )
}

/// `mkfs.erofs` over `tree`, then `veritysetup format` over the result.
pub fn make(tree: &Path, work: &Path, seed: &Seed, epoch: u64) -> Result<UsrImage, OsError> {
    let fs = work.join("usr.erofs");
    let hash = work.join("usr.verity");
    Cmd::new("mkfs.erofs")
        .args(["-zlz4hc", "--quiet", "--all-root", "--ignore-mtime"])
        .arg(format!("-T{epoch}"))
        .arg(format!("-U{}", seed.guid("usr-erofs")))
        .arg(&fs)
        .arg(tree)
        .env("SOURCE_DATE_EPOCH", epoch.to_string())
        .run()?;
    let mut fs_bytes = size_of(&fs)?;
    if fs_bytes % BLOCK != 0 {
        fs_bytes = fs_bytes.div_ceil(BLOCK) * BLOCK;
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&fs)
            .map_err(OsError::io("opening", &fs))?;
        f.set_len(fs_bytes).map_err(OsError::io("padding", &fs))?;
    }
    let salt = seed.hex32("usr-verity-salt");
    let out = Cmd::new("veritysetup")
        .args([
            "format",
            "--hash=sha256",
            "--data-block-size=4096",
            "--hash-block-size=4096",
        ])
        .arg(format!("--salt={salt}"))
        .arg(format!("--uuid={}", seed.guid("usr-verity")))
        .arg(&fs)
        .arg(&hash)
        .run_stdout()?;
    let root_hash = out
        .lines()
        .find_map(|l| l.strip_prefix("Root hash:"))
        .map(|h| h.trim().to_string())
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or(OsError::NoRootHash)?;
    let hash_bytes = size_of(&hash)?;
    Ok(UsrImage {
        fs,
        fs_bytes,
        hash,
        hash_bytes,
        root_hash,
        salt,
    })
}

fn size_of(path: &Path) -> Result<u64, OsError> {
    Ok(std::fs::metadata(path)
        .map_err(OsError::io("reading", path))?
        .len())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// busybox's applet links climbed out of the /usr tree after folding
    /// (`refusing entry bin/[ … escapes the tree` building the node image).
    #[test]
    fn relative_links_are_repointed_after_folding() {
        let cases = [
            ("usr/bin/[", "bin/[", "../../bin/busybox", "busybox"),
            ("bin/sh", "bin/sh", "busybox", "busybox"),
            (
                "usr/sbin/x",
                "sbin/x",
                "../../bin/busybox",
                "../bin/busybox",
            ),
            (
                "etc/a",
                "share/factory/etc/a",
                "../usr/lib/x",
                "../../../lib/x",
            ),
            ("usr/bin/a", "bin/a", "../../home/x", "/home/x"),
            ("usr/bin/a", "bin/a", "../../../../x", "../../../../x"),
            ("usr/bin/a", "bin/a", "/bin/busybox", "/bin/busybox"),
            ("usr/lib/a", "lib/a", "..", ".."),
        ];
        for (orig, folded, target, want) in cases {
            assert_eq!(
                refold_link(orig, folded, target),
                want,
                "{orig} -> {target}"
            );
        }
    }

    #[test]
    fn package_paths_fold_into_usr() {
        assert_eq!(usr_path("usr"), Placement::Root);
        let cases = [
            ("usr/bin/hello", "bin/hello"),
            ("bin/busybox", "bin/busybox"),
            ("lib", "lib"),
            ("etc/crio/crio.conf", "share/factory/etc/crio/crio.conf"),
            ("var", "share/factory/var"),
        ];
        for (from, to) in cases {
            assert_eq!(usr_path(from), Placement::At(to.to_string()), "{from}");
        }
        for stray in ["home/user", "root", "opt/x", "boot/vmlinuz"] {
            assert_eq!(usr_path(stray), Placement::Outside, "{stray}");
        }
    }
}
