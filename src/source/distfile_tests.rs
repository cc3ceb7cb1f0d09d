//! Distfile cache and mirror tests (local folders; no network).

use super::*;

fn sha256(bytes: &[u8]) -> Checksum {
    let mut h = Hasher::for_checksum(&Checksum::Sha256(String::new()));
    h.update(bytes);
    h.finish()
}

#[test]
fn mirror_folder_by_address_and_name_offline() {
    let tmp = tempfile::tempdir().unwrap();
    let mut settings = Settings::for_root(tmp.path());
    let body = b"tarball bytes";
    let sum = sha256(body);
    let by_addr = tmp.path().join("m1");
    let by_name = tmp.path().join("m2");
    std::fs::create_dir_all(by_addr.join("sha256")).unwrap();
    std::fs::create_dir_all(&by_name).unwrap();
    std::fs::write(by_addr.join("sha256").join(sum.hex()), body).unwrap();
    std::fs::write(by_name.join("t-1.tar.gz"), body).unwrap();
    for mirror in [&by_addr, &by_name] {
        let _ = std::fs::remove_dir_all(&settings.cache);
        settings.mirrors = vec![mirror.display().to_string()];
        let want = Want {
            recipe: "t",
            url: "https://example.invalid/t-1.tar.gz",
            filename: "t-1.tar.gz",
            checksum: &sum,
        };
        let (got, _) = ensure(&settings, &want).unwrap();
        assert_eq!(got, cache_path(&settings.cache, &sum));
        assert_eq!(std::fs::read(&got).unwrap(), body);
    }
}

#[test]
fn wrong_mirror_bytes_never_enter_the_cache() {
    let tmp = tempfile::tempdir().unwrap();
    let mut settings = Settings::for_root(tmp.path());
    let sum = sha256(b"right");
    let m = tmp.path().join("m");
    std::fs::create_dir_all(&m).unwrap();
    std::fs::write(m.join("f.tar"), b"wrong").unwrap();
    settings.mirrors = vec![format!("file://{}", m.display())];
    let want = Want {
        recipe: "r",
        url: "https://example.invalid/f.tar",
        filename: "f.tar",
        checksum: &sum,
    };
    let err = ensure(&settings, &want).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, SourceError::Offline { .. }), "{text}");
    for part in [
        "recipe r",
        "f.tar",
        "https://example.invalid/f.tar",
        &sum.to_prefixed(),
    ] {
        assert!(text.contains(part), "missing {part}: {text}");
    }
    assert!(
        text.contains(&m.join("f.tar").display().to_string()),
        "{text}"
    );
    let dir = settings.cache.join("distfiles/sha256");
    let left: Vec<_> = std::fs::read_dir(&dir)
        .map(|r| r.collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "cache holds {left:?}");
}

#[test]
fn mirror_lookup_order() {
    let sum = sha256(b"x");
    let want = Want {
        recipe: "r",
        url: "https://example.invalid/dl/v1.tar.gz?raw=1",
        filename: "r-1.tar.gz",
        checksum: &sum,
    };
    let got: Vec<String> = mirror_places("https://m.invalid/src/", &want)
        .iter()
        .map(Place::describe)
        .collect();
    let addr = format!("https://m.invalid/src/sha256/{}", sum.hex());
    assert_eq!(
        got,
        [
            addr.as_str(),
            "https://m.invalid/src/r-1.tar.gz",
            "https://m.invalid/src/v1.tar.gz"
        ]
    );
    let got: Vec<String> = mirror_places("file:///srv/m", &want)
        .iter()
        .map(Place::describe)
        .collect();
    assert_eq!(got[1], "/srv/m/r-1.tar.gz");
    assert_eq!(url_file_name("https://h.invalid/a/b.tar#frag"), "b.tar");
    assert_eq!(url_file_name("https://h.invalid/a/.."), "");
}

#[test]
fn file_urls_are_read_even_offline() {
    let tmp = tempfile::tempdir().unwrap();
    let settings = Settings::for_root(tmp.path());
    assert!(settings.offline);
    let local = tmp.path().join("up/f-1.tar");
    std::fs::create_dir_all(local.parent().unwrap()).unwrap();
    std::fs::write(&local, b"local bytes").unwrap();
    let sum = sha256(b"local bytes");
    let url = format!("file://{}", local.display());
    let want = Want {
        recipe: "r",
        url: &url,
        filename: "f-1.tar",
        checksum: &sum,
    };
    let (got, _) = ensure(&settings, &want).unwrap();
    assert_eq!(std::fs::read(got).unwrap(), b"local bytes");
    std::fs::remove_file(&local).unwrap();
    let missing = format!("file://{}", tmp.path().join("up/none.tar").display());
    let other = sha256(b"other");
    let want = Want {
        url: &missing,
        checksum: &other,
        ..want
    };
    let err = ensure(&settings, &want).unwrap_err().to_string();
    assert!(err.contains("up/none.tar"), "{err}");
}

#[test]
fn stale_partial_downloads_are_removed_live_ones_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    let mk = |name: &str, age: Option<std::time::SystemTime>| {
        let f = std::fs::File::create(dir.join(name)).unwrap();
        if let Some(t) = age {
            f.set_modified(t).unwrap();
        }
        f
    };
    drop(mk(".part-dead", Some(old)));
    let live = mk(".part-live", Some(old));
    live.lock().unwrap();
    drop(mk(".part-young", None));
    drop(mk("keep-me", Some(old)));
    remove_stale_parts(dir);
    let mut left: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, [".part-live", ".part-young", "keep-me"]);
}

#[test]
fn corrupt_cache_entry_is_replaced() {
    let tmp = tempfile::tempdir().unwrap();
    let mut settings = Settings::for_root(tmp.path());
    let sum = sha256(b"good");
    let dest = cache_path(&settings.cache, &sum);
    std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
    std::fs::write(&dest, b"bad!").unwrap();
    let m = tmp.path().join("m");
    std::fs::create_dir_all(&m).unwrap();
    std::fs::write(m.join("g"), b"good").unwrap();
    settings.mirrors = vec![m.display().to_string()];
    let want = Want {
        recipe: "r",
        url: "https://example.invalid/g",
        filename: "g",
        checksum: &sum,
    };
    ensure(&settings, &want).unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), b"good");
}

/// The handle `ensure` returns holds the bytes it hashed, whether the file
/// was fetched or found in the cache: a file swapped in at the cache path
/// after the check is not what the caller reads (before, `ensure` returned
/// only the path and every user reopened it).
#[test]
fn ensure_hands_back_the_file_it_hashed() {
    use std::io::Read as _;
    let tmp = tempfile::tempdir().unwrap();
    let mut settings = Settings::for_root(tmp.path());
    let body = b"verified bytes";
    let sum = sha256(body);
    let m = tmp.path().join("m");
    std::fs::create_dir_all(&m).unwrap();
    std::fs::write(m.join("f.tar"), body).unwrap();
    settings.mirrors = vec![m.display().to_string()];
    let want = Want {
        recipe: "r",
        url: "https://example.invalid/f.tar",
        filename: "f.tar",
        checksum: &sum,
    };
    let swap = |path: &Path| {
        let evil = tmp.path().join("evil");
        std::fs::write(&evil, b"swapped in later").unwrap();
        std::fs::rename(&evil, path).unwrap();
    };
    // Fetched from the mirror, then swapped.
    let (path, mut file) = ensure(&settings, &want).unwrap();
    swap(&path);
    let mut got = Vec::new();
    file.read_to_end(&mut got).unwrap();
    assert_eq!(got, body);
    // Found in the cache (put back), then swapped.
    std::fs::write(&path, body).unwrap();
    let (path, mut file) = ensure(&settings, &want).unwrap();
    swap(&path);
    let mut got = Vec::new();
    file.read_to_end(&mut got).unwrap();
    assert_eq!(got, body);
}
