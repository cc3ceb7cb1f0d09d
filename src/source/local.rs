//! Local sources: files and folders inside the recipe folder, placed under
//! `$srcdir` by their last name (`patches/fix.patch` → `$srcdir/fix.patch`,
//! as abuild does and as recipe validation assumes for collision checks).
//!
//! A local path may not leave the recipe folder, neither by `..` nor through a
//! symlink; copying goes through [`TreeWriter`], so symlinks inside a copied
//! folder follow the same rules as archive entries. Only the executable bit
//! of the mode is kept (files become 0644 or 0755), matching what
//! [`super::digest::local_digest`] covers.

use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use super::SourceError;
use super::tree::TreeWriter;
use crate::recipe::Recipe;

/// The absolute path of local source `rel` of `recipe`, checked to exist
/// inside the recipe folder.
pub(crate) fn resolve(recipe: &Recipe, rel: &str) -> Result<PathBuf, SourceError> {
    let bad = |reason: &str| SourceError::Local {
        recipe: recipe.name.clone(),
        path: rel.to_string(),
        reason: reason.to_string(),
    };
    let p = Path::new(rel);
    if p.as_os_str().is_empty()
        || !p
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(bad(
            "must be a relative path inside the recipe folder, without `..`",
        ));
    }
    let full = recipe.dir.join(p);
    let real = full.canonicalize().map_err(|_| bad("does not exist"))?;
    let base = recipe
        .dir
        .canonicalize()
        .map_err(SourceError::io("reading", &recipe.dir))?;
    if !real.starts_with(&base) || real == base {
        return Err(bad("resolves outside the recipe folder"));
    }
    Ok(full)
}

/// Copy local source `rel` (resolved to `full`) into `srcdir` under its last name.
pub(crate) fn place(
    recipe: &Recipe,
    full: &Path,
    rel: &str,
    srcdir: &Path,
) -> Result<(), SourceError> {
    let name = Path::new(rel)
        .file_name()
        .map(Path::new)
        .ok_or_else(|| SourceError::Local {
            recipe: recipe.name.clone(),
            path: rel.to_string(),
            reason: "has no file name".to_string(),
        })?;
    let dest = srcdir.join(name);
    if dest.symlink_metadata().is_ok() {
        return Err(SourceError::Collision {
            recipe: recipe.name.clone(),
            path: dest,
        });
    }
    let mut w = TreeWriter::new(srcdir, &recipe.dir)?;
    let meta = std::fs::metadata(full).map_err(SourceError::io("reading", full))?;
    if meta.is_dir() {
        let mut entries: Vec<walkdir::DirEntry> = Vec::new();
        for e in walkdir::WalkDir::new(full).sort_by_file_name() {
            entries.push(e.map_err(|e| SourceError::Io {
                op: "reading",
                path: e.path().unwrap_or(full).to_path_buf(),
                source: e.into(),
            })?);
        }
        for e in entries {
            let sub = e.path().strip_prefix(full).expect("under its root");
            let entry = name.join(sub);
            copy_one(&mut w, e.path(), &entry)?;
        }
    } else {
        copy_one(&mut w, full, name)?;
    }
    w.finish()?;
    Ok(())
}

fn copy_one(w: &mut TreeWriter, from: &Path, entry: &Path) -> Result<(), SourceError> {
    let meta = std::fs::symlink_metadata(from).map_err(SourceError::io("reading", from))?;
    let ft = meta.file_type();
    if ft.is_dir() {
        w.dir(entry, 0o755, None)
    } else if ft.is_symlink() {
        let target = std::fs::read_link(from).map_err(SourceError::io("reading", from))?;
        w.symlink(entry, &target)
    } else if ft.is_file() {
        let mode = if meta.permissions().mode() & 0o111 != 0 {
            0o755
        } else {
            0o644
        };
        let mut f = std::fs::File::open(from).map_err(SourceError::io("reading", from))?;
        w.file(entry, mode, None, &mut f)
    } else {
        Err(w.refuse_kind(entry, "special file"))
    }
}
