//! The grammar check behind [`Version::parse`](super::Version::parse):
//! where a version string stops matching, and why.

use super::{SUFFIXES, VersionError};

pub(super) fn err(input: &str, reason: impl Into<String>) -> VersionError {
    VersionError {
        input: input.to_string(),
        reason: reason.into(),
    }
}

pub(super) fn unexpected(s: &str, at: usize) -> String {
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
pub(super) fn is_release_tail(rest: &str) -> bool {
    rest.strip_prefix("-r")
        .is_some_and(|t| t.is_empty() || t.starts_with(|c: char| c.is_ascii_digit()))
}

/// A decimal number without a leading zero (`0` itself is fine).
pub(super) fn check_number(digits: &str, what: &str) -> Result<(), String> {
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

pub(super) fn digit_run(b: &[u8], from: usize) -> usize {
    b[from..].iter().take_while(|c| c.is_ascii_digit()).count()
}

/// Check the upstream grammar; return the byte offset where it stops.
pub(super) fn check_upstream(s: &str) -> Result<usize, String> {
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
