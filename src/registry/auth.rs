//! Registry authentication: `WWW-Authenticate` challenges, where credentials
//! come from, and the bearer token exchange.
//!
//! Credentials belong to one registry host (`host[:port]`), as in docker's
//! `config.json`; forge never sends them anywhere else:
//!
//! - `FORGE_REGISTRY_USER` + `FORGE_REGISTRY_PASSWORD` are for the host in
//!   `FORGE_REGISTRY_HOST`; without it, for the destination of a push
//!   (`publish --registry`, `sign-image`), else for the host of
//!   `FORGE_REGISTRY`. Reading from another registry (`verify-image`,
//!   `pull-repo` of a third-party reference) sends them nowhere
//!   ([`env_host`], [`Credentials::lookup`]);
//! - then `auths[HOST].auth` (base64 `user:password`) in
//!   `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`, keyed by host;
//! - a Bearer challenge's token `realm` receives them only when it is the
//!   registry itself, or an `https` endpoint whose host is listed in
//!   `FORGE_REGISTRY_TOKEN_HOSTS` ([`realm_gets_credentials`]); any other
//!   realm is asked for an anonymous token.
//!
//! A credential is never formatted: [`Credentials`]'s `Debug` prints only
//! the user name.

use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

/// The user variable.
pub const USER_ENV: &str = "FORGE_REGISTRY_USER";
/// The password variable.
pub const PASSWORD_ENV: &str = "FORGE_REGISTRY_PASSWORD";
/// The host the user and password variables are for.
pub const HOST_ENV: &str = "FORGE_REGISTRY_HOST";
/// Hosts, comma-separated, whose `https` token endpoints may receive the
/// credentials of a registry that sends its clients there.
pub const TOKEN_HOSTS_ENV: &str = "FORGE_REGISTRY_TOKEN_HOSTS";

/// The host `FORGE_REGISTRY_USER`/`PASSWORD` are for: `FORGE_REGISTRY_HOST`,
/// else `destination` (the registry a push writes to), else the host part
/// of `FORGE_REGISTRY`.
pub fn env_host(destination: Option<&str>) -> Option<String> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    var(HOST_ENV)
        .or_else(|| destination.map(str::to_string))
        .or_else(|| var("FORGE_REGISTRY").map(|r| r.split('/').next().unwrap_or("").to_string()))
}

/// The hosts listed in `FORGE_REGISTRY_TOKEN_HOSTS`.
pub fn token_hosts_from_env() -> Vec<String> {
    std::env::var(TOKEN_HOSTS_ENV)
        .unwrap_or_default()
        .split(',')
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .collect()
}

/// Whether the token endpoint `realm` may receive the credentials of the
/// registry at `registry` (`scheme://host[:port]`): it is on the registry's
/// own host and port (over https, or over the registry's own scheme), or it
/// is https on a host listed in `token_hosts`.
pub fn realm_gets_credentials(registry: &str, realm: &str, token_hosts: &[String]) -> bool {
    let (Ok(reg), Ok(realm)) = (reqwest::Url::parse(registry), reqwest::Url::parse(realm)) else {
        return false;
    };
    let origin = |u: &reqwest::Url| {
        let host = u.host_str().unwrap_or("").to_ascii_lowercase();
        match u.port() {
            Some(p) => format!("{host}:{p}"),
            None => host,
        }
    };
    let https = realm.scheme() == "https";
    if origin(&realm) == origin(&reg) {
        return https || realm.scheme() == reg.scheme();
    }
    https
        && token_hosts
            .iter()
            .any(|h| h.eq_ignore_ascii_case(&origin(&realm)))
}

/// A user name and password.
#[derive(Clone)]
pub struct Credentials {
    /// The user name.
    pub user: String,
    password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl Credentials {
    /// Credentials from parts.
    pub fn new(user: impl Into<String>, password: impl Into<String>) -> Credentials {
        Credentials {
            user: user.into(),
            password: password.into(),
        }
    }

    /// The `Authorization: Basic …` value.
    pub fn basic_header(&self) -> String {
        format!(
            "Basic {}",
            B64.encode(format!("{}:{}", self.user, self.password))
        )
    }

    /// The password (for redacting it from text).
    pub(crate) fn secret(&self) -> &str {
        &self.password
    }

    /// The credentials for `host` and where they came from (for
    /// messages): the environment's when `env_host` (see [`env_host`]) is
    /// `host`, else the docker config's entry for `host`.
    pub fn lookup(host: &str, env_host: Option<&str>) -> Option<(Credentials, &'static str)> {
        let user = std::env::var(USER_ENV).ok().filter(|u| !u.is_empty());
        let pass = std::env::var(PASSWORD_ENV).ok();
        if let (Some(u), Some(p)) = (user, pass)
            && env_host.is_some_and(|h| h.eq_ignore_ascii_case(host))
        {
            return Some((Credentials::new(u, p), "FORGE_REGISTRY_USER/PASSWORD"));
        }
        let path = docker_config_path()?;
        let text = std::fs::read_to_string(path).ok()?;
        from_docker_config(&text, host).map(|c| (c, "the docker config.json"))
    }
}

fn docker_config_path() -> Option<PathBuf> {
    match std::env::var_os("DOCKER_CONFIG").filter(|v| !v.is_empty()) {
        Some(d) => Some(PathBuf::from(d).join("config.json")),
        None => dirs::home_dir().map(|h| h.join(".docker").join("config.json")),
    }
}

/// Credentials for `host` in a docker `config.json` text.
pub fn from_docker_config(text: &str, host: &str) -> Option<Credentials> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    let auths = v.get("auths")?.as_object()?;
    let entry = auths.iter().find_map(|(k, e)| {
        let k = k
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .trim_end_matches("/v2")
            .trim_end_matches("/v1");
        (k == host).then_some(e)
    })?;
    let raw = B64.decode(entry.get("auth")?.as_str()?).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (u, p) = text.split_once(':')?;
    Some(Credentials::new(u, p))
}

/// A parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// HTTP Basic.
    Basic,
    /// The token flow.
    Bearer {
        /// The token endpoint.
        realm: String,
        /// The `service` parameter.
        service: Option<String>,
    },
}

/// Parse a `WWW-Authenticate` value; `None` for unknown schemes.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    match scheme.to_ascii_lowercase().as_str() {
        "basic" => Some(Challenge::Basic),
        "bearer" => {
            let params = parse_params(rest);
            let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
            Some(Challenge::Bearer {
                realm: get("realm")?,
                service: get("service"),
            })
        }
        _ => None,
    }
}

/// `k="v", k2=v2` with quoted commas allowed.
fn parse_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            break;
        }
        let mut val = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => val.extend(chars.next()),
                    '"' => break,
                    c => val.push(c),
                }
            }
        } else {
            while let Some(c) = chars.peek() {
                if *c == ',' {
                    break;
                }
                val.push(*c);
                chars.next();
            }
        }
        out.push((key.trim().to_ascii_lowercase(), val.trim().to_string()));
    }
    out
}

/// Replace every occurrence of the secrets in `text` with `<redacted>`.
pub fn redact(text: &str, secrets: &[&str]) -> String {
    let mut t = text.to_string();
    for s in secrets.iter().filter(|s| s.len() >= 3) {
        t = t.replace(*s, "<redacted>");
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        assert_eq!(
            parse_challenge("Basic realm=\"Registry Realm\""),
            Some(Challenge::Basic)
        );
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into())
            })
        );
        assert_eq!(
            parse_challenge("Bearer realm=http://127.0.0.1:1/t"),
            Some(Challenge::Bearer {
                realm: "http://127.0.0.1:1/t".into(),
                service: None
            })
        );
        assert_eq!(parse_challenge("Negotiate abc"), None);
        assert_eq!(parse_challenge("Bearer service=x"), None);
    }

    #[test]
    fn token_realms_get_credentials_only_at_home_or_when_listed() {
        let listed = vec!["auth.example:8443".to_string()];
        for (registry, realm, ok) in [
            ("http://127.0.0.1:5000", "http://127.0.0.1:5000/token", true),
            ("https://reg.example", "https://reg.example/token", true),
            ("https://reg.example", "http://reg.example/token", false),
            (
                "http://127.0.0.1:5000",
                "http://127.0.0.1:5001/token",
                false,
            ),
            ("https://reg.example", "https://evil.example/token", false),
            (
                "https://reg.example",
                "http://auth.example:8443/token",
                false,
            ),
            (
                "https://reg.example",
                "https://auth.example:8443/token",
                true,
            ),
            ("https://reg.example", "https://auth.example/token", false),
            ("https://reg.example", "not a url", false),
        ] {
            assert_eq!(
                realm_gets_credentials(registry, realm, &listed),
                ok,
                "{registry} {realm}"
            );
        }
    }

    #[test]
    fn docker_config_and_redaction() {
        let cfg = format!(
            r#"{{"auths":{{"https://127.0.0.1:5000":{{"auth":"{}"}},"other.example":{{"auth":"eDp5"}}}}}}"#,
            B64.encode("alice:s3cret:with:colons")
        );
        let c = from_docker_config(&cfg, "127.0.0.1:5000").unwrap();
        assert_eq!(
            (c.user.as_str(), c.secret()),
            ("alice", "s3cret:with:colons")
        );
        assert!(from_docker_config(&cfg, "127.0.0.1:5001").is_none());
        assert!(!format!("{c:?}").contains("s3cret"));
        assert_eq!(
            redact("pw s3cret:with:colons here", &[c.secret()]),
            "pw <redacted> here"
        );
        assert_eq!(
            c.basic_header(),
            format!("Basic {}", B64.encode("alice:s3cret:with:colons"))
        );
    }
}
