//! Fetching feeds: concurrent (a fixed number of workers), conditional
//! (`If-None-Match`/`If-Modified-Since` from the last run's validators),
//! paced per host, bounded in time (connect and read timeouts), redirects
//! (at most [`MAX_REDIRECTS`]) and size (a body over the cap is refused while
//! streaming, so memory never holds more than the cap).
//!
//! The client is the source downloader's (`source::http::client_builder`:
//! same TLS roots and user agent) with the feed timeout and redirect limit.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::blocking::Client;
use reqwest::header::{ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED};

use super::state::FeedMemo;

/// The longest a `Retry-After` answer holds back a host's other feeds.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Redirects followed before a feed counts as a redirect loop.
pub const MAX_REDIRECTS: usize = 5;

/// How feeds are fetched.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// Connect and per-read timeout.
    pub timeout: Duration,
    /// The largest body accepted, in bytes.
    pub max_bytes: u64,
    /// The least time between two requests to one host.
    pub per_host_interval: Duration,
    /// Feeds fetched at once.
    pub workers: usize,
}

/// What a feed answered.
#[derive(Debug)]
pub enum Answer {
    /// A full body, with the validators to send next time.
    Body {
        /// The body (at most `max_bytes`).
        bytes: Vec<u8>,
        /// `ETag`.
        etag: Option<String>,
        /// `Last-Modified`.
        last_modified: Option<String>,
    },
    /// `304 Not Modified`: the remembered tags still hold.
    NotModified,
}

/// Why a feed could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// Connection, TLS, timeout or redirect failure.
    #[error("cannot fetch the feed")]
    Http(#[source] reqwest::Error),
    /// An error status.
    #[error("the feed answered HTTP {status}{}", retry.as_ref().map(|r| format!(" (Retry-After: {r})")).unwrap_or_default())]
    Status {
        /// The status code.
        status: u16,
        /// The server's `Retry-After`, if any.
        retry: Option<String>,
    },
    /// The body is over the cap.
    #[error("the feed is larger than {limit} bytes; refused")]
    TooLarge {
        /// The cap.
        limit: u64,
    },
    /// Reading the body failed.
    #[error("reading the feed")]
    Read(#[source] std::io::Error),
}

/// The feed client.
pub fn client(opts: &FetchOptions) -> Result<Client, FetchError> {
    crate::source::http::client_builder()
        .connect_timeout(opts.timeout)
        .timeout(opts.timeout)
        .redirect(reqwest::redirect::Policy::limited(MAX_REDIRECTS))
        .build()
        .map_err(FetchError::Http)
}

/// Paces requests per host.
#[derive(Debug, Default)]
pub struct Limiter {
    interval: Duration,
    next: Mutex<HashMap<String, Instant>>,
}

impl Limiter {
    /// At most one request per `interval` to each host.
    pub fn new(interval: Duration) -> Limiter {
        Limiter {
            interval,
            next: Mutex::new(HashMap::new()),
        }
    }

    /// Push this host's next slot `delay` away (a `Retry-After` answer),
    /// capped at [`MAX_BACKOFF`].
    pub fn defer(&self, url: &str, delay: Duration) {
        let until = Instant::now() + delay.min(MAX_BACKOFF);
        let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        let slot = next.entry(host_of(url)).or_insert(until);
        *slot = (*slot).max(until);
    }

    /// Wait for this host's next slot.
    pub fn wait(&self, url: &str) {
        let host = host_of(url);
        let now = Instant::now();
        let slot = {
            let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
            let slot = next.get(&host).copied().unwrap_or(now).max(now);
            next.insert(host, slot + self.interval);
            slot
        };
        std::thread::sleep(slot.saturating_duration_since(now));
    }
}

/// `host[:port]` of a URL (what the rate limit is per).
pub fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split(['/', '?', '#']).next().unwrap_or("").to_string()
}

/// Fetch one feed, conditionally when `memo` has validators.
pub fn fetch(
    client: &Client,
    url: &str,
    memo: Option<&FeedMemo>,
    max_bytes: u64,
) -> Result<Answer, FetchError> {
    let mut req = client.get(url);
    if let Some(m) = memo {
        if let Some(e) = &m.etag {
            req = req.header(IF_NONE_MATCH, e);
        }
        if let Some(l) = &m.last_modified {
            req = req.header(IF_MODIFIED_SINCE, l);
        }
    }
    let resp = req.send().map_err(FetchError::Http)?;
    let status = resp.status();
    if status == StatusCode::NOT_MODIFIED && memo.is_some() {
        return Ok(Answer::NotModified);
    }
    let header = |name| {
        resp.headers()
            .get(name)
            .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
            .map(str::to_string)
    };
    if !status.is_success() {
        return Err(FetchError::Status {
            status: status.as_u16(),
            retry: header(reqwest::header::RETRY_AFTER),
        });
    }
    if resp.content_length().is_some_and(|n| n > max_bytes) {
        return Err(FetchError::TooLarge { limit: max_bytes });
    }
    let (etag, last_modified) = (header(ETAG), header(LAST_MODIFIED));
    let mut bytes = Vec::new();
    resp.take(max_bytes + 1)
        .read_to_end(&mut bytes)
        .map_err(FetchError::Read)?;
    if bytes.len() as u64 > max_bytes {
        return Err(FetchError::TooLarge { limit: max_bytes });
    }
    Ok(Answer::Body {
        bytes,
        etag,
        last_modified,
    })
}

/// Fetch every URL with `opts.workers` workers; each result stands alone.
pub fn fetch_all(
    urls: &[String],
    memos: &BTreeMap<String, FeedMemo>,
    opts: &FetchOptions,
) -> BTreeMap<String, Result<Answer, FetchError>> {
    let client = match client(opts) {
        Ok(c) => c,
        Err(e) => {
            let text = crate::util::error_chain(&e);
            return urls
                .iter()
                .map(|u| {
                    let err = std::io::Error::other(text.clone());
                    (u.clone(), Err(FetchError::Read(err)))
                })
                .collect();
        }
    };
    let limiter = Limiter::new(opts.per_host_interval);
    let next = AtomicUsize::new(0);
    let results = Mutex::new(BTreeMap::new());
    std::thread::scope(|s| {
        for _ in 0..opts.workers.clamp(1, urls.len().max(1)) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(url) = urls.get(i) else { break };
                    limiter.wait(url);
                    let r = fetch(&client, url, memos.get(url), opts.max_bytes);
                    // A host that asks to be left alone is, for its other feeds.
                    if let Err(FetchError::Status {
                        retry: Some(after), ..
                    }) = &r
                        && let Ok(secs) = after.trim().parse::<u64>()
                    {
                        limiter.defer(url, Duration::from_secs(secs));
                    }
                    results
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(url.clone(), r);
                }
            });
        }
    });
    results.into_inner().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_pacing() {
        assert_eq!(
            host_of("https://github.com/a/b/releases.atom"),
            "github.com"
        );
        assert_eq!(host_of("http://127.0.0.1:8080/x?y"), "127.0.0.1:8080");
        let l = Limiter::new(Duration::from_millis(50));
        let t = Instant::now();
        for _ in 0..3 {
            l.wait("http://h/x");
        }
        l.wait("http://other/x");
        let took = t.elapsed();
        assert!(took >= Duration::from_millis(100), "{took:?}");
        assert!(took < Duration::from_millis(1000), "{took:?}");
        // Retry-After defers the host's next slot; other hosts are not held.
        let l = Limiter::new(Duration::ZERO);
        l.defer("http://busy/x", Duration::from_millis(300));
        let t = Instant::now();
        l.wait("http://idle/x");
        assert!(t.elapsed() < Duration::from_millis(200));
        l.wait("http://busy/y");
        assert!(
            t.elapsed() >= Duration::from_millis(250),
            "{:?}",
            t.elapsed()
        );
    }
}
