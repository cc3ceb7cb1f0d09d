//! Unit tests of the registry client (no real registry needed).

use super::*;
use reqwest::blocking::Body;

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
    assert!(c.same_origin("http://127.0.0.1:9/v2/a/blobs/uploads/u"));
    for other in [
        "https://o.example/u",
        "http://127.0.0.1:90/v2/",
        "https://127.0.0.1:9/v2/",
        "http://127.0.0.1:9.evil/v2/",
    ] {
        assert!(!c.same_origin(other), "{other}");
    }
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
/// Basic `u:p` at `/token`. Logs every request line and auth header.
fn bearer_server() -> (String, crate::test_http::Stub) {
    use crate::test_http::{Reply, Stub};
    let home = std::sync::Arc::new(std::sync::OnceLock::<String>::new());
    let h = home.clone();
    let basic = format!(
        "Basic {}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, "u:p")
    );
    let stub = Stub::start(move |req, _| {
        if req.path.starts_with("/token?") {
            if req.auth == basic && req.path.contains("scope=repository%3Aa%2Fb%3Apull%2Cpush") {
                let body = r#"{"token":"tok-123","expires_in":300}"#;
                return Reply::Status(200, String::new(), body.into());
            }
            return Reply::Status(401, String::new(), Vec::new());
        }
        if req.auth == "Bearer tok-123" {
            return Reply::Status(200, String::new(), Vec::new());
        }
        let realm = format!(
            "WWW-Authenticate: Bearer realm=\"http://{}/token\",service=\"test\"\r\n",
            h.get().map_or("", |s| s.as_str())
        );
        Reply::Status(401, realm, Vec::new())
    });
    let _ = home.set(stub.host.clone());
    (stub.host.clone(), stub)
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
    let lines = log.log();
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

/// A plain-http client for a stand-in server that tries each request once
/// (a scripted server's answers are used up in order, so no retries).
pub(crate) fn single_try_client(host: &str) -> Client {
    Client::new(
        host,
        ClientOptions {
            insecure: true,
            attempts: 1,
            ..Default::default()
        },
    )
    .unwrap()
}

/// A server answering each request with the next canned response;
/// logs each request line with its `Authorization` header.
pub(crate) fn scripted_server(responses: Vec<String>) -> (String, crate::test_http::Stub) {
    let stub = crate::test_http::Stub::script(responses);
    (stub.host.clone(), stub)
}

pub(crate) const CLOSE: &str = "Content-Length: 0\r\nConnection: close\r\n\r\n";

#[test]
fn credentials_never_go_to_another_host() {
    let (other, other_log) = scripted_server(vec![format!("HTTP/1.1 201 Created\r\n{CLOSE}")]);
    let (host, log) = scripted_server(vec![
        format!("HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"r\"\r\n{CLOSE}"),
        format!("HTTP/1.1 202 Accepted\r\nLocation: http://{other}/upload/1?_state=x\r\n{CLOSE}"),
    ]);
    let c = Client::new(
        &host,
        ClientOptions {
            insecure: true,
            credentials: Some(Credentials::new("u", "p")),
            attempts: 1,
            ..Default::default()
        },
    )
    .unwrap();
    c.ping().unwrap();
    let session = c.start_upload("a", &[]).unwrap();
    assert!(
        session.starts_with(&format!("http://{other}/")),
        "{session}"
    );
    c.put_blob(
        &session,
        &Digest::of(b"x"),
        1,
        &|| Ok(Body::from(b"x".to_vec())),
        &[],
    )
    .unwrap();
    let log = log.log();
    assert!(
        log[1].starts_with("POST /v2/a/blobs/uploads/ HTTP/1.1 | Basic "),
        "{log:?}"
    );
    let other_log = other_log.log();
    assert_eq!(other_log.len(), 1);
    assert!(
        other_log[0].ends_with(" | "),
        "credentials sent to another host: {other_log:?}"
    );
}

#[test]
fn retry_after_and_server_errors_are_retried() {
    let (host, _) = scripted_server(vec![
        format!("HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\n{CLOSE}"),
        format!("HTTP/1.1 503 Service Unavailable\r\n{CLOSE}"),
        format!("HTTP/1.1 200 OK\r\n{CLOSE}"),
    ]);
    let c = Client::new(
        &host,
        ClientOptions {
            insecure: true,
            attempts: 3,
            backoff: Duration::from_millis(1),
            ..Default::default()
        },
    )
    .unwrap();
    let t = std::time::Instant::now();
    assert!(c.blob_exists("a", &Digest::of(b""), &[]).unwrap());
    let waited = t.elapsed();
    assert!(
        waited >= Duration::from_secs(1),
        "Retry-After ignored: {waited:?}"
    );
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    assert_eq!(c.request_count(), 3);
}

#[test]
fn credentials_never_go_to_a_token_realm_on_another_host_over_http() {
    let token = r#"{"token":"t1","expires_in":300}"#;
    let (realm, realm_log) = scripted_server(vec![format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{token}",
        token.len()
    )]);
    let (host, log) = scripted_server(vec![
        format!(
            "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"http://{realm}/token\",service=\"s\"\r\n{CLOSE}"
        ),
        format!("HTTP/1.1 200 OK\r\n{CLOSE}"),
    ]);
    let c = Client::new(
        &host,
        ClientOptions {
            insecure: true,
            credentials: Some(Credentials::new("u", "p")),
            // Listing the realm's host does not allow plain http.
            token_hosts: vec![realm.clone()],
            attempts: 1,
            ..Default::default()
        },
    )
    .unwrap();
    c.ping().unwrap();
    assert!(c.blob_exists("a", &Digest::of(b""), &[]).unwrap());
    let realm_log = realm_log.log();
    assert_eq!(realm_log.len(), 1, "{realm_log:?}");
    assert!(
        realm_log[0].starts_with("GET /token?") && realm_log[0].ends_with(" | "),
        "credentials sent to the realm: {realm_log:?}"
    );
    let log = log.log();
    assert!(log[1].ends_with("| Bearer t1"), "{log:?}");
}

#[test]
fn a_huge_token_lifetime_is_capped_not_a_panic() {
    let token = r#"{"token":"t1","expires_in":18446744073709551615}"#;
    let (host, _) = scripted_server(vec![
        format!(
            "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"http://127.0.0.1:1/token\"\r\n{CLOSE}"
        ),
        format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{token}",
            token.len()
        ),
        format!("HTTP/1.1 200 OK\r\n{CLOSE}"),
    ]);
    let realm_host = host.clone();
    let c = single_try_client(&host);
    c.ping().unwrap();
    // The realm names the registry itself (the scripted server).
    *c.auth.lock().unwrap() = AuthState::Bearer {
        realm: format!("http://{realm_host}/token"),
        service: None,
        tokens: HashMap::new(),
    };
    assert!(c.blob_exists("a", &Digest::of(b""), &[]).unwrap());
}
