//! `forge update [NAME...]`: check release feeds, propose new versions as
//! branches (`update/NAME-VERSION`), optionally prebuilt and published under
//! `VERSION-prebuild`. See `docs/update.md`.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, Result};

use crate::imagesign::keys;
use crate::registry::publish::{ImageToPublish, PublishOptions, publish_image};
use crate::registry::push::{self, PushOptions};
use crate::registry::state::MountState;
use crate::registry::{Target, artifact};
use crate::settings::Settings;
use crate::update::{self, FetchOptions, Outcome, Prebuild, UpdateOptions};

/// Arguments of `forge update`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Recipes to check (default: every recipe with an [update] section).
    #[arg(value_name = "NAME")]
    names: Vec<String>,
    /// Only report what would be done: no download, edit or branch.
    #[arg(long)]
    dry_run: bool,
    /// Build each update, its reverse dependencies and images, and publish
    /// them under VERSION-prebuild before making its branch.
    #[arg(long, requires = "registry", conflicts_with = "dry_run")]
    prebuild: bool,
    /// Registry and prefix for --prebuild.
    #[arg(long, env = "FORGE_REGISTRY", value_name = "HOST[:PORT][/PREFIX]")]
    registry: Option<String>,
    /// Plain HTTP to the registry (loopback or lab network).
    #[arg(long)]
    insecure: bool,
    /// Seconds to wait for a feed to connect or send more bytes.
    #[arg(long, default_value_t = 30, value_name = "SECS")]
    feed_timeout: u64,
    /// The largest feed accepted, in bytes.
    #[arg(long, default_value_t = 4 << 20, value_name = "BYTES")]
    max_feed_size: u64,
    /// Milliseconds between two requests to one host.
    #[arg(long, default_value_t = 200, value_name = "MS")]
    host_interval: u64,
    /// Feeds fetched at once.
    #[arg(long, default_value_t = 8, value_name = "N")]
    feeds: usize,
    /// Where `github = "owner/repo"` feeds are served from.
    #[arg(
        long,
        env = "FORGE_GITHUB_URL",
        default_value = "https://github.com",
        hide = true
    )]
    github_url: String,
}

/// Run `forge update`.
pub fn run(settings: &Settings, args: Args) -> Result<ExitCode> {
    let publisher = match (&args.registry, args.prebuild) {
        (Some(r), true) => Some(Publisher {
            target: Target::parse(r)?,
            insecure: args.insecure,
        }),
        _ => None,
    };
    let opts = UpdateOptions {
        names: args.names.clone(),
        dry_run: args.dry_run,
        fetch: FetchOptions {
            timeout: Duration::from_secs(args.feed_timeout.max(1)),
            max_bytes: args.max_feed_size,
            per_host_interval: Duration::from_millis(args.host_interval),
            workers: args.feeds.max(1),
        },
        github_url: args.github_url.clone(),
        prebuild: publisher.as_ref().map(|p| p as &dyn Prebuild),
    };
    let outcomes = update::run(settings, &opts);
    let mut failed = 0;
    for (name, o) in &outcomes {
        failed += usize::from(matches!(o, Outcome::Failed(_)));
        report(settings, name, o);
    }
    let proposed = outcomes
        .iter()
        .filter(|(_, o)| matches!(o, Outcome::Proposed { .. } | Outcome::WouldUpdate { .. }))
        .count();
    settings.shell.status(
        "Checked",
        format!(
            "{} recipe{}: {proposed} update{}, {failed} failed",
            outcomes.len(),
            if outcomes.len() == 1 { "" } else { "s" },
            if proposed == 1 { "" } else { "s" }
        ),
    );
    Ok(if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn report(settings: &Settings, name: &str, o: &Outcome) {
    let shell = &settings.shell;
    let mut ev = serde_json::json!({"event": "update", "recipe": name});
    match o {
        Outcome::UpToDate {
            current,
            newest,
            not_modified,
        } => {
            let why = if *not_modified {
                " (feed not modified)"
            } else {
                ""
            };
            shell.verbose(format!("{name} {current} is up to date{why}"));
            ev["status"] = if *not_modified {
                "not-modified"
            } else {
                "up-to-date"
            }
            .into();
            ev["current"] = current.as_str().into();
            ev["newest"] = newest.clone().into();
        }
        Outcome::AlreadyProposed { branch } => {
            shell.status("Proposed", format!("{name}: {branch} exists already"));
            ev["status"] = "already-proposed".into();
            ev["branch"] = branch.as_str().into();
        }
        Outcome::WouldUpdate {
            from,
            to,
            branch,
            dependents,
        } => {
            let deps = deps_text(dependents);
            shell.status(
                "Would update",
                format!("{name} {from} -> {to} on {branch}{deps}"),
            );
            ev["status"] = "would-update".into();
            ev["from"] = from.as_str().into();
            ev["to"] = to.as_str().into();
            ev["branch"] = branch.as_str().into();
            ev["dependents"] = dependents.clone().into();
        }
        Outcome::Proposed {
            from,
            to,
            branch,
            commit,
            dependents,
            published,
        } => {
            let deps = deps_text(dependents);
            shell.status(
                "Updated",
                format!("{name} {from} -> {to} on {branch}{deps}"),
            );
            for p in published {
                shell.status("Prebuilt", p);
            }
            ev["status"] = "proposed".into();
            ev["from"] = from.as_str().into();
            ev["to"] = to.as_str().into();
            ev["branch"] = branch.as_str().into();
            ev["commit"] = commit.as_str().into();
            ev["dependents"] = dependents.clone().into();
            ev["published"] = published.clone().into();
        }
        Outcome::Failed(msg) => {
            shell.error(msg);
            ev["status"] = "failed".into();
            ev["error"] = msg.as_str().into();
        }
    }
    shell.event(&ev);
}

fn deps_text(deps: &[String]) -> String {
    if deps.is_empty() {
        String::new()
    } else {
        format!(" (release bumped: {})", deps.join(", "))
    }
}

/// Publishes a prebuild with `forge publish`'s machinery.
struct Publisher {
    target: Target,
    insecure: bool,
}

impl Prebuild for Publisher {
    fn publish(
        &self,
        settings: &Settings,
        images: &[String],
        recipe: &str,
        version: &str,
    ) -> Result<Vec<String>> {
        let shell = &settings.shell;
        let key = keys::find_key(&settings.keys_dir())
            .context("loading the image signing key (create one with `forge keygen --image`)")?;
        let client =
            super::publish::client_for(settings, &self.target.registry, self.insecure, true)?;
        let mut state = MountState::load(&settings.out.join("registry"), &self.target.registry);
        let push_opts = PushOptions {
            jobs: 4,
            chunk_size: None,
            dry_run: false,
        };
        let tag = format!("{version}-prebuild");
        let opts = PublishOptions {
            target: &self.target,
            key: Some(&key),
            extra_tags: vec![tag.clone()],
            layout_tags: false,
            push: push_opts.clone(),
        };
        let mut out = Vec::new();
        for name in images {
            let image = ImageToPublish::from_out(&settings.out, &settings.recipes_dir(), name);
            let p = publish_image(&client, &image, &opts, &mut state, shell)
                .with_context(|| format!("publishing image `{name}`"))?;
            out.push(format!("{}:{tag}@{}", p.repository, p.digest));
        }
        let repo = self.target.repository("packages");
        let repo_tag = format!("{recipe}-{version}-prebuild");
        let (plan, digest) = artifact::plan_repository(&settings.repo_dir(), &repo, &repo_tag)?;
        push::push(&client, &plan, &push_opts, &mut state, shell)
            .context("publishing the package repository")?;
        out.push(format!(
            "{}/{repo}:{repo_tag}@{digest}",
            self.target.registry
        ));
        state.save()?;
        Ok(out)
    }
}
