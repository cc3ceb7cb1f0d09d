//! `forge pull-repo REF --out DIR`: fetch a package repository published with
//! `forge publish --repo`, check every blob's digest, then verify each
//! `APKINDEX.tar.gz` and every package it names against the trusted keys.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result};

use crate::registry::{Reference, artifact};
use crate::settings::Settings;
use crate::sign::TrustedKeys;

/// Arguments of `forge pull-repo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The artifact: HOST[:PORT]/REPO[:TAG|@DIGEST].
    #[arg(value_name = "REF")]
    reference: String,
    /// Where to write the repository (`DIR/<arch>/…`).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Trust the `*.rsa.pub` keys in DIR instead of the project's `keys/`.
    #[arg(long, value_name = "DIR")]
    keys_dir: Option<PathBuf>,
    /// Plain HTTP.
    #[arg(long)]
    insecure: bool,
}

/// Run `forge pull-repo`.
pub fn run(settings: &Settings, args: Args) -> Result<ExitCode> {
    let r = Reference::parse(&args.reference)?;
    let client = super::publish::client_for(settings, &r.registry, args.insecure)?;
    let files = artifact::pull_repository(&client, &r.repository, &r.selector(), &args.out)
        .with_context(|| format!("pulling {}", args.reference))?;
    let dir = args.keys_dir.clone().unwrap_or_else(|| settings.keys_dir());
    let trusted = TrustedKeys::load_dir(&dir)
        .with_context(|| format!("loading keys from {}", dir.display()))?;
    let mut failed = 0;
    for f in files.iter().filter(|f| f.ends_with("APKINDEX.tar.gz")) {
        match super::verify::verify_index(f, &trusted) {
            Ok(signer) => settings
                .shell
                .status("Verified", format!("{} (signed by {signer})", f.display())),
            Err(problem) => {
                failed += 1;
                settings.shell.error(format!("{}: {problem}", f.display()));
            }
        }
    }
    settings.shell.status(
        "Pulled",
        format!(
            "{} files from {} into {}",
            files.len(),
            args.reference,
            args.out.display()
        ),
    );
    settings.shell.event(&serde_json::json!({
        "event": "pull-repo", "reference": args.reference, "files": files, "ok": failed == 0,
    }));
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
