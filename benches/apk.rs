//! Package writer benchmark: forge's apk writer against
//! `tar --format=posix -c | gzip -9` on the same tree, in the same run.
//!
//! Run with `cargo bench --bench apk` (release profile). Options after `--`:
//! `--size-mb N` (default 200), `--runs N` (default 2; the best time of each
//! side is reported), `--dir PATH` (where the tree and outputs go; default a
//! temp folder). The tree is generated from a fixed seed: text, source-like
//! files, semi-compressible binaries and random data, small and large files.

#![allow(clippy::print_stdout)]

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use forge::apk::{self, PackageSpec, WriteOptions};
use forge::sign::{self, SigningKey};

#[path = "../tests/support/rng.rs"]
mod rng;
use rng::Rng;

const WORDS: &[&str] = &[
    "the",
    "package",
    "build",
    "forge",
    "alpine",
    "signature",
    "index",
    "archive",
    "compress",
    "data",
    "file",
    "version",
    "release",
    "depends",
    "provides",
    "library",
    "binary",
    "source",
    "recipe",
    "sandbox",
    "network",
    "checksum",
    "deterministic",
    "reproducible",
    "output",
    "install",
    "system",
    "kernel",
    "module",
    "config",
];

fn text(rng: &mut Rng, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 16);
    while out.len() < len {
        out.extend_from_slice(WORDS[rng.below(WORDS.len() as u64) as usize].as_bytes());
        out.push(if rng.below(12) == 0 { b'\n' } else { b' ' });
    }
    out.truncate(len);
    out
}

fn source(rng: &mut Rng, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 64);
    while out.len() < len {
        let indent = "    ".repeat(rng.below(4) as usize);
        let w = WORDS[rng.below(WORDS.len() as u64) as usize];
        let n = rng.below(1000);
        let line = format!("{indent}let {w}_{n} = {w}(&mut ctx, {n}, \"{w}\")?;\n");
        out.extend_from_slice(line.as_bytes());
    }
    out.truncate(len);
    out
}

/// Like machine code: short random runs mixed with repeated structures.
fn binary(rng: &mut Rng, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    let mut i = 0;
    while i < len {
        let run = (rng.below(64) + 4) as usize;
        let end = (i + run).min(len);
        if rng.below(3) == 0 {
            rng.fill(&mut out[i..end]);
        } else {
            let pat = (rng.next_u64() & 0xff) as u8;
            for (k, b) in out[i..end].iter_mut().enumerate() {
                *b = pat.wrapping_add((k % 8) as u8);
            }
        }
        i = end;
    }
    out
}

fn random(rng: &mut Rng, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    rng.fill(&mut out);
    out
}

/// Makes file content of a given length.
type Maker = fn(&mut Rng, usize) -> Vec<u8>;

/// Generate the tree; returns the bytes written.
fn generate(root: &Path, total: u64) -> u64 {
    let mut rng = Rng::new(0x9e37_79b9_7f4a_7c15);
    let mut written = 0u64;
    let mut n = 0u64;
    // Shares of the total: text 30%, source 20%, binaries 25%, random 25%.
    let plan: [(&str, u64, Maker, u64, u64); 6] = [
        ("usr/share/doc", 30, text, 512, 64 << 10),
        ("usr/src", 20, source, 1 << 10, 128 << 10),
        ("usr/lib", 15, binary, 64 << 10, 4 << 20),
        ("usr/bin", 10, binary, 16 << 10, 1 << 20),
        ("usr/share/data", 15, random, 1 << 20, 24 << 20),
        ("var/cache", 10, random, 256, 32 << 10),
    ];
    for (dir, share, make, min, max) in plan {
        let budget = total * share / 100;
        let mut used = 0u64;
        while used < budget {
            let len = (min + rng.below(max - min + 1)).min(budget - used).max(1);
            let sub = format!("{dir}/d{:02}", rng.below(12));
            fs::create_dir_all(root.join(&sub)).unwrap();
            let path = root.join(&sub).join(format!("f{n:05}"));
            fs::write(&path, make(&mut rng, len as usize)).unwrap();
            used += len;
            n += 1;
        }
        written += used;
    }
    written
}

fn warm(root: &Path) {
    for e in walkdir::WalkDir::new(root) {
        let e = e.unwrap();
        if e.file_type().is_file() {
            std::hint::black_box(fs::read(e.path()).unwrap());
        }
    }
}

fn time<T>(f: impl FnOnce() -> T) -> (Duration, T) {
    let start = Instant::now();
    let out = f();
    (start.elapsed(), out)
}

fn main() {
    let mut size_mb = 200u64;
    let mut runs = 2u32;
    let mut dir: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--size-mb" => {
                size_mb = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--size-mb N")
            }
            "--runs" => runs = args.next().and_then(|v| v.parse().ok()).expect("--runs N"),
            "--dir" => dir = args.next().map(PathBuf::from),
            _ => {} // `cargo bench` passes `--bench`
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    let base = dir.unwrap_or_else(|| tmp.path().to_path_buf());
    let root = base.join("tree");
    let _ = fs::remove_dir_all(&root);
    fs::create_dir_all(&root).unwrap();
    let bytes = generate(&root, size_mb << 20);
    warm(&root);
    let keys = base.join("keys");
    let _ = fs::remove_dir_all(&keys);
    let g = sign::generate(&keys, "bench", sign::KEY_BITS).unwrap();
    let key = SigningKey::load(&g.private).unwrap();
    let spec = PackageSpec {
        name: "bench".into(),
        version: "1.0-r0".into(),
        description: "benchmark tree".into(),
        url: String::new(),
        license: "MIT".into(),
        arch: "x86_64".into(),
        origin: "bench".into(),
        commit: None,
        builddate: 1_700_000_000,
        packager: "forge".into(),
        depends: Vec::new(),
        provides: Vec::new(),
        root: root.clone(),
    };
    let out_dir = base.join("out");
    let tar_out = base.join("out.tar.gz");
    let mut best_forge = Duration::MAX;
    let mut best_tar = Duration::MAX;
    let mut forge_size = 0;
    let mut tar_size = 0;
    for _ in 0..runs {
        let (t, w) =
            time(|| apk::write_package(&spec, &key, &WriteOptions::default(), &out_dir).unwrap());
        best_forge = best_forge.min(t);
        forge_size = w.file_size;
        let script = format!(
            "tar --format=posix -c -C '{}' . | gzip -9 > '{}'",
            root.display(),
            tar_out.display()
        );
        let (t, status) = time(|| Command::new("sh").arg("-c").arg(&script).status().unwrap());
        assert!(status.success(), "tar | gzip failed");
        best_tar = best_tar.min(t);
        tar_size = fs::metadata(&tar_out).unwrap().len();
    }
    let mut out = std::io::stdout().lock();
    let mb = bytes as f64 / (1 << 20) as f64;
    let _ = writeln!(
        out,
        "tree:            {mb:.1} MiB ({})",
        forge::apk::gzip::COMPRESSOR
    );
    let _ = writeln!(
        out,
        "forge apk:       {:.2} s  {:.1} MiB/s  -> {} bytes",
        best_forge.as_secs_f64(),
        mb / best_forge.as_secs_f64(),
        forge_size
    );
    let _ = writeln!(
        out,
        "tar | gzip -9:   {:.2} s  {:.1} MiB/s  -> {} bytes",
        best_tar.as_secs_f64(),
        mb / best_tar.as_secs_f64(),
        tar_size
    );
    let _ = writeln!(
        out,
        "ratio forge/tar: {:.2} (time), {:.3} (size)",
        best_forge.as_secs_f64() / best_tar.as_secs_f64(),
        forge_size as f64 / tar_size as f64
    );
}
