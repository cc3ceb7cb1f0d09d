//! One dependency string, parsed: `name`, `name<op>version`, `!name`.

use std::cmp::Ordering;

use crate::version::{compare, fuzzy_match};

/// A version comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `=`
    Eq,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `~` / `=~`: the version starts with the given one.
    Fuzzy,
}

/// A parsed dependency string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dep {
    /// Name or provided name (`so:libc.so.6`).
    pub name: String,
    /// Optional version constraint.
    pub constraint: Option<(Op, String)>,
    /// `!name`: must not be installed.
    pub conflict: bool,
}

impl Dep {
    /// Parse `name`, `name>=1.0`, `!name`, `so:libfoo.so.1`.
    pub fn parse(s: &str) -> Dep {
        let (conflict, s) = match s.strip_prefix('!') {
            Some(r) => (true, r),
            None => (false, s),
        };
        let Some(i) = s.find(['<', '>', '=', '~']) else {
            return Dep {
                name: s.to_string(),
                constraint: None,
                conflict,
            };
        };
        let (name, rest) = s.split_at(i);
        let ops = [
            ("=~", Op::Fuzzy),
            (">=", Op::Ge),
            ("<=", Op::Le),
            ("~", Op::Fuzzy),
            ("=", Op::Eq),
            (">", Op::Gt),
            ("<", Op::Lt),
        ];
        let (op, ver) = ops
            .iter()
            .find_map(|(t, op)| rest.strip_prefix(t).map(|v| (*op, v)))
            .unwrap_or((Op::Eq, rest));
        Dep {
            name: name.to_string(),
            constraint: Some((op, ver.to_string())),
            conflict,
        }
    }

    /// Whether a package (or provide) of version `version` satisfies the
    /// constraint; `None` is an unversioned provide, which satisfies only a
    /// dependency without one.
    pub(super) fn accepts(&self, version: Option<&str>) -> bool {
        match (&self.constraint, version) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some((op, want)), Some(have)) => {
                let o = compare(have, want);
                match op {
                    Op::Eq => o == Ordering::Equal,
                    Op::Lt => o == Ordering::Less,
                    Op::Le => o != Ordering::Greater,
                    Op::Gt => o == Ordering::Greater,
                    Op::Ge => o != Ordering::Less,
                    Op::Fuzzy => fuzzy_match(have, want),
                }
            }
        }
    }
}
