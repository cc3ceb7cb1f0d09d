//! Candidate tags → the version to update to (pure).
//!
//! The normalization every candidate goes through, in order:
//! 1. with a `regex`: it must match; group 1 (or the whole match) is the
//!    version. Without one: a leading `v`/`V` is dropped, and so is a leading
//!    `NAME-` (`gizmo-3.0`);
//! 2. upstream spellings become apk's: `-rc1`, `.rc1`, `rc1` → `_rc1` (also
//!    `alpha`, `beta`, `pre`; `a1`/`b1` are left alone), `+meta` is dropped;
//! 3. it must follow apk's version grammar, or it is skipped (one odd tag
//!    never aborts the run);
//! 4. `ignore` (raw or normalized spelling) and, unless `prereleases`,
//!    versions with `_alpha`, `_beta`, `_pre` or `_rc` are skipped;
//! 5. the greatest by apk's order (never semver) wins when it is above the
//!    current version.

use regex::Regex;

use crate::recipe::UpdateSpec;
use crate::version::Version;

/// What one candidate became.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A usable version.
    Version(Version),
    /// Skipped, and why.
    Skipped(String),
}

/// The outcome for one recipe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pick {
    /// The greatest allowed version in the feed, if any.
    pub newest: Option<Version>,
    /// Candidates skipped, with the reason (for `-v`).
    pub skipped: Vec<(String, String)>,
}

/// Compile the recipe's regex (validated when the recipe was read).
pub fn compile(spec: &UpdateSpec) -> Option<Regex> {
    spec.regex.as_deref().and_then(|r| {
        regex::RegexBuilder::new(r)
            .size_limit(crate::recipe::REGEX_SIZE_LIMIT)
            .build()
            .ok()
    })
}

/// Normalize one candidate for recipe `name`.
pub fn normalize(candidate: &str, name: &str, spec: &UpdateSpec, re: Option<&Regex>) -> Verdict {
    let text = match re {
        Some(re) => match re.captures(candidate) {
            Some(c) => c.get(1).or_else(|| c.get(0)).map_or("", |m| m.as_str()),
            None => return Verdict::Skipped("does not match `regex`".into()),
        },
        None => {
            let t = candidate.trim();
            let t = t.strip_prefix(&format!("{name}-")).unwrap_or(t);
            t.strip_prefix(['v', 'V']).unwrap_or(t)
        }
    };
    let apk = apk_spelling(text);
    let version = match Version::parse(&apk) {
        Ok(v) => v,
        Err(e) => return Verdict::Skipped(format!("not an apk version: {}", e.reason)),
    };
    if spec
        .ignore
        .iter()
        .any(|i| i == candidate || i == text || i == &apk)
    {
        return Verdict::Skipped("listed in `ignore`".into());
    }
    if !spec.prereleases && is_prerelease(&version) {
        return Verdict::Skipped("a pre-release (`prereleases = false`)".into());
    }
    Verdict::Version(version)
}

/// Whether a version carries a pre-release suffix.
pub fn is_prerelease(v: &Version) -> bool {
    ["_alpha", "_beta", "_pre", "_rc"]
        .iter()
        .any(|s| v.as_str().contains(s))
}

/// Upstream spellings of pre-release suffixes in apk's form.
fn apk_spelling(text: &str) -> String {
    let text = text.split('+').next().unwrap_or(text);
    let mut out = text.to_string();
    for suffix in ["alpha", "beta", "pre", "rc"] {
        for sep in ["-", ".", ""] {
            let from = format!("{sep}{suffix}");
            if let Some(at) = out.find(&from)
                && at > 0
                && out.as_bytes()[at - 1].is_ascii_alphanumeric()
            {
                let rest = out[at + from.len()..]
                    .trim_start_matches(['.', '-'])
                    .to_string();
                out = format!("{}_{suffix}{rest}", &out[..at]);
                break;
            }
        }
    }
    out
}

/// Pick the newest allowed version among `candidates`.
pub fn pick(candidates: &[String], name: &str, spec: &UpdateSpec) -> Pick {
    let re = compile(spec);
    let mut newest: Option<Version> = None;
    let mut skipped = Vec::new();
    for c in candidates {
        match normalize(c, name, spec, re.as_ref()) {
            Verdict::Version(v) => {
                if newest.as_ref().is_none_or(|n| v > *n) {
                    newest = Some(v);
                }
            }
            Verdict::Skipped(why) => skipped.push((c.clone(), why)),
        }
    }
    Pick { newest, skipped }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recipe::Feed;

    fn spec(regex: Option<&str>, ignore: &[&str], pre: bool) -> UpdateSpec {
        UpdateSpec {
            feed: Feed::Url("https://x.invalid/f".into()),
            regex: regex.map(str::to_string),
            ignore: ignore.iter().map(|s| s.to_string()).collect(),
            prereleases: pre,
            checksums: None,
        }
    }

    fn list(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn apk_order_not_string_order() {
        let s = spec(None, &[], false);
        let p = pick(&list(&["v1.9", "v1.10", "v1.9.9"]), "w", &s);
        assert_eq!(p.newest.unwrap().as_str(), "1.10");
    }

    #[test]
    fn release_candidates_sort_below_the_release_and_are_skipped_by_default() {
        let s = spec(None, &[], true);
        let p = pick(&list(&["2.0-rc1", "2.0", "2.0.rc2"]), "w", &s);
        assert_eq!(p.newest.unwrap().as_str(), "2.0");
        let p = pick(&list(&["2.0-rc1", "1.9"]), "w", &s);
        assert_eq!(p.newest.unwrap().as_str(), "2.0_rc1");
        let s = spec(None, &[], false);
        let p = pick(&list(&["2.0-rc1", "1.9", "2.1beta3"]), "w", &s);
        assert_eq!(p.newest.unwrap().as_str(), "1.9");
        assert_eq!(p.skipped.len(), 2, "{:?}", p.skipped);
    }

    #[test]
    fn ignore_list_regex_and_odd_tags() {
        let s = spec(None, &["1.3"], false);
        let p = pick(&list(&["1.3", "1.2", "nightly/2026", "latest"]), "w", &s);
        assert_eq!(p.newest.unwrap().as_str(), "1.2");
        assert_eq!(p.skipped.len(), 3);
        let s = spec(Some(r"^release-(\d+(?:\.\d+)*)$"), &[], false);
        let p = pick(&list(&["release-4.1", "v9.0", "release-4.0"]), "w", &s);
        assert_eq!(p.newest.unwrap().as_str(), "4.1");
        let p = pick(
            &list(&["gizmo-3.0", "gizmo-2.10"]),
            "gizmo",
            &spec(None, &[], false),
        );
        assert_eq!(p.newest.unwrap().as_str(), "3.0");
        assert_eq!(apk_spelling("1.2.3+build.5"), "1.2.3");
        assert_eq!(apk_spelling("2.2.0-beta.1"), "2.2.0_beta1");
    }
}
