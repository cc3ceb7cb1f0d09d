//! Run-wide settings: the project root, output and cache folders, mirrors, job
//! count, sandbox mode. Built once by the CLI from flags, environment and the
//! optional `forge.toml` at the project root, then passed by reference to every
//! stage.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use serde::Deserialize;

use crate::output::Shell;
use crate::recipe::Stage;

/// How builds are isolated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum SandboxMode {
    /// bubblewrap: new namespaces, no network, host toolchain read-only.
    #[default]
    Bwrap,
    /// No isolation (for hosts without user namespaces, e.g. inside a CI container).
    None,
}

/// Everything a stage needs to know about this run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The project root (holds `recipes/`, `images/`, `keys/`).
    pub root: PathBuf,
    /// The output folder (default `<root>/out`).
    pub out: PathBuf,
    /// The cache folder (distfiles, git mirrors).
    pub cache: PathBuf,
    /// Parallel jobs.
    pub jobs: usize,
    /// Use only the cache and mirrors, never upstream.
    pub offline: bool,
    /// Mirrors tried before upstream: URLs (`https://…/`) or local folders.
    pub mirrors: Vec<String>,
    /// Build isolation.
    pub sandbox: SandboxMode,
    /// Recipes built when `forge build` names none (empty: all).
    pub default_targets: Vec<String>,
    /// Whether SHA-1 package and index signatures count (`forge.toml`
    /// `accept-sha1-signatures`; default false).
    pub accept_sha1_signatures: bool,
    /// Build roots: the default stage and the hermetic stage's base
    /// (`forge.toml` `[build-root]`).
    pub build_root: BuildRoot,
    /// The architectures `forge build` builds for, the host's first
    /// (`forge.toml` `arch`; default: the host's).
    pub arches: Vec<String>,
    /// The output channel.
    pub shell: Shell,
}

impl Settings {
    /// `<root>/recipes`.
    pub fn recipes_dir(&self) -> PathBuf {
        self.root.join("recipes")
    }
    /// `<root>/images`.
    pub fn images_dir(&self) -> PathBuf {
        self.root.join("images")
    }
    /// `<root>/keys`.
    pub fn keys_dir(&self) -> PathBuf {
        self.root.join("keys")
    }
    /// `<out>/logs`.
    pub fn logs_dir(&self) -> PathBuf {
        self.out.join("logs")
    }
    /// `<out>/repo`.
    pub fn repo_dir(&self) -> PathBuf {
        self.out.join("repo")
    }
    /// Settings for tests and library callers: everything under `root`, quiet.
    pub fn for_root(root: &Path) -> Settings {
        Settings {
            root: root.to_path_buf(),
            out: root.join("out"),
            cache: root.join("out").join("cache"),
            jobs: 1,
            offline: true,
            mirrors: Vec::new(),
            sandbox: SandboxMode::Bwrap,
            default_targets: Vec::new(),
            accept_sha1_signatures: false,
            build_root: BuildRoot::default(),
            arches: Vec::new(),
            shell: Shell::silent(),
        }
    }
}

/// The optional project config file, `forge.toml` at the project root, and the
/// user config `$XDG_CONFIG_HOME/forge/config.toml` (same schema; the project
/// file's mirrors come first).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ConfigFile {
    /// Mirrors tried before upstream, in order.
    #[serde(default)]
    pub mirrors: Vec<String>,
    /// Default cache folder.
    #[serde(default)]
    pub cache_dir: Option<PathBuf>,
    /// The recipes `forge build` builds when no name is given (default: all).
    #[serde(default)]
    pub default_targets: Vec<String>,
    /// Accept package and index signatures over SHA-1 (`.SIGN.RSA.`), as
    /// old abuild and Alpine's own repositories make (default: refused).
    /// Read from the project's `forge.toml` only.
    #[serde(default)]
    pub accept_sha1_signatures: bool,
    /// Build roots (`[build-root]`). Read from the project's `forge.toml`
    /// only.
    #[serde(default)]
    pub build_root: BuildRoot,
    /// The architectures `forge build` builds for (default: the host's).
    /// Read from the project's `forge.toml` only.
    #[serde(default)]
    pub arch: Vec<String>,
}

/// `[build-root]` in `forge.toml`: how units' build roots are made
/// (docs/bootstrap.md).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct BuildRoot {
    /// The stage of recipes that do not name one (`[build] stage`):
    /// `bootstrap` (the host's `/usr`, the default) or `hermetic`.
    #[serde(default)]
    pub stage: StageName,
    /// The packages (apk dependency strings) every hermetic root holds
    /// besides the unit's makedepends: the seed and the base tools. They
    /// come from the host architecture's repository.
    #[serde(default)]
    pub base: Vec<String>,
}

/// A stage as written in `forge.toml`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StageName {
    /// Host tools.
    #[default]
    Bootstrap,
    /// A root of forge packages.
    Hermetic,
}

impl BuildRoot {
    /// The stage `recipe` builds in: its own, else the project's default.
    pub fn stage_of(&self, recipe: &crate::recipe::Recipe) -> Stage {
        recipe.stage.unwrap_or(match self.stage {
            StageName::Bootstrap => Stage::Bootstrap,
            StageName::Hermetic => Stage::Hermetic,
        })
    }
}

impl ConfigFile {
    /// Read a config file; a missing file is an empty config.
    pub fn load(path: &Path) -> Result<ConfigFile> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ConfigFile::default()),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        toml::from_str(&text).with_context(|| format!("in {}", path.display()))
    }
}

/// Find the project root: the nearest ancestor of `start` holding `forge.toml`
/// or a `recipes/` folder.
pub fn find_root(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .find(|d| d.join("forge.toml").is_file() || d.join("recipes").is_dir())
        .map(Path::to_path_buf)
}

/// The default cache folder: `$XDG_CACHE_HOME/forge` (or `~/.cache/forge`).
pub fn default_cache_dir() -> PathBuf {
    dirs::cache_dir()
        .unwrap_or_else(|| PathBuf::from(".cache"))
        .join("forge")
}
