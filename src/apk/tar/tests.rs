use super::*;

#[test]
fn pax_sha1_record_is_68_bytes() {
    let rec = pax_record("APK-TOOLS.checksum.SHA1", &"a".repeat(40));
    assert_eq!(rec.len(), PAX_SHA1_RECORD_LEN);
    assert_eq!(
        rec,
        format!("68 APK-TOOLS.checksum.SHA1={}\n", "a".repeat(40))
    );
}

#[test]
fn pax_record_length_counts_itself() {
    // Lengths that cross a digit boundary.
    for vlen in [0, 1, 90, 91, 92, 93, 94, 95, 990, 994, 995, 996] {
        let rec = pax_record("k", &"v".repeat(vlen));
        let (len, _) = rec.split_once(' ').unwrap();
        assert_eq!(len.parse::<usize>().unwrap(), rec.len(), "vlen {vlen}");
    }
}

#[test]
fn header_bytes_are_exact() {
    let h = Header {
        name: "usr/bin/hello".into(),
        mode: 0o755,
        size: 1234,
        mtime: 1_700_000_000,
        kind: Kind::File,
        link: String::new(),
    };
    let b = header_block(&h, Magic::Ustar).unwrap();
    assert_eq!(&b[0..13], b"usr/bin/hello");
    assert_eq!(&b[100..108], b"0000755\0");
    assert_eq!(&b[108..116], b"0000000\0");
    assert_eq!(&b[124..136], b"00000002322\0");
    assert_eq!(&b[136..148], b"14524770400\0");
    assert_eq!(b[156], b'0');
    assert_eq!(&b[257..265], b"ustar\x0000");
    assert_eq!(&b[265..270], b"root\0");
    assert_eq!(&b[297..302], b"root\0");
    assert_eq!(b[154], 0);
    assert_eq!(b[155], b' ');
    let mut sum_block = b;
    sum_block[148..156].fill(b' ');
    let sum: u64 = sum_block.iter().map(|&x| u64::from(x)).sum();
    assert_eq!(&b[148..154], format!("{sum:06o}").as_bytes());
    let g = header_block(&h, Magic::Gnu).unwrap();
    assert_eq!(&g[257..265], b"ustar  \0");
}

#[test]
fn round_trip_with_long_names_and_links() {
    let long = format!("usr/share/{}/file", "d".repeat(120));
    let mut out = Vec::new();
    let entries = [
        (Kind::Dir, "usr/".to_string(), String::new(), Vec::new()),
        (Kind::File, long.clone(), String::new(), b"hello".to_vec()),
        (Kind::Symlink, "usr/link".into(), long.clone(), Vec::new()),
        (Kind::HardLink, "usr/hard".into(), long.clone(), Vec::new()),
    ];
    for (kind, name, link, content) in &entries {
        let h = Header {
            name: name.clone(),
            mode: 0o644,
            size: content.len() as u64,
            mtime: 5,
            kind: *kind,
            link: link.clone(),
        };
        let sha = "b".repeat(40);
        let pax: Vec<(&str, &str)> = if *kind == Kind::File {
            vec![("APK-TOOLS.checksum.SHA1", &sha)]
        } else {
            vec![]
        };
        append_entry(&mut out, &h, &pax, content, Magic::Ustar).unwrap();
    }
    end_of_archive(&mut out);
    assert_eq!(out.len() % BLOCK, 0);
    let mut r = Reader::new(&out[..]);
    let mut seen = Vec::new();
    while let Some(e) = r.next_entry().unwrap() {
        let mut c = Vec::new();
        r.content().read_to_end(&mut c).unwrap();
        seen.push((e.kind, e.path, e.link, c, e.sha1));
    }
    assert!(r.saw_eoa);
    assert_eq!(seen.len(), 4);
    assert_eq!(seen[1].1, long);
    assert_eq!(seen[1].3, b"hello");
    assert_eq!(seen[1].4.as_deref(), Some("b".repeat(40).as_str()));
    assert_eq!(seen[2].2, long);
    assert_eq!(seen[3].0, Kind::HardLink);
    // The same stream without the end-of-archive also parses ("cut" tar).
    let cut = &out[..out.len() - 2 * BLOCK];
    let mut r = Reader::new(cut);
    let mut n = 0;
    while r.next_entry().unwrap().is_some() {
        n += 1;
    }
    assert_eq!(n, 4);
    assert!(!r.saw_eoa);
}

/// A PAX header claiming 8 GiB is refused before anything is allocated
/// (before the cap, the reader tried `vec![0; size]` and aborted).
#[test]
fn huge_pax_header_is_refused_without_allocating() {
    let h = Header {
        name: "PaxHeaders/x".into(),
        mode: 0o644,
        size: 0o77777777777,
        mtime: 0,
        kind: Kind::Pax,
        link: String::new(),
    };
    let block = header_block(&h, Magic::Ustar).unwrap();
    let mut r = Reader::new(&block[..]);
    let err = r.next_entry().unwrap_err().to_string();
    assert!(
        err.contains("PAX header of 8589934591 bytes is larger than the 1048576-byte limit"),
        "{err}"
    );
}

/// Zeros after the end-of-archive are drained in chunks, and anything
/// else after it is an error.
#[test]
fn trailing_bytes_after_end_of_archive() {
    let mut out = Vec::new();
    end_of_archive(&mut out);
    out.resize(out.len() + 100_000, 0);
    let mut r = Reader::new(&out[..]);
    assert!(r.next_entry().unwrap().is_none());
    out.push(1);
    let mut r = Reader::new(&out[..]);
    assert!(r.next_entry().is_err());
}

#[test]
fn pax_names() {
    assert_eq!(pax_name("usr/bin/hello"), "usr/bin/PaxHeaders/hello");
    assert_eq!(pax_name("hello"), "PaxHeaders/hello");
    assert!(pax_name(&"x/".repeat(80)).len() <= 100);
}
