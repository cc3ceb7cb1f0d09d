//! Surgical edits of a kustomization's `images:` list: the `newTag` and
//! `digest` of matching entries change in place, and every other byte
//! (comments, quoting, indentation, key order, blank lines) stays as it was.
//! Nothing is re-serialized.
//!
//! The part of YAML understood is the one kustomize files use for images: a
//! top-level `images:` key holding a block sequence of block mappings
//! (`- name: x` then `  newTag: y` lines). An entry matches a repository
//! when its `newName`, or else its `name`, equals it, as kustomize's image
//! transformer resolves them. A flow-style list or entry is refused with
//! its line, never guessed at.

/// A pin to apply: entries for `repository` get `tag` and `digest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    /// The image repository as published, e.g. `registry.lan:5000/forge/hello`.
    pub repository: String,
    /// The tag (`newTag`).
    pub tag: String,
    /// `sha256:<64 hex>` (`digest`).
    pub digest: String,
}

/// A kustomization this module cannot edit safely.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {what}")]
pub struct KustomizeError {
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub what: String,
}

/// One `key: value` line of an entry.
struct Field {
    line: usize,
    key: String,
    value: String,
    /// Byte range of the value (quotes included) in the line.
    span: (usize, usize),
}

/// One entry of the `images:` list.
struct Entry {
    last_line: usize,
    indent: usize,
    fields: Vec<Field>,
}

impl Entry {
    fn get(&self, key: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.key == key)
    }
}

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

fn is_blank_or_comment(line: &str) -> bool {
    let t = line.trim_start();
    t.is_empty() || t.starts_with('#')
}

fn err(line: usize, what: impl Into<String>) -> KustomizeError {
    KustomizeError {
        line: line + 1,
        what: what.into(),
    }
}

/// Parse `key: value  # comment` starting at byte `at` of `line`.
fn parse_field(line: &str, at: usize, n: usize) -> Result<Option<Field>, KustomizeError> {
    let rest = &line[at..];
    let Some(colon) = rest.find(':') else {
        return Ok(None);
    };
    let key = rest[..colon]
        .trim()
        .trim_matches(|c| c == '"' || c == '\'')
        .to_string();
    let mut start = at + colon + 1;
    while line[start..].starts_with(' ') {
        start += 1;
    }
    let v = &line[start..];
    let (value, len) = if let Some(q) = v.chars().next().filter(|c| *c == '"' || *c == '\'') {
        let close = v[1..]
            .find(q)
            .ok_or_else(|| err(n, format!("unterminated quoted value of `{key}`")))?;
        (v[1..1 + close].to_string(), close + 2)
    } else {
        let end = v.find(" #").unwrap_or(v.len());
        let plain = v[..end].trim_end();
        if plain.starts_with('{') || plain.starts_with('[') {
            return Err(err(
                n,
                format!("flow-style value of `{key}` is not supported"),
            ));
        }
        (plain.to_string(), plain.len())
    };
    Ok(Some(Field {
        line: n,
        key,
        value,
        span: (start, start + len),
    }))
}

/// The entries of the top-level `images:` list.
fn entries(lines: &[&str]) -> Result<Vec<Entry>, KustomizeError> {
    let Some(start) = lines
        .iter()
        .position(|l| l.trim_end() == "images:" || l.starts_with("images: "))
    else {
        return Ok(Vec::new());
    };
    if lines[start].trim_end() != "images:"
        && !lines[start]["images:".len()..]
            .trim_start()
            .starts_with('#')
    {
        return Err(err(start, "a flow-style `images:` list is not supported"));
    }
    let mut out: Vec<Entry> = Vec::new();
    for (n, line) in lines.iter().enumerate().skip(start + 1) {
        if is_blank_or_comment(line) {
            continue;
        }
        let ind = indent_of(line);
        let t = &line[ind..];
        if ind == 0 && !t.starts_with("- ") && t != "-" {
            break; // the next top-level key
        }
        if t.starts_with("- ") || t == "-" {
            let at = ind + 1 + t[1..].len() - t[1..].trim_start().len();
            if t[1..].trim_start().starts_with('{') {
                return Err(err(n, "a flow-style image entry is not supported"));
            }
            let mut e = Entry {
                last_line: n,
                indent: at,
                fields: Vec::new(),
            };
            if at < line.len() {
                e.fields.extend(parse_field(line, at, n)?);
            } else {
                e.indent = ind + 2;
            }
            out.push(e);
            continue;
        }
        let Some(e) = out.last_mut() else {
            return Err(err(n, "expected a `- ` list item under `images:`"));
        };
        e.last_line = n;
        if ind == e.indent {
            e.fields.extend(parse_field(line, ind, n)?);
        }
    }
    Ok(out)
}

/// Whether `v` can stay a plain YAML scalar and still read as a string.
fn plain_ok(v: &str) -> bool {
    let first = v.chars().next();
    !v.is_empty()
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-:/@+".contains(&b))
        && first.is_some_and(|c| c.is_ascii_alphabetic())
        && !matches!(
            v,
            "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "y" | "n"
        )
}

/// `value` written the way `old` (the line's original value) was quoted.
fn render(value: &str, old_span: Option<&str>) -> String {
    match old_span.and_then(|s| s.chars().next()) {
        Some('\'') => format!("'{value}'"),
        Some('"') => format!("\"{value}\""),
        _ if plain_ok(value) => value.to_string(),
        _ => format!("\"{value}\""),
    }
}

/// Apply `pins` to a kustomization's text. Returns the new text and, for
/// each pin, how many entries matched.
pub fn apply(text: &str, pins: &[Pin]) -> Result<(String, Vec<usize>), KustomizeError> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let bare: Vec<&str> = lines
        .iter()
        .map(|l| l.trim_end_matches(['\n', '\r']))
        .collect();
    let entries = entries(&bare)?;
    let mut replaced: Vec<String> = bare.iter().map(|l| l.to_string()).collect();
    let mut inserted: Vec<(usize, String)> = Vec::new();
    let mut counts = vec![0; pins.len()];
    for e in &entries {
        let name = e
            .get("newName")
            .or_else(|| e.get("name"))
            .map(|f| f.value.as_str());
        let Some(i) = pins
            .iter()
            .position(|p| Some(p.repository.as_str()) == name)
        else {
            continue;
        };
        counts[i] += 1;
        for (key, value) in [("newTag", &pins[i].tag), ("digest", &pins[i].digest)] {
            match e.get(key) {
                Some(f) => {
                    let line = &bare[f.line];
                    let new = render(value, Some(&line[f.span.0..f.span.1]));
                    replaced[f.line] = format!("{}{new}{}", &line[..f.span.0], &line[f.span.1..]);
                }
                None => {
                    let pad = " ".repeat(e.indent);
                    inserted.push((e.last_line, format!("{pad}{key}: {}", render(value, None))));
                }
            }
        }
    }
    let mut out = String::with_capacity(text.len() + 128);
    for (n, line) in lines.iter().enumerate() {
        let ending = &line[bare[n].len()..];
        out.push_str(&replaced[n]);
        out.push_str(
            if ending.is_empty() && inserted.iter().any(|(l, _)| *l == n) {
                "\n"
            } else {
                ending
            },
        );
        for (_, extra) in inserted.iter().filter(|(l, _)| *l == n) {
            out.push_str(extra);
            out.push('\n');
        }
    }
    Ok((out, counts))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pin(repo: &str) -> Pin {
        Pin {
            repository: repo.into(),
            tag: "v2".into(),
            digest: format!("sha256:{}", "b".repeat(64)),
        }
    }

    #[test]
    fn rewrites_in_place_and_keeps_everything_else() {
        let text = "\
# the app
resources:
  - deploy.yaml   # keep me
images:
  # pinned by forge
  - name: hello            # the greeter
    newName: reg.lan/forge/hello
    newTag: \"v1\"   # release
    digest: sha256:aaaa
  - name: other
    newTag: '1.0'

  - name: reg.lan/forge/greet
commonLabels:
  app: x
";
        let pins = [
            pin("reg.lan/forge/hello"),
            pin("reg.lan/forge/greet"),
            pin("nope"),
        ];
        let (out, counts) = apply(text, &pins).unwrap();
        let d = "b".repeat(64);
        assert_eq!(
            out,
            format!(
                "\
# the app
resources:
  - deploy.yaml   # keep me
images:
  # pinned by forge
  - name: hello            # the greeter
    newName: reg.lan/forge/hello
    newTag: \"v2\"   # release
    digest: sha256:{d}
  - name: other
    newTag: '1.0'

  - name: reg.lan/forge/greet
    newTag: v2
    digest: sha256:{d}
commonLabels:
  app: x
"
            )
        );
        assert_eq!(counts, [1, 1, 0]);
        let (again, _) = apply(&out, &pins).unwrap();
        assert_eq!(again, out, "pinning twice changes nothing");
    }

    #[test]
    fn numeric_tags_are_quoted_and_flow_style_is_refused() {
        let (out, _) = apply(
            "images:\n- name: a\n",
            &[Pin {
                tag: "1.10".into(),
                ..pin("a")
            }],
        )
        .unwrap();
        assert_eq!(
            out,
            format!(
                "images:\n- name: a\n  newTag: \"1.10\"\n  digest: sha256:{}\n",
                "b".repeat(64)
            )
        );
        let e = apply("x: 1\nimages: [{name: a}]\n", &[pin("a")]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "line 2: a flow-style `images:` list is not supported"
        );
        let e = apply("images:\n  - {name: a}\n", &[pin("a")]).unwrap_err();
        assert_eq!(e.line, 2);
    }
}
