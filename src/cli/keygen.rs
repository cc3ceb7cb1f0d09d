//! `forge keygen`: create an RSA-4096 signing key pair in `keys/`.

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
}

/// Run `forge keygen`.
pub fn run(settings: &Settings, args: Args) -> Result<ExitCode> {
    let dir = settings.keys_dir();
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
