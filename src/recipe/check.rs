//! Pure value checks used while reading a recipe: names, dependency strings,
//! SPDX license expressions, digests, commit ids, relative paths and globs.
//! Each returns `Err(reason)` with a lowercase reason the caller prefixes with
//! the field name.

use crate::version::Version;

/// Architectures forge knows (Alpine's list) plus `noarch`.
pub(crate) const ARCHES: &[&str] = &[
    "x86_64",
    "aarch64",
    "x86",
    "armhf",
    "armv7",
    "ppc64le",
    "s390x",
    "riscv64",
    "loongarch64",
    "noarch",
];

/// A package name: `[a-z0-9][a-z0-9+._-]*`.
pub(crate) fn package_name(s: &str) -> Result<(), String> {
    let mut chars = s.chars();
    match chars.next() {
        None => return Err("empty name".into()),
        Some(c) if !(c.is_ascii_lowercase() || c.is_ascii_digit()) => {
            return Err(format!("`{s}` must start with a lowercase letter or digit"));
        }
        _ => {}
    }
    if let Some(c) = chars.find(|c| !matches!(c, 'a'..='z' | '0'..='9' | '+' | '.' | '_' | '-')) {
        return Err(format!(
            "`{s}` contains `{c}`; names use only a-z, 0-9, `+`, `.`, `_` and `-`"
        ));
    }
    Ok(())
}

/// A dependency or provides entry: `name`, `name<op>version`, `so:libc.so.6`,
/// `cmd:sh`, `pc:zlib`, and (when `allow_conflict`) `!name`.
/// Operators: `=`, `<`, `>`, `<=`, `>=`, `~`.
pub(crate) fn dependency(s: &str, allow_conflict: bool, allow_op: bool) -> Result<(), String> {
    let body = match s.strip_prefix('!') {
        Some(rest) if allow_conflict => rest,
        Some(_) => return Err(format!("`{s}`: `!` (conflict) is only allowed in depends")),
        None => s,
    };
    let split = body.find(['=', '<', '>', '~']).unwrap_or(body.len());
    let (name, rest) = body.split_at(split);
    let bare = ["so:", "cmd:", "pc:"]
        .iter()
        .find_map(|p| name.strip_prefix(p))
        .unwrap_or(name);
    if bare.is_empty() {
        return Err(format!("`{s}`: missing package name"));
    }
    if let Some(c) = bare
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '_' | '-')))
    {
        return Err(format!("`{s}`: unexpected `{c}` in the name"));
    }
    if rest.is_empty() {
        return Ok(());
    }
    if !allow_op {
        return Err(format!("`{s}`: a version constraint is not allowed here"));
    }
    let op_len = rest
        .chars()
        .take_while(|c| matches!(c, '=' | '<' | '>' | '~'))
        .count();
    let (op, version) = rest.split_at(op_len);
    if !["=", "<", ">", "<=", ">=", "~"].contains(&op) {
        return Err(format!("`{s}`: unknown operator `{op}`"));
    }
    Version::parse_full(version).map_err(|e| format!("`{s}`: {}", e.reason))?;
    Ok(())
}

/// An SPDX license expression: ids (`MIT`, `GPL-2.0-or-later`,
/// `LicenseRef-x`, optional `+`), `AND`, `OR`, `WITH exception`, parentheses.
/// License ids are not checked against the SPDX list; the syntax is.
pub(crate) fn license(s: &str) -> Result<(), String> {
    let mut tokens = Vec::new();
    for word in s.replace('(', " ( ").replace(')', " ) ").split_whitespace() {
        tokens.push(word.to_string());
    }
    if tokens.is_empty() {
        return Err("empty license expression".into());
    }
    let mut parser = Spdx { tokens, pos: 0 };
    parser.expr()?;
    if let Some(t) = parser.tokens.get(parser.pos) {
        return Err(format!("unexpected `{t}` in license expression"));
    }
    Ok(())
}

struct Spdx {
    tokens: Vec<String>,
    pos: usize,
}

impl Spdx {
    fn peek(&self) -> Option<&str> {
        self.tokens.get(self.pos).map(String::as_str)
    }

    fn expr(&mut self) -> Result<(), String> {
        self.term()?;
        while let Some(op) = self.peek() {
            match op {
                "AND" | "OR" => {
                    self.pos += 1;
                    self.term()?;
                }
                "and" | "or" | "And" | "Or" => {
                    return Err(format!(
                        "write the operator `{op}` in uppercase (`{}`)",
                        op.to_uppercase()
                    ));
                }
                _ => return Ok(()),
            }
        }
        Ok(())
    }

    fn term(&mut self) -> Result<(), String> {
        match self.peek() {
            None => Err("license expression ends too early".into()),
            Some("(") => {
                self.pos += 1;
                self.expr()?;
                if self.peek() != Some(")") {
                    return Err("unclosed `(` in license expression".into());
                }
                self.pos += 1;
                Ok(())
            }
            Some(id) => {
                let id = id.to_string();
                license_id(&id, true)?;
                self.pos += 1;
                if self.peek() == Some("WITH") {
                    self.pos += 1;
                    let exc = self
                        .peek()
                        .ok_or("`WITH` needs an exception id")?
                        .to_string();
                    license_id(&exc, false)?;
                    self.pos += 1;
                }
                Ok(())
            }
        }
    }
}

fn license_id(id: &str, allow_plus: bool) -> Result<(), String> {
    if matches!(id, "AND" | "OR" | "WITH" | ")") {
        return Err(format!("expected a license id, found `{id}`"));
    }
    let core = if allow_plus {
        id.strip_suffix('+').unwrap_or(id)
    } else {
        id
    };
    let core = core
        .strip_prefix("DocumentRef-")
        .and_then(|r| r.split_once(':').map(|(_, x)| x))
        .unwrap_or(core);
    let ok = !core.is_empty()
        && core.starts_with(|c: char| c.is_ascii_alphanumeric())
        && core
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    if !ok {
        return Err(format!(
            "`{id}` is not an SPDX license id (letters, digits, `-` and `.`; join ids with AND/OR)"
        ));
    }
    Ok(())
}

/// A lowercase hex digest of `len` characters.
pub(crate) fn hex_digest(s: &str, len: usize) -> Result<(), String> {
    if s.len() != len {
        return Err(format!("must be {len} hex characters, found {}", s.len()));
    }
    if let Some(c) = s.chars().find(|c| !matches!(c, '0'..='9' | 'a'..='f')) {
        return Err(format!("`{c}` is not a lowercase hex digit"));
    }
    Ok(())
}

/// A full 40-hex git commit id.
pub(crate) fn commit_id(s: &str) -> Result<(), String> {
    let hex = s.chars().all(|c| c.is_ascii_hexdigit());
    if hex && s.len() < 40 && s.len() >= 4 {
        return Err(format!(
            "`{s}` is a short commit id; use the full 40-character id"
        ));
    }
    hex_digest(s, 40)
}

/// A relative path that stays inside its base: no leading `/`, no `..`,
/// no empty components.
pub(crate) fn relative_path(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("empty path".into());
    }
    if s.starts_with('/') {
        return Err(format!("`{s}` is absolute; use a relative path"));
    }
    if s.split('/').any(|c| c == "..") {
        return Err(format!("`{s}` contains `..`"));
    }
    if s.contains('\0') || s.contains("//") {
        return Err(format!("`{s}` is not a clean path"));
    }
    Ok(())
}

/// A plain file name (no `/`, not `.` or `..`).
pub(crate) fn file_name(s: &str) -> Result<(), String> {
    if s.is_empty() || s == "." || s == ".." || s.contains('/') || s.contains('\0') {
        return Err(format!("`{s}` is not a plain file name"));
    }
    Ok(())
}

/// A subpackage path glob: relative, `*` stays within one folder, `**`
/// crosses folders.
pub(crate) fn path_glob(s: &str) -> Result<(), String> {
    relative_path(s)?;
    globset::GlobBuilder::new(s)
        .literal_separator(true)
        .build()
        .map(|_| ())
        .map_err(|e| format!("`{s}`: {}", e.kind()))
}

/// Whether a file name is an archive forge unpacks.
pub(crate) fn is_archive(name: &str) -> bool {
    const EXT: &[&str] = &[
        ".tar", ".tar.gz", ".tgz", ".tar.xz", ".txz", ".tar.bz2", ".tbz2", ".tbz", ".tar.zst",
        ".tzst", ".zip",
    ];
    EXT.iter().any(|e| name.ends_with(e))
}

/// An http(s) URL with a host (`https_only`), or for downloads also a
/// `file://` URL (local mirrors and tests).
pub(crate) fn url(s: &str, allow_file: bool) -> Result<(), String> {
    if s.chars().any(char::is_whitespace) {
        return Err(format!("`{s}` contains whitespace"));
    }
    if allow_file && let Some(path) = s.strip_prefix("file://") {
        if !path.starts_with('/') {
            return Err(format!("`{s}`: a file:// URL needs an absolute path"));
        }
        return Ok(());
    }
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .ok_or_else(|| format!("`{s}` must start with https:// or http://"))?;
    if rest.is_empty() || rest.starts_with('/') {
        return Err(format!("`{s}` has no host"));
    }
    Ok(())
}

/// A git remote: a URL with a scheme (`https://`, `ssh://`, `git://`,
/// `file://`), an scp-like `user@host:path`, or an absolute local path.
pub(crate) fn git_url(s: &str) -> Result<(), String> {
    if s.is_empty() || s.chars().any(char::is_whitespace) {
        return Err(format!("`{s}` is not a git URL"));
    }
    let scheme = ["https://", "http://", "ssh://", "git://", "file://"]
        .iter()
        .any(|p| s.strip_prefix(p).is_some_and(|r| !r.is_empty()));
    let scp = s
        .split_once(':')
        .is_some_and(|(h, p)| h.contains('@') && !p.is_empty());
    if scheme || scp || s.starts_with('/') {
        Ok(())
    } else {
        Err(format!(
            "`{s}` is not a git URL (https://, ssh://, git://, file://, user@host:path or /path)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["hello", "a", "0ad", "libstdc++", "py3-foo_bar.x"] {
            assert_eq!(package_name(ok), Ok(()), "{ok}");
        }
        for bad in ["", "Hello", "-x", "a b", "a/b", ".x", "é"] {
            assert!(package_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dependencies() {
        for ok in [
            "musl",
            "so:libc.musl-x86_64.so.1",
            "cmd:sh",
            "pc:zlib",
            "foo>=1.2",
            "foo=1.0-r0",
            "foo~1.2",
            "foo<2",
        ] {
            assert_eq!(dependency(ok, false, true), Ok(()), "{ok}");
        }
        assert_eq!(dependency("!foo", true, true), Ok(()));
        let bad = [
            ("!foo", false, true, "conflict"),
            ("foo>=", true, true, "empty version"),
            ("foo=>1", true, true, "unknown operator"),
            ("foo bar", true, true, "unexpected ` `"),
            (">=1", true, true, "missing package name"),
            ("foo=v1", true, true, "leading `v`"),
            ("foo=1", true, false, "not allowed"),
        ];
        for (s, conflict, op, why) in bad {
            let e = dependency(s, conflict, op).expect_err(s);
            assert!(e.contains(why), "{s}: {e}");
        }
    }

    #[test]
    fn licenses() {
        for ok in [
            "MIT",
            "GPL-2.0-or-later",
            "MIT OR Apache-2.0",
            "(MIT OR Apache-2.0) AND BSD-3-Clause",
            "GPL-2.0-only WITH Linux-syscall-note",
            "LicenseRef-custom",
            "GPL-2.0+",
            "DocumentRef-x:LicenseRef-y",
        ] {
            assert_eq!(license(ok), Ok(()), "{ok}");
        }
        let bad = [
            ("", "empty"),
            ("MIT or GPL", "uppercase"),
            ("MIT/GPL", "not an SPDX"),
            ("MIT AND", "ends too early"),
            ("(MIT", "unclosed"),
            ("MIT)", "unexpected `)`"),
            ("MIT GPL", "unexpected `GPL`"),
            ("AND MIT", "expected a license id"),
            ("MIT WITH", "needs an exception"),
            ("some garbage!", "unexpected `garbage!`"),
        ];
        for (s, why) in bad {
            let e = license(s).expect_err(s);
            assert!(e.contains(why), "{s}: {e}");
        }
    }

    #[test]
    fn digests_and_commits() {
        assert_eq!(hex_digest(&"a".repeat(64), 64), Ok(()));
        assert!(
            hex_digest(&"a".repeat(63), 64)
                .unwrap_err()
                .contains("found 63")
        );
        assert!(
            hex_digest(&"A".repeat(64), 64)
                .unwrap_err()
                .contains("lowercase hex")
        );
        assert_eq!(commit_id(&"0123456789abcdef".repeat(3)[..40]), Ok(()));
        assert!(commit_id("abc1234").unwrap_err().contains("short commit"));
        assert!(commit_id(&"g".repeat(40)).unwrap_err().contains("hex"));
    }

    #[test]
    fn paths_and_globs() {
        for ok in ["hello.c", "files/a.patch", "dir"] {
            assert_eq!(relative_path(ok), Ok(()), "{ok}");
        }
        for bad in ["", "/etc/passwd", "../x", "a/../../b", "a//b"] {
            assert!(relative_path(bad).is_err(), "{bad}");
        }
        assert_eq!(path_glob("usr/lib/*.a"), Ok(()));
        assert_eq!(path_glob("usr/share/gir-[0-9]*"), Ok(()));
        assert!(path_glob("usr/[").is_err());
        assert!(path_glob("/usr").is_err());
        assert!(is_archive("x-1.0.tar.gz") && is_archive("x.zip") && !is_archive("x.patch"));
        assert_eq!(url("https://example.org/x.tar.gz", false), Ok(()));
        assert_eq!(url("file:///srv/x.tar.gz", true), Ok(()));
        assert!(url("file:///srv/x.tar.gz", false).is_err());
        assert!(url("ftp://x", true).is_err() && url("https://", false).is_err());
        for ok in ["https://h/r.git", "git@h:r.git", "/srv/r", "file:///srv/r"] {
            assert_eq!(git_url(ok), Ok(()), "{ok}");
        }
        assert!(git_url("r.git").is_err() && git_url("").is_err());
    }
}
