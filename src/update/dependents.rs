//! Which recipes get `release + 1` when a recipe moves to a new version.
//!
//! The rule: every recipe that names the updated recipe, one of its
//! subpackages, or one of its `provides` in `makedepends` (a direct build
//! dependent). Such a recipe is rebuilt against the new version anyway (its
//! unit key covers its dependencies' keys), and may link it statically or
//! against a changed soname; without a bump, the rebuilt package would carry
//! the old `pkgver` with new bytes and apk clients would never upgrade to it.
//! Runtime-only dependents (`depends`) are left alone: their bytes do not
//! change.

use crate::recipe::Recipe;

/// The name part of a dependency string (`libgreet-dev>=1.0` → `libgreet-dev`).
fn dep_name(dep: &str) -> &str {
    let dep = dep.trim_start_matches('!');
    dep.split(['<', '>', '=', '~']).next().unwrap_or(dep)
}

/// Direct build dependents of `updated` among `all`, by name.
pub fn of<'a>(updated: &Recipe, all: &'a [Recipe]) -> Vec<&'a Recipe> {
    let mut names: Vec<&str> = vec![updated.name.as_str()];
    names.extend(updated.subpackages.iter().map(|s| s.name.as_str()));
    names.extend(updated.provides.iter().map(|p| dep_name(p)));
    all.iter()
        .filter(|r| r.name != updated.name)
        .filter(|r| r.makedepends.iter().any(|d| names.contains(&dep_name(d))))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn dep_names() {
        assert_eq!(super::dep_name("libgreet-dev>=1.0"), "libgreet-dev");
        assert_eq!(super::dep_name("so:libc.so.6"), "so:libc.so.6");
        assert_eq!(super::dep_name("zlib"), "zlib");
    }
}
