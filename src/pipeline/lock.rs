//! `out/.lock`: one forge process at a time on an output folder, and the
//! clean-up of what a killed one left.
//!
//! Every file forge writes under `out/` is first written under a temporary
//! name in the same folder (`.tmp-*`, `.tmpXXXXXX`, `.NAME.tmp-*`, a
//! repository's `.staging/`) and renamed into place when complete. A process
//! killed part-way (kill -9, power loss) leaves those behind. Whoever holds
//! the lock is the only writer, so every temporary name it finds is stale:
//! [`OutLock::acquire`] removes them before the run starts. Only forge's own
//! folders are swept, at the depth forge writes them; build trees
//! (`out/work`, `out/deps`, the staged trees) may hold a package's own files
//! with any name and are left alone.

use std::fs;
use std::path::{Path, PathBuf};

use fs2::FileExt as _;

use super::{PipelineError, io_err};
use crate::settings::Settings;

/// Hold `out/.lock` for the life of the value.
pub struct OutLock(#[allow(dead_code)] fs::File);

impl OutLock {
    /// Take the exclusive lock, saying so when another process holds it,
    /// then remove the temporary files a killed run left.
    pub fn acquire(settings: &Settings) -> Result<OutLock, PipelineError> {
        fs::create_dir_all(&settings.out).map_err(io_err("creating", &settings.out))?;
        let path = settings.out.join(".lock");
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_err("opening", &path))?;
        if file.try_lock_exclusive().is_err() {
            settings.shell.status(
                "Blocking",
                format!(
                    "waiting for another forge run on {}",
                    settings.out.display()
                ),
            );
            file.lock_exclusive().map_err(io_err("locking", &path))?;
        }
        for stale in remove_stale_temps(&settings.out)? {
            settings.shell.note(format!(
                "removed {} left by an interrupted run",
                stale.display()
            ));
        }
        Ok(OutLock(file))
    }
}

/// Whether `name` is one of the temporary names forge writes under before
/// a rename.
fn is_temp_name(name: &str) -> bool {
    name == ".staging" || (name.starts_with('.') && name.contains(".tmp"))
}

/// The folders forge writes files into directly: `out/` and `registry/`,
/// each `repo/<arch>/` and `state/<arch>/`, `stage/`, each unit's
/// `work/<unit>/apk/`, `images/`, each image layout and its blob folder.
fn swept_folders(out: &Path) -> Vec<PathBuf> {
    let subdirs = |dir: PathBuf| -> Vec<PathBuf> {
        fs::read_dir(&dir)
            .map(|it| {
                it.filter_map(Result::ok)
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|e| e.path())
                    .filter(|p| {
                        !p.file_name()
                            .is_some_and(|n| is_temp_name(&n.to_string_lossy()))
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut dirs = vec![
        out.to_path_buf(),
        out.join("registry"),
        out.join("stage"),
        out.join("images"),
        // OS disks: `.NAME.raw.tmp-*` and the `.NAME.tmp-work-*` folder.
        out.join("os"),
    ];
    dirs.extend(subdirs(out.join("repo")));
    dirs.extend(subdirs(out.join("state")));
    // Each unit's packages are written in `work/<unit>/apk/` first.
    dirs.extend(subdirs(out.join("work")).into_iter().map(|w| w.join("apk")));
    for layout in subdirs(out.join("images")) {
        dirs.push(layout.join("blobs/sha256"));
        dirs.push(layout);
    }
    dirs
}

/// Remove every temporary file or folder in forge's folders under `out`;
/// returns what was removed.
fn remove_stale_temps(out: &Path) -> Result<Vec<PathBuf>, PipelineError> {
    let mut removed = Vec::new();
    for dir in swept_folders(out) {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.filter_map(Result::ok) {
            if !is_temp_name(&entry.file_name().to_string_lossy()) {
                continue;
            }
            let path = entry.path();
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            let res = if is_dir {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
            match res {
                Ok(()) => removed.push(path),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("removing", &path)(e)),
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_temps_go_and_everything_else_stays() {
        let t = tempfile::tempdir().unwrap();
        let out = t.path();
        let stale = [
            ".tmp-abc",
            "repo/x86_64/.tmpXy12Ab",
            "repo/x86_64/.staging/hello-1.0-r0.apk.42.tmp",
            "state/x86_64/.tmp-q1",
            "state/images/.tmp-q2",
            "stage/.hello.tmp-zz/hello/usr/bin/hello",
            "images/.hello.tmp-r2/index.json",
            "images/hello/.tmp-i",
            "images/hello/blobs/sha256/.tmp-blob-b",
            "registry/.tmp-m",
            "work/hello/apk/.tmpQ8zz1a",
            "os/.node.raw.tmp-Ab12",
            "os/.node.tmp-work-Cd34/usr/bin/hello",
        ];
        let kept = [
            "repo/x86_64/APKINDEX.tar.gz",
            "repo/x86_64/hello-1.0-r0.apk",
            "state/x86_64/hello.json",
            "stage/hello/hello/usr/share/.x.tmp-keep",
            "work/hello/src/.tmp-keep",
            "work/hello/apk/hello-1.0-r0.apk",
            "deps/hello/usr/.tmp-keep",
            "images/hello/index.json",
            "os/node.raw",
            "os/node.json",
        ];
        for rel in stale.iter().chain(&kept) {
            let p = out.join(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(&p, "x").unwrap();
        }
        let removed = remove_stale_temps(out).unwrap();
        assert_eq!(removed.len(), stale.len(), "{removed:?}");
        for rel in stale {
            let top = rel.split('/').find(|c| is_temp_name(c)).unwrap();
            let at = rel.split(top).next().unwrap();
            assert!(!out.join(at).join(top).exists(), "{rel} stayed");
        }
        for rel in kept {
            assert!(out.join(rel).exists(), "{rel} went");
        }
    }
}
