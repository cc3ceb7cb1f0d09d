//! Deterministic gzip members.
//!
//! The deflate body depends on the implementation and the level, so both are
//! pinned: flate2 with its `zlib-rs` backend (pure Rust, version locked by
//! `Cargo.lock`, selected explicitly in `Cargo.toml`) at level [`LEVEL`]. A
//! change of either changes package bytes, so [`COMPRESSOR`] names them for
//! provenance and rebuild keys.
//!
//! The header is fixed: `1f 8b 08 00 00000000 XFL 03`: no name, no mtime, OS
//! byte 3 (Unix) like Alpine's own packages, XFL 2 ("best") at level 9.

use std::io::{self, Write};

use flate2::{Compression, GzBuilder};

/// The compression level of every member forge writes (abuild uses 9).
pub const LEVEL: u32 = 9;

/// The pinned compressor, for provenance: a change means different bytes.
pub const COMPRESSOR: &str = "flate2-1.1/zlib-rs-0.6 level 9";

/// The 10 header bytes every member starts with.
pub const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 3];

/// A gzip member writer over `w` with the pinned header and level.
pub fn encoder<W: Write>(w: W) -> flate2::write::GzEncoder<W> {
    GzBuilder::new()
        .mtime(0)
        .operating_system(3)
        .write(w, Compression::new(LEVEL))
}

/// Compress `data` into one complete member.
pub fn compress(data: &[u8]) -> io::Result<Vec<u8>> {
    let mut enc = encoder(Vec::with_capacity(data.len() / 2 + 64));
    enc.write_all(data)?;
    enc.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;

    #[test]
    fn header_bytes_are_pinned() {
        let member = compress(b"hello").unwrap();
        assert_eq!(&member[..10], &HEADER);
        let empty = compress(b"").unwrap();
        assert_eq!(&empty[..10], &HEADER);
        // Trailer: CRC32 and ISIZE of the input.
        assert_eq!(&member[member.len() - 4..], &5u32.to_le_bytes());
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&member[..])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, b"hello");
    }

    #[test]
    fn output_is_stable() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        assert_eq!(compress(&data).unwrap(), compress(&data).unwrap());
    }
}
