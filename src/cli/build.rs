//! `forge build [NAME...]`: packages whose inputs changed, in dependency
//! order, then every image whose inputs changed; `--unit NAME` builds one
//! unit of the plan (what a CI job runs).

use std::process::ExitCode;

use anyhow::{Context as _, Result};

use crate::pipeline::{self, BuildOptions};
use crate::settings::Settings;

/// Which units a plan covers: shared by `forge build`, `forge plan` and
/// `forge ci plan`, so a CI job plans exactly what the CI plan did.
#[derive(Debug, Clone, clap::Args)]
pub struct Selection {
    /// Recipes to build, with what they need (default: `default-targets`
    /// from forge.toml, or all recipes).
    #[arg(value_name = "NAME")]
    pub names: Vec<String>,
    /// Build every recipe, ignoring `default-targets`.
    #[arg(long, conflicts_with = "names")]
    pub all: bool,
    /// Also rebuild what depends on the named recipes.
    #[arg(long)]
    pub rdeps: bool,
    /// Also sign with the legacy SHA-1 scheme (`.SIGN.RSA.`) for old apk clients.
    #[arg(long)]
    pub sha1_signature: bool,
    /// Leave images out (they are planned and built only when no recipe is named).
    #[arg(long)]
    pub no_images: bool,
    /// The architecture to build for, or `all` for every one in forge.toml's
    /// `arch` (default: forge.toml's `arch` for `forge build`, else the
    /// host's).
    #[arg(long, value_name = "ARCH")]
    pub arch: Option<String>,
}

impl Selection {
    /// Build options for this selection (no execution flags set).
    pub fn options(&self, settings: &Settings) -> BuildOptions {
        let targets = if self.names.is_empty() && !self.all {
            settings.default_targets.clone()
        } else {
            self.names.clone()
        };
        BuildOptions {
            targets,
            rdeps: self.rdeps,
            sha1_signature: self.sha1_signature,
            images: !self.no_images && self.names.is_empty(),
            arch: self.arch.clone().filter(|a| a != "all"),
            ..BuildOptions::default()
        }
    }
}

/// Arguments of `forge build`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    selection: Selection,
    /// Rebuild the named recipes even when fresh.
    #[arg(long, requires = "names")]
    force: bool,
    /// Keep building independent recipes after a failure.
    #[arg(long)]
    keep_going: bool,
    /// Say for every unit why it is fresh or dirty.
    #[arg(long)]
    explain: bool,
    /// Plan only: show what would be built.
    #[arg(long)]
    dry_run: bool,
    /// Build only this unit of the plan (a recipe name or `image:NAME`) if it
    /// is dirty; what it needs must be built already. CI jobs run this.
    #[arg(long, value_name = "UNIT")]
    unit: Option<String>,
    /// A registry-backed build cache shared by runners: dirty units are
    /// pulled from it when it holds their key (verified), built units are
    /// pushed to it, signed (`oci+http://` for a plain-HTTP registry).
    #[arg(long, value_name = "oci://HOST[:PORT]/REPO")]
    cache: Option<String>,
}

/// Run `forge build`.
pub fn run(settings: &Settings, args: Args) -> Result<ExitCode> {
    let cache = match &args.cache {
        Some(url) => {
            let url = crate::cache::CacheUrl::parse(url)?;
            Some(std::sync::Arc::new(crate::cache::Cache::open(
                &settings.shell,
                &url,
            )?))
        }
        None => None,
    };
    let opts = BuildOptions {
        cache,
        force: args.force,
        keep_going: args.keep_going,
        explain: args.explain,
        dry_run: args.dry_run,
        unit: args.unit.clone(),
        ..args.selection.options(settings)
    };
    // A CI job (`--unit`) executes one unit of one plan: the host's unless
    // `--arch` names another.
    let arches = match (&args.unit, args.selection.arch.as_deref()) {
        (Some(_), None) => vec![pipeline::host_arch().to_string()],
        (_, flag) => build_arches(settings, flag),
    };
    let mut failed = false;
    for arch in &arches {
        if arches.len() > 1 {
            settings.shell.status("Arch", arch);
        }
        let opts = BuildOptions {
            arch: Some(arch.clone()),
            ..opts.clone()
        };
        let reports =
            pipeline::build(settings, &opts).with_context(|| format!("building for {arch}"))?;
        reports.print(&settings.shell);
        failed |= reports.failed();
        if failed && !opts.keep_going {
            break;
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The architectures a `forge build` builds for, the host's first: `flag`
/// (`all`: forge.toml's list), else forge.toml's `arch`, else the host's.
pub(super) fn build_arches(settings: &Settings, flag: Option<&str>) -> Vec<String> {
    let host = pipeline::host_arch().to_string();
    let mut list = match flag {
        Some("all") | None => settings.arches.clone(),
        Some(arch) => vec![arch.to_string()],
    };
    if list.is_empty() {
        list.push(host.clone());
    }
    list.sort_by_key(|a| *a != host);
    let mut seen = std::collections::BTreeSet::new();
    list.retain(|a| seen.insert(a.clone()));
    list
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn architectures_come_from_the_flag_then_forge_toml_host_first() {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = Settings::for_root(dir.path());
        let host = pipeline::host_arch().to_string();
        assert_eq!(build_arches(&settings, None), vec![host.clone()]);
        assert_eq!(build_arches(&settings, Some("all")), vec![host.clone()]);
        settings.arches = vec![
            "riscv64".into(),
            "armv7".into(),
            host.clone(),
            "riscv64".into(),
        ];
        assert_eq!(
            build_arches(&settings, None),
            [host.clone(), "riscv64".to_string(), "armv7".to_string()]
        );
        assert_eq!(build_arches(&settings, Some("all")).len(), 3);
        assert_eq!(build_arches(&settings, Some("riscv64")), ["riscv64"]);
    }
}
