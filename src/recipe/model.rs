//! The validated recipe: what every later stage consumes.
//!
//! A [`Recipe`] is only ever built by [`super::load`] from a TOML file that passed
//! validation, so its fields can be trusted: the version follows apk's grammar,
//! every http source carries a checksum, every git source a full commit id.

use std::path::PathBuf;

use crate::version::Version;

/// One recipe: `recipes/NAME/recipe.toml`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipe {
    /// The recipe folder (`recipes/NAME`), absolute.
    pub dir: PathBuf,
    /// The recipe file (`recipes/NAME/recipe.toml`), absolute.
    pub file: PathBuf,
    /// Package name: `[a-z0-9][a-z0-9+._-]*`, equal to the folder name.
    pub name: String,
    /// Upstream version, apk grammar, without the `-rN` part.
    pub version: Version,
    /// The `-rN` release number.
    pub release: u32,
    /// One-line description (`pkgdesc`).
    pub description: String,
    /// Upstream home page.
    pub url: String,
    /// SPDX license expression.
    pub license: String,
    /// Architectures this recipe builds for; `noarch` means architecture independent.
    pub arch: Vec<String>,
    /// Runtime dependencies of the main package (apk dependency strings).
    pub depends: Vec<String>,
    /// Build dependencies: forge packages installed into the build root.
    pub makedepends: Vec<String>,
    /// Tools the build needs: checked up front on the host in the bootstrap
    /// stage, in the assembled build root in the hermetic stage. An entry
    /// may hold `${carch}` (see [`Recipe::tools_for`]).
    pub host_tools: Vec<String>,
    /// The build stage the recipe declares (`[build] stage`); `None` takes
    /// the project's default (`forge.toml` `[build-root] stage`).
    pub stage: Option<Stage>,
    /// Extra `provides` of the main package.
    pub provides: Vec<String>,
    /// Where the sources come from, in order.
    pub sources: Vec<Source>,
    /// The build step: a shell script run in the sandbox.
    pub build: String,
    /// The check step, skipped with the `!check` option.
    pub check: String,
    /// The directory the build runs in, relative to `$srcdir` (default: the
    /// top folder of the first archive, or `$srcdir` itself).
    pub builddir: Option<String>,
    /// Subpackages split out of `$pkgdir` after the build, in order.
    pub subpackages: Vec<Subpackage>,
    /// Recipe options.
    pub options: Options,
    /// Where new upstream versions are announced (`[update]`), if anywhere.
    pub update: Option<UpdateSpec>,
}

/// The `[update]` section: a release feed and how to read versions from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateSpec {
    /// The feed to watch.
    pub feed: Feed,
    /// A regex a candidate (tag or title) must match; its group 1 (or the
    /// whole match) is the version. Default: the candidate minus a leading `v`.
    pub regex: Option<String>,
    /// Versions never to update to (as written in the feed or normalized).
    pub ignore: Vec<String>,
    /// Whether `_alpha`, `_beta`, `_pre` and `_rc` versions count.
    pub prereleases: bool,
    /// A URL (with `${version}`) of a checksum list (`<hex>  <file>` lines)
    /// that a new download must match.
    pub checksums: Option<String>,
}

/// A release feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Feed {
    /// `github = "owner/repo"`: the releases feed, or the tags feed with `tags = true`.
    GitHub {
        /// `owner/repo`.
        repo: String,
        /// Watch tags instead of releases.
        tags: bool,
    },
    /// `gitlab = "host/group/project"`: the tags feed, or the releases feed with `tags = false`.
    GitLab {
        /// `host/group/project`, optionally with a scheme.
        project: String,
        /// Watch tags (the default) instead of releases.
        tags: bool,
    },
    /// `feed = "https://…"`: any Atom or RSS feed; entry titles are the candidates.
    Url(String),
}

impl Recipe {
    /// `version-rRELEASE`, as written in `.PKGINFO` and file names.
    pub fn full_version(&self) -> String {
        format!("{}-r{}", self.version, self.release)
    }

    /// True when the recipe cross-compiles: a tool names the target
    /// architecture (`${carch}`, e.g. `${carch}-linux-gnu-gcc`), so its
    /// bootstrap build makes binaries for `$CARCH`, not for the host, and
    /// may be planned for any architecture of its `arch` list.
    pub fn cross_compiles(&self) -> bool {
        self.host_tools.iter().any(|t| t.contains(CARCH_VAR))
    }

    /// The tools a build for `arch` needs: `tools` with `${carch}` replaced.
    pub fn tools_for(&self, arch: &str) -> Vec<String> {
        self.host_tools
            .iter()
            .map(|t| t.replace(CARCH_VAR, arch))
            .collect()
    }
}

/// The one variable a `[build] tools` entry may hold: the architecture a
/// build is for (`$CARCH` in the script).
pub const CARCH_VAR: &str = "${carch}";

/// Where a build's tools come from (docs/bootstrap.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stage {
    /// The host's `/usr` is the toolchain (bound read-only): for the seed and
    /// the base that hermetic roots are made of.
    Bootstrap,
    /// The build root is made of forge packages only: the project's base
    /// (`forge.toml` `[build-root] base`) and the unit's makedepends; the
    /// host's `/usr` is not in the sandbox.
    Hermetic,
}

impl Stage {
    /// The name used in recipes and `forge.toml`.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Bootstrap => "bootstrap",
            Stage::Hermetic => "hermetic",
        }
    }

    /// The stage named `s`, if any.
    pub fn parse(s: &str) -> Option<Stage> {
        match s {
            "bootstrap" => Some(Stage::Bootstrap),
            "hermetic" => Some(Stage::Hermetic),
            _ => None,
        }
    }
}

/// Where one source comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// An http(s) download, verified against its checksum.
    Http {
        /// The upstream URL.
        url: String,
        /// The expected digest.
        checksum: Checksum,
        /// The file name to store it under (default: last URL path segment).
        filename: String,
        /// Whether to unpack it into `$srcdir` (default: true for archives).
        extract: bool,
    },
    /// A git repository, checked out at a pinned commit.
    Git {
        /// The repository URL.
        url: String,
        /// The full 40-hex commit id.
        commit: String,
        /// An optional tag, checked to point at `commit` when present.
        tag: Option<String>,
        /// The folder name under `$srcdir` (default: the repository name).
        dest: String,
    },
    /// A file or folder inside the recipe folder.
    Local {
        /// Path relative to the recipe folder.
        path: String,
    },
}

/// A source digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Checksum {
    /// SHA-256, lowercase hex.
    Sha256(String),
    /// SHA-512, lowercase hex.
    Sha512(String),
}

impl Checksum {
    /// `sha256:<hex>` or `sha512:<hex>`; also the content address in the cache.
    pub fn to_prefixed(&self) -> String {
        match self {
            Checksum::Sha256(h) => format!("sha256:{h}"),
            Checksum::Sha512(h) => format!("sha512:{h}"),
        }
    }
    /// The algorithm name.
    pub fn algorithm(&self) -> &'static str {
        match self {
            Checksum::Sha256(_) => "sha256",
            Checksum::Sha512(_) => "sha512",
        }
    }
    /// The lowercase hex digest.
    pub fn hex(&self) -> &str {
        match self {
            Checksum::Sha256(h) | Checksum::Sha512(h) => h,
        }
    }
}

/// One subpackage: files moved out of the main package's tree by path globs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subpackage {
    /// Full package name, e.g. `hello-doc`.
    pub name: String,
    /// Description (default: parent's description plus a suffix).
    pub description: String,
    /// Glob patterns relative to `$pkgdir` (no leading `/`); matching files and
    /// folders move into this subpackage.
    pub paths: Vec<String>,
    /// Runtime dependencies of the subpackage (the parent dependency of `-dev`
    /// and `-doc` is added automatically).
    pub depends: Vec<String>,
    /// Extra provides.
    pub provides: Vec<String>,
}

/// Recipe options (`options = ["!check", "!strip", "net", "suid"]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Options {
    /// `!check`: skip the check step.
    pub no_check: bool,
    /// `!strip`: do not strip ELF files.
    pub no_strip: bool,
    /// `net`: the build may use the network.
    pub net: bool,
    /// `suid`: the packages keep the setuid/setgid bits the build set;
    /// without it they are cleared (with a warning naming the files).
    pub suid: bool,
}
