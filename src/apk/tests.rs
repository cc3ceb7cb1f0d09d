//! Round-trip tests: write → read → verify, tampering, determinism, layout.

use std::fs;
use std::io::Read as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use sha1::{Digest as _, Sha1};

use super::member::Tap;
use super::tar::{self, Kind};
use super::*;
use crate::sign::tests::{test_key, test_trust};
use crate::sign::{self, SigningKey, TrustedKeys};

pub(crate) fn spec(root: &Path) -> PackageSpec {
    PackageSpec {
        name: "hello".into(),
        version: "2.12-r0".into(),
        description: "Say hello".into(),
        url: "https://example.org/hello".into(),
        license: "MIT".into(),
        arch: "x86_64".into(),
        origin: "hello".into(),
        commit: Some("0123456789abcdef0123456789abcdef01234567".into()),
        builddate: 1_700_000_000,
        packager: "forge".into(),
        depends: vec!["musl".into()],
        provides: vec![],
        root: root.to_path_buf(),
    }
}

/// A small fixed tree: folders, files, an empty file, a symlink, a hard link.
pub(crate) fn fixture_tree(root: &Path) {
    let w = |rel: &str, text: &str, mode: u32| {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, text).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
    };
    w("usr/bin/hello", "#!/bin/sh\necho hello\n", 0o755);
    w("usr/share/doc/hello/README", "Hello, world.\n", 0o644);
    w("usr/share/hello/empty", "", 0o644);
    w("etc/hello.conf", "greeting=hi\n", 0o644);
    std::os::unix::fs::symlink("hello", root.join("usr/bin/hi")).unwrap();
    fs::hard_link(root.join("usr/bin/hello"), root.join("usr/bin/hello-again")).unwrap();
    for d in [
        "usr",
        "usr/bin",
        "usr/share",
        "usr/share/doc",
        "usr/share/doc/hello",
        "usr/share/hello",
        "etc",
    ] {
        fs::set_permissions(root.join(d), fs::Permissions::from_mode(0o755)).unwrap();
    }
}

fn write_fixture() -> (tempfile::TempDir, WrittenPackage) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    fixture_tree(&root);
    let (_, key) = test_key();
    let w = write_package(
        &spec(&root),
        key,
        &WriteOptions::default(),
        &dir.path().join("out"),
    )
    .unwrap();
    (dir, w)
}

/// (start, end) of each gzip member.
fn members(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut tap = Tap::new(bytes);
    let mut out = Vec::new();
    while tap.pos < bytes.len() as u64 {
        let start = tap.pos as usize;
        let mut sink = Vec::new();
        flate2::bufread::GzDecoder::new(&mut tap)
            .read_to_end(&mut sink)
            .unwrap();
        out.push((start, tap.pos as usize));
    }
    out
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .unwrap();
    out
}

#[test]
fn round_trip_write_read_verify() {
    let (_dir, w) = write_fixture();
    let verified = VerifiedPackage::open(&w.path, Trust::Signed(&test_trust())).unwrap();
    assert_eq!(verified.signer.as_deref(), Some(test_key().1.name()));
    assert_eq!(verified.identity, w.identity);
    let file_sha256: [u8; 32] =
        <sha2::Sha256 as sha2::Digest>::digest(fs::read(&w.path).unwrap()).into();
    assert_eq!(verified.sha256, file_sha256);
    let readme = verified
        .entries()
        .iter()
        .find(|f| f.path == "usr/share/doc/hello/README")
        .unwrap();
    assert_eq!(&*verified.content(readme).unwrap(), b"Hello, world.\n");
    let pkg = Package::open(&w.path).unwrap();
    assert_eq!(pkg.info, w.info);
    assert_eq!(pkg.identity, w.identity);
    assert_eq!(pkg.file_size, fs::metadata(&w.path).unwrap().len());
    assert_eq!(w.path.file_name().unwrap(), "hello-2.12-r0.apk");
    assert_eq!(pkg.control_entries, vec![".PKGINFO"]);
    let listing: Vec<(Kind, &str, &str)> = pkg
        .files
        .iter()
        .map(|f| (f.kind, f.path.as_str(), f.link.as_str()))
        .collect();
    assert_eq!(
        listing,
        vec![
            (Kind::Dir, "etc", ""),
            (Kind::File, "etc/hello.conf", ""),
            (Kind::Dir, "usr", ""),
            (Kind::Dir, "usr/bin", ""),
            (Kind::File, "usr/bin/hello", ""),
            (Kind::HardLink, "usr/bin/hello-again", "usr/bin/hello"),
            (Kind::Symlink, "usr/bin/hi", "hello"),
            (Kind::Dir, "usr/share", ""),
            (Kind::Dir, "usr/share/doc", ""),
            (Kind::Dir, "usr/share/doc/hello", ""),
            (Kind::File, "usr/share/doc/hello/README", ""),
            (Kind::Dir, "usr/share/hello", ""),
            (Kind::File, "usr/share/hello/empty", ""),
        ]
    );
    let hello = pkg
        .files
        .iter()
        .find(|f| f.path == "usr/bin/hello")
        .unwrap();
    assert_eq!(hello.mode, 0o755);
    assert_eq!(
        hello.expected_sha1.as_deref(),
        Some(hex::encode(Sha1::digest(b"#!/bin/sh\necho hello\n")).as_str())
    );
    let hi = pkg.files.iter().find(|f| f.path == "usr/bin/hi").unwrap();
    assert_eq!(
        hi.expected_sha1.as_deref(),
        Some(hex::encode(Sha1::digest(b"hello")).as_str())
    );
    // Installed size: the hard link counts once.
    assert_eq!(w.info.size, (21 + 14 + 12) as u64);
    assert_eq!(w.info.depends, vec!["musl"]);
}

#[test]
fn layout_three_members_cut_tars_and_headers() {
    let (_dir, w) = write_fixture();
    let bytes = fs::read(&w.path).unwrap();
    let m = members(&bytes);
    assert_eq!(m.len(), 3);
    assert_eq!(m[2].1, bytes.len());
    for (s, _) in &m {
        assert_eq!(&bytes[*s..*s + 10], &gzip::HEADER);
    }
    let sig = gunzip(&bytes[m[0].0..m[0].1]);
    // One header + the 256-byte signature padded to a block; no end-of-archive.
    assert_eq!(sig.len(), 1024);
    assert_eq!(&sig[..13], b".SIGN.RSA256.");
    let control = gunzip(&bytes[m[1].0..m[1].1]);
    assert_eq!(control.len() % 512, 0);
    assert_ne!(
        &control[control.len() - 512..],
        &[0u8; 512][..],
        "control tar must be cut"
    );
    assert_eq!(&control[..8], b".PKGINFO");
    let data = gunzip(&bytes[m[2].0..]);
    assert_eq!(&data[data.len() - 1024..], &[0u8; 1024][..]);
    // The identity is the SHA-1 of the compressed control member.
    assert_eq!(
        w.identity,
        <[u8; 20]>::from(Sha1::digest(&bytes[m[1].0..m[1].1]))
    );
    // datahash is the SHA-256 of the compressed data member.
    let dh = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes[m[2].0..]));
    assert_eq!(w.info.datahash.as_deref(), Some(dh.as_str()));
    // The whole file is one valid tar when decompressed as a multi-member stream.
    let mut all = Vec::new();
    flate2::read::MultiGzDecoder::new(&bytes[..])
        .read_to_end(&mut all)
        .unwrap();
    assert_eq!(all.len(), sig.len() + control.len() + data.len());
    // .PKGINFO ends with datahash.
    let text = w.info.render();
    assert!(text.lines().last().unwrap().starts_with("datahash = "));
}

#[test]
fn writes_are_reproducible_and_mtimes_clamped() {
    let (dir, w1) = write_fixture();
    let root = dir.path().join("root");
    // Touching files to "now" must not change anything: mtimes clamp to builddate.
    for f in ["usr/bin/hello", "etc/hello.conf"] {
        let file = fs::OpenOptions::new()
            .append(true)
            .open(root.join(f))
            .unwrap();
        file.set_modified(std::time::SystemTime::now()).unwrap();
    }
    let (_, key) = test_key();
    let w2 = write_package(
        &spec(&root),
        key,
        &WriteOptions::default(),
        &dir.path().join("out2"),
    )
    .unwrap();
    assert_eq!(fs::read(&w1.path).unwrap(), fs::read(&w2.path).unwrap());
    let data = {
        let bytes = fs::read(&w1.path).unwrap();
        let m = members(&bytes);
        gunzip(&bytes[m[2].0..])
    };
    let mut r = tar::Reader::new(&data[..]);
    while let Some(e) = r.next_entry().unwrap() {
        assert!(e.mtime <= 1_700_000_000, "{}", e.path);
    }
}

/// The verification failure of the package at `path`.
fn verify_err(path: &Path, trusted: &TrustedKeys) -> VerifyError {
    match VerifiedPackage::open(path, Trust::Signed(trusted)) {
        Err(PackageError::Verify(v)) => v,
        other => panic!("expected a verification failure, got {other:?}"),
    }
}

/// Flip one byte in the middle of the given member and describe the failure.
fn flip_and_check(member: usize) -> String {
    let (dir, w) = write_fixture();
    let mut bytes = fs::read(&w.path).unwrap();
    let m = members(&bytes);
    let (s, e) = m[member];
    bytes[(s + e) / 2] ^= 0x55;
    let bad = dir.path().join("bad.apk");
    fs::write(&bad, &bytes).unwrap();
    VerifiedPackage::open(&bad, Trust::Signed(&test_trust()))
        .unwrap_err()
        .to_string()
}

#[test]
fn flipped_byte_names_the_part() {
    let sig = flip_and_check(0);
    assert!(sig.starts_with("signature section is corrupt"), "{sig}");
    let control = flip_and_check(1);
    assert!(
        control.starts_with("control section is corrupt"),
        "{control}"
    );
    let data = flip_and_check(2);
    assert!(
        data.starts_with("datahash: data section hashes to"),
        "{data}"
    );
}

#[test]
fn altered_control_header_fails_the_signature() {
    // Bytes 4..8 of a gzip header (MTIME) are not covered by the CRC: the
    // member still decompresses, but the signature no longer matches.
    let (dir, w) = write_fixture();
    let mut bytes = fs::read(&w.path).unwrap();
    let m = members(&bytes);
    bytes[m[1].0 + 4] = 1;
    let bad = dir.path().join("bad.apk");
    fs::write(&bad, &bytes).unwrap();
    let err = verify_err(&bad, &test_trust());
    assert_eq!(
        err,
        VerifyError::BadSignature {
            key: test_key().1.name().to_string()
        }
    );
}

#[test]
fn untrusted_and_unsigned() {
    let (_dir, w) = write_fixture();
    assert_eq!(
        verify_err(&w.path, &TrustedKeys::new()),
        VerifyError::UntrustedKey {
            names: vec![test_key().1.name().to_string()]
        }
    );
    // Strip the signature member: an unsigned package.
    let bytes = fs::read(&w.path).unwrap();
    let m = members(&bytes);
    let unsigned = w.path.with_file_name("unsigned.apk");
    fs::write(&unsigned, &bytes[m[1].0..]).unwrap();
    assert_eq!(verify_err(&unsigned, &test_trust()), VerifyError::Unsigned);
}

#[test]
fn tampered_file_with_consistent_hashes_names_the_file() {
    // Rebuild a package whose data tar carries a wrong content for one file
    // but whose datahash and signature are recomputed: only the per-file
    // checksum can catch it.
    let (dir, w) = write_fixture();
    let bytes = fs::read(&w.path).unwrap();
    let m = members(&bytes);
    let mut data = gunzip(&bytes[m[2].0..]);
    let needle = b"Hello, world.";
    let at = data
        .windows(needle.len())
        .position(|x| x == needle)
        .unwrap();
    data[at] = b'J';
    let data_gz = gzip::compress(&data).unwrap();
    let mut info = w.info.clone();
    info.datahash = Some(hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
        &data_gz,
    )));
    let control = write::control_member(&info, 0).unwrap();
    let (_, key) = test_key();
    let sig = write::signature_member(key, &control, 0, false).unwrap();
    let bad = dir.path().join("bad.apk");
    fs::write(&bad, [sig, control, data_gz].concat()).unwrap();
    let err = verify_err(&bad, &test_trust());
    match err {
        VerifyError::FileChecksum { path, .. } => assert_eq!(path, "usr/share/doc/hello/README"),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn sha1_signature_is_optional_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    fixture_tree(&root);
    let (_, key) = test_key();
    let opts = WriteOptions {
        sha1_signature: true,
        ..WriteOptions::default()
    };
    let w = write_package(&spec(&root), key, &opts, dir.path()).unwrap();
    let pkg = Package::open(&w.path).unwrap();
    let algs: Vec<_> = pkg.signatures.iter().map(|s| s.alg).collect();
    assert_eq!(algs, vec![sign::SigAlg::Rsa256, sign::SigAlg::Rsa]);
    // Each signature verifies on its own.
    for s in &pkg.signatures {
        assert_eq!(
            test_trust().verify(&s.key, s.alg, &pkg.control, &s.bytes),
            Some(true)
        );
    }
}

#[test]
fn empty_tree_is_a_meta_package_and_large_files_stream() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    fs::create_dir_all(&root).unwrap();
    let (_, key) = test_key();
    let w = write_package(&spec(&root), key, &WriteOptions::default(), dir.path()).unwrap();
    assert_eq!(w.info.size, 0);
    VerifiedPackage::open(&w.path, Trust::Signed(&test_trust())).unwrap();
    // A file above the in-memory threshold goes through the two-pass path.
    let big: Vec<u8> = (0..9u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    fs::create_dir_all(root.join("usr/lib")).unwrap();
    fs::write(root.join("usr/lib/big.bin"), &big).unwrap();
    let w = write_package(&spec(&root), key, &WriteOptions::default(), dir.path()).unwrap();
    assert_eq!(w.info.size, big.len() as u64);
    let pkg = VerifiedPackage::open(&w.path, Trust::Signed(&test_trust())).unwrap();
    let f = pkg
        .entries()
        .iter()
        .find(|f| f.path == "usr/lib/big.bin")
        .unwrap();
    assert_eq!(
        f.expected_sha1.as_deref(),
        Some(hex::encode(Sha1::digest(&big)).as_str())
    );
    assert_eq!(&*pkg.content(f).unwrap(), &big[..]);
}

#[test]
fn rejects_unpackageable_input() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    fs::create_dir_all(&root).unwrap();
    fs::write(root.join(".hidden"), "x").unwrap();
    let (_, key) = test_key();
    let err = write_package(&spec(&root), key, &WriteOptions::default(), dir.path()).unwrap_err();
    assert!(err.to_string().contains("top-level dot-file"), "{err}");
    let mut s = spec(&root);
    s.description = "two\nlines".into();
    let err = write_package(&s, key, &WriteOptions::default(), dir.path()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid package metadata: description contains a line break"
    );
}

#[test]
fn index_round_trip_and_untrusted_signer() {
    let (_dir, w) = write_fixture();
    let entry = index::IndexEntry::from_package(&w.info, w.identity, w.file_size);
    let (_, key) = test_key();
    let bytes = index::build_signed(
        std::slice::from_ref(&entry),
        Some("forge test"),
        7,
        key,
        false,
    )
    .unwrap();
    let idx = index::Index::from_bytes(&bytes, &test_trust()).unwrap();
    assert_eq!(idx.entries, vec![entry.clone()]);
    assert_eq!(idx.description.as_deref(), Some("forge test"));
    // The unsigned part: DESCRIPTION first, then APKINDEX, GNU magic, EOA.
    let m = members(&bytes);
    assert_eq!(m.len(), 2);
    let tar_bytes = gunzip(&bytes[m[1].0..]);
    assert_eq!(&tar_bytes[..11], b"DESCRIPTION");
    assert_eq!(&tar_bytes[257..265], b"ustar  \0");
    assert_eq!(&tar_bytes[512..522], b"forge test");
    assert_eq!(&tar_bytes[1024..1032], b"APKINDEX");
    assert_eq!(&tar_bytes[tar_bytes.len() - 1024..], &[0u8; 1024][..]);
    // Signed by a key nobody trusts.
    let other_dir = tempfile::tempdir().unwrap();
    let g = sign::generate(other_dir.path(), "other", 2048).unwrap();
    let other = SigningKey::load(&g.private).unwrap();
    let foreign = index::build_signed(&[entry], None, 7, &other, false).unwrap();
    let err = index::Index::from_bytes(&foreign, &test_trust()).unwrap_err();
    assert!(
        err.to_string().contains("signed by untrusted key other-"),
        "{err}"
    );
    // A byte changed in the signed body is a bad signature.
    let mut tampered = bytes.clone();
    tampered[m[1].0 + 5] ^= 1;
    let err = index::Index::from_bytes(&tampered, &test_trust()).unwrap_err();
    assert!(err.to_string().contains("does not match"), "{err}");
}

#[test]
fn index_record_text() {
    let mut e = index::IndexEntry {
        checksum: [0xab; 20],
        name: "hello".into(),
        version: "2.12-r0".into(),
        arch: "x86_64".into(),
        size: 1234,
        installed_size: 4096,
        description: "Say hello".into(),
        url: String::new(),
        license: "MIT".into(),
        origin: Some("hello".into()),
        builddate: 1_700_000_000,
        commit: Some("c0ffee".into()),
        depends: vec!["musl".into(), "so:libc.so.6".into()],
        provides: vec!["cmd:hello=2.12-r0".into()],
        ..Default::default()
    };
    let mut s = String::new();
    e.render_into(&mut s);
    assert_eq!(
        s,
        "C:Q1q6urq6urq6urq6urq6urq6urq6s=\nP:hello\nV:2.12-r0\nA:x86_64\nS:1234\nI:4096\n\
         T:Say hello\nU:\nL:MIT\no:hello\nt:1700000000\nc:c0ffee\nD:musl so:libc.so.6\n\
         p:cmd:hello=2.12-r0\n\n"
    );
    assert_eq!(index::parse(&s).unwrap(), vec![e.clone()]);
    e.builddate = 0;
    let mut s = String::new();
    e.render_into(&mut s);
    assert!(!s.contains("\nt:"));
}

#[test]
fn index_order_is_case_insensitive_then_bytewise() {
    let mk = |n: &str| index::IndexEntry {
        name: n.into(),
        version: "1.0-r0".into(),
        ..Default::default()
    };
    let text = index::render(&[mk("zlib"), mk("Abc"), mk("abc"), mk("ABD"), mk("a")]);
    let names: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("P:")).collect();
    assert_eq!(names, vec!["a", "Abc", "abc", "ABD", "zlib"]);
}

#[test]
fn index_refuses_names_and_versions_that_make_unsafe_paths() {
    let cases = [
        ("P:../../etc/x\nV:1.0-r0\n", 1),
        ("P:x\nV:1.0/../../y\n", 2),
        ("P:x\nV:\n", 2),
        ("P:a b\nV:1.0-r0\n", 1),
    ];
    for (text, line) in cases {
        match index::parse(text) {
            Err(index::IndexError::Syntax { line: l, .. }) => assert_eq!(l, line, "{text:?}"),
            other => panic!("{text:?}: {other:?}"),
        }
    }
}

#[test]
fn index_numbers_out_of_range_are_errors_not_wrapped() {
    // Found by the apkindex fuzz target: `t:` wrapped to a negative date and
    // `k:` was truncated to 32 bits, so a hostile index read back different
    // values than it said.
    for text in [
        "P:a\nV:1\nt:18446744073709551615\n",
        "P:a\nV:1\nk:4294967296\n",
    ] {
        let err = index::parse(text).unwrap_err().to_string();
        assert!(err.contains("line 3"), "{text:?}: {err}");
    }
    let e = &index::parse("P:a\nV:1\nt:-1\nk:4294967295\n").unwrap()[0];
    assert_eq!((e.builddate, e.provider_priority), (-1, Some(u32::MAX)));
}

/// One entry of a hand-made data tar: kind, path, link target, content.
pub(crate) type RawEntry<'a> = (Kind, &'a str, &'a str, &'a [u8]);

/// A data tar holding `entries`, with correct SHA-1 records for files and
/// symlinks, so only the entry's shape can be wrong.
pub(crate) fn raw_data_tar(entries: &[RawEntry]) -> Vec<u8> {
    let mut t = Vec::new();
    for (kind, path, link, content) in entries {
        let h = tar::Header {
            name: path.to_string(),
            mode: 0o644,
            size: content.len() as u64,
            mtime: 0,
            kind: *kind,
            link: link.to_string(),
        };
        let sum = match kind {
            Kind::File => Some(hex::encode(Sha1::digest(content))),
            Kind::Symlink => Some(hex::encode(Sha1::digest(link.as_bytes()))),
            _ => None,
        };
        let pax: Vec<(&str, &str)> = sum
            .iter()
            .map(|s| ("APK-TOOLS.checksum.SHA1", s.as_str()))
            .collect();
        tar::append_entry(&mut t, &h, &pax, content, tar::Magic::Ustar).unwrap();
    }
    tar::end_of_archive(&mut t);
    t
}

/// A package named `name` signed by the test key around `data_tar`, with a
/// correct `datahash`: every check but the entries' shape passes. Returns
/// the file bytes and its index entry.
pub(crate) fn craft_package(name: &str, data_tar: &[u8]) -> (Vec<u8>, index::IndexEntry) {
    let (_dir, w) = write_fixture();
    let mut info = w.info.clone();
    info.name = name.to_string();
    info.origin = name.to_string();
    let data_gz = gzip::compress(data_tar).unwrap();
    info.datahash = Some(hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
        &data_gz,
    )));
    let control = write::control_member(&info, 0).unwrap();
    let identity: [u8; 20] = Sha1::digest(&control).into();
    let sig = write::signature_member(&test_key().1, &control, 0, false).unwrap();
    let bytes = [sig, control, data_gz].concat();
    let entry = index::IndexEntry::from_package(&info, identity, bytes.len() as u64);
    (bytes, entry)
}

/// Devices, FIFOs, GNU long names, `..`, absolute paths and hard links to
/// nothing are refused by name, even in a correctly signed package whose
/// hashes all match (before the verified reader, `Package::verify` skipped
/// such entries and accepted the package).
#[test]
fn verified_reader_refuses_hostile_entries() {
    let ok: RawEntry = (Kind::File, "usr/ok", "", b"fine");
    let cases: &[(RawEntry, &str)] = &[
        (
            (Kind::Other(b'6'), "usr/fifo", "", b""),
            "entry `usr/fifo`: FIFO entries are not allowed in packages",
        ),
        (
            (Kind::Other(b'3'), "dev/null", "", b""),
            "entry `dev/null`: character device entries are not allowed",
        ),
        (
            (Kind::Other(b'4'), "dev/sda", "", b""),
            "entry `dev/sda`: block device entries are not allowed",
        ),
        (
            (Kind::Other(b'L'), "././@LongLink", "", b"etc/passwd\0"),
            "entry `././@LongLink`: GNU long name entries",
        ),
        (
            (Kind::File, "usr/../../evil", "", b"x"),
            "entry `usr/../../evil`: path contains `..`",
        ),
        (
            (Kind::File, "/etc/evil", "", b"x"),
            "entry `/etc/evil`: absolute path",
        ),
        (
            (Kind::File, "usr//x", "", b"x"),
            "entry `usr//x`: empty path component",
        ),
        (
            (Kind::HardLink, "usr/h", "etc/shadow", b""),
            "entry `usr/h`: hard link target `etc/shadow` is not an earlier regular file",
        ),
        (
            (Kind::HardLink, "usr/h", "../x", b""),
            "entry `usr/h`: hard link target `../x`: path contains `..`",
        ),
        // The same path twice: which one a consumer used would depend on
        // the consumer (before, both were handed out).
        (
            (Kind::File, "usr/ok", "", b"other"),
            "entry `usr/ok`: duplicate path in the package",
        ),
        (
            (Kind::Dir, "usr/ok/", "", b""),
            "entry `usr/ok/`: duplicate path in the package",
        ),
        (
            (Kind::Symlink, "usr/ok", "/etc/shadow", b""),
            "entry `usr/ok`: duplicate path in the package",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (bad, want) in cases {
        let (bytes, _) = craft_package("evil", &raw_data_tar(&[ok, *bad]));
        let path = dir.path().join("evil.apk");
        fs::write(&path, &bytes).unwrap();
        let err = VerifiedPackage::open(&path, Trust::Signed(&test_trust())).unwrap_err();
        assert!(err.to_string().contains(want), "{}: {err}", bad.1);
        assert!(matches!(
            err.verify_error(),
            Some(VerifyError::UnsafeEntry { .. })
        ));
        // The quick check does not decompress the data, so it passes: it is
        // never used to hand out files.
        verify_parts(&bytes, Trust::Signed(&test_trust())).unwrap();
    }
    // The same package with only the good entry verifies.
    let (bytes, _) = craft_package("fine", &raw_data_tar(&[ok]));
    let path = dir.path().join("fine.apk");
    fs::write(&path, &bytes).unwrap();
    let pkg = VerifiedPackage::open(&path, Trust::Signed(&test_trust())).unwrap();
    assert_eq!(&*pkg.content(&pkg.entries()[0]).unwrap(), b"fine");
}

/// A signed package whose data member is a gzip bomb stops at the cap with
/// a clear error; nothing is held in memory past the spool's cap.
#[test]
fn verified_reader_caps_the_control_member() {
    let (_dir, w) = write_fixture();
    let bytes = fs::read(&w.path).unwrap();
    let m = members(&bytes);
    // Replace the control member by one decompressing past its cap.
    let huge = gzip::compress(&vec![0u8; member::MAX_CONTROL_MEMBER + 1]).unwrap();
    let bad = w.path.with_file_name("bad.apk");
    fs::write(
        &bad,
        [&bytes[..m[1].0], &huge[..], &bytes[m[2].0..]].concat(),
    )
    .unwrap();
    let err = VerifiedPackage::open(&bad, Trust::Signed(&test_trust())).unwrap_err();
    assert_eq!(
        err.to_string(),
        "control section is corrupt: decompresses to more than the 4194304-byte limit"
    );
}

/// SHA-1 signatures count only where the project accepts them; a package
/// also signed with SHA-256 verifies either way.
#[test]
fn sha1_only_signatures_are_refused_unless_accepted() {
    use super::read::check_signatures;
    let (_, key) = test_key();
    let data = b"control member bytes";
    let sig = |alg| Signature {
        alg,
        key: key.name().to_string(),
        bytes: key.sign(alg, data).unwrap(),
    };
    let sha1_only = [sig(sign::SigAlg::Rsa)];
    let both = [sig(sign::SigAlg::Rsa256), sig(sign::SigAlg::Rsa)];
    let mut trust = test_trust();
    assert!(!trust.accepts_sha1(), "refused by default");
    assert_eq!(
        check_signatures(&sha1_only, data, &trust),
        Err(VerifyError::Sha1Refused {
            key: key.name().to_string()
        })
    );
    assert!(
        VerifyError::Sha1Refused { key: "k".into() }
            .to_string()
            .contains("accept-sha1-signatures = true"),
    );
    assert_eq!(
        check_signatures(&both, data, &trust),
        Ok(key.name().to_string())
    );
    trust.set_accept_sha1(true);
    assert_eq!(
        check_signatures(&sha1_only, data, &trust),
        Ok(key.name().to_string())
    );
}

/// Replace every `from` byte in the header names of `tar` by `to` and fix
/// the header checksums: a tar whose names are not UTF-8.
fn patch_names(mut tar: Vec<u8>, from: u8, to: u8) -> Vec<u8> {
    let mut at = 0;
    while at + tar::BLOCK <= tar.len() {
        let block = &mut tar[at..at + tar::BLOCK];
        if &block[257..262] != b"ustar" {
            at += tar::BLOCK;
            continue;
        }
        for i in (0..100).chain(157..257) {
            if block[i] == from {
                block[i] = to;
            }
        }
        block[148..156].fill(b' ');
        let sum: u64 = block.iter().map(|&x| u64::from(x)).sum();
        block[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        let size = u64::from_str_radix(std::str::from_utf8(&block[124..135]).unwrap(), 8).unwrap();
        at += tar::BLOCK * (1 + size.div_ceil(tar::BLOCK as u64) as usize);
    }
    tar
}

/// Names that are not UTF-8 are refused with the raw bytes escaped; before,
/// they were read lossily, so `usr/b\xffd` and `usr/b\xfed` both became
/// `usr/b\u{FFFD}d` and one silently replaced the other.
#[test]
fn verified_reader_refuses_non_utf8_names() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(RawEntry, &str)] = &[
        (
            (Kind::File, "usr/b~d", "", b"x"),
            "entry name `usr/b\\xffd` is not UTF-8",
        ),
        (
            (Kind::Symlink, "usr/l", "b~d", b""),
            "link target `b\\xffd` of `usr/l` is not UTF-8",
        ),
    ];
    for (entry, want) in cases {
        let tar = patch_names(raw_data_tar(&[*entry]), b'~', 0xff);
        let (bytes, _) = craft_package("latin1", &tar);
        let path = dir.path().join("latin1.apk");
        fs::write(&path, &bytes).unwrap();
        let err = VerifiedPackage::open(&path, Trust::Signed(&test_trust())).unwrap_err();
        assert!(err.to_string().contains(want), "{err}");
    }
    // The plain tar reader says the same.
    let tar = patch_names(raw_data_tar(&[cases[0].0]), b'~', 0xff);
    let mut r = tar::Reader::new(&tar[..]);
    let err = r.next_entry().unwrap_err().to_string();
    assert!(
        err.contains("entry name `usr/b\\xffd` is not UTF-8"),
        "{err}"
    );
}
