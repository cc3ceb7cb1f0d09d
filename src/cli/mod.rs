//! Command-line interface: clap definitions, global set-up, dispatch.
//!
//! Each subcommand lives in its own file with an `Args` struct and a `run`
//! function that parses nothing more and calls into the library stages.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::{Parser, Subcommand};

use crate::output::{ColorChoice, Shell, Verbosity};
use crate::settings::{self, ConfigFile, SandboxMode, Settings};

mod build;
mod ci;
mod fetch;
mod graph;
mod image;
mod index;
mod inspect;
mod keygen;
mod lint;
mod new;
mod os;
mod pin;
mod plan;
mod publish;
mod pull_repo;
mod sign_image;
mod update;
mod verify;
mod verify_image;

/// forge: build packages and images from source recipes, reproducibly.
#[derive(Debug, Parser)]
#[command(name = "forge", version, about, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

/// Flags every subcommand takes.
#[derive(Debug, clap::Args)]
pub struct GlobalArgs {
    /// Run as if started in DIR (the project root or below it).
    #[arg(short = 'C', long = "directory", global = true, value_name = "DIR")]
    directory: Option<PathBuf>,
    /// Parallel jobs (default: number of cores).
    #[arg(short = 'j', long, global = true, value_name = "N")]
    jobs: Option<usize>,
    /// More output (repeatable).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Only errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// Never contact upstream: use only the cache and mirrors.
    #[arg(long, global = true, env = "FORGE_OFFLINE")]
    offline: bool,
    /// Output folder.
    #[arg(long, global = true, value_name = "DIR", env = "FORGE_OUT")]
    out: Option<PathBuf>,
    /// Cache folder (distfiles, git mirrors).
    #[arg(long, global = true, value_name = "DIR", env = "FORGE_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// A mirror (URL or folder) tried before upstream; repeatable.
    #[arg(long = "mirror", global = true, value_name = "URL_OR_DIR")]
    mirrors: Vec<String>,
    /// Build isolation.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value_t,
        env = "FORGE_SANDBOX"
    )]
    sandbox: SandboxMode,
    /// When to use colour.
    #[arg(long, global = true, value_enum, default_value_t)]
    color: ColorChoice,
    /// Machine-readable events on stdout, one JSON object per line.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build recipes (default: forge.toml default-targets, else all) into packages, then images.
    Build(build::Args),
    /// Download and verify the sources of recipes (default: all).
    Fetch(fetch::Args),
    /// Build an OCI image from packages (`images/NAME.toml`).
    Image(image::Args),
    /// Rebuild and sign the repository index (out/repo/<arch>/APKINDEX.tar.gz).
    Index(index::Args),
    /// Show a package's metadata, dependencies and files.
    Inspect(inspect::Args),
    /// Create a signing key pair in keys/.
    Keygen(keygen::Args),
    /// CI pipelines from the build plan (`forge ci plan`).
    Ci(ci::Args),
    /// Pin published image digests in a kustomize manifests checkout (a commit on a branch).
    Pin(pin::Args),
    /// Print the build plan: every unit's key, verdict, reasons and dependencies.
    Plan(plan::Args),
    /// Print the dependency graph (build order, or Graphviz with --dot).
    Graph(graph::Args),
    /// Check every recipe and image definition without building.
    Lint(lint::Args),
    /// Scaffold a new recipe.
    New(new::Args),
    /// OS disk images (`kind = "os"`): `forge os build NAME`.
    Os(os::Args),
    /// Verify packages and indexes: signature, datahash, file checksums.
    Verify(verify::Args),
    /// Push built images (signed, with SBOM and provenance) to a registry.
    Publish(publish::Args),
    /// Sign an image in a registry (cosign format).
    Sign(sign_image::Args),
    /// Verify an image's signature and attestations in a registry.
    VerifyImage(verify_image::Args),
    /// Fetch a package repository published with `forge publish --repo`.
    PullRepo(pull_repo::Args),
    /// Check release feeds; propose new versions as branches (update/NAME-VERSION).
    Update(update::Args),
}

/// Entry point used by `main.rs`.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let verbosity = if cli.global.quiet {
        Verbosity::Quiet
    } else if cli.global.verbose > 0 {
        Verbosity::Verbose
    } else {
        Verbosity::Normal
    };
    let shell = Shell::new(verbosity, cli.global.color, cli.global.json);
    init_tracing(cli.global.verbose);
    match run(cli, shell.clone()) {
        Ok(code) => code,
        Err(err) => {
            let mut msg = format!("{err}");
            for cause in err.chain().skip(1) {
                msg.push_str(&format!("\n  caused by: {cause}"));
            }
            shell.error(msg);
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 | 1 => "warn",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("FORGE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .without_time()
        .try_init();
}

fn run(cli: Cli, shell: Shell) -> Result<ExitCode> {
    match cli.command {
        Command::New(args) => new::run(&settings_for(&cli.global, shell)?, args),
        Command::Build(args) => build::run(&settings_for(&cli.global, shell)?, args),
        Command::Fetch(args) => fetch::run(&settings_for(&cli.global, shell)?, args),
        Command::Image(args) => image::run(&settings_for(&cli.global, shell)?, args),
        Command::Ci(args) => ci::run(&settings_for(&cli.global, shell)?, args),
        Command::Pin(args) => pin::run(&shell, args),
        Command::Plan(args) => plan::run(&settings_for(&cli.global, shell)?, args),
        Command::Graph(args) => graph::run(&settings_for(&cli.global, shell)?, args),
        Command::Os(args) => os::run(&settings_for(&cli.global, shell)?, args),
        Command::Lint(args) => lint::run(&settings_for(&cli.global, shell)?, args),
        Command::Index(args) => index::run(&settings_for(&cli.global, shell)?, args),
        Command::Inspect(args) => inspect::run(&shell, args),
        Command::Keygen(args) => keygen::run(&settings_for(&cli.global, shell)?, args),
        Command::Verify(args) => verify::run(&settings_for(&cli.global, shell)?, args),
        Command::Publish(args) => publish::run(&settings_for(&cli.global, shell)?, args),
        Command::Sign(args) => sign_image::run(&settings_for(&cli.global, shell)?, args),
        Command::VerifyImage(args) => {
            verify_image::run(&settings_or_cwd(&cli.global, shell)?, args)
        }
        Command::PullRepo(args) => pull_repo::run(&settings_or_cwd(&cli.global, shell)?, args),
        Command::Update(args) => update::run(&settings_for(&cli.global, shell)?, args),
    }
}

/// Settings for commands that also work outside a project (checking or
/// fetching what is in a registry, e.g. on a node): the project's when there
/// is one, else defaults rooted at the current directory.
fn settings_or_cwd(g: &GlobalArgs, shell: Shell) -> Result<Settings> {
    let cwd = std::env::current_dir().context("reading the current directory")?;
    let start = g.directory.as_ref().map_or(cwd.clone(), |d| cwd.join(d));
    if settings::find_root(&start).is_some() {
        return settings_for(g, shell);
    }
    let mut s = Settings::for_root(&start);
    s.shell = shell;
    Ok(s)
}

/// Build the run's [`Settings`] from flags, environment and config files.
fn settings_for(g: &GlobalArgs, shell: Shell) -> Result<Settings> {
    let cwd = std::env::current_dir().context("reading the current directory")?;
    let start = match &g.directory {
        Some(d) => cwd.join(d),
        None => cwd.clone(),
    };
    let root = settings::find_root(&start).with_context(|| {
        format!(
            "no forge project at or above {} (looked for forge.toml or a recipes/ folder)",
            start.display()
        )
    })?;
    let project = ConfigFile::load(&root.join("forge.toml"))?;
    let user = match dirs::config_dir() {
        Some(d) => ConfigFile::load(&d.join("forge").join("config.toml"))?,
        None => ConfigFile::default(),
    };
    let mut mirrors = g.mirrors.clone();
    mirrors.extend(project.mirrors.iter().cloned());
    mirrors.extend(user.mirrors.iter().cloned());
    let abs = |p: &PathBuf| {
        if p.is_absolute() {
            p.clone()
        } else {
            cwd.join(p)
        }
    };
    let out = g.out.as_ref().map(abs).unwrap_or_else(|| root.join("out"));
    let cache = g
        .cache_dir
        .as_ref()
        .map(abs)
        .or_else(|| project.cache_dir.as_ref().map(|p| root.join(p)))
        .or(user.cache_dir.clone())
        .unwrap_or_else(settings::default_cache_dir);
    let jobs = g
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    Ok(Settings {
        root,
        out,
        cache,
        jobs,
        offline: g.offline,
        mirrors,
        sandbox: g.sandbox,
        default_targets: project.default_targets.clone(),
        accept_sha1_signatures: project.accept_sha1_signatures,
        build_root: project.build_root.clone(),
        arches: project.arch.clone(),
        shell,
    })
}
