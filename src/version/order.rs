//! apk's version ordering: the tokenizer and the pairwise comparison
//! (see the module docs of [`crate::version`]).

use std::cmp::Ordering;

use super::grammar::digit_run;
use super::{PRE_SUFFIXES, SUFFIXES};

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
