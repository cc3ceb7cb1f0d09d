//! Image assembly benchmark: `cargo run --release --bin image-bench [WORKDIR]`.
//!
//! Generates (once, reused afterwards) a signed repository of 12 packages
//! totalling about 300 MB (real files from the host's /usr: libraries,
//! programs, data; synthetic filler if /usr is smaller), then times, in the
//! same run and on the same rootfs:
//! - `forge image` in origin mode (one layer per package) and single mode;
//! - `tar -c | gzip -6` of the merged rootfs (one layer's worth of work);
//! - umoci: `insert` of every package as its own layer, and `repack` of a
//!   bundle holding the whole rootfs.
//!
//! Results go to stdout as a table.
#![allow(clippy::print_stdout)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use forge::apk::{PackageSpec, WriteOptions};
use forge::image::{BuildOptions, build};
use forge::repo::Repo;
use forge::settings::Settings;
use forge::sign::{SigningKey, TrustedKeys, generate};

/// Package sizes in MiB (sum 300).
const SIZES_MIB: [u64; 12] = [80, 50, 40, 30, 25, 20, 15, 12, 10, 8, 6, 4];

#[path = "../../tests/support/rng.rs"]
mod rng;
use rng::Rng;

/// Content that compresses roughly like binaries (about 2-3x with gzip -6):
/// 4 KiB blocks, 35% random, the rest drawn from a small vocabulary.
fn content(rng: &mut Rng, len: usize) -> Vec<u8> {
    const WORDS: [&str; 16] = [
        "mov ",
        "rax,",
        "call ",
        "ret\n",
        "push ",
        "rbp ",
        "0x7f",
        "libc",
        "_start ",
        "init ",
        "\0\0\0\0",
        "\u{1}\0\0\0",
        "ELF ",
        "text ",
        "data ",
        "jmp ",
    ];
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        if rng.next_u64() % 100 < 35 {
            for _ in 0..512 {
                out.extend_from_slice(&rng.next_u64().to_le_bytes());
            }
        } else {
            let end = out.len() + 4096;
            while out.len() < end {
                out.extend_from_slice(WORDS[(rng.next_u64() % 16) as usize].as_bytes());
            }
        }
    }
    out.truncate(len);
    out
}

/// Regular files under the host's /usr (libraries, programs, data), in a
/// fixed order: realistic content for the compressors.
fn real_files() -> impl Iterator<Item = (String, Vec<u8>, u32)> {
    ["/usr/lib/x86_64-linux-gnu", "/usr/bin", "/usr/share"]
        .into_iter()
        .flat_map(|top| walkdir::WalkDir::new(top).sort_by_file_name())
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .filter_map(|e| {
            use std::os::unix::fs::PermissionsExt;
            let mode = e.metadata().ok()?.permissions().mode() & 0o755;
            let data = std::fs::read(e.path()).ok()?;
            let rel = e
                .path()
                .strip_prefix("/")
                .ok()?
                .to_string_lossy()
                .into_owned();
            (!data.is_empty()).then_some((rel, data, mode))
        })
}

fn stage_dir(work: &Path, i: usize) -> PathBuf {
    work.join("stage").join(format!("pkg{i:02}"))
}

/// Generate staged trees and the signed repository (skipped when present).
fn generate_repo(work: &Path) -> SigningKey {
    let keys = work.join("keys");
    if let Some(k) = forge::sign::find_signing_key(&keys).expect("reading keys")
        && work.join("out/repo/x86_64/APKINDEX.tar.gz").is_file()
    {
        return k;
    }
    std::fs::create_dir_all(&keys).expect("creating keys/");
    let g = generate(&keys, "bench", 2048).expect("generating a key");
    let key = SigningKey::load(&g.private).expect("loading the key");
    let trusted = TrustedKeys::load_dir(&keys).expect("loading keys/");
    let mut repo =
        Repo::open(&work.join("out/repo"), "x86_64", &trusted).expect("opening the repo");
    let mut rng = Rng::new(0x9E37_79B9_7F4A_7C15);
    let mut real = real_files();
    for (i, mib) in SIZES_MIB.iter().enumerate() {
        let root = stage_dir(work, i);
        let _ = std::fs::remove_dir_all(&root);
        let mut left = mib << 20;
        let mut n = 0;
        while left > 0 {
            // Real host files while they last, then synthetic content.
            let (rel, data, mode) = match real.next() {
                Some((rel, mut data, mode)) => {
                    data.truncate(left as usize);
                    (rel, data, mode)
                }
                None => {
                    let len = ((64 << 10) + rng.next_u64() % (4 << 20)).min(left);
                    let rel = format!("usr/lib/pkg{i:02}/d{}/f{n:04}.bin", n % 8);
                    (rel, content(&mut rng, len as usize), 0o644)
                }
            };
            let path = root.join(&rel);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(&path, &data).expect("write");
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
            left -= data.len() as u64;
            n += 1;
        }
        let spec = PackageSpec {
            name: format!("pkg{i:02}"),
            version: "1.0-r0".into(),
            description: format!("benchmark package {i}"),
            url: "https://example.org/bench".into(),
            license: "MIT".into(),
            arch: "x86_64".into(),
            origin: format!("pkg{i:02}"),
            commit: None,
            builddate: 1_700_000_000,
            packager: "bench".into(),
            depends: if i > 0 {
                vec!["pkg00".into()]
            } else {
                Vec::new()
            },
            provides: Vec::new(),
            root,
        };
        let opts = WriteOptions {
            auto_deps: false,
            sha1_signature: false,
        };
        repo.write_package(&spec, &key, &opts)
            .expect("writing a package");
        println!("generated pkg{i:02} ({mib} MiB, {n} files)");
    }
    repo.write_index(&key, None).expect("writing the index");
    key
}

fn time<T>(f: impl FnOnce() -> T) -> (f64, T) {
    let t = Instant::now();
    let v = f();
    (t.elapsed().as_secs_f64(), v)
}

fn sh(script: &str) -> bool {
    Command::new("sh")
        .args(["-c", script])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn have(tool: &str) -> bool {
    sh(&format!("command -v {tool} >/dev/null"))
}

/// Bytes of the gzip blobs (the layers) under `dir`: what forge's figure
/// counts too, without umoci's configs and manifests.
fn layer_bytes(dir: &Path) -> u64 {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .filter(|e| {
            let mut magic = [0u8; 2];
            std::fs::File::open(e.path())
                .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
                .is_ok_and(|()| magic == [0x1f, 0x8b])
        })
        .map(|e| e.metadata().map_or(0, |m| m.len()))
        .sum()
}

/// `bytes` in MiB with two decimals: compressed sizes differ by less than
/// one MiB.
fn mib(bytes: u64) -> String {
    format!("{:.2} MiB", bytes as f64 / f64::from(1 << 20))
}

fn main() {
    let work = std::env::args()
        .nth(1)
        .map_or_else(|| PathBuf::from("/tmp/forge-image-bench-v2"), PathBuf::from);
    std::fs::create_dir_all(&work).expect("creating the work folder");
    let (gen_s, _) = time(|| generate_repo(&work));
    println!("setup (package generation, untimed for comparison): {gen_s:.1} s");
    let names: Vec<String> = (0..SIZES_MIB.len())
        .map(|i| format!("\"pkg{i:02}\""))
        .collect();
    let def = |mode: &str| {
        format!(
            "schema = 1\npackages = [{}]\n[layering]\nmode = \"{mode}\"\n",
            names.join(", ")
        )
    };
    std::fs::create_dir_all(work.join("images")).expect("images/");
    std::fs::write(work.join("images/bench.toml"), def("origin")).expect("write");
    std::fs::write(work.join("images/bench1.toml"), def("single")).expect("write");

    let mut settings = Settings::for_root(&work);
    settings.jobs = std::thread::available_parallelism().map_or(1, |n| n.get());
    settings.shell = forge::output::Shell::new(
        forge::output::Verbosity::Verbose,
        forge::output::ColorChoice::Never,
        false,
    );
    let rootfs_mib = SIZES_MIB.iter().sum::<u64>();
    let mut rows: Vec<(String, f64, String)> = Vec::new();

    let (t, img) = time(|| {
        build(
            &settings,
            &BuildOptions {
                name: "bench".into(),
            },
        )
        .expect("forge image")
    });
    let layers = &img.arches[0].layers;
    let size: u64 = layers.iter().map(|l| l.blob.descriptor.size).sum();
    rows.push((
        format!(
            "forge image, origin mode ({} layers, -j{})",
            layers.len(),
            settings.jobs
        ),
        t,
        mib(size),
    ));
    let (t, img1) = time(|| {
        build(
            &settings,
            &BuildOptions {
                name: "bench1".into(),
            },
        )
        .expect("forge image")
    });
    let size1: u64 = img1.arches[0]
        .layers
        .iter()
        .map(|l| l.blob.descriptor.size)
        .sum();
    rows.push(("forge image, single mode (1 layer)".into(), t, mib(size1)));

    // The same rootfs on disk: every staged tree merged.
    let rootfs = work.join("rootfs");
    if !rootfs.is_dir() {
        for i in 0..SIZES_MIB.len() {
            assert!(sh(&format!(
                "mkdir -p '{r}' && cp -a '{s}/.' '{r}/'",
                r = rootfs.display(),
                s = stage_dir(&work, i).display()
            )));
        }
    }
    let out_tgz = work.join("rootfs.tar.gz");
    let (t, ok) = time(|| {
        sh(&format!(
            "tar -C '{}' -c . | gzip -6 > '{}'",
            rootfs.display(),
            out_tgz.display()
        ))
    });
    assert!(ok, "tar | gzip failed");
    let tgz = std::fs::metadata(&out_tgz).map_or(0, |m| m.len());
    rows.push(("tar -c | gzip -6 (1 layer, 1 core)".into(), t, mib(tgz)));

    if have("umoci") {
        let layout = work.join("umoci");
        let _ = std::fs::remove_dir_all(&layout);
        let l = layout.display().to_string();
        assert!(sh(&format!(
            "umoci init --layout '{l}' && umoci new --image '{l}:base'"
        )));
        let (t, ok) = time(|| {
            (0..SIZES_MIB.len()).all(|i| {
                sh(&format!(
                    "umoci insert --image '{l}:base' '{}' /",
                    stage_dir(&work, i).display()
                ))
            })
        });
        assert!(ok, "umoci insert failed");
        rows.push((
            format!("umoci insert x{} (one layer per package)", SIZES_MIB.len()),
            t,
            mib(layer_bytes(&layout.join("blobs"))),
        ));
        // repack: an empty bundle, then the whole rootfs copied in (untimed).
        let layout2 = work.join("umoci2");
        let bundle = work.join("umoci-bundle");
        let _ = std::fs::remove_dir_all(&layout2);
        let _ = std::fs::remove_dir_all(&bundle);
        let l2 = layout2.display().to_string();
        let b = bundle.display().to_string();
        assert!(sh(&format!(
            "umoci init --layout '{l2}' && umoci new --image '{l2}:base' && umoci unpack --image '{l2}:base' '{b}' && cp -a '{}/.' '{b}/rootfs/'",
            rootfs.display()
        )));
        let (t, ok) = time(|| sh(&format!("umoci repack --image '{l2}:full' '{b}'")));
        assert!(ok, "umoci repack failed");
        rows.push((
            "umoci repack (1 layer)".into(),
            t,
            mib(layer_bytes(&layout2.join("blobs"))),
        ));
    } else {
        println!("umoci not found: skipping its rows");
    }

    println!();
    println!(
        "rootfs: {rootfs_mib} MiB in {} packages, {} cores",
        SIZES_MIB.len(),
        settings.jobs
    );
    println!(
        "{:<48} {:>8} {:>9} {:>10}",
        "step", "seconds", "MiB/s", "output"
    );
    for (name, secs, out) in rows {
        println!(
            "{name:<48} {secs:>8.2} {:>9.1} {out:>10}",
            rootfs_mib as f64 / secs
        );
    }
}
