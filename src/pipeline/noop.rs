//! The no-op fast path: prove "nothing changed since the last complete run"
//! from file metadata alone, as ninja and make do, before parsing anything.
//!
//! After a run in which every selected unit ended fresh or built, forge
//! writes a stamp (`out/state/noop-<arch>.json`) holding a digest over:
//!
//! - the stat data (type, size, mtime in ns, inode, mode) of every entry
//!   under `recipes/`, `images/` and `keys/`, of `forge.toml`, of
//!   `out/repo/<arch>/`, `out/state/<arch>/` and `out/state/images/`, of
//!   each built image's `index.json`, of the forge executable and of the
//!   host `cc`;
//! - the git `HEAD` (its text and the ref it names), since SOURCE_DATE_EPOCH
//!   and the commit come from history;
//! - the selection (targets, `--rdeps`, images or not), the sandbox mode, and the
//!   environment variables that shape a build (`SOURCE_DATE_EPOCH`,
//!   `FORGE_SIGNING_KEY`).
//!
//! When the next run computes the same digest, the whole plan would be
//! "all fresh", so it is skipped. Anything that could change a verdict changes
//! the digest: an edited recipe, a touched package, a new key, a new commit.
//! `--explain`, `--dry-run`, `--force`, `--unit` and `os:NAME` targets always take the full path. Packages
//! are still verified in full wherever they are used (build roots, images,
//! `forge verify`); this path only decides that there is nothing to build.

use std::fs;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::BuildOptions;
use crate::settings::Settings;
use crate::util::write_atomic;

/// What the stamp records: the digest, and the units it covered (for the report).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    /// Digest over everything listed in the module docs.
    pub digest: String,
    /// `(name, version-rN)` of every unit of that run.
    pub units: Vec<(String, String)>,
}

fn stamp_path(settings: &Settings, arch: &str) -> PathBuf {
    settings.out.join("state").join(format!("noop-{arch}.json"))
}

fn hash_meta(h: &mut Sha256, label: &[u8], m: Option<&fs::Metadata>) {
    h.update(label);
    h.update([0]);
    match m {
        Some(m) => {
            for n in [
                u64::from(m.mode()),
                m.size(),
                m.mtime() as u64,
                m.mtime_nsec() as u64,
                m.ino(),
            ] {
                h.update(n.to_le_bytes());
            }
        }
        None => h.update(b"missing"),
    }
}

fn stat_line(h: &mut Sha256, label: &Path, path: &Path) {
    let m = fs::symlink_metadata(path).ok();
    hash_meta(h, label.as_os_str().as_encoded_bytes(), m.as_ref());
}

/// Every entry below `root`, depth first in name order. `DirEntry::metadata`
/// stats relative to the open folder (no path walk per file), which is most
/// of what a no-op run costs.
fn stat_tree(h: &mut Sha256, root: &Path) {
    stat_line(h, root, root);
    let mut stack = vec![(root.to_path_buf(), Vec::<u8>::new())];
    while let Some((dir, prefix)) = stack.pop() {
        let Ok(items) = fs::read_dir(&dir) else {
            continue;
        };
        let mut entries: Vec<fs::DirEntry> = items.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        let mut subdirs = Vec::new();
        for e in entries {
            let mut label = prefix.clone();
            label.extend_from_slice(e.file_name().as_encoded_bytes());
            let m = e.metadata().ok();
            hash_meta(h, &label, m.as_ref());
            if m.as_ref().is_some_and(|m| m.is_dir()) {
                label.push(b'/');
                subdirs.push((e.path(), label));
            }
        }
        // Reverse so the stack pops them in name order.
        stack.extend(subdirs.into_iter().rev());
    }
}

/// `.git/HEAD` and the ref it names, read as text; `None` when the project is
/// not at the top of a plain git work tree (the fast path is then off).
fn git_head(root: &Path) -> Option<String> {
    let git = root.join(".git");
    if !git.is_dir() {
        return None;
    }
    let head = fs::read_to_string(git.join("HEAD")).ok()?;
    let target = match head.strip_prefix("ref: ") {
        Some(r) => {
            let r = r.trim();
            fs::read_to_string(git.join(r))
                .ok()
                .or_else(|| {
                    let packed = fs::read_to_string(git.join("packed-refs")).ok()?;
                    packed.lines().find(|l| l.ends_with(r)).map(str::to_string)
                })
                .unwrap_or_default()
        }
        None => String::new(),
    };
    Some(format!("{head}\n{target}"))
}

/// The input half of the digest, taken when a run starts (so an edit made
/// while it runs is never stamped as built), or `None` when the fast path
/// does not apply.
pub fn inputs(settings: &Settings, arch: &str, opts: &BuildOptions) -> Option<String> {
    // A run asking for an OS unit (`os:NAME`) plans in full too: its key
    // holds the definition and the state of its disk, which the stamp does
    // not cover, and planning is cheap beside assembling a disk.
    let os_target = opts
        .targets
        .iter()
        .any(|t| t.starts_with(super::osunits::PREFIX));
    if opts.explain || opts.dry_run || opts.force || opts.unit.is_some() || os_target {
        return None;
    }
    let mut h = Sha256::new();
    h.update(format!(
        "format={} arch={arch} sandbox={:?} targets={:?} rdeps={} sha1={} images={}\n",
        crate::plan::FORMAT_VERSION,
        settings.sandbox,
        opts.targets,
        opts.rdeps,
        opts.sha1_signature,
        opts.images
    ));
    h.update(git_head(&settings.root)?);
    for var in ["SOURCE_DATE_EPOCH", crate::sign::SIGNING_KEY_ENV] {
        h.update(format!("{var}={:?}\n", std::env::var_os(var)));
    }
    stat_tree(&mut h, &settings.recipes_dir());
    stat_tree(&mut h, &settings.keys_dir());
    if opts.images {
        stat_tree(&mut h, &settings.images_dir());
    }
    stat_line(
        &mut h,
        Path::new("forge.toml"),
        &settings.root.join("forge.toml"),
    );
    if let Ok(exe) = std::env::current_exe() {
        stat_line(&mut h, Path::new("forge"), &exe);
    }
    // The toolchain the sandbox uses (see `env_identity`): a package upgrade
    // replaces these files.
    let path = std::ffi::OsString::from(crate::build::SYSTEM_PATH);
    for tool in ["cc", "ld", "ldd"] {
        if let Some(p) =
            crate::process::find_in_path(tool, &path).and_then(|p| fs::canonicalize(p).ok())
        {
            stat_line(&mut h, Path::new(tool), &p);
        }
    }
    Some(hex::encode(h.finalize()))
}

/// The whole digest: `inputs` and the current state of the outputs.
fn digest(settings: &Settings, arch: &str, inputs: &str) -> String {
    let mut h = Sha256::new();
    h.update(inputs);
    h.update("\n");
    stat_tree(&mut h, &settings.repo_dir().join(arch));
    stat_tree(&mut h, &settings.out.join("state").join(arch));
    let images = settings.out.join("state").join("images");
    stat_tree(&mut h, &images);
    // Each built image's layout: a removed or rewritten one must be rebuilt.
    let mut names: Vec<PathBuf> = fs::read_dir(&images)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| PathBuf::from(e.file_name()))
        .collect();
    names.sort();
    for n in names.iter().filter_map(|n| n.file_stem()) {
        let layout = Path::new(n).join("index.json");
        stat_line(&mut h, &layout, &settings.out.join("images").join(&layout));
    }
    hex::encode(h.finalize())
}

/// The stamp's units when it matches `inputs` and the outputs as they are.
pub fn check(settings: &Settings, arch: &str, inputs: &str) -> Option<Vec<(String, String)>> {
    let bytes = fs::read(stamp_path(settings, arch)).ok()?;
    let stamp: Stamp = serde_json::from_slice(&bytes).ok()?;
    (stamp.digest == digest(settings, arch, inputs)).then_some(stamp.units)
}

/// Record a stamp after a complete run. Failures only cost the fast path.
pub fn record(settings: &Settings, arch: &str, inputs: &str, units: Vec<(String, String)>) {
    let stamp = Stamp {
        digest: digest(settings, arch, inputs),
        units,
    };
    let written = serde_json::to_vec(&stamp)
        .map_err(std::io::Error::other)
        .and_then(|json| write_atomic(&stamp_path(settings, arch), &json, None));
    if let Err(e) = written {
        tracing::debug!("no-op stamp not written: {e}");
    }
}
