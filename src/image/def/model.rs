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

/// What an image file defines: `kind = "container"` (the default) or
/// `kind = "os"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Definition {
    /// An OCI container image ([`ImageDef`]).
    Container(Box<ImageDef>),
    /// A bootable OS disk image ([`OsDef`]).
    Os(Box<OsDef>),
}

/// A validated OS image definition (`kind = "os"`): what `crate::os` turns
/// into `out/os/NAME.raw`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OsDef {
    /// Image name (the file stem).
    pub name: String,
    /// The file it came from.
    pub file: PathBuf,
    /// Free-text description.
    pub description: String,
    /// Image version (shown to the node as the slot's version), if any.
    pub version: Option<String>,
    /// The target machine.
    pub profile: Profile,
    /// Packages whose files make `/usr` (apk dependency strings).
    pub packages: Vec<String>,
    /// Kernel command-line additions, in order (forge adds `usrhash=` itself).
    pub cmdline: Vec<String>,
    /// Partition sizes.
    pub partitions: PartitionSizes,
    /// Files of the OEM partition (per-site configuration).
    pub oem: Vec<OemFile>,
    /// Container images (`out/images/NAME/`) put on OEM as bundles for the
    /// node to run with crun (`oem-images`).
    pub oem_images: Vec<String>,
    /// The container trust loop (`[containers]`): the registry nodes pull
    /// signed images from, and the public key they require.
    pub containers: Option<Box<ContainersDef>>,
}

/// `[containers]` of an OS image: what the node's `policy.json` trusts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainersDef {
    /// The cluster's registry scope, `HOST[:PORT][/PATH]`: images under it
    /// must carry a signature by the key; everything else is rejected.
    pub registry: String,
    /// The image-signing public key (PEM), relative to the project; default:
    /// the newest `keys/*.cosign.pub`.
    pub key: Option<String>,
}

/// A target machine: firmware, partition table and architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// x86_64 with UEFI firmware: GPT, an EFI system partition.
    X86_64Uefi,
    /// Raspberry Pi 4 (and 400, CM4), 64-bit: the firmware boots from an MBR
    /// disk's FAT partitions, two of them for A/B through `tryboot`.
    Rpi4Arm64,
}

impl Profile {
    /// Every profile, for error messages.
    pub const ALL: [Profile; 2] = [Profile::X86_64Uefi, Profile::Rpi4Arm64];

    /// The name used in image files.
    pub fn name(self) -> &'static str {
        match self {
            Profile::X86_64Uefi => "x86_64-uefi",
            Profile::Rpi4Arm64 => "rpi4-arm64",
        }
    }

    /// The apk architecture whose repository supplies `/usr`.
    pub fn arch(self) -> &'static str {
        match self {
            Profile::X86_64Uefi => "x86_64",
            Profile::Rpi4Arm64 => "aarch64",
        }
    }

    /// The disk file's extension: `raw` (a GPT disk for `dd` or qemu), or
    /// `img` (what Raspberry Pi Imager and `rpiboot` users expect).
    pub fn disk_extension(self) -> &'static str {
        match self {
            Profile::X86_64Uefi => "raw",
            Profile::Rpi4Arm64 => "img",
        }
    }

    /// The name of the firmware's FAT partition in `[partitions]`: `esp`
    /// (UEFI) or `boot` (the Pi's boot partitions, one per slot).
    pub fn boot_key(self) -> &'static str {
        match self {
            Profile::X86_64Uefi => "esp",
            Profile::Rpi4Arm64 => "boot",
        }
    }
}

/// Partition sizes in bytes, each a whole number of MiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionSizes {
    /// The firmware's FAT32 partition: the EFI system partition (`esp`), or
    /// on the Pi each of the two boot partitions (`boot`).
    pub esp: u64,
    /// Each of USR-A and USR-B (erofs + its dm-verity tree).
    pub usr: u64,
    /// The OEM partition (FAT).
    pub oem: u64,
    /// ROOT, formatted and grown on first boot.
    pub root: u64,
}

/// One file on the OEM partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OemFile {
    /// Relative path of plain names (`config/site.conf`).
    pub path: String,
    /// The file's content.
    pub content: String,
}
