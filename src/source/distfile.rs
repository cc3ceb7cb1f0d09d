//! The content-addressed distfile cache and where files come from.
//!
//! Layout: `<cache>/distfiles/<algorithm>/<hex>`, one file per checksum, so
//! two recipes sharing a tarball share the bytes, and the `distfiles` folder
//! itself is a valid mirror (see `docs/sources.md`).
//!
//! Flow for one http source:
//! 1. cache hit → hash it again; a corrupt file is removed and fetched anew;
//! 2. each mirror in order: `<mirror>/<algorithm>/<hex>`, then
//!    `<mirror>/<filename>` (mirrors are URLs or local folders); a mirror
//!    whose bytes do not match is skipped with a warning;
//! 3. unless offline, upstream (a `file://` URL counts as local and is read
//!    offline too); a mismatch there is an error.
//!
//! Whatever the origin, bytes are streamed into a temporary file in the
//! cache folder while being hashed, fsynced, compared, and only then renamed
//! to their address. An interrupted or wrong download never has an address.
//!
//! `ensure` hands back the open file it hashed (rewound), and the caller
//! reads the source from that handle: the cache path is never reopened
//! after the check, so a file swapped in between is not what gets used.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::digest::{Hasher, hash_open_file};
use super::{SourceError, http};
use crate::recipe::Checksum;
use crate::settings::Settings;

/// One http source to make present.
pub(crate) struct Want<'a> {
    /// The recipe it belongs to.
    pub recipe: &'a str,
    /// The upstream URL.
    pub url: &'a str,
    /// Its file name.
    pub filename: &'a str,
    /// The expected checksum.
    pub checksum: &'a Checksum,
}

/// Where a distfile with `checksum` lives in the cache.
pub fn cache_path(cache: &Path, checksum: &Checksum) -> PathBuf {
    cache
        .join("distfiles")
        .join(checksum.algorithm())
        .join(checksum.hex())
}

enum Place {
    Dir(PathBuf),
    Url(String),
}

impl Place {
    fn describe(&self) -> String {
        match self {
            Place::Dir(p) => p.display().to_string(),
            Place::Url(u) => u.clone(),
        }
    }
}

fn mirror_places(mirror: &str, want: &Want) -> Vec<Place> {
    let mut rels = vec![
        format!("{}/{}", want.checksum.algorithm(), want.checksum.hex()),
        want.filename.to_string(),
    ];
    // A recipe may rename the file; mirrors seeded from upstream URLs know it
    // by the URL's last segment.
    let segment = url_file_name(want.url);
    if !segment.is_empty() && segment != want.filename {
        rels.push(segment.to_string());
    }
    rels.into_iter()
        .map(|rel| {
            if http::is_url(mirror) {
                Place::Url(format!("{}/{rel}", mirror.trim_end_matches('/')))
            } else {
                let dir = mirror.strip_prefix("file://").unwrap_or(mirror);
                Place::Dir(Path::new(dir).join(rel))
            }
        })
        .collect()
}

/// The last path segment of a URL, without query or fragment.
fn url_file_name(url: &str) -> &str {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    match path.rsplit_once('/') {
        Some((_, last)) if last != ".." && last != "." => last,
        _ => "",
    }
}

/// Rewind a verified file so its user reads it from the start.
fn rewound(mut file: File, path: &Path) -> Result<File, SourceError> {
    file.rewind().map_err(SourceError::io("reading", path))?;
    Ok(file)
}

/// Make sure the file is in the cache and verified; returns its cache path
/// and the open, rewound file whose bytes were hashed (read the source from
/// it, never from the path again).
pub(crate) fn ensure(settings: &Settings, want: &Want) -> Result<(PathBuf, File), SourceError> {
    let shell = &settings.shell;
    let dest = cache_path(&settings.cache, want.checksum);
    if dest.exists() {
        let mut file = File::open(&dest).map_err(SourceError::io("reading", &dest))?;
        let actual = hash_open_file(&mut file, &dest, want.checksum)?;
        if &actual == want.checksum {
            shell.verbose(format!("{} is cached at {}", want.filename, dest.display()));
            return Ok((dest.clone(), rewound(file, &dest)?));
        }
        shell.warn(format!(
            "cached {} is corrupt (expected {}, found {}); fetching it again",
            dest.display(),
            want.checksum.to_prefixed(),
            actual.to_prefixed()
        ));
        std::fs::remove_file(&dest).map_err(SourceError::io("removing", &dest))?;
    }
    let mut looked = vec![format!("cache {}", dest.display())];
    for mirror in &settings.mirrors {
        for place in mirror_places(mirror, want) {
            looked.push(place.describe());
            match fetch_place(settings, &place, want, &dest) {
                Ok(Some(file)) => {
                    shell.verbose(format!(
                        "{} came from mirror {}",
                        want.filename,
                        place.describe()
                    ));
                    return Ok((dest, file));
                }
                Ok(None) => shell.verbose(format!("not at {}", place.describe())),
                Err(e) => shell.warn(format!(
                    "mirror {}: {}",
                    place.describe(),
                    crate::util::error_chain(&e)
                )),
            }
        }
    }
    upstream(settings, want, &dest, looked)
}

/// The recipe's own URL: http(s), or a `file://` path (local, so allowed
/// offline too).
fn upstream(
    settings: &Settings,
    want: &Want,
    dest: &Path,
    looked: Vec<String>,
) -> Result<(PathBuf, File), SourceError> {
    if let Some(path) = want.url.strip_prefix("file://") {
        let place = Place::Dir(PathBuf::from(path));
        return match fetch_place(settings, &place, want, dest)? {
            Some(file) => Ok((dest.to_path_buf(), file)),
            None => Err(SourceError::Io {
                op: "reading",
                path: PathBuf::from(path),
                source: std::io::ErrorKind::NotFound.into(),
            }),
        };
    }
    if settings.offline {
        return Err(SourceError::Offline {
            recipe: want.recipe.to_string(),
            url: want.url.to_string(),
            filename: want.filename.to_string(),
            checksum: want.checksum.to_prefixed(),
            looked,
        });
    }
    let place = Place::Url(want.url.to_string());
    match fetch_place(settings, &place, want, dest)? {
        Some(file) => Ok((dest.to_path_buf(), file)),
        None => Err(SourceError::HttpStatus {
            url: want.url.to_string(),
            status: 404,
        }),
    }
}

/// Try one place; `Ok(None)` when it does not have the file, else the
/// stored, verified file.
fn fetch_place(
    settings: &Settings,
    place: &Place,
    want: &Want,
    dest: &Path,
) -> Result<Option<File>, SourceError> {
    match place {
        Place::Dir(path) => {
            let file = match File::open(path) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(SourceError::io("reading", path)(e)),
            };
            if !file.metadata().is_ok_and(|m| m.is_file()) {
                return Ok(None);
            }
            let label = path.display().to_string();
            store(settings, file, None, want, &label, dest).map(Some)
        }
        Place::Url(url) => {
            let Some(resp) = http::get(url)? else {
                return Ok(None);
            };
            settings.shell.status("Downloading", url);
            let len = resp.content_length();
            store(settings, resp, len, want, url, dest).map(Some)
        }
    }
}

/// Prefix of partial downloads in the cache folders.
const PART_PREFIX: &str = ".part-";

/// Remove partial downloads left by a killed forge: files older than a
/// minute that no live writer holds locked. Best effort; errors are ignored.
fn remove_stale_parts(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if !entry.file_name().to_string_lossy().starts_with(PART_PREFIX) {
            continue;
        }
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age.as_secs() >= 60);
        if !old {
            continue;
        }
        if let Ok(f) = std::fs::File::open(entry.path())
            && f.try_lock().is_ok()
        {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Stream `src` into a temporary file next to `dest`, hashing as it goes;
/// rename it to `dest` only when complete and matching. Returns the stored
/// file, open and rewound.
fn store(
    settings: &Settings,
    src: impl Read,
    len: Option<u64>,
    want: &Want,
    origin: &str,
    dest: &Path,
) -> Result<File, SourceError> {
    let dir = dest.parent().expect("cache paths have a parent");
    let (tmp, actual) = stream(
        settings,
        src,
        len,
        want.filename,
        want.checksum,
        origin,
        dir,
    )?;
    if &actual != want.checksum {
        return Err(SourceError::Mismatch {
            recipe: want.recipe.to_string(),
            url: origin.to_string(),
            expected: want.checksum.to_prefixed(),
            actual: actual.to_prefixed(),
        });
    }
    persist(tmp, dest)
}

/// Download `url`, whose checksum is not known yet (a new upstream version),
/// into the cache; returns its checksum (the algorithm of `like`) and its
/// cache path. Mirrors are not asked: they cannot have a file nobody has
/// named by checksum yet. A missing file (404/410) is an error.
pub(crate) fn fetch_new(
    settings: &Settings,
    url: &str,
    filename: &str,
    like: &Checksum,
) -> Result<(Checksum, PathBuf), SourceError> {
    let Some(resp) = http::get(url)? else {
        return Err(SourceError::HttpStatus {
            url: url.to_string(),
            status: 404,
        });
    };
    settings.shell.status("Downloading", url);
    let dir = settings.cache.join("distfiles").join(like.algorithm());
    let len = resp.content_length();
    let (tmp, actual) = stream(settings, resp, len, filename, like, url, &dir)?;
    let dest = cache_path(&settings.cache, &actual);
    persist(tmp, &dest)?;
    Ok((actual, dest))
}

/// Stream `src` into a locked temporary file in `dir`, hashing with the
/// algorithm of `like`; checks the announced length.
fn stream(
    settings: &Settings,
    mut src: impl Read,
    len: Option<u64>,
    filename: &str,
    like: &Checksum,
    origin: &str,
    dir: &Path,
) -> Result<(tempfile::NamedTempFile, Checksum), SourceError> {
    std::fs::create_dir_all(dir).map_err(SourceError::io("creating", dir))?;
    remove_stale_parts(dir);
    let mut tmp = tempfile::Builder::new()
        .prefix(PART_PREFIX)
        .tempfile_in(dir)
        .map_err(SourceError::io("creating a temporary file in", dir))?;
    // Held until the file is renamed or dropped: tells other forge processes
    // this partial download is alive.
    tmp.as_file()
        .lock()
        .map_err(SourceError::io("locking", tmp.path()))?;
    let bar = settings.shell.bytes_bar(len, filename);
    let mut hasher = Hasher::for_checksum(like);
    let mut buf = vec![0u8; 64 * 1024];
    let mut got = 0u64;
    let read_err = |e: std::io::Error| SourceError::Download {
        url: origin.to_string(),
        source: Box::new(e),
    };
    loop {
        let n = src.read(&mut buf).map_err(read_err)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        tmp.write_all(&buf[..n])
            .map_err(SourceError::io("writing", tmp.path()))?;
        got += n as u64;
        bar.inc(n as u64);
    }
    bar.finish_and_clear();
    if let Some(len) = len
        && got != len
    {
        return Err(read_err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("connection closed after {got} of {len} bytes"),
        )));
    }
    Ok((tmp, hasher.finish()))
}

/// fsync a complete temporary file and rename it to its address; returns
/// it open and rewound.
fn persist(tmp: tempfile::NamedTempFile, dest: &Path) -> Result<File, SourceError> {
    let file = tmp.as_file();
    file.set_permissions(std::fs::Permissions::from_mode(0o644))
        .map_err(SourceError::io("writing", tmp.path()))?;
    file.sync_all()
        .map_err(SourceError::io("syncing", tmp.path()))?;
    let file = tmp
        .persist(dest)
        .map_err(|e| SourceError::io("storing", dest)(e.error))?;
    if let Some(dir) = dest.parent()
        && let Ok(d) = File::open(dir)
    {
        let _ = d.sync_all();
    }
    // The lock taken above goes with the handle; the file is complete now.
    let _ = file.unlock();
    rewound(file, dest)
}

#[cfg(test)]
#[path = "distfile_tests.rs"]
mod tests;
