//! Image definitions: `images/NAME.toml`, parsed and validated.
//!
//! Unknown keys are errors (a typo such as `entrypoin` must not silently
//! build the wrong image), reported as `file:line:col` with a did-you-mean
//! hint. The raw serde structs stay private; callers get a validated
//! [`Definition`]: a container [`ImageDef`] or, with `kind = "os"`, an
//! [`OsDef`] ([`os`]). Both go through `Src`, the one place that turns
//! TOML and validation failures into positioned errors. The formats are
//! documented in `docs/images.md` and `docs/os.md`.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::oci::Platform;

mod model;
pub mod os;

pub use model::{
    Account, ContainersDef, Definition, ExtraKind, ExtraPath, Group, ImageDef, Layering,
    LayeringMode, OemFile, OsDef, PartitionSizes, Profile,
};

/// Why an image file was rejected.
#[derive(Debug, thiserror::Error)]
pub enum DefError {
    /// The file could not be read.
    #[error("reading image file {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a valid image definition.
    #[error("{}:{line}:{col}: {message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        col: usize,
        /// What is wrong.
        message: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    schema: Spanned<u32>,
    #[serde(rename = "kind")]
    _kind: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    description: String,
    version: Option<String>,
    source: Option<String>,
    packages: Spanned<Vec<Spanned<String>>>,
    archs: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    entrypoint: Vec<String>,
    #[serde(default)]
    cmd: Vec<String>,
    #[serde(default)]
    env: BTreeMap<Spanned<String>, String>,
    workdir: Option<Spanned<String>>,
    user: Option<Spanned<String>>,
    #[serde(default)]
    accounts: Vec<Spanned<RawAccount>>,
    #[serde(default)]
    groups: Vec<Spanned<RawGroup>>,
    #[serde(default)]
    paths: Vec<Spanned<RawPath>>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    layering: Option<Spanned<RawLayering>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAccount {
    name: String,
    uid: u32,
    gid: Option<u32>,
    home: Option<String>,
    shell: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    name: String,
    gid: u32,
    #[serde(default)]
    members: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPath {
    path: String,
    #[serde(rename = "type")]
    kind: String,
    mode: Option<Mode>,
    #[serde(default)]
    uid: u32,
    #[serde(default)]
    gid: u32,
    content: Option<String>,
    target: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Mode {
    Int(u32),
    Text(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLayering {
    #[serde(default = "origin")]
    mode: String,
    max_layers: Option<usize>,
}

fn origin() -> String {
    "origin".into()
}

/// `images/NAME.toml` under `images_dir`.
pub fn path_for(images_dir: &Path, name: &str) -> PathBuf {
    images_dir.join(format!("{name}.toml"))
}

/// The kinds an image file may declare.
const KINDS: [&str; 2] = ["container", "os"];

/// The text of one image file, for positioned errors: the one mechanism
/// behind every message of both kinds.
pub(crate) struct Src<'a> {
    file: &'a Path,
    text: &'a str,
}

impl Src<'_> {
    /// An error at `span` of the file.
    fn fail(&self, span: Range<usize>, message: String) -> DefError {
        let (line, col) = line_col(self.text, span.start);
        DefError::Invalid {
            path: self.file.to_path_buf(),
            line,
            col,
            message,
        }
    }

    /// Deserialize the whole file, unknown fields with a did-you-mean hint.
    fn deserialize<T: serde::de::DeserializeOwned>(&self) -> Result<T, DefError> {
        toml::from_str(self.text).map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            self.fail(span, hint(e.message()))
        })
    }

    fn check_schema(&self, schema: &Spanned<u32>) -> Result<(), DefError> {
        if *schema.get_ref() != 1 {
            return Err(self.fail(
                schema.span(),
                format!("unsupported schema {} (expected 1)", schema.get_ref()),
            ));
        }
        Ok(())
    }
}

/// Only the `kind` key, read first to pick the schema.
#[derive(Deserialize)]
struct Peek {
    kind: Option<Spanned<String>>,
}

/// Read and validate an image file of either kind; the name is the file stem.
pub fn load_any(path: &Path) -> Result<Definition, DefError> {
    let text = std::fs::read_to_string(path).map_err(|source| DefError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    parse_any(&name, path, &text)
}

/// Validate the text of an image file of either kind.
pub fn parse_any(name: &str, file: &Path, text: &str) -> Result<Definition, DefError> {
    let src = Src { file, text };
    let peek: Peek = src.deserialize()?;
    match peek.kind.as_ref().map(|k| k.get_ref().as_str()) {
        None | Some("container") => {
            parse(name, file, text).map(|d| Definition::Container(Box::new(d)))
        }
        Some("os") => os::parse(name, file, &src).map(|d| Definition::Os(Box::new(d))),
        Some(other) => {
            let span = peek.kind.as_ref().map_or(0..0, |k| k.span());
            Err(src.fail(
                span,
                format!(
                    "unknown kind `{other}` (expected {})",
                    KINDS.map(|k| format!("`{k}`")).join(" or ")
                ),
            ))
        }
    }
}

/// Read and validate a container image file; the image name is the file stem.
/// An OS image (`kind = "os"`) is an error here: see [`load_any`].
pub fn load(path: &Path) -> Result<ImageDef, DefError> {
    let text = std::fs::read_to_string(path).map_err(|source| DefError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    parse(&name, path, &text)
}

/// The packages list of either kind: at least one, each one word.
fn check_packages(
    src: &Src<'_>,
    raw: &Spanned<Vec<Spanned<String>>>,
) -> Result<Vec<String>, DefError> {
    if raw.get_ref().is_empty() {
        return Err(src.fail(
            raw.span(),
            "`packages` must list at least one package".into(),
        ));
    }
    let mut packages = Vec::new();
    for p in raw.get_ref() {
        if p.get_ref().trim().is_empty() || p.get_ref().contains(char::is_whitespace) {
            return Err(src.fail(p.span(), format!("invalid package `{}`", p.get_ref())));
        }
        packages.push(p.get_ref().clone());
    }
    Ok(packages)
}

/// Validate the text of a container image file.
pub fn parse(name: &str, file: &Path, text: &str) -> Result<ImageDef, DefError> {
    let src = Src { file, text };
    let fail = |span: Range<usize>, message: String| src.fail(span, message);
    let peek: Peek = src.deserialize()?;
    match peek.kind.as_ref().map(|k| (k.get_ref().as_str(), k.span())) {
        None | Some(("container", _)) => {}
        Some((other, span)) => {
            return Err(fail(
                span,
                format!("kind `{other}` is not a container image (expected `container`)"),
            ));
        }
    }
    let raw: Raw = src.deserialize()?;
    src.check_schema(&raw.schema)?;
    let packages = check_packages(&src, &raw.packages)?;
    let mut archs = Vec::new();
    for a in raw.archs.unwrap_or_default() {
        if Platform::from_apk_arch(a.get_ref()).is_none() {
            return Err(fail(
                a.span(),
                format!("unknown architecture `{}`", a.get_ref()),
            ));
        }
        if archs.contains(a.get_ref()) {
            return Err(fail(
                a.span(),
                format!("architecture `{}` listed twice", a.get_ref()),
            ));
        }
        archs.push(a.get_ref().clone());
    }
    if archs.is_empty() {
        archs.push("x86_64".into());
    }
    let mut env = BTreeMap::new();
    for (k, v) in raw.env {
        if k.get_ref().is_empty() || k.get_ref().contains('=') {
            return Err(fail(
                k.span(),
                format!("invalid environment variable name `{}`", k.get_ref()),
            ));
        }
        env.insert(k.into_inner(), v);
    }
    let workdir = match raw.workdir {
        Some(w) if !w.get_ref().starts_with('/') => {
            return Err(fail(w.span(), "`workdir` must be an absolute path".into()));
        }
        Some(w) => w.into_inner(),
        None => String::new(),
    };
    let (accounts, groups) = accounts_and_groups(raw.accounts, raw.groups, &fail)?;
    let user = match raw.user {
        Some(u) => {
            let s = u.get_ref();
            let name_part = s.split(':').next().unwrap_or("");
            let numeric = name_part.bytes().all(|b| b.is_ascii_digit()) && !name_part.is_empty();
            if !numeric && name_part != "root" && !accounts.iter().any(|a| a.name == name_part) {
                return Err(fail(
                    u.span(),
                    format!("`user` names unknown account `{name_part}`"),
                ));
            }
            u.into_inner()
        }
        None => String::new(),
    };
    let mut paths = Vec::new();
    let mut seen = BTreeSet::new();
    for p in raw.paths {
        let span = p.span();
        let ep = extra_path(p.into_inner()).map_err(|m| fail(span.clone(), m))?;
        if !seen.insert(ep.path.clone()) {
            return Err(fail(span, format!("path `{}` listed twice", ep.path)));
        }
        paths.push(ep);
    }
    let layering = match raw.layering {
        None => Layering {
            mode: LayeringMode::Origin,
            max_layers: None,
        },
        Some(l) => {
            let span = l.span();
            let l = l.into_inner();
            let mode = match l.mode.as_str() {
                "origin" => LayeringMode::Origin,
                "single" => LayeringMode::Single,
                other => {
                    return Err(fail(
                        span,
                        format!("unknown layering mode `{other}` (expected `origin` or `single`)"),
                    ));
                }
            };
            match (mode, l.max_layers) {
                (LayeringMode::Single, Some(_)) => {
                    return Err(fail(
                        span,
                        "`max_layers` only applies to `mode = \"origin\"`".into(),
                    ));
                }
                (LayeringMode::Origin, Some(n)) if n < 2 => {
                    return Err(fail(span, "`max_layers` must be at least 2 (packages + image files); use `mode = \"single\"` for one layer".into()));
                }
                _ => {}
            }
            Layering {
                mode,
                max_layers: l.max_layers,
            }
        }
    };
    Ok(ImageDef {
        name: name.to_string(),
        file: file.to_path_buf(),
        description: raw.description,
        version: raw.version,
        source: raw.source,
        packages,
        archs,
        entrypoint: raw.entrypoint,
        cmd: raw.cmd,
        env,
        workdir,
        user,
        accounts,
        groups,
        paths,
        labels: raw.labels,
        annotations: raw.annotations,
        layering,
    })
}

type Fail<'a> = dyn Fn(Range<usize>, String) -> DefError + 'a;

fn valid_name(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_lowercase() || c == b'_')
        && b.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_' || c == b'-')
        && s.len() <= 32
}

fn accounts_and_groups(
    raw_accounts: Vec<Spanned<RawAccount>>,
    raw_groups: Vec<Spanned<RawGroup>>,
    fail: &Fail<'_>,
) -> Result<(Vec<Account>, Vec<Group>), DefError> {
    let mut groups: Vec<Group> = Vec::new();
    for g in raw_groups {
        let span = g.span();
        let g = g.into_inner();
        if !valid_name(&g.name) || g.name == "root" || g.gid == 0 {
            return Err(fail(
                span,
                format!(
                    "invalid group `{}` (root is built in; names are [a-z_][a-z0-9_-]*)",
                    g.name
                ),
            ));
        }
        if groups.iter().any(|o| o.name == g.name || o.gid == g.gid) {
            return Err(fail(
                span,
                format!("group `{}` or gid {} defined twice", g.name, g.gid),
            ));
        }
        groups.push(Group {
            name: g.name,
            gid: g.gid,
            members: g.members,
        });
    }
    let mut accounts: Vec<Account> = Vec::new();
    for a in raw_accounts {
        let span = a.span();
        let a = a.into_inner();
        if !valid_name(&a.name) || a.name == "root" || a.uid == 0 {
            return Err(fail(
                span,
                format!(
                    "invalid account `{}` (root is built in; names are [a-z_][a-z0-9_-]*)",
                    a.name
                ),
            ));
        }
        if accounts.iter().any(|o| o.name == a.name || o.uid == a.uid) {
            return Err(fail(
                span,
                format!("account `{}` or uid {} defined twice", a.name, a.uid),
            ));
        }
        let gid = a.gid.unwrap_or(a.uid);
        if gid != 0 && !groups.iter().any(|g| g.gid == gid) {
            if groups.iter().any(|g| g.name == a.name) {
                return Err(fail(
                    span,
                    format!(
                        "account `{}`: group `{}` exists with another gid",
                        a.name, a.name
                    ),
                ));
            }
            groups.push(Group {
                name: a.name.clone(),
                gid,
                members: Vec::new(),
            });
        }
        let home = a.home.unwrap_or_else(|| format!("/home/{}", a.name));
        let shell = a.shell.unwrap_or_else(|| "/sbin/nologin".into());
        accounts.push(Account {
            name: a.name,
            uid: a.uid,
            gid,
            home,
            shell,
        });
    }
    for g in &groups {
        for m in &g.members {
            if m != "root" && !accounts.iter().any(|a| &a.name == m) {
                return Err(fail(
                    0..0,
                    format!("group `{}` lists unknown member `{m}`", g.name),
                ));
            }
        }
    }
    Ok((accounts, groups))
}

fn extra_path(p: RawPath) -> Result<ExtraPath, String> {
    let path = &p.path;
    let normal = path.starts_with('/')
        && path.len() > 1
        && !path.ends_with('/')
        && path[1..]
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..");
    if !normal {
        return Err(format!(
            "path `{path}` must be absolute and normalized (no `.`, `..`, `//`, trailing `/`)"
        ));
    }
    let (kind, default_mode) = match (p.kind.as_str(), p.content, p.target) {
        ("dir", None, None) => (ExtraKind::Dir, 0o755),
        ("file", Some(c), None) => (ExtraKind::File(c), 0o644),
        ("symlink", None, Some(t)) if !t.is_empty() => (ExtraKind::Symlink(t), 0o777),
        ("dir" | "file" | "symlink", _, _) => {
            return Err(format!(
                "path `{path}`: a dir takes neither `content` nor `target`, a file needs `content`, a symlink needs `target`"
            ));
        }
        (other, _, _) => {
            return Err(format!(
                "path `{path}`: unknown type `{other}` (expected dir, file or symlink)"
            ));
        }
    };
    let mode = match p.mode {
        None => default_mode,
        Some(Mode::Int(m)) => m,
        Some(Mode::Text(t)) => u32::from_str_radix(t.trim_start_matches("0o"), 8)
            .map_err(|_| format!("path `{path}`: invalid mode `{t}` (octal, e.g. \"0755\")"))?,
    };
    if mode > 0o7777 {
        return Err(format!("path `{path}`: mode {mode:o} is out of range"));
    }
    Ok(ExtraPath {
        path: path.trim_start_matches('/').to_string(),
        kind,
        mode,
        uid: p.uid,
        gid: p.gid,
    })
}

/// Add a did-you-mean hint to serde's "unknown field" message.
fn hint(message: &str) -> String {
    let msg = message.trim_end().to_string();
    let Some(rest) = msg.strip_prefix("unknown field `") else {
        return msg;
    };
    let Some((field, expected)) = rest.split_once('`') else {
        return msg;
    };
    let best = expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(|cand| (strsim::jaro_winkler(field, cand), cand))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    match best {
        Some((_, cand)) => format!("{msg} (did you mean `{cand}`?)"),
        None => msg,
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

#[cfg(test)]
mod tests;
