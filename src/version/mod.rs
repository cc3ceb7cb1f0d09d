//! apk version strings: grammar check and ordering (pure, no I/O).
//!
//! Grammar (what [`Version::parse`] accepts, stricter than apk 2.14's own
//! check, which lets `v1.2`, `1.0-r` and `01.2` through):
//!
//! ```text
//! version  = number { "." digits } [ letter ] { "_" suffix [ digits ] }
//! full     = version [ "-r" number ]
//! number   = "0" | [1-9] digits*          (no leading zero)
//! letter   = [a-z]                        (exactly one, lowercase)
//! suffix   = alpha | beta | pre | rc | cvs | svn | git | hg | p
//! ```
//!
//! Ordering ([`compare`]) follows apk's tokenizer (`src/version.c`): the
//! string is cut into tokens (number, letter, suffix, suffix number,
//! revision); tokens are compared pairwise; numbers compare as integers except
//! that a dotted component with a leading zero on either side compares as a
//! string (`1.01 < 1.1`); when one side runs out or switches token kind, the
//! side that continues is greater unless it continues with a pre-release
//! suffix (`_alpha`, `_beta`, `_pre`, `_rc`). Hence
//! `1.0_rc1 < 1.0 < 1.0_p1 < 1.0a < 1.0.1` and `1.0 < 1.0-r0 < 1.0-r1`.
//! The rules follow apk-tools' `src/version.c`, checked against apk 2.14.10.

use std::cmp::Ordering;
use std::fmt;

/// A version that follows apk's grammar (without the `-rN` part unless parsed
/// with [`Version::parse_full`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Version(String);

/// Why a version string was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid apk version `{input}`: {reason}")]
pub struct VersionError {
    /// The rejected text.
    pub input: String,
    /// What is wrong with it.
    pub reason: String,
}

/// Suffix names, in ascending order; the first four sort before "no suffix".
pub(crate) const SUFFIXES: [&str; 9] =
    ["alpha", "beta", "pre", "rc", "cvs", "svn", "git", "hg", "p"];
/// How many entries of [`SUFFIXES`] are pre-release suffixes.
pub(crate) const PRE_SUFFIXES: usize = 4;

impl Version {
    /// Parse an upstream version (no `-rN`).
    pub fn parse(s: &str) -> Result<Version, VersionError> {
        let end = check_upstream(s).map_err(|reason| err(s, reason))?;
        if end != s.len() {
            let rest = &s[end..];
            let reason = if is_release_tail(rest) {
                "the `-rN` release is not part of the upstream version (use the `release` field)"
                    .to_string()
            } else {
                unexpected(s, end)
            };
            return Err(err(s, reason));
        }
        Ok(Version(s.to_string()))
    }

    /// Parse a full package version: an upstream version with an optional
    /// `-rN` release (`1.2.3-r0`).
    pub fn parse_full(s: &str) -> Result<Version, VersionError> {
        let end = check_upstream(s).map_err(|reason| err(s, reason))?;
        let rest = &s[end..];
        if rest.is_empty() {
            return Ok(Version(s.to_string()));
        }
        match rest.strip_prefix("-r").filter(|_| is_release_tail(rest)) {
            Some(digits) => check_number(digits, "release number")
                .map(|()| Version(s.to_string()))
                .map_err(|reason| err(s, reason)),
            None => Err(err(s, unexpected(s, end))),
        }
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The upstream part (everything before `-rN`).
    pub fn upstream(&self) -> &str {
        match self.0.rfind("-r") {
            Some(i) => &self.0[..i],
            None => &self.0,
        }
    }

    /// The `-rN` release number, when the version carries one.
    pub fn release(&self) -> Option<u64> {
        let i = self.0.rfind("-r")?;
        self.0[i + 2..].parse().ok()
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for Version {
    type Err = VersionError;
    fn from_str(s: &str) -> Result<Version, VersionError> {
        Version::parse_full(s)
    }
}

impl Ord for Version {
    /// apk ordering; versions apk calls equal but spelled differently
    /// (`1.0_rc01` and `1.0_rc1`) fall back to byte order so that `Ord`
    /// agrees with `Eq`.
    fn cmp(&self, other: &Version) -> Ordering {
        compare(&self.0, &other.0).then_with(|| self.0.cmp(&other.0))
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Version) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

mod grammar;
mod order;
#[cfg(test)]
mod tests;

use grammar::{check_number, check_upstream, err, is_release_tail, unexpected};
pub use order::{compare, fuzzy_match};
