//! The one error type of the source stage.
//!
//! Every variant names what a user needs to act on: the recipe, the URL, the
//! file and the digests involved. Causes travel in `#[source]` and are never
//! repeated in the message.

use std::path::PathBuf;

/// Why fetching, verifying or unpacking a source failed.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// A filesystem operation failed.
    #[error("{op} {}", path.display())]
    Io {
        /// What was being done (`reading`, `writing`, …).
        op: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Downloaded bytes do not match the recipe's checksum.
    #[error(
        "checksum mismatch for {url} (recipe {recipe})\n  expected: {expected}\n    actual: {actual}\n  the file was not stored in the cache"
    )]
    Mismatch {
        /// The recipe name.
        recipe: String,
        /// Where the bytes came from.
        url: String,
        /// The checksum written in the recipe (`sha256:<hex>`).
        expected: String,
        /// The checksum of the bytes received (`sha256:<hex>`).
        actual: String,
    },
    /// An http(s) download failed (connection, TLS, interrupted body).
    #[error("downloading {url}")]
    Download {
        /// The URL.
        url: String,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The server answered with an error status.
    #[error("downloading {url}: server answered {status}")]
    HttpStatus {
        /// The URL.
        url: String,
        /// The status code.
        status: u16,
    },
    /// Offline, and neither the cache nor a mirror has the file.
    #[error(
        "source {filename} of recipe {recipe} is not available offline\n  url: {url}\n  checksum: {checksum}\n  looked in:{}",
        looked.iter().map(|l| format!("\n    {l}")).collect::<String>()
    )]
    Offline {
        /// The recipe name.
        recipe: String,
        /// The upstream URL.
        url: String,
        /// The file name.
        filename: String,
        /// The expected checksum (`sha256:<hex>`).
        checksum: String,
        /// Every place that was tried, in order.
        looked: Vec<String>,
    },
    /// A git operation failed.
    #[error("git: {op} {url}")]
    Git {
        /// What was being done.
        op: &'static str,
        /// The repository URL.
        url: String,
        /// The cause.
        #[source]
        source: git2::Error,
    },
    /// The pinned commit is not in the repository.
    #[error("git source {url} of recipe {recipe}: commit {commit} not found{}", if *offline { " in the cache (offline)" } else { " after fetching" })]
    CommitMissing {
        /// The recipe name.
        recipe: String,
        /// The repository URL.
        url: String,
        /// The pinned commit.
        commit: String,
        /// Whether the run was offline (so nothing was fetched).
        offline: bool,
    },
    /// The recipe's tag points somewhere else than its commit.
    #[error(
        "git source {url} of recipe {recipe}: tag {tag} points at {actual}, but the recipe pins {expected}"
    )]
    TagMismatch {
        /// The recipe name.
        recipe: String,
        /// The repository URL.
        url: String,
        /// The tag.
        tag: String,
        /// The pinned commit.
        expected: String,
        /// Where the tag points.
        actual: String,
    },
    /// The recipe's tag does not exist in the repository.
    #[error("git source {url} of recipe {recipe}: tag {tag} not found")]
    TagMissing {
        /// The recipe name.
        recipe: String,
        /// The repository URL.
        url: String,
        /// The tag.
        tag: String,
    },
    /// This build of forge cannot talk to the repository's transport.
    #[error(
        "git source {url}: this forge was built without support for {scheme} git transport (file:// and local paths always work)"
    )]
    GitTransport {
        /// The repository URL.
        url: String,
        /// The URL scheme.
        scheme: String,
    },
    /// An archive entry would land outside the tree or is not allowed.
    #[error("refusing entry `{entry}` of {}: {reason}", archive.display())]
    UnsafeEntry {
        /// The archive (or repository) being unpacked.
        archive: PathBuf,
        /// The entry path as written in the archive.
        entry: String,
        /// Why it is refused.
        reason: String,
    },
    /// An archive is corrupt or unreadable.
    #[error("unpacking {}", archive.display())]
    Archive {
        /// The archive.
        archive: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is marked for extraction but is not a known archive format.
    #[error(
        "{} of recipe {recipe} is marked for extraction but is not a tar, compressed tar or zip archive",
        filename
    )]
    UnknownFormat {
        /// The recipe name.
        recipe: String,
        /// The file name.
        filename: String,
    },
    /// A local source is missing or points outside the recipe folder.
    #[error("local source `{path}` of recipe {recipe}: {reason}")]
    Local {
        /// The recipe name.
        recipe: String,
        /// The path as written in the recipe.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The build folder does not exist after the sources were laid out.
    #[error("recipe {recipe}: builddir `{}` is not a folder in $srcdir after unpacking{}", builddir.display(), if found.is_empty() { String::new() } else { format!(" (top level holds: {})", found.join(", ")) })]
    NoBuilddir {
        /// The recipe name.
        recipe: String,
        /// The build folder, relative to `$srcdir`.
        builddir: PathBuf,
        /// What the top level of `$srcdir` holds, sorted.
        found: Vec<String>,
    },
    /// Two sources would be placed at the same path in `$srcdir`.
    #[error("recipe {recipe}: {} is written by more than one source", path.display())]
    Collision {
        /// The recipe name.
        recipe: String,
        /// The path under `$srcdir`.
        path: PathBuf,
    },
}

impl SourceError {
    /// Wrap an I/O error with the operation and path.
    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> SourceError {
        let path = path.into();
        move |source| SourceError::Io { op, path, source }
    }
}
