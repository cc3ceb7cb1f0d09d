//! `forge verify-image REF --key PUB`: check an image's cosign signature and
//! its attestations in the registry. A separate command from `forge verify`
//! (files) so an argument is never guessed to be a path or a reference.
//!
//! An image index is accepted only when it and every platform manifest it
//! lists carry a good signature: a node (containers/image) checks the
//! signature of the platform manifest it pulls, not the index's. A platform
//! manifest given by digest is checked as a node checks it; its attestations
//! are about the index, so they are checked there unless `--predicate-type`
//! asks for them at the manifest.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, anyhow};
use openssl::pkey::{PKey, Public};

use crate::imagesign::attach::{attestation_tag, signature_tag};
use crate::imagesign::keys::load_public;
use crate::imagesign::payload::{PREDICATE_SLSA, PREDICATE_SPDX};
use crate::imagesign::verify::{VerifyError, verify_attestations, verify_signatures};
use crate::oci::Digest;
use crate::registry::{Client, Reference};
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

/// One repository of the registry, read with a pull scope.
struct Repo<'a> {
    client: &'a Client,
    name: String,
    scopes: Vec<String>,
    reference: String,
}

impl Repo<'_> {
    fn fetch(&self, d: &Digest) -> Result<Vec<u8>, String> {
        self.client
            .get_blob(&self.name, d, &self.scopes)
            .map_err(|e| e.to_string())
    }

    fn manifest(&self, tag: &str) -> Result<Option<Vec<u8>>> {
        Ok(self
            .client
            .get_manifest(&self.name, tag, &self.scopes)?
            .map(|(_, b)| b))
    }

    fn signature(&self, key: &PKey<Public>, digest: &Digest) -> Result<Result<(), VerifyError>> {
        let tag = signature_tag(digest);
        let sig = self.manifest(&tag)?;
        let fetch = |d: &Digest| self.fetch(d);
        Ok(
            verify_signatures(&tag, sig.as_deref(), &fetch, key, digest, &self.reference)
                .map(|_| ()),
        )
    }

    fn attestations(
        &self,
        key: &PKey<Public>,
        digest: &Digest,
        required: &[&str],
    ) -> Result<Result<Vec<String>, VerifyError>> {
        let tag = attestation_tag(digest);
        let att = self.manifest(&tag)?;
        let fetch = |d: &Digest| self.fetch(d);
        Ok(verify_attestations(
            &tag,
            att.as_deref(),
            &fetch,
            key,
            digest,
            required,
        ))
    }
}

/// Run `forge verify-image`.
pub fn run(settings: &Settings, args: Args) -> Result<ExitCode> {
    let shell = &settings.shell;
    let r = Reference::parse(&args.reference)?;
    let key = load_public(&args.key)?;
    let client = super::publish::client_for(settings, &r.registry, args.insecure, false)?;
    let repo = Repo {
        client: &client,
        name: r.repository.clone(),
        scopes: vec![format!("repository:{}:pull", r.repository)],
        reference: r.repository_ref(),
    };
    // Hash what the registry serves rather than trusting its digest header.
    let manifest = repo
        .manifest(&r.selector())?
        .ok_or_else(|| anyhow!("{} not found in the registry", args.reference))?;
    let digest = Digest::of(&manifest);
    if let Some(d) = &r.digest
        && *d != digest
    {
        return Err(anyhow!("registry returned {digest} for {}", args.reference));
    }
    let root: serde_json::Value = serde_json::from_slice(&manifest).map_err(|e| {
        anyhow!(
            "{}: the registry served a manifest that is not JSON: {e}",
            args.reference
        )
    })?;
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        shell.error(format!("{}@{digest}: {what}: {e}", r.repository_ref()));
        shell.event(&serde_json::json!({
            "event": "verify-image", "reference": args.reference, "digest": digest.as_str(),
            "ok": false, "error": format!("{what}: {e}"),
        }));
        Ok(ExitCode::FAILURE)
    };
    if let Err(e) = repo.signature(&key, &digest)? {
        return fail("signature", &e);
    }
    let platforms = crate::registry::publish::platform_manifests(&root);
    for child in &platforms {
        if let Err(e) = repo.signature(&key, child)? {
            return fail(&format!("signature of platform manifest {child}"), &e);
        }
    }
    let is_index = root.get("manifests").is_some();
    let mut predicates = Vec::new();
    let required: Vec<&str> = if args.predicate_types.is_empty() {
        vec![PREDICATE_SPDX, PREDICATE_SLSA]
    } else {
        args.predicate_types.iter().map(String::as_str).collect()
    };
    // A platform manifest's attestations are its index's, unless asked for.
    let attest = !args.signature_only && (is_index || !args.predicate_types.is_empty());
    if attest {
        match repo.attestations(&key, &digest, &required)? {
            Ok(p) => predicates = p,
            Err(e) => return fail("attestation", &e),
        }
    }
    let mut what = vec!["signature".to_string()];
    if !platforms.is_empty() {
        what.push(format!(
            "{} platform manifest signature(s)",
            platforms.len()
        ));
    }
    if !predicates.is_empty() {
        what.push(format!("attestations {}", predicates.join(", ")));
    }
    shell.status(
        "Verified",
        format!("{}@{digest}: {}", r.repository_ref(), what.join(", ")),
    );
    shell.event(&serde_json::json!({
        "event": "verify-image", "reference": args.reference, "digest": digest.as_str(),
        "ok": true, "platforms": platforms.iter().map(Digest::as_str).collect::<Vec<_>>(),
        "predicates": predicates,
    }));
    Ok(ExitCode::SUCCESS)
}
