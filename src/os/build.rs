//! `forge os build NAME`: one OS image from its definition and the signed
//! repository to `out/os/NAME.raw` (`NAME.img` for the Pi) and its manifest
//! `out/os/NAME.json`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::disk::{self, Kind, Piece, Placed};
use super::fat::{self, FatSpec};
use super::seed::Seed;
use super::{OsError, pi, usr};
use crate::image::def::{self, Definition, OsDef, Profile};
use crate::settings::Settings;

/// The manifest written beside the disk: what a test, `veritysetup verify`
/// or a later update step needs to know about it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    /// The image name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// The profile.
    pub profile: String,
    /// The epoch every time in the image equals.
    pub epoch: u64,
    /// The disk GUID (GPT disks).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk_guid: Option<String>,
    /// The disk signature, 8 hex digits (MBR disks: the Pi's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk_signature: Option<String>,
    /// The dm-verity root hash of USR-A.
    pub usr_root_hash: String,
    /// Bytes of the erofs `/usr` (the hash tree starts here in USR-A).
    pub usr_hash_offset: u64,
    /// Data blocks of 4096 bytes covered by the hash tree.
    pub usr_data_blocks: u64,
    /// Bytes of the hash tree (with its superblock) after the erofs: the
    /// slot's content is `usr_hash_offset + usr_hash_bytes` bytes.
    pub usr_hash_bytes: u64,
    /// The kernel command line (additions, then forge's own arguments), as
    /// the UKI's `.cmdline` carries it.
    pub cmdline: String,
    /// The UKI on the ESP (`EFI/Linux/NAME-VERSION.efi`), when `/usr` holds
    /// a kernel.
    pub uki: Option<String>,
    /// Where each partition landed.
    pub partitions: Vec<Placed>,
}

/// A finished OS image.
#[derive(Debug, Clone)]
pub struct BuiltOs {
    /// `out/os/NAME.raw` or `.img`.
    pub disk: PathBuf,
    /// `out/os/NAME.json`.
    pub manifest_path: PathBuf,
    /// The manifest.
    pub manifest: Manifest,
}

/// Build `images/NAME.toml` (which must say `kind = "os"`).
pub fn build(settings: &Settings, name: &str) -> Result<BuiltOs, OsError> {
    let valid = name.bytes().enumerate().all(|(i, b)| {
        b.is_ascii_lowercase() || b.is_ascii_digit() || (i > 0 && b"._-".contains(&b))
    });
    if name.is_empty() || !valid {
        return Err(OsError::InvalidName(name.to_string()));
    }
    let file = def::path_for(&settings.images_dir(), name);
    if !file.is_file() {
        return Err(OsError::NotFound { path: file });
    }
    let def = match def::load_any(&file)? {
        Definition::Os(d) => d,
        Definition::Container(_) => {
            return Err(OsError::NotOs {
                name: name.to_string(),
                file,
            });
        }
    };
    super::check_host_tools()?;
    let generated = match &def.containers {
        None => Vec::new(),
        Some(c) => {
            let pem = super::trust::public_key(c, &settings.root, &settings.keys_dir())?;
            super::trust::files(c, &pem)
        }
    };
    let shell = &settings.shell;
    let arch = def.profile.arch();
    shell.status("Resolving", format!("{name} for {arch}"));
    let packages = (|| {
        let trusted = crate::sign::load_trust(settings, &settings.keys_dir())
            .map_err(crate::image::ImageError::Keys)?;
        crate::image::packages::load_arch(settings, &def.packages, arch, &trusted)
    })()
    .map_err(|e| OsError::Packages {
        name: name.to_string(),
        source: Box::new(e),
    })?;
    let newest = packages
        .packages
        .iter()
        .map(|p| p.meta.builddate)
        .chain(crate::image::build::definition_time(&def.file))
        .max()
        .map(|t| i64::try_from(t).unwrap_or(i64::MAX));
    let env = std::env::var(crate::epoch::ENV).ok();
    let (epoch, _) = crate::epoch::source_date_epoch(newest, env.as_deref())?;
    let epoch = epoch.max(0) as u64;

    let out_dir = settings.out.join("os");
    std::fs::create_dir_all(&out_dir).map_err(OsError::io("creating", &out_dir))?;
    let work = tempfile::Builder::new()
        .prefix(&format!(".{name}.tmp-work-"))
        .tempdir_in(&out_dir)
        .map_err(OsError::io("creating a folder in", &out_dir))?;
    let platform = crate::oci::Platform::from_apk_arch(arch).map(|p| p.architecture);
    let mut bundles = BTreeMap::new();
    for c in &def.oem_images {
        let images = settings.out.join("images");
        let platform = platform.as_deref().unwrap_or(arch);
        bundles.extend(super::bundles::oem_files(
            &images,
            c,
            platform,
            def.partitions.oem,
        )?);
    }
    let t = Instant::now();
    shell.status("Assembling", format!("{name} ({})", def.profile.name()));
    let built = assemble(
        &def,
        &packages.packages,
        &generated,
        bundles,
        work.path(),
        &out_dir,
        epoch,
    )?;
    shell.verbose(format!(
        "assembled {} in {:.2}s",
        built.disk.display(),
        t.elapsed().as_secs_f64()
    ));
    shell.status("Built", built.disk.display().to_string());
    Ok(built)
}

/// Everything after the packages are read: the filesystems, the disk and
/// the manifest. `generated`: files forge adds to `/usr` (the trust loop).
/// `oem_images` are more OEM files (the container images' bundles).
/// `work` is scratch space; `out_dir` receives the results.
pub fn assemble(
    def: &OsDef,
    packages: &[crate::image::rootfs::InstalledPackage],
    generated: &[(String, super::usr::Extra)],
    oem_images: BTreeMap<String, Vec<u8>>,
    work: &Path,
    out_dir: &Path,
    epoch: u64,
) -> Result<BuiltOs, OsError> {
    let seed = Seed::for_image(&def.name);
    let tree = work.join("usr");
    usr::write_tree(def, packages, generated, &tree, epoch)?;
    let usr = usr::make(&tree, work, &seed, epoch)?;
    let need = usr.fs_bytes + usr.hash_bytes;
    if need > def.partitions.usr {
        return Err(OsError::UsrTooBig {
            file: def.file.clone(),
            need,
            fs: usr.fs_bytes,
            hash: usr.hash_bytes,
            have: def.partitions.usr,
        });
    }
    let laid = match def.profile {
        Profile::X86_64Uefi => uefi(def, &seed, &tree, &usr, &oem_images, work, epoch)?,
        Profile::Rpi4Arm64 => rpi4(def, &seed, &tree, &usr, &oem_images, work, epoch)?,
    };
    let disk_path = out_dir.join(format!("{}.{}", def.name, def.profile.disk_extension()));
    let partitions = disk::write(&disk_path, &laid.table, &laid.pieces)?;
    let manifest = Manifest {
        name: def.name.clone(),
        version: def.version.clone().unwrap_or_default(),
        profile: def.profile.name().to_string(),
        epoch,
        disk_guid: laid.disk_guid,
        disk_signature: laid.disk_signature,
        usr_root_hash: usr.root_hash.clone(),
        usr_hash_offset: usr.fs_bytes,
        usr_data_blocks: usr.fs_bytes / usr::BLOCK,
        usr_hash_bytes: usr.hash_bytes,
        cmdline: laid.cmdline,
        uki: laid.uki,
        partitions,
    };
    let manifest_path = out_dir.join(format!("{}.json", def.name));
    let mut json = serde_json::to_vec_pretty(&manifest)
        .map_err(std::io::Error::other)
        .map_err(OsError::io("encoding", &manifest_path))?;
    json.push(b'\n');
    crate::util::write_atomic(&manifest_path, &json, Some(0o644))
        .map_err(OsError::io("writing", &manifest_path))?;
    Ok(BuiltOs {
        disk: disk_path,
        manifest_path,
        manifest,
    })
}

/// A laid-out disk of one profile, before it is written.
struct Laid {
    table: disk::Table,
    pieces: Vec<Piece>,
    cmdline: String,
    uki: Option<String>,
    disk_guid: Option<String>,
    disk_signature: Option<String>,
}

/// x86_64 UEFI: ESP (UKI + systemd-boot), USR-A/B, OEM, ROOT on a GPT.
fn uefi(
    def: &OsDef,
    seed: &Seed,
    tree: &Path,
    usr: &usr::UsrImage,
    oem_images: &BTreeMap<String, Vec<u8>>,
    work: &Path,
    epoch: u64,
) -> Result<Laid, OsError> {
    let usr_a = seed.guid("usr-a").to_string();
    let cmdline = super::cmdline::for_slot(&def.cmdline, &usr_a, usr);
    let mut esp_files = esp_spec(def, seed);
    let mut uki = None;
    if let Some(kernel) = find_kernel(tree, work, epoch)? {
        let efi = work.join("uki.efi");
        let os_release = tree.join("lib/os-release");
        super::uki::make(&kernel, &os_release, &cmdline, work, &efi, epoch)?;
        let version = def.version.as_deref().unwrap_or("0");
        let name = format!("EFI/Linux/{}-{version}.efi", def.name);
        esp_files.files.insert(name.clone(), read(&efi)?);
        let boot = std::path::Path::new(super::uki::BOOT_EFI);
        esp_files
            .files
            .insert("EFI/BOOT/BOOTX64.EFI".into(), read(boot)?);
        uki = Some(name);
    }
    let esp = work.join("esp.fat");
    fat::make(&esp, &esp_files, &work.join("esp-src"), epoch)?;
    let oem = work.join("oem.fat");
    let mut oem_files = oem_spec(def, seed);
    oem_files.files.extend(oem_images.clone());
    fat::make(&oem, &oem_files, &work.join("oem-src"), epoch)?;
    let root = work.join("root.ext4");
    super::root::make(&root, def.partitions.root, seed, work, epoch)?;
    let pieces = pieces(def, seed, usr, [esp, oem, root]);
    Ok(Laid {
        table: disk::layout(seed.guid("disk"), &pieces)?,
        pieces,
        cmdline,
        uki,
        disk_guid: Some(seed.guid("disk").to_string()),
        disk_signature: None,
    })
}

/// Raspberry Pi 4: BOOT-A (firmware, kernel, cmdline.txt), BOOT-B, USR-A,
/// then USR-B, OEM and ROOT as logical partitions, on an MBR.
fn rpi4(
    def: &OsDef,
    seed: &Seed,
    tree: &Path,
    usr: &usr::UsrImage,
    oem_images: &BTreeMap<String, Vec<u8>>,
    work: &Path,
    epoch: u64,
) -> Result<Laid, OsError> {
    let kernel = find_kernel(tree, work, epoch)?.ok_or(OsError::NoKernel(def.profile.name()))?;
    let signature = pi::signature(seed);
    let cmdline = pi::cmdline(def, signature, pi::Slot::A, usr);
    let files = pi::boot_files(def, tree, &kernel, &cmdline, pi::Slot::A)?;
    let boot = work.join("boot-a.fat");
    let spec = pi::boot_spec(def, seed, pi::Slot::A, files);
    fat::make(&boot, &spec, &work.join("boot-a-src"), epoch)?;
    let oem = work.join("oem.fat");
    let mut oem_files = oem_spec(def, seed);
    oem_files.files.extend(oem_images.clone());
    fat::make(&oem, &oem_files, &work.join("oem-src"), epoch)?;
    let root = work.join("root.ext4");
    super::root::make(&root, def.partitions.root, seed, work, epoch)?;
    let pieces = pi::pieces(def, usr, boot, oem, root);
    Ok(Laid {
        table: disk::layout_mbr(signature, &pieces, pi::ALIGN)?,
        pieces,
        cmdline,
        uki: None,
        disk_guid: None,
        disk_signature: Some(format!("{signature:08x}")),
    })
}

/// The kernel of the `/usr` tree, if any, with its initramfs: the one beside
/// it, else forge's (`super::initramfs`), written into `work`.
fn find_kernel(
    tree: &Path,
    work: &Path,
    epoch: u64,
) -> Result<Option<super::uki::Kernel>, OsError> {
    let Some(mut kernel) = super::uki::find_kernel(tree)? else {
        return Ok(None);
    };
    if kernel.initrd.is_none() {
        let initrd = work.join("initramfs.cpio");
        super::initramfs::make(tree, &initrd, epoch)?;
        kernel.initrd = Some(initrd);
    }
    Ok(Some(kernel))
}

fn read(path: &std::path::Path) -> Result<Vec<u8>, OsError> {
    std::fs::read(path).map_err(OsError::io("reading", path))
}

fn esp_spec<'a>(def: &OsDef, seed: &Seed) -> FatSpec<'a> {
    let mut files = BTreeMap::new();
    files.insert("loader/loader.conf".to_string(), b"timeout 0\n".to_vec());
    FatSpec {
        label: "EFI-SYSTEM",
        volume_id: seed.hex4("esp-volume-id"),
        size: def.partitions.esp,
        fat32: true,
        dirs: vec!["EFI".into(), "EFI/BOOT".into(), "EFI/Linux".into()],
        files,
    }
}

fn oem_spec<'a>(def: &OsDef, seed: &Seed) -> FatSpec<'a> {
    FatSpec {
        label: "OEM",
        volume_id: seed.hex4("oem-volume-id"),
        size: def.partitions.oem,
        fat32: false,
        dirs: Vec::new(),
        files: def
            .oem
            .iter()
            .map(|f| (f.path.clone(), f.content.clone().into_bytes()))
            .collect(),
    }
}

/// The x86_64 disk's partitions; `files` are the ESP, OEM and ROOT images.
fn pieces(def: &OsDef, seed: &Seed, usr: &usr::UsrImage, files: [PathBuf; 3]) -> Vec<Piece> {
    let [esp, oem, root] = files;
    let ro = super::gpt::ATTR_READ_ONLY;
    let sizes = def.partitions;
    vec![
        Piece {
            label: "EFI-SYSTEM",
            kind: Kind::Gpt {
                type_guid: super::TYPE_ESP,
                guid: seed.guid("esp"),
                attributes: 0,
            },
            size: sizes.esp,
            content: vec![(0, esp)],
        },
        Piece {
            label: "USR-A",
            kind: Kind::Gpt {
                type_guid: super::TYPE_USR_X86_64,
                guid: seed.guid("usr-a"),
                attributes: ro,
            },
            size: sizes.usr,
            content: vec![(0, usr.fs.clone()), (usr.fs_bytes, usr.hash.clone())],
        },
        Piece {
            label: "USR-B",
            kind: Kind::Gpt {
                type_guid: super::TYPE_USR_X86_64,
                guid: seed.guid("usr-b"),
                attributes: ro,
            },
            size: sizes.usr,
            content: Vec::new(),
        },
        Piece {
            label: "OEM",
            kind: Kind::Gpt {
                type_guid: super::TYPE_LINUX_DATA,
                guid: seed.guid("oem"),
                attributes: 0,
            },
            size: sizes.oem,
            content: vec![(0, oem)],
        },
        Piece {
            label: "ROOT",
            kind: Kind::Gpt {
                type_guid: super::TYPE_ROOT_X86_64,
                guid: seed.guid("root"),
                attributes: 0,
            },
            size: sizes.root,
            content: vec![(0, root)],
        },
    ]
}
