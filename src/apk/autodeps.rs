//! Automatic dependencies and provides, found by scanning a staged tree the
//! way abuild does after `package()`:
//!
//! - every dynamically linked ELF file contributes `so:<lib>` depends for its
//!   `DT_NEEDED` entries (`so:libc.so.6`);
//! - every ELF shared object with a `DT_SONAME` contributes a provide
//!   `so:<soname>=<version>`, the version being the text after `.so.` in the
//!   soname, or `0` (`so:libgreet.so.1=1`, `so:libfoo.so=0`);
//! - every `*.pc` file in a `pkgconfig/` folder provides `pc:<name>=<Version>`
//!   and depends on the modules in its `Requires` and `Requires.private`
//!   (`pc:zlib`, or `pc:glib-2.0>=2.50` when the bound is a valid apk version).
//!
//! ELF parsing uses `goblin`, which reads the dynamic section through the
//! program headers as the loader (and abuild's `scanelf`) does, so stripped
//! files without section headers are still understood. Files that start with
//! the ELF magic but do not parse are skipped.
//!
//! [`merge`] combines these with a package's explicit lists: deduplicated,
//! sorted, and never depending on anything the package provides itself.

use std::collections::BTreeSet;
use std::fs;
use std::io::Read as _;
use std::path::{Path, PathBuf};

/// What a staged tree needs and offers, as apk dependency strings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AutoDeps {
    /// `so:` and `pc:` dependencies, sorted.
    pub depends: Vec<String>,
    /// `so:` and `pc:` provides, sorted.
    pub provides: Vec<String>,
}

/// Scanning the tree failed.
#[derive(Debug, thiserror::Error)]
#[error("scanning {} for dependencies", path.display())]
pub struct ScanError {
    /// The file or folder.
    pub path: PathBuf,
    /// The cause.
    #[source]
    pub source: std::io::Error,
}

/// Scan the staged tree under `root`.
pub fn scan_auto_deps(root: &Path) -> Result<AutoDeps, ScanError> {
    let mut needed = BTreeSet::new();
    let mut so_provides = BTreeSet::new();
    let mut pc_provides = BTreeSet::new();
    let mut pc_requires = BTreeSet::new();
    for entry in walkdir::WalkDir::new(root).sort_by_file_name() {
        let entry = entry.map_err(|e| ScanError {
            path: e.path().unwrap_or(root).to_path_buf(),
            source: e.into(),
        })?;
        if !entry.file_type().is_file() {
            continue;
        }
        let path = entry.path();
        let err = |source| ScanError {
            path: path.to_path_buf(),
            source,
        };
        let name = entry.file_name().to_string_lossy();
        let in_pkgconfig = path
            .parent()
            .and_then(|p| p.file_name())
            .is_some_and(|d| d == "pkgconfig");
        if in_pkgconfig && name.ends_with(".pc") {
            let text = fs::read_to_string(path).map_err(err)?;
            let module = name.trim_end_matches(".pc");
            let pc = parse_pc(&text);
            pc_provides.insert(match pc.version.filter(|v| is_apk_version(v)) {
                Some(v) => format!("pc:{module}={v}"),
                None => format!("pc:{module}"),
            });
            pc_requires.extend(pc.requires);
            continue;
        }
        let mut magic = [0u8; 4];
        let mut f = fs::File::open(path).map_err(err)?;
        if f.read(&mut magic).map_err(err)? < 4 || magic != *b"\x7fELF" {
            continue;
        }
        let bytes = fs::read(path).map_err(err)?;
        let Ok(elf) = goblin::elf::Elf::parse(&bytes) else {
            continue;
        };
        if elf.dynamic.is_none() {
            continue;
        }
        needed.extend(elf.libraries.iter().map(|l| l.to_string()));
        if let Some(soname) = elf.soname
            && elf.header.e_type == goblin::elf::header::ET_DYN
        {
            so_provides.insert(soname.to_string());
        }
    }
    let mut provides: BTreeSet<String> = so_provides
        .iter()
        .map(|s| format!("so:{s}={}", so_version(s)))
        .collect();
    provides.extend(pc_provides);
    let mut depends: BTreeSet<String> = needed
        .iter()
        .filter(|lib| !so_provides.contains(*lib))
        .map(|lib| format!("so:{lib}"))
        .collect();
    depends.extend(pc_requires.into_iter().map(|r| format!("pc:{r}")));
    Ok(AutoDeps {
        depends: depends.into_iter().collect(),
        provides: provides.into_iter().collect(),
    })
}

/// The version part of a soname: `libgreet.so.1.2` → `1.2`; none → `0`.
pub fn so_version(soname: &str) -> &str {
    match soname.find(".so.") {
        Some(i) if i + 4 < soname.len() => &soname[i + 4..],
        _ => "0",
    }
}

/// The name of a dependency string without its version constraint or `!`.
pub fn dep_name(dep: &str) -> &str {
    let dep = dep.strip_prefix('!').unwrap_or(dep);
    let end = dep.find(['=', '<', '>', '~']).unwrap_or(dep.len());
    &dep[..end]
}

/// `cmd:` provides, as abuild writes them: every executable file or symlink
/// directly in `bin`, `sbin`, `usr/bin` or `usr/sbin` of the staged tree
/// becomes `cmd:NAME=VERSION`, so `apk add cmd:NAME` and `cmd:` dependencies
/// resolve to the package that ships the command.
pub fn command_provides(root: &Path, version: &str) -> Result<Vec<String>, ScanError> {
    use std::os::unix::fs::PermissionsExt as _;
    let mut out = Vec::new();
    for dir in ["bin", "sbin", "usr/bin", "usr/sbin"] {
        let path = root.join(dir);
        let Ok(items) = std::fs::read_dir(&path) else {
            continue;
        };
        for item in items {
            let item = item.map_err(|source| ScanError {
                path: path.clone(),
                source,
            })?;
            let meta = std::fs::symlink_metadata(item.path()).map_err(|source| ScanError {
                path: item.path(),
                source,
            })?;
            let executable = meta.is_file() && meta.permissions().mode() & 0o111 != 0;
            if executable || meta.file_type().is_symlink() {
                let name = item.file_name().to_string_lossy().into_owned();
                out.push(format!("cmd:{name}={version}"));
            }
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Merge explicit and automatic lists: provides are the union; depends are the
/// union minus anything the package itself is (`name`) or provides. Both are
/// deduplicated and sorted.
pub fn merge(
    name: &str,
    depends: &[String],
    provides: &[String],
    auto: &AutoDeps,
) -> (Vec<String>, Vec<String>) {
    let provides: BTreeSet<String> = provides
        .iter()
        .chain(&auto.provides)
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect();
    let provided: BTreeSet<&str> = provides.iter().map(|p| dep_name(p)).collect();
    let depends: BTreeSet<String> = depends
        .iter()
        .chain(&auto.depends)
        .map(|d| d.trim().to_string())
        .filter(|d| !d.is_empty())
        .filter(|d| {
            let n = dep_name(d);
            d.starts_with('!') || (n != name && !provided.contains(n))
        })
        .collect();
    (
        depends.into_iter().collect(),
        provides.into_iter().collect(),
    )
}

/// The parts of a `.pc` file forge uses.
#[derive(Debug, Default, PartialEq, Eq)]
struct PcFile {
    version: Option<String>,
    requires: Vec<String>,
}

fn parse_pc(text: &str) -> PcFile {
    let mut vars: Vec<(String, String)> = Vec::new();
    let mut pc = PcFile::default();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let colon = line.find(':');
        let eq = line.find('=');
        match (colon, eq) {
            (Some(c), e) if e.is_none_or(|e| c < e) => {
                let key = line[..c].trim();
                let value = expand(line[c + 1..].trim(), &vars);
                match key {
                    "Version" => pc.version = Some(value),
                    "Requires" | "Requires.private" => pc.requires.extend(parse_requires(&value)),
                    _ => {}
                }
            }
            (_, Some(e)) => {
                let value = expand(line[e + 1..].trim(), &vars);
                vars.push((line[..e].trim().to_string(), value));
            }
            _ => {}
        }
    }
    pc
}

/// Expand `${var}` references from earlier definitions.
fn expand(value: &str, vars: &[(String, String)]) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        match rest[start..].find('}') {
            Some(end) => {
                let name = &rest[start + 2..start + end];
                let v = vars.iter().rev().find(|(k, _)| k == name);
                out.push_str(v.map_or("", |(_, v)| v));
                rest = &rest[start + end + 1..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// `glib-2.0 >= 2.50, zlib` → `["glib-2.0>=2.50", "zlib"]`.
fn parse_requires(value: &str) -> Vec<String> {
    let tokens: Vec<&str> = value
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|t| !t.is_empty())
        .collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let name = tokens[i];
        let op = tokens.get(i + 1).copied();
        match op {
            Some(op @ ("=" | "<" | ">" | "<=" | ">=" | "!=")) => {
                let ver = tokens.get(i + 2).copied().unwrap_or("");
                if op != "!=" && is_apk_version(ver) {
                    out.push(format!("{name}{op}{ver}"));
                } else {
                    out.push(name.to_string());
                }
                i += 3;
            }
            _ => {
                out.push(name.to_string());
                i += 1;
            }
        }
    }
    out
}

/// A light check of apk's version grammar (no `-rN`): digits{.digits}
/// {letter}{_suffix{digits}}. Versions that fail are left out of `pc:` lines.
fn is_apk_version(v: &str) -> bool {
    let b = v.as_bytes();
    let mut i = 0;
    let digits = |i: &mut usize| {
        let s = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i > s
    };
    if !digits(&mut i) {
        return false;
    }
    while i < b.len() && b[i] == b'.' {
        i += 1;
        if !digits(&mut i) {
            return false;
        }
    }
    if i < b.len() && b[i].is_ascii_lowercase() {
        i += 1;
    }
    while i < b.len() && b[i] == b'_' {
        i += 1;
        let s = i;
        while i < b.len() && b[i].is_ascii_lowercase() {
            i += 1;
        }
        let suffix = &v[s..i];
        if !["alpha", "beta", "pre", "rc", "cvs", "svn", "git", "hg", "p"].contains(&suffix) {
            return false;
        }
        digits(&mut i);
    }
    i == b.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn so_versions() {
        for (soname, want) in [
            ("libgreet.so.1", "1"),
            ("libc.so.6", "6"),
            ("libfoo.so.1.2.3", "1.2.3"),
            ("libfoo.so", "0"),
            ("ld-linux-x86-64.so.2", "2"),
        ] {
            assert_eq!(so_version(soname), want, "{soname}");
        }
    }

    #[test]
    fn pc_files() {
        let text = "prefix=/usr\nlibdir=${prefix}/lib\nmajor=1\n\nName: greet\n\
                    Version: ${major}.2\nRequires: glib-2.0 >= 2.50, zlib\n\
                    Requires.private: libffi # comment\nLibs: -L${libdir} -lgreet\n";
        assert_eq!(
            parse_pc(text),
            PcFile {
                version: Some("1.2".into()),
                requires: vec!["glib-2.0>=2.50".into(), "zlib".into(), "libffi".into()],
            }
        );
        assert_eq!(parse_requires("a != 1, b = 1.0-beta"), vec!["a", "b"]);
    }

    #[test]
    fn apk_versions() {
        for (v, ok) in [
            ("1.2", true),
            ("1.0_rc1", true),
            ("1.0a", true),
            ("2.50_p2_git", true),
            ("1.2-beta", false),
            ("v1", false),
            ("", false),
            ("1..2", false),
        ] {
            assert_eq!(is_apk_version(v), ok, "{v}");
        }
    }

    #[test]
    fn merge_dedupes_sorts_and_drops_self_provided() {
        let auto = AutoDeps {
            depends: vec![
                "so:libc.so.6".into(),
                "so:libgreet.so.1".into(),
                "pc:zlib".into(),
            ],
            provides: vec!["so:libgreet.so.1=1".into(), "pc:greet=1.2".into()],
        };
        let (d, p) = merge(
            "greet",
            &[
                "zlib".into(),
                "greet".into(),
                "pc:greet".into(),
                "zlib".into(),
            ],
            &["cmd:greet=1.2-r0".into()],
            &auto,
        );
        assert_eq!(d, vec!["pc:zlib", "so:libc.so.6", "zlib"]);
        assert_eq!(
            p,
            vec!["cmd:greet=1.2-r0", "pc:greet=1.2", "so:libgreet.so.1=1"]
        );
    }

    #[test]
    fn scans_host_elf_files() {
        // A real dynamically linked executable and shared library from the host.
        let dir = tempfile::tempdir().unwrap();
        let bin = Path::new("/bin/sh").canonicalize().unwrap();
        fs::create_dir_all(dir.path().join("usr/bin")).unwrap();
        fs::copy(&bin, dir.path().join("usr/bin/sh")).unwrap();
        let libc = [
            "/lib/x86_64-linux-gnu/libc.so.6",
            "/lib/aarch64-linux-gnu/libc.so.6",
        ]
        .into_iter()
        .map(Path::new)
        .find(|p| p.exists());
        fs::create_dir_all(dir.path().join("usr/lib/pkgconfig")).unwrap();
        fs::write(
            dir.path().join("usr/lib/pkgconfig/greet.pc"),
            "Version: 1.2\nRequires: zlib\n",
        )
        .unwrap();
        fs::write(dir.path().join("usr/lib/notelf"), "plain").unwrap();
        if let Some(libc) = libc {
            fs::copy(libc, dir.path().join("usr/lib/libc.so.6")).unwrap();
        }
        let deps = scan_auto_deps(dir.path()).unwrap();
        assert!(deps.provides.contains(&"pc:greet=1.2".to_string()));
        assert!(deps.depends.contains(&"pc:zlib".to_string()));
        if libc.is_some() {
            assert!(
                deps.provides.contains(&"so:libc.so.6=6".to_string()),
                "{deps:?}"
            );
            // libc is provided by the tree itself, so it is not a dependency.
            assert!(
                !deps.depends.contains(&"so:libc.so.6".to_string()),
                "{deps:?}"
            );
        } else {
            assert!(
                deps.depends.contains(&"so:libc.so.6".to_string()),
                "{deps:?}"
            );
        }
    }
}
