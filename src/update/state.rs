//! What the last run learnt from each feed: its validators (`ETag`,
//! `Last-Modified`) for conditional requests, and the tags it listed, so a
//! `304 Not Modified` answer still yields the candidates.
//!
//! One JSON file, `<cache>/update/feeds.json`, keyed by feed URL, sorted,
//! written atomically (temporary file, fsync, rename). A missing or unreadable
//! file only costs full requests: it is never an error.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The state file's format version.
const FORMAT: u32 = 1;

/// What is remembered of one feed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedMemo {
    /// The `ETag` of the last full answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// The `Last-Modified` of the last full answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
    /// The tags the feed listed.
    pub tags: Vec<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct File {
    version: u32,
    feeds: BTreeMap<String, FeedMemo>,
}

/// The feed state of this cache.
#[derive(Debug, Default)]
pub struct State {
    path: PathBuf,
    /// Feed URL → memo.
    pub feeds: BTreeMap<String, FeedMemo>,
}

impl State {
    /// `<cache>/update/feeds.json`.
    pub fn path_in(cache: &Path) -> PathBuf {
        cache.join("update").join("feeds.json")
    }

    /// Load the state of `cache`; anything unreadable is an empty state.
    pub fn load(cache: &Path) -> State {
        let path = State::path_in(cache);
        let feeds = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<File>(&b).ok())
            .filter(|f| f.version == FORMAT)
            .map(|f| f.feeds)
            .unwrap_or_default();
        State { path, feeds }
    }

    /// Write the state atomically.
    pub fn save(&self) -> std::io::Result<()> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = File {
            version: FORMAT,
            feeds: self.feeds.clone(),
        };
        let mut bytes = serde_json::to_vec_pretty(&file).map_err(std::io::Error::other)?;
        bytes.push(b'\n');
        crate::util::write_atomic(&self.path, &bytes, Some(0o644))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_garbage_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = State::load(dir.path());
        assert!(s.feeds.is_empty());
        s.feeds.insert(
            "http://h/f".into(),
            FeedMemo {
                etag: Some("\"x\"".into()),
                last_modified: None,
                tags: vec!["v1".into()],
            },
        );
        s.save().unwrap();
        assert_eq!(State::load(dir.path()).feeds, s.feeds);
        std::fs::write(State::path_in(dir.path()), b"{not json").unwrap();
        assert!(State::load(dir.path()).feeds.is_empty());
    }
}
