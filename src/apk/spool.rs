//! Where the verified reader keeps file contents between reading them and
//! handing them out: in memory up to a cap, then in an unlinked temp file.
//!
//! Contents are handed out only after the whole data member hashed to
//! `datahash`, so they must be kept somewhere in between; a second read of
//! the package file would read bytes that were never checked.

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, Write as _};
use std::os::unix::fs::FileExt as _;

/// Contents held in memory per package before spilling to a temp file.
pub const SPOOL_MEMORY: usize = 128 << 20;

/// Where one file's content is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot {
    /// Index into the in-memory contents.
    Mem(usize),
    /// Offset into the temp file.
    File(u64),
}

/// File contents of one package.
pub(crate) struct Spool {
    mem: Vec<Vec<u8>>,
    mem_total: usize,
    cap: usize,
    file: Option<(File, u64)>,
    /// Keep nothing (inspection).
    discard: bool,
}

impl Spool {
    /// A spool holding up to `cap` bytes in memory.
    pub(crate) fn new(cap: usize) -> Spool {
        Spool {
            mem: Vec::new(),
            mem_total: 0,
            cap,
            file: None,
            discard: false,
        }
    }

    /// A spool that keeps nothing.
    pub(crate) fn discard() -> Spool {
        Spool {
            discard: true,
            ..Spool::new(0)
        }
    }

    /// Start a file of `size` bytes (the size is checked by the caller
    /// against what was actually read); where its bytes will be.
    pub(crate) fn start(&mut self, size: u64) -> io::Result<Option<Slot>> {
        if self.discard {
            return Ok(None);
        }
        if self.file.is_none() && self.mem_total as u64 + size <= self.cap as u64 {
            // Bounded by the cap, so the (untrusted) size may size the buffer.
            self.mem_total += size as usize;
            self.mem.push(Vec::with_capacity(size as usize));
            return Ok(Some(Slot::Mem(self.mem.len() - 1)));
        }
        if self.file.is_none() {
            self.file = Some((tempfile::tempfile()?, 0));
        }
        let (_, len) = self.file.as_ref().expect("just created");
        Ok(Some(Slot::File(*len)))
    }

    /// Append bytes to the file started last.
    pub(crate) fn write(&mut self, slot: Option<Slot>, bytes: &[u8]) -> io::Result<()> {
        match slot {
            None => Ok(()),
            Some(Slot::Mem(i)) => {
                self.mem[i].extend_from_slice(bytes);
                Ok(())
            }
            Some(Slot::File(_)) => {
                let (f, len) = self.file.as_mut().expect("a file slot has a file");
                f.write_all(bytes)?;
                *len += bytes.len() as u64;
                Ok(())
            }
        }
    }

    /// The content at `slot`, `size` bytes long.
    pub(crate) fn read(&self, slot: Slot, size: u64) -> io::Result<Cow<'_, [u8]>> {
        match slot {
            Slot::Mem(i) => Ok(Cow::Borrowed(&self.mem[i])),
            Slot::File(offset) => {
                let (f, _) = self.file.as_ref().expect("a file slot has a file");
                let len = usize::try_from(size).map_err(io::Error::other)?;
                let mut buf = vec![0u8; len];
                f.read_exact_at(&mut buf, offset)?;
                Ok(Cow::Owned(buf))
            }
        }
    }

    /// Move the content at `slot` out (in-memory contents are not copied).
    pub(crate) fn take(&mut self, slot: Slot, size: u64) -> io::Result<Vec<u8>> {
        match slot {
            Slot::Mem(i) => Ok(std::mem::take(&mut self.mem[i])),
            Slot::File(_) => self.read(slot, size).map(Cow::into_owned),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spills_to_a_file_past_the_cap() {
        let mut s = Spool::new(10);
        let a = s.start(6).unwrap();
        s.write(a, b"abc").unwrap();
        s.write(a, b"def").unwrap();
        let b = s.start(6).unwrap();
        assert!(matches!(b, Some(Slot::File(0))));
        s.write(b, b"ghijkl").unwrap();
        let c = s.start(1).unwrap();
        assert!(
            matches!(c, Some(Slot::File(6))),
            "once spilled, stays spilled"
        );
        s.write(c, b"m").unwrap();
        assert_eq!(&*s.read(a.unwrap(), 6).unwrap(), b"abcdef");
        assert_eq!(&*s.read(b.unwrap(), 6).unwrap(), b"ghijkl");
        assert_eq!(s.take(c.unwrap(), 1).unwrap(), b"m");
        assert_eq!(s.take(a.unwrap(), 6).unwrap(), b"abcdef");
        assert!(Spool::discard().start(5).unwrap().is_none());
    }
}
