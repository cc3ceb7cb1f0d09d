//! Built-in subpackages (`subpackages = ["dev", "doc"]`), modelled on
//! abuild's `default_dev` and `default_doc`: which paths of `$pkgdir` move to
//! `NAME-dev` / `NAME-doc`, and that both depend on the exact parent build.
//!
//! Globs are relative to `$pkgdir`; `*` stays within one folder, `**` crosses
//! folders; a glob matching a folder moves the whole folder.

use super::model::Subpackage;

/// The names accepted in `subpackages = [...]`.
pub(crate) const BUILTIN: &[&str] = &["dev", "doc"];

/// Paths abuild's `default_dev` moves: headers, pkg-config and CMake files,
/// static libraries and libtool archives, the unversioned `.so` link,
/// aclocal/gettext/vala/gir development data and `*-config` scripts.
const DEV_PATHS: &[&str] = &[
    "usr/include",
    "usr/lib/pkgconfig",
    "usr/share/pkgconfig",
    "usr/lib/cmake",
    "usr/share/cmake",
    "usr/share/aclocal",
    "usr/share/gettext",
    "usr/share/vala/vapi",
    "usr/share/gir-[0-9]*",
    "usr/bin/*-config",
    "usr/lib/*.a",
    "usr/lib/*.la",
    "usr/lib/*.so",
    "lib/*.a",
    "lib/*.so",
];

/// Paths abuild's `default_doc` moves: documentation, man and info pages.
const DOC_PATHS: &[&str] = &[
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/gtk-doc",
    "usr/share/devhelp",
    "usr/share/html",
];

/// The built-in subpackage `kind` (`dev` or `doc`) of package `name`.
/// `None` for an unknown kind.
pub(crate) fn builtin(
    kind: &str,
    name: &str,
    full_version: &str,
    description: &str,
) -> Option<Subpackage> {
    let (paths, what) = match kind {
        "dev" => (DEV_PATHS, "development files"),
        "doc" => (DOC_PATHS, "documentation"),
        _ => return None,
    };
    Some(Subpackage {
        name: format!("{name}-{kind}"),
        description: format!("{description} ({what})"),
        paths: paths.iter().map(|p| (*p).to_string()).collect(),
        depends: vec![format!("{name}={full_version}")],
        provides: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_and_doc() {
        let dev = builtin("dev", "hello", "1.0-r2", "Says hello").unwrap();
        assert_eq!(dev.name, "hello-dev");
        assert_eq!(dev.description, "Says hello (development files)");
        assert_eq!(dev.depends, ["hello=1.0-r2"]);
        assert!(dev.paths.iter().any(|p| p == "usr/include"));
        assert!(dev.paths.iter().any(|p| p == "usr/lib/*.a"));
        let doc = builtin("doc", "hello", "1.0-r2", "Says hello").unwrap();
        assert_eq!(doc.name, "hello-doc");
        assert!(doc.paths.iter().any(|p| p == "usr/share/man"));
        assert!(builtin("static", "hello", "1.0-r0", "x").is_none());
        for p in DEV_PATHS.iter().chain(DOC_PATHS) {
            assert_eq!(super::super::check::path_glob(p), Ok(()), "{p}");
        }
    }
}
