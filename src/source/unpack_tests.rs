//! Unpack safety: malicious archives built in memory.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;

use super::super::tree::TreeWriter;
use super::*;

/// One tar entry to build; paths and link names are written raw, so the
/// `tar` crate's own checks do not stop malicious ones from being built.
enum E<'a> {
    File(&'a str, u32, &'a [u8]),
    Dir(&'a str),
    Sym(&'a str, &'a str),
    Hard(&'a str, &'a str),
    Char(&'a str),
    Fifo(&'a str),
}

fn tar_bytes(entries: &[E]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_ustar();
        let (path, kind, mode, data, link): (&str, tar::EntryType, u32, &[u8], Option<&str>) =
            match e {
                E::File(p, m, d) => (p, tar::EntryType::Regular, *m, d, None),
                E::Dir(p) => (p, tar::EntryType::Directory, 0o755, b"", None),
                E::Sym(p, t) => (p, tar::EntryType::Symlink, 0o777, b"", Some(t)),
                E::Hard(p, t) => (p, tar::EntryType::Link, 0o644, b"", Some(t)),
                E::Char(p) => (p, tar::EntryType::Char, 0o644, b"", None),
                E::Fifo(p) => (p, tar::EntryType::Fifo, 0o644, b"", None),
            };
        let old = h.as_old_mut();
        old.name[..path.len()].copy_from_slice(path.as_bytes());
        if let Some(t) = link {
            old.linkname[..t.len()].copy_from_slice(t.as_bytes());
        }
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(data.len() as u64);
        h.set_mtime(1_000_000_000);
        h.set_cksum();
        b.append(&h, data).unwrap();
    }
    b.into_inner().unwrap()
}

fn unpack_bytes(
    name: &str,
    bytes: &[u8],
) -> (tempfile::TempDir, Result<Option<PathBuf>, SourceError>) {
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join(name);
    std::fs::write(&archive, bytes).unwrap();
    let format = sniff(&archive).unwrap().expect("recognised archive");
    let res = unpack(&archive, format, &tmp.path().join("a/b/src"));
    (tmp, res)
}

#[test]
fn refuses_malicious_tars() {
    let cases: &[(&str, Vec<E>, &str, &str)] = &[
        (
            "dotdot",
            vec![E::File("../x", 0o644, b"x")],
            "`../x`",
            "path contains `..`",
        ),
        (
            "deep-dotdot",
            vec![E::File("a/../../x", 0o644, b"x")],
            "`a/../../x`",
            "`..`",
        ),
        (
            "absolute",
            vec![E::File("/etc/x", 0o644, b"x")],
            "`/etc/x`",
            "absolute path",
        ),
        (
            "symlink-root",
            vec![E::Sym("l", "/"), E::File("l/x", 0o644, b"x")],
            "`l`",
            "is absolute",
        ),
        (
            "through-symlink",
            vec![E::Dir("d"), E::Sym("l", "d"), E::File("l/x", 0o644, b"x")],
            "`l/x`",
            "goes through the symlink `l`",
        ),
        (
            "symlink-up",
            vec![E::Sym("a/l", "../../x")],
            "`a/l`",
            "escapes the tree",
        ),
        (
            "symlink-up-after-name",
            vec![E::Sym("a/l", "b/../../x")],
            "`a/l`",
            "after a name",
        ),
        (
            "hardlink-up",
            vec![E::Hard("h", "../../etc/passwd")],
            "`h`",
            "escapes the tree",
        ),
        (
            "hardlink-abs",
            vec![E::Hard("h", "/etc/passwd")],
            "`h`",
            "escapes the tree",
        ),
        (
            "hardlink-missing",
            vec![E::Hard("h", "nope")],
            "`h`",
            "not in the tree",
        ),
        (
            "hardlink-symlink",
            vec![E::Sym("s", "x"), E::Hard("h", "s")],
            "`h`",
            "goes through a symlink",
        ),
        (
            "chardev",
            vec![E::Char("dev/null")],
            "`dev/null`",
            "character device entries are not allowed",
        ),
        (
            "fifo",
            vec![E::Fifo("p")],
            "`p`",
            "fifo entries are not allowed",
        ),
        (
            "dir-over-file",
            vec![
                E::Dir("d"),
                E::File("d/f", 0o644, b""),
                E::File("d", 0o644, b""),
            ],
            "`d`",
            "would replace a folder",
        ),
    ];
    for (name, entries, entry, reason) in cases {
        let file = format!("{name}.tar");
        let (tmp, res) = unpack_bytes(&file, &tar_bytes(entries));
        let err = res.expect_err(name).to_string();
        assert!(err.contains(&file), "{name}: names the archive: {err}");
        assert!(
            err.contains(entry),
            "{name}: names the entry {entry}: {err}"
        );
        assert!(err.contains(reason), "{name}: says {reason}: {err}");
        // Nothing landed outside the destination.
        for outside in ["x", "a/x", "a/b/x", "etc"] {
            assert!(
                !tmp.path().join(outside).exists(),
                "{name}: wrote {outside}"
            );
        }
    }
}

fn good_tar() -> Vec<u8> {
    tar_bytes(&[
        E::Dir("pkg-1.0/"),
        E::File("pkg-1.0/configure", 0o6755, b"#!/bin/sh\n"),
        E::Dir("pkg-1.0/src/"),
        E::File("pkg-1.0/src/main.c", 0o644, b"int main(){}\n"),
        E::Sym("pkg-1.0/src/link.c", "main.c"),
        E::Sym("pkg-1.0/src/up", "../configure"),
        E::Hard("pkg-1.0/src/hard.c", "pkg-1.0/src/main.c"),
        E::File("./pkg-1.0/./README", 0o444, b"read me"),
    ])
}

fn check_good_tree(
    tmp: &tempfile::TempDir,
    res: Result<Option<PathBuf>, SourceError>,
    label: &str,
) {
    let top = res.unwrap_or_else(|e| panic!("{label}: {e}"));
    assert_eq!(top, Some(PathBuf::from("pkg-1.0")), "{label}");
    let root = tmp.path().join("a/b/src/pkg-1.0");
    let mode = |p: &str| {
        std::fs::symlink_metadata(root.join(p))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    };
    assert_eq!(mode("configure"), 0o755, "{label}: setuid/setgid dropped");
    assert_eq!(mode("README"), 0o444, "{label}");
    assert_eq!(
        std::fs::read(root.join("src/link.c")).unwrap(),
        b"int main(){}\n"
    );
    assert_eq!(
        std::fs::read_link(root.join("src/up")).unwrap(),
        Path::new("../configure")
    );
    assert_eq!(
        std::fs::read(root.join("src/hard.c")).unwrap(),
        b"int main(){}\n"
    );
    let mtime = std::fs::metadata(root.join("src/main.c"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(
        mtime,
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000),
        "{label}"
    );
}

#[test]
fn unpacks_every_compression() {
    let plain = good_tar();
    let gz = {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(&plain).unwrap();
        e.finish().unwrap()
    };
    let xz = {
        let mut e = xz2::write::XzEncoder::new(Vec::new(), 6);
        e.write_all(&plain).unwrap();
        e.finish().unwrap()
    };
    let bz = {
        let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
        e.write_all(&plain).unwrap();
        e.finish().unwrap()
    };
    let zst = zstd::stream::encode_all(&plain[..], 3).unwrap();
    let cases = [
        ("p.tar", plain.clone(), Format::Tar),
        // The name lies; the magic bytes decide.
        ("p.tar.gz", gz.clone(), Format::TarGz),
        ("p.tgz", gz, Format::TarGz),
        ("p.tar.xz", xz, Format::TarXz),
        ("p.tar.bz2", bz, Format::TarBz2),
        ("p.tar.zst", zst, Format::TarZst),
    ];
    for (name, bytes, want) in cases {
        assert_eq!(sniff_bytes(&bytes), Some(want), "{name}");
        let (tmp, res) = unpack_bytes(name, &bytes);
        check_good_tree(&tmp, res, name);
    }
    assert_eq!(sniff_bytes(b"just text, not an archive"), None);
}

#[test]
fn top_level_detection() {
    let cases: &[(Vec<E>, Option<&str>)] = &[
        (vec![E::File("a/x", 0o644, b"")], Some("a")),
        (
            vec![E::File("a/x", 0o644, b""), E::File("b", 0o644, b"")],
            None,
        ),
        (vec![E::File("only", 0o644, b"")], None),
        (vec![E::Dir("a"), E::Dir("a/b")], Some("a")),
    ];
    for (entries, want) in cases {
        let (_tmp, res) = unpack_bytes("t.tar", &tar_bytes(entries));
        assert_eq!(res.unwrap(), want.map(PathBuf::from));
    }
}

fn zip_bytes(build: impl FnOnce(&mut zip::ZipWriter<std::io::Cursor<Vec<u8>>>)) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    build(&mut w);
    w.finish().unwrap().into_inner()
}

#[test]
fn zip_good_and_bad() {
    use zip::write::SimpleFileOptions as O;
    let good = zip_bytes(|w| {
        w.add_directory("z-2/", O::default().unix_permissions(0o755))
            .unwrap();
        w.start_file("z-2/run.sh", O::default().unix_permissions(0o4755))
            .unwrap();
        w.write_all(b"echo hi\n").unwrap();
        w.add_symlink("z-2/l", "run.sh", O::default()).unwrap();
    });
    let (tmp, res) = unpack_bytes("good.zip", &good);
    assert_eq!(res.unwrap(), Some(PathBuf::from("z-2")));
    let run = tmp.path().join("a/b/src/z-2/run.sh");
    assert_eq!(std::fs::read(&run).unwrap(), b"echo hi\n");
    assert_eq!(
        std::fs::metadata(&run).unwrap().permissions().mode() & 0o7777,
        0o755
    );
    assert_eq!(
        std::fs::read_link(tmp.path().join("a/b/src/z-2/l")).unwrap(),
        Path::new("run.sh")
    );

    let bad: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "dotdot.zip",
            zip_bytes(|w| {
                w.start_file("../x", O::default()).unwrap();
                w.write_all(b"x").unwrap();
            }),
            "path contains `..`",
        ),
        (
            "abs.zip",
            zip_bytes(|w| {
                w.start_file("/etc/x", O::default()).unwrap();
            }),
            "absolute path",
        ),
        (
            "link.zip",
            zip_bytes(|w| {
                w.add_symlink("l", "/etc", O::default()).unwrap();
            }),
            "is absolute",
        ),
        (
            "through.zip",
            zip_bytes(|w| {
                w.add_symlink("l", ".", O::default()).unwrap();
                w.start_file("l/x", O::default()).unwrap();
            }),
            "goes through the symlink `l`",
        ),
    ];
    for (name, bytes, reason) in bad {
        let (tmp, res) = unpack_bytes(name, &bytes);
        let err = res.expect_err(name).to_string();
        assert!(err.contains(name) && err.contains(reason), "{name}: {err}");
        assert!(!tmp.path().join("a/b/x").exists() && !tmp.path().join("x").exists());
    }
}

/// A base-256 mtime near `u64::MAX` is an error naming the entry; before,
/// adding it to the Unix epoch overflowed `SystemTime` and panicked.
#[test]
fn huge_tar_mtime_is_an_error_not_a_panic() {
    for mtime in [u64::MAX, i64::MAX as u64 + 1] {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_path("top/x").unwrap();
        h.set_mode(0o644);
        h.set_size(1);
        h.set_mtime(mtime);
        h.set_cksum();
        b.append(&h, &b"x"[..]).unwrap();
        let bytes = b.into_inner().unwrap();
        assert_eq!(bytes[136] & 0x80, 0x80, "base-256 mtime");
        let (_tmp, res) = unpack_bytes("huge-mtime.tar", &bytes);
        let err = crate::util::error_chain(&res.unwrap_err());
        assert!(err.contains("`top/x`"), "{mtime}: {err}");
        assert!(
            err.contains(&format!("mtime {mtime} is out of range")),
            "{err}"
        );
    }
}

/// A zip (a wheel) or tar that unpacks to more than the tree's byte or entry
/// budget is refused, naming the archive and the entry that crossed it;
/// nothing past the budget is written. (Before, unpacking had no size cap: a
/// small compressed entry could fill the disk.)
#[test]
fn unpacked_size_and_entry_count_are_capped() {
    use zip::write::SimpleFileOptions as O;
    let bomb = zip_bytes(|w| {
        w.start_file("w/big", O::default()).unwrap();
        w.write_all(&vec![0u8; 4096]).unwrap();
    });
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("bomb.whl");
    std::fs::write(&archive, &bomb).unwrap();
    let dest = tmp.path().join("src");
    let mut w = TreeWriter::new(&dest, &archive)
        .unwrap()
        .with_limits(1024, 100);
    let file = std::fs::File::open(&archive).unwrap();
    let err = unpack_zip(file, &archive, &mut w).unwrap_err().to_string();
    assert!(err.contains("bomb.whl"), "{err}");
    assert!(
        err.contains("entry `w/big` of ") && err.ends_with(": unpacks to more than 1024 bytes"),
        "{err}"
    );
    let left = std::fs::metadata(dest.join("w/big")).map_or(0, |m| m.len());
    assert!(left <= 1025, "{left} bytes written");

    let many = tar_bytes(&[
        E::Dir("t/"),
        E::File("t/a", 0o644, b"a"),
        E::File("t/b", 0o644, b"b"),
    ]);
    let archive = tmp.path().join("many.tar");
    std::fs::write(&archive, &many).unwrap();
    let mut w = TreeWriter::new(&tmp.path().join("src2"), &archive)
        .unwrap()
        .with_limits(1024, 2);
    let err = unpack_tar(std::fs::File::open(&archive).unwrap(), &archive, &mut w)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("entry `t/b` of ") && err.ends_with(": more than 2 entries"),
        "{err}"
    );
}
