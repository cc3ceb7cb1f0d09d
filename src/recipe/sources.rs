//! `[[source]]` entries: exactly one of `url`, `git` or `path`, each with its
//! own fields, checked into [`Source`] values.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

use super::check;
use super::error::Problems;
use super::model::{Checksum, Source};
use super::read::Section;

const URL_KEYS: &[&str] = &["url", "sha256", "sha512", "filename", "extract"];
const GIT_KEYS: &[&str] = &["git", "commit", "tag", "dest"];
const PATH_KEYS: &[&str] = &["path"];

/// Every key a `[[source]]` table may hold.
const ALL_KEYS: &[&str] = &[
    "url", "sha256", "sha512", "filename", "extract", "git", "commit", "tag", "dest", "path",
];

/// Read all `[[source]]` tables; problems go to `p`.
pub(crate) fn read_sources(
    p: &mut Problems<'_>,
    sections: &[Section<'_, '_>],
    recipe_dir: &Path,
    version: &str,
) -> Vec<Source> {
    let mut out = Vec::new();
    // $srcdir entry name -> where it was first claimed
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    for s in sections {
        s.check_keys(p, ALL_KEYS);
        let kinds: Vec<&str> = ["url", "git", "path"]
            .into_iter()
            .filter(|k| s.table.contains_key(*k))
            .collect();
        let (kind, keys) = match kinds.as_slice() {
            [] => {
                p.at(
                    s.span.clone(),
                    format!("{} needs exactly one of `url`, `git` or `path`", s.name),
                );
                continue;
            }
            [one] => (*one, kind_keys(one)),
            [a, b, ..] => {
                let span = key_span(s, b);
                p.at(
                    span,
                    format!(
                        "{} has both `{a}` and `{b}`; a source has exactly one of `url`, `git` or `path`",
                        s.name
                    ),
                );
                continue;
            }
        };
        for key in s.table.keys() {
            let k: &str = key.get_ref();
            if ALL_KEYS.contains(&k) && !keys.contains(&k) {
                p.at(
                    key.span(),
                    format!(
                        "`{k}` does not apply to a `{kind}` source in {} (its fields: {})",
                        s.name,
                        keys.join(", ")
                    ),
                );
            }
        }
        let read = match kind {
            "url" => read_url(p, s, version),
            "git" => read_git(p, s),
            _ => read_path(p, s, recipe_dir),
        };
        if let Some((source, span)) = read {
            let entry = srcdir_name(&source);
            if let Some(first) = names.get(&entry) {
                p.at(
                    span,
                    format!(
                        "{} would be stored as `{entry}` in $srcdir, like {first}; set `filename` or `dest`",
                        s.name
                    ),
                );
            } else {
                names.insert(entry, s.name.clone());
            }
            out.push(source);
        }
    }
    out
}

fn kind_keys(kind: &str) -> &'static [&'static str] {
    match kind {
        "url" => URL_KEYS,
        "git" => GIT_KEYS,
        _ => PATH_KEYS,
    }
}

fn key_span(s: &Section<'_, '_>, key: &str) -> Range<usize> {
    s.table
        .get_key_value(key)
        .map_or(s.span.clone(), |(k, _)| k.span())
}

/// The name a source takes in `$srcdir`.
fn srcdir_name(source: &Source) -> String {
    match source {
        Source::Http { filename, .. } => filename.clone(),
        Source::Git { dest, .. } => dest.clone(),
        Source::Local { path } => path.clone(),
    }
}

fn read_url(
    p: &mut Problems<'_>,
    s: &Section<'_, '_>,
    version: &str,
) -> Option<(Source, Range<usize>)> {
    let (url, span) = s.str(p, "url")?;
    let url = match super::template::expand(&url, version) {
        Ok(u) => u,
        Err(e) => {
            p.at(span, format!("{}: {e}", s.field("url")));
            return None;
        }
    };
    let mut ok = true;
    if let Err(e) = check::url(&url, true) {
        p.at(span.clone(), format!("{}: {e}", s.field("url")));
        ok = false;
    }
    let sha256 = s.str(p, "sha256");
    let sha512 = s.str(p, "sha512");
    let checksum = match (sha256, sha512) {
        (Some(_), Some((_, span))) => {
            p.at(
                span,
                format!("{} has both `sha256` and `sha512`; give one", s.name),
            );
            None
        }
        (Some((hex, span)), None) => digest(p, s, "sha256", hex, span, 64).map(Checksum::Sha256),
        (None, Some((hex, span))) => digest(p, s, "sha512", hex, span, 128).map(Checksum::Sha512),
        (None, None) => {
            if !s.table.contains_key("sha256") && !s.table.contains_key("sha512") {
                p.at(
                    span.clone(),
                    format!(
                        "{} downloads `{url}` without a checksum; add `sha256 = \"…\"` (or `sha512`)",
                        s.name
                    ),
                );
            }
            None
        }
    };
    let filename = match s.str(p, "filename") {
        Some((f, fspan)) => match super::template::expand(&f, version)
            .and_then(|f| check::file_name(&f).map(|()| f))
        {
            Ok(f) => Some(f),
            Err(e) => {
                p.at(fspan, format!("{}: {e}", s.field("filename")));
                None
            }
        },
        None => {
            let last = url
                .split(['?', '#'])
                .next()
                .unwrap_or("")
                .rsplit('/')
                .next()
                .unwrap_or("");
            if ok && check::file_name(last).is_err() {
                p.at(
                    span.clone(),
                    format!(
                        "{}: cannot take a file name from `{url}`; set `filename`",
                        s.name
                    ),
                );
            }
            Some(last.to_string())
        }
    };
    let filename = filename?;
    // An explicit `extract = true` on an unusual name is allowed: the unpacker
    // recognises archives by their magic bytes.
    let extract = match s.bool(p, "extract") {
        Some((e, _)) => e,
        None => check::is_archive(&filename),
    };
    let checksum = checksum?;
    ok.then_some((
        Source::Http {
            url,
            checksum,
            filename,
            extract,
        },
        span,
    ))
}

fn digest(
    p: &mut Problems<'_>,
    s: &Section<'_, '_>,
    key: &str,
    hex: String,
    span: Range<usize>,
    len: usize,
) -> Option<String> {
    match check::hex_digest(&hex, len) {
        Ok(()) => Some(hex),
        Err(e) => {
            p.at(span, format!("{}: {e}", s.field(key)));
            None
        }
    }
}

fn read_git(p: &mut Problems<'_>, s: &Section<'_, '_>) -> Option<(Source, Range<usize>)> {
    let (url, span) = s.str(p, "git")?;
    let mut ok = true;
    if let Err(e) = check::git_url(&url) {
        p.at(span.clone(), format!("{}: {e}", s.field("git")));
        ok = false;
    }
    let commit = match s.req_str(p, "commit", "the full 40-hex commit id to check out") {
        Some((c, cspan)) => match check::commit_id(&c) {
            Ok(()) => Some(c),
            Err(e) => {
                p.at(cspan, format!("{}: {e}", s.field("commit")));
                None
            }
        },
        None => None,
    };
    let tag = s.str(p, "tag").map(|(t, _)| t);
    let dest = match s.str(p, "dest") {
        Some((d, dspan)) => match check::file_name(&d) {
            Ok(()) => Some(d),
            Err(e) => {
                p.at(dspan, format!("{}: {e}", s.field("dest")));
                None
            }
        },
        None => {
            let base = url.trim_end_matches('/');
            let base = base.rsplit(['/', ':']).next().unwrap_or(base);
            let base = base.strip_suffix(".git").unwrap_or(base);
            if ok && check::file_name(base).is_err() {
                p.at(
                    span.clone(),
                    format!(
                        "{}: cannot take a folder name from `{url}`; set `dest`",
                        s.name
                    ),
                );
                None
            } else {
                Some(base.to_string())
            }
        }
    };
    let (commit, dest) = (commit?, dest?);
    ok.then_some((
        Source::Git {
            url,
            commit,
            tag,
            dest,
        },
        span,
    ))
}

fn read_path(
    p: &mut Problems<'_>,
    s: &Section<'_, '_>,
    recipe_dir: &Path,
) -> Option<(Source, Range<usize>)> {
    let (path, span) = s.str(p, "path")?;
    let path = path.trim_end_matches('/').to_string();
    let field = s.field("path");
    if let Err(e) = check::relative_path(&path) {
        p.at(span, format!("{field}: {e}"));
        return None;
    }
    if let Err(e) = check_inside(recipe_dir, &path) {
        p.at(span, format!("{field}: {e}"));
        return None;
    }
    Some((Source::Local { path }, span))
}

/// `rel` exists under `dir` and neither it nor any symlink below it leads
/// outside `dir`.
fn check_inside(dir: &Path, rel: &str) -> Result<(), String> {
    let full = dir.join(rel);
    if std::fs::symlink_metadata(&full).is_err() {
        return Err(format!("`{rel}` does not exist in the recipe folder"));
    }
    let base = dir
        .canonicalize()
        .map_err(|e| format!("cannot resolve the recipe folder: {e}"))?;
    let inside = |p: &Path| -> Result<(), String> {
        let shown = p.strip_prefix(dir).unwrap_or(p).display().to_string();
        match p.canonicalize() {
            Ok(real) if real.starts_with(&base) => Ok(()),
            Ok(_) => Err(format!(
                "`{shown}` leads outside the recipe folder (symlink)"
            )),
            Err(_) => Err(format!("`{shown}` is a dangling symlink")),
        }
    };
    inside(&full)?;
    if full.is_dir() {
        for entry in walkdir::WalkDir::new(&full).follow_links(false) {
            let entry = entry.map_err(|e| format!("cannot read `{rel}`: {e}"))?;
            if entry.path_is_symlink() {
                inside(entry.path())?;
            }
        }
    }
    Ok(())
}
