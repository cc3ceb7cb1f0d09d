//! The package writer: staged tree + metadata + key → signed `.apk`.
//!
//! Flow (see the module docs of [`crate::apk`]): collect and sort the tree's
//! entries, stream the data tar through the compressor into a temp file (a
//! producer thread reads files, hashes them with SHA-1 for their PAX records
//! and serializes tar blocks; the calling thread compresses and hashes the
//! compressed bytes with SHA-256), then build `.PKGINFO` with `datahash`, the
//! control member, the signature member, and concatenate everything into a
//! second temp file that is fsynced and renamed to `name-version.apk`.

use std::collections::HashMap;
use std::fs;
use std::io::{self, BufWriter, Read, Seek, Write};
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use sha1::{Digest as _, Sha1};
use sha2::Sha256;

use super::autodeps::{self, AutoDeps, ScanError};
use super::tar::{self, Header, Kind, Magic, TarError};
use super::{PackageSpec, PkgInfo, gzip};
use crate::sign::{SigAlg, SignError, SigningKey};

/// Files up to this size are read once into memory; larger ones are read
/// twice (hash, then content) to keep memory flat.
const SMALL_FILE: u64 = 8 << 20;
/// Tar bytes handed to the compressor per message.
const CHUNK: usize = 1 << 20;

/// Choices that change what is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteOptions {
    /// Scan the tree for `so:`/`pc:` depends and provides (abuild's default).
    pub auto_deps: bool,
    /// Also add a legacy `.SIGN.RSA.` (SHA-1) signature after the SHA-256 one.
    pub sha1_signature: bool,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            auto_deps: true,
            sha1_signature: false,
        }
    }
}

/// A package file that was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenPackage {
    /// Where it is.
    pub path: PathBuf,
    /// Its `.PKGINFO`.
    pub info: PkgInfo,
    /// SHA-1 of the control member: the package identity (`C:` in the index).
    pub identity: [u8; 20],
    /// The file's size in bytes (`S:` in the index).
    pub file_size: u64,
}

/// Writing a package failed.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// A file could not be read or written.
    #[error("{} {}", action, path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A metadata field is unusable.
    #[error("invalid package metadata: {0}")]
    Spec(String),
    /// The staged tree holds something a package cannot carry.
    #[error("{}: {reason}", path.display())]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: &'static str,
    },
    /// A tar header could not be built.
    #[error("building the tar stream")]
    Tar(#[from] TarError),
    /// Scanning for dependencies failed.
    #[error(transparent)]
    Scan(#[from] ScanError),
    /// Signing failed.
    #[error("signing the package")]
    Sign(#[from] SignError),
}

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> WriteError + 'a {
    move |source| WriteError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// What one staged entry becomes in the data tar.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ItemKind {
    Dir,
    File { len: u64 },
    Symlink { target: String },
    HardLink { target: String },
}

#[derive(Debug, Clone)]
struct Item {
    rel: String,
    abs: PathBuf,
    kind: ItemKind,
    mode: u32,
    mtime: u64,
}

/// Write `spec` as a signed package into `dest_dir/name-version.apk`.
pub fn write_package(
    spec: &PackageSpec,
    key: &SigningKey,
    opts: &WriteOptions,
    dest_dir: &Path,
) -> Result<WrittenPackage, WriteError> {
    validate(spec)?;
    let cap = spec.builddate.max(0) as u64;
    let (items, installed) = collect(&spec.root, cap)?;
    let auto = if opts.auto_deps {
        let mut auto = autodeps::scan_auto_deps(&spec.root)?;
        auto.provides
            .extend(autodeps::command_provides(&spec.root, &spec.version)?);
        auto
    } else {
        AutoDeps::default()
    };
    let (depends, provides) = autodeps::merge(&spec.name, &spec.depends, &spec.provides, &auto);
    fs::create_dir_all(dest_dir).map_err(io_err("creating", dest_dir))?;
    let mut data = tempfile::NamedTempFile::new_in(dest_dir)
        .map_err(io_err("creating a temp file in", dest_dir))?;
    let datahash = write_data(&items, data.as_file_mut(), dest_dir)?;
    let info = PkgInfo {
        name: spec.name.clone(),
        version: spec.version.clone(),
        description: spec.description.clone(),
        url: spec.url.clone(),
        builddate: spec.builddate,
        packager: spec.packager.clone(),
        size: installed,
        arch: spec.arch.clone(),
        origin: spec.origin.clone(),
        commit: spec.commit.clone(),
        maintainer: None,
        provider_priority: None,
        license: spec.license.clone(),
        depends,
        provides,
        install_if: Vec::new(),
        datahash: Some(hex::encode(datahash)),
    };
    let control = control_member(&info, cap)?;
    let signature = signature_member(key, &control, cap, opts.sha1_signature)?;
    let path = dest_dir.join(spec.file_name());
    let file_size = assemble(&path, &signature, &control, data.as_file_mut())?;
    Ok(WrittenPackage {
        path,
        info,
        identity: Sha1::digest(&control).into(),
        file_size,
    })
}

fn validate(spec: &PackageSpec) -> Result<(), WriteError> {
    let fields = [
        ("name", &spec.name),
        ("version", &spec.version),
        ("description", &spec.description),
        ("url", &spec.url),
        ("license", &spec.license),
        ("arch", &spec.arch),
        ("origin", &spec.origin),
        ("packager", &spec.packager),
    ];
    for (field, value) in fields {
        if value.contains(['\n', '\r']) {
            return Err(WriteError::Spec(format!("{field} contains a line break")));
        }
    }
    for (field, value) in [
        ("name", &spec.name),
        ("version", &spec.version),
        ("arch", &spec.arch),
    ] {
        if value.is_empty() || value.contains(char::is_whitespace) || value.contains('/') {
            return Err(WriteError::Spec(format!(
                "{field} `{value}` is empty or has spaces or `/`"
            )));
        }
    }
    for d in spec.depends.iter().chain(&spec.provides) {
        if d.contains(char::is_whitespace) {
            return Err(WriteError::Spec(format!(
                "dependency `{d}` contains spaces"
            )));
        }
    }
    Ok(())
}

/// Collect the tree's entries sorted bytewise by path, with hard links
/// resolved to their first path, and the installed size.
fn collect(root: &Path, cap: u64) -> Result<(Vec<Item>, u64), WriteError> {
    let mut items = Vec::new();
    for entry in walkdir::WalkDir::new(root).min_depth(1).follow_links(false) {
        let entry = entry.map_err(|e| WriteError::Io {
            action: "reading",
            path: e.path().unwrap_or(root).to_path_buf(),
            source: e.into(),
        })?;
        let abs = entry.path().to_path_buf();
        let rel = abs
            .strip_prefix(root)
            .ok()
            .and_then(|r| r.to_str())
            .ok_or(WriteError::Unsupported {
                path: abs.clone(),
                reason: "file name is not UTF-8",
            })?
            .to_string();
        let meta = entry.metadata().map_err(|e| WriteError::Io {
            action: "reading",
            path: abs.clone(),
            source: e.into(),
        })?;
        let ft = meta.file_type();
        let kind = if ft.is_dir() {
            ItemKind::Dir
        } else if ft.is_symlink() {
            let target = fs::read_link(&abs).map_err(io_err("reading", &abs))?;
            let target = target.to_str().ok_or(WriteError::Unsupported {
                path: abs.clone(),
                reason: "symlink target is not UTF-8",
            })?;
            ItemKind::Symlink {
                target: target.to_string(),
            }
        } else if ft.is_file() {
            ItemKind::File { len: meta.len() }
        } else {
            return Err(WriteError::Unsupported {
                path: abs,
                reason: "devices, fifos and sockets cannot be packaged",
            });
        };
        if !rel.contains('/') && rel.starts_with('.') && kind != ItemKind::Dir {
            return Err(WriteError::Unsupported {
                path: abs,
                reason: "a top-level dot-file would be read as package metadata",
            });
        }
        items.push((
            Item {
                rel,
                abs,
                kind,
                mode: meta.mode() & 0o7777,
                mtime: (meta.mtime().max(0) as u64).min(cap),
            },
            (meta.dev(), meta.ino(), meta.nlink()),
        ));
    }
    items.sort_by(|a, b| a.0.rel.cmp(&b.0.rel));
    let mut first_path: HashMap<(u64, u64), String> = HashMap::new();
    let mut installed = 0u64;
    let mut any_file = false;
    let mut out = Vec::with_capacity(items.len());
    for (mut item, (dev, ino, nlink)) in items {
        if let ItemKind::File { len } = item.kind {
            any_file = true;
            if nlink > 1 {
                if let Some(first) = first_path.get(&(dev, ino)) {
                    item.kind = ItemKind::HardLink {
                        target: first.clone(),
                    };
                } else {
                    first_path.insert((dev, ino), item.rel.clone());
                    installed += len;
                }
            } else {
                installed += len;
            }
        }
        out.push(item);
    }
    if any_file && installed == 0 {
        installed = 1;
    }
    Ok((out, installed))
}

/// Stream the data tar through the compressor into `out`; returns the SHA-256
/// of the compressed member.
fn write_data(items: &[Item], out: &mut fs::File, dir: &Path) -> Result<[u8; 32], WriteError> {
    let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(4);
    std::thread::scope(|s| {
        let producer = s.spawn(move || produce(items, &tx));
        let sink = HashWriter {
            inner: BufWriter::with_capacity(1 << 20, &mut *out),
            hash: Sha256::new(),
        };
        let mut enc = gzip::encoder(sink);
        let mut write_result = Ok(());
        for chunk in rx {
            if let Err(e) = enc.write_all(&chunk) {
                write_result = Err(e);
                break;
            }
        }
        let produced = producer
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        write_result.map_err(io_err("writing a temp file in", dir))?;
        produced?;
        let mut sink = enc
            .finish()
            .map_err(io_err("writing a temp file in", dir))?;
        sink.inner
            .flush()
            .map_err(io_err("writing a temp file in", dir))?;
        Ok(sink.hash.finalize().into())
    })
}

struct HashWriter<W> {
    inner: W,
    hash: Sha256,
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Serialize the data tar into chunks sent to the compressor. A send error
/// means the compressor stopped; its error is reported instead.
fn produce(items: &[Item], tx: &mpsc::SyncSender<Vec<u8>>) -> Result<(), WriteError> {
    let mut buf = Vec::with_capacity(CHUNK + 4 * tar::BLOCK);
    let send = |buf: &mut Vec<u8>| -> bool {
        let full = std::mem::replace(buf, Vec::with_capacity(CHUNK + 4 * tar::BLOCK));
        tx.send(full).is_ok()
    };
    for item in items {
        let mut header = Header {
            name: item.rel.clone(),
            mode: item.mode,
            size: 0,
            mtime: item.mtime,
            kind: Kind::Dir,
            link: String::new(),
        };
        match &item.kind {
            ItemKind::Dir => {
                header.name.push('/');
                tar::append_header(&mut buf, &header, &[], Magic::Ustar)?;
            }
            ItemKind::Symlink { target } => {
                header.kind = Kind::Symlink;
                header.mode = 0o777;
                header.link = target.clone();
                let sum = hex::encode(Sha1::digest(target.as_bytes()));
                tar::append_header(&mut buf, &header, &[(SHA1_KEY, &sum)], Magic::Ustar)?;
            }
            ItemKind::HardLink { target } => {
                header.kind = Kind::HardLink;
                header.link = target.clone();
                tar::append_header(&mut buf, &header, &[], Magic::Ustar)?;
            }
            ItemKind::File { len } => {
                header.kind = Kind::File;
                let open = || fs::File::open(&item.abs).map_err(io_err("reading", &item.abs));
                if *len <= SMALL_FILE {
                    let mut content = Vec::with_capacity(*len as usize);
                    open()?
                        .read_to_end(&mut content)
                        .map_err(io_err("reading", &item.abs))?;
                    header.size = content.len() as u64;
                    let sum = hex::encode(Sha1::digest(&content));
                    tar::append_header(&mut buf, &header, &[(SHA1_KEY, &sum)], Magic::Ustar)?;
                    buf.extend_from_slice(&content);
                    buf.resize(buf.len() + tar::padding(header.size), 0);
                } else {
                    let (size, sum) =
                        hash_file(&mut open()?).map_err(io_err("reading", &item.abs))?;
                    header.size = size;
                    tar::append_header(
                        &mut buf,
                        &header,
                        &[(SHA1_KEY, &hex::encode(sum))],
                        Magic::Ustar,
                    )?;
                    let mut f = open()?;
                    let mut left = size;
                    while left > 0 {
                        let start = buf.len();
                        let want = (CHUNK as u64).min(left) as usize;
                        buf.resize(start + want, 0);
                        f.read_exact(&mut buf[start..])
                            .map_err(io_err("reading", &item.abs))?;
                        left -= want as u64;
                        if buf.len() >= CHUNK && !send(&mut buf) {
                            return Ok(());
                        }
                    }
                    let mut probe = [0u8; 1];
                    if f.read(&mut probe).map_err(io_err("reading", &item.abs))? != 0 {
                        return Err(WriteError::Unsupported {
                            path: item.abs.clone(),
                            reason: "file changed while it was being packaged",
                        });
                    }
                    buf.resize(buf.len() + tar::padding(size), 0);
                }
            }
        }
        if buf.len() >= CHUNK && !send(&mut buf) {
            return Ok(());
        }
    }
    tar::end_of_archive(&mut buf);
    send(&mut buf);
    Ok(())
}

const SHA1_KEY: &str = "APK-TOOLS.checksum.SHA1";

fn hash_file(f: &mut fs::File) -> io::Result<(u64, [u8; 20])> {
    let mut h = Sha1::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        total += n as u64;
    }
    Ok((total, h.finalize().into()))
}

/// The control member: a cut tar holding `.PKGINFO`, compressed.
pub(crate) fn control_member(info: &PkgInfo, mtime: u64) -> Result<Vec<u8>, WriteError> {
    let text = info.render();
    let mut t = Vec::new();
    let h = Header {
        name: ".PKGINFO".into(),
        mode: 0o644,
        size: text.len() as u64,
        mtime,
        kind: Kind::File,
        link: String::new(),
    };
    tar::append_entry(&mut t, &h, &[], text.as_bytes(), Magic::Ustar)?;
    gzip::compress(&t).map_err(io_err("compressing", Path::new(".PKGINFO")))
}

/// The signature member: a cut tar of `.SIGN.RSA256.<key>` (and optionally
/// `.SIGN.RSA.<key>`) over `signed` (the control member, or an unsigned
/// index), compressed.
pub(crate) fn signature_member(
    key: &SigningKey,
    signed: &[u8],
    mtime: u64,
    sha1_too: bool,
) -> Result<Vec<u8>, WriteError> {
    let mut algs = vec![SigAlg::Rsa256];
    if sha1_too {
        algs.push(SigAlg::Rsa);
    }
    let mut t = Vec::new();
    for alg in algs {
        let sig = key.sign(alg, signed)?;
        let h = Header {
            name: alg.entry_name(key.name()),
            mode: 0o644,
            size: sig.len() as u64,
            mtime,
            kind: Kind::File,
            link: String::new(),
        };
        tar::append_entry(&mut t, &h, &[], &sig, Magic::Ustar)?;
    }
    gzip::compress(&t).map_err(io_err("compressing", Path::new(".SIGN")))
}

/// Concatenate the members into `path` atomically; returns the file size.
fn assemble(
    path: &Path,
    signature: &[u8],
    control: &[u8],
    data: &mut fs::File,
) -> Result<u64, WriteError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut out =
        tempfile::NamedTempFile::new_in(dir).map_err(io_err("creating a temp file in", dir))?;
    let werr = io_err("writing", path);
    let result = (|| -> io::Result<u64> {
        let f = out.as_file_mut();
        f.write_all(signature)?;
        f.write_all(control)?;
        data.seek(io::SeekFrom::Start(0))?;
        let copied = io::copy(data, f)?;
        f.set_permissions(fs::Permissions::from_mode(0o644))?;
        f.sync_all()?;
        Ok(signature.len() as u64 + control.len() as u64 + copied)
    })();
    let size = result.map_err(werr)?;
    out.persist(path).map_err(|e| WriteError::Io {
        action: "renaming into",
        path: path.to_path_buf(),
        source: e.error,
    })?;
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(size)
}
