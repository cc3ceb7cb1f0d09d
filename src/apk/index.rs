//! APKINDEX: the repository index, its records, order and signed file.
//!
//! `APKINDEX.tar.gz` is one gzip member holding a tar with an optional
//! `DESCRIPTION` (first, ≤ 160 bytes, no newline) and `APKINDEX`, ending with
//! an end-of-archive, written with GNU-magic headers like `apk index`. The
//! signed file is a signature member (as in a package) followed by that
//! unsigned `.tar.gz`; the signature covers the whole unsigned file.
//!
//! Records are `X:value` lines in apk-tools 2.14's order (C P V A S I T U L o
//! m t c k D p i), each block ending in a blank line. `C:` is `Q1` + base64 of
//! the SHA-1 of the package's control member; `U:` is written even when
//! empty and `t:` is omitted when 0, as apk 2.14 does. Entries are sorted by
//! name case-insensitively (ties by byte order), then by apk version.

use std::cmp::Ordering;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;

use super::read::{self, Signature};
use super::tar::{self, Header, Kind, Magic};
use super::{PkgInfo, gzip};
use crate::sign::{SigningKey, TrustedKeys};

/// The most `DESCRIPTION` bytes apk v3 keeps.
pub const MAX_DESCRIPTION: usize = 160;

/// One package in the index.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IndexEntry {
    /// `C:` SHA-1 of the control member.
    pub checksum: [u8; 20],
    /// `P:`.
    pub name: String,
    /// `V:`.
    pub version: String,
    /// `A:`.
    pub arch: String,
    /// `S:` size of the `.apk` file.
    pub size: u64,
    /// `I:` installed size.
    pub installed_size: u64,
    /// `T:`.
    pub description: String,
    /// `U:`.
    pub url: String,
    /// `L:`.
    pub license: String,
    /// `o:`.
    pub origin: Option<String>,
    /// `m:`.
    pub maintainer: Option<String>,
    /// `t:` (omitted when 0).
    pub builddate: i64,
    /// `c:`.
    pub commit: Option<String>,
    /// `k:`.
    pub provider_priority: Option<u32>,
    /// `D:`.
    pub depends: Vec<String>,
    /// `p:`.
    pub provides: Vec<String>,
    /// `i:`.
    pub install_if: Vec<String>,
}

/// An index that cannot be read, parsed or trusted.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// The file could not be read.
    #[error("reading {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The gzip/tar structure is broken.
    #[error("index is corrupt: {0}")]
    Corrupt(String),
    /// A record line is malformed.
    #[error("APKINDEX line {line}: {reason}")]
    Syntax {
        /// 1-based line.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// Signature check failed.
    #[error("index {0}")]
    Verify(#[from] read::VerifyError),
    /// The description is unusable.
    #[error("index description must be at most {MAX_DESCRIPTION} bytes without line breaks")]
    Description,
    /// Building the tar failed.
    #[error("building the index")]
    Build(#[from] super::WriteError),
}

impl IndexEntry {
    /// The entry for a package with this metadata, identity and file size.
    pub fn from_package(info: &PkgInfo, identity: [u8; 20], file_size: u64) -> IndexEntry {
        IndexEntry {
            checksum: identity,
            name: info.name.clone(),
            version: info.version.clone(),
            arch: info.arch.clone(),
            size: file_size,
            installed_size: info.size,
            description: info.description.clone(),
            url: info.url.clone(),
            license: info.license.clone(),
            origin: Some(info.origin.clone()).filter(|o| !o.is_empty()),
            maintainer: info.maintainer.clone(),
            builddate: info.builddate,
            commit: info.commit.clone(),
            provider_priority: info.provider_priority.filter(|&p| p != 0),
            depends: info.depends.clone(),
            provides: info.provides.clone(),
            install_if: info.install_if.clone(),
        }
    }

    /// `Q1` + base64 of the checksum.
    pub fn checksum_text(&self) -> String {
        format!(
            "Q1{}",
            base64::engine::general_purpose::STANDARD.encode(self.checksum)
        )
    }

    /// The `name-version.apk` file this entry names.
    pub fn file_name(&self) -> String {
        format!("{}-{}.apk", self.name, self.version)
    }

    /// Append this entry's record (with its trailing blank line).
    pub fn render_into(&self, s: &mut String) {
        let _ = writeln!(s, "C:{}", self.checksum_text());
        let _ = writeln!(s, "P:{}", self.name);
        let _ = writeln!(s, "V:{}", self.version);
        if !self.arch.is_empty() {
            let _ = writeln!(s, "A:{}", self.arch);
        }
        let _ = writeln!(s, "S:{}", self.size);
        let _ = writeln!(s, "I:{}", self.installed_size);
        let _ = writeln!(s, "T:{}", self.description);
        let _ = writeln!(s, "U:{}", self.url);
        let _ = writeln!(s, "L:{}", self.license);
        if let Some(o) = &self.origin {
            let _ = writeln!(s, "o:{o}");
        }
        if let Some(m) = &self.maintainer {
            let _ = writeln!(s, "m:{m}");
        }
        if self.builddate != 0 {
            let _ = writeln!(s, "t:{}", self.builddate);
        }
        if let Some(c) = &self.commit {
            let _ = writeln!(s, "c:{c}");
        }
        if let Some(k) = self.provider_priority {
            let _ = writeln!(s, "k:{k}");
        }
        for (tag, list) in [
            ("D", &self.depends),
            ("p", &self.provides),
            ("i", &self.install_if),
        ] {
            if !list.is_empty() {
                let _ = writeln!(s, "{tag}:{}", list.join(" "));
            }
        }
        s.push('\n');
    }
}

/// apk's index order: name by `strcasecmp`, then `strcmp`, then version.
pub fn compare(a: &IndexEntry, b: &IndexEntry) -> Ordering {
    let fold = |s: &str| {
        s.bytes()
            .map(|c| c.to_ascii_lowercase())
            .collect::<Vec<u8>>()
    };
    fold(&a.name)
        .cmp(&fold(&b.name))
        .then_with(|| a.name.cmp(&b.name))
        .then_with(|| {
            if a.version == b.version {
                Ordering::Equal
            } else {
                crate::version::compare(&a.version, &b.version)
            }
        })
}

/// The `APKINDEX` text for `entries`, sorted.
pub fn render(entries: &[IndexEntry]) -> String {
    let mut sorted: Vec<&IndexEntry> = entries.iter().collect();
    sorted.sort_by(|a, b| compare(a, b));
    let mut s = String::new();
    for e in sorted {
        e.render_into(&mut s);
    }
    s
}

/// Parse `APKINDEX` text. Unknown fields are ignored. Lines end at `\n`
/// only, as in apk-tools: a `\r` is part of the value, so what [`render`]
/// writes parses back unchanged.
pub fn parse(text: &str) -> Result<Vec<IndexEntry>, IndexError> {
    let mut out = Vec::new();
    let mut cur: Option<IndexEntry> = None;
    for (i, line) in text.split('\n').enumerate() {
        let lineno = i + 1;
        if line.is_empty() {
            if let Some(e) = cur.take() {
                out.push(e);
            }
            continue;
        }
        let syntax = |reason: &str| IndexError::Syntax {
            line: lineno,
            reason: reason.to_string(),
        };
        let (tag, value) = line
            .split_once(':')
            .ok_or_else(|| syntax("expected `X:value`"))?;
        let e = cur.get_or_insert_with(IndexEntry::default);
        let num = |v: &str| v.parse::<u64>().map_err(|_| syntax("not a number"));
        let list = |v: &str| v.split_whitespace().map(String::from).collect::<Vec<_>>();
        match tag {
            "C" => {
                let b64 = value
                    .strip_prefix("Q1")
                    .ok_or_else(|| syntax("checksum is not Q1 (SHA-1)"))?;
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .map_err(|_| syntax("bad base64 checksum"))?;
                e.checksum = raw
                    .try_into()
                    .map_err(|_| syntax("checksum is not 20 bytes"))?;
            }
            "P" => {
                super::name::check_pkgname(value).map_err(|r| syntax(&r))?;
                e.name = value.to_string();
            }
            "V" => {
                super::name::check_pkgver(value).map_err(|r| syntax(&r))?;
                e.version = value.to_string();
            }
            "A" => e.arch = value.to_string(),
            "S" => e.size = num(value)?,
            "I" => e.installed_size = num(value)?,
            "T" => e.description = value.to_string(),
            "U" => e.url = value.to_string(),
            "L" => e.license = value.to_string(),
            "o" => e.origin = Some(value.to_string()),
            "m" => e.maintainer = Some(value.to_string()),
            "t" => e.builddate = value.parse().map_err(|_| syntax("not a build date"))?,
            "c" => e.commit = Some(value.to_string()),
            "k" => {
                let k = value.parse().map_err(|_| syntax("not a 32-bit priority"))?;
                e.provider_priority = Some(k);
            }
            "D" => e.depends = list(value),
            "p" => e.provides = list(value),
            "i" => e.install_if = list(value),
            _ => {}
        }
    }
    if let Some(e) = cur.take() {
        out.push(e);
    }
    if let Some(bad) = out
        .iter()
        .find(|e| e.name.is_empty() || e.version.is_empty())
    {
        return Err(IndexError::Corrupt(format!(
            "entry without P: or V: (C:{})",
            bad.checksum_text()
        )));
    }
    Ok(out)
}

/// The unsigned `APKINDEX.tar.gz` bytes.
pub fn build_unsigned(
    entries: &[IndexEntry],
    description: Option<&str>,
    mtime: u64,
) -> Result<Vec<u8>, IndexError> {
    let mut t = Vec::new();
    let mut add = |name: &str, content: &[u8]| -> Result<(), IndexError> {
        let h = Header {
            name: name.to_string(),
            mode: 0o644,
            size: content.len() as u64,
            mtime,
            kind: Kind::File,
            link: String::new(),
        };
        tar::append_entry(&mut t, &h, &[], content, Magic::Gnu)
            .map_err(|e| IndexError::Build(super::WriteError::Tar(e)))
    };
    if let Some(d) = description {
        if d.len() > MAX_DESCRIPTION || d.contains(['\n', '\r']) {
            return Err(IndexError::Description);
        }
        add("DESCRIPTION", d.as_bytes())?;
    }
    add("APKINDEX", render(entries).as_bytes())?;
    tar::end_of_archive(&mut t);
    gzip::compress(&t).map_err(|e| IndexError::Corrupt(format!("compressing: {e}")))
}

/// The signed `APKINDEX.tar.gz` bytes: signature member ++ unsigned index.
/// `sha1_too` adds the legacy `.SIGN.RSA.` signature for old apk clients.
pub fn build_signed(
    entries: &[IndexEntry],
    description: Option<&str>,
    mtime: u64,
    key: &SigningKey,
    sha1_too: bool,
) -> Result<Vec<u8>, IndexError> {
    let unsigned = build_unsigned(entries, description, mtime)?;
    let mut out = super::write::signature_member(key, &unsigned, mtime, sha1_too)?;
    out.extend_from_slice(&unsigned);
    Ok(out)
}

/// A verified, parsed index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Index {
    /// `DESCRIPTION`, when present.
    pub description: Option<String>,
    /// The entries, in file order.
    pub entries: Vec<IndexEntry>,
    /// The key that signed it.
    pub signer: String,
}

impl Index {
    /// Read `APKINDEX.tar.gz`, check its signature against `trusted`, parse it.
    pub fn read(path: &Path, trusted: &TrustedKeys) -> Result<Index, IndexError> {
        let bytes = std::fs::read(path).map_err(|source| IndexError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Index::from_bytes(&bytes, trusted)
    }

    /// Verify and parse index bytes.
    pub fn from_bytes(bytes: &[u8], trusted: &TrustedKeys) -> Result<Index, IndexError> {
        let (sigs, offset): (Vec<Signature>, usize) = match super::member::split_signature(bytes) {
            Ok(Some(split)) => split,
            Ok(None) => (Vec::new(), 0),
            Err(e) => return Err(IndexError::Corrupt(format!("signature section: {e}"))),
        };
        let signed = &bytes[offset..];
        let signer = read::check_signatures(&sigs, signed, trusted)?;
        let (description, text) = read_unsigned(signed)?;
        Ok(Index {
            description,
            entries: parse(&text)?,
            signer,
        })
    }
}

/// The largest `APKINDEX` or `DESCRIPTION` entry read into memory (sizes
/// come from the tar header; the signature was checked, but a cap costs
/// nothing and keeps a bad index from exhausting memory).
pub const MAX_INDEX_MEMBER: u64 = 256 << 20;

/// Extract `DESCRIPTION` and `APKINDEX` from an unsigned index.
pub(crate) fn read_unsigned(bytes: &[u8]) -> Result<(Option<String>, String), IndexError> {
    use std::io::Read as _;
    let mut r = tar::Reader::new(flate2::read::GzDecoder::new(bytes));
    let mut description = None;
    let mut text = None;
    while let Some(e) = r
        .next_entry()
        .map_err(|e| IndexError::Corrupt(e.to_string()))?
    {
        if e.size > MAX_INDEX_MEMBER {
            return Err(IndexError::Corrupt(format!(
                "{} is larger than {MAX_INDEX_MEMBER} bytes",
                e.path
            )));
        }
        let mut content = Vec::new();
        r.content()
            .read_to_end(&mut content)
            .map_err(|e| IndexError::Corrupt(e.to_string()))?;
        let content = String::from_utf8(content)
            .map_err(|_| IndexError::Corrupt(format!("{} is not UTF-8", e.path)))?;
        match e.path.as_str() {
            "DESCRIPTION" => description = Some(content),
            "APKINDEX" => text = Some(content),
            _ => {}
        }
    }
    let text = text.ok_or_else(|| IndexError::Corrupt("no APKINDEX entry".into()))?;
    Ok((description, text))
}
