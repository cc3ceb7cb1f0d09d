//! Which repositories of a registry received which blobs, so a later push to
//! another repository can mount instead of uploading.
//!
//! Kept per registry host in `out/registry/<host>.json` as
//! `{"blobs": {"sha256:…": ["repo", …]}}`, written atomically after a push.
//! It is only a hint: a mount the registry refuses falls back to an upload.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::RegistryError;
use crate::oci::Digest;

/// The record for one registry.
#[derive(Debug, Clone, Default)]
pub struct MountState {
    path: PathBuf,
    blobs: BTreeMap<String, BTreeSet<String>>,
}

impl MountState {
    /// Load `dir/<host>.json` (empty when missing or unreadable).
    pub fn load(dir: &Path, host: &str) -> MountState {
        let safe: String = host
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let path = dir.join(format!("{safe}.json"));
        let blobs = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| serde_json::from_value(v.get("blobs")?.clone()).ok())
            .unwrap_or_default();
        MountState { path, blobs }
    }

    /// A repository other than `repo` known to hold `digest`.
    pub fn source_for(&self, digest: &Digest, repo: &str) -> Option<&str> {
        self.blobs
            .get(digest.as_str())?
            .iter()
            .find(|r| r.as_str() != repo)
            .map(String::as_str)
    }

    /// Record that `repo` holds `digest`.
    pub fn record(&mut self, digest: &Digest, repo: &str) {
        self.blobs
            .entry(digest.to_string())
            .or_default()
            .insert(repo.to_string());
    }

    /// Write the record atomically.
    pub fn save(&self) -> Result<(), RegistryError> {
        let io = |source| RegistryError::Io {
            what: "writing",
            path: self.path.clone(),
            source,
        };
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(io)?;
        let doc = serde_json::json!({ "blobs": self.blobs });
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
        tmp.write_all(&crate::oci::canonical_json(&doc))
            .map_err(io)?;
        tmp.as_file().sync_all().map_err(io)?;
        tmp.persist(&self.path).map_err(|e| io(e.error))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_save_load_and_source() {
        let tmp = tempfile::tempdir().unwrap();
        let d = Digest::of(b"a");
        let mut s = MountState::load(tmp.path(), "127.0.0.1:5000");
        assert!(s.source_for(&d, "x").is_none());
        s.record(&d, "forge/a");
        s.save().unwrap();
        assert!(tmp.path().join("127.0.0.1_5000.json").is_file());
        let s = MountState::load(tmp.path(), "127.0.0.1:5000");
        assert_eq!(s.source_for(&d, "forge/b"), Some("forge/a"));
        assert_eq!(s.source_for(&d, "forge/a"), None);
    }
}
