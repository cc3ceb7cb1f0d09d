//! The registry-backed build cache (`forge build --cache oci://HOST/REPO`).
//!
//! Runners that share no folder share a registry: after a package unit
//! builds, its packages go to the registry as one signed entry tagged by
//! the unit key ([`entry`]); before a dirty unit builds, forge looks its key
//! up and, on a hit, uses the entry instead of building.
//!
//! Nothing the registry returns is trusted (`remote`): the manifest and
//! config are read under size caps, the config's signature must verify
//! against the trusted keys (`keys/*.rsa.pub`) before any package is
//! downloaded, the layers must be exactly the signed list, every blob is
//! held to its digest and size while it streams, and every package then
//! goes through the one verified reader ([`crate::apk::VerifiedPackage`])
//! before the pipeline admits it into the repository as a build would. A
//! refused entry (unsigned, tampered, for another unit) is a warning and a
//! rebuild, never a failure.
//!
//! Pushes are safe to race: blobs are content-addressed, the manifest goes
//! up after every blob and the tag last, so a reader never sees a tag
//! naming missing blobs; and the same key gives the same bytes (reproducible
//! packages, canonical JSON, deterministic RSA signatures), so two runners
//! pushing one key store one entry. A push killed part-way leaves only
//! unreferenced blobs, invisible to lookups.

pub mod entry;
mod remote;

use std::path::PathBuf;

pub use entry::{EntryConfig, Expected, tag_for};
pub use remote::{Fetched, describe};

use crate::registry::{Client, RegistryError};

/// A cache operation failed, or an entry was refused.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// `--cache` is not `oci://HOST[:PORT]/REPO`.
    #[error(
        "cache `{0}`: expected oci://HOST[:PORT]/REPOSITORY (oci+http:// for a plain-HTTP registry)"
    )]
    BadUrl(String),
    /// A unit key that is not 64 lowercase hex digits.
    #[error("unit key `{0}` is not 64 hex digits")]
    BadKey(String),
    /// The registry failed or refused.
    #[error("{what}")]
    Registry {
        /// What was being done.
        what: String,
        /// The cause.
        #[source]
        source: RegistryError,
    },
    /// The entry carries no signature.
    #[error("the entry is not signed")]
    Unsigned,
    /// The entry failed a check.
    #[error("{0}")]
    Refused(String),
    /// A package of the entry failed verification.
    #[error("package {file}")]
    Package {
        /// The package file name.
        file: String,
        /// Why.
        #[source]
        source: crate::apk::PackageError,
    },
    /// A signature could not be made.
    #[error(transparent)]
    Sign(#[from] crate::sign::SignError),
    /// A local file operation failed.
    #[error("{what} {}", path.display())]
    Io {
        /// `writing`, `reading`, …
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

fn registry_err(what: impl Into<String>) -> impl FnOnce(RegistryError) -> CacheError {
    let what = what.into();
    move |source| CacheError::Registry { what, source }
}

/// Where the cache lives: a registry host and one repository in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheUrl {
    /// `host[:port]`.
    pub host: String,
    /// The repository, e.g. `forge/cache`.
    pub repository: String,
    /// Plain HTTP (`oci+http://`).
    pub insecure: bool,
}

impl CacheUrl {
    /// Parse `oci://HOST[:PORT]/REPO` or `oci+http://HOST[:PORT]/REPO`.
    pub fn parse(url: &str) -> Result<CacheUrl, CacheError> {
        let bad = || CacheError::BadUrl(url.to_string());
        let (insecure, rest) = match url.split_once("://") {
            Some(("oci", rest)) => (false, rest),
            Some(("oci+http", rest)) => (true, rest),
            _ => return Err(bad()),
        };
        let (host, repository) = rest.split_once('/').ok_or_else(bad)?;
        let host_ok = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b));
        if !host_ok || !crate::registry::reference::valid_repository(repository) {
            return Err(bad());
        }
        Ok(CacheUrl {
            host: host.to_string(),
            repository: repository.to_string(),
            insecure,
        })
    }
}

impl std::fmt::Display for CacheUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.insecure { "oci+http" } else { "oci" };
        write!(f, "{scheme}://{}/{}", self.host, self.repository)
    }
}

/// An open cache: a registry client and the repository entries live in.
#[derive(Debug)]
pub struct Cache {
    url: CacheUrl,
    client: Client,
}

impl Cache {
    /// Connect to the cache's registry (credentials as for any push, see
    /// [`crate::registry::auth`]).
    pub fn open(shell: &crate::output::Shell, url: &CacheUrl) -> Result<Cache, CacheError> {
        let client = crate::registry::connect(shell, &url.host, url.insecure, true)
            .map_err(registry_err(format!("contacting the cache {url}")))?;
        Ok(Cache {
            url: url.clone(),
            client,
        })
    }

    /// Where it lives.
    pub fn url(&self) -> &CacheUrl {
        &self.url
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_urls() {
        let u = CacheUrl::parse("oci://reg.lan:5000/forge/cache").unwrap();
        assert_eq!(
            (u.host.as_str(), u.repository.as_str()),
            ("reg.lan:5000", "forge/cache")
        );
        assert!(!u.insecure);
        assert_eq!(u.to_string(), "oci://reg.lan:5000/forge/cache");
        assert!(
            CacheUrl::parse("oci+http://127.0.0.1:5000/c")
                .unwrap()
                .insecure
        );
        for bad in [
            "",
            "reg.lan/forge",
            "https://reg.lan/forge",
            "oci://reg.lan",
            "oci:///forge",
            "oci://reg.lan/Forge",
            "oci://reg lan/forge",
            "oci://reg.lan/forge:tag",
        ] {
            let err = CacheUrl::parse(bad).unwrap_err();
            assert!(
                err.to_string().contains("oci://HOST[:PORT]/REPOSITORY"),
                "{bad}"
            );
        }
    }
}
