//! `.PKGINFO`: the package's metadata, `key = value` lines.
//!
//! Fields are written in abuild's order (pkgname, pkgver, pkgdesc, url,
//! builddate, packager, size, arch, origin, commit, maintainer,
//! provider_priority, license, depend*, provides*, install_if, datahash) with
//! no comments, so the text depends only on the metadata. `datahash` is always
//! last: it is the SHA-256 of the compressed data member, known only after the
//! data is written.

use std::fmt::Write as _;

/// The metadata of one package.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PkgInfo {
    /// `pkgname`.
    pub name: String,
    /// `pkgver`, with `-rN`.
    pub version: String,
    /// `pkgdesc`.
    pub description: String,
    /// `url`.
    pub url: String,
    /// `builddate`: seconds since the epoch (SOURCE_DATE_EPOCH).
    pub builddate: i64,
    /// `packager`.
    pub packager: String,
    /// `size`: installed size in bytes.
    pub size: u64,
    /// `arch`.
    pub arch: String,
    /// `origin`: the recipe (main package) name.
    pub origin: String,
    /// `commit`: the recipe's git commit.
    pub commit: Option<String>,
    /// `maintainer`.
    pub maintainer: Option<String>,
    /// `provider_priority`.
    pub provider_priority: Option<u32>,
    /// `license`.
    pub license: String,
    /// `depend`, one per line.
    pub depends: Vec<String>,
    /// `provides`, one per line.
    pub provides: Vec<String>,
    /// `install_if`, space-separated on one line.
    pub install_if: Vec<String>,
    /// `datahash`: lowercase hex SHA-256 of the compressed data member.
    pub datahash: Option<String>,
}

/// A `.PKGINFO` that cannot be parsed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PkgInfoError {
    /// A line is not `key = value`.
    #[error("line {line}: expected `key = value`")]
    Syntax {
        /// 1-based line number.
        line: usize,
    },
    /// A number field is not a number.
    #[error("line {line}: `{key}` is not a number")]
    Number {
        /// 1-based line number.
        line: usize,
        /// The field.
        key: String,
    },
    /// A required field is missing.
    #[error("missing `{0}`")]
    Missing(&'static str),
    /// The text is not UTF-8.
    #[error("not UTF-8")]
    Utf8,
    /// `pkgname` or `pkgver` breaks apk's grammar (it would make an unsafe
    /// file name).
    #[error("`{key}`: {reason}")]
    Invalid {
        /// The field.
        key: &'static str,
        /// What is wrong.
        reason: String,
    },
}

impl PkgInfo {
    /// The file name in a repository: `name-version.apk`.
    pub fn file_name(&self) -> String {
        format!("{}-{}.apk", self.name, self.version)
    }

    /// Render the `.PKGINFO` text.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let mut line = |k: &str, v: &str| {
            let _ = writeln!(s, "{k} = {v}");
        };
        line("pkgname", &self.name);
        line("pkgver", &self.version);
        line("pkgdesc", &self.description);
        line("url", &self.url);
        line("builddate", &self.builddate.to_string());
        line("packager", &self.packager);
        line("size", &self.size.to_string());
        line("arch", &self.arch);
        line("origin", &self.origin);
        if let Some(c) = &self.commit {
            line("commit", c);
        }
        if let Some(m) = &self.maintainer {
            line("maintainer", m);
        }
        if let Some(p) = self.provider_priority {
            line("provider_priority", &p.to_string());
        }
        line("license", &self.license);
        for d in &self.depends {
            line("depend", d);
        }
        for p in &self.provides {
            line("provides", p);
        }
        if !self.install_if.is_empty() {
            line("install_if", &self.install_if.join(" "));
        }
        if let Some(h) = &self.datahash {
            line("datahash", h);
        }
        s
    }

    /// Parse `.PKGINFO` bytes (comments and unknown keys are ignored).
    pub fn parse(bytes: &[u8]) -> Result<PkgInfo, PkgInfoError> {
        let text = std::str::from_utf8(bytes).map_err(|_| PkgInfoError::Utf8)?;
        let mut p = PkgInfo::default();
        let mut seen_name = false;
        let mut seen_ver = false;
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            if raw.is_empty() || raw.starts_with('#') {
                continue;
            }
            let (k, v) = raw.split_once(" = ").ok_or(PkgInfoError::Syntax { line })?;
            let num = |v: &str| {
                v.parse::<i64>().map_err(|_| PkgInfoError::Number {
                    line,
                    key: k.to_string(),
                })
            };
            match k {
                "pkgname" => {
                    p.name = v.to_string();
                    seen_name = true;
                }
                "pkgver" => {
                    p.version = v.to_string();
                    seen_ver = true;
                }
                "pkgdesc" => p.description = v.to_string(),
                "url" => p.url = v.to_string(),
                "builddate" => p.builddate = num(v)?,
                "packager" => p.packager = v.to_string(),
                "size" => p.size = num(v)?.max(0) as u64,
                "arch" => p.arch = v.to_string(),
                "origin" => p.origin = v.to_string(),
                "commit" => p.commit = Some(v.to_string()),
                "maintainer" => p.maintainer = Some(v.to_string()),
                "provider_priority" => p.provider_priority = Some(num(v)?.max(0) as u32),
                "license" => p.license = v.to_string(),
                "depend" => p.depends.push(v.to_string()),
                "provides" => p.provides.push(v.to_string()),
                "install_if" => p.install_if = v.split_whitespace().map(String::from).collect(),
                "datahash" => p.datahash = Some(v.to_string()),
                _ => {}
            }
        }
        if !seen_name {
            return Err(PkgInfoError::Missing("pkgname"));
        }
        if !seen_ver {
            return Err(PkgInfoError::Missing("pkgver"));
        }
        let invalid = |key| move |reason| PkgInfoError::Invalid { key, reason };
        super::name::check_pkgname(&p.name).map_err(invalid("pkgname"))?;
        super::name::check_pkgver(&p.version).map_err(invalid("pkgver"))?;
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> PkgInfo {
        PkgInfo {
            name: "hello".into(),
            version: "2.12-r0".into(),
            description: "Say hello".into(),
            url: "https://example.org/hello".into(),
            builddate: 1_700_000_000,
            packager: "forge".into(),
            size: 4096,
            arch: "x86_64".into(),
            origin: "hello".into(),
            commit: Some("a".repeat(40)),
            maintainer: None,
            provider_priority: None,
            license: "GPL-3.0-or-later".into(),
            depends: vec!["so:libc.so.6".into(), "zlib".into()],
            provides: vec!["cmd:hello=2.12-r0".into()],
            install_if: vec![],
            datahash: Some("0".repeat(64)),
        }
    }

    #[test]
    fn renders_in_abuild_order() {
        let want = format!(
            "pkgname = hello\npkgver = 2.12-r0\npkgdesc = Say hello\n\
             url = https://example.org/hello\nbuilddate = 1700000000\npackager = forge\n\
             size = 4096\narch = x86_64\norigin = hello\ncommit = {}\n\
             license = GPL-3.0-or-later\ndepend = so:libc.so.6\ndepend = zlib\n\
             provides = cmd:hello=2.12-r0\ndatahash = {}\n",
            "a".repeat(40),
            "0".repeat(64)
        );
        assert_eq!(sample().render(), want);
    }

    #[test]
    fn parse_round_trips_and_ignores_comments() {
        let p = sample();
        let text = format!("# generated\n{}unknown = x\n", p.render());
        assert_eq!(PkgInfo::parse(text.as_bytes()).unwrap(), p);
    }

    #[test]
    fn parse_errors() {
        let cases: [(&str, PkgInfoError); 6] = [
            ("pkgname=x\n", PkgInfoError::Syntax { line: 1 }),
            (
                "pkgname = x\npkgver = 1-r0\nsize = big\n",
                PkgInfoError::Number {
                    line: 3,
                    key: "size".into(),
                },
            ),
            ("pkgver = 1-r0\n", PkgInfoError::Missing("pkgname")),
            ("pkgname = x\n", PkgInfoError::Missing("pkgver")),
            (
                "pkgname = ../x\npkgver = 1-r0\n",
                PkgInfoError::Invalid {
                    key: "pkgname",
                    reason: "package name `../x` must start with a letter or digit".into(),
                },
            ),
            (
                "pkgname = x\npkgver = 1/../../y\n",
                PkgInfoError::Invalid {
                    key: "pkgver",
                    reason: crate::apk::name::check_pkgver("1/../../y").unwrap_err(),
                },
            ),
        ];
        for (text, want) in cases {
            assert_eq!(PkgInfo::parse(text.as_bytes()).unwrap_err(), want, "{text}");
        }
    }
}
