//! The `[update]` section: where a recipe's new upstream versions are
//! announced (a release feed), how to read a version out of a feed entry,
//! and which versions to skip. `forge update` (`src/update/`) acts on it;
//! here it is only checked, like every other section, with located errors.
//!
//! Updating rewrites `version` and the checksums of the sources, so every
//! `url` source of an updatable recipe must follow the version through
//! `${version}`, and git sources (pinned by commit) cannot be updated.

use std::ops::Range;

use toml::de::DeValue;

use super::check;
use super::error::Problems;
use super::model::{Feed, UpdateSpec};
use super::read::Section;

const UPDATE_KEYS: &[&str] = &[
    "github",
    "gitlab",
    "feed",
    "tags",
    "regex",
    "ignore",
    "prereleases",
    "checksums",
];

/// The largest compiled size of a version regex (a hostile recipe must not
/// make forge build a huge automaton).
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Read `[update]`; `sources` are the `[[source]]` tables, checked to follow
/// the version.
pub(crate) fn read_update(
    p: &mut Problems<'_>,
    s: &Section<'_, '_>,
    sources: &[Section<'_, '_>],
) -> Option<UpdateSpec> {
    s.check_keys(p, UPDATE_KEYS);
    let feed = read_feed(p, s);
    let regex = s.str(p, "regex").and_then(|(r, span)| {
        match regex::RegexBuilder::new(&r)
            .size_limit(REGEX_SIZE_LIMIT)
            .build()
        {
            Ok(re) if re.captures_len() <= 2 => Some(r),
            Ok(_) => {
                p.at(
                    span,
                    format!(
                        "{} has more than one capture group; group 1 is the version",
                        s.field("regex")
                    ),
                );
                None
            }
            Err(e) => {
                p.at(span, format!("{}: {e}", s.field("regex")));
                None
            }
        }
    });
    let ignore = s
        .str_list(p, "ignore")
        .map(|l| l.into_iter().map(|(v, _)| v).collect())
        .unwrap_or_default();
    let prereleases = s.bool(p, "prereleases").is_some_and(|(b, _)| b);
    let checksums = s.str(p, "checksums").and_then(|(u, span)| {
        match super::template::expand(&u, "0").map(|x| check::url(&x, false)) {
            Ok(Ok(())) => Some(u),
            Ok(Err(e)) | Err(e) => {
                p.at(span, format!("{}: {e}", s.field("checksums")));
                None
            }
        }
    });
    check_sources(p, sources);
    Some(UpdateSpec {
        feed: feed?,
        regex,
        ignore,
        prereleases,
        checksums,
    })
}

fn read_feed(p: &mut Problems<'_>, s: &Section<'_, '_>) -> Option<Feed> {
    let given: Vec<&str> = ["github", "gitlab", "feed"]
        .into_iter()
        .filter(|k| s.table.contains_key(*k))
        .collect();
    let tags = s.bool(p, "tags");
    let feed = match given.as_slice() {
        [] => {
            p.at(
                s.span.clone(),
                format!(
                    "{} needs one of `github = \"owner/repo\"`, `gitlab = \"host/group/project\"` or `feed = \"https://…\"`",
                    s.name
                ),
            );
            return None;
        }
        [one] => *one,
        [a, b, ..] => {
            p.at(
                key_span(s, b),
                format!("{} has both `{a}` and `{b}`; give one feed", s.name),
            );
            return None;
        }
    };
    let (value, span) = s.str(p, feed)?;
    let checked = match feed {
        "github" => github_repo(&value).map(|()| Feed::GitHub {
            repo: value.clone(),
            tags: tags.as_ref().is_some_and(|(b, _)| *b),
        }),
        "gitlab" => gitlab_project(&value).map(|()| Feed::GitLab {
            project: value.clone(),
            tags: tags.as_ref().is_none_or(|(b, _)| *b),
        }),
        _ => {
            if let Some((_, tspan)) = &tags {
                p.at(
                    tspan.clone(),
                    format!(
                        "{} applies to `github` and `gitlab` feeds only",
                        s.field("tags")
                    ),
                );
            }
            check::url(&value, false).map(|()| Feed::Url(value.clone()))
        }
    };
    match checked {
        Ok(f) => Some(f),
        Err(e) => {
            p.at(span, format!("{}: {e}", s.field(feed)));
            None
        }
    }
}

fn key_span(s: &Section<'_, '_>, key: &str) -> Range<usize> {
    s.table
        .get_key_value(key)
        .map_or(s.span.clone(), |(k, _)| k.span())
}

fn name_part(part: &str) -> bool {
    !part.is_empty()
        && part != "."
        && part != ".."
        && part
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// `owner/repo`.
fn github_repo(s: &str) -> Result<(), String> {
    match s.split('/').collect::<Vec<_>>().as_slice() {
        [owner, repo] if name_part(owner) && name_part(repo) => Ok(()),
        _ => Err(format!("`{s}` is not `owner/repo`")),
    }
}

/// `[http(s)://]host[:port]/group[/subgroup…]/project`.
fn gitlab_project(s: &str) -> Result<(), String> {
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    let parts: Vec<&str> = rest.split('/').collect();
    let host_ok = parts.first().is_some_and(|h| {
        !h.is_empty()
            && h.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'))
    });
    if host_ok && parts.len() >= 3 && parts[1..].iter().all(|p| name_part(p)) {
        Ok(())
    } else {
        Err(format!("`{s}` is not `host/group/project`"))
    }
}

/// An updatable recipe's url sources must use `${version}`; git sources
/// cannot follow a feed.
fn check_sources(p: &mut Problems<'_>, sources: &[Section<'_, '_>]) {
    for src in sources {
        if let Some((k, _)) = src.table.get_key_value("git") {
            p.at(
                k.span(),
                format!(
                    "{} is a git source, which `forge update` cannot move to a new version; drop [update] or use a url source with `${{version}}`",
                    src.name
                ),
            );
        }
        if let Some(v) = src.table.get("url")
            && let DeValue::String(u) = v.get_ref()
            && !u.contains("${version}")
        {
            p.at(
                v.span(),
                format!(
                    "`url` in {} does not contain `${{version}}`, so [update] could not download a new version",
                    src.name
                ),
            );
        }
    }
}
