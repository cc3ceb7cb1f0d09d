//! `forge verify-image REF --key PUB`: check an image's cosign signature and
//! its attestations in the registry. A separate command from `forge verify`
//! (files) so an argument is never guessed to be a path or a reference.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, anyhow};

use crate::imagesign::attach::{attestation_tag, signature_tag};
use crate::imagesign::keys::load_public;
use crate::imagesign::payload::{PREDICATE_SLSA, PREDICATE_SPDX};
use crate::imagesign::verify::{verify_attestations, verify_signatures};
use crate::oci::Digest;
use crate::registry::Reference;
use crate::settings::Settings;

/// Arguments of `forge verify-image`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The image: HOST[:PORT]/REPO[:TAG|@DIGEST].
    #[arg(value_name = "REF")]
    reference: String,
    /// The public key (PEM, e.g. keys/NAME.cosign.pub).
    #[arg(long, value_name = "PUB")]
    key: PathBuf,
    /// Plain HTTP.
    #[arg(long)]
    insecure: bool,
    /// Check only the signature, not the attestations.
    #[arg(long)]
    signature_only: bool,
    /// An attestation predicate type that must verify (repeatable; default:
    /// the SPDX SBOM and SLSA provenance v1 that `forge publish` writes).
    #[arg(long = "predicate-type", value_name = "URI")]
    predicate_types: Vec<String>,
}

/// Run `forge verify-image`.
pub fn run(settings: &Settings, args: Args) -> Result<ExitCode> {
    let shell = &settings.shell;
    let r = Reference::parse(&args.reference)?;
    let key = load_public(&args.key)?;
    let client = super::publish::client_for(settings, &r.registry, args.insecure, false)?;
    let scopes = vec![format!("repository:{}:pull", r.repository)];
    // Hash what the registry serves rather than trusting its digest header.
    let (_, manifest) = client
        .get_manifest(&r.repository, &r.selector(), &scopes)?
        .ok_or_else(|| anyhow!("{} not found in the registry", args.reference))?;
    let digest = crate::oci::Digest::of(&manifest);
    if let Some(d) = &r.digest
        && *d != digest
    {
        return Err(anyhow!("registry returned {digest} for {}", args.reference));
    }
    let repo = r.repository.clone();
    let fetch = |d: &Digest| {
        client
            .get_blob(&repo, d, &scopes)
            .map_err(|e| e.to_string())
    };
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        shell.error(format!("{}@{digest}: {what}: {e}", r.repository_ref()));
        shell.event(&serde_json::json!({
            "event": "verify-image", "reference": args.reference, "digest": digest.as_str(),
            "ok": false, "error": format!("{what}: {e}"),
        }));
        Ok(ExitCode::FAILURE)
    };
    let sig_tag = signature_tag(&digest);
    let sig = client.get_manifest(&repo, &sig_tag, &scopes)?;
    if let Err(e) = verify_signatures(
        &sig_tag,
        sig.as_ref().map(|(_, b)| b.as_slice()),
        &fetch,
        &key,
        &digest,
        &r.repository_ref(),
    ) {
        return fail("signature", &e);
    }
    let mut predicates = Vec::new();
    let required: Vec<&str> = if args.predicate_types.is_empty() {
        vec![PREDICATE_SPDX, PREDICATE_SLSA]
    } else {
        args.predicate_types.iter().map(String::as_str).collect()
    };
    if !args.signature_only {
        let att_tag = attestation_tag(&digest);
        let att = client.get_manifest(&repo, &att_tag, &scopes)?;
        match verify_attestations(
            &att_tag,
            att.as_ref().map(|(_, b)| b.as_slice()),
            &fetch,
            &key,
            &digest,
            &required,
        ) {
            Ok(p) => predicates = p,
            Err(e) => return fail("attestation", &e),
        }
    }
    shell.status(
        "Verified",
        format!(
            "{}@{digest}: signature{}",
            r.repository_ref(),
            if predicates.is_empty() {
                String::new()
            } else {
                format!(", attestations {}", predicates.join(", "))
            }
        ),
    );
    shell.event(&serde_json::json!({
        "event": "verify-image", "reference": args.reference, "digest": digest.as_str(),
        "ok": true, "predicates": predicates,
    }));
    Ok(ExitCode::SUCCESS)
}
