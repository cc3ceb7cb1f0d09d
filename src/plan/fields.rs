//! The stable byte encoding of everything hashed into a unit key.
//!
//! A key must change exactly when an input changes, on every forge build and
//! every compiler: so nothing hashed is Rust `Debug` output (whose format a
//! derive or a toolchain may change) or text joined with a separator a value
//! may contain. Every value goes through [`Fields`], a sequence of
//! netstrings: `<decimal byte length>:<bytes>,` for the field name, then for
//! the value; a list is its item count, then each item. The encoding is
//! unambiguous (no value can imitate a field boundary) and documented here,
//! so a key can be recomputed by hand; a unit test pins one key.

/// A builder of the field encoding.
#[derive(Debug, Default)]
pub struct Fields {
    out: String,
}

impl Fields {
    /// An empty encoding.
    pub fn new() -> Fields {
        Fields::default()
    }

    fn netstring(&mut self, s: &str) {
        self.out.push_str(&s.len().to_string());
        self.out.push(':');
        self.out.push_str(s);
        self.out.push(',');
    }

    /// Add `name` with one value.
    pub fn field(&mut self, name: &str, value: &str) -> &mut Fields {
        self.netstring(name);
        self.netstring(value);
        self
    }

    /// Add `name` with a list of values (count first).
    pub fn list<S: AsRef<str>>(&mut self, name: &str, items: &[S]) -> &mut Fields {
        self.netstring(name);
        self.netstring(&items.len().to_string());
        for i in items {
            self.netstring(i.as_ref());
        }
        self
    }

    /// The encoded text.
    pub fn finish(&mut self) -> String {
        std::mem::take(&mut self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_is_exact_and_unambiguous() {
        let got = Fields::new()
            .field("name", "a,b")
            .list("deps", &["x", "y:1"])
            .field("empty", "")
            .finish();
        assert_eq!(got, "4:name,3:a,b,4:deps,1:2,1:x,3:y:1,5:empty,0:,");
        // Values that look like separators cannot collide.
        let a = Fields::new().list("l", &["a b"]).finish();
        let b = Fields::new().list("l", &["a", "b"]).finish();
        assert_ne!(a, b);
    }
}
