use super::*;

fn words(a: &[OsString]) -> Vec<String> {
    a.iter().map(|s| s.to_string_lossy().into_owned()).collect()
}

fn has_seq(hay: &[String], needle: &[&str]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn host() -> HostLayout {
    HostLayout {
        root: None,
        top: vec![
            ("bin".into(), TopEntry::Symlink("usr/bin".into())),
            ("lib64".into(), TopEntry::Dir),
        ],
    }
}

/// The containment every sandboxed process gets, in order.
const CONTAINMENT: &[&str] = &[
    "--unshare-user",
    "--disable-userns",
    "--uid",
    "1000",
    "--gid",
    "1000",
    "--cap-drop",
    "ALL",
    "--die-with-parent",
    "--new-session",
];

/// The `--bind` (writable) sources of a command line.
fn writable(a: &[String]) -> Vec<&String> {
    a.windows(2)
        .filter(|w| w[0] == "--bind")
        .map(|w| &w[1])
        .collect()
}

#[test]
fn bwrap_command_line() {
    let dirs = WorkDirs::new(Path::new("/o/work/hello"));
    let host = host();
    let env = vec![("TZ".to_string(), "UTC".to_string())];
    let spec = BwrapSpec {
        dirs: &dirs,
        deps_root: Some(Path::new("/deps")),
        net: false,
        host: &host,
        env: &env,
        cache: None,
    };
    let a = words(&bwrap_args(&spec));
    let seqs: &[&[&str]] = &[
        &["--unshare-all", "--unshare-user"],
        CONTAINMENT,
        &["--clearenv"],
        &["--ro-bind", "/usr", "/usr"],
        &["--symlink", "usr/bin", "/bin"],
        &["--ro-bind", "/lib64", "/lib64"],
        &["--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache"],
        &["--ro-bind", "/o/work/hello/etc/passwd", "/etc/passwd"],
        &["--proc", "/proc", "--dev", "/dev"],
        &["--bind", "/o/work/hello/tmp", "/tmp"],
        &["--bind", "/o/work/hello/src", "/forge/src"],
        &["--bind", "/o/work/hello/pkg", "/forge/pkg"],
        &["--bind", "/o/work/hello/home", "/forge/home"],
        &["--ro-bind", "/deps", "/forge/deps", "--remount-ro", "/"],
        &["--setenv", "TZ", "UTC"],
        &["--chdir", "/forge/src"],
    ];
    for s in seqs {
        assert!(has_seq(&a, s), "missing {s:?} in {a:?}");
    }
    assert!(!a.iter().any(|w| w == "--share-net"));
    assert!(!a.iter().any(|w| w == "/etc/resolv.conf"));
    assert!(!a.iter().any(|w| w == "--cap-add"));
    // Only the work folders are bound writable.
    let w = writable(&a);
    assert_eq!(w.len(), 4, "{w:?}");
    assert!(w.iter().all(|p| p.starts_with("/o/work/hello/")), "{w:?}");

    let spec = BwrapSpec { net: true, ..spec };
    let a = words(&bwrap_args(&spec));
    assert!(has_seq(&a, &["--unshare-all", "--share-net"]));
    assert!(has_seq(&a, CONTAINMENT));
    assert!(has_seq(
        &a,
        &["--ro-bind-try", "/etc/resolv.conf", "/etc/resolv.conf"]
    ));
}

#[test]
fn strip_command_line() {
    let dirs = WorkDirs::new(Path::new("/o/work/hello"));
    let host = host();
    let env = vec![("PATH".to_string(), "/usr/bin".to_string())];
    let spec = BwrapSpec {
        dirs: &dirs,
        deps_root: None,
        // Ignored: strip never gets the network.
        net: true,
        host: &host,
        env: &env,
        cache: None,
    };
    let a = words(&strip_args(&spec));
    for s in [
        &["--unshare-all", "--unshare-user"][..],
        CONTAINMENT,
        &["--ro-bind", "/usr", "/usr"],
        &["--tmpfs", "/tmp"],
        &["--bind", "/o/work/hello/pkg", "/forge/pkg"],
        &["--remount-ro", "/"],
        &["--chdir", "/forge/pkg"],
    ] {
        assert!(has_seq(&a, s), "missing {s:?} in {a:?}");
    }
    assert!(!a.iter().any(|w| w == "--share-net"));
    assert_eq!(writable(&a), ["/o/work/hello/pkg"]);
}

#[test]
fn bwrap_versions() {
    let cases = [
        ("bubblewrap 0.8.0\n", Some((0, 8))),
        ("bubblewrap 0.11.1", Some((0, 11))),
        ("bubblewrap 0.6.1\n", Some((0, 6))),
        ("bubblewrap 1.0", Some((1, 0))),
        ("bwrap 0.8.0", None),
        ("bubblewrap x.y", None),
        ("", None),
    ];
    for (text, want) in cases {
        assert_eq!(parse_version(text), want, "{text:?}");
    }
    assert!(Some((0, 6)) < Some(MIN_BWRAP) && Some((0, 11)) >= Some(MIN_BWRAP));
}

#[test]
fn passwd_has_the_fixed_build_user() {
    let (p, g) = passwd_group();
    assert_eq!(
        p,
        "root:x:0:0:root:/root:/bin/sh\n\
         forge:x:1000:1000:forge:/forge/home:/bin/sh\n\
         nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
    );
    assert_eq!(g, "root:x:0:\nforge:x:1000:\nnogroup:x:65534:\n");
}

/// In the hermetic stage the toolchain is the build root: its top-level
/// folders and links, nothing of the host's `/usr` or `/etc`; the shared
/// tool cache is the one extra writable bind.
#[test]
fn hermetic_command_line_binds_the_build_root_not_the_host() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    for d in ["usr/bin", "bin", "etc", "tmp"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::os::unix::fs::symlink("usr/lib", root.join("lib")).unwrap();
    let layout = HostLayout::of_root(&root).unwrap();
    assert_eq!(
        layout.top,
        [
            ("bin".to_string(), TopEntry::Dir),
            ("lib".to_string(), TopEntry::Symlink("usr/lib".into())),
            ("usr".to_string(), TopEntry::Dir),
        ]
    );
    let dirs = WorkDirs::new(Path::new("/o/work/hello"));
    let env = Vec::new();
    let spec = BwrapSpec {
        dirs: &dirs,
        deps_root: None,
        net: false,
        host: &layout,
        env: &env,
        cache: Some(Path::new("/o/toolcache")),
    };
    let a = words(&bwrap_args(&spec));
    let r = root.display().to_string();
    for s in [
        &["--ro-bind", &format!("{r}/bin"), "/bin"][..],
        &["--symlink", "usr/lib", "/lib"],
        &["--ro-bind", &format!("{r}/usr"), "/usr"],
        &["--bind", "/o/toolcache", "/forge/cache"],
    ] {
        assert!(has_seq(&a, s), "missing {s:?} in {a:?}");
    }
    assert!(!has_seq(&a, &["--ro-bind", "/usr", "/usr"]), "{a:?}");
    assert!(!a.iter().any(|w| w.starts_with("/etc/ld.so")), "{a:?}");
    assert!(!a.iter().any(|w| w == &format!("{r}/etc")), "{a:?}");
    let w = writable(&a);
    assert_eq!(w.len(), 5, "{w:?}");
}
