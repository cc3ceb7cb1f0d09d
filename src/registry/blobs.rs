//! Blob operations of [`Client`]: existence, cross-repository mounts,
//! monolithic and chunked uploads, and digest-checked downloads.

use reqwest::StatusCode;
use reqwest::blocking::{Body, Response};
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LOCATION};

use super::RegistryError;
use super::body::{Expect, MAX_IN_MEMORY_BLOB, copy_checked};
use super::client::{Client, Mount, status_error, with_digest};
use crate::oci::Digest;

impl Client {
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

    pub(super) fn location_of(&self, resp: &Response, url: &str) -> Result<String, RegistryError> {
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

    /// Finish `session` with the whole blob in one `PUT`; `body` makes the
    /// body for each attempt (a file that cannot be opened is an error).
    pub fn put_blob(
        &self,
        session: &str,
        digest: &Digest,
        size: u64,
        body: &dyn Fn() -> Result<Body, RegistryError>,
        scopes: &[String],
    ) -> Result<(), RegistryError> {
        let url = with_digest(session, digest);
        let resp = self.send_with("PUT", &url, scopes, false, &|| {
            let b = body()?;
            Ok(self
                .http
                .put(&url)
                .header(CONTENT_TYPE, "application/octet-stream")
                .header(CONTENT_LENGTH, size)
                .body(b))
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

    /// Fetch a blob into memory, checking its digest; refused above
    /// [`MAX_IN_MEMORY_BLOB`] bytes.
    pub fn get_blob(
        &self,
        repo: &str,
        digest: &Digest,
        scopes: &[String],
    ) -> Result<Vec<u8>, RegistryError> {
        let mut out = Vec::new();
        self.fetch_blob(
            repo,
            digest,
            Expect::AtMost(MAX_IN_MEMORY_BLOB),
            scopes,
            &mut out,
        )?;
        Ok(out)
    }

    /// Stream a blob into `w`, holding it to `size` (its descriptor's) and
    /// `digest` while it streams; returns the bytes written. On an error
    /// `w` may hold part of the body: write into a temporary file.
    pub fn get_blob_to(
        &self,
        repo: &str,
        digest: &Digest,
        size: u64,
        scopes: &[String],
        w: &mut dyn std::io::Write,
    ) -> Result<u64, RegistryError> {
        self.fetch_blob(repo, digest, Expect::Exact(size), scopes, w)
    }

    fn fetch_blob(
        &self,
        repo: &str,
        digest: &Digest,
        expect: Expect,
        scopes: &[String],
        w: &mut dyn std::io::Write,
    ) -> Result<u64, RegistryError> {
        let url = self.url(&format!("/v2/{repo}/blobs/{digest}"));
        let resp = self.send("GET", &url, scopes, true, &|| self.http.get(&url))?;
        match resp.status() {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => {
                return Err(RegistryError::NotFound(format!("blob {repo}@{digest}")));
            }
            _ => return Err(status_error("GET", &url, resp)),
        }
        copy_checked(resp, digest, expect, &format!("blob {repo}@{digest}"), w)
    }
}
