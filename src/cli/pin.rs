//! `forge pin REF...`: pin published image digests in a kustomize manifests
//! checkout, as one commit on a new branch (see docs/ci.md).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result};

use crate::ci::pin::{self, Pinned};
use crate::output::Shell;

/// Arguments of `forge pin`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Published images: REPOSITORY[:TAG]@sha256:<hex> (as `forge publish` prints them).
    #[arg(value_name = "REF", required = true)]
    refs: Vec<String>,
    /// The manifests checkout (a git work tree with kustomization.yaml files).
    #[arg(long, default_value = ".", value_name = "DIR")]
    manifests: PathBuf,
    /// The tag written as `newTag` for references that carry none.
    #[arg(long, value_name = "TAG")]
    tag: Option<String>,
    /// The branch the commit goes on (default: forge/pin-TAG).
    #[arg(long, value_name = "NAME")]
    branch: Option<String>,
}

/// Run `forge pin`.
pub fn run(shell: &Shell, args: Args) -> Result<ExitCode> {
    let pins = args
        .refs
        .iter()
        .map(|r| pin::parse_reference(r, args.tag.as_deref()))
        .collect::<Result<Vec<_>, _>>()?;
    let branch = args
        .branch
        .clone()
        .unwrap_or_else(|| format!("forge/pin-{}", pins[0].tag));
    let mut message = format!("Pin {} image digest(s)\n\n", pins.len());
    for p in &pins {
        message.push_str(&format!("{}:{}@{}\n", p.repository, p.tag, p.digest));
    }
    let done = pin::pin(&args.manifests, &pins, &branch, &message)
        .with_context(|| format!("pinning images in {}", args.manifests.display()))?;
    match &done {
        Pinned::AlreadyPinned => {
            shell.status("Pinned", "every image already pinned: nothing to commit")
        }
        Pinned::Committed {
            branch,
            commit,
            files,
        } => shell.status(
            "Pinned",
            format!(
                "{} on branch {branch} ({})",
                &commit[..12],
                files.join(", ")
            ),
        ),
    }
    shell.event(&match done {
        Pinned::AlreadyPinned => serde_json::json!({"event": "pin", "committed": false}),
        Pinned::Committed {
            branch,
            commit,
            files,
        } => serde_json::json!({
            "event": "pin", "committed": true, "branch": branch, "commit": commit, "files": files,
        }),
    });
    Ok(ExitCode::SUCCESS)
}
