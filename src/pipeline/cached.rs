//! `forge build --cache`: a dirty package unit is first looked up in the
//! registry-backed build cache ([`crate::cache`]); a verified hit is
//! admitted into the repository exactly as a build's packages are (the
//! same group-committed index write, then the state file), a refused entry
//! is a warning and a build, and a built unit is pushed before its state
//! file is written, so a unit recorded as done is also in the cache.

use std::fs;
use std::time::Instant;

use super::exec::{ExecCtx, UnitError};
use super::planner::Unit;
use crate::cache::{self, Cache, EntryConfig, Expected};
use crate::jobs::Done;
use crate::plan::ArtifactRecord;

/// Run one dirty unit: from the cache when it holds the key, else built
/// (and then pushed). `pull_only` units (what a `--unit` job needs) must
/// come from the cache.
pub(super) fn run_unit(ctx: &ExecCtx<'_>, unit: &Unit, pull_only: bool) -> Result<Done, UnitError> {
    if let Some(cache) = ctx.cache
        && pull(ctx, cache, unit, pull_only)?
    {
        return Ok(Done::Pulled);
    }
    ctx.build_unit(unit)?;
    Ok(Done::Built)
}

fn message(text: String) -> UnitError {
    UnitError::from_err(&*Box::<dyn std::error::Error>::from(text))
}

/// Look the unit up and use the entry; false on a miss or (unless
/// `required`) a refused entry, which is then built.
fn pull(ctx: &ExecCtx<'_>, cache: &Cache, unit: &Unit, required: bool) -> Result<bool, UnitError> {
    let s = ctx.settings;
    let name = unit.recipe.name.as_str();
    let key = unit.inputs.key();
    let want = Expected {
        unit: name,
        key: &key,
        arch: ctx.arch,
    };
    let dest = crate::build::work_dir(s, name).join("cache");
    let _ = fs::remove_dir_all(&dest);
    fs::create_dir_all(&dest).map_err(|e| UnitError::from_err(&e))?;
    let started = Instant::now();
    let fetched = match cache.fetch(&want, ctx.trusted, &dest) {
        Ok(Some(f)) => f,
        Ok(None) => {
            event(
                ctx,
                name,
                &key,
                "miss",
                started.elapsed().as_secs_f64(),
                0.0,
            );
            let _ = fs::remove_dir_all(&dest);
            if required {
                return Err(message(format!(
                    "needed by this job, but neither built here nor in the cache {} (key {key}): its own job must run first",
                    cache.url()
                )));
            }
            s.shell.verbose(format!("{name}: not in the cache"));
            return Ok(false);
        }
        Err(e) => {
            let _ = fs::remove_dir_all(&dest);
            return refused(ctx, name, &key, &e, required);
        }
    };
    let artifacts = ctx.land(unit, &fetched.files)?;
    ctx.finish(unit, artifacts, None)?;
    let _ = fs::remove_dir_all(&dest);
    let (lookup, pulled) = (fetched.lookup.as_secs_f64(), fetched.pull.as_secs_f64());
    s.shell.status(
        "Pulled",
        format!(
            "{name} {} from the cache (lookup {:.0} ms, pull {:.0} ms)",
            unit.recipe.full_version(),
            lookup * 1e3,
            pulled * 1e3
        ),
    );
    event(ctx, name, &key, "hit", lookup, pulled);
    Ok(true)
}

/// A refused entry: an error for a unit that must come from the cache, a
/// warning naming the unit and why otherwise (the unit is then built).
fn refused(
    ctx: &ExecCtx<'_>,
    name: &str,
    key: &str,
    e: &cache::CacheError,
    required: bool,
) -> Result<bool, UnitError> {
    let why = crate::util::error_chain(e);
    event(ctx, name, key, "refused", 0.0, 0.0);
    if required {
        return Err(message(format!("cache entry refused: {why}")));
    }
    ctx.settings.shell.warn(format!(
        "cache entry for `{name}` refused: {why}; building it"
    ));
    Ok(false)
}

fn event(ctx: &ExecCtx<'_>, unit: &str, key: &str, result: &str, lookup: f64, pull: f64) {
    ctx.settings.shell.event(&serde_json::json!({
        "event": "cache", "unit": unit, "key": key, "result": result,
        "lookup_seconds": lookup, "pull_seconds": pull,
    }));
}

/// Push a built unit's packages (already in the repository) as its entry.
pub(super) fn store(
    ctx: &ExecCtx<'_>,
    cache: &Cache,
    unit: &Unit,
    artifacts: &[ArtifactRecord],
) -> Result<(), UnitError> {
    let started = Instant::now();
    let mut names: Vec<&str> = artifacts.iter().map(|a| a.file.as_str()).collect();
    names.sort_unstable();
    let paths: Vec<_> = names.iter().map(|f| ctx.repo_dir.join(f)).collect();
    let files = paths
        .iter()
        .map(|p| cache::describe(p))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| UnitError::from_err(&e))?;
    let config = EntryConfig {
        format: cache::entry::FORMAT,
        unit: unit.recipe.name.clone(),
        version: unit.recipe.full_version(),
        arch: ctx.arch.to_string(),
        key: unit.inputs.key(),
        files,
    };
    let digest = cache
        .store(&config, &paths, ctx.key, &ctx.settings.shell)
        .map_err(|e| {
            let mut ue = UnitError::from_err(&e);
            ue.message = format!("built, but not stored in the cache: {}", ue.message);
            ue
        })?;
    ctx.settings.shell.verbose(format!(
        "{}: stored in the cache as {digest} ({:.0} ms)",
        config.unit,
        started.elapsed().as_secs_f64() * 1e3
    ));
    ctx.settings.shell.event(&serde_json::json!({
        "event": "cache", "unit": config.unit, "key": config.key, "result": "pushed",
        "digest": digest.as_str(), "push_seconds": started.elapsed().as_secs_f64(),
    }));
    Ok(())
}
