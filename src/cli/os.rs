//! `forge os build NAME`: build the OS image `images/NAME.toml`
//! (`kind = "os"`) into `out/os/NAME.raw` (docs/os.md). `forge image NAME`
//! on an OS image does the same. `forge os payload NAME`: the signed update
//! for the passive slot; `forge os apply DISK PAYLOAD`: write it into a
//! disk image and make that slot the next boot.
//! On a Raspberry Pi disk, `forge os apply DISK SOURCE.img` writes a
//! newer local build into slot B and arms tryboot.
//! `forge os boot-test NAME` boots the disk under QEMU and waits for the
//! node's marker on the serial console.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result, anyhow};

use crate::os::apply::Slot;
use crate::settings::Settings;

/// Arguments of `forge os`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Build a raw GPT disk (out/os/NAME.raw) from an OS image definition.
    Build {
        /// The OS image to build (`images/NAME.toml`, `kind = "os"`).
        #[arg(value_name = "NAME")]
        name: String,
    },
    /// Build the disk, then the signed update payload for the passive slot
    /// (out/os/NAME.payload, an OCI layout `forge publish` pushes).
    Payload {
        /// The OS image (`images/NAME.toml`, `kind = "os"`).
        #[arg(value_name = "NAME")]
        name: String,
    },
    /// Verify a payload's signature, write it into a slot of a disk image
    /// and make that slot the next boot (with a tries counter).
    Apply {
        /// The raw disk image.
        #[arg(value_name = "DISK")]
        disk: PathBuf,
        /// The payload layout (out/os/NAME.payload); for a Raspberry Pi
        /// disk, a newer build of its image (out/os/NAME.img, unsigned: a
        /// local build) whose slot A goes into DISK's slot B.
        #[arg(value_name = "PAYLOAD")]
        payload: PathBuf,
        /// The public key the payload must be signed by (default: the
        /// newest keys/*.cosign.pub).
        #[arg(long, value_name = "PUB")]
        key: Option<PathBuf>,
        /// The slot to write.
        #[arg(long, value_enum, default_value = "b")]
        slot: SlotArg,
    },
    /// Boot out/os/NAME.raw under QEMU (TCG) with OVMF and wait for the
    /// node's marker on the serial console; fail on a dm-verity error, a
    /// kernel panic, an initramfs error or the timeout, naming which.
    BootTest {
        /// The OS image (`out/os/NAME.raw`, built by `forge os build`).
        #[arg(value_name = "NAME")]
        name: String,
        /// Boot this disk file instead of out/os/NAME.raw.
        #[arg(long, value_name = "PATH")]
        disk: Option<std::path::PathBuf>,
        /// Give up after this many seconds.
        #[arg(long, value_name = "SECS", default_value_t = 300)]
        timeout: u64,
        /// Also wait for this text on the serial console (repeatable).
        #[arg(long, value_name = "TEXT")]
        expect: Vec<String>,
    },
}

/// A slot on the command line.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum SlotArg {
    /// USR-A.
    A,
    /// USR-B.
    B,
}

/// Run `forge os`.
pub fn run(settings: &Settings, args: Args) -> Result<ExitCode> {
    match args.command {
        Command::Build { name } => build(settings, &name),
        Command::Payload { name } => payload(settings, &name),
        Command::Apply {
            disk,
            payload,
            key,
            slot,
        } => apply(settings, &disk, &payload, key, slot),
        Command::BootTest {
            name,
            disk,
            timeout,
            expect,
        } => boot_test(settings, &name, disk, timeout, expect),
    }
}

/// Build one OS image under `out/.lock`, reporting the disk and root hash.
pub(super) fn build(settings: &Settings, name: &str) -> Result<ExitCode> {
    let _lock = crate::pipeline::OutLock::acquire(settings)?;
    let built =
        crate::os::build(settings, name).with_context(|| format!("building OS image `{name}`"))?;
    let m = &built.manifest;
    settings.shell.event(&serde_json::json!({
        "event": "os-image",
        "name": m.name,
        "disk": built.disk,
        "manifest": built.manifest_path,
        "usr_root_hash": m.usr_root_hash,
        "partitions": m.partitions,
    }));
    if !settings.shell.is_json() {
        settings.shell.data(&m.usr_root_hash);
    }
    Ok(ExitCode::SUCCESS)
}

/// Build `name` and its signed payload.
fn payload(settings: &Settings, name: &str) -> Result<ExitCode> {
    let _lock = crate::pipeline::OutLock::acquire(settings)?;
    let key = crate::imagesign::keys::find_key(&settings.keys_dir())
        .context("loading the image signing key (create one with `forge keygen --image`)")?;
    let built =
        crate::os::build(settings, name).with_context(|| format!("building OS image `{name}`"))?;
    let file = crate::image::def::path_for(&settings.images_dir(), name);
    let registry = match crate::image::def::load_any(&file)? {
        crate::image::def::Definition::Os(d) => d.containers.map(|c| c.registry),
        crate::image::def::Definition::Container(_) => None,
    };
    let identity = crate::os::payload::identity(registry.as_deref(), name);
    let out_dir = settings.out.join("os");
    let w = crate::os::payload::write(&built, &identity, &key, &out_dir)
        .with_context(|| format!("writing the payload of `{name}`"))?;
    settings.shell.status(
        "Payload",
        format!(
            "{} ({:.1} MiB, {} for {identity})",
            w.dir.display(),
            w.bytes as f64 / f64::from(1 << 20),
            w.digest
        ),
    );
    settings.shell.event(&serde_json::json!({
        "event": "os-payload", "name": name, "dir": w.dir, "digest": w.digest.as_str(),
        "identity": identity, "version": w.config.version, "bytes": w.bytes,
        "usr_root_hash": w.config.usr_root_hash,
    }));
    if !settings.shell.is_json() {
        settings.shell.data(w.digest.as_str());
    }
    Ok(ExitCode::SUCCESS)
}

/// Apply a payload to a disk image.
fn apply(
    settings: &Settings,
    disk: &std::path::Path,
    payload: &std::path::Path,
    key: Option<PathBuf>,
    slot: SlotArg,
) -> Result<ExitCode> {
    // A file, not a layout: a newer build of a Raspberry Pi image.
    if payload.is_file() {
        if !matches!(slot, SlotArg::B) {
            anyhow::bail!("a Raspberry Pi disk takes a newer build into slot B only");
        }
        return apply_pi(settings, disk, payload);
    }
    let key_path = match key {
        Some(k) => k,
        None => crate::os::trust::newest_public(&settings.keys_dir()).ok_or_else(|| {
            anyhow!(
                "no image public key: pass --key PUB or put the *.cosign.pub in {}",
                settings.keys_dir().display()
            )
        })?,
    };
    let key = crate::imagesign::keys::load_public(&key_path)?;
    let slot = match slot {
        SlotArg::A => Slot::A,
        SlotArg::B => Slot::B,
    };
    let t = std::time::Instant::now();
    let a = crate::os::apply::apply(disk, payload, &key, slot)
        .with_context(|| format!("applying {} to {}", payload.display(), disk.display()))?;
    let secs = t.elapsed().as_secs_f64();
    settings.shell.status(
        "Applied",
        format!(
            "{} {} to {} of {}; next boot: {} ({secs:.2}s)",
            a.version,
            a.digest,
            slot.label(),
            disk.display(),
            a.boot_entry
        ),
    );
    settings.shell.event(&serde_json::json!({
        "event": "os-apply", "disk": disk, "slot": slot.label(), "version": a.version,
        "digest": a.digest.as_str(), "usr_root_hash": a.usr_root_hash,
        "boot_entry": a.boot_entry, "usr_bytes": a.usr_bytes, "seconds": secs,
    }));
    Ok(ExitCode::SUCCESS)
}

/// Apply SOURCE's slot A to DISK's slot B (Raspberry Pi disks).
fn apply_pi(
    settings: &Settings,
    disk: &std::path::Path,
    source: &std::path::Path,
) -> Result<ExitCode> {
    let t = std::time::Instant::now();
    let a = crate::os::pi::slot::apply(disk, source)
        .with_context(|| format!("applying {} to {}", source.display(), disk.display()))?;
    let secs = t.elapsed().as_secs_f64();
    settings.shell.status(
        "Applied",
        format!(
            "{} ({}, a local build) to slot B of {}; tryboot armed: [tryboot] boot_partition=2 ({secs:.2}s)",
            a.version,
            source.display(),
            disk.display()
        ),
    );
    settings.shell.event(&serde_json::json!({
        "event": "os-apply", "disk": disk, "slot": "B", "version": a.version,
        "usr_root_hash": a.usr_root_hash, "autoboot": a.autoboot, "seconds": secs,
    }));
    if !settings.shell.is_json() {
        settings.shell.data(&a.usr_root_hash);
    }
    Ok(ExitCode::SUCCESS)
}

/// Whether `out/os/NAME.json` says a Raspberry Pi image (no manifest: not).
fn is_pi_image(out_dir: &std::path::Path, name: &str) -> Result<bool> {
    let path = out_dir.join(format!("{name}.json"));
    let text = match std::fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let m: crate::os::Manifest =
        serde_json::from_slice(&text).with_context(|| format!("parsing {}", path.display()))?;
    Ok(m.profile == crate::image::def::Profile::Rpi4Arm64.name())
}

/// The virt machine booting a Pi disk's BOOT-A kernel, initramfs and
/// command line (copied into `work`).
fn virt_machine(
    disk: &std::path::Path,
    work: &std::path::Path,
) -> Result<crate::os::boot_test::Machine> {
    use crate::os::pi;
    pi::copy_boot_a(disk, &["kernel8.img", pi::INITRAMFS, "cmdline.txt"], work)
        .with_context(|| format!("reading BOOT-A of {}", disk.display()))?;
    let cmdline = std::fs::read_to_string(work.join("cmdline.txt"))
        .with_context(|| format!("reading cmdline.txt of {}", disk.display()))?;
    Ok(crate::os::boot_test::Machine::VirtArm64 {
        kernel: work.join("kernel8.img"),
        initrd: work.join(pi::INITRAMFS),
        cmdline: crate::os::boot_test::virt_cmdline(&cmdline),
    })
}

/// Boot one OS image and report how long it took to reach the markers.
fn boot_test(
    settings: &Settings,
    name: &str,
    disk: Option<std::path::PathBuf>,
    timeout: u64,
    expect: Vec<String>,
) -> Result<ExitCode> {
    use crate::os::boot_test;
    let out_dir = settings.out.join("os");
    let pi = is_pi_image(&out_dir, name)?;
    let ext = if pi { "img" } else { "raw" };
    let disk = disk.unwrap_or_else(|| out_dir.join(format!("{name}.{ext}")));
    if !disk.is_file() {
        anyhow::bail!(
            "no disk {} (build it with `forge os build {name}`)",
            disk.display()
        );
    }
    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let work = tempfile::Builder::new()
        .prefix(&format!(".{name}.tmp-boot-"))
        .tempdir_in(&out_dir)
        .with_context(|| format!("creating a folder in {}", out_dir.display()))?;
    let machine = if pi {
        virt_machine(&disk, work.path())?
    } else {
        boot_test::Machine::Uefi
    };
    let log = out_dir.join(format!("{name}.boot.log"));
    let mut wanted = vec![boot_test::MARKER.to_string()];
    wanted.extend(expect);
    let how = if pi {
        "QEMU virt, cortex-a72, TCG"
    } else {
        "QEMU q35, TCG"
    };
    settings
        .shell
        .status("Booting", format!("{} ({how})", disk.display()));
    let verdict = boot_test::boot(
        &machine,
        &disk,
        work.path(),
        &log,
        &wanted,
        std::time::Duration::from_secs(timeout),
    )?;
    match verdict {
        Ok(passed) => {
            let secs = passed.elapsed.as_secs_f64();
            settings.shell.event(&serde_json::json!({
                "event": "os-boot-test",
                "name": name,
                "disk": disk,
                "log": passed.log,
                "seconds": secs,
            }));
            settings.shell.status(
                "Booted",
                format!(
                    "{name}: markers on serial after {secs:.1}s ({})",
                    log.display()
                ),
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(failure) => anyhow::bail!(
            "boot test of {} failed: {failure} (serial log: {})",
            disk.display(),
            log.display()
        ),
    }
}
