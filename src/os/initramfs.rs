//! The initramfs forge puts into the UKI when `/usr` has a kernel but no
//! `initrd` beside it: static busybox and forge's `/init` script
//! (`initramfs/init.sh`), which mounts the dm-verity `/usr` the kernel set
//! up from `dm-mod.create=`, prepares ROOT and switches root.
//!
//! It is a plain (uncompressed) newc cpio written here byte by byte, not by
//! `cpio`: every entry is owned by 0:0 with the image's epoch as mtime, the
//! entries come in a fixed order and inode numbers count up from 1, so the
//! same busybox gives the same bytes. Uncompressed, because busybox is the
//! only large member and the kernel then needs no decompressor for it.

use std::path::Path;

use super::OsError;

/// forge's `/init`.
pub const INIT_SCRIPT: &str = include_str!("initramfs/init.sh");

/// Where busybox must be in the `/usr` tree (static: the initramfs has no
/// libraries).
pub const BUSYBOX: &str = "bin/busybox";

/// What one cpio entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A folder.
    Dir,
    /// A regular file with its content.
    File(Vec<u8>),
    /// A symbolic link to this target.
    Symlink(String),
    /// A character device (major, minor).
    CharDev(u32, u32),
}

/// One cpio entry: a path without a leading `/`, its permission bits and kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The path inside the archive (`bin/busybox`).
    pub path: String,
    /// Permission bits (`0o755`); the file type comes from `kind`.
    pub mode: u32,
    /// What it is.
    pub kind: Kind,
}

impl Entry {
    fn type_bits(&self) -> u32 {
        match self.kind {
            Kind::Dir => 0o040000,
            Kind::File(_) => 0o100000,
            Kind::Symlink(_) => 0o120000,
            Kind::CharDev(..) => 0o020000,
        }
    }

    fn data(&self) -> &[u8] {
        match &self.kind {
            Kind::File(d) => d,
            Kind::Symlink(t) => t.as_bytes(),
            Kind::Dir | Kind::CharDev(..) => &[],
        }
    }
}

/// The entries of forge's initramfs around `busybox` (the binary's bytes).
pub fn entries(busybox: Vec<u8>) -> Vec<Entry> {
    let dir = |p: &str| Entry {
        path: p.into(),
        mode: 0o755,
        kind: Kind::Dir,
    };
    vec![
        dir("bin"),
        Entry {
            path: "bin/busybox".into(),
            mode: 0o755,
            kind: Kind::File(busybox),
        },
        Entry {
            path: "bin/sh".into(),
            mode: 0o777,
            kind: Kind::Symlink("busybox".into()),
        },
        dir("dev"),
        // The kernel opens /dev/console for init's stdio before init runs.
        Entry {
            path: "dev/console".into(),
            mode: 0o600,
            kind: Kind::CharDev(5, 1),
        },
        Entry {
            path: "init".into(),
            mode: 0o755,
            kind: Kind::File(INIT_SCRIPT.as_bytes().to_vec()),
        },
        dir("proc"),
        dir("sys"),
        dir("sysroot"),
    ]
}

/// The newc ("070701") cpio archive of `entries`, in the given order, all
/// owned by 0:0 with mtime `epoch`, ending with the `TRAILER!!!` entry.
pub fn newc(entries: &[Entry], epoch: u64) -> Vec<u8> {
    let mtime = u32::try_from(epoch).unwrap_or(u32::MAX);
    let mut out = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let (rmaj, rmin) = match e.kind {
            Kind::CharDev(a, b) => (a, b),
            _ => (0, 0),
        };
        let nlink = if e.kind == Kind::Dir { 2 } else { 1 };
        let ino = u32::try_from(i + 1).unwrap_or(u32::MAX);
        let mode = e.type_bits() | (e.mode & 0o7777);
        header(
            &mut out,
            &e.path,
            [ino, mode, nlink, mtime],
            e.data(),
            (rmaj, rmin),
        );
    }
    header(&mut out, "TRAILER!!!", [0, 0, 1, 0], &[], (0, 0));
    out
}

/// One header, name and data, each padded to 4 bytes.
fn header(
    out: &mut Vec<u8>,
    name: &str,
    [ino, mode, nlink, mtime]: [u32; 4],
    data: &[u8],
    rdev: (u32, u32),
) {
    let size = u32::try_from(data.len()).unwrap_or(u32::MAX);
    let namesize = u32::try_from(name.len() + 1).unwrap_or(u32::MAX);
    let fields = [
        ino, mode, 0, 0, nlink, mtime, size, 0, 0, rdev.0, rdev.1, namesize, 0,
    ];
    out.extend_from_slice(b"070701");
    for f in fields {
        out.extend_from_slice(format!("{f:08X}").as_bytes());
    }
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    pad4(out);
    out.extend_from_slice(data);
    pad4(out);
}

fn pad4(out: &mut Vec<u8>) {
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

/// Write forge's initramfs for the `/usr` tree `usr` to `out`. The tree
/// must hold a busybox at [`BUSYBOX`].
pub fn make(usr: &Path, out: &Path, epoch: u64) -> Result<(), OsError> {
    let busybox = usr.join(BUSYBOX);
    if !busybox.is_file() {
        return Err(OsError::NoBusybox);
    }
    let bytes = std::fs::read(&busybox).map_err(OsError::io("reading", &busybox))?;
    let archive = newc(&entries(bytes), epoch);
    std::fs::write(out, archive).map_err(OsError::io("writing", out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::Cmd;

    /// GNU cpio reads forge's archive back: names, modes, owners, times,
    /// the device node and the symlink as written.
    #[test]
    fn cpio_lists_what_forge_wrote() {
        if !crate::test_tools::require_tool("cpio") {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("initrd.cpio");
        let archive = newc(&entries(b"\x7fELF not really".to_vec()), 1_700_000_000);
        assert_eq!(archive.len() % 4, 0);
        std::fs::write(&file, &archive).unwrap();
        let listing = Cmd::new("sh")
            .arg("-c")
            .arg(format!(
                "TZ=UTC LC_ALL=C cpio -itv --numeric-uid-gid < {}",
                file.display()
            ))
            .run_stdout()
            .unwrap();
        let lines: Vec<&str> = listing.lines().collect();
        assert_eq!(lines.len(), 9, "{listing}");
        let has = |prefix: &str, suffix: &str| {
            lines
                .iter()
                .any(|l| l.starts_with(prefix) && l.ends_with(suffix))
        };
        assert!(
            has(
                "-rwxr-xr-x   1 0        0              15 Nov 14  2023",
                " bin/busybox"
            ),
            "{listing}"
        );
        assert!(has("lrwxrwxrwx", " bin/sh -> busybox"), "{listing}");
        assert!(
            has("crw-------   1 0        0          5,   1", " dev/console"),
            "{listing}"
        );
        assert!(has("drwxr-xr-x   2 0        0", " sysroot"), "{listing}");
        let init = INIT_SCRIPT.len().to_string();
        assert!(
            has("-rwxr-xr-x", &format!("{init} Nov 14  2023 init")),
            "{listing}"
        );
    }

    /// Same input, same bytes; another epoch, other bytes.
    #[test]
    fn archive_is_reproducible() {
        let a = newc(&entries(vec![1, 2, 3]), 5);
        assert_eq!(a, newc(&entries(vec![1, 2, 3]), 5));
        assert_ne!(a, newc(&entries(vec![1, 2, 3]), 6));
        assert!(a.starts_with(b"070701"));
    }

    /// No busybox in /usr: an error saying so, nothing written.
    #[test]
    fn missing_busybox_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("initrd");
        let err = make(dir.path(), &out, 0).unwrap_err();
        assert!(err.to_string().contains("busybox"), "{err}");
        assert!(!out.exists());
    }
}
