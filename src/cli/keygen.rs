//! `forge keygen`: create the signing key pairs in `keys/`: RSA-4096 for apk
//! packages and indexes, and ECDSA P-256 (cosign format) for images.

use std::process::ExitCode;

use anyhow::{Context as _, Result};

use crate::settings::Settings;
use crate::sign;

/// Arguments of `forge keygen`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Key name prefix; files are `keys/NAME-<hex time>.rsa` and `.rsa.pub`.
    #[arg(default_value = sign::DEFAULT_KEY_NAME)]
    name: String,
    /// Only the ECDSA P-256 image signing key (cosign format:
    /// `keys/NAME-<hex>.cosign.key`, encrypted with `COSIGN_PASSWORD`, and
    /// `keys/NAME-<hex>.cosign.pub`).
    #[arg(long, conflicts_with = "apk")]
    image: bool,
    /// Only the RSA key for apk packages and indexes.
    #[arg(long)]
    apk: bool,
}

/// Run `forge keygen`.
pub fn run(settings: &Settings, args: Args) -> Result<ExitCode> {
    let dir = settings.keys_dir();
    if args.image {
        return image_key(settings, &args.name);
    }
    if !args.apk {
        image_key(settings, &args.name)?;
    }
    let key = sign::generate(&dir, &args.name, sign::KEY_BITS)
        .with_context(|| format!("generating a key in {}", dir.display()))?;
    settings.shell.status(
        "Generated",
        format!("{} (private, keep it out of git)", key.private.display()),
    );
    settings.shell.status(
        "Generated",
        format!("{} (public, commit it)", key.public.display()),
    );
    settings.shell.event(&serde_json::json!({
        "event": "keygen",
        "private": key.private,
        "public": key.public,
    }));
    Ok(ExitCode::SUCCESS)
}

/// `forge keygen --image`: the cosign-format image key pair.
fn image_key(settings: &Settings, name: &str) -> Result<ExitCode> {
    use crate::imagesign::keys;
    sign::check_key_name(name)?;
    let dir = settings.keys_dir();
    let password = std::env::var(keys::PASSWORD_ENV).unwrap_or_default();
    if password.is_empty() {
        settings.shell.note(format!(
            "{} is empty: the private key is encrypted with an empty password",
            keys::PASSWORD_ENV
        ));
    }
    let key = keys::generate(&dir, name, password.as_bytes())
        .with_context(|| format!("generating an image key in {}", dir.display()))?;
    settings.shell.status(
        "Generated",
        format!("{} (private, keep it out of git)", key.private.display()),
    );
    settings.shell.status(
        "Generated",
        format!("{} (public, commit it)", key.public.display()),
    );
    settings.shell.event(&serde_json::json!({
        "event": "keygen",
        "kind": "image",
        "private": key.private,
        "public": key.public,
    }));
    Ok(ExitCode::SUCCESS)
}
