//! `forge image`: OCI layouts from a signed repository, read back by skopeo
//! and umoci, run with crun, reproducible, one layer per origin.
//!
//! Packages are written through the library (apk writer + repository) so
//! these tests do not depend on the build stage.

use std::path::{Path, PathBuf};
use std::process::Command;

use forge::apk::{PackageSpec, WriteOptions};
use forge::repo::Repo;
use forge::sign::{SigningKey, TrustedKeys, find_signing_key, generate};
use serde_json::Value;

use crate::support::{self, forge, require_tool, run, run_ok, write};

/// One synthetic package.
struct Pkg<'a> {
    name: &'a str,
    version: &'a str,
    origin: &'a str,
    depends: &'a [&'a str],
    files: Vec<(&'a str, Vec<u8>, u32)>,
    /// Hard links: (new path, existing path).
    links: Vec<(&'a str, &'a str)>,
}

fn key(project: &Path) -> SigningKey {
    let dir = project.join("keys");
    if let Some(k) = find_signing_key(&dir).unwrap() {
        return k;
    }
    std::fs::create_dir_all(&dir).unwrap();
    let g = generate(&dir, "test", 2048).unwrap();
    SigningKey::load(&g.private).unwrap()
}

/// Write `pkgs` into `project/out/repo/x86_64` and re-sign its index.
fn publish(project: &Path, pkgs: &[Pkg<'_>]) {
    publish_arch(project, "x86_64", pkgs);
}

/// Write `pkgs` into `project/out/repo/<arch>` and re-sign its index.
fn publish_arch(project: &Path, arch: &str, pkgs: &[Pkg<'_>]) {
    let key = key(project);
    let trusted = TrustedKeys::load_dir(&project.join("keys")).unwrap();
    let mut repo = Repo::open(&project.join("out/repo"), arch, &trusted).unwrap();
    for p in pkgs {
        let stage = tempfile::tempdir().unwrap();
        for (rel, data, mode) in &p.files {
            let path = stage.path().join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, data).unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(*mode)).unwrap();
        }
        for (new, old) in &p.links {
            std::fs::hard_link(stage.path().join(old), stage.path().join(new)).unwrap();
        }
        let spec = PackageSpec {
            name: p.name.into(),
            version: p.version.into(),
            description: format!("{} test package", p.name),
            url: "https://example.org/forge-test".into(),
            license: "MIT".into(),
            arch: arch.into(),
            origin: p.origin.into(),
            commit: Some("0123456789abcdef0123456789abcdef01234567".into()),
            builddate: 1_700_000_000,
            packager: "Forge Tests <tests@example.org>".into(),
            depends: p.depends.iter().map(|s| s.to_string()).collect(),
            provides: Vec::new(),
            root: stage.path().to_path_buf(),
        };
        let opts = WriteOptions {
            auto_deps: false,
            sha1_signature: false,
        };
        repo.write_package(&spec, &key, &opts).unwrap();
    }
    repo.write_index(&key, None).unwrap();
}

/// A static hello binary (the image has no libc).
fn static_hello(dir: &Path) -> Option<Vec<u8>> {
    if !require_tool("gcc") {
        return None;
    }
    let src = dir.join("hello.c");
    std::fs::write(
        &src,
        "#include <stdio.h>\nint main(void){puts(\"Hello from forge!\");return 0;}\n",
    )
    .unwrap();
    let out = dir.join("hello");
    let st = Command::new("gcc")
        .args(["-static", "-O2", "-o"])
        .arg(&out)
        .arg(&src)
        .status()
        .unwrap();
    assert!(st.success(), "gcc -static failed");
    Some(std::fs::read(out).unwrap())
}

/// The recipe of the `hello` origin: its sources go into the SBOM.
const HELLO_RECIPE: &str = r#"schema = 1
[package]
name = "hello"
version = "1.0"
release = 0
description = "hello"
url = "https://example.org/hello"
license = "MIT"
arch = ["x86_64"]

[[source]]
url = "https://example.org/hello-1.0.tar.gz"
sha256 = "1111111111111111111111111111111111111111111111111111111111111111"

[build]
script = "true"
"#;

const IMAGE: &str = r#"schema = 1
description = "hello, from packages"
version = "1.0"
packages = ["hello"]
entrypoint = ["/usr/bin/hello"]
workdir = "/"
user = "app"
env = { LANG = "C.UTF-8" }
labels = { "org.example.team" = "forge" }

[[accounts]]
name = "app"
uid = 1000

[[paths]]
path = "/srv/data"
type = "dir"
uid = 1000
gid = 1000
mode = "0750"

[[paths]]
path = "/etc/motd"
type = "file"
content = "welcome\n"
"#;

/// A project with hello (origin hello) → greet-data (origin greet) and
/// hello-doc (origin hello).
fn hello_project(hello: &[u8], greet: &str) -> tempfile::TempDir {
    let p = support::project();
    write(p.path(), "images/hello.toml", IMAGE);
    publish(p.path(), &hello_pkgs(hello, greet, "1.0-r0"));
    p
}

fn hello_pkgs<'a>(hello: &'a [u8], greet: &'a str, greet_version: &'a str) -> Vec<Pkg<'a>> {
    vec![
        Pkg {
            name: "hello",
            version: "1.0-r0",
            origin: "hello",
            depends: &["greet-data", "hello-doc"],
            links: vec![],
            files: vec![("usr/bin/hello", hello.to_vec(), 0o755)],
        },
        Pkg {
            name: "hello-doc",
            version: "1.0-r0",
            origin: "hello",
            depends: &[],
            links: vec![(
                "usr/share/doc/hello/README.txt",
                "usr/share/doc/hello/README",
            )],
            files: vec![("usr/share/doc/hello/README", b"read me\n".to_vec(), 0o644)],
        },
        Pkg {
            name: "greet-data",
            version: greet_version,
            origin: "greet",
            depends: &[],
            links: vec![],
            files: vec![("usr/share/greet/text", greet.as_bytes().to_vec(), 0o644)],
        },
    ]
}

fn json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn blob(layout: &Path, digest: &str) -> Value {
    json(
        &layout
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:")),
    )
}

/// (index digest, manifest digest, [(history title, layer digest)]).
fn digests(layout: &Path) -> (String, String, Vec<(String, String)>) {
    let top = json(&layout.join("index.json"));
    let index_digest = top["manifests"][0]["digest"].as_str().unwrap().to_string();
    let index = blob(layout, &index_digest);
    let manifest_digest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let manifest = blob(layout, &manifest_digest);
    let config = blob(layout, manifest["config"]["digest"].as_str().unwrap());
    let layers = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .zip(config["history"].as_array().unwrap())
        .map(|(l, h)| {
            (
                h["created_by"].as_str().unwrap().to_string(),
                l["digest"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    (index_digest, manifest_digest, layers)
}

fn build(dir: &Path) -> PathBuf {
    run_ok(forge(dir).args(["image", "hello"]));
    dir.join("out/images/hello")
}

#[test]
fn image_layout_is_read_by_skopeo_and_umoci_and_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(hello) = static_hello(tmp.path()) else {
        return;
    };
    let p = hello_project(&hello, "hi");
    write(p.path(), "recipes/hello/recipe.toml", HELLO_RECIPE);
    let layout = build(p.path());

    // Layout shape: index.json → image index → amd64 manifest → config.
    assert_eq!(
        std::fs::read_to_string(layout.join("oci-layout")).unwrap(),
        r#"{"imageLayoutVersion":"1.0.0"}"#
    );
    let top = json(&layout.join("index.json"));
    assert_eq!(
        top["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
        "latest"
    );
    assert_eq!(
        top["manifests"][0]["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let index = blob(&layout, top["manifests"][0]["digest"].as_str().unwrap());
    assert_eq!(index["manifests"][0]["platform"]["architecture"], "amd64");
    let manifest = blob(&layout, index["manifests"][0]["digest"].as_str().unwrap());
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.created"],
        "2023-11-14T22:13:20Z"
    );
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.version"],
        "1.0"
    );
    let config = blob(&layout, manifest["config"]["digest"].as_str().unwrap());
    assert_eq!(config["config"]["Entrypoint"][0], "/usr/bin/hello");
    assert_eq!(config["config"]["User"], "app");
    assert_eq!(config["created"], "2023-11-14T22:13:20Z");
    let (_, _, layers) = digests(&layout);
    let titles: Vec<&str> = layers.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        titles,
        [
            "forge image hello: origin greet",
            "forge image hello: origin hello",
            "forge image hello: image files"
        ]
    );
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&layout).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o755);
    // Every blob matches its name.
    for e in std::fs::read_dir(layout.join("blobs/sha256")).unwrap() {
        let e = e.unwrap();
        let bytes = std::fs::read(e.path()).unwrap();
        assert_eq!(
            forge::oci::Digest::of(&bytes).hex(),
            e.file_name().to_str().unwrap()
        );
    }

    if require_tool("skopeo") {
        let (out, _) = run_ok(
            Command::new("skopeo")
                .arg("inspect")
                .arg(format!("oci:{}", layout.display())),
        );
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["Architecture"], "amd64");
        assert_eq!(v["Layers"].as_array().unwrap().len(), 3);
        assert_eq!(v["Labels"]["org.example.team"], "forge");
    }

    if require_tool("pyspdxtools") {
        let sbom = p.path().join("out/images/hello.x86_64.spdx.json");
        let doc = json(&sbom);
        let names: Vec<&str> = doc["packages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "hello",
                "greet-data",
                "hello-doc",
                "hello-source-0",
                "hello"
            ]
        );
        let src = &doc["packages"][3];
        assert_eq!(
            src["downloadLocation"],
            "https://example.org/hello-1.0.tar.gz"
        );
        assert_eq!(src["checksums"][0]["algorithm"], "SHA256");
        assert_eq!(src["primaryPackagePurpose"], "SOURCE");
        let generated = doc["relationships"].as_array().unwrap().iter().any(|r| {
            r["relationshipType"] == "GENERATED_FROM"
                && r["relatedSpdxElement"] == "SPDXRef-Source-hello-0"
        });
        assert!(generated);
        run_ok(Command::new("pyspdxtools").arg("-i").arg(&sbom));
    }

    if !require_tool("umoci") {
        return;
    }
    let bundle = tmp.path().join("bundle");
    run_ok(
        Command::new("umoci")
            .args(["unpack", "--image"])
            .arg(format!("{}:latest", layout.display()))
            .arg(&bundle),
    );
    let rootfs = bundle.join("rootfs");
    assert_eq!(std::fs::read(rootfs.join("usr/bin/hello")).unwrap(), hello);
    let passwd = std::fs::read_to_string(rootfs.join("etc/passwd")).unwrap();
    assert_eq!(
        passwd,
        "root:x:0:0:root:/root:/sbin/nologin\napp:x:1000:1000:app:/home/app:/sbin/nologin\n"
    );
    let installed = std::fs::read_to_string(rootfs.join("lib/apk/db/installed")).unwrap();
    assert!(installed.starts_with("C:Q1"), "{installed}");
    assert!(
        installed.contains("P:greet-data\nV:1.0-r0\nA:x86_64\n"),
        "{installed}"
    );
    assert!(
        installed.contains("F:usr/bin\nR:hello\na:0:0:755\nZ:Q1"),
        "{installed}"
    );
    assert_eq!(
        std::fs::read_to_string(rootfs.join("etc/apk/world")).unwrap(),
        "hello\n"
    );
    assert_eq!(
        std::fs::read_to_string(rootfs.join("etc/motd")).unwrap(),
        "welcome\n"
    );
    use std::os::unix::fs::MetadataExt;
    let readme = std::fs::metadata(rootfs.join("usr/share/doc/hello/README")).unwrap();
    let link = std::fs::metadata(rootfs.join("usr/share/doc/hello/README.txt")).unwrap();
    assert_eq!(
        (readme.ino(), readme.nlink()),
        (link.ino(), 2),
        "hard link kept"
    );
    let srv = std::fs::metadata(rootfs.join("srv/data")).unwrap();
    assert_eq!(
        (srv.uid(), srv.gid(), srv.mode() & 0o7777),
        (1000, 1000, 0o750)
    );

    if !require_tool("crun") || !require_tool("unshare") {
        return;
    }
    let cfg_path = bundle.join("config.json");
    let mut cfg = json(&cfg_path);
    cfg["process"]["terminal"] = Value::Bool(false);
    std::fs::write(&cfg_path, serde_json::to_vec(&cfg).unwrap()).unwrap();
    let script = format!(
        "if [ -d /sys/fs/cgroup/unified ]; then mount -t tmpfs none /sys/fs/cgroup/unified; fi; \
         exec crun --cgroup-manager=disabled run -b '{}' forge-image-test-{}",
        bundle.display(),
        std::process::id()
    );
    let out = run(Command::new("unshare").args(["-m", "sh", "-c", &script]));
    assert!(out.status.success(), "crun run failed");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "Hello from forge!\n");
}

#[test]
fn image_digests_are_reproducible_and_one_origin_changes_one_layer() {
    let tmp = tempfile::tempdir().unwrap();
    let hello = b"#!/bin/sh\necho hi\n".to_vec();
    let a = hello_project(&hello, "hi");
    // The same packages (byte-identical: same key, tree and builddate) in
    // another folder give the same image.
    let b = support::project();
    support::copy_tree(a.path(), b.path());
    std::fs::remove_dir_all(b.path().join("out/images")).ok();
    let (ia, ma, la) = digests(&build(a.path()));
    let (ib, mb, lb) = digests(&build(b.path()));
    assert_eq!((&ia, &ma, &la), (&ib, &mb, &lb));
    let sbom = |d: &Path| std::fs::read(d.join("out/images/hello.x86_64.spdx.json")).unwrap();
    assert_eq!(sbom(a.path()), sbom(b.path()), "SBOMs differ");
    // Rebuilding in place gives the same bytes.
    let (ia2, _, _) = digests(&build(a.path()));
    assert_eq!(ia, ia2);

    // A new greet-data: only the greet layer and the image-files layer change.
    let _ = tmp;
    publish(a.path(), &hello_pkgs(&hello, "hello there", "1.1-r0")[2..]);
    let (ic, mc, lc) = digests(&build(a.path()));
    assert_ne!(ic, ia);
    assert_ne!(mc, ma);
    let changed: Vec<&str> = la
        .iter()
        .zip(&lc)
        .filter(|(x, y)| x.1 != y.1)
        .map(|(x, _)| x.0.as_str())
        .collect();
    assert_eq!(
        changed,
        [
            "forge image hello: origin greet",
            "forge image hello: image files"
        ]
    );
    assert_eq!(la[1], lc[1], "the hello layer is unchanged");
}

/// Two clones of one project made through two remote URL forms (a path and
/// a `file://` URL, as an ssh and an https clone differ) give the same image:
/// the local remote URL is not an input of the image.
#[test]
fn image_digest_does_not_depend_on_the_clone_url() {
    let hello = b"#!/bin/sh\necho hi\n".to_vec();
    let upstream = hello_project(&hello, "hi");
    write(upstream.path(), "forge.toml", "");
    support::git_commit_all(upstream.path(), "2024-01-01T00:00:00Z");
    let clones = tempfile::tempdir().unwrap();
    let path_form = upstream.path().display().to_string();
    let url_form = format!("file://{path_form}");
    let mut built = Vec::new();
    for (i, url) in [&path_form, &url_form].into_iter().enumerate() {
        let dest = clones.path().join(format!("clone{i}"));
        run_ok(Command::new("git").args(["clone", "-q", url]).arg(&dest));
        let (out, _) = run_ok(
            Command::new("git")
                .args(["remote", "get-url", "origin"])
                .current_dir(&dest),
        );
        assert_eq!(out.trim(), url.as_str());
        built.push(digests(&build(&dest)));
    }
    assert_eq!(built[0], built[1], "the clone URL changed the image");
}

#[test]
fn single_layer_and_layer_budget() {
    let hello = b"x".to_vec();
    let p = hello_project(&hello, "hi");
    write(
        p.path(),
        "images/hello.toml",
        &format!("{IMAGE}\n[layering]\nmode = \"single\"\n"),
    );
    let (index, manifest, l) = digests(&build(p.path()));
    assert_eq!(l.len(), 1);
    // --json: one event naming the same digests.
    let (out, _) = run_ok(forge(p.path()).args(["--json", "image", "hello"]));
    let event: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(event["event"], "image");
    assert_eq!(event["digest"], index.as_str());
    assert_eq!(event["manifests"][0]["digest"], manifest.as_str());
    assert_eq!(
        event["manifests"][0]["layers"][0]["digest"],
        l[0].1.as_str()
    );
    assert_eq!(
        event["manifests"][0]["layers"][0]["packages"],
        serde_json::json!(["greet-data", "hello", "hello-doc"])
    );
    write(
        p.path(),
        "images/hello.toml",
        &format!("{IMAGE}\n[layering]\nmax_layers = 2\n"),
    );
    let (_, _, l) = digests(&build(p.path()));
    let titles: Vec<&str> = l.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        titles,
        [
            "forge image hello: merged origins: greet hello",
            "forge image hello: image files"
        ]
    );
}

#[test]
fn image_errors_name_the_file_and_position() {
    let p = support::project();
    write(
        p.path(),
        "images/bad.toml",
        "schema = 1\npackages = [\"hello\"]\nentrypont = [\"/x\"]\n",
    );
    let err = support::run_err(forge(p.path()).args(["image", "bad"]));
    assert!(
        err.contains("images/bad.toml:3:1: unknown field `entrypont`"),
        "{err}"
    );
    assert!(err.contains("did you mean `entrypoint`?"), "{err}");
    let err = support::run_err(forge(p.path()).args(["image", "../etc/x"]));
    assert!(err.contains("invalid image name `../etc/x`"), "{err}");
    let err = support::run_err(forge(p.path()).args(["image", "missing"]));
    assert!(err.contains("no image definition"), "{err}");
    write(
        p.path(),
        "images/nope.toml",
        "schema = 1\npackages = [\"nope\"]\n",
    );
    let err = support::run_err(forge(p.path()).args(["image", "nope"]));
    assert!(err.contains("no package repository for x86_64"), "{err}");
    // A package the repository lacks.
    write(
        p.path(),
        "images/nope.toml",
        "schema = 1\npackages = [\"nope\"]\n",
    );
    publish(
        p.path(),
        &[Pkg {
            name: "other",
            version: "1-r0",
            origin: "other",
            depends: &[],
            links: vec![],
            files: vec![("a", b"a".to_vec(), 0o644)],
        }],
    );
    let err = support::run_err(forge(p.path()).args(["image", "nope"]));
    assert!(
        err.contains("nothing in the repository provides `nope`"),
        "{err}"
    );
}

#[test]
fn multi_arch_image_has_one_manifest_per_platform() {
    let p = support::project();
    write(
        p.path(),
        "images/multi.toml",
        "schema = 1\npackages = [\"hello\"]\narchs = [\"aarch64\", \"x86_64\"]\nentrypoint = [\"/usr/bin/hello\"]\n",
    );
    for arch in ["x86_64", "aarch64"] {
        let body = format!("#!/bin/sh\necho {arch}\n");
        let pkgs = [Pkg {
            name: "hello",
            version: "1.0-r0",
            origin: "hello",
            depends: &[],
            links: vec![],
            files: vec![("usr/bin/hello", body.into_bytes(), 0o755)],
        }];
        publish_arch(p.path(), arch, &pkgs);
    }
    run_ok(forge(p.path()).args(["image", "multi"]));
    let layout = p.path().join("out/images/multi");
    let top = json(&layout.join("index.json"));
    let refs: Vec<&str> = top["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            m["annotations"]["org.opencontainers.image.ref.name"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(refs, ["latest", "latest-aarch64", "latest-x86_64"]);
    let index = blob(&layout, top["manifests"][0]["digest"].as_str().unwrap());
    let platforms: Vec<String> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let pl = &m["platform"];
            format!(
                "{}/{}/{}",
                pl["os"].as_str().unwrap(),
                pl["architecture"].as_str().unwrap(),
                pl["variant"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(platforms, ["linux/arm64/v8", "linux/amd64/"]);
    assert!(
        p.path()
            .join("out/images/multi.aarch64.spdx.json")
            .is_file()
    );
    if require_tool("skopeo") {
        let (out, _) = run_ok(
            Command::new("skopeo")
                .args(["--override-arch", "arm64", "inspect"])
                .arg(format!("oci:{}:latest", layout.display())),
        );
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["Architecture"], "arm64");
    }
    if require_tool("umoci") {
        let tmp = tempfile::tempdir().unwrap();
        let bundle = tmp.path().join("b");
        run_ok(
            Command::new("umoci")
                .args(["unpack", "--image"])
                .arg(format!("{}:latest-aarch64", layout.display()))
                .arg(&bundle),
        );
        assert_eq!(
            std::fs::read_to_string(bundle.join("rootfs/usr/bin/hello")).unwrap(),
            "#!/bin/sh\necho aarch64\n"
        );
        assert_eq!(
            std::fs::read_to_string(bundle.join("rootfs/etc/apk/arch")).unwrap(),
            "aarch64\n"
        );
    }
}

#[test]
fn tampered_package_is_rejected() {
    let p = hello_project(b"x", "hi");
    let apk = p.path().join("out/repo/x86_64/greet-data-1.0-r0.apk");
    let mut bytes = std::fs::read(&apk).unwrap();
    let n = bytes.len();
    bytes[n - 30] ^= 0xff;
    std::fs::write(&apk, bytes).unwrap();
    let err = support::run_err(forge(p.path()).args(["image", "hello"]));
    assert!(
        err.contains("verifying package") && err.contains("greet-data-1.0-r0.apk"),
        "{err}"
    );
    assert!(!p.path().join("out/images/hello").exists());
}

/// The repository's own `recipes/hello` and `images/hello.toml`, end to end:
/// `forge build hello`, `forge image hello`, then run it with crun.
#[test]
fn repository_hello_image_runs() {
    if !support::require_bwrap() || !require_tool("umoci") || !require_tool("crun") {
        return;
    }
    let p = support::project();
    support::copy_tree(
        &support::repo_root().join("recipes/hello"),
        &p.path().join("recipes/hello"),
    );
    support::copy_tree(
        &support::repo_root().join("images"),
        &p.path().join("images"),
    );
    support::git_commit_all(p.path(), "2024-01-01T00:00:00Z");
    run_ok(forge(p.path()).args(["build", "hello", "--no-images"]));
    let layout = build(p.path());
    let tmp = tempfile::tempdir().unwrap();
    let bundle = tmp.path().join("bundle");
    run_ok(
        Command::new("umoci")
            .args(["unpack", "--image"])
            .arg(format!("{}:latest", layout.display()))
            .arg(&bundle),
    );
    let cfg_path = bundle.join("config.json");
    let mut cfg = json(&cfg_path);
    cfg["process"]["terminal"] = Value::Bool(false);
    std::fs::write(&cfg_path, serde_json::to_vec(&cfg).unwrap()).unwrap();
    let script = format!(
        "if [ -d /sys/fs/cgroup/unified ]; then mount -t tmpfs none /sys/fs/cgroup/unified; fi; \
         exec crun --cgroup-manager=disabled run -b '{}' forge-hello-{}",
        bundle.display(),
        std::process::id()
    );
    let out = run(Command::new("unshare").args(["-m", "sh", "-c", &script]));
    assert!(out.status.success(), "crun run failed");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "Hello from forge!\n");
}
