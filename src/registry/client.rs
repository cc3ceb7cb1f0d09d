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
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::blocking::{Body, RequestBuilder, Response};
use reqwest::header::{
    AUTHORIZATION, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LOCATION, WWW_AUTHENTICATE,
};

use super::RegistryError;
use super::auth::{Challenge, Credentials, parse_challenge, redact};
use crate::oci::Digest;

/// Accept header for manifest requests.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

/// How to reach a registry.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Plain HTTP instead of HTTPS.
    pub insecure: bool,
    /// Credentials (None: anonymous).
    pub credentials: Option<Credentials>,
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
        tokens: HashMap<String, String>,
    },
}

/// A client for one registry host.
#[derive(Debug)]
pub struct Client {
    http: reqwest::blocking::Client,
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

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Resolve an upload `Location` (absolute or relative).
    fn location(&self, loc: &str) -> String {
        if loc.starts_with("http://") || loc.starts_with("https://") {
            loc.to_string()
        } else if loc.starts_with('/') {
            self.url(loc)
        } else {
            self.url(&format!("/{loc}"))
        }
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
                if let Some(t) = tokens.get(&key) {
                    return Ok(Some(format!("Bearer {t}")));
                }
                let token = self.fetch_token(&realm, service.as_deref(), scopes)?;
                if let AuthState::Bearer { tokens, .. } =
                    &mut *self.auth.lock().unwrap_or_else(|e| e.into_inner())
                {
                    tokens.insert(key, token.clone());
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
    ) -> Result<String, RegistryError> {
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
            req = req.header(AUTHORIZATION, c.basic_header());
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
        let body = resp.bytes().map_err(|e| err(e.to_string()))?;
        let v: serde_json::Value = serde_json::from_slice(&body).map_err(|e| err(e.to_string()))?;
        v.get("token")
            .or_else(|| v.get("access_token"))
            .and_then(|t| t.as_str())
            .map(str::to_string)
            .ok_or_else(|| err("no token in the reply".into()))
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
        let mut attempt = 0;
        let mut reauth = true;
        loop {
            let mut req = make();
            if let Some(h) = self.auth_header(scopes)? {
                req = req.header(AUTHORIZATION, h);
            }
            self.requests.fetch_add(1, Ordering::Relaxed);
            tracing::debug!("{method} {url}");
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
            std::thread::sleep(backoff(&self.opts, attempt - 1));
        }
    }

    /// `GET /v2/`: learn the auth scheme (and check the registry answers).
    pub fn ping(&self) -> Result<(), RegistryError> {
        let url = self.url("/v2/");
        self.requests.fetch_add(1, Ordering::Relaxed);
        let mut attempt = 0;
        let resp = loop {
            match self.http.get(&url).send() {
                Ok(r) if !r.status().is_server_error() => break r,
                Ok(r) if attempt + 1 >= self.opts.attempts => {
                    return Err(status_error("GET", &url, r));
                }
                Err(source) if attempt + 1 >= self.opts.attempts => {
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

    /// Whether `repo` has blob `digest`.
    pub fn blob_exists(
        &self,
        repo: &str,
        digest: &Digest,
        scopes: &[String],
    ) -> Result<bool, RegistryError> {
        let url = self.url(&format!("/v2/{repo}/blobs/{digest}"));
        let resp = self.send("HEAD", &url, scopes, true, &|| self.http.head(&url))?;
        match resp.status() {
            StatusCode::OK => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(status_error("HEAD", &url, resp)),
        }
    }

    /// Try a cross-repository mount of `digest` from `from` into `repo`.
    pub fn mount(
        &self,
        repo: &str,
        digest: &Digest,
        from: &str,
        scopes: &[String],
    ) -> Result<Mount, RegistryError> {
        let url = self.url(&format!(
            "/v2/{repo}/blobs/uploads/?mount={digest}&from={from}"
        ));
        let resp = self.send("POST", &url, scopes, false, &|| {
            self.http.post(&url).header(CONTENT_LENGTH, 0)
        })?;
        match resp.status() {
            StatusCode::CREATED => Ok(Mount::Mounted),
            StatusCode::ACCEPTED => Ok(Mount::Session(self.location_of(&resp, &url)?)),
            _ => Err(status_error("POST", &url, resp)),
        }
    }

    fn location_of(&self, resp: &Response, url: &str) -> Result<String, RegistryError> {
        resp.headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(|l| self.location(l))
            .ok_or_else(|| {
                RegistryError::Invalid(format!("no Location in the reply to POST {url}"))
            })
    }

    /// Open an upload session; returns its absolute URL.
    pub fn start_upload(&self, repo: &str, scopes: &[String]) -> Result<String, RegistryError> {
        let url = self.url(&format!("/v2/{repo}/blobs/uploads/"));
        let resp = self.send("POST", &url, scopes, false, &|| {
            self.http.post(&url).header(CONTENT_LENGTH, 0)
        })?;
        if resp.status() != StatusCode::ACCEPTED {
            return Err(status_error("POST", &url, resp));
        }
        self.location_of(&resp, &url)
    }

    /// Finish `session` with the whole blob in one `PUT`.
    pub fn put_blob(
        &self,
        session: &str,
        digest: &Digest,
        size: u64,
        body: &dyn Fn() -> Body,
        scopes: &[String],
    ) -> Result<(), RegistryError> {
        let url = with_digest(session, digest);
        let resp = self.send("PUT", &url, scopes, false, &|| {
            let b = body();
            self.http
                .put(&url)
                .header(CONTENT_TYPE, "application/octet-stream")
                .header(CONTENT_LENGTH, size)
                .body(b)
        })?;
        if resp.status() != StatusCode::CREATED {
            return Err(status_error("PUT", &url, resp));
        }
        Ok(())
    }

    /// Upload `bytes` into `session` as `PATCH` chunks of `chunk` bytes, then
    /// finish with an empty `PUT`.
    pub fn put_blob_chunked(
        &self,
        session: &str,
        digest: &Digest,
        read_chunk: &mut dyn FnMut(u64, usize) -> Result<Vec<u8>, RegistryError>,
        size: u64,
        chunk: u64,
        scopes: &[String],
    ) -> Result<(), RegistryError> {
        let mut loc = session.to_string();
        let mut offset = 0u64;
        while offset < size {
            let n = chunk.min(size - offset);
            let data = read_chunk(offset, n as usize)?;
            let end = offset + n - 1;
            let url = loc.clone();
            let resp = self.send("PATCH", &url, scopes, false, &|| {
                let d = data.clone();
                self.http
                    .patch(&url)
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .header(CONTENT_RANGE, format!("{offset}-{end}"))
                    .header(CONTENT_LENGTH, n)
                    .body(d)
            })?;
            if resp.status() != StatusCode::ACCEPTED {
                return Err(status_error("PATCH", &url, resp));
            }
            loc = self.location_of(&resp, &url)?;
            offset += n;
        }
        let url = with_digest(&loc, digest);
        let resp = self.send("PUT", &url, scopes, false, &|| {
            self.http.put(&url).header(CONTENT_LENGTH, 0)
        })?;
        if resp.status() != StatusCode::CREATED {
            return Err(status_error("PUT", &url, resp));
        }
        Ok(())
    }

    /// Cancel an upload session (best effort).
    pub fn cancel_upload(&self, session: &str, scopes: &[String]) {
        let _ = self.send("DELETE", session, scopes, false, &|| {
            self.http.delete(session)
        });
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
        let bytes = resp.bytes().map_err(|source| RegistryError::Http {
            method: "GET".into(),
            url: url.clone(),
            source,
        })?;
        if let Ok(d) = Digest::parse(reference)
            && Digest::of(&bytes) != d
        {
            return Err(RegistryError::DigestMismatch {
                what: format!("manifest {repo}@{reference}"),
                expected: d.to_string(),
                got: Digest::of(&bytes).to_string(),
            });
        }
        Ok(Some((mt, bytes.to_vec())))
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

    /// Fetch a blob into memory, checking its digest.
    pub fn get_blob(
        &self,
        repo: &str,
        digest: &Digest,
        scopes: &[String],
    ) -> Result<Vec<u8>, RegistryError> {
        let mut out = Vec::new();
        self.get_blob_to(repo, digest, scopes, &mut out)?;
        Ok(out)
    }

    /// Stream a blob into `w`, checking its digest.
    pub fn get_blob_to(
        &self,
        repo: &str,
        digest: &Digest,
        scopes: &[String],
        w: &mut dyn std::io::Write,
    ) -> Result<u64, RegistryError> {
        use sha2::Digest as _;
        let url = self.url(&format!("/v2/{repo}/blobs/{digest}"));
        let mut resp = self.send("GET", &url, scopes, true, &|| self.http.get(&url))?;
        match resp.status() {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => {
                return Err(RegistryError::NotFound(format!("blob {repo}@{digest}")));
            }
            _ => return Err(status_error("GET", &url, resp)),
        }
        let mut hasher = sha2::Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut n = 0u64;
        loop {
            let k =
                std::io::Read::read(&mut resp, &mut buf).map_err(|source| RegistryError::Io {
                    what: "reading blob from",
                    path: url.clone().into(),
                    source,
                })?;
            if k == 0 {
                break;
            }
            hasher.update(&buf[..k]);
            w.write_all(&buf[..k]).map_err(|source| RegistryError::Io {
                what: "writing blob",
                path: digest.hex().into(),
                source,
            })?;
            n += k as u64;
        }
        let got = Digest::from_sha256(hasher.finalize().into());
        if got != *digest {
            return Err(RegistryError::DigestMismatch {
                what: format!("blob {repo}@{digest}"),
                expected: digest.to_string(),
                got: got.to_string(),
            });
        }
        Ok(n)
    }
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

fn with_digest(session: &str, digest: &Digest) -> String {
    let sep = if session.contains('?') { '&' } else { '?' };
    format!("{session}{sep}digest={digest}")
}

/// Turn an unexpected reply into an error with the registry's error code.
pub fn status_error(method: &str, url: &str, resp: Response) -> RegistryError {
    let status = resp.status().as_u16();
    let body = resp.text().unwrap_or_default();
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
mod tests {
    use super::*;

    #[test]
    fn locations_and_digest_param() {
        let c = Client::new(
            "127.0.0.1:9",
            ClientOptions {
                insecure: true,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(
            c.location("/v2/a/blobs/uploads/u?_state=x"),
            "http://127.0.0.1:9/v2/a/blobs/uploads/u?_state=x"
        );
        assert_eq!(c.location("https://o.example/u"), "https://o.example/u");
        let d = Digest::of(b"");
        assert_eq!(
            with_digest("http://h/u", &d),
            format!("http://h/u?digest={d}")
        );
        assert_eq!(
            with_digest("http://h/u?_state=1", &d),
            format!("http://h/u?_state=1&digest={d}")
        );
        assert_eq!(
            query_escape("repository:a/b:pull,push"),
            "repository%3Aa%2Fb%3Apull%2Cpush"
        );
        assert_eq!(
            strip_query_state("http://h/u?_state=abc&digest=x"),
            "http://h/u?_state=…"
        );
        let b: Vec<u64> = (0..8)
            .map(|a| backoff(&ClientOptions::default(), a).as_millis() as u64)
            .collect();
        assert_eq!(b, vec![200, 400, 800, 1600, 3200, 4000, 4000, 4000]);
    }

    /// A tiny registry stand-in: answers `GET /v2/` and blob `HEAD`s with a
    /// Bearer challenge unless the token is presented, and serves tokens for
    /// Basic `u:p` at `/token`. Records every request line and auth header.
    fn bearer_server() -> (String, std::sync::Arc<Mutex<Vec<String>>>) {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let log = std::sync::Arc::new(Mutex::new(Vec::new()));
        let (h, l) = (host.clone(), log.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let mut stream = stream.unwrap();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let mut auth = String::new();
                loop {
                    let mut hl = String::new();
                    reader.read_line(&mut hl).unwrap();
                    if hl.trim().is_empty() {
                        break;
                    }
                    if let Some(v) = hl
                        .strip_prefix("authorization: ")
                        .or_else(|| hl.strip_prefix("Authorization: "))
                    {
                        auth = v.trim().to_string();
                    }
                }
                l.lock().unwrap().push(format!("{} | {auth}", line.trim()));
                let basic = format!(
                    "Basic {}",
                    base64::Engine::encode(&base64::engine::general_purpose::STANDARD, "u:p")
                );
                let (status, extra, body) = if line.starts_with("GET /token?") {
                    if auth == basic && line.contains("scope=repository%3Aa%2Fb%3Apull%2Cpush") {
                        (
                            "200 OK",
                            String::new(),
                            r#"{"token":"tok-123","expires_in":300}"#,
                        )
                    } else {
                        ("401 Unauthorized", String::new(), "")
                    }
                } else if auth == "Bearer tok-123" {
                    ("200 OK", String::new(), "")
                } else {
                    (
                        "401 Unauthorized",
                        format!(
                            "WWW-Authenticate: Bearer realm=\"http://{h}/token\",service=\"test\"\r\n"
                        ),
                        "",
                    )
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        (host, log)
    }

    #[test]
    fn bearer_token_flow_with_basic_credentials() {
        let (host, log) = bearer_server();
        let opts = |creds: Option<Credentials>| ClientOptions {
            insecure: true,
            credentials: creds,
            attempts: 1,
            ..Default::default()
        };
        let c = Client::new(&host, opts(Some(Credentials::new("u", "p")))).unwrap();
        c.ping().unwrap();
        let scopes = vec!["repository:a/b:pull,push".to_string()];
        assert!(c.blob_exists("a/b", &Digest::of(b""), &scopes).unwrap());
        // The token is cached: a second request fetches none.
        assert!(c.blob_exists("a/b", &Digest::of(b""), &scopes).unwrap());
        let lines = log.lock().unwrap().clone();
        assert_eq!(
            lines
                .iter()
                .filter(|l| l.starts_with("GET /token?"))
                .count(),
            1,
            "{lines:#?}"
        );
        assert!(
            lines.iter().any(|l| l.contains("service=test")),
            "{lines:#?}"
        );
        assert!(
            lines
                .iter()
                .filter(|l| l.starts_with("HEAD"))
                .all(|l| l.ends_with("Bearer tok-123"))
        );
        // Anonymous: the token endpoint refuses, and the error says why.
        let c = Client::new(&host, opts(None)).unwrap();
        c.ping().unwrap();
        let err = c.blob_exists("a/b", &Digest::of(b""), &scopes).unwrap_err();
        assert!(matches!(err, RegistryError::Unauthorized { .. }), "{err}");
        assert!(err.to_string().contains("no credentials"), "{err}");
    }

    #[test]
    fn connection_errors_are_retried_then_reported() {
        let opts = ClientOptions {
            insecure: true,
            attempts: 3,
            backoff: Duration::from_millis(1),
            ..Default::default()
        };
        let c = Client::new("127.0.0.1:9", opts).unwrap();
        let err = c.blob_exists("a", &Digest::of(b""), &[]).unwrap_err();
        assert!(
            matches!(err, RegistryError::GaveUp { attempts: 3, .. }),
            "{err}"
        );
        assert_eq!(c.request_count(), 3);
    }
}
