//! A small YAML writer for CI documents held as [`serde_json::Value`].
//!
//! Every key and string is written as a double-quoted scalar with JSON's
//! escapes, which YAML reads the same way, so nothing a unit name or a
//! script holds can change the document's structure. Job fields come in a
//! fixed, readable order; everything else in name order.

use serde_json::Value;

/// Keys written first, in this order, when a mapping has them.
const FIRST: &[&str] = &[
    "workflow",
    "stages",
    "variables",
    "default",
    "stage",
    "needs",
    "resource_group",
    "script",
];

fn quote(s: &str) -> String {
    serde_json::to_string(s).expect("a string always serializes")
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(quote(s)),
        Value::Null => Some("null".to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Array(a) if a.is_empty() => Some("[]".to_string()),
        Value::Object(o) if o.is_empty() => Some("{}".to_string()),
        _ => None,
    }
}

fn ordered_keys(map: &serde_json::Map<String, Value>) -> Vec<&String> {
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort_by_key(|k| {
        let rank = FIRST.iter().position(|f| f == k).unwrap_or(FIRST.len());
        (rank, k.as_str())
    });
    keys
}

fn write_value(out: &mut String, v: &Value, indent: usize) {
    let pad = " ".repeat(indent);
    match v {
        Value::Object(map) => {
            for k in ordered_keys(map) {
                let child = &map[k.as_str()];
                match scalar(child) {
                    Some(s) => out.push_str(&format!("{pad}{}: {s}\n", quote(k))),
                    None => {
                        out.push_str(&format!("{pad}{}:\n", quote(k)));
                        write_value(out, child, indent + 2);
                    }
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                match scalar(item) {
                    Some(s) => out.push_str(&format!("{pad}- {s}\n")),
                    None => {
                        // A nested block under `- `: write it indented, then
                        // put the dash on its first line.
                        let mut inner = String::new();
                        write_value(&mut inner, item, indent + 2);
                        out.push_str(&format!("{pad}- {}", &inner[indent + 2..]));
                    }
                }
            }
        }
        other => {
            let s = scalar(other).expect("scalars always render");
            out.push_str(&format!("{pad}{s}\n"));
        }
    }
}

/// The document as YAML, with a comment header.
pub fn to_yaml(header: &str, doc: &Value) -> String {
    let mut out = String::new();
    for line in header.lines() {
        out.push_str(&format!("# {line}\n"));
    }
    write_value(&mut out, doc, 0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_block_yaml_with_quoted_scalars() {
        let doc = serde_json::json!({
            "b:job": {"script": ["echo \"hi\"\n"], "needs": [], "stage": "build",
                      "artifacts": {"paths": ["child.yml"]}},
            "stages": ["build", "publish"],
            "list": [{"job": "x", "optional": true}],
        });
        assert_eq!(
            to_yaml("generated", &doc),
            "# generated\n\
             \"stages\":\n  - \"build\"\n  - \"publish\"\n\
             \"b:job\":\n  \"stage\": \"build\"\n  \"needs\": []\n  \"script\":\n    - \"echo \\\"hi\\\"\\n\"\n\
             \x20 \"artifacts\":\n    \"paths\":\n      - \"child.yml\"\n\
             \"list\":\n  - \"job\": \"x\"\n    \"optional\": true\n"
        );
    }
}
