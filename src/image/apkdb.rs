//! The apk database of the image: `/lib/apk/db/installed`, `/etc/apk/world`
//! and `/etc/apk/arch`, so `apk info` (and scanners that read the apk
//! database) inside the image see exactly what was installed.
//!
//! `installed` has one block per package, fields in the order apk writes them
//! (`C P V A S I T U L o m t c D p`), then the package's folders (`F:` with an
//! `M:uid:gid:mode` line when not root-owned 0755) each followed by its files
//! (`R:` with an `a:uid:gid:mode` line when not root-owned 0644, and `Z:` the
//! `Q1` base64 SHA-1 of the content, or of the target for a symlink). A blank
//! line ends each block.
//!
//! The database mentions every package, so it lives in the final layer:
//! per-package layers stay byte-stable when another package changes.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use sha1::{Digest as _, Sha1};

use super::rootfs::{EntryKind, InstalledPackage};

/// `Q1` + base64 SHA-1 of `bytes`, apk's checksum notation.
pub fn q1_sha1(bytes: &[u8]) -> String {
    q1(&Sha1::digest(bytes).into())
}

/// `Q1` + base64 of a SHA-1 digest.
fn q1(digest: &[u8; 20]) -> String {
    format!(
        "Q1{}",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// The `Z:` checksum of a file or symlink entry: the digest the verified
/// reader computed when there is one, else computed here.
fn entry_q1(e: &super::rootfs::Entry) -> Option<String> {
    if let Some(d) = &e.sha1 {
        return Some(q1(d));
    }
    match &e.kind {
        EntryKind::File(data) => Some(q1_sha1(data)),
        EntryKind::Symlink(t) => Some(q1_sha1(t.as_bytes())),
        EntryKind::Hardlink(_) | EntryKind::Dir => None,
    }
}

/// The text of `/lib/apk/db/installed` for `packages` (written sorted by name).
pub fn installed(packages: &[&InstalledPackage]) -> String {
    let mut sorted: Vec<&InstalledPackage> = packages.to_vec();
    sorted.sort_by(|a, b| a.meta.name.cmp(&b.meta.name));
    let mut out = String::new();
    for p in sorted {
        write_package(p, &mut out);
        out.push('\n');
    }
    out
}

fn field(out: &mut String, key: char, value: &str) {
    if !value.is_empty() {
        out.push_str(&format!("{key}:{value}\n"));
    }
}

fn write_package(p: &InstalledPackage, out: &mut String) {
    let m = &p.meta;
    field(out, 'C', &m.identity);
    field(out, 'P', &m.name);
    field(out, 'V', &m.version);
    field(out, 'A', &m.arch);
    field(out, 'S', &m.file_size.to_string());
    field(out, 'I', &m.installed_size.to_string());
    field(out, 'T', &m.description);
    field(out, 'U', &m.url);
    field(out, 'L', &m.license);
    field(out, 'o', &m.origin);
    field(out, 'm', &m.maintainer);
    if m.builddate != 0 {
        field(out, 't', &m.builddate.to_string());
    }
    field(out, 'c', &m.commit);
    field(out, 'D', &m.depends.join(" "));
    field(out, 'p', &m.provides.join(" "));

    // Folder → (its own entry, files in it).
    let by_path: BTreeMap<&str, &super::rootfs::Entry> =
        p.entries.iter().map(|e| (e.path.as_str(), e)).collect();
    let mut dirs: BTreeSet<&str> = BTreeSet::new();
    let mut files: BTreeMap<&str, Vec<&super::rootfs::Entry>> = BTreeMap::new();
    for e in &p.entries {
        if e.is_dir() {
            dirs.insert(&e.path);
        } else {
            let parent = e.path.rsplit_once('/').map_or("", |(d, _)| d);
            dirs.insert(parent);
            files.entry(parent).or_default().push(e);
        }
    }
    for dir in dirs {
        if dir.is_empty() && !files.contains_key("") {
            continue;
        }
        out.push_str(&format!("F:{dir}\n"));
        if let Some(d) = by_path.get(dir)
            && (d.uid, d.gid, d.mode & 0o7777) != (0, 0, 0o755)
        {
            out.push_str(&format!("M:{}:{}:{:o}\n", d.uid, d.gid, d.mode & 0o7777));
        }
        let mut list = files.remove(dir).unwrap_or_default();
        list.sort_by(|a, b| a.path.cmp(&b.path));
        for f in list {
            let base = f.path.rsplit_once('/').map_or(f.path.as_str(), |(_, b)| b);
            out.push_str(&format!("R:{base}\n"));
            if (f.uid, f.gid, f.mode & 0o7777) != (0, 0, 0o644) {
                out.push_str(&format!("a:{}:{}:{:o}\n", f.uid, f.gid, f.mode & 0o7777));
            }
            let sum = match &f.kind {
                EntryKind::Hardlink(t) => by_path
                    .get(t.as_str())
                    .filter(|e| matches!(e.kind, EntryKind::File(_)))
                    .and_then(|e| entry_q1(e)),
                _ => entry_q1(f),
            };
            if let Some(s) = sum {
                out.push_str(&format!("Z:{s}\n"));
            }
        }
    }
}

/// The text of `/etc/apk/world`: requested package names, sorted, one a line.
pub fn world(requested: &[String]) -> String {
    let set: BTreeSet<&str> = requested.iter().map(String::as_str).collect();
    set.into_iter().map(|s| format!("{s}\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::rootfs::{Entry, PackageMeta};

    #[test]
    fn installed_matches_apk_layout() {
        let mut suid = Entry::file("usr/bin/su", 0o4755, b"su".to_vec());
        suid.gid = 10;
        let mut var = Entry::dir("var/lib/app", 0o750);
        var.uid = 100;
        var.gid = 101;
        let pkg = InstalledPackage {
            meta: PackageMeta {
                name: "hello".into(),
                version: "1.0-r0".into(),
                arch: "x86_64".into(),
                description: "says hello".into(),
                url: "https://example.org/hello".into(),
                license: "MIT".into(),
                origin: "hello".into(),
                maintainer: "A <a@example.org>".into(),
                builddate: 1_700_000_000,
                commit: "0123456789abcdef0123456789abcdef01234567".into(),
                depends: vec!["so:libc.so.6".into()],
                provides: vec!["cmd:hello=1.0-r0".into()],
                installed_size: 4096,
                file_size: 1234,
                identity: "Q1AAAAAAAAAAAAAAAAAAAAAAAAAAA=".into(),
                sha256: String::new(),
                packager: String::new(),
            },
            entries: vec![
                Entry::dir("usr", 0o755),
                Entry::dir("usr/bin", 0o755),
                Entry::file("usr/bin/hello", 0o755, b"hi".to_vec()),
                Entry::symlink("usr/bin/hi", "hello"),
                suid,
                var,
            ],
        };
        let text = installed(&[&pkg]);
        assert_eq!(
            text,
            format!(
                "C:Q1AAAAAAAAAAAAAAAAAAAAAAAAAAA=\nP:hello\nV:1.0-r0\nA:x86_64\nS:1234\nI:4096\nT:says hello\n\
U:https://example.org/hello\nL:MIT\no:hello\nm:A <a@example.org>\nt:1700000000\n\
c:0123456789abcdef0123456789abcdef01234567\nD:so:libc.so.6\np:cmd:hello=1.0-r0\n\
F:usr\nF:usr/bin\nR:hello\na:0:0:755\nZ:{}\nR:hi\na:0:0:777\nZ:{}\nR:su\na:0:10:4755\nZ:{}\n\
F:var/lib/app\nM:100:101:750\n\n",
                q1_sha1(b"hi"),
                q1_sha1(b"hello"),
                q1_sha1(b"su")
            )
        );
    }

    /// A digest carried from the verified reader is used as is: the
    /// content is not hashed a second time (for a file, a symlink and a
    /// hard link to the file).
    #[test]
    fn carried_digests_are_reused() {
        let carried: [u8; 20] = Sha1::digest(b"as the reader saw it").into();
        let mut file = Entry::file("bin/a", 0o644, b"content".to_vec());
        file.sha1 = Some(carried);
        let mut link = Entry::symlink("bin/l", "a");
        link.sha1 = Some(carried);
        let hard = Entry {
            kind: EntryKind::Hardlink("bin/a".into()),
            ..Entry::file("bin/h", 0o644, Vec::new())
        };
        let pkg = InstalledPackage {
            meta: PackageMeta::default(),
            entries: vec![Entry::dir("bin", 0o755), file, link, hard],
        };
        let text = installed(&[&pkg]);
        let z = format!("Z:{}\n", q1(&carried));
        assert_eq!(text.matches(&z).count(), 3, "{text}");
        assert!(!text.contains(&q1_sha1(b"content")), "{text}");
    }

    #[test]
    fn q1_and_world() {
        // SHA-1 of the empty string, base64.
        assert_eq!(q1_sha1(b""), "Q12jmj7l5rSw0yVb/vlWAYkK/YBwk=");
        assert_eq!(world(&["b".into(), "a".into(), "b".into()]), "a\nb\n");
    }
}
