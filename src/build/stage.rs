//! Turning the built `$pkgdir` into published staged trees: split the
//! subpackages out, normalize every tree, then swap the finished folder into
//! `out/stage/NAME/` with renames, so a reader sees either the old complete
//! set of trees or the new one, never a half-written one.

use super::sandbox::WorkDirs;
use super::{BuildError, BuildRequest, Staged, StagedPackage, io_err, normalize, split, stage_dir};

/// Split, normalize and publish the staged trees.
pub(super) fn stage(req: &BuildRequest<'_>, dirs: &WorkDirs) -> Result<Staged, BuildError> {
    let recipe = req.recipe;
    let name = recipe.name.as_str();
    let stage_root = req.settings.out.join("stage");
    std::fs::create_dir_all(&stage_root).map_err(io_err("creating", &stage_root))?;
    let temp = tempfile::Builder::new()
        .prefix(&format!(".{name}.tmp-"))
        .tempdir_in(&stage_root)
        .map_err(io_err("creating a folder in", &stage_root))?;

    let main = temp.path().join(name);
    std::fs::rename(&dirs.pkg, &main).map_err(io_err("moving", &dirs.pkg))?;
    let mut trees = vec![main.clone()];
    for sub in &recipe.subpackages {
        let set = split::globs(&sub.name, &sub.paths).map_err(|source| BuildError::Split {
            recipe: name.to_string(),
            source,
        })?;
        let dest = temp.path().join(&sub.name);
        let moved =
            split::split(&main, &dest, &sub.name, &set).map_err(|source| BuildError::Split {
                recipe: name.to_string(),
                source,
            })?;
        if moved.is_empty() {
            req.settings.shell.warn(format!(
                "subpackage `{}` of `{name}` is empty: none of its paths matched",
                sub.name
            ));
        }
        trees.push(dest);
    }
    for tree in &trees {
        std::fs::set_permissions(tree, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .map_err(io_err("setting the mode of", tree))?;
        let cleared = normalize::normalize_tree(tree, req.source_date_epoch, recipe.options.suid)
            .map_err(|source| BuildError::Normalize {
            recipe: name.to_string(),
            source,
        })?;
        for path in cleared {
            let rel = path.strip_prefix(tree).unwrap_or(&path);
            req.settings.shell.warn(format!(
                "`{name}`: cleared the setuid/setgid bits of {} (add the `suid` option to keep them)",
                rel.display()
            ));
        }
    }

    // Swap the finished folder into place: old aside, new in, old removed.
    let final_dir = stage_dir(req.settings, name);
    let done = temp.keep();
    let old = stage_root.join(format!(".{name}.old"));
    let _ = std::fs::remove_dir_all(&old);
    if final_dir.exists() {
        std::fs::rename(&final_dir, &old).map_err(io_err("moving", &final_dir))?;
    }
    std::fs::rename(&done, &final_dir).map_err(io_err("moving", &done))?;
    let _ = std::fs::remove_dir_all(&old);

    let mut packages = vec![StagedPackage {
        name: name.to_string(),
        description: recipe.description.clone(),
        depends: recipe.depends.clone(),
        provides: recipe.provides.clone(),
        root: final_dir.join(name),
    }];
    for sub in &recipe.subpackages {
        packages.push(StagedPackage {
            name: sub.name.clone(),
            description: sub.description.clone(),
            depends: sub.depends.clone(),
            provides: sub.provides.clone(),
            root: final_dir.join(&sub.name),
        });
    }
    Ok(Staged {
        recipe_name: name.to_string(),
        source_date_epoch: req.source_date_epoch,
        packages,
    })
}
