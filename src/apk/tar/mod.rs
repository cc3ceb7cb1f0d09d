//! A small, hand-written tar serializer and parser for apk streams.
//!
//! The `tar` crate always appends end-of-archive blocks and writes no PAX
//! records, while apk needs "cut" signature and control tars (no trailing zero
//! blocks) and a PAX `APK-TOOLS.checksum.SHA1` record before every file. So
//! forge writes headers itself: numeric fields are zero-padded octal with a NUL
//! (`0000644\0`, `00000001234\0`), owners are `root`/`root` 0/0, and the
//! checksum field is six octal digits, NUL, space, as GNU tar writes it.
//!
//! The parser reads exactly what the writer (and abuild/apk-tools) produce:
//! ustar or GNU headers, `x` PAX headers with `path`, `linkpath` and
//! `APK-TOOLS.checksum.*` records, and an optional end-of-archive. Names
//! and link targets must be UTF-8 (apk's and forge's always are): a lossy
//! reading would give two different byte names the same text.

use std::io::{self, Read};

/// One tar block.
pub const BLOCK: usize = 512;

/// The largest PAX extended header the reader accepts. The size comes from
/// the (untrusted, not yet verified) header, so it is capped before anything
/// is allocated; real records (`path`, `linkpath`, checksums) take a few KiB.
pub const MAX_PAX_SIZE: u64 = 1 << 20;

/// The fixed length of a SHA-1 checksum PAX record:
/// `68 APK-TOOLS.checksum.SHA1=<40 hex>\n`.
pub const PAX_SHA1_RECORD_LEN: usize = 68;

/// Which magic a header carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Magic {
    /// POSIX `ustar\0` + version `00` (packages).
    Ustar,
    /// GNU `ustar  \0` (what `apk index` writes in APKINDEX.tar.gz).
    Gnu,
}

/// Entry kinds forge writes and reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Regular file (`0`).
    File,
    /// Hard link to an earlier entry (`1`).
    HardLink,
    /// Symbolic link (`2`).
    Symlink,
    /// Directory (`5`).
    Dir,
    /// PAX extended header for the next entry (`x`).
    Pax,
    /// Anything else (devices, fifos, GNU extensions): kept as its flag.
    Other(u8),
}

impl Kind {
    fn flag(self) -> u8 {
        match self {
            Kind::File => b'0',
            Kind::HardLink => b'1',
            Kind::Symlink => b'2',
            Kind::Dir => b'5',
            Kind::Pax => b'x',
            Kind::Other(f) => f,
        }
    }
    fn from_flag(f: u8) -> Kind {
        match f {
            b'0' | b'7' | 0 => Kind::File,
            b'1' => Kind::HardLink,
            b'2' => Kind::Symlink,
            b'5' => Kind::Dir,
            b'x' => Kind::Pax,
            other => Kind::Other(other),
        }
    }
}

/// The fields of one header that forge controls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Path inside the archive (≤ 100 bytes; longer names go in a PAX `path`).
    pub name: String,
    /// Permission bits (`& 0o7777`).
    pub mode: u32,
    /// Content length.
    pub size: u64,
    /// Modification time, seconds.
    pub mtime: u64,
    /// Entry kind.
    pub kind: Kind,
    /// Link target (≤ 100 bytes; longer go in a PAX `linkpath`).
    pub link: String,
}

/// A header field does not fit.
#[derive(Debug, thiserror::Error)]
pub enum TarError {
    /// A name is longer than the header field and no PAX record was used.
    #[error("`{0}` is too long for a tar header")]
    NameTooLong(String),
    /// A number is too large for its octal field.
    #[error("value {0} is too large for a tar header")]
    TooLarge(u64),
    /// A header block is malformed.
    #[error("malformed tar header: {0}")]
    Malformed(String),
    /// A name or link target is not UTF-8 (the text says which, escaped).
    #[error("{0} is not UTF-8")]
    NotUtf8(String),
    /// The stream ended inside an entry.
    #[error("tar stream ends inside an entry")]
    Truncated,
    /// Reading failed.
    #[error("reading the tar stream")]
    Io(#[source] io::Error),
}

mod read;
#[cfg(test)]
mod tests;
mod write;

pub use read::{ContentReader, Entry, Reader};
pub use write::{
    append_entry, append_header, end_of_archive, header_block, padding, pax_name, pax_record,
};
