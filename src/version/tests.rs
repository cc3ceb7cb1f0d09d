use super::*;

#[test]
fn fuzzy() {
    for (have, want, ok) in [
        ("1.2", "1.2", true),
        ("1.2.9", "1.2", true),
        ("1.2_rc1", "1.2", true),
        ("1.2-r3", "1.2", true),
        ("1.2a", "1.2", true),
        ("1.20", "1.2", false),
        ("1.3", "1.2", false),
        ("1", "1.2", false),
        ("2.0-r1", "2.0-r1", true),
        ("2.0-r10", "2.0-r1", false),
    ] {
        assert_eq!(fuzzy_match(have, want), ok, "{have} ~ {want}");
    }
}

/// Every chain is strictly ascending.
const CHAINS: &[&[&str]] = &[
    &["1.0_rc1", "1.0", "1.0_p1", "1.0a", "1.0.1"],
    &["1.2", "1.10"],
    &["1.0_rc", "1.0_rc1", "1.0_rc1_p2"],
    &["1.0", "1.0-r0", "1.0-r1", "1.0-r10"],
    &["1.01", "1.1"],
    &["1.010", "1.1"],
    &[
        "1.0_alpha",
        "1.0_beta",
        "1.0_pre",
        "1.0_rc",
        "1.0",
        "1.0_cvs",
        "1.0_svn",
        "1.0_git",
        "1.0_hg",
        "1.0_p",
    ],
    &["1.0_alpha1", "1.0_alpha2", "1.0_alpha10", "1.0_beta1"],
    &["0.9", "0.9.9", "1", "1.0", "1.0.0"],
    &["1.0-r9", "1.0_p1-r0", "1.0.1-r0"],
    &["2.15.05", "2.15.4", "2.16.01", "2.16.1"],
    &["1.0a", "1.0b", "1.0.0"],
    &["20231231", "20240101"],
    &["1.0_rc1_alpha", "1.0_rc1", "1.0_rc1-r0"],
    &["99999999999999999999", "100000000000000000000"],
];

#[test]
fn orderings() {
    for chain in CHAINS {
        for (i, a) in chain.iter().enumerate() {
            assert_eq!(compare(a, a), Ordering::Equal, "{a} == {a}");
            for b in &chain[i + 1..] {
                assert_eq!(compare(a, b), Ordering::Less, "{a} < {b}");
                assert_eq!(compare(b, a), Ordering::Greater, "{b} > {a}");
            }
        }
    }
}

#[test]
fn equalities() {
    for (a, b) in [
        ("1.0-r00", "1.0-r0"),
        ("1.0_rc01", "1.0_rc1"),
        ("1.2", "1.2"),
    ] {
        assert_eq!(compare(a, b), Ordering::Equal, "{a} == {b}");
    }
}

#[test]
fn parse_accepts() {
    for s in [
        "1",
        "0",
        "1.0",
        "1.2.3",
        "1.0a",
        "1.0_rc1",
        "1.0_rc",
        "1.0_rc1_p2",
        "2.15.05",
        "1.010",
        "20240101",
        "1.0_p",
        "0.0.0",
        "1.0z_git20240101",
    ] {
        assert_eq!(Version::parse(s).map(|v| v.to_string()), Ok(s.to_string()));
    }
}

#[test]
fn parse_rejects_with_reason() {
    let cases = [
        ("", "empty"),
        ("v1.2", "leading `v`"),
        ("V1.2", "leading `v`"),
        ("1.2.3+b", "build metadata"),
        ("1.2.3-rc1", "`_rc`"),
        ("1.0-beta2", "`_beta`"),
        ("1.0A", "uppercase"),
        ("1.0ab", "only one letter"),
        ("1.0_foo", "unknown suffix `_foo`"),
        ("1.0_RC1", "unknown suffix"),
        ("01.2", "leading zero"),
        ("1..2", "followed by digits"),
        ("1.", "followed by digits"),
        (".1", "start with a digit"),
        ("abc", "start with a digit"),
        ("1.0-r1", "release"),
        ("1.0 ", "unexpected ` `"),
        ("1.0a1", "unexpected `1`"),
        ("1.0-", "unexpected `-`"),
    ];
    for (input, why) in cases {
        let e = Version::parse(input).expect_err(input);
        assert_eq!(e.input, input);
        assert!(e.reason.contains(why), "{input}: {} lacks {why}", e.reason);
    }
}

#[test]
fn parse_full() {
    for s in ["1.0", "1.0-r0", "1.0_rc1-r12"] {
        assert_eq!(Version::parse_full(s).unwrap().as_str(), s);
    }
    for (s, why) in [
        ("1.0-r", "missing release"),
        ("1.0-r01", "leading zero"),
        ("1.0-rx", "unexpected `-`"),
        ("1.2.3-rc1", "`_rc`"),
        ("1.0-r1-r2", "not a decimal"),
        ("v1.0-r0", "leading `v`"),
    ] {
        let e = Version::parse_full(s).expect_err(s);
        assert!(e.reason.contains(why), "{s}: {}", e.reason);
    }
    let v = Version::parse_full("1.2_rc1-r3").unwrap();
    assert_eq!((v.upstream(), v.release()), ("1.2_rc1", Some(3)));
    let v = Version::parse("1.2").unwrap();
    assert_eq!((v.upstream(), v.release()), ("1.2", None));
}

#[test]
fn ord_sorts_like_apk() {
    let mut v: Vec<Version> = ["1.0.1", "1.0a", "1.0_p1", "1.0", "1.0_rc1"]
        .iter()
        .map(|s| Version::parse(s).unwrap())
        .collect();
    v.sort();
    let got: Vec<&str> = v.iter().map(Version::as_str).collect();
    assert_eq!(got, ["1.0_rc1", "1.0", "1.0_p1", "1.0a", "1.0.1"]);
    let a = Version::parse("1.0_rc01").unwrap();
    let b = Version::parse("1.0_rc1").unwrap();
    assert_ne!(a.cmp(&b), Ordering::Equal, "Ord agrees with Eq");
}

#[test]
fn compare_tolerates_invalid_text() {
    assert_eq!(compare("1.0", "1.0_foo"), Ordering::Greater);
    assert_eq!(compare("1.0_foo", "1.0_bar"), Ordering::Equal);
    assert_eq!(compare("", ""), Ordering::Equal);
    assert_eq!(compare("", "1"), Ordering::Less);
}
