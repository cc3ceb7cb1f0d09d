//! `forge sign REF`: sign an image that is already in a registry with the
//! project's image key (cosign's `.sig` format): the manifest REF names
//! and, for an index, every platform manifest it lists.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result, anyhow};

use crate::imagesign::keys::{self, ImageKey};
use crate::registry::Reference;
use crate::registry::push::{self, Plan, PushOptions, push_scopes};
use crate::registry::sign::plan_signature;
use crate::registry::state::MountState;
use crate::settings::Settings;

/// Arguments of `forge sign`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The image: HOST[:PORT]/REPO[:TAG|@DIGEST].
    #[arg(value_name = "REF")]
    reference: String,
    /// Private key file (default: FORGE_IMAGE_SIGNING_KEY or the newest keys/*.cosign.key).
    #[arg(long, value_name = "FILE")]
    key: Option<PathBuf>,
    /// Plain HTTP.
    #[arg(long)]
    insecure: bool,
}

/// Run `forge sign`.
pub fn run(settings: &Settings, args: Args) -> Result<ExitCode> {
    let r = Reference::parse(&args.reference)?;
    let key = match &args.key {
        Some(p) => ImageKey::open(
            p,
            std::env::var(keys::PASSWORD_ENV)
                .unwrap_or_default()
                .as_bytes(),
        )?,
        None => keys::find_key(&settings.keys_dir())?,
    };
    let client = super::publish::client_for(settings, &r.registry, args.insecure, true)?;
    // Hash what the registry serves rather than trusting its digest header.
    let (_, manifest) = client
        .get_manifest(&r.repository, &r.selector(), &push_scopes(&r.repository))?
        .ok_or_else(|| anyhow!("{} not found in the registry", args.reference))?;
    let digest = crate::oci::Digest::of(&manifest);
    if let Some(d) = &r.digest
        && *d != digest
    {
        return Err(anyhow!("registry returned {digest} for {}", args.reference));
    }
    let mut plan = Plan::new(&r.repository);
    let mut new = plan_signature(&client, &mut plan, &r.repository_ref(), &digest, &key)?;
    // An index's platform manifests too, as `forge publish` signs them (a
    // node checks the one it pulls). Not JSON: no platform manifests.
    let root = serde_json::from_slice(&manifest).unwrap_or(serde_json::Value::Null);
    for child in crate::registry::publish::platform_manifests(&root) {
        new |= plan_signature(&client, &mut plan, &r.repository_ref(), &child, &key)?;
    }
    if new {
        let mut state = MountState::load(&settings.out.join("registry"), &r.registry);
        push::push(
            &client,
            &plan,
            &PushOptions::default(),
            &mut state,
            &settings.shell,
        )
        .with_context(|| format!("storing the signature of {}", args.reference))?;
        settings
            .shell
            .status("Signed", format!("{}@{digest}", r.repository_ref()));
    } else {
        settings.shell.status(
            "Fresh",
            format!(
                "{}@{digest} is already signed by this key",
                r.repository_ref()
            ),
        );
    }
    settings.shell.event(&serde_json::json!({
        "event": "sign", "repository": r.repository_ref(), "digest": digest.as_str(), "new": new,
    }));
    Ok(ExitCode::SUCCESS)
}
