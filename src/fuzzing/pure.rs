//! Fuzz entry points for parsers that work on bytes in memory: recipes,
//! `APKINDEX` text and `WWW-Authenticate` headers.

use std::cmp::Ordering;
use std::path::Path;

use crate::apk::index::{self, IndexEntry};
use crate::registry::auth;
use crate::version::{self, Version};

/// A recipe file's text through the recipe parser and validator. Every error
/// must render (it maps byte spans to line:column), and a recipe that parses
/// must have a version that parses again and equals itself.
pub fn recipe(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let file = Path::new("/fuzz/recipes/hello/recipe.toml");
    match crate::recipe::parse::parse(file, "recipes/hello/recipe.toml", text) {
        Ok(r) => {
            let again = Version::parse(r.version.as_str()).expect("a parsed version parses again");
            assert_eq!(again.cmp(&r.version), Ordering::Equal);
        }
        Err(errors) => {
            for e in errors {
                let _ = e.to_string();
            }
        }
    }
}

/// `APKINDEX` text, or an unsigned `APKINDEX.tar.gz` (gzip magic), through
/// the index parser. A parsed index must render and parse back to the same
/// entries, and version order must be antisymmetric between neighbours.
pub fn apkindex(data: &[u8]) {
    let text = if data.starts_with(&[0x1f, 0x8b]) {
        let _ = index::Index::from_bytes(data, &crate::sign::TrustedKeys::new());
        match index::read_unsigned(data) {
            Ok((_, text)) => text,
            Err(_) => return,
        }
    } else {
        match std::str::from_utf8(data) {
            Ok(t) => t.to_string(),
            Err(_) => return,
        }
    };
    let Ok(entries) = index::parse(&text) else {
        return;
    };
    for pair in entries.windows(2) {
        let (a, b) = (&pair[0].version, &pair[1].version);
        assert_eq!(
            version::compare(a, b),
            version::compare(b, a).reverse(),
            "version order is not antisymmetric for {a:?} and {b:?}"
        );
    }
    let rendered = index::render(&entries);
    let reparsed = index::parse(&rendered).expect("a rendered index parses");
    let mut sorted: Vec<IndexEntry> = entries;
    sorted.sort_by(index::compare);
    assert_eq!(sorted, reparsed, "index render/parse round trip");
}

/// A `WWW-Authenticate` header value through the challenge parser, and the
/// same bytes as a docker `config.json` through the credential lookup.
pub fn auth(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = auth::parse_challenge(text);
    let host = text.lines().next().unwrap_or_default();
    let _ = auth::from_docker_config(text, host);
    let _ = auth::from_docker_config(text, "127.0.0.1:5000");
}
