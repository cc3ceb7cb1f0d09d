//! The node's container trust loop, generated from the OS definition's
//! `[containers]` and the project's image-signing public key, never written
//! by hand: CRI-O (through containers/image) pulls only images of the
//! cluster's registry that carry a cosign signature by forge's key.
//!
//! Where `/etc` lives. `/usr` is read-only and covered by dm-verity; `/etc`
//! is on ROOT, which is writable and made on first boot. Packages' own
//! `/etc` goes to `/usr/share/factory/etc` (systemd's factory defaults),
//! which the initramfs copies into ROOT's `/etc` where a file is missing
//! (`cp -a -n`). The trust files live in `/usr/share/forge/…`, and the
//! factory holds a *symlink* to each, so `/etc/containers/policy.json` on
//! the node is a link into the running slot's `/usr`: an update that
//! changes the key or the policy takes effect with the slot that carries
//! it, a rollback takes the old one back, and nothing merges `/etc`. The
//! policy, the key it names (`keyPath`) and CRI-O's drop-in are all under
//! the verity root hash that the UKI's signed command line names. A site
//! that must differ replaces the link with a file of its own. (Flatcar
//! keeps such defaults under `/usr/share` and links them from `/etc` with
//! tmpfiles.d in the same way.)

use std::path::{Path, PathBuf};

use serde_json::json;

use super::OsError;
use super::usr::Extra;
use crate::image::def::ContainersDef;
use crate::imagesign::keys::{PUBLIC_SUFFIX, load_public};

/// Where the image-signing public key lands, inside `/usr`.
pub const KEY_PATH: &str = "share/forge/image-signing.cosign.pub";
/// `policy.json`, inside `/usr`.
pub const POLICY_PATH: &str = "share/forge/containers/policy.json";
/// The registries.d entry, inside `/usr`.
pub const REGISTRIES_D_PATH: &str = "share/forge/containers/registries.d/forge.yaml";
/// CRI-O's drop-in making crun the default runtime, inside `/usr`.
pub const CRIO_CRUN_PATH: &str = "share/forge/crio/crio.conf.d/10-crun.conf";
/// The node's `/etc` paths and the files they link to.
pub const ETC_LINKS: [(&str, &str); 3] = [
    ("containers/policy.json", POLICY_PATH),
    ("containers/registries.d/forge.yaml", REGISTRIES_D_PATH),
    ("crio/crio.conf.d/10-crun.conf", CRIO_CRUN_PATH),
];

/// The image-signing public key the node trusts, as PEM: `containers.key`
/// (relative to the project `root`) when set, else the newest
/// `keys/*.cosign.pub` (the pair of the key `forge publish` signs with,
/// by the same newest-file rule). It must be an ECDSA public key.
pub fn public_key(
    containers: &ContainersDef,
    root: &Path,
    keys_dir: &Path,
) -> Result<Vec<u8>, OsError> {
    let path = match &containers.key {
        Some(k) => root.join(k),
        None => newest_public(keys_dir).ok_or_else(|| OsError::NoTrustKey {
            dir: keys_dir.to_path_buf(),
        })?,
    };
    let key = load_public(&path).map_err(|source| OsError::TrustKey {
        path: path.clone(),
        source: Box::new(source),
    })?;
    key.public_key_to_pem().map_err(|e| OsError::TrustKey {
        path,
        source: Box::new(crate::imagesign::ImageSignError::Crypto(
            "encoding the public key",
            e,
        )),
    })
}

/// The newest `*.cosign.pub` in `keys_dir` (the image public key).
pub fn newest_public(keys_dir: &Path) -> Option<PathBuf> {
    std::fs::read_dir(keys_dir)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(PUBLIC_SUFFIX) && !n.starts_with('.'))
        })
        .max()
}

/// The generated entries of `/usr`, in path order: the files, and in
/// `share/factory/etc` a symlink to each of those the node reads in `/etc`.
pub fn files(containers: &ContainersDef, public_pem: &[u8]) -> Vec<(String, Extra)> {
    let mut out = vec![
        (KEY_PATH.to_string(), Extra::File(public_pem.to_vec())),
        (
            POLICY_PATH.to_string(),
            Extra::File(policy(&containers.registry)),
        ),
        (
            REGISTRIES_D_PATH.to_string(),
            Extra::File(registries_d(&containers.registry).into_bytes()),
        ),
        (
            CRIO_CRUN_PATH.to_string(),
            Extra::File(CRIO_CRUN.as_bytes().to_vec()),
        ),
    ];
    for (etc, file) in ETC_LINKS {
        out.push((
            format!("share/factory/etc/{etc}"),
            Extra::Symlink(format!("/usr/{file}")),
        ));
    }
    out.sort();
    out
}

/// containers-policy.json(5): reject everything, except images under
/// `registry` that carry a sigstore signature by the key. The identity is
/// `matchRepository`: forge signs `docker-reference` = the repository
/// without a tag (cosign's payload), which the default
/// `matchRepoDigestOrExact` would refuse for a pull by tag.
pub fn policy(registry: &str) -> Vec<u8> {
    let v = json!({
        "default": [{"type": "reject"}],
        "transports": {
            "docker": {
                registry: [{
                    "type": "sigstoreSigned",
                    "keyPath": format!("/usr/{KEY_PATH}"),
                    "signedIdentity": {"type": "matchRepository"},
                }],
            },
        },
    });
    let mut bytes = serde_json::to_vec_pretty(&v).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

/// containers-registries.d(5): look for sigstore signatures as OCI
/// attachments (cosign's `sha256-<hex>.sig` tags) in `registry`.
pub fn registries_d(registry: &str) -> String {
    format!("docker:\n  {registry}:\n    use-sigstore-attachments: true\n")
}

/// CRI-O's drop-in: crun (from forge's `crun` package) as the default
/// runtime, as CRI-O's own static bundle sets it.
pub const CRIO_CRUN: &str = "# Generated by forge: crun is CRI-O's default runtime.
[crio.runtime]
default_runtime = \"crun\"

[crio.runtime.runtimes.crun]
runtime_path = \"/usr/bin/crun\"
runtime_type = \"oci\"
runtime_root = \"/run/crun\"
";

#[cfg(test)]
mod tests;
