//! Image references: `HOST[:PORT]/REPO[:TAG][@sha256:HEX]` (pure parsing).
//!
//! forge always names the registry host explicitly (no implicit default
//! registry): the first path component must contain a `.` or a `:`, or be
//! `localhost`.

use crate::oci::Digest;

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// `host[:port]`.
    pub registry: String,
    /// The repository path (`forge/hello`).
    pub repository: String,
    /// The tag, if any.
    pub tag: Option<String>,
    /// The digest, if any.
    pub digest: Option<Digest>,
}

/// A reference that cannot be parsed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid image reference `{input}`: {why}")]
pub struct ReferenceError {
    /// The text.
    pub input: String,
    /// What is wrong.
    pub why: &'static str,
}

fn valid_component(c: &str) -> bool {
    // [a-z0-9]+(([._]|__|-+)[a-z0-9]+)*, checked loosely: lowercase
    // alphanumerics with single separators, not at the ends.
    !c.is_empty()
        && c.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        && c.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && c.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric())
}

/// Whether a repository path is valid (`a/b-c/d_e`).
pub fn valid_repository(repo: &str) -> bool {
    !repo.is_empty() && repo.len() <= 255 && repo.split('/').all(valid_component)
}

fn valid_tag(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 128
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        && !t.starts_with(['.', '-'])
}

fn is_host(c: &str) -> bool {
    c.contains('.') || c.contains(':') || c == "localhost"
}

impl Reference {
    /// Parse `HOST[:PORT]/REPO[:TAG][@DIGEST]`.
    pub fn parse(input: &str) -> Result<Reference, ReferenceError> {
        let err = |why| ReferenceError {
            input: input.to_string(),
            why,
        };
        let (rest, digest) = match input.split_once('@') {
            Some((r, d)) => (r, Some(Digest::parse(d).map_err(|_| err("bad digest"))?)),
            None => (input, None),
        };
        let (registry, path) = rest
            .split_once('/')
            .ok_or_else(|| err("no registry host"))?;
        if !is_host(registry) {
            return Err(err(
                "the first component must be a registry host (with a `.` or a `:port`)",
            ));
        }
        let (repository, tag) = match path.rsplit_once(':') {
            Some((r, t)) if !t.contains('/') => (r, Some(t)),
            _ => (path, None),
        };
        if !valid_repository(repository) {
            return Err(err(
                "bad repository name (lowercase letters, digits, `._-`, `/`)",
            ));
        }
        if let Some(t) = tag
            && !valid_tag(t)
        {
            return Err(err("bad tag"));
        }
        Ok(Reference {
            registry: registry.to_string(),
            repository: repository.to_string(),
            tag: tag.map(str::to_string),
            digest,
        })
    }

    /// Whether `s` looks like an image reference rather than a file path.
    pub fn looks_like(s: &str) -> bool {
        (s.contains(':') || s.contains('@')) && Reference::parse(s).is_ok()
    }

    /// `registry/repository`: what a signature's `docker-reference` names.
    pub fn repository_ref(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The tag or digest to ask the registry for (`latest` when neither).
    pub fn selector(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_string(),
        }
    }
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// A `--registry HOST[:PORT][/PREFIX]` target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `host[:port]`.
    pub registry: String,
    /// Repository prefix (may be empty).
    pub prefix: String,
}

impl Target {
    /// Parse `HOST[:PORT][/PREFIX]`.
    pub fn parse(input: &str) -> Result<Target, ReferenceError> {
        let err = |why| ReferenceError {
            input: input.to_string(),
            why,
        };
        let trimmed = input.trim_end_matches('/');
        let (registry, prefix) = trimmed.split_once('/').unwrap_or((trimmed, ""));
        if registry.is_empty() || registry.contains(['@', ' ']) {
            return Err(err("bad registry host"));
        }
        if !prefix.is_empty() && !valid_repository(prefix) {
            return Err(err("bad repository prefix"));
        }
        Ok(Target {
            registry: registry.to_string(),
            prefix: prefix.to_string(),
        })
    }

    /// The repository for image or artifact `name`.
    pub fn repository(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}/{name}", self.prefix)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_table() {
        let d = Digest::of(b"x");
        let with_digest = format!("reg.example:5000/a/b@{d}");
        for (input, reg, repo, tag, dig) in [
            (
                "127.0.0.1:5000/forge/hello:latest",
                "127.0.0.1:5000",
                "forge/hello",
                Some("latest"),
                None,
            ),
            ("localhost/x", "localhost", "x", None, None),
            (
                with_digest.as_str(),
                "reg.example:5000",
                "a/b",
                None,
                Some(d.clone()),
            ),
        ] {
            let r = Reference::parse(input).unwrap();
            assert_eq!(
                (
                    r.registry.as_str(),
                    r.repository.as_str(),
                    r.tag.as_deref(),
                    r.digest.clone()
                ),
                (reg, repo, tag, dig)
            );
            assert_eq!(r.to_string(), input);
        }
        for bad in [
            "hello",
            "hello:latest",
            "h.io/UPPER",
            "h.io/a:b:c",
            "h.io/a@sha256:00",
            "h.io/-a",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad}");
        }
        assert!(Reference::looks_like("127.0.0.1:5000/x:1"));
        assert!(!Reference::looks_like("out/repo/x86_64/APKINDEX.tar.gz"));
        assert_eq!(Reference::parse("h.io/a").unwrap().selector(), "latest");
    }

    #[test]
    fn target_table() {
        let t = Target::parse("127.0.0.1:5000/forge/").unwrap();
        assert_eq!(
            (t.registry.as_str(), t.repository("hello")),
            ("127.0.0.1:5000", "forge/hello".to_string())
        );
        assert_eq!(Target::parse("h.io").unwrap().repository("x"), "x");
        assert!(Target::parse("h.io/Bad").is_err());
    }
}
