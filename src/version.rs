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
const SUFFIXES: [&str; 9] = ["alpha", "beta", "pre", "rc", "cvs", "svn", "git", "hg", "p"];
/// How many entries of [`SUFFIXES`] are pre-release suffixes.
const PRE_SUFFIXES: usize = 4;

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

fn err(input: &str, reason: impl Into<String>) -> VersionError {
    VersionError {
        input: input.to_string(),
        reason: reason.into(),
    }
}

fn unexpected(s: &str, at: usize) -> String {
    let rest = &s[at..];
    let c = rest.chars().next().unwrap_or(' ');
    if c == '+' {
        "build metadata (`+…`) is not allowed; drop it".to_string()
    } else if let Some(tail) = rest.strip_prefix('-') {
        let word: String = tail
            .chars()
            .take_while(|c| c.is_ascii_alphabetic())
            .collect();
        let lower = word.to_ascii_lowercase();
        if SUFFIXES.contains(&lower.as_str()) {
            format!("pre/post-release markers are written `_{lower}`, not `-{word}`")
        } else {
            format!("unexpected `-` at byte {at}; only `_suffix` may follow the numbers")
        }
    } else if c.is_ascii_uppercase() {
        format!("uppercase letter `{c}`; letters must be lowercase")
    } else if c.is_ascii_lowercase() {
        "only one letter may follow the numbers".to_string()
    } else {
        format!("unexpected `{c}` at byte {at}")
    }
}

/// `-r` followed by nothing or a digit: an attempt at a release suffix.
fn is_release_tail(rest: &str) -> bool {
    rest.strip_prefix("-r")
        .is_some_and(|t| t.is_empty() || t.starts_with(|c: char| c.is_ascii_digit()))
}

/// A decimal number without a leading zero (`0` itself is fine).
fn check_number(digits: &str, what: &str) -> Result<(), String> {
    if digits.is_empty() {
        return Err(format!("missing {what}"));
    }
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{what} `{digits}` is not a decimal number"));
    }
    if digits.len() > 1 && digits.starts_with('0') {
        return Err(format!("{what} `{digits}` has a leading zero"));
    }
    Ok(())
}

fn digit_run(b: &[u8], from: usize) -> usize {
    b[from..].iter().take_while(|c| c.is_ascii_digit()).count()
}

/// Check the upstream grammar; return the byte offset where it stops.
fn check_upstream(s: &str) -> Result<usize, String> {
    let b = s.as_bytes();
    if s.is_empty() {
        return Err("empty version".to_string());
    }
    if b[0] == b'v' || b[0] == b'V' {
        return Err("drop the leading `v`".to_string());
    }
    let n = digit_run(b, 0);
    if n == 0 {
        return Err("a version must start with a digit".to_string());
    }
    if n > 1 && b[0] == b'0' {
        return Err(format!("first component `{}` has a leading zero", &s[..n]));
    }
    let mut i = n;
    while i < b.len() && b[i] == b'.' {
        let n = digit_run(b, i + 1);
        if n == 0 {
            return Err(format!("`.` at byte {i} must be followed by digits"));
        }
        i += 1 + n;
    }
    if i < b.len() && b[i].is_ascii_lowercase() {
        i += 1;
    }
    while i < b.len() && b[i] == b'_' {
        let word_len = b[i + 1..]
            .iter()
            .take_while(|c| c.is_ascii_alphabetic())
            .count();
        let word = &s[i + 1..i + 1 + word_len];
        if !SUFFIXES.contains(&word) {
            return Err(format!(
                "unknown suffix `_{word}` (expected one of: {})",
                SUFFIXES.join(", ")
            ));
        }
        i += 1 + word_len;
        i += digit_run(b, i);
    }
    Ok(i)
}

/// Token kinds in apk's order: when two versions agree up to a point and then
/// continue with different kinds, the one with the *greater* kind is the
/// *lesser* version (a pre-release suffix aside).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Digit,
    Letter,
    Suffix,
    SuffixNo,
    RevisionNo,
    End,
    Invalid,
}

#[derive(Debug, Clone, Copy)]
struct Token<'a> {
    kind: Kind,
    /// The raw digits, letter or suffix word.
    text: &'a str,
    /// A digit run that follows a `.` (subject to the leading-zero rule).
    dotted: bool,
}

/// Cut `s` into tokens; the last token is always `End` or `Invalid`.
fn tokens(s: &str) -> Vec<Token<'_>> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let mut last = Kind::Digit;
    let mut dotted = false;
    let tok = |kind, text, dotted| Token { kind, text, dotted };
    loop {
        if i >= b.len() {
            out.push(tok(Kind::End, "", false));
            return out;
        }
        let c = b[i];
        let next = if c.is_ascii_digit() && matches!(last, Kind::Digit | Kind::Letter) {
            // a digit run: the first component, after `.`, or after a letter
            let n = digit_run(b, i);
            out.push(tok(Kind::Digit, &s[i..i + n], dotted));
            i += n;
            Kind::Digit
        } else if c.is_ascii_digit() && last == Kind::Suffix {
            let n = digit_run(b, i);
            out.push(tok(Kind::SuffixNo, &s[i..i + n], false));
            i += n;
            Kind::SuffixNo
        } else if c.is_ascii_lowercase() && last == Kind::Digit && !out.is_empty() {
            out.push(tok(Kind::Letter, &s[i..i + 1], false));
            i += 1;
            Kind::Letter
        } else if c == b'.' && last == Kind::Digit && i + 1 < b.len() && b[i + 1].is_ascii_digit() {
            i += 1;
            dotted = true;
            continue;
        } else if c == b'_' && last != Kind::RevisionNo {
            let n = b[i + 1..]
                .iter()
                .take_while(|c| c.is_ascii_lowercase())
                .count();
            let word = &s[i + 1..i + 1 + n];
            if !SUFFIXES.contains(&word) {
                out.push(tok(Kind::Invalid, "", false));
                return out;
            }
            out.push(tok(Kind::Suffix, word, false));
            i += 1 + n;
            Kind::Suffix
        } else if c == b'-' && b.get(i + 1) == Some(&b'r') && last != Kind::RevisionNo {
            let n = digit_run(b, i + 2);
            out.push(tok(Kind::RevisionNo, &s[i + 2..i + 2 + n], false));
            i += 2 + n;
            Kind::RevisionNo
        } else {
            out.push(tok(Kind::Invalid, "", false));
            return out;
        };
        dotted = false;
        last = next;
    }
}

/// Compare two decimal digit strings by value (no overflow for long runs).
fn cmp_numeric(a: &str, b: &str) -> Ordering {
    let a = a.trim_start_matches('0');
    let b = b.trim_start_matches('0');
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

fn suffix_rank(word: &str) -> usize {
    SUFFIXES
        .iter()
        .position(|s| *s == word)
        .map_or(PRE_SUFFIXES, |p| if p < PRE_SUFFIXES { p } else { p + 1 })
}

fn is_pre_release(t: &Token<'_>) -> bool {
    t.kind == Kind::Suffix && suffix_rank(t.text) < PRE_SUFFIXES
}

fn cmp_same_kind(a: &Token<'_>, b: &Token<'_>) -> Ordering {
    match a.kind {
        Kind::Digit => {
            let leading_zero = |t: &Token<'_>| t.dotted && t.text.starts_with('0');
            if leading_zero(a) || leading_zero(b) {
                a.text.cmp(b.text)
            } else {
                cmp_numeric(a.text, b.text)
            }
        }
        Kind::SuffixNo | Kind::RevisionNo => cmp_numeric(a.text, b.text),
        Kind::Letter => a.text.cmp(b.text),
        Kind::Suffix => suffix_rank(a.text).cmp(&suffix_rank(b.text)),
        Kind::End | Kind::Invalid => Ordering::Equal,
    }
}

/// Compare two full apk version strings (`1.0-r1` vs `1.0_rc1`) by apk's rules.
///
/// Works on any text (index entries written by other tools included): when a
/// string stops following the grammar, comparison stops there, like apk.
pub fn compare(a: &str, b: &str) -> Ordering {
    let ta = tokens(a);
    let tb = tokens(b);
    for (x, y) in ta.iter().zip(tb.iter()) {
        if x.kind != y.kind {
            if is_pre_release(x) {
                return Ordering::Less;
            }
            if is_pre_release(y) {
                return Ordering::Greater;
            }
            // the side that goes on with a "smaller" kind is the greater version
            return y.kind.cmp(&x.kind);
        }
        if matches!(x.kind, Kind::End | Kind::Invalid) {
            return Ordering::Equal;
        }
        let ord = cmp_same_kind(x, y);
        if ord != Ordering::Equal {
            return ord;
        }
    }
    Ordering::Equal
}

/// apk's fuzzy match (`name~1.2`): `have` agrees with `want` on every token
/// `want` has, so `~1.2` accepts `1.2`, `1.2.9`, `1.2_rc1`, `1.2-r3` and not
/// `1.20` or `1.3`.
pub fn fuzzy_match(have: &str, want: &str) -> bool {
    let th = tokens(have);
    for (i, w) in tokens(want).iter().enumerate() {
        match w.kind {
            Kind::End => return true,
            Kind::Invalid => return false,
            _ => {}
        }
        let Some(h) = th.get(i) else {
            return false;
        };
        if h.kind != w.kind || cmp_same_kind(h, w) != Ordering::Equal {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fuzzy() {
        for (have, want, ok) in [
            ("1.2", "1.2", true),
            ("1.2.9", "1.2", true),
            ("1.2_rc1", "1.2", true),
            ("1.2-r3", "1.2", true),
            ("1.2a", "1.2", true),
            ("1.20", "1.2", false),
            ("1.3", "1.2", false),
            ("1", "1.2", false),
            ("2.0-r1", "2.0-r1", true),
            ("2.0-r10", "2.0-r1", false),
        ] {
            assert_eq!(fuzzy_match(have, want), ok, "{have} ~ {want}");
        }
    }

    /// Every chain is strictly ascending.
    const CHAINS: &[&[&str]] = &[
        &["1.0_rc1", "1.0", "1.0_p1", "1.0a", "1.0.1"],
        &["1.2", "1.10"],
        &["1.0_rc", "1.0_rc1", "1.0_rc1_p2"],
        &["1.0", "1.0-r0", "1.0-r1", "1.0-r10"],
        &["1.01", "1.1"],
        &["1.010", "1.1"],
        &[
            "1.0_alpha",
            "1.0_beta",
            "1.0_pre",
            "1.0_rc",
            "1.0",
            "1.0_cvs",
            "1.0_svn",
            "1.0_git",
            "1.0_hg",
            "1.0_p",
        ],
        &["1.0_alpha1", "1.0_alpha2", "1.0_alpha10", "1.0_beta1"],
        &["0.9", "0.9.9", "1", "1.0", "1.0.0"],
        &["1.0-r9", "1.0_p1-r0", "1.0.1-r0"],
        &["2.15.05", "2.15.4", "2.16.01", "2.16.1"],
        &["1.0a", "1.0b", "1.0.0"],
        &["20231231", "20240101"],
        &["1.0_rc1_alpha", "1.0_rc1", "1.0_rc1-r0"],
        &["99999999999999999999", "100000000000000000000"],
    ];

    #[test]
    fn orderings() {
        for chain in CHAINS {
            for (i, a) in chain.iter().enumerate() {
                assert_eq!(compare(a, a), Ordering::Equal, "{a} == {a}");
                for b in &chain[i + 1..] {
                    assert_eq!(compare(a, b), Ordering::Less, "{a} < {b}");
                    assert_eq!(compare(b, a), Ordering::Greater, "{b} > {a}");
                }
            }
        }
    }

    #[test]
    fn equalities() {
        for (a, b) in [
            ("1.0-r00", "1.0-r0"),
            ("1.0_rc01", "1.0_rc1"),
            ("1.2", "1.2"),
        ] {
            assert_eq!(compare(a, b), Ordering::Equal, "{a} == {b}");
        }
    }

    #[test]
    fn parse_accepts() {
        for s in [
            "1",
            "0",
            "1.0",
            "1.2.3",
            "1.0a",
            "1.0_rc1",
            "1.0_rc",
            "1.0_rc1_p2",
            "2.15.05",
            "1.010",
            "20240101",
            "1.0_p",
            "0.0.0",
            "1.0z_git20240101",
        ] {
            assert_eq!(Version::parse(s).map(|v| v.to_string()), Ok(s.to_string()));
        }
    }

    #[test]
    fn parse_rejects_with_reason() {
        let cases = [
            ("", "empty"),
            ("v1.2", "leading `v`"),
            ("V1.2", "leading `v`"),
            ("1.2.3+b", "build metadata"),
            ("1.2.3-rc1", "`_rc`"),
            ("1.0-beta2", "`_beta`"),
            ("1.0A", "uppercase"),
            ("1.0ab", "only one letter"),
            ("1.0_foo", "unknown suffix `_foo`"),
            ("1.0_RC1", "unknown suffix"),
            ("01.2", "leading zero"),
            ("1..2", "followed by digits"),
            ("1.", "followed by digits"),
            (".1", "start with a digit"),
            ("abc", "start with a digit"),
            ("1.0-r1", "release"),
            ("1.0 ", "unexpected ` `"),
            ("1.0a1", "unexpected `1`"),
            ("1.0-", "unexpected `-`"),
        ];
        for (input, why) in cases {
            let e = Version::parse(input).expect_err(input);
            assert_eq!(e.input, input);
            assert!(e.reason.contains(why), "{input}: {} lacks {why}", e.reason);
        }
    }

    #[test]
    fn parse_full() {
        for s in ["1.0", "1.0-r0", "1.0_rc1-r12"] {
            assert_eq!(Version::parse_full(s).unwrap().as_str(), s);
        }
        for (s, why) in [
            ("1.0-r", "missing release"),
            ("1.0-r01", "leading zero"),
            ("1.0-rx", "unexpected `-`"),
            ("1.2.3-rc1", "`_rc`"),
            ("1.0-r1-r2", "not a decimal"),
            ("v1.0-r0", "leading `v`"),
        ] {
            let e = Version::parse_full(s).expect_err(s);
            assert!(e.reason.contains(why), "{s}: {}", e.reason);
        }
        let v = Version::parse_full("1.2_rc1-r3").unwrap();
        assert_eq!((v.upstream(), v.release()), ("1.2_rc1", Some(3)));
        let v = Version::parse("1.2").unwrap();
        assert_eq!((v.upstream(), v.release()), ("1.2", None));
    }

    #[test]
    fn ord_sorts_like_apk() {
        let mut v: Vec<Version> = ["1.0.1", "1.0a", "1.0_p1", "1.0", "1.0_rc1"]
            .iter()
            .map(|s| Version::parse(s).unwrap())
            .collect();
        v.sort();
        let got: Vec<&str> = v.iter().map(Version::as_str).collect();
        assert_eq!(got, ["1.0_rc1", "1.0", "1.0_p1", "1.0a", "1.0.1"]);
        let a = Version::parse("1.0_rc01").unwrap();
        let b = Version::parse("1.0_rc1").unwrap();
        assert_ne!(a.cmp(&b), Ordering::Equal, "Ord agrees with Eq");
    }

    #[test]
    fn compare_tolerates_invalid_text() {
        assert_eq!(compare("1.0", "1.0_foo"), Ordering::Greater);
        assert_eq!(compare("1.0_foo", "1.0_bar"), Ordering::Equal);
        assert_eq!(compare("", ""), Ordering::Equal);
        assert_eq!(compare("", "1"), Ordering::Less);
    }
}
