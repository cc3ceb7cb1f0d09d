//! The validated image definition: what the image builder consumes. Only
//! [`super::parse`] builds it, so its fields can be trusted (absolute normalized
//! paths, known architectures, consistent accounts and groups).

use std::collections::BTreeMap;
use std::path::PathBuf;

/// A validated image definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageDef {
    /// Image name (the file stem).
    pub name: String,
    /// The file it came from.
    pub file: PathBuf,
    /// Free-text description (`org.opencontainers.image.description`).
    pub description: String,
    /// Image version (`org.opencontainers.image.version`), if any.
    pub version: Option<String>,
    /// Source URL (`org.opencontainers.image.source`), if any.
    pub source: Option<String>,
    /// Requested packages (apk dependency strings, e.g. `hello` or `hello>=1.0`).
    pub packages: Vec<String>,
    /// apk architectures, in index order.
    pub archs: Vec<String>,
    /// `Entrypoint`.
    pub entrypoint: Vec<String>,
    /// `Cmd`.
    pub cmd: Vec<String>,
    /// `Env`, sorted by key.
    pub env: BTreeMap<String, String>,
    /// `WorkingDir` (empty: unset).
    pub workdir: String,
    /// `User` (empty: unset).
    pub user: String,
    /// Extra accounts for `/etc/passwd` (root is always present).
    pub accounts: Vec<Account>,
    /// Extra groups for `/etc/group` (root is always present).
    pub groups: Vec<Group>,
    /// Extra paths in the final layer.
    pub paths: Vec<ExtraPath>,
    /// Config labels.
    pub labels: BTreeMap<String, String>,
    /// Manifest annotations.
    pub annotations: BTreeMap<String, String>,
    /// How packages are split into layers.
    pub layering: Layering,
}

/// A user account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Login name.
    pub name: String,
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Home folder.
    pub home: String,
    /// Login shell.
    pub shell: String,
}

/// A group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// Group name.
    pub name: String,
    /// Group id.
    pub gid: u32,
    /// Supplementary members.
    pub members: Vec<String>,
}

/// An extra path written into the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraPath {
    /// Absolute path.
    pub path: String,
    /// What to create.
    pub kind: ExtraKind,
    /// Permission bits.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
}

/// The kind of an extra path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExtraKind {
    /// A folder.
    Dir,
    /// A file with this content.
    File(String),
    /// A symlink to this target.
    Symlink(String),
}

/// Layer splitting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layering {
    /// The mode.
    pub mode: LayeringMode,
    /// Upper bound on the number of layers (origin mode), final layer included.
    pub max_layers: Option<usize>,
}

/// How packages map to layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayeringMode {
    /// One layer per package origin, plus a final layer of image files.
    Origin,
    /// Everything in one layer.
    Single,
}
