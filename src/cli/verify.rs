//! `forge verify PATH...`: check packages (`.apk`) and indexes
//! (`APKINDEX.tar.gz`) against the trusted keys in `keys/`, naming exactly
//! which part is wrong: signature, untrusted key, control, datahash or a
//! file's checksum. For an index, every package it names must sit next to
//! it, match its `C:` and `S:`, and verify in full.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result};

use crate::apk::index::Index;
use crate::apk::{PackageError, Trust, VerifiedPackage};
use crate::settings::Settings;
use crate::sign::TrustedKeys;

/// Arguments of `forge verify`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Package files and APKINDEX.tar.gz files.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Trust the `*.rsa.pub` keys in DIR instead of the project's `keys/`.
    #[arg(long, value_name = "DIR")]
    keys_dir: Option<PathBuf>,
}

/// Run `forge verify`.
pub fn run(settings: &Settings, args: Args) -> Result<ExitCode> {
    let dir = args.keys_dir.clone().unwrap_or_else(|| settings.keys_dir());
    let trusted = crate::sign::load_trust(settings, &dir)
        .with_context(|| format!("loading keys from {}", dir.display()))?;
    if trusted.names().next().is_none() {
        settings
            .shell
            .warn(format!("no trusted keys (*.rsa.pub) in {}", dir.display()));
    }
    let mut failed = 0;
    for path in &args.paths {
        let result = if is_index(path) {
            verify_index(path, &trusted).map(|index| index.signer)
        } else {
            verify_package(path, &trusted)
        };
        match result {
            Ok(signer) => {
                settings.shell.status(
                    "Verified",
                    format!("{} (signed by {signer})", path.display()),
                );
                settings
                    .shell
                    .event(&serde_json::json!({"event": "verify", "path": path, "ok": true, "key": signer}));
            }
            Err(problem) => {
                failed += 1;
                settings
                    .shell
                    .error(format!("{}: {problem}", path.display()));
                settings
                    .shell
                    .event(&serde_json::json!({"event": "verify", "path": path, "ok": false, "error": problem}));
            }
        }
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn is_index(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.ends_with(".tar.gz"))
}

fn verify_package(path: &Path, trusted: &TrustedKeys) -> Result<String, String> {
    let pkg = VerifiedPackage::open(path, Trust::Signed(trusted))
        .map_err(|e| crate::util::error_chain(&e))?;
    Ok(pkg.signer.unwrap_or_default())
}

/// Verify an index and every package it names (which must sit next to it);
/// returns the index.
pub(super) fn verify_index(path: &Path, trusted: &TrustedKeys) -> Result<Index, String> {
    let index = Index::read(path, trusted).map_err(|e| crate::util::error_chain(&e))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    for entry in &index.entries {
        let file = dir.join(entry.file_name());
        let pkg = VerifiedPackage::open(&file, Trust::SignedAndIndexed(trusted, &entry.checksum))
            .map_err(|e| match e {
                PackageError::Identity { .. } => format!(
                    "index entry {} has C:{} but the file's control section hashes to a different value",
                    entry.file_name(),
                    entry.checksum_text()
                ),
                e => format!(
                    "index names {}: {}",
                    entry.file_name(),
                    crate::util::error_chain(&e)
                ),
            })?;
        if pkg.file_size != entry.size {
            return Err(format!(
                "index entry {} has S:{} but the file has {} bytes",
                entry.file_name(),
                entry.size,
                pkg.file_size
            ));
        }
    }
    Ok(index)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apk::tar::Kind;
    use crate::apk::tests::{craft_package, raw_data_tar};

    /// `forge verify` refuses a correctly signed package holding a device
    /// entry (before, the check skipped non-file entries and said "ok").
    #[test]
    fn verify_refuses_a_device_entry() {
        let dir = tempfile::tempdir().unwrap();
        let tar = raw_data_tar(&[(Kind::Other(b'3'), "dev/mem", "", b"")]);
        let (bytes, _) = craft_package("evil", &tar);
        let path = dir.path().join("evil.apk");
        std::fs::write(&path, bytes).unwrap();
        let err = verify_package(&path, &crate::sign::tests::test_trust()).unwrap_err();
        assert_eq!(
            err,
            "entry `dev/mem`: character device entries are not allowed in packages"
        );
    }
}
