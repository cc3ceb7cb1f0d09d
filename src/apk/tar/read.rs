//! The tar parser: headers, PAX records and entry contents, checked as read.

use super::*;

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
