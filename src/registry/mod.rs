//! An OCI distribution client: push image layouts and artifacts to a
//! registry, pull them back.
//!
//! Flow of a push ([`push::push`]), prepare then upload:
//!
//! 1. [`plan::Plan`]: every blob, every manifest (children before parents)
//!    and every tag, read from an OCI layout ([`plan::plan_layout`]) or made
//!    in memory (signatures, the package repository artifact).
//! 2. `HEAD` every blob in parallel; the ones the registry lacks are
//!    mounted from another repository of the same registry that
//!    [`state::MountState`] says holds them, or uploaded (`POST` + one `PUT`,
//!    chunked `PATCH` as a fallback) by a few threads, each blob retried from
//!    a fresh session with exponential backoff when the connection drops or
//!    the registry answers 5xx.
//! 3. Manifests by digest (skipped when present), then tags, last, so a tag
//!    never names a manifest whose blobs are not all stored.
//!
//! [`client::Client`] holds the HTTP client, the auth state (anonymous,
//! Basic, Bearer tokens per scope, see [`auth`]) and the retry policy.

pub mod artifact;
pub mod auth;
mod blobs;
pub mod body;
pub mod client;
pub mod plan;
pub mod publish;
pub mod push;
pub mod reference;
pub mod referrers;
pub mod sign;
pub mod state;

use std::path::PathBuf;

pub use client::{Client, ClientOptions};
pub use reference::{Reference, Target};

/// What went wrong talking to a registry.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The request did not complete (connection refused, reset, timeout).
    #[error("{method} {url}")]
    Http {
        /// The method.
        method: String,
        /// The URL (never holds credentials).
        url: String,
        /// The cause.
        #[source]
        source: reqwest::Error,
    },
    /// The registry answered with an unexpected status.
    #[error("registry answered {status} to {method} {url}{detail}")]
    Status {
        /// The method.
        method: String,
        /// The URL.
        url: String,
        /// The HTTP status.
        status: u16,
        /// `: CODE message` from the error body, if any.
        detail: String,
    },
    /// The registry refused access.
    #[error("registry {host} refused access to {what} (401 unauthorized): {hint}")]
    Unauthorized {
        /// `host[:port]`.
        host: String,
        /// The repository or endpoint.
        what: String,
        /// What to do.
        hint: String,
    },
    /// The token endpoint failed.
    #[error("getting a token from {realm}: {reason}")]
    Token {
        /// The token endpoint (no credentials).
        realm: String,
        /// Why.
        reason: String,
    },
    /// Content did not match its digest.
    #[error("{what}: expected {expected}, got {got}")]
    DigestMismatch {
        /// What was checked.
        what: String,
        /// The expected digest.
        expected: String,
        /// The actual digest.
        got: String,
    },
    /// Retries ran out.
    #[error("{what}: gave up after {attempts} attempts")]
    GaveUp {
        /// The operation.
        what: String,
        /// How many attempts.
        attempts: u32,
        /// The last failure.
        #[source]
        source: Box<RegistryError>,
    },
    /// A file could not be read or written.
    #[error("{what} {}", path.display())]
    Io {
        /// `reading`, `writing`, …
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A reply was larger than forge accepts for what it holds.
    #[error("{what} is larger than the {limit} bytes forge accepts")]
    TooLarge {
        /// The document and where it came from.
        what: String,
        /// The cap in bytes.
        limit: u64,
    },
    /// A blob's length differs from its descriptor.
    #[error("{what}: expected {expected}, got {got}")]
    SizeMismatch {
        /// The blob.
        what: String,
        /// What the descriptor says.
        expected: String,
        /// What arrived.
        got: String,
    },
    /// A document is not what it should be.
    #[error("{0}")]
    Invalid(String),
    /// Something the registry does not have.
    #[error("{0} not found in the registry")]
    NotFound(String),
}

/// A client for `host` with the credentials given for it (see [`auth`]),
/// after a `GET /v2/` showed that it answers. `destination`: forge writes
/// to `host` on the user's behalf (publish, sign-image, the build cache), so
/// the environment's credentials default to it. The credentials' source is
/// named in verbose output, never the credentials.
pub fn connect(
    shell: &crate::output::Shell,
    host: &str,
    insecure: bool,
    destination: bool,
) -> Result<Client, RegistryError> {
    let env_host = auth::env_host(destination.then_some(host));
    let credentials = auth::Credentials::lookup(host, env_host.as_deref()).map(|(c, from)| {
        shell.verbose(format!("registry {host}: user `{}` from {from}", c.user));
        c
    });
    let client = Client::new(
        host,
        ClientOptions {
            insecure,
            credentials,
            token_hosts: auth::token_hosts_from_env(),
            ..ClientOptions::default()
        },
    )?;
    client.ping()?;
    Ok(client)
}

impl RegistryError {
    /// Whether retrying might help (connection failures, 5xx, 429).
    pub fn is_transient(&self) -> bool {
        match self {
            RegistryError::Http { .. } => true,
            RegistryError::Status { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }
}
