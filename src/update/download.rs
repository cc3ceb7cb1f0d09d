//! The new version's sources: every `[[source]]` whose `url` holds
//! `${version}` is expanded, downloaded into the distfile cache and hashed
//! (through `source`, the one downloader). With `checksums` in `[update]`,
//! the published list is fetched first and the download must match it.

use toml_edit::{DocumentMut, Item};

use super::fetch::{self, Answer};
use super::rewrite::NewChecksum;
use super::{FetchOptions, UpdateError};
use crate::recipe::{Checksum, UpdateSpec};
use crate::settings::Settings;

/// The largest checksum list read.
const MAX_SUMS: u64 = 1 << 20;

/// One templated source of the recipe text.
struct Templated {
    index: usize,
    url: String,
    filename: Option<String>,
    key: &'static str,
}

fn templated(text: &str) -> Result<Vec<Templated>, UpdateError> {
    let doc: DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| UpdateError::Invalid(e.to_string()))?;
    let mut out = Vec::new();
    let Some(tables) = doc.get("source").and_then(Item::as_array_of_tables) else {
        return Ok(out);
    };
    for (index, t) in tables.iter().enumerate() {
        let Some(url) = t.get("url").and_then(Item::as_str) else {
            continue;
        };
        if !url.contains("${version}") {
            continue;
        }
        let key = if t.contains_key("sha512") {
            "sha512"
        } else {
            "sha256"
        };
        out.push(Templated {
            index,
            url: url.to_string(),
            filename: t.get("filename").and_then(Item::as_str).map(str::to_string),
            key,
        });
    }
    Ok(out)
}

fn expand(text: &str, version: &str) -> Result<String, UpdateError> {
    crate::recipe::expand_version(text, version).map_err(UpdateError::Invalid)
}

/// Download the sources of `version`; returns the new checksums.
pub fn sources(
    settings: &Settings,
    name: &str,
    text: &str,
    spec: &UpdateSpec,
    version: &str,
    fetch_opts: &FetchOptions,
) -> Result<Vec<NewChecksum>, UpdateError> {
    let sums = match &spec.checksums {
        Some(t) => Some(checksum_list(&expand(t, version)?, fetch_opts)?),
        None => None,
    };
    let mut out = Vec::new();
    for t in templated(text)? {
        let url = expand(&t.url, version)?;
        let filename = match &t.filename {
            Some(f) => expand(f, version)?,
            None => url
                .split(['?', '#'])
                .next()
                .unwrap_or("")
                .rsplit('/')
                .next()
                .unwrap_or("")
                .to_string(),
        };
        let like = match t.key {
            "sha512" => Checksum::Sha512(String::new()),
            _ => Checksum::Sha256(String::new()),
        };
        let checksum = match &sums {
            Some(list) => {
                let hex = published(list, &filename, &url)?;
                let want = match t.key {
                    "sha512" => Checksum::Sha512(hex),
                    _ => Checksum::Sha256(hex),
                };
                crate::source::ensure_http(settings, name, &url, &filename, &want)
                    .map_err(|e| UpdateError::Source(Box::new(e)))?;
                want
            }
            None => {
                crate::source::download_new(settings, &url, &filename, &like)
                    .map_err(|e| UpdateError::Source(Box::new(e)))?
                    .0
            }
        };
        out.push(NewChecksum {
            index: t.index,
            key: t.key,
            hex: checksum.hex().to_string(),
        });
    }
    Ok(out)
}

fn checksum_list(url: &str, opts: &FetchOptions) -> Result<String, UpdateError> {
    let client = fetch::client(opts).map_err(|e| UpdateError::Sums(url.to_string(), e))?;
    match fetch::fetch(&client, url, None, MAX_SUMS) {
        Ok(Answer::Body { bytes, .. }) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
        Ok(Answer::NotModified) => Err(UpdateError::Invalid(format!("{url} answered 304"))),
        Err(e) => Err(UpdateError::Sums(url.to_string(), e)),
    }
}

/// The digest a `<hex>  <file>` list (sha256sum/sha512sum output) gives for
/// `filename`.
fn published(list: &str, filename: &str, url: &str) -> Result<String, UpdateError> {
    for line in list.lines() {
        let mut parts = line.split_whitespace();
        let (Some(hex), Some(file)) = (parts.next(), parts.next()) else {
            continue;
        };
        let file = file.trim_start_matches('*');
        if file == filename || file.rsplit('/').next() == Some(filename) {
            let hex = hex.to_ascii_lowercase();
            if hex.chars().all(|c| c.is_ascii_hexdigit()) && matches!(hex.len(), 64 | 128) {
                return Ok(hex);
            }
        }
    }
    Err(UpdateError::Invalid(format!(
        "the checksum list does not name `{filename}` (the download of {url})"
    )))
}
