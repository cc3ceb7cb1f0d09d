//! `forge update --prebuild`: build the update's commit before its branch
//! exists, and publish what it produced under `VERSION-prebuild`.
//!
//! The commit's tree is written to `<out>/prebuild/tree` (no `.git`: the
//! build's `SOURCE_DATE_EPOCH` then comes from the environment or the
//! default); `keys/` there is a link to the project's `keys/`, so the
//! private keys are not copied. The build goes to `<out>/prebuild/out`, apart
//! from the project's own repository, with the ordinary pipeline: the bumped
//! recipes and their reverse dependencies, then every image whose inputs
//! changed. Publishing is the caller's ([`Prebuild`]), so the registry code
//! stays where `forge publish` keeps it.

use std::path::Path;

use anyhow::{Context as _, Result, bail};
use git2::Oid;

use super::git::Repo;
use crate::pipeline::{self, BuildOptions};
use crate::settings::Settings;

/// Publishes a prebuilt tree.
pub trait Prebuild {
    /// Publish the images `images` built with `settings` under
    /// `VERSION-prebuild` and the package repository under
    /// `RECIPE-VERSION-prebuild`, signed; never `latest`. Returns the
    /// references pushed.
    fn publish(
        &self,
        settings: &Settings,
        images: &[String],
        recipe: &str,
        version: &str,
    ) -> Result<Vec<String>>;
}

/// Build the tree of `commit` (the `recipes` bumped and their reverse
/// dependencies, then images) and publish it under `VERSION-prebuild`.
pub fn run(
    settings: &Settings,
    repo: &Repo,
    commit: Oid,
    recipes: &[String],
    version: &str,
    publisher: &dyn Prebuild,
) -> Result<Vec<String>> {
    let base = settings.out.join("prebuild");
    let tree = base.join("tree");
    if tree.exists() {
        std::fs::remove_dir_all(&tree).with_context(|| format!("clearing {}", tree.display()))?;
    }
    std::fs::create_dir_all(&tree).with_context(|| format!("creating {}", tree.display()))?;
    repo.export(commit, &tree)?;
    let rel = repo.relative(&settings.root)?;
    let root = if rel.is_empty() {
        tree.clone()
    } else {
        tree.join(rel)
    };
    link_keys(&settings.keys_dir(), &root.join("keys"))?;
    let mut s = settings.clone();
    s.root = root;
    s.out = base.join("out");
    s.default_targets = Vec::new();
    let opts = BuildOptions {
        targets: recipes.to_vec(),
        rdeps: true,
        images: true,
        ..BuildOptions::default()
    };
    let reports = pipeline::build(&s, &opts).context("building the update")?;
    reports.print(&s.shell);
    if reports.packages.failed() {
        bail!(
            "the build of the update failed (see {})",
            s.logs_dir().display()
        );
    }
    let images = &reports.images;
    if images.failed() {
        bail!("an image of the update failed to build");
    }
    let built: Vec<String> = images
        .built()
        .filter_map(|u| u.name.strip_prefix("image:").map(str::to_string))
        .collect();
    publisher.publish(&s, &built, &recipes[0], version)
}

fn link_keys(keys: &Path, link: &Path) -> Result<()> {
    if link.exists() || link.is_symlink() {
        std::fs::remove_dir_all(link)
            .or_else(|_| std::fs::remove_file(link))
            .with_context(|| format!("replacing {}", link.display()))?;
    }
    std::os::unix::fs::symlink(keys, link)
        .with_context(|| format!("linking {} to {}", link.display(), keys.display()))
}
