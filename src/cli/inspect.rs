//! `forge inspect FILE.apk`: print a package's metadata, dependencies and
//! file list on stdout (JSON with `--json`). Nothing is verified here; use
//! `forge verify`.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result};

use crate::apk::Package;
use crate::apk::tar::Kind;
use crate::output::Shell;

/// Arguments of `forge inspect`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The package file.
    #[arg(value_name = "FILE.apk")]
    file: PathBuf,
}

/// Run `forge inspect`.
pub fn run(shell: &Shell, args: Args) -> Result<ExitCode> {
    let pkg =
        Package::open(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let info = &pkg.info;
    let identity = format!(
        "Q1{}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, pkg.identity)
    );
    if shell.is_json() {
        let files: Vec<_> = pkg
            .files
            .iter()
            .map(|f| {
                serde_json::json!({
                    "path": shown_path(f), "kind": kind_name(f.kind), "mode": format!("{:04o}", f.mode),
                    "size": f.size, "link": f.link, "sha1": f.expected_sha1,
                })
            })
            .collect();
        shell.data(
            serde_json::json!({
                "name": info.name, "version": info.version, "description": info.description,
                "url": info.url, "license": info.license, "arch": info.arch, "origin": info.origin,
                "commit": info.commit, "builddate": info.builddate, "packager": info.packager,
                "installed_size": info.size, "file_size": pkg.file_size, "identity": identity,
                "datahash": info.datahash,
                "signatures": pkg.signatures.iter().map(|s| format!("{}.{}", s.alg.tag(), s.key)).collect::<Vec<_>>(),
                "depends": info.depends, "provides": info.provides, "files": files,
            })
            .to_string(),
        );
        return Ok(ExitCode::SUCCESS);
    }
    let mut s = String::new();
    let mut field = |k: &str, v: &str| {
        let _ = writeln!(s, "{k:<14}{v}");
    };
    field("name:", &info.name);
    field("version:", &info.version);
    field("description:", &info.description);
    field("url:", &info.url);
    field("license:", &info.license);
    field("arch:", &info.arch);
    field("origin:", &info.origin);
    field("commit:", info.commit.as_deref().unwrap_or("-"));
    field("builddate:", &info.builddate.to_string());
    field("packager:", &info.packager);
    field("installed:", &format!("{} bytes", info.size));
    field("file size:", &format!("{} bytes", pkg.file_size));
    field("identity:", &identity);
    field("datahash:", info.datahash.as_deref().unwrap_or("-"));
    for sig in &pkg.signatures {
        field("signed by:", &format!("{} ({})", sig.key, sig.alg.tag()));
    }
    let _ = writeln!(s, "depends:");
    for d in &info.depends {
        let _ = writeln!(s, "  {d}");
    }
    let _ = writeln!(s, "provides:");
    for p in &info.provides {
        let _ = writeln!(s, "  {p}");
    }
    let _ = writeln!(s, "files:");
    for f in &pkg.files {
        let extra = match f.kind {
            Kind::Symlink => format!(" -> {}", f.link),
            Kind::HardLink => format!(" => {}", f.link),
            _ => String::new(),
        };
        let _ = writeln!(
            s,
            "  {} {:04o} {:>10} {}{extra}",
            kind_char(f.kind),
            f.mode,
            f.size,
            shown_path(f)
        );
    }
    shell.data(s.trim_end());
    Ok(ExitCode::SUCCESS)
}

/// The entry path as stored in the tar: folders end in `/`.
fn shown_path(f: &crate::apk::DataEntry) -> String {
    match f.kind {
        Kind::Dir => format!("{}/", f.path),
        _ => f.path.clone(),
    }
}

fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::File => "file",
        Kind::HardLink => "hardlink",
        Kind::Symlink => "symlink",
        Kind::Dir => "dir",
        Kind::Pax => "pax",
        Kind::Other(_) => "other",
    }
}

fn kind_char(k: Kind) -> char {
    match k {
        Kind::File => '-',
        Kind::HardLink => 'h',
        Kind::Symlink => 'l',
        Kind::Dir => 'd',
        _ => '?',
    }
}
