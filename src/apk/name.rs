//! The apk grammar of package names and versions, checked wherever a name or
//! version read from a package or an index can become part of a path.
//!
//! A repository file is `<name>-<version>.apk`, joined to the repository
//! folder; a `.PKGINFO` or `APKINDEX` that says `pkgname = ../x` must never
//! reach that join. Both readers ([`super::PkgInfo::parse`] and
//! [`super::index::parse`]) refuse such values, so every later user holds
//! checked names.

use crate::version::Version;

/// Longest accepted package name (apk-tools keeps names in short buffers).
pub const MAX_NAME: usize = 255;

/// Check a package name: `[A-Za-z0-9][A-Za-z0-9+_.-]*`, at most
/// [`MAX_NAME`] bytes. (apk allows upper case; forge's own recipes use
/// lower case only.)
pub fn check_pkgname(s: &str) -> Result<(), String> {
    let mut bytes = s.bytes();
    match bytes.next() {
        None => return Err("empty package name".into()),
        Some(c) if !c.is_ascii_alphanumeric() => {
            return Err(format!(
                "package name `{}` must start with a letter or digit",
                s.escape_default()
            ));
        }
        _ => {}
    }
    if s.len() > MAX_NAME {
        return Err(format!("package name is longer than {MAX_NAME} bytes"));
    }
    if bytes.any(|c| !(c.is_ascii_alphanumeric() || b"+_.-".contains(&c))) {
        return Err(format!(
            "package name `{}` has a character outside A-Z, a-z, 0-9, `+`, `_`, `.`, `-`",
            s.escape_default()
        ));
    }
    Ok(())
}

/// Check a full package version (`1.2.3-r0`) against apk's version grammar.
pub fn check_pkgver(s: &str) -> Result<(), String> {
    Version::parse_full(s)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in [
            "hello",
            "Hello-doc",
            "py3-foo",
            "g++",
            "libstdc++6",
            "a.b_c",
            "7zip",
        ] {
            assert_eq!(check_pkgname(ok), Ok(()), "{ok}");
        }
        let long = "a".repeat(MAX_NAME + 1);
        for bad in [
            "", "../x", "a/b", ".hidden", "-x", "x y", "so:libc", "x=1", "x\n", &long,
        ] {
            assert!(check_pkgname(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn versions() {
        for ok in ["1.0-r0", "2.12", "1.2.3_rc1-r7", "0.1_git20240101-r0"] {
            assert_eq!(check_pkgver(ok), Ok(()), "{ok}");
        }
        for bad in ["", "../1", "1.0/../../x", "1.0-r", "x", "1.0 -r0"] {
            assert!(check_pkgver(bad).is_err(), "{bad:?}");
        }
    }
}
