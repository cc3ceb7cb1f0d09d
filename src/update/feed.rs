//! Atom and RSS feeds → the candidate tag strings (pure: bytes in, strings
//! out, no I/O).
//!
//! Where the tag is depends on the host (see `docs/update.md`):
//! - GitHub: the entry link after `/releases/tag/`, percent-decoded; without a
//!   link, the `<id>` after `tag:github.com,2008:Repository/<n>/` (tags may
//!   hold `/`, so the prefix is stripped rather than the last segment taken).
//!   The `<title>` is the release *name* and is never read.
//! - GitLab: the `<id>` or link after `/-/tags/` or `/-/releases/`.
//! - Any other feed: the entry's `<title>`.
//!
//! The caller bounds the body's size; here the number of entries is bounded
//! too, and a document that is not well-formed, or whose root is neither
//! `<feed>` nor `<rss>`/`<rdf:RDF>`, is an error.

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

/// The most entries read from one feed; the rest are ignored (feeds list
/// the newest first).
pub const MAX_ENTRIES: usize = 10_000;

/// How to find the tag in an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// A GitHub releases or tags feed.
    GitHub,
    /// A GitLab tags or releases feed.
    GitLab,
    /// Any Atom or RSS feed: entry titles.
    Generic,
}

/// A feed that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    /// Not well-formed XML.
    #[error("malformed XML at byte {position}: {message}")]
    Xml {
        /// Byte offset of the problem.
        position: u64,
        /// The parser's message.
        message: String,
    },
    /// Well-formed, but not a feed.
    #[error("not an Atom or RSS feed (the root element is <{0}>)")]
    NotAFeed(String),
    /// Empty document.
    #[error("the feed is empty")]
    Empty,
}

/// One entry (Atom) or item (RSS), as far as tags are concerned.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Entry {
    /// `<id>` or `<guid>`.
    pub id: String,
    /// `<title>`.
    pub title: String,
    /// `<link href>` (Atom, `rel="alternate"` or none) or `<link>` text (RSS).
    pub link: String,
}

/// Parse a feed document into its entries, in document order.
pub fn parse(bytes: &[u8]) -> Result<Vec<Entry>, FeedError> {
    let mut reader = Reader::from_reader(bytes);
    let mut entries = Vec::new();
    let mut current: Option<Entry> = None;
    let mut field: Option<&'static str> = None;
    let mut root: Option<String> = None;
    let mut buf = Vec::new();
    let mut depth = 0usize;
    loop {
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| FeedError::Xml {
                position: reader.error_position(),
                message: e.to_string(),
            })?;
        match &event {
            Event::Start(_) => depth += 1,
            Event::End(_) => depth = depth.saturating_sub(1),
            Event::Eof if depth > 0 => {
                return Err(FeedError::Xml {
                    position: reader.buffer_position(),
                    message: "the document ends inside an element (truncated?)".into(),
                });
            }
            _ => {}
        }
        match event {
            Event::Start(e) | Event::Empty(e) if root.is_none() => {
                let name = local(&e);
                if !matches!(name.as_str(), "feed" | "rss" | "RDF") {
                    return Err(FeedError::NotAFeed(name));
                }
                root = Some(name);
            }
            Event::Start(e) => start(&e, &mut current, &mut field, false),
            Event::Empty(e) => start(&e, &mut current, &mut field, true),
            Event::End(e) => {
                let name = e.local_name().as_ref().to_string();
                if matches!(name.as_str(), "entry" | "item") {
                    if let Some(done) = current.take()
                        && entries.len() < MAX_ENTRIES
                    {
                        entries.push(done);
                    }
                } else {
                    field = None;
                }
            }
            Event::Text(t) => push_text(&mut current, field, &t.html_content()),
            Event::CData(t) => push_text(&mut current, field, &t.html_content()),
            Event::GeneralRef(r) => {
                let text = match r.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    _ => quick_xml::escape::resolve_predefined_entity(&r.html_content())
                        .unwrap_or("")
                        .to_string(),
                };
                push_text(&mut current, field, &text);
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if root.is_none() {
        return Err(FeedError::Empty);
    }
    Ok(entries)
}

fn local(e: &BytesStart<'_>) -> String {
    e.local_name().as_ref().to_string()
}

fn start(
    e: &BytesStart<'_>,
    current: &mut Option<Entry>,
    field: &mut Option<&'static str>,
    empty: bool,
) {
    let name = local(e);
    if matches!(name.as_str(), "entry" | "item") {
        *current = (!empty).then(Entry::default);
        return;
    }
    let Some(entry) = current.as_mut() else {
        return;
    };
    *field = match name.as_str() {
        "id" | "guid" => Some("id"),
        "title" => Some("title"),
        "link" => {
            let attr = |k: &str| {
                e.try_get_attribute(k)
                    .ok()
                    .flatten()
                    .and_then(|a| a.normalized_value(quick_xml::XmlVersion::Implicit1_0).ok())
                    .map(|v| v.into_owned())
            };
            match attr("href") {
                // Atom: the alternate link (or one without rel) is the page.
                Some(href) => {
                    let rel = attr("rel");
                    if entry.link.is_empty() && rel.as_deref().is_none_or(|r| r == "alternate") {
                        entry.link = href;
                    }
                    None
                }
                None => Some("link"),
            }
        }
        _ => None,
    };
    if empty {
        *field = None;
    }
}

/// Text is capped per field so a hostile feed cannot grow one string
/// without bound (the body itself is capped by the caller).
const MAX_FIELD: usize = 4096;

fn push_text(current: &mut Option<Entry>, field: Option<&'static str>, text: &str) {
    let (Some(entry), Some(field)) = (current.as_mut(), field) else {
        return;
    };
    let slot = match field {
        "id" => &mut entry.id,
        "title" => &mut entry.title,
        _ => &mut entry.link,
    };
    if slot.len() + text.len() <= MAX_FIELD {
        slot.push_str(text);
    }
}

/// The tag (or version text) an entry announces, by feed shape; `None` when
/// the entry does not say.
pub fn tag_of(entry: &Entry, shape: Shape) -> Option<String> {
    let (id, link) = (entry.id.trim(), entry.link.trim());
    let tag = match shape {
        Shape::GitHub => after(link, "/releases/tag/")
            .or_else(|| after(link, "/tree/"))
            .map(decode)
            .or_else(|| {
                let rest = id.strip_prefix("tag:github.com,2008:Repository/")?;
                rest.split_once('/').map(|(_, t)| t.to_string())
            }),
        Shape::GitLab => [id, link].into_iter().find_map(|s| {
            after(s, "/-/tags/")
                .or_else(|| after(s, "/-/releases/"))
                .map(decode)
        }),
        Shape::Generic => Some(entry.title.trim().to_string()),
    }?;
    (!tag.is_empty()).then_some(tag)
}

fn after<'a>(s: &'a str, marker: &str) -> Option<&'a str> {
    let (_, rest) = s.split_once(marker)?;
    Some(rest.split(['?', '#']).next().unwrap_or(rest))
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
#[path = "feed_tests.rs"]
mod tests;
