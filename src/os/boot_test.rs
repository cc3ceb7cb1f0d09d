//! `forge os boot-test`: boot a disk under QEMU (TCG, no KVM: the build
//! hosts have none), watch its serial console and decide.
//!
//! Two machines: an x86_64 disk boots on `q35` with OVMF (firmware,
//! systemd-boot, the UKI); a Raspberry Pi disk boots on arm64 `virt`
//! (`-cpu cortex-a72`, the Pi 4's core) by direct kernel boot of BOOT-A's
//! `kernel8.img`, `initramfs8` and `cmdline.txt`, with the whole disk as a
//! virtio drive: the Pi's firmware cannot be emulated, so this stands in for
//! it with the same kernel, initramfs and verity `/usr`. Only the console
//! changes (the Pi's mini UART is `ttyS1`, virt's PL011 is `ttyAMA0`); the
//! `PARTUUID=<signature>-NN` names hold on any disk with that MBR.
//!
//! The serial console goes to a log file that is polled; the boot passes
//! when every expected text has appeared, and fails on the first sign of
//! trouble, named: a dm-verity error, a kernel panic, an initramfs error,
//! QEMU exiting, or the timeout. The disk is opened with `snapshot=on`, so
//! a boot (which writes ROOT) never changes it.

use std::io::{Read as _, Seek as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::OsError;
use crate::process::Cmd;

/// OVMF's code, read-only (Debian package ovmf).
pub const OVMF_CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd";
/// OVMF's variable store template, copied for each boot.
pub const OVMF_VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd";
/// What the node prints on serial once it is up from its verity `/usr`
/// (the `node-init` package's boot script).
pub const MARKER: &str = "forge-node: up";
/// The emulator (Debian package qemu-system-x86).
pub const QEMU: &str = "qemu-system-x86_64";
/// The arm64 emulator (Debian package qemu-system-arm).
pub const QEMU_ARM64: &str = "qemu-system-aarch64";
/// The console of QEMU's arm64 `virt` machine (its PL011).
pub const VIRT_CONSOLE: &str = "console=ttyAMA0";
/// The most serial output read (a guard against a guest that floods it).
const MAX_LOG: u64 = 64 << 20;

/// Why a boot did not reach its markers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// dm-verity found a block that does not match the root hash.
    Verity(String),
    /// The kernel panicked.
    Panic(String),
    /// forge's initramfs gave up (`forge-initramfs: error:`).
    Initramfs(String),
    /// QEMU exited before every marker appeared.
    Exited(String),
    /// The time ran out; the texts still missing.
    Timeout(Vec<String>),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Verity(l) => write!(f, "dm-verity error: {l}"),
            Failure::Panic(l) => write!(f, "kernel panic: {l}"),
            Failure::Initramfs(l) => write!(f, "initramfs error: {l}"),
            Failure::Exited(s) => write!(f, "QEMU exited ({s}) before the markers appeared"),
            Failure::Timeout(m) => write!(f, "timed out waiting for {}", m.join(", ")),
        }
    }
}

/// What a passed boot measured.
#[derive(Debug, Clone)]
pub struct Passed {
    /// From starting QEMU to the last marker.
    pub elapsed: Duration,
    /// The serial log.
    pub log: PathBuf,
}

/// The verdict on a serial log so far: `Some` failure, or `None` when the
/// boot may still go on. Trouble is looked for line by line.
pub fn classify(log: &str) -> Option<Failure> {
    for line in log.lines() {
        let l = line.trim_end_matches('\r');
        if l.contains("device-mapper: verity") && (l.contains("corrupted") || l.contains("failed"))
        {
            return Some(Failure::Verity(l.trim().to_string()));
        }
        if l.contains("Kernel panic") {
            return Some(Failure::Panic(l.trim().to_string()));
        }
        if l.contains("forge-initramfs: error:") {
            return Some(Failure::Initramfs(l.trim().to_string()));
        }
    }
    None
}

/// The texts of `expect` not yet in `log`.
pub fn missing<'a>(log: &str, expect: &'a [String]) -> Vec<&'a String> {
    expect
        .iter()
        .filter(|e| !log.contains(e.as_str()))
        .collect()
}

/// The machine a disk boots on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Machine {
    /// x86_64 `q35` with OVMF, booting the disk's ESP.
    Uefi,
    /// arm64 `virt` (cortex-a72), booting this kernel directly.
    VirtArm64 {
        /// The arm64 `Image` (BOOT-A's `kernel8.img`).
        kernel: PathBuf,
        /// The initramfs (BOOT-A's `initramfs8`).
        initrd: PathBuf,
        /// The command line (BOOT-A's `cmdline.txt`, see [`virt_cmdline`]).
        cmdline: String,
    },
}

impl Machine {
    fn qemu(&self) -> (&'static str, &'static str) {
        match self {
            Machine::Uefi => (QEMU, "qemu-system-x86"),
            Machine::VirtArm64 { .. } => (QEMU_ARM64, "qemu-system-arm"),
        }
    }
}

/// A Pi's `cmdline.txt` for the `virt` machine: the same words, with every
/// `console=` (the Pi's UARTs) replaced by virt's PL011.
pub fn virt_cmdline(pi: &str) -> String {
    let mut words: Vec<&str> = pi
        .split_whitespace()
        .filter(|w| !w.starts_with("console="))
        .collect();
    words.insert(0, VIRT_CONSOLE);
    words.join(" ")
}

/// Check the emulator and firmware are there, naming the package of each.
pub fn check_host(machine: &Machine) -> Result<(), OsError> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let (qemu, package) = machine.qemu();
    if crate::process::find_in_path(qemu, &path).is_none() {
        return Err(OsError::MissingTool {
            tool: qemu.into(),
            package: package.into(),
        });
    }
    if *machine == Machine::Uefi {
        for f in [OVMF_CODE, OVMF_VARS] {
            if !Path::new(f).is_file() {
                return Err(OsError::MissingFile {
                    path: PathBuf::from(f),
                    package: "ovmf".into(),
                });
            }
        }
    }
    Ok(())
}

/// Boot `disk` on `machine`, writing the serial console to `log`, until
/// every text of `expect` has appeared (`Ok(Ok)`), trouble shows
/// (`Ok(Err)`), or `timeout` passes. `work` holds the per-boot OVMF
/// variable store.
pub fn boot(
    machine: &Machine,
    disk: &Path,
    work: &Path,
    log: &Path,
    expect: &[String],
    timeout: Duration,
) -> Result<Result<Passed, Failure>, OsError> {
    check_host(machine)?;
    std::fs::write(log, b"").map_err(OsError::io("creating", log))?;
    let qemu_out = work.join("qemu.out");
    let out = std::fs::File::create(&qemu_out).map_err(OsError::io("creating", &qemu_out))?;
    let mut cmd = Cmd::new(machine.qemu().0);
    match machine {
        Machine::Uefi => {
            let vars = work.join("OVMF_VARS.fd");
            std::fs::copy(OVMF_VARS, &vars)
                .map_err(OsError::io("copying", Path::new(OVMF_VARS)))?;
            cmd.args(["-machine", "q35,accel=tcg"])
                .arg("-drive")
                .arg(format!("if=pflash,format=raw,readonly=on,file={OVMF_CODE}"))
                .arg("-drive")
                .arg(format!("if=pflash,format=raw,file={}", vars.display()));
        }
        Machine::VirtArm64 {
            kernel,
            initrd,
            cmdline,
        } => {
            cmd.args(["-machine", "virt,accel=tcg", "-cpu", "cortex-a72"])
                .arg("-kernel")
                .arg(kernel)
                .arg("-initrd")
                .arg(initrd)
                .arg("-append")
                .arg(cmdline);
        }
    }
    cmd.args(["-m", "1024", "-nodefaults"])
        .args(["-display", "none", "-no-reboot", "-monitor", "none"])
        .arg("-serial")
        .arg(format!("file:{}", log.display()))
        .arg("-drive")
        .arg(format!(
            "file={},format=raw,if=virtio,snapshot=on",
            disk.display()
        ))
        .args(["-net", "none"]);
    let start = Instant::now();
    let mut child = cmd.spawn_logged(&out)?;
    let verdict = watch(&mut child, log, expect, timeout, start);
    let _ = child.kill();
    let _ = child.wait();
    let verdict = verdict?;
    Ok(verdict.map(|elapsed| Passed {
        elapsed,
        log: log.to_path_buf(),
    }))
}

/// Poll the serial log until a verdict.
fn watch(
    child: &mut std::process::Child,
    log: &Path,
    expect: &[String],
    timeout: Duration,
    start: Instant,
) -> Result<Result<Duration, Failure>, OsError> {
    let mut text = String::new();
    let mut file = std::fs::File::open(log).map_err(OsError::io("opening", log))?;
    let mut bytes = Vec::new();
    loop {
        let exited = child
            .try_wait()
            .map_err(OsError::io("waiting for", Path::new(QEMU)))?;
        file.seek(std::io::SeekFrom::Start(bytes.len() as u64))
            .map_err(OsError::io("reading", log))?;
        let room = MAX_LOG.saturating_sub(bytes.len() as u64);
        (&mut file)
            .take(room)
            .read_to_end(&mut bytes)
            .map_err(OsError::io("reading", log))?;
        text.clear();
        text.push_str(&String::from_utf8_lossy(&bytes));
        if let Some(f) = classify(&text) {
            return Ok(Err(f));
        }
        let left = missing(&text, expect);
        if left.is_empty() {
            return Ok(Ok(start.elapsed()));
        }
        if let Some(status) = exited {
            return Ok(Err(Failure::Exited(status.to_string())));
        }
        if start.elapsed() > timeout {
            return Ok(Err(Failure::Timeout(left.into_iter().cloned().collect())));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_lines_are_classified() {
        let verity = "[    2.1] device-mapper: verity: 253:0: data block 0 is corrupted\r\n";
        assert!(
            matches!(classify(verity), Some(Failure::Verity(l)) if l.ends_with("is corrupted"))
        );
        let panic = "ok\n[ 3.0] Kernel panic - not syncing: Attempted to kill init!\n";
        assert!(matches!(classify(panic), Some(Failure::Panic(_))));
        let init = "forge-initramfs: error: cannot mount the verity /usr (/dev/dm-0)\n";
        assert!(matches!(classify(init), Some(Failure::Initramfs(_))));
        assert_eq!(classify("[ 0.0] Linux version 6.1\nforge-node: up\n"), None);
        let expect = vec!["forge-node: up".to_string(), "Hello".to_string()];
        assert_eq!(missing("forge-node: up\n", &expect), vec![&expect[1]]);
    }

    #[test]
    fn a_pi_cmdline_boots_on_virt_with_its_console() {
        assert_eq!(
            virt_cmdline("console=ttyS1,115200 panic=10 root=PARTUUID=0a0b0c0d-07 usrhash=ab\n"),
            "console=ttyAMA0 panic=10 root=PARTUUID=0a0b0c0d-07 usrhash=ab"
        );
    }
}
