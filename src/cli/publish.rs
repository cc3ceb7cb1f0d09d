//! `forge publish [NAME...] --registry HOST[:PORT]/PREFIX`: push built images
//! (signed, with SBOM and provenance attestations) and optionally the package
//! repository as an OCI artifact. See `docs/publish.md`.

use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};

use crate::imagesign::keys;
use crate::registry::publish::{ImageToPublish, PublishOptions, publish_image};
use crate::registry::push::{self, PushOptions, PushReport};
use crate::registry::state::MountState;
use crate::registry::{Client, Target, artifact};
use crate::settings::Settings;

/// Arguments of `forge publish`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Images to publish (default: every `images/*.toml` that has been built).
    #[arg(value_name = "NAME")]
    names: Vec<String>,
    /// Registry and repository prefix; image NAME goes to HOST/PREFIX/NAME.
    #[arg(long, env = "FORGE_REGISTRY", value_name = "HOST[:PORT][/PREFIX]")]
    registry: String,
    /// Plain HTTP (for a registry on loopback or a lab network).
    #[arg(long)]
    pub insecure: bool,
    /// Only show what would be pushed.
    #[arg(long)]
    dry_run: bool,
    /// Also push the package repository (out/repo) as an OCI artifact.
    #[arg(long)]
    repo: bool,
    /// Push only the package repository, no images.
    #[arg(long, conflicts_with = "names")]
    repo_only: bool,
    /// Repository name (under PREFIX) of the package repository artifact.
    #[arg(long, default_value = "packages", value_name = "NAME")]
    repo_name: String,
    /// Publish without signatures and attestations.
    #[arg(long)]
    no_sign: bool,
    /// An extra tag for every image (repeatable).
    #[arg(long = "tag", value_name = "TAG")]
    tags: Vec<String>,
    /// Parallel blob uploads.
    #[arg(long, default_value_t = 4, value_name = "N")]
    uploads: usize,
    /// Upload blobs in PATCH chunks of this many bytes (default: one PUT).
    #[arg(long, hide = true, value_name = "BYTES")]
    chunk_size: Option<u64>,
}

/// A registry client for `host` with the credentials given for it, checked
/// to answer (see [`crate::registry::connect`]); `destination`: forge writes
/// to `host` on the user's behalf (publish, sign-image).
pub(super) fn client_for(
    settings: &Settings,
    host: &str,
    insecure: bool,
    destination: bool,
) -> Result<Client> {
    crate::registry::connect(&settings.shell, host, insecure, destination).with_context(|| {
        let hint = if insecure {
            ""
        } else {
            " (for a plain-HTTP registry pass --insecure)"
        };
        format!("contacting registry {host}{hint}")
    })
}

fn counts(r: &PushReport) -> String {
    format!(
        "{} blobs pushed ({:.1} MiB), {} mounted, {} already there; {} manifests pushed, {} already there; {} tags set",
        r.blobs_pushed,
        r.bytes_pushed as f64 / (1 << 20) as f64,
        r.blobs_mounted,
        r.blobs_skipped,
        r.manifests_pushed,
        r.manifests_skipped,
        r.tags_set
    )
}

fn report_json(r: &PushReport) -> serde_json::Value {
    serde_json::json!({
        "blobs_pushed": r.blobs_pushed,
        "bytes_pushed": r.bytes_pushed,
        "blobs_mounted": r.blobs_mounted,
        "blobs_skipped": r.blobs_skipped,
        "manifests_pushed": r.manifests_pushed,
        "manifests_skipped": r.manifests_skipped,
        "tags_set": r.tags_set,
        "tags_unchanged": r.tags_unchanged,
        "missing": r.missing.iter().map(|d| d.as_str()).collect::<Vec<_>>(),
    })
}

/// Run `forge publish`.
pub fn run(settings: &Settings, args: Args) -> Result<ExitCode> {
    let shell = &settings.shell;
    let target = Target::parse(&args.registry)?;
    // One writer on out/ at a time: publish records its upload state under
    // out/registry, and taking the lock also sweeps what a killed run left.
    let _lock = crate::pipeline::OutLock::acquire(settings)?;
    let names = if args.repo_only {
        Vec::new()
    } else if args.names.is_empty() {
        let all = crate::pipeline::images::image_names(&settings.images_dir())?;
        let built: Vec<String> = all
            .into_iter()
            .filter(|n| {
                let out = &settings.out;
                out.join("images").join(n).join("index.json").is_file()
                    || out
                        .join("os")
                        .join(format!("{n}.payload"))
                        .join("index.json")
                        .is_file()
            })
            .collect();
        if built.is_empty() && !args.repo {
            bail!("no built image to publish (run `forge build` or `forge image NAME` first)");
        }
        built
    } else {
        args.names.clone()
    };
    let key = if args.no_sign || names.is_empty() {
        None
    } else {
        Some(keys::find_key(&settings.keys_dir()).context(
            "loading the image signing key (create one with `forge keygen --image`, or pass --no-sign)",
        )?)
    };
    let client = client_for(settings, &target.registry, args.insecure, true)?;
    let state_dir = settings.out.join("registry");
    let mut state = MountState::load(&state_dir, &target.registry);
    let push_opts = PushOptions {
        jobs: args.uploads.max(1),
        chunk_size: args.chunk_size,
        dry_run: args.dry_run,
    };
    let opts = PublishOptions {
        target: &target,
        key: key.as_ref(),
        extra_tags: args.tags.clone(),
        layout_tags: true,
        push: push_opts.clone(),
    };
    let started = std::time::Instant::now();
    for name in &names {
        let image = ImageToPublish::from_out(&settings.out, &settings.recipes_dir(), name);
        let p = publish_image(&client, &image, &opts, &mut state, shell)
            .with_context(|| format!("publishing image `{name}` to {}", target.registry))?;
        let verb = if args.dry_run {
            "Would push"
        } else {
            "Published"
        };
        shell.status(
            verb,
            format!("{}@{} ({})", p.repository, p.digest, counts(&p.report)),
        );
        if args.dry_run {
            for d in &p.report.missing {
                shell.status("Missing", d.as_str());
            }
        }
        let mut ev = report_json(&p.report);
        ev["event"] = "publish".into();
        ev["name"] = p.name.clone().into();
        ev["repository"] = p.repository.clone().into();
        ev["digest"] = p.digest.as_str().into();
        ev["signed"] = p.signed.into();
        ev["attested"] = p.attested.into();
        ev["sbom_referrers"] = p.sbom_referrers.into();
        ev["dry_run"] = args.dry_run.into();
        shell.event(&ev);
        if !shell.is_json() {
            shell.data(format!("{}@{}", p.repository, p.digest));
        }
    }
    if args.repo || args.repo_only {
        let repo = target.repository(&args.repo_name);
        let (plan, digest) = artifact::plan_repository(&settings.repo_dir(), &repo, "latest")?;
        let r = push::push(&client, &plan, &push_opts, &mut state, shell)
            .with_context(|| format!("publishing the package repository to {}", target.registry))?;
        let reference = format!("{}/{repo}", target.registry);
        let verb = if args.dry_run {
            "Would push"
        } else {
            "Published"
        };
        shell.status(
            verb,
            format!("packages {reference}@{digest} ({})", counts(&r)),
        );
        let mut ev = report_json(&r);
        ev["event"] = "publish-repo".into();
        ev["repository"] = reference.clone().into();
        ev["digest"] = digest.as_str().into();
        ev["dry_run"] = args.dry_run.into();
        shell.event(&ev);
        if !shell.is_json() {
            shell.data(format!("{reference}@{digest}"));
        }
    }
    if !args.dry_run {
        state.save()?;
    }
    shell.verbose(format!(
        "{} requests in {:.2}s",
        client.request_count(),
        started.elapsed().as_secs_f64()
    ));
    shell.event(&serde_json::json!({"event": "publish-done", "requests": client.request_count()}));
    Ok(ExitCode::SUCCESS)
}
