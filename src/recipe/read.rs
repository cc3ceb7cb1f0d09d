//! Typed, located reads from a parsed TOML document.
//!
//! Recipes are read from toml's spanned document tree rather than through
//! serde so that (1) every problem keeps the span of the key or value it is
//! about, and (2) reading goes on after a problem, so one run reports all of
//! them. Each accessor records a problem (wrong type, missing field) in
//! [`Problems`] and returns `None`; callers just skip what is missing.

use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::error::{Problems, did_you_mean};

/// A string (or other value) with the byte span it came from.
pub(crate) type Located<T> = (T, Range<usize>);

/// One TOML table being read: `[package]`, `[[source]] #2`, the top level.
#[derive(Debug, Clone)]
pub(crate) struct Section<'a, 'i> {
    /// How messages name it: `[package]`, `[[source]] #2`, `the top level`.
    pub(crate) name: String,
    pub(crate) table: &'a DeTable<'i>,
    /// Where missing-field problems point: the table header.
    pub(crate) span: Range<usize>,
}

fn type_name(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

impl<'a, 'i> Section<'a, 'i> {
    /// `` `key` in [package] ``: how a message names one field.
    pub(crate) fn field(&self, key: &str) -> String {
        format!("`{key}` in {}", self.name)
    }

    /// Record every key not in `allowed`, with a did-you-mean hint.
    pub(crate) fn check_keys(&self, p: &mut Problems<'_>, allowed: &[&str]) {
        for key in self.table.keys() {
            let k: &str = key.get_ref();
            if allowed.contains(&k) {
                continue;
            }
            let mut msg = format!("unknown field `{k}` in {}", self.name);
            match did_you_mean(k, allowed) {
                Some(s) => msg.push_str(&format!(", did you mean `{s}`?")),
                None => msg.push_str(&format!(" (known fields: {})", allowed.join(", "))),
            }
            p.at(key.span(), msg);
        }
    }

    fn value(&self, key: &str) -> Option<&'a Spanned<DeValue<'i>>> {
        self.table.get(key)
    }

    fn wrong_type(&self, p: &mut Problems<'_>, key: &str, want: &str, v: &Spanned<DeValue<'_>>) {
        let msg = format!(
            "{} must be {want}, found {}",
            self.field(key),
            type_name(v.get_ref())
        );
        p.at(v.span(), msg);
    }

    /// Record that a required field is missing.
    pub(crate) fn missing(&self, p: &mut Problems<'_>, key: &str, what: &str) {
        p.at(
            self.span.clone(),
            format!("missing {} ({what})", self.field(key)),
        );
    }

    /// An optional string.
    pub(crate) fn str(&self, p: &mut Problems<'_>, key: &str) -> Option<Located<String>> {
        let v = self.value(key)?;
        match v.get_ref() {
            DeValue::String(s) => Some((s.to_string(), v.span())),
            DeValue::Integer(_) | DeValue::Float(_) => {
                self.wrong_type(p, key, "a string (put the value in quotes)", v);
                None
            }
            _ => {
                self.wrong_type(p, key, "a string", v);
                None
            }
        }
    }

    /// A required string; `what` describes it in the missing-field message.
    pub(crate) fn req_str(
        &self,
        p: &mut Problems<'_>,
        key: &str,
        what: &str,
    ) -> Option<Located<String>> {
        if self.value(key).is_none() {
            self.missing(p, key, what);
        }
        self.str(p, key)
    }

    /// An optional integer.
    pub(crate) fn int(&self, p: &mut Problems<'_>, key: &str) -> Option<Located<i64>> {
        let v = self.value(key)?;
        match v.get_ref() {
            DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
                Ok(n) => Some((n, v.span())),
                Err(_) => {
                    p.at(v.span(), format!("{} is out of range", self.field(key)));
                    None
                }
            },
            _ => {
                self.wrong_type(p, key, "an integer", v);
                None
            }
        }
    }

    /// An optional boolean.
    pub(crate) fn bool(&self, p: &mut Problems<'_>, key: &str) -> Option<Located<bool>> {
        let v = self.value(key)?;
        match v.get_ref() {
            DeValue::Boolean(b) => Some((*b, v.span())),
            _ => {
                self.wrong_type(p, key, "a boolean (true or false)", v);
                None
            }
        }
    }

    /// An optional array of strings; `None` when absent or mistyped.
    pub(crate) fn str_list(&self, p: &mut Problems<'_>, key: &str) -> Option<Vec<Located<String>>> {
        let v = self.value(key)?;
        let DeValue::Array(items) = v.get_ref() else {
            self.wrong_type(p, key, "an array of strings", v);
            return None;
        };
        let mut out = Vec::new();
        let mut ok = true;
        for item in items.iter() {
            match item.get_ref() {
                DeValue::String(s) => out.push((s.to_string(), item.span())),
                other => {
                    ok = false;
                    p.at(
                        item.span(),
                        format!(
                            "{} must hold only strings, found {}",
                            self.field(key),
                            type_name(other)
                        ),
                    );
                }
            }
        }
        ok.then_some(out)
    }

    /// An optional sub-table, read as a section named `[key]`.
    pub(crate) fn table(&self, p: &mut Problems<'_>, key: &str) -> Option<Section<'a, 'i>> {
        let v = self.value(key)?;
        match v.get_ref() {
            DeValue::Table(t) => Some(Section {
                name: format!("[{key}]"),
                table: t,
                span: v.span(),
            }),
            _ => {
                self.wrong_type(p, key, "a table", v);
                None
            }
        }
    }

    /// An optional array of tables (`[[key]]`), each a section named
    /// `[[key]] #N` (1-based).
    pub(crate) fn tables(&self, p: &mut Problems<'_>, key: &str) -> Vec<Section<'a, 'i>> {
        let Some(v) = self.value(key) else {
            return Vec::new();
        };
        let DeValue::Array(items) = v.get_ref() else {
            self.wrong_type(p, key, &format!("an array of tables (`[[{key}]]`)"), v);
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            match item.get_ref() {
                DeValue::Table(t) => out.push(Section {
                    name: format!("[[{key}]] #{}", i + 1),
                    table: t,
                    span: item.span(),
                }),
                other => p.at(
                    item.span(),
                    format!(
                        "each `{key}` entry must be a table, found {}",
                        type_name(other)
                    ),
                ),
            }
        }
        out
    }
}
