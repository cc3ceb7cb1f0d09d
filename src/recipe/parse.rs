//! `recipe.toml` text → validated [`Recipe`]: the top level, `[package]`,
//! `[build]` and the subpackages (sources live in `sources.rs`).
//!
//! Every field is read through [`Section`], which records located problems and
//! carries on, so one pass reports everything wrong with a file.

use std::collections::BTreeSet;
use std::path::Path;

use toml::de::DeTable;

use super::check;
use super::defaults;
use super::error::{Problems, RecipeError, did_you_mean};
use super::model::{Options, Recipe, Stage, Subpackage};
use super::read::{Located, Section};
use super::sources::read_sources;
use crate::version::Version;

/// The recipe schema this forge reads.
pub const SCHEMA: i64 = 1;

const TOP_KEYS: &[&str] = &[
    "schema",
    "package",
    "build",
    "source",
    "subpackage",
    "update",
];
const PACKAGE_KEYS: &[&str] = &[
    "name",
    "version",
    "release",
    "description",
    "url",
    "license",
    "arch",
    "depends",
    "makedepends",
    "provides",
    "options",
    "builddir",
    "subpackages",
];
const BUILD_KEYS: &[&str] = &["tools", "script", "check", "stage"];
const SUBPACKAGE_KEYS: &[&str] = &["name", "description", "paths", "depends", "provides"];
const OPTIONS: &[&str] = &["!check", "!strip", "net", "suid"];
/// The architectures a recipe builds for when it does not say.
pub const DEFAULT_ARCH: &[&str] = &["x86_64", "aarch64"];

/// Parse and validate one recipe file's text. `file` is the absolute path of
/// `recipes/NAME/recipe.toml`; its folder name is the expected package name.
pub(crate) fn parse(file: &Path, shown: &str, text: &str) -> Result<Recipe, Vec<RecipeError>> {
    let mut p = Problems::new(shown.to_string(), text);
    let (doc, syntax) = DeTable::parse_recoverable(text);
    if !syntax.is_empty() {
        for e in syntax {
            let span = e.span().unwrap_or(0..0);
            p.at(span, format!("TOML syntax: {}", e.message().trim_end()));
        }
        return Err(p.into_errors());
    }
    let top = Section {
        name: "the top level".into(),
        table: doc.get_ref(),
        span: 0..0,
    };
    let recipe = read_recipe(&mut p, &top, file);
    match recipe {
        Some(r) if p.is_empty() => Ok(r),
        _ => Err(p.into_errors()),
    }
}

/// The `version` string of `[package]` as written (for `${version}`); a
/// missing or mistyped one is reported where `version` is read.
fn raw_version(pkg: Option<&Section<'_, '_>>) -> String {
    match pkg
        .and_then(|s| s.table.get("version"))
        .map(|v| v.get_ref())
    {
        Some(toml::de::DeValue::String(v)) => v.to_string(),
        _ => "0".to_string(),
    }
}

fn read_recipe(p: &mut Problems<'_>, top: &Section<'_, '_>, file: &Path) -> Option<Recipe> {
    top.check_keys(p, TOP_KEYS);
    match top.int(p, "schema") {
        Some((SCHEMA, _)) => {}
        Some((n, span)) => p.at(
            span,
            format!("unsupported `schema` {n}; this forge reads schema {SCHEMA}"),
        ),
        None if !top.table.contains_key("schema") => p.at(
            0..0,
            format!("missing `schema` at the top level (add `schema = {SCHEMA}`)"),
        ),
        None => {}
    }
    let dir = file.parent().unwrap_or(Path::new("."));
    let folder = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();

    let pkg = top.table(p, "package");
    if pkg.is_none() && !top.table.contains_key("package") {
        p.at(0..0, "missing the [package] table");
    }
    let build = top.table(p, "build");
    if build.is_none() && !top.table.contains_key("build") {
        p.at(0..0, "missing the [build] table (it holds `script`)");
    }
    let source_tables = top.tables(p, "source");
    let raw_version = raw_version(pkg.as_ref());
    let sources = read_sources(p, &source_tables, dir, &raw_version);
    let update = match top.table(p, "update") {
        Some(u) => super::update::read_update(p, &u, &source_tables).map(Some),
        None => Some(None),
    };
    let custom = top.tables(p, "subpackage");

    let (host_tools, script, check_script) = match &build {
        Some(b) => read_build(p, b),
        None => (Some(Vec::new()), None, Some(String::new())),
    };
    let stage = match &build {
        Some(b) => read_stage(p, b),
        None => Some(None),
    };

    let pkg = pkg?;
    pkg.check_keys(p, PACKAGE_KEYS);
    let name = read_name(p, &pkg, &folder);
    let version = pkg
        .req_str(p, "version", "the upstream version, e.g. \"1.2.3\"")
        .and_then(|(v, span)| match Version::parse(&v) {
            Ok(v) => Some(v),
            Err(e) => {
                p.at(span, format!("{}: {e}", pkg.field("version")));
                None
            }
        });
    let release = match pkg.int(p, "release") {
        None => Some(0),
        Some((n, span)) => match u32::try_from(n) {
            Ok(n) => Some(n),
            Err(_) => {
                p.at(span, format!("{} must be 0 or more", pkg.field("release")));
                None
            }
        },
    };
    let description = pkg
        .req_str(p, "description", "a one-line summary")
        .and_then(|(d, span)| one_line(p, &pkg, "description", d, span));
    let url = match pkg.str(p, "url") {
        None => Some(String::new()),
        Some((u, span)) => match check::url(&u, false) {
            Ok(()) => Some(u),
            Err(e) => {
                p.at(span, format!("{}: {e}", pkg.field("url")));
                None
            }
        },
    };
    let license = pkg
        .req_str(p, "license", "an SPDX expression such as \"MIT\"")
        .and_then(|(l, span)| match check::license(&l) {
            Ok(()) => Some(l),
            Err(e) => {
                p.at(span, format!("{}: {e}", pkg.field("license")));
                None
            }
        });
    let arch = read_arch(p, &pkg);
    let depends = dep_list(p, &pkg, "depends", true, true);
    let makedepends = dep_list(p, &pkg, "makedepends", false, true);
    let provides = dep_list(p, &pkg, "provides", false, true);
    let options = read_options(p, &pkg);
    let builddir = match pkg.str(p, "builddir") {
        None => Some(None),
        Some((b, span)) => match super::template::expand(&b, &raw_version)
            .and_then(|b| check::relative_path(b.trim_end_matches('/')).map(|()| b))
        {
            Ok(b) => Some(Some(b.trim_end_matches('/').to_string())),
            Err(e) => {
                p.at(span, format!("{}: {e}", pkg.field("builddir")));
                None
            }
        },
    };

    let full_version = format!(
        "{}-r{}",
        version.as_ref().map_or("0", Version::as_str),
        release.unwrap_or(0)
    );
    let subpackages = read_subpackages(
        p,
        &pkg,
        &custom,
        name.as_deref().unwrap_or(&folder),
        &full_version,
        description.as_deref().unwrap_or(""),
    );

    Some(Recipe {
        dir: dir.to_path_buf(),
        file: file.to_path_buf(),
        name: name?,
        version: version?,
        release: release?,
        description: description?,
        url: url?,
        license: license?,
        arch: arch?,
        depends: depends?,
        makedepends: makedepends?,
        host_tools: host_tools?,
        stage: stage?,
        provides: provides?,
        sources,
        build: script?,
        check: check_script?,
        builddir: builddir?,
        subpackages: subpackages?,
        options: options?,
        update: update?,
    })
}

fn read_name(p: &mut Problems<'_>, pkg: &Section<'_, '_>, folder: &str) -> Option<String> {
    let (name, span) = pkg.req_str(p, "name", "the package name, equal to the folder name")?;
    if let Err(e) = check::package_name(&name) {
        p.at(span, format!("{}: {e}", pkg.field("name")));
        return None;
    }
    if name != folder {
        p.at(
            span,
            format!(
                "{} is `{name}` but the recipe folder is `{folder}`; they must match",
                pkg.field("name")
            ),
        );
        return None;
    }
    Some(name)
}

fn one_line(
    p: &mut Problems<'_>,
    s: &Section<'_, '_>,
    key: &str,
    text: String,
    span: std::ops::Range<usize>,
) -> Option<String> {
    if text.trim().is_empty() {
        p.at(span, format!("{} is empty", s.field(key)));
        None
    } else if text.contains('\n') {
        p.at(span, format!("{} must be one line", s.field(key)));
        None
    } else {
        Some(text)
    }
}

fn read_arch(p: &mut Problems<'_>, pkg: &Section<'_, '_>) -> Option<Vec<String>> {
    let Some(list) = pkg.str_list(p, "arch") else {
        return (!pkg.table.contains_key("arch"))
            .then(|| DEFAULT_ARCH.iter().map(|a| (*a).to_string()).collect());
    };
    let field = pkg.field("arch");
    let mut ok = true;
    if list.is_empty() {
        p.at(pkg.span.clone(), format!("{field} is empty"));
        ok = false;
    }
    let mut seen = BTreeSet::new();
    for (a, span) in &list {
        if !check::ARCHES.contains(&a.as_str()) {
            let hint = did_you_mean(a, check::ARCHES)
                .map(|h| format!(", did you mean `{h}`?"))
                .unwrap_or_else(|| format!(" (known: {})", check::ARCHES.join(", ")));
            p.at(
                span.clone(),
                format!("{field}: unknown architecture `{a}`{hint}"),
            );
            ok = false;
        } else if !seen.insert(a.as_str()) {
            p.at(span.clone(), format!("{field}: `{a}` is listed twice"));
            ok = false;
        } else if a == "noarch" && list.len() > 1 {
            p.at(span.clone(), format!("{field}: `noarch` must stand alone"));
            ok = false;
        }
    }
    ok.then(|| list.into_iter().map(|(a, _)| a).collect())
}

fn dep_list(
    p: &mut Problems<'_>,
    s: &Section<'_, '_>,
    key: &str,
    allow_conflict: bool,
    allow_op: bool,
) -> Option<Vec<String>> {
    let Some(list) = s.str_list(p, key) else {
        return (!s.table.contains_key(key)).then(Vec::new);
    };
    let mut ok = true;
    for (d, span) in &list {
        if let Err(e) = check::dependency(d, allow_conflict, allow_op) {
            p.at(span.clone(), format!("{}: {e}", s.field(key)));
            ok = false;
        }
    }
    ok.then(|| list.into_iter().map(|(d, _)| d).collect())
}

fn read_options(p: &mut Problems<'_>, pkg: &Section<'_, '_>) -> Option<Options> {
    let Some(list) = pkg.str_list(p, "options") else {
        return (!pkg.table.contains_key("options")).then(Options::default);
    };
    let mut o = Options::default();
    let mut ok = true;
    for (opt, span) in list {
        match opt.as_str() {
            "!check" => o.no_check = true,
            "!strip" => o.no_strip = true,
            "net" => o.net = true,
            "suid" => o.suid = true,
            other => {
                let hint = did_you_mean(other, OPTIONS)
                    .map(|h| format!(", did you mean `{h}`?"))
                    .unwrap_or_else(|| format!(" (known: {})", OPTIONS.join(", ")));
                p.at(
                    span,
                    format!("{}: unknown option `{other}`{hint}", pkg.field("options")),
                );
                ok = false;
            }
        }
    }
    ok.then_some(o)
}

type Build = (Option<Vec<String>>, Option<String>, Option<String>);

fn read_build(p: &mut Problems<'_>, b: &Section<'_, '_>) -> Build {
    b.check_keys(p, BUILD_KEYS);
    let tools = match b.str_list(p, "tools") {
        None => (!b.table.contains_key("tools")).then(Vec::new),
        Some(list) => {
            let mut ok = true;
            for (t, span) in &list {
                let bad = t.is_empty()
                    || t.contains('/')
                    || t.chars().any(|c| c.is_whitespace() || c.is_control());
                if bad {
                    p.at(
                        span.clone(),
                        format!("{}: `{t}` is not a command name", b.field("tools")),
                    );
                    ok = false;
                } else if t.replace(super::model::CARCH_VAR, "").contains('$') {
                    p.at(
                        span.clone(),
                        format!(
                            "{}: `{t}`: the only variable a tool may hold is `${{carch}}`",
                            b.field("tools")
                        ),
                    );
                    ok = false;
                }
            }
            ok.then(|| list.into_iter().map(|(t, _)| t).collect())
        }
    };
    let script = b
        .req_str(p, "script", "the shell script that builds into $pkgdir")
        .and_then(|(s, span)| {
            if s.trim().is_empty() {
                p.at(span, format!("{} is empty", b.field("script")));
                None
            } else {
                Some(s)
            }
        });
    let check = match b.str(p, "check") {
        Some((c, _)) => Some(c),
        None => (!b.table.contains_key("check")).then(String::new),
    };
    (tools, script, check)
}

/// `[build] stage`: `"bootstrap"` or `"hermetic"`, absent for the project's
/// default.
fn read_stage(p: &mut Problems<'_>, b: &Section<'_, '_>) -> Option<Option<Stage>> {
    match b.str(p, "stage") {
        None => (!b.table.contains_key("stage")).then_some(None),
        Some((s, span)) => match Stage::parse(&s) {
            Some(stage) => Some(Some(stage)),
            None => {
                p.at(
                    span,
                    format!(
                        "{} is `{s}`; it must be \"bootstrap\" (host tools) or \"hermetic\" \
                         (a build root of forge packages)",
                        b.field("stage")
                    ),
                );
                None
            }
        },
    }
}

fn read_subpackages(
    p: &mut Problems<'_>,
    pkg: &Section<'_, '_>,
    custom: &[Section<'_, '_>],
    name: &str,
    full_version: &str,
    description: &str,
) -> Option<Vec<Subpackage>> {
    let mut out: Vec<Subpackage> = Vec::new();
    let mut ok = true;
    let mut seen = BTreeSet::from([name.to_string()]);
    let builtin: Vec<Located<String>> = match pkg.str_list(p, "subpackages") {
        Some(l) => l,
        None => {
            ok &= !pkg.table.contains_key("subpackages");
            Vec::new()
        }
    };
    for (kind, span) in builtin {
        match defaults::builtin(&kind, name, full_version, description) {
            Some(sp) if seen.insert(sp.name.clone()) => out.push(sp),
            Some(_) => {
                p.at(
                    span,
                    format!("{}: `{kind}` is listed twice", pkg.field("subpackages")),
                );
                ok = false;
            }
            None => {
                let hint = did_you_mean(&kind, defaults::BUILTIN)
                    .map(|h| format!(", did you mean `{h}`?"))
                    .unwrap_or_default();
                p.at(
                    span,
                    format!(
                        "{}: unknown built-in subpackage `{kind}`{hint} (built-ins: {}; declare others with [[subpackage]])",
                        pkg.field("subpackages"),
                        defaults::BUILTIN.join(", ")
                    ),
                );
                ok = false;
            }
        }
    }
    for s in custom {
        s.check_keys(p, SUBPACKAGE_KEYS);
        let sp_name = s
            .req_str(p, "name", "the full package name, e.g. \"NAME-libs\"")
            .and_then(|(n, span)| {
                if let Err(e) = check::package_name(&n) {
                    p.at(span, format!("{}: {e}", s.field("name")));
                    None
                } else if !seen.insert(n.clone()) {
                    p.at(
                        span,
                        format!("{}: package `{n}` is defined twice", s.field("name")),
                    );
                    None
                } else {
                    Some(n)
                }
            });
        let desc = match s.str(p, "description") {
            Some((d, span)) => one_line(p, s, "description", d, span),
            None => Some(description.to_string()),
        };
        let paths = match s.str_list(p, "paths") {
            Some(list) if list.is_empty() => {
                p.at(s.span.clone(), format!("{} is empty", s.field("paths")));
                None
            }
            Some(list) => {
                let mut good = true;
                for (g, span) in &list {
                    if let Err(e) = check::path_glob(g) {
                        p.at(span.clone(), format!("{}: {e}", s.field("paths")));
                        good = false;
                    }
                }
                good.then(|| list.into_iter().map(|(g, _)| g).collect())
            }
            None => {
                if !s.table.contains_key("paths") {
                    s.missing(
                        p,
                        "paths",
                        "globs of the files it takes, e.g. [\"usr/lib/*.so.*\"]",
                    );
                }
                None
            }
        };
        let depends = dep_list(p, s, "depends", true, true);
        let provides = dep_list(p, s, "provides", false, true);
        match (sp_name, desc, paths, depends, provides) {
            (Some(name), Some(description), Some(paths), Some(depends), Some(provides)) => out
                .push(Subpackage {
                    name,
                    description,
                    paths,
                    depends,
                    provides,
                }),
            _ => ok = false,
        }
    }
    ok.then_some(out)
}
