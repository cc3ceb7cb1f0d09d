//! Fuzz entry points for readers that take a path: apk packages, OCI image
//! layouts and source archives. Each writes the input into a fresh temporary
//! folder first, so the real file-based code path is the one exercised.

use std::io::Read;
use std::path::Path;

use crate::apk::{Package, Trust, VerifiedPackage, tar};
use crate::oci::Digest;
use crate::sign::TrustedKeys;

/// The most documents one OCI input is split into.
const MAX_DOCS: usize = 8;

/// Bytes as an `.apk` file through the inspection reader (whole and
/// control-only), through the verified reader against an empty key set
/// (must fail) and trusting the file's own identity (so the data walk runs),
/// and as a raw tar stream through forge's tar reader (with header checksums
/// made right, so mutations reach past the checksum test).
pub fn apk(data: &[u8]) {
    let raw = with_tar_checksums(data);
    let mut r = tar::Reader::new(raw.as_slice());
    while let Ok(Some(_)) = r.next_entry() {
        let mut sink = Vec::new();
        if r.content().read_to_end(&mut sink).is_err() {
            break;
        }
    }
    let Ok(dir) = tempfile::tempdir() else {
        return;
    };
    let path = dir.path().join("fuzz-1.0-r0.apk");
    if std::fs::write(&path, data).is_err() {
        return;
    }
    if let Ok(pkg) = Package::open(&path) {
        let keys = TrustedKeys::new();
        assert!(
            VerifiedPackage::open(&path, Trust::Signed(&keys)).is_err(),
            "no key, no trust"
        );
        if let Ok(v) = VerifiedPackage::open(&path, Trust::Indexed(&pkg.identity)) {
            for e in v.entries() {
                let _ = v.content(e);
            }
        }
    }
    let _ = Package::open_control(&path);
}

/// `data` with the checksum field of every 512-byte block that carries the
/// `ustar` magic recomputed.
fn with_tar_checksums(data: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    for block in out.chunks_exact_mut(512) {
        if &block[257..262] == b"ustar" {
            block[148..156].fill(b' ');
            let sum: u32 = block.iter().map(|&b| u32::from(b)).sum();
            block[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        }
    }
    out
}

/// An OCI image layout through the push planner. The input is split at
/// `0xff` bytes: the first part is `index.json`, each later part `N` (1-based)
/// a blob stored under its own digest. The text `@N` in a part is replaced by
/// the digest of part `N` (only later parts), so the fuzzer can build
/// index → manifest → config/layer trees with digests that match.
pub fn oci(data: &[u8]) {
    let docs: Vec<&[u8]> = super::parts(data).into_iter().take(MAX_DOCS).collect();
    let Ok(dir) = tempfile::tempdir() else {
        return;
    };
    let blobs = dir.path().join("blobs").join("sha256");
    if std::fs::create_dir_all(&blobs).is_err() {
        return;
    }
    let mut digests: Vec<Option<Digest>> = vec![None; docs.len()];
    for i in (0..docs.len()).rev() {
        let bytes = substitute(docs[i], i, &digests);
        let _ = crate::imagesign::payload::parse_simple_signing(&bytes);
        let _ = crate::imagesign::payload::parse_envelope(&bytes);
        let name = if i == 0 {
            dir.path().join("index.json")
        } else {
            let d = Digest::of(&bytes);
            let path = blobs.join(d.hex());
            digests[i] = Some(d);
            path
        };
        if std::fs::write(name, &bytes).is_err() {
            return;
        }
    }
    if let Ok(layout) = crate::registry::plan::plan_layout(dir.path(), "fuzz/image") {
        let plan = &layout.plan;
        for m in &plan.manifests {
            assert_eq!(
                Digest::of(&m.bytes),
                m.digest,
                "a planned manifest has its digest"
            );
        }
        let planned = |d: &Digest| plan.manifests.iter().any(|m| m.digest == *d);
        assert!(planned(&layout.root.digest), "the root is planned");
        for (_, d) in &layout.tags {
            assert!(planned(d), "a tag names a planned manifest");
        }
    }
}

/// Replace `@N` (one digit, `N > i`) in part `i` with part `N`'s digest.
fn substitute(doc: &[u8], i: usize, digests: &[Option<Digest>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(doc.len());
    let mut k = 0;
    while k < doc.len() {
        let n = doc
            .get(k + 1)
            .filter(|c| c.is_ascii_digit())
            .map(|c| (c - b'0') as usize);
        match (doc[k], n.and_then(|n| digests.get(n).filter(|_| n > i))) {
            (b'@', Some(Some(d))) => {
                out.extend_from_slice(d.as_str().as_bytes());
                k += 2;
            }
            (c, _) => {
                out.push(c);
                k += 1;
            }
        }
    }
    out
}

/// Bytes as a downloaded source archive: sniffed by magic, then unpacked
/// into a fresh folder. Whatever happens, nothing may appear outside the
/// destination folder.
pub fn unpack(data: &[u8]) {
    use crate::source::unpack::{sniff, unpack};
    let Ok(dir) = tempfile::tempdir() else {
        return;
    };
    let archive = dir.path().join("src.archive");
    if std::fs::write(&archive, data).is_err() {
        return;
    }
    let Ok(Some(format)) = sniff(&archive) else {
        return;
    };
    let dest = dir.path().join("out").join("src");
    let _ = unpack(&archive, format, &dest);
    assert_contained(dir.path(), &archive, &dest);
}

/// Every path under `root` is the archive, the destination or inside it.
fn assert_contained(root: &Path, archive: &Path, dest: &Path) {
    for e in walkdir::WalkDir::new(root)
        .follow_links(false)
        .into_iter()
        .flatten()
    {
        let p = e.path();
        let ok = p == root || p == archive || dest.starts_with(p) || p.starts_with(dest);
        assert!(
            ok,
            "unpacking wrote {} outside {}",
            p.display(),
            dest.display()
        );
    }
}
