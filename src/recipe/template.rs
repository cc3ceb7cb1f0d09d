//! `${version}` in recipe strings (`url`, `filename`, `builddir`, and the
//! `[update]` checksum list): one variable, expanded when the recipe is
//! read, so a version bump is a one-line edit. Any other `${…}` is an error
//! rather than text left for a shell to misread.

/// Replace every `${version}` in `text`; any other `${…}` (or an unclosed
/// `${`) is an error naming it.
pub(crate) fn expand(text: &str, version: &str) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("${") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let Some(end) = after.find('}') else {
            return Err(format!("`{text}` has an unclosed `${{`"));
        };
        match &after[..end] {
            "version" => out.push_str(version),
            other => {
                return Err(format!(
                    "`${{{other}}}` is not a recipe variable (only `${{version}}` is)"
                ));
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::expand;

    #[test]
    fn expands_version_and_refuses_other_variables() {
        assert_eq!(
            expand("https://x.org/a-${version}.tar.gz", "1.2").unwrap(),
            "https://x.org/a-1.2.tar.gz"
        );
        assert_eq!(expand("${version}/${version}", "3").unwrap(), "3/3");
        assert_eq!(expand("no vars $HOME", "3").unwrap(), "no vars $HOME");
        assert!(
            expand("a-${pkgver}", "1")
                .unwrap_err()
                .contains("${pkgver}")
        );
        assert!(expand("a-${version", "1").unwrap_err().contains("unclosed"));
    }
}
