//! HTTP operations of the distribution API with auth and retries.
//!
//! Every request goes through [`Client::send`]: it adds the `Authorization`
//! header the registry asked for (Basic, or a Bearer token for the request's
//! scopes, fetched once and cached), answers one `401` by re-reading the
//! challenge, and retries transient failures (connection errors, 5xx, 429)
//! with exponential backoff when the operation is idempotent. Blob uploads
//! are retried one level up ([`super::push`]) because a failed upload needs
//! a new session.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::blocking::{RequestBuilder, Response};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};

use super::RegistryError;
use super::auth::{Challenge, Credentials, parse_challenge, realm_gets_credentials, redact};
use super::body::{MAX_ERROR_BODY, MAX_MANIFEST, MAX_TOKEN_REPLY, read_capped};
use crate::oci::Digest;

/// Accept header for manifest requests.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

/// How to reach a registry.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Plain HTTP instead of HTTPS.
    pub insecure: bool,
    /// Credentials (None: anonymous), for this registry's host only.
    pub credentials: Option<Credentials>,
    /// Hosts (`host[:port]`) outside the registry whose https token
    /// endpoints may receive the credentials.
    pub token_hosts: Vec<String>,
    /// Attempts per operation (first try included).
    pub attempts: u32,
    /// The first backoff delay; doubled per retry, capped at 4 s.
    pub backoff: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            insecure: false,
            credentials: None,
            token_hosts: Vec::new(),
            attempts: 8,
            backoff: Duration::from_millis(200),
        }
    }
}

#[derive(Debug, Clone)]
enum AuthState {
    Unknown,
    Anonymous,
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        /// Token and when to stop using it, per scope set.
        tokens: HashMap<String, (String, Instant)>,
    },
}

/// A client for one registry host.
#[derive(Debug)]
pub struct Client {
    pub(super) http: reqwest::blocking::Client,
    base: String,
    host: String,
    opts: ClientOptions,
    auth: Mutex<AuthState>,
    requests: AtomicU64,
}

/// Result of a mount attempt.
#[derive(Debug)]
pub enum Mount {
    /// The registry linked the blob (201).
    Mounted,
    /// The registry opened an upload session instead (202).
    Session(String),
}

fn backoff(opts: &ClientOptions, attempt: u32) -> Duration {
    let d = opts.backoff.saturating_mul(1u32 << attempt.min(10));
    d.min(Duration::from_secs(4))
}

impl Client {
    /// A client for `host[:port]`.
    pub fn new(host: &str, opts: ClientOptions) -> Result<Client, RegistryError> {
        let scheme = if opts.insecure { "http" } else { "https" };
        let http = crate::source::http::client_builder()
            .pool_max_idle_per_host(16)
            .build()
            .map_err(|source| RegistryError::Http {
                method: "building client for".into(),
                url: host.to_string(),
                source,
            })?;
        Ok(Client {
            http,
            base: format!("{scheme}://{host}"),
            host: host.to_string(),
            opts,
            auth: Mutex::new(AuthState::Unknown),
            requests: AtomicU64::new(0),
        })
    }

    /// `host[:port]`.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Requests sent so far (every attempt counts).
    pub fn request_count(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// The retry policy.
    pub fn options(&self) -> &ClientOptions {
        &self.opts
    }

    pub(super) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Resolve an upload `Location` (absolute or relative).
    pub(super) fn location(&self, loc: &str) -> String {
        if loc.starts_with("http://") || loc.starts_with("https://") {
            loc.to_string()
        } else if loc.starts_with('/') {
            self.url(loc)
        } else {
            self.url(&format!("/{loc}"))
        }
    }

    /// Whether `url` is on this registry (scheme, host and port).
    pub(super) fn same_origin(&self, url: &str) -> bool {
        url.strip_prefix(&self.base)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    }

    fn scrub(&self, text: &str) -> String {
        match &self.opts.credentials {
            Some(c) => redact(text, &[c.secret()]),
            None => text.to_string(),
        }
    }

    fn auth_header(&self, scopes: &[String]) -> Result<Option<String>, RegistryError> {
        let state = self.auth.lock().unwrap_or_else(|e| e.into_inner()).clone();
        match state {
            AuthState::Unknown | AuthState::Anonymous => Ok(None),
            AuthState::Basic => Ok(self
                .opts
                .credentials
                .as_ref()
                .map(Credentials::basic_header)),
            AuthState::Bearer {
                realm,
                service,
                tokens,
            } => {
                let key = scopes.join(" ");
                if let Some((t, until)) = tokens.get(&key)
                    && Instant::now() < *until
                {
                    return Ok(Some(format!("Bearer {t}")));
                }
                let (token, lifetime) = self.fetch_token(&realm, service.as_deref(), scopes)?;
                // Stop using a token a little before it expires.
                let until = Instant::now() + lifetime.saturating_sub(Duration::from_secs(5));
                if let AuthState::Bearer { tokens, .. } =
                    &mut *self.auth.lock().unwrap_or_else(|e| e.into_inner())
                {
                    tokens.insert(key, (token.clone(), until));
                }
                Ok(Some(format!("Bearer {token}")))
            }
        }
    }

    fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
    ) -> Result<(String, Duration), RegistryError> {
        let mut query: Vec<(&str, &str)> = Vec::new();
        if let Some(s) = service {
            query.push(("service", s));
        }
        for s in scopes {
            query.push(("scope", s));
        }
        let q: Vec<String> = query
            .iter()
            .map(|(k, v)| format!("{k}={}", query_escape(v)))
            .collect();
        let sep = if realm.contains('?') { '&' } else { '?' };
        let token_url = format!("{realm}{sep}{}", q.join("&"));
        let mut req = self.http.get(&token_url);
        if let Some(c) = &self.opts.credentials {
            if realm_gets_credentials(&self.base, realm, &self.opts.token_hosts) {
                req = req.header(AUTHORIZATION, c.basic_header());
            } else {
                tracing::warn!(
                    "token endpoint {realm} is not {} (and not an https host in {}): asking it for an anonymous token",
                    self.host,
                    super::auth::TOKEN_HOSTS_ENV
                );
            }
        }
        self.requests.fetch_add(1, Ordering::Relaxed);
        let err = |reason: String| RegistryError::Token {
            realm: realm.to_string(),
            reason,
        };
        let resp = req.send().map_err(|e| err(self.scrub(&e.to_string())))?;
        let status = resp.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(RegistryError::Unauthorized {
                host: self.host.clone(),
                what: scopes.join(" "),
                hint: self.auth_hint(),
            });
        }
        if !status.is_success() {
            return Err(err(format!("status {}", status.as_u16())));
        }
        let body = read_capped(resp, MAX_TOKEN_REPLY, "the token reply")?;
        let v: serde_json::Value = serde_json::from_slice(&body).map_err(|e| err(e.to_string()))?;
        let token = v
            .get("token")
            .or_else(|| v.get("access_token"))
            .and_then(|t| t.as_str())
            .map(str::to_string)
            .ok_or_else(|| err("no token in the reply".into()))?;
        // The token spec's default lifetime is 60 s; an untrusted lifetime
        // is held to 10 s ..= 1 h (a huge one would overflow `Instant`).
        let secs = v.get("expires_in").and_then(|e| e.as_u64()).unwrap_or(60);
        Ok((token, Duration::from_secs(secs.clamp(10, 3600))))
    }

    fn auth_hint(&self) -> String {
        match &self.opts.credentials {
            Some(c) => format!("the credentials of user `{}` were rejected", c.user),
            None => format!(
                "no credentials for {} (set {} and {}, or add it to the docker config.json)",
                self.host,
                super::auth::USER_ENV,
                super::auth::PASSWORD_ENV
            ),
        }
    }

    fn learn(&self, resp: &Response) -> bool {
        let Some(h) = resp
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
        else {
            return false;
        };
        let next = match parse_challenge(h) {
            Some(Challenge::Basic) => AuthState::Basic,
            Some(Challenge::Bearer { realm, service }) => AuthState::Bearer {
                realm,
                service,
                tokens: HashMap::new(),
            },
            None => return false,
        };
        let mut state = self.auth.lock().unwrap_or_else(|e| e.into_inner());
        let changed = match (&*state, &next) {
            (AuthState::Basic, AuthState::Basic) => false,
            // Same realm: drop cached tokens (expired or too narrow).
            _ => true,
        };
        *state = next;
        changed && (self.opts.credentials.is_some() || matches!(*state, AuthState::Bearer { .. }))
    }

    /// Send a request built by `make` (called again for each attempt).
    /// `retry`: retry transient failures here (idempotent operations).
    pub fn send(
        &self,
        method: &str,
        url: &str,
        scopes: &[String],
        retry: bool,
        make: &dyn Fn() -> RequestBuilder,
    ) -> Result<Response, RegistryError> {
        self.send_with(method, url, scopes, retry, &|| Ok(make()))
    }

    /// [`Client::send`] for a request whose making can fail (a body read
    /// from a file): that failure ends the operation as it is.
    pub fn send_with(
        &self,
        method: &str,
        url: &str,
        scopes: &[String],
        retry: bool,
        make: &dyn Fn() -> Result<RequestBuilder, RegistryError>,
    ) -> Result<Response, RegistryError> {
        let mut attempt = 0;
        let mut reauth = true;
        loop {
            let mut req = make()?;
            // Credentials and tokens go to the registry only, never to
            // another host an upload Location points at.
            if self.same_origin(url)
                && let Some(h) = self.auth_header(scopes)?
            {
                req = req.header(AUTHORIZATION, h);
            }
            self.requests.fetch_add(1, Ordering::Relaxed);
            tracing::debug!("{method} {url}");
            let mut wait = None;
            let e: RegistryError = match req.send() {
                Ok(resp) if resp.status() == StatusCode::UNAUTHORIZED => {
                    if reauth && self.learn(&resp) {
                        reauth = false;
                        continue;
                    }
                    return Err(RegistryError::Unauthorized {
                        host: self.host.clone(),
                        what: url.trim_start_matches(&self.base).to_string(),
                        hint: self.auth_hint(),
                    });
                }
                Ok(resp)
                    if resp.status().is_server_error()
                        || resp.status() == StatusCode::TOO_MANY_REQUESTS =>
                {
                    wait = retry_after(&resp);
                    status_error(method, url, resp)
                }
                Ok(resp) => return Ok(resp),
                Err(source) => RegistryError::Http {
                    method: method.to_string(),
                    url: url.to_string(),
                    source: source.without_url(),
                },
            };
            attempt += 1;
            if !retry || attempt >= self.opts.attempts {
                return Err(if retry {
                    RegistryError::GaveUp {
                        what: format!("{method} {url}"),
                        attempts: attempt,
                        source: Box::new(e),
                    }
                } else {
                    e
                });
            }
            tracing::debug!("retrying {method} {url}: {e}");
            std::thread::sleep(wait.unwrap_or_else(|| backoff(&self.opts, attempt - 1)));
        }
    }

    /// `GET /v2/`: learn the auth scheme (and check the registry answers).
    /// Tried at most 3 times: an address that refuses now is more likely
    /// wrong than restarting.
    pub fn ping(&self) -> Result<(), RegistryError> {
        let attempts = self.opts.attempts.min(3);
        let url = self.url("/v2/");
        let mut attempt = 0;
        let resp = loop {
            self.requests.fetch_add(1, Ordering::Relaxed);
            match self.http.get(&url).send() {
                Ok(r) if !r.status().is_server_error() => break r,
                Ok(r) if attempt + 1 >= attempts => {
                    return Err(status_error("GET", &url, r));
                }
                Err(source) if attempt + 1 >= attempts => {
                    return Err(RegistryError::Http {
                        method: "GET".into(),
                        url,
                        source: source.without_url(),
                    });
                }
                _ => {}
            }
            std::thread::sleep(backoff(&self.opts, attempt));
            attempt += 1;
        };
        if resp.status() == StatusCode::UNAUTHORIZED {
            self.learn(&resp);
        } else {
            *self.auth.lock().unwrap_or_else(|e| e.into_inner()) = AuthState::Anonymous;
        }
        Ok(())
    }

    /// The referrers of `subject` (an image index), or `None` when the
    /// registry has no referrers API (404).
    pub fn get_referrers(
        &self,
        repo: &str,
        subject: &Digest,
        scopes: &[String],
    ) -> Result<Option<serde_json::Value>, RegistryError> {
        let url = self.url(&format!("/v2/{repo}/referrers/{subject}"));
        let resp = self.send("GET", &url, scopes, true, &|| {
            self.http
                .get(&url)
                .header("Accept", crate::oci::MEDIA_INDEX)
        })?;
        match resp.status() {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED => return Ok(None),
            _ => return Err(status_error("GET", &url, resp)),
        }
        let body = read_capped(resp, MAX_MANIFEST, &format!("the referrers of {subject}"))?;
        serde_json::from_slice(&body)
            .map(Some)
            .map_err(|e| RegistryError::Invalid(format!("referrers of {subject}: {e}")))
    }

    /// The digest `reference` (tag or digest) resolves to in `repo`, if any.
    pub fn manifest_digest(
        &self,
        repo: &str,
        reference: &str,
        scopes: &[String],
    ) -> Result<Option<Digest>, RegistryError> {
        let url = self.url(&format!("/v2/{repo}/manifests/{reference}"));
        let resp = self.send("HEAD", &url, scopes, true, &|| {
            self.http.head(&url).header("Accept", MANIFEST_ACCEPT)
        })?;
        match resp.status() {
            StatusCode::OK => Ok(resp
                .headers()
                .get("Docker-Content-Digest")
                .and_then(|v| v.to_str().ok())
                .and_then(|d| Digest::parse(d).ok())),
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(status_error("HEAD", &url, resp)),
        }
    }

    /// Fetch a manifest: `(media type, bytes)`, `None` when absent. When
    /// `reference` is a digest the bytes are checked against it.
    pub fn get_manifest(
        &self,
        repo: &str,
        reference: &str,
        scopes: &[String],
    ) -> Result<Option<(String, Vec<u8>)>, RegistryError> {
        let url = self.url(&format!("/v2/{repo}/manifests/{reference}"));
        let resp = self.send("GET", &url, scopes, true, &|| {
            self.http.get(&url).header("Accept", MANIFEST_ACCEPT)
        })?;
        match resp.status() {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => return Ok(None),
            _ => return Err(status_error("GET", &url, resp)),
        }
        let mt = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let bytes = read_capped(resp, MAX_MANIFEST, &format!("manifest {repo}:{reference}"))?;
        if let Ok(d) = Digest::parse(reference)
            && Digest::of(&bytes) != d
        {
            return Err(RegistryError::DigestMismatch {
                what: format!("manifest {repo}@{reference}"),
                expected: d.to_string(),
                got: Digest::of(&bytes).to_string(),
            });
        }
        Ok(Some((mt, bytes)))
    }

    /// Store a manifest under `reference` (digest or tag); checks the digest
    /// the registry computed.
    pub fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
        scopes: &[String],
    ) -> Result<(), RegistryError> {
        let url = self.url(&format!("/v2/{repo}/manifests/{reference}"));
        let resp = self.send("PUT", &url, scopes, true, &|| {
            self.http
                .put(&url)
                .header(CONTENT_TYPE, media_type)
                .body(bytes.to_vec())
        })?;
        if resp.status() != StatusCode::CREATED {
            return Err(status_error("PUT", &url, resp));
        }
        let want = Digest::of(bytes);
        if let Some(got) = resp
            .headers()
            .get("Docker-Content-Digest")
            .and_then(|v| v.to_str().ok())
            && got != want.as_str()
        {
            return Err(RegistryError::DigestMismatch {
                what: format!("manifest {repo}:{reference} as stored"),
                expected: want.to_string(),
                got: got.to_string(),
            });
        }
        Ok(())
    }
}

/// A `Retry-After: <seconds>` delay, capped at 30 s.
fn retry_after(resp: &Response) -> Option<Duration> {
    let secs: u64 = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs.min(30)))
}

/// Percent-encode a query value (RFC 3986 unreserved characters kept).
fn query_escape(v: &str) -> String {
    let mut out = String::new();
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub(super) fn with_digest(session: &str, digest: &Digest) -> String {
    let sep = if session.contains('?') { '&' } else { '?' };
    format!("{session}{sep}digest={digest}")
}

/// Turn an unexpected reply into an error with the registry's error code.
pub fn status_error(method: &str, url: &str, resp: Response) -> RegistryError {
    let status = resp.status().as_u16();
    let body = read_capped(resp, MAX_ERROR_BODY, "an error reply")
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let detail = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| {
            let e = v.get("errors")?.get(0)?;
            Some(format!(
                ": {} {}",
                e.get("code")?.as_str()?,
                e.get("message").and_then(|m| m.as_str()).unwrap_or("")
            ))
        })
        .unwrap_or_default();
    RegistryError::Status {
        method: method.to_string(),
        url: strip_query_state(url),
        status,
        detail,
    }
}

/// Upload URLs carry opaque state in `_state=`; keep messages short.
fn strip_query_state(url: &str) -> String {
    match url.split_once("_state=") {
        Some((a, _)) => format!("{a}_state=…"),
        None => url.to_string(),
    }
}

#[cfg(test)]
#[path = "client_tests.rs"]
pub(crate) mod tests;
