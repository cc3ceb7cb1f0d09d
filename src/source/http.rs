//! The http(s) client: one blocking reqwest client per process, rustls with
//! the ring provider and the webpki root certificates (no system trust store,
//! so a download verifies the same way on every host).

use std::sync::OnceLock;
use std::time::Duration;

use reqwest::blocking::{Client, Response};

use super::SourceError;

static CLIENT: OnceLock<Client> = OnceLock::new();

fn build() -> Result<Client, reqwest::Error> {
    client_builder().build()
}

/// A client builder with forge's TLS set-up (rustls, ring, webpki roots),
/// user agent and timeouts; the registry client adds its own settings.
pub(crate) fn client_builder() -> reqwest::blocking::ClientBuilder {
    // Another part of the process may have installed a provider already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let mut tls = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    Client::builder()
        .tls_backend_preconfigured(tls)
        .user_agent(concat!("forge/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(30))
        // The blocking client applies this to the request and to every
        // single read of the body, so it bounds stalls, not download time.
        .timeout(Duration::from_secs(120))
}

fn client(url: &str) -> Result<&'static Client, SourceError> {
    if let Some(c) = CLIENT.get() {
        return Ok(c);
    }
    let c = build().map_err(|e| SourceError::Download {
        url: url.to_string(),
        source: Box::new(e),
    })?;
    Ok(CLIENT.get_or_init(|| c))
}

/// GET `url`. `Ok(None)` means the server has no such file (404/410), which
/// is an ordinary miss for a mirror; other error statuses are errors.
pub(crate) fn get(url: &str) -> Result<Option<Response>, SourceError> {
    let resp = client(url)?
        .get(url)
        .send()
        .map_err(|e| SourceError::Download {
            url: url.to_string(),
            source: Box::new(e),
        })?;
    let status = resp.status();
    if status == reqwest::StatusCode::NOT_FOUND || status == reqwest::StatusCode::GONE {
        return Ok(None);
    }
    if !status.is_success() {
        return Err(SourceError::HttpStatus {
            url: url.to_string(),
            status: status.as_u16(),
        });
    }
    Ok(Some(resp))
}

/// Whether `s` is an http(s) URL (as opposed to a local folder).
pub(crate) fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_builds_and_reports_connection_errors() {
        // Port 9 (discard) on loopback has no listener here: the client must
        // build its TLS configuration and fail to connect, not panic.
        for url in [
            "https://127.0.0.1:9/x.tar.gz",
            "http://127.0.0.1:9/x.tar.gz",
        ] {
            let err = get(url).expect_err("nothing listens on port 9");
            assert!(matches!(err, SourceError::Download { .. }), "{err}");
            assert!(err.to_string().contains(url), "{err}");
        }
        assert!(is_url("https://a.invalid/") && is_url("http://a.invalid/"));
        assert!(!is_url("/srv/mirror") && !is_url("file:///srv/mirror"));
    }
}
