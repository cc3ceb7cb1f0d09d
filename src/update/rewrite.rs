//! `recipe.toml` edits with `toml_edit`: only the values that change are
//! replaced, each keeping its own decoration (spacing, trailing comment), so
//! comments and layout survive. The caller validates the result as a recipe
//! before anything is written.

use toml_edit::{DocumentMut, Item, Value};

/// Why a recipe could not be edited.
#[derive(Debug, thiserror::Error)]
pub enum RewriteError {
    /// Not TOML (it parsed when loaded, so it changed since).
    #[error("cannot edit the recipe: {0}")]
    Parse(#[from] toml_edit::TomlError),
    /// A field the edit needs is not there.
    #[error("cannot edit the recipe: {0}")]
    Shape(String),
}

/// The new checksum of the `index`-th `[[source]]` (0-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewChecksum {
    /// Which `[[source]]`.
    pub index: usize,
    /// `sha256` or `sha512` (the key the source already uses).
    pub key: &'static str,
    /// Lowercase hex.
    pub hex: String,
}

/// Replace a value, keeping its decoration.
fn set(item: &mut Item, value: impl Into<Value>) {
    let decor = item.as_value().map(|v| v.decor().clone());
    let mut new: Value = value.into();
    if let Some(d) = decor {
        *new.decor_mut() = d;
    }
    *item = Item::Value(new);
}

/// `version = NEW`, `release = 0` (when present), and the given checksums.
pub fn bump_version(
    text: &str,
    version: &str,
    checksums: &[NewChecksum],
) -> Result<String, RewriteError> {
    let mut doc: DocumentMut = text.parse()?;
    let pkg = doc
        .get_mut("package")
        .and_then(Item::as_table_like_mut)
        .ok_or_else(|| RewriteError::Shape("no [package] table".into()))?;
    let v = pkg
        .get_mut("version")
        .ok_or_else(|| RewriteError::Shape("no `version` in [package]".into()))?;
    set(v, version);
    if let Some(r) = pkg.get_mut("release") {
        set(r, 0i64);
    }
    let sources = doc.get_mut("source").and_then(Item::as_array_of_tables_mut);
    let mut tables: Vec<_> = match sources {
        Some(a) => a.iter_mut().collect(),
        None => Vec::new(),
    };
    for c in checksums {
        let t = tables
            .get_mut(c.index)
            .ok_or_else(|| RewriteError::Shape(format!("no [[source]] #{}", c.index + 1)))?;
        let item = t
            .get_mut(c.key)
            .ok_or_else(|| RewriteError::Shape(format!("no `{}` in [[source]]", c.key)))?;
        set(item, c.hex.as_str());
    }
    Ok(doc.to_string())
}

/// `release = release + 1` (inserted after `version` as `release = 1` when
/// absent).
pub fn bump_release(text: &str) -> Result<String, RewriteError> {
    let mut doc: DocumentMut = text.parse()?;
    let pkg = doc
        .get_mut("package")
        .and_then(Item::as_table_mut)
        .ok_or_else(|| RewriteError::Shape("no [package] table".into()))?;
    match pkg.get_mut("release") {
        Some(item) => {
            let n = item
                .as_integer()
                .ok_or_else(|| RewriteError::Shape("`release` is not an integer".into()))?;
            set(item, n + 1);
        }
        None => {
            let after: Vec<String> = pkg
                .iter()
                .map(|(k, _)| k.to_string())
                .skip_while(|k| k != "version")
                .skip(1)
                .collect();
            pkg.insert("release", toml_edit::value(1i64));
            // keep `release` beside `version`: move what followed it behind
            for k in after {
                if let Some((key, item)) = pkg.remove_entry(&k) {
                    pkg.insert_formatted(&key, item);
                }
            }
        }
    }
    Ok(doc.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# widget: a test recipe
schema = 1

[package]
name = "widget"
version = "1.9.2"   # bumped by forge update
release = 3
description = "Widget"

# the release tarball
[[source]]
url = "https://example.org/widget-${version}.tar.gz"
sha256 = "0000000000000000000000000000000000000000000000000000000000000000" # old

[[source]]
path = "fix.patch"
"#;

    #[test]
    fn bump_keeps_comments_and_layout() {
        let hex = "ab".repeat(32);
        let new = bump_version(
            TEXT,
            "1.10.0",
            &[NewChecksum {
                index: 0,
                key: "sha256",
                hex: hex.clone(),
            }],
        )
        .unwrap();
        let want = TEXT
            .replace("\"1.9.2\"", "\"1.10.0\"")
            .replace("release = 3", "release = 0")
            .replace(&"0".repeat(64), &hex);
        assert_eq!(new, want);
    }

    #[test]
    fn release_bump_inserts_or_increments() {
        let once = bump_release(TEXT).unwrap();
        assert_eq!(once, TEXT.replace("release = 3", "release = 4"));
        let bare = "[package]\nname = \"a\"\nversion = \"1\"\ndescription = \"d\"\n";
        assert_eq!(
            bump_release(bare).unwrap(),
            "[package]\nname = \"a\"\nversion = \"1\"\nrelease = 1\ndescription = \"d\"\n"
        );
    }
}
