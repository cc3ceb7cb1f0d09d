//! Container images carried on OEM (`oem-images = ["hello"]` in an OS
//! image): each forge image from `out/images/NAME/` becomes a runtime
//! bundle's makings, `containers/NAME/config.json` (an OCI runtime config
//! written here from the image config) and `containers/NAME/layers/NN.tar.gz`
//! (the layer blobs, base first). The node's `containers` script unpacks the
//! layers and runs the bundle with crun.
//!
//! The layout is read as untrusted input: JSON files are size-capped, every
//! blob is checked against its digest, and the platform must match the OS
//! image's architecture.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::OsError;
use crate::oci::Digest;

/// The most a JSON file of the layout may hold.
const MAX_JSON: u64 = 1 << 20;

/// The OEM files of one container image: OEM path → content.
pub fn oem_files(
    images_dir: &Path,
    name: &str,
    architecture: &str,
    limit: u64,
) -> Result<BTreeMap<String, Vec<u8>>, OsError> {
    let dir = images_dir.join(name);
    let bad = |what: String| OsError::Container {
        name: name.to_string(),
        dir: dir.clone(),
        what,
    };
    if !dir.join("index.json").is_file() {
        return Err(bad(
            "no OCI layout (build it with `forge image NAME`)".into()
        ));
    }
    let index = read_json(&dir.join("index.json"), MAX_JSON).map_err(&bad)?;
    let manifest = pick_manifest(&dir, &index, architecture).map_err(&bad)?;
    let config_digest = digest_of(&manifest["config"]).map_err(&bad)?;
    let config = json_blob(&dir, &config_digest).map_err(&bad)?;
    let mut files = BTreeMap::new();
    let mut layers = Vec::new();
    let mut total = 0u64;
    let empty = Vec::new();
    for (i, l) in manifest["layers"]
        .as_array()
        .unwrap_or(&empty)
        .iter()
        .enumerate()
    {
        let d = digest_of(l).map_err(&bad)?;
        let bytes = blob(&dir, &d, limit.saturating_sub(total)).map_err(&bad)?;
        total += bytes.len() as u64;
        files.insert(
            format!("containers/{name}/layers/{i:02}.tar.gz"),
            bytes.clone(),
        );
        layers.push(bytes);
    }
    let spec = runtime_spec(name, &config, &layers).map_err(&bad)?;
    let mut json = serde_json::to_vec_pretty(&spec).map_err(|e| bad(e.to_string()))?;
    json.push(b'\n');
    files.insert(format!("containers/{name}/config.json"), json);
    Ok(files)
}

fn digest_of(desc: &Value) -> Result<Digest, String> {
    let s = desc["digest"]
        .as_str()
        .ok_or("a descriptor without a digest")?;
    Digest::parse(s).map_err(|e| format!("bad digest `{s}`: {}", e.0))
}

fn read_json(path: &Path, max: u64) -> Result<Value, String> {
    let bytes = read_capped(path, max)?;
    serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}

fn read_capped(path: &Path, max: u64) -> Result<Vec<u8>, String> {
    let f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut bytes = Vec::new();
    f.take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if bytes.len() as u64 > max {
        return Err(format!("{} is larger than {max} bytes", path.display()));
    }
    Ok(bytes)
}

/// A blob's bytes, checked against its digest.
fn blob(dir: &Path, digest: &Digest, max: u64) -> Result<Vec<u8>, String> {
    let path: PathBuf = dir.join("blobs/sha256").join(digest.hex());
    let bytes = read_capped(&path, max)?;
    if Digest::of(&bytes) != *digest {
        return Err(format!(
            "blob {} does not match its digest",
            digest.as_str()
        ));
    }
    Ok(bytes)
}

fn json_blob(dir: &Path, digest: &Digest) -> Result<Value, String> {
    let bytes = blob(dir, digest, MAX_JSON)?;
    serde_json::from_slice(&bytes).map_err(|e| format!("blob {}: {e}", digest.as_str()))
}

/// Follow the index (and nested indexes) to the manifest for `architecture`.
fn pick_manifest(dir: &Path, index: &Value, architecture: &str) -> Result<Value, String> {
    let mut current = index.clone();
    for _ in 0..4 {
        let empty = Vec::new();
        let entries = current["manifests"].as_array().unwrap_or(&empty);
        let entry = entries
            .iter()
            .find(|m| m["platform"]["architecture"].as_str() == Some(architecture))
            .or_else(|| {
                // One entry that names no platform (a nested index's own
                // entry): follow it; one naming another platform is no match.
                (entries.len() == 1 && entries[0]["platform"].is_null()).then(|| &entries[0])
            })
            .ok_or(format!("no manifest for {architecture}"))?;
        let next = json_blob(dir, &digest_of(entry)?)?;
        if next["layers"].is_array() {
            return Ok(next);
        }
        current = next;
    }
    Err("image indexes nested too deep".into())
}

/// `name:uid:gid` of `user` (a name or a number) from the layers'
/// `etc/passwd`, the last layer that has one winning.
fn resolve_user(user: &str, layers: &[Vec<u8>]) -> Result<(u32, u32), String> {
    let (u, g) = user.split_once(':').unwrap_or((user, ""));
    if let Ok(uid) = u.parse::<u32>() {
        return Ok((uid, g.parse().unwrap_or(uid)));
    }
    let mut passwd = None;
    for layer in layers {
        let gz = flate2::read::GzDecoder::new(&layer[..]);
        let mut tar = tar::Archive::new(gz);
        for e in tar.entries().map_err(|e| e.to_string())? {
            let mut e = e.map_err(|e| e.to_string())?;
            let path = e
                .path()
                .map_err(|e| e.to_string())?
                .to_string_lossy()
                .into_owned();
            if path.trim_start_matches("./") == "etc/passwd" {
                let mut text = String::new();
                (&mut e)
                    .take(MAX_JSON)
                    .read_to_string(&mut text)
                    .map_err(|e| e.to_string())?;
                passwd = Some(text);
            }
        }
    }
    let passwd = passwd.ok_or(format!("user `{user}` but no etc/passwd in the image"))?;
    passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() >= 4 && f[0] == u)
        .and_then(|f| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
        .ok_or(format!("user `{user}` is not in the image's etc/passwd"))
}

/// The OCI runtime config running the image's entrypoint and command.
fn runtime_spec(name: &str, config: &Value, layers: &[Vec<u8>]) -> Result<Value, String> {
    let c = &config["config"];
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut args = strings(&c["Entrypoint"]);
    args.extend(strings(&c["Cmd"]));
    if args.is_empty() {
        return Err("the image has neither Entrypoint nor Cmd".into());
    }
    let mut env = strings(&c["Env"]);
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.push("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    }
    let (uid, gid) = resolve_user(c["User"].as_str().unwrap_or(""), layers).or_else(|e| {
        if c["User"].as_str().unwrap_or("").is_empty() {
            Ok((0, 0))
        } else {
            Err(e)
        }
    })?;
    let cwd = c["WorkingDir"]
        .as_str()
        .filter(|s| !s.is_empty())
        .unwrap_or("/");
    Ok(json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": uid, "gid": gid},
            "args": args,
            "env": env,
            "cwd": cwd,
            "noNewPrivileges": true,
            "capabilities": {"bounding": [], "effective": [], "permitted": []}
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": name,
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "nodev", "mode=1777"]}
        ],
        "linux": {
            "namespaces": [
                {"type": "pid"}, {"type": "ipc"}, {"type": "uts"},
                {"type": "mount"}, {"type": "network"}
            ]
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A one-layer layout: `/etc/passwd` naming `app` 1000:1001.
    fn layout(dir: &Path, user: &str) {
        let blobs = dir.join("blobs/sha256");
        std::fs::create_dir_all(&blobs).unwrap();
        let put = |bytes: &[u8]| {
            let d = Digest::of(bytes);
            std::fs::write(blobs.join(d.hex()), bytes).unwrap();
            json!({"digest": d.as_str(), "size": bytes.len()})
        };
        let mut tar = tar::Builder::new(Vec::new());
        let passwd = b"root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n";
        let mut h = tar::Header::new_gnu();
        h.set_size(passwd.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append_data(&mut h, "etc/passwd", &passwd[..]).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &tar.into_inner().unwrap()).unwrap();
        let layer = put(&gz.finish().unwrap());
        let config = json!({"config": {"Entrypoint": ["/app"], "Cmd": ["-v"], "User": user}});
        let config = put(&serde_json::to_vec(&config).unwrap());
        let manifest =
            put(&serde_json::to_vec(&json!({"config": config, "layers": [layer]})).unwrap());
        let mut entry = manifest;
        entry["platform"] = json!({"architecture": "amd64", "os": "linux"});
        let index = json!({"manifests": [entry]});
        std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    }

    #[test]
    fn bundle_files_come_from_the_layout() {
        let dir = tempfile::tempdir().unwrap();
        layout(&dir.path().join("app"), "app");
        let files = oem_files(dir.path(), "app", "amd64", 1 << 20).unwrap();
        let names: Vec<&str> = files.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "containers/app/config.json",
                "containers/app/layers/00.tar.gz"
            ]
        );
        let spec: Value = serde_json::from_slice(&files["containers/app/config.json"]).unwrap();
        assert_eq!(spec["process"]["args"], json!(["/app", "-v"]));
        assert_eq!(spec["process"]["user"], json!({"uid": 1000, "gid": 1001}));
        assert_eq!(spec["root"], json!({"path": "rootfs", "readonly": true}));
    }

    #[test]
    fn bad_layouts_are_errors_naming_the_image() {
        let dir = tempfile::tempdir().unwrap();
        let err = oem_files(dir.path(), "none", "amd64", 1 << 20)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("container image `none`") && err.contains("forge image"),
            "{err}"
        );

        layout(&dir.path().join("app"), "nobody");
        let err = oem_files(dir.path(), "app", "amd64", 1 << 20)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("user `nobody` is not in the image's etc/passwd"),
            "{err}"
        );

        layout(&dir.path().join("app"), "app");
        let err = oem_files(dir.path(), "app", "arm64", 1 << 20)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no manifest for arm64"), "{err}");
        let err = oem_files(dir.path(), "app", "amd64", 10)
            .unwrap_err()
            .to_string();
        assert!(err.contains("larger than 10 bytes"), "{err}");

        // Blobs whose bytes no longer match their names.
        for e in std::fs::read_dir(dir.path().join("app/blobs/sha256")).unwrap() {
            let p = e.unwrap().path();
            let mut bytes = std::fs::read(&p).unwrap();
            bytes.push(b' ');
            std::fs::write(&p, bytes).unwrap();
        }
        let err = oem_files(dir.path(), "app", "amd64", 1 << 20)
            .unwrap_err()
            .to_string();
        assert!(err.contains("does not match its digest"), "{err}");
    }
}
