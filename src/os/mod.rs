//! Bootable OS disk images (`kind = "os"` in `images/NAME.toml`): a raw GPT
//! disk in the manner of Flatcar Container Linux, built rootless, without
//! loop devices or mounts, so it works in an unprivileged CI container.
//!
//! Flow ([`build`]):
//! 1. the definition ([`crate::image::def::OsDef`]) and the host tools it
//!    needs, checked before anything is written;
//! 2. the packages, resolved and verified from the signed repository of the
//!    profile's architecture (the container images' reader);
//! 3. [`usr`]: the merged `/usr` tree → erofs → dm-verity hash tree;
//! 4. [`uki`]: with a kernel in `/usr`, the unified kernel image (its
//!    `.cmdline` carries the root hash) and systemd-boot for the ESP;
//!    [`fat`]: the EFI system partition and OEM as FAT files;
//!    For the Raspberry Pi 4 ([`pi`]), the boot partitions instead: the
//!    firmware, device trees, kernel and initramfs from `/usr`, with
//!    `config.txt`, `cmdline.txt` and `autoboot.txt`;
//! 5. [`disk`]: the partitions at aligned boundaries and the table of [`gpt`]
//!    or, for the Pi, [`mbr`] (both written by forge byte by byte) in a
//!    temporary file renamed to `out/os/NAME.raw` (`.img` for the Pi) when
//!    complete; then `out/os/NAME.json`, the manifest (root hash,
//!    partitions), moves last.
//!
//! Every identifier comes from one [`seed::Seed`] and every time from one
//! epoch (the rule of [`crate::epoch`]), so two builds give the same bytes.
//! The layout and its choices are documented in `docs/os.md`.

pub mod apply;
pub mod boot_test;
pub mod bundles;
pub mod cmdline;
pub mod disk;
pub mod esp;
pub mod fat;
pub mod gpt;
pub mod initramfs;
pub mod mbr;
pub mod payload;
pub mod pe;
pub mod pi;
pub mod root;
pub mod seed;
pub mod trust;
pub mod uki;
pub mod usr;

mod build;

#[cfg(test)]
mod bench_tests;

pub use build::{BuiltOs, Manifest, build};

use std::path::{Path, PathBuf};

use seed::Guid;

/// EFI system partition (UEFI).
pub const TYPE_ESP: Guid = Guid::from_fields(0xC12A7328, 0xF81F, 0x11D2, 0xBA4B, 0x00A0C93EC93B);
/// `/usr` for x86-64 (Discoverable Partitions Specification).
pub const TYPE_USR_X86_64: Guid =
    Guid::from_fields(0x8484680C, 0x9521, 0x48C6, 0x9C11, 0xB0720656F69E);
/// Root for x86-64 (Discoverable Partitions Specification).
pub const TYPE_ROOT_X86_64: Guid =
    Guid::from_fields(0x4F68BCE3, 0xE8CD, 0x4DB1, 0x96E7, 0xFBCAF984B709);
/// Generic Linux data (OEM).
pub const TYPE_LINUX_DATA: Guid =
    Guid::from_fields(0x0FC63DAF, 0x8483, 0x4772, 0x8E79, 0x3D69D8477DE4);

/// Version of forge's OS disk writer: bump it when the same definition and
/// packages would give other bytes (layout, filesystem or table changes).
/// It is part of an OS unit's key in the build plan.
pub const WRITER_FORMAT: u32 = 2;

/// Host tools an OS image build runs, with the Debian package of each.
pub const HOST_TOOLS: [(&str, &str); 7] = [
    ("mkfs.erofs", "erofs-utils"),
    ("veritysetup", "cryptsetup-bin"),
    ("mkfs.vfat", "dosfstools"),
    ("mmd", "mtools"),
    ("mcopy", "mtools"),
    ("objcopy", "binutils"),
    ("mke2fs", "e2fsprogs"),
];

/// Why an OS image was not built. Whatever the cause, no `out/os/*.raw` is
/// left half-written.
#[derive(Debug, thiserror::Error)]
pub enum OsError {
    /// The definition is invalid.
    #[error(transparent)]
    Def(#[from] crate::image::def::DefError),
    /// No definition file for this name.
    #[error("no image definition {}", path.display())]
    NotFound {
        /// The expected path.
        path: PathBuf,
    },
    /// The name is not `[a-z0-9][a-z0-9._-]*`.
    #[error("invalid image name `{0}` (expected [a-z0-9][a-z0-9._-]*)")]
    InvalidName(String),
    /// The file defines a container image.
    #[error("{} is a container image, not kind = \"os\" (`forge image {name}` builds it)", file.display())]
    NotOs {
        /// The image name.
        name: String,
        /// The file.
        file: PathBuf,
    },
    /// A host tool is not installed.
    #[error("host tool `{tool}` is not installed (Debian package {package})")]
    MissingTool {
        /// The program.
        tool: String,
        /// Its Debian package.
        package: String,
    },
    /// The packages could not be resolved or read.
    #[error("reading the packages of OS image `{name}`")]
    Packages {
        /// The image name.
        name: String,
        /// The cause (a missing package is named here).
        #[source]
        source: Box<crate::image::ImageError>,
    },
    /// `SOURCE_DATE_EPOCH` is unusable.
    #[error(transparent)]
    Epoch(#[from] crate::epoch::InvalidEpoch),
    /// A package installs outside the folders `/usr` takes in.
    #[error(
        "package `{package}` installs `/{path}`, which has no place in an immutable /usr (only usr, bin, sbin, lib, lib64, etc and var are taken)"
    )]
    Outside {
        /// The package.
        package: String,
        /// The path.
        path: String,
    },
    /// Two packages install different content at one path.
    #[error("packages `{first}` and `{second}` both install `/{path}` with different content")]
    Conflict {
        /// The path inside the image.
        path: String,
        /// The first package.
        first: String,
        /// The second package.
        second: String,
    },
    /// `/usr` does not fit its partition.
    #[error("{}: `partitions.usr` is {have} bytes, but /usr needs {need} ({fs} of erofs + {hash} of dm-verity hash tree); raise it to at least {}M", file.display(), need.div_ceil(1 << 20))]
    UsrTooBig {
        /// The definition file.
        file: PathBuf,
        /// Bytes needed.
        need: u64,
        /// Bytes of the filesystem.
        fs: u64,
        /// Bytes of the hash tree.
        hash: u64,
        /// Bytes available.
        have: u64,
    },
    /// Writing the `/usr` tree failed.
    #[error("writing the /usr tree in {}", path.display())]
    Tree {
        /// The tree's root.
        path: PathBuf,
        /// The cause.
        #[source]
        source: Box<crate::source::SourceError>,
    },
    /// An outside tool failed.
    #[error(transparent)]
    Tool(#[from] Box<crate::process::ProcessError>),
    /// More than one kernel in `/usr`.
    #[error("/usr holds more than one kernel (lib/modules/{{{}}}/vmlinuz); an OS image boots exactly one", .0.join(","))]
    Kernels(Vec<String>),
    /// A file the profile's boot partition needs is not in `/usr`.
    #[error("{} is missing: the {profile} boot partition needs it (from {package})", path.display())]
    BootFile {
        /// The path inside the image.
        path: PathBuf,
        /// The profile.
        profile: &'static str,
        /// Which package should install it.
        package: String,
    },
    /// The profile boots a kernel from `/usr`, and there is none.
    #[error(
        "/usr holds no kernel (lib/modules/<version>/vmlinuz): the {0} boot partition needs one"
    )]
    NoKernel(&'static str),
    /// A host file the build needs is missing.
    #[error("{} is missing (Debian package {package})", path.display())]
    MissingFile {
        /// The file.
        path: PathBuf,
        /// Its Debian package.
        package: String,
    },
    /// `[containers]` is set but no image-signing public key was found.
    #[error(
        "`[containers]` needs the image-signing public key the node will trust: no *.cosign.pub in {} (run `forge keygen --image`, or set `containers.key`)",
        dir.display()
    )]
    NoTrustKey {
        /// The keys folder.
        dir: PathBuf,
    },
    /// The image-signing public key is unusable.
    #[error("the node's image-signing public key {}", path.display())]
    TrustKey {
        /// The key file.
        path: PathBuf,
        /// Why.
        #[source]
        source: Box<crate::imagesign::ImageSignError>,
    },
    /// `forge os payload` of an image without a kernel.
    #[error(
        "OS image `{0}` has no kernel, so no UKI: a payload carries the UKI that boots the slot"
    )]
    NoUki(String),
    /// A disk given to `forge os apply` is not what forge builds.
    #[error("{}: {reason}", disk.display())]
    BadDisk {
        /// The disk image.
        disk: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// An OS update payload is refused (signature, digest, shape).
    #[error("{}: {reason}", payload.display())]
    BadPayload {
        /// The payload layout.
        payload: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A container image for OEM could not be read.
    #[error("container image `{name}` ({}): {what}", dir.display())]
    Container {
        /// The image name.
        name: String,
        /// Its OCI layout.
        dir: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// A kernel without an `initrd` beside it needs busybox for forge's.
    #[error(
        "/usr has a kernel but neither an initrd beside it nor a static busybox at /usr/{} for forge's initramfs (add the `busybox` package)",
        initramfs::BUSYBOX
    )]
    NoBusybox,
    /// `veritysetup format` printed no root hash.
    #[error("`veritysetup format` printed no root hash")]
    NoRootHash,
    /// The partition table cannot hold the layout.
    #[error(transparent)]
    Gpt(#[from] gpt::GptError),
    /// The MBR cannot hold the layout.
    #[error(transparent)]
    Mbr(#[from] mbr::MbrError),
    /// A file operation failed.
    #[error("{what} {}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl OsError {
    /// A closure turning an I/O error into [`OsError::Io`].
    pub fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> OsError + use<> {
        let path = path.to_path_buf();
        move |source| OsError::Io { what, path, source }
    }
}

/// The first host tool of [`HOST_TOOLS`] missing from `PATH`.
pub fn check_host_tools() -> Result<(), OsError> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for (tool, package) in HOST_TOOLS {
        if crate::process::find_in_path(tool, &path).is_none() {
            return Err(OsError::MissingTool {
                tool: tool.to_string(),
                package: package.to_string(),
            });
        }
    }
    Ok(())
}

impl From<crate::process::ProcessError> for OsError {
    fn from(e: crate::process::ProcessError) -> OsError {
        OsError::Tool(Box::new(e))
    }
}
