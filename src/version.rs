//! apk version strings: grammar check and ordering (pure, no I/O).
//!
//! Grammar: `digits{.digits} {letter} {_suffix{digits}} {-r<digits>}`.
//! See `../shared/reference/apk.md` §8.

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

impl Version {
    /// Parse an upstream version (no `-rN`).
    pub fn parse(s: &str) -> Result<Version, VersionError> {
        let _ = s;
        unimplemented!("filled in by the version module work")
    }
    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Compare two full apk version strings (`1.0-r1` vs `1.0_rc1`) by apk's rules.
pub fn compare(a: &str, b: &str) -> Ordering {
    let _ = (a, b);
    unimplemented!("filled in by the version module work")
}
