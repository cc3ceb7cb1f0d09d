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

fn put_str(field: &mut [u8], s: &str) -> Result<(), TarError> {
    let b = s.as_bytes();
    if b.len() > field.len() {
        return Err(TarError::NameTooLong(s.to_string()));
    }
    field[..b.len()].copy_from_slice(b);
    Ok(())
}

/// `width-1` octal digits and a NUL.
fn put_octal(field: &mut [u8], value: u64) -> Result<(), TarError> {
    let digits = field.len() - 1;
    let text = format!("{value:0digits$o}");
    if text.len() > digits {
        return Err(TarError::TooLarge(value));
    }
    field[..digits].copy_from_slice(text.as_bytes());
    field[digits] = 0;
    Ok(())
}

/// Serialize one 512-byte header block.
pub fn header_block(h: &Header, magic: Magic) -> Result<[u8; BLOCK], TarError> {
    let mut b = [0u8; BLOCK];
    put_str(&mut b[0..100], &h.name)?;
    put_octal(&mut b[100..108], u64::from(h.mode & 0o7777))?;
    put_octal(&mut b[108..116], 0)?;
    put_octal(&mut b[116..124], 0)?;
    put_octal(&mut b[124..136], h.size)?;
    put_octal(&mut b[136..148], h.mtime)?;
    b[156] = h.kind.flag();
    put_str(&mut b[157..257], &h.link)?;
    match magic {
        Magic::Ustar => b[257..265].copy_from_slice(b"ustar\x0000"),
        Magic::Gnu => b[257..265].copy_from_slice(b"ustar  \x00"),
    }
    put_str(&mut b[265..297], "root")?;
    put_str(&mut b[297..329], "root")?;
    if magic == Magic::Ustar {
        put_octal(&mut b[329..337], 0)?;
        put_octal(&mut b[337..345], 0)?;
    }
    b[148..156].fill(b' ');
    let sum: u64 = b.iter().map(|&x| u64::from(x)).sum();
    let text = format!("{sum:06o}");
    b[148..154].copy_from_slice(text.as_bytes());
    b[154] = 0;
    b[155] = b' ';
    Ok(b)
}

/// Zero bytes needed after `size` content bytes to reach a block boundary.
pub fn padding(size: u64) -> usize {
    ((BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64) as usize
}

/// One PAX record: `<len> <key>=<value>\n`, where `len` counts itself.
pub fn pax_record(key: &str, value: &str) -> String {
    let body = key.len() + value.len() + 3; // space, '=', newline
    let mut len = body + 1;
    while body + len.to_string().len() != len {
        len = body + len.to_string().len();
    }
    format!("{len} {key}={value}\n")
}

/// The name of the PAX header entry for `path`: `dir/PaxHeaders/base`
/// (abuild's `%d/PaxHeaders/%f`), shortened to fit the name field.
pub fn pax_name(path: &str) -> String {
    let trimmed = path.trim_end_matches('/');
    let (dir, base) = match trimmed.rfind('/') {
        Some(i) => (&trimmed[..=i], &trimmed[i + 1..]),
        None => ("", trimmed),
    };
    let mut name = format!("{dir}PaxHeaders/{base}");
    if name.len() > 100 {
        name = format!("PaxHeaders/{base}");
        let mut cut = 100;
        while !name.is_char_boundary(cut.min(name.len())) {
            cut -= 1;
        }
        name.truncate(cut.min(name.len()));
    }
    name
}

/// Append a complete entry (optional PAX header, header, content, padding) to
/// `out`. `pax` holds extra records; `path`/`linkpath` records are added when
/// a name does not fit its field.
pub fn append_entry(
    out: &mut Vec<u8>,
    header: &Header,
    pax: &[(&str, &str)],
    content: &[u8],
    magic: Magic,
) -> Result<(), TarError> {
    append_header(out, header, pax, magic)?;
    out.extend_from_slice(content);
    out.resize(out.len() + padding(content.len() as u64), 0);
    Ok(())
}

/// Append the header blocks of an entry (PAX header first when needed); the
/// caller writes `header.size` content bytes and the padding.
pub fn append_header(
    out: &mut Vec<u8>,
    header: &Header,
    pax: &[(&str, &str)],
    magic: Magic,
) -> Result<(), TarError> {
    let mut records = String::new();
    let mut h = header.clone();
    if h.name.len() > 100 {
        records.push_str(&pax_record("path", &h.name));
        let mut cut = 100;
        while !h.name.is_char_boundary(cut) {
            cut -= 1;
        }
        h.name.truncate(cut);
    }
    if h.link.len() > 100 {
        records.push_str(&pax_record("linkpath", &h.link));
        let mut cut = 100;
        while !h.link.is_char_boundary(cut) {
            cut -= 1;
        }
        h.link.truncate(cut);
    }
    for (k, v) in pax {
        records.push_str(&pax_record(k, v));
    }
    if !records.is_empty() {
        let ph = Header {
            name: pax_name(&header.name),
            mode: 0o644,
            size: records.len() as u64,
            mtime: header.mtime,
            kind: Kind::Pax,
            link: String::new(),
        };
        out.extend_from_slice(&header_block(&ph, magic)?);
        out.extend_from_slice(records.as_bytes());
        out.resize(out.len() + padding(records.len() as u64), 0);
    }
    out.extend_from_slice(&header_block(&h, magic)?);
    Ok(())
}

/// Two zero blocks: the end-of-archive marker.
pub fn end_of_archive(out: &mut Vec<u8>) {
    out.resize(out.len() + 2 * BLOCK, 0);
}

/// One entry as read back, with its PAX records applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Full path (from the PAX `path` record when present).
    pub path: String,
    /// Permission bits.
    pub mode: u32,
    /// Content length.
    pub size: u64,
    /// Modification time.
    pub mtime: u64,
    /// Kind.
    pub kind: Kind,
    /// Link target.
    pub link: String,
    /// `APK-TOOLS.checksum.SHA1` as hex, when present.
    pub sha1: Option<String>,
}

fn octal(field: &[u8]) -> Result<u64, TarError> {
    let text: String = field
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as char)
        .collect();
    let text = text.trim_matches(' ');
    if text.is_empty() {
        return Ok(0);
    }
    u64::from_str_radix(text, 8).map_err(|_| TarError::Malformed(format!("bad number `{text}`")))
}

/// The bytes of a NUL-terminated header field.
fn cbytes(field: &[u8]) -> &[u8] {
    let end = field.iter().position(|&c| c == 0).unwrap_or(field.len());
    &field[..end]
}

/// A name as text. apk packages and indexes are UTF-8; reading other bytes
/// lossily would map different names to the same U+FFFD-laden string.
fn utf8(bytes: &[u8], what: impl FnOnce(String) -> String) -> Result<String, TarError> {
    String::from_utf8(bytes.to_vec())
        .map_err(|_| TarError::NotUtf8(what(bytes.escape_ascii().to_string())))
}

/// Read up to a full buffer; returns how many bytes were read (less only at EOF).
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> Result<usize, TarError> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(TarError::Io(e)),
        }
    }
    Ok(n)
}

/// A streaming tar reader: call [`Reader::next_entry`], then read the
/// content through [`Reader::content`] (unread content is skipped).
pub struct Reader<R> {
    inner: R,
    remaining: u64,
    pad: usize,
    /// Whether an end-of-archive marker was seen.
    pub saw_eoa: bool,
}

impl<R: Read> Reader<R> {
    /// Wrap a decompressed tar stream.
    pub fn new(inner: R) -> Reader<R> {
        Reader {
            inner,
            remaining: 0,
            pad: 0,
            saw_eoa: false,
        }
    }

    fn skip(&mut self, mut n: u64) -> Result<(), TarError> {
        let mut buf = [0u8; 8192];
        while n > 0 {
            let want = n.min(buf.len() as u64) as usize;
            let got = read_full(&mut self.inner, &mut buf[..want])?;
            if got < want {
                return Err(TarError::Truncated);
            }
            n -= got as u64;
        }
        Ok(())
    }

    /// Read to the end of the stream; anything but zeros is an error.
    fn drain_zeros(&mut self) -> Result<(), TarError> {
        let mut buf = [0u8; 8192];
        loop {
            let n = read_full(&mut self.inner, &mut buf)?;
            if buf[..n].iter().any(|&c| c != 0) {
                return Err(TarError::Malformed("data after end of archive".into()));
            }
            if n < buf.len() {
                return Ok(());
            }
        }
    }

    /// The next entry, or `None` at end of stream (with or without an
    /// end-of-archive marker). PAX headers are folded into the entry they
    /// describe.
    pub fn next_entry(&mut self) -> Result<Option<Entry>, TarError> {
        let rest = self.remaining + self.pad as u64;
        self.skip(rest)?;
        self.remaining = 0;
        self.pad = 0;
        let mut pax_path = None;
        let mut pax_link = None;
        let mut sha1 = None;
        loop {
            let mut b = [0u8; BLOCK];
            let got = read_full(&mut self.inner, &mut b)?;
            if got == 0 {
                return Ok(None);
            }
            if got < BLOCK {
                return Err(TarError::Truncated);
            }
            if b.iter().all(|&c| c == 0) {
                self.saw_eoa = true;
                // Consume the rest (zero padding) so the stream is drained,
                // a chunk at a time: its length is not bounded.
                self.drain_zeros()?;
                return Ok(None);
            }
            if &b[257..262] != b"ustar" {
                return Err(TarError::Malformed("missing ustar magic".into()));
            }
            let stored = octal(&b[148..156])?;
            let mut sum_block = b;
            sum_block[148..156].fill(b' ');
            let sum: u64 = sum_block.iter().map(|&x| u64::from(x)).sum();
            if sum != stored {
                return Err(TarError::Malformed("header checksum mismatch".into()));
            }
            let size = octal(&b[124..136])?;
            let kind = Kind::from_flag(b[156]);
            if kind == Kind::Pax {
                if size > MAX_PAX_SIZE {
                    return Err(TarError::Malformed(format!(
                        "PAX header of {size} bytes is larger than the {MAX_PAX_SIZE}-byte limit"
                    )));
                }
                let mut data = vec![0u8; size as usize];
                if read_full(&mut self.inner, &mut data)? < data.len() {
                    return Err(TarError::Truncated);
                }
                self.skip(padding(size) as u64)?;
                for (k, v) in parse_pax_raw(&data)? {
                    let text = |what: &str| utf8(v, |v| format!("PAX {what} `{v}`"));
                    match k.as_str() {
                        "path" => pax_path = Some(text("path")?),
                        "linkpath" => pax_link = Some(text("linkpath")?),
                        "APK-TOOLS.checksum.SHA1" => sha1 = Some(text("checksum")?),
                        _ => {}
                    }
                }
                continue;
            }
            let path = match pax_path {
                Some(p) => p,
                None => header_path(&b)?,
            };
            let link = match pax_link {
                Some(l) => l,
                None => utf8(cbytes(&b[157..257]), |l| {
                    format!("link target `{l}` of `{path}`")
                })?,
            };
            let entry = Entry {
                path,
                mode: octal(&b[100..108])? as u32,
                size,
                mtime: octal(&b[136..148])?,
                kind,
                link,
                sha1,
            };
            self.remaining = if matches!(kind, Kind::HardLink | Kind::Symlink | Kind::Dir) {
                0
            } else {
                size
            };
            self.pad = if self.remaining > 0 { padding(size) } else { 0 };
            return Ok(Some(entry));
        }
    }

    /// Read the current entry's content (up to its size).
    pub fn content(&mut self) -> ContentReader<'_, R> {
        ContentReader { reader: self }
    }
}

/// Reads the content of the current entry.
pub struct ContentReader<'a, R> {
    reader: &'a mut Reader<R>,
}

impl<R: Read> Read for ContentReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.reader.remaining == 0 {
            return Ok(0);
        }
        let want = (buf.len() as u64).min(self.reader.remaining) as usize;
        let n = self.reader.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "tar stream ends inside an entry",
            ));
        }
        self.reader.remaining -= n as u64;
        Ok(n)
    }
}

/// The path of a header block: the name field, after the ustar prefix.
fn header_path(b: &[u8; BLOCK]) -> Result<String, TarError> {
    let name = cbytes(&b[0..100]);
    let prefix = cbytes(&b[345..500]);
    let full = if &b[257..263] == b"ustar\0" && !prefix.is_empty() {
        [prefix, b"/", name].concat()
    } else {
        name.to_vec()
    };
    utf8(&full, |p| format!("entry name `{p}`"))
}

/// Split PAX records into (key, value) pairs; values stay bytes (xattr
/// records hold binary), keys are text.
fn parse_pax_raw(mut data: &[u8]) -> Result<Vec<(String, &[u8])>, TarError> {
    let bad = || TarError::Malformed("bad PAX record".into());
    let mut out = Vec::new();
    while !data.is_empty() {
        let sp = data.iter().position(|&c| c == b' ').ok_or_else(bad)?;
        let len: usize = std::str::from_utf8(&data[..sp])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(bad)?;
        if len <= sp + 1 || len > data.len() || data[len - 1] != b'\n' {
            return Err(bad());
        }
        let rec = &data[sp + 1..len - 1];
        let eq = rec.iter().position(|&c| c == b'=').ok_or_else(bad)?;
        out.push((
            String::from_utf8_lossy(&rec[..eq]).into_owned(),
            &rec[eq + 1..],
        ));
        data = &data[len..];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_sha1_record_is_68_bytes() {
        let rec = pax_record("APK-TOOLS.checksum.SHA1", &"a".repeat(40));
        assert_eq!(rec.len(), PAX_SHA1_RECORD_LEN);
        assert_eq!(
            rec,
            format!("68 APK-TOOLS.checksum.SHA1={}\n", "a".repeat(40))
        );
    }

    #[test]
    fn pax_record_length_counts_itself() {
        // Lengths that cross a digit boundary.
        for vlen in [0, 1, 90, 91, 92, 93, 94, 95, 990, 994, 995, 996] {
            let rec = pax_record("k", &"v".repeat(vlen));
            let (len, _) = rec.split_once(' ').unwrap();
            assert_eq!(len.parse::<usize>().unwrap(), rec.len(), "vlen {vlen}");
        }
    }

    #[test]
    fn header_bytes_are_exact() {
        let h = Header {
            name: "usr/bin/hello".into(),
            mode: 0o755,
            size: 1234,
            mtime: 1_700_000_000,
            kind: Kind::File,
            link: String::new(),
        };
        let b = header_block(&h, Magic::Ustar).unwrap();
        assert_eq!(&b[0..13], b"usr/bin/hello");
        assert_eq!(&b[100..108], b"0000755\0");
        assert_eq!(&b[108..116], b"0000000\0");
        assert_eq!(&b[124..136], b"00000002322\0");
        assert_eq!(&b[136..148], b"14524770400\0");
        assert_eq!(b[156], b'0');
        assert_eq!(&b[257..265], b"ustar\x0000");
        assert_eq!(&b[265..270], b"root\0");
        assert_eq!(&b[297..302], b"root\0");
        assert_eq!(b[154], 0);
        assert_eq!(b[155], b' ');
        let mut sum_block = b;
        sum_block[148..156].fill(b' ');
        let sum: u64 = sum_block.iter().map(|&x| u64::from(x)).sum();
        assert_eq!(&b[148..154], format!("{sum:06o}").as_bytes());
        let g = header_block(&h, Magic::Gnu).unwrap();
        assert_eq!(&g[257..265], b"ustar  \0");
    }

    #[test]
    fn round_trip_with_long_names_and_links() {
        let long = format!("usr/share/{}/file", "d".repeat(120));
        let mut out = Vec::new();
        let entries = [
            (Kind::Dir, "usr/".to_string(), String::new(), Vec::new()),
            (Kind::File, long.clone(), String::new(), b"hello".to_vec()),
            (Kind::Symlink, "usr/link".into(), long.clone(), Vec::new()),
            (Kind::HardLink, "usr/hard".into(), long.clone(), Vec::new()),
        ];
        for (kind, name, link, content) in &entries {
            let h = Header {
                name: name.clone(),
                mode: 0o644,
                size: content.len() as u64,
                mtime: 5,
                kind: *kind,
                link: link.clone(),
            };
            let sha = "b".repeat(40);
            let pax: Vec<(&str, &str)> = if *kind == Kind::File {
                vec![("APK-TOOLS.checksum.SHA1", &sha)]
            } else {
                vec![]
            };
            append_entry(&mut out, &h, &pax, content, Magic::Ustar).unwrap();
        }
        end_of_archive(&mut out);
        assert_eq!(out.len() % BLOCK, 0);
        let mut r = Reader::new(&out[..]);
        let mut seen = Vec::new();
        while let Some(e) = r.next_entry().unwrap() {
            let mut c = Vec::new();
            r.content().read_to_end(&mut c).unwrap();
            seen.push((e.kind, e.path, e.link, c, e.sha1));
        }
        assert!(r.saw_eoa);
        assert_eq!(seen.len(), 4);
        assert_eq!(seen[1].1, long);
        assert_eq!(seen[1].3, b"hello");
        assert_eq!(seen[1].4.as_deref(), Some("b".repeat(40).as_str()));
        assert_eq!(seen[2].2, long);
        assert_eq!(seen[3].0, Kind::HardLink);
        // The same stream without the end-of-archive also parses ("cut" tar).
        let cut = &out[..out.len() - 2 * BLOCK];
        let mut r = Reader::new(cut);
        let mut n = 0;
        while r.next_entry().unwrap().is_some() {
            n += 1;
        }
        assert_eq!(n, 4);
        assert!(!r.saw_eoa);
    }

    /// A PAX header claiming 8 GiB is refused before anything is allocated
    /// (before the cap, the reader tried `vec![0; size]` and aborted).
    #[test]
    fn huge_pax_header_is_refused_without_allocating() {
        let h = Header {
            name: "PaxHeaders/x".into(),
            mode: 0o644,
            size: 0o77777777777,
            mtime: 0,
            kind: Kind::Pax,
            link: String::new(),
        };
        let block = header_block(&h, Magic::Ustar).unwrap();
        let mut r = Reader::new(&block[..]);
        let err = r.next_entry().unwrap_err().to_string();
        assert!(
            err.contains("PAX header of 8589934591 bytes is larger than the 1048576-byte limit"),
            "{err}"
        );
    }

    /// Zeros after the end-of-archive are drained in chunks, and anything
    /// else after it is an error.
    #[test]
    fn trailing_bytes_after_end_of_archive() {
        let mut out = Vec::new();
        end_of_archive(&mut out);
        out.resize(out.len() + 100_000, 0);
        let mut r = Reader::new(&out[..]);
        assert!(r.next_entry().unwrap().is_none());
        out.push(1);
        let mut r = Reader::new(&out[..]);
        assert!(r.next_entry().is_err());
    }

    #[test]
    fn pax_names() {
        assert_eq!(pax_name("usr/bin/hello"), "usr/bin/PaxHeaders/hello");
        assert_eq!(pax_name("hello"), "PaxHeaders/hello");
        assert!(pax_name(&"x/".repeat(80)).len() <= 100);
    }
}
