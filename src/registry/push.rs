//! Pushing: a [`Plan`] of blobs, manifests and tags, executed in the order
//! that keeps the registry consistent at every moment (see the module docs of
//! [`super`]).

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use reqwest::blocking::Body;

use super::RegistryError;
use super::client::{Client, Mount};
pub use super::plan::{BlobSource, LayoutPlan, Plan, PlanBlob, PlanManifest, plan_layout};
use super::state::MountState;
use crate::oci::Digest;
use crate::output::Shell;

/// Blobs up to this size are read into memory and sent in one write; larger
/// ones are streamed from the file.
const IN_MEMORY_MAX: u64 = 64 << 20;

/// How to push.
#[derive(Debug, Clone)]
pub struct PushOptions {
    /// Parallel uploads.
    pub jobs: usize,
    /// Upload in `PATCH` chunks of this size instead of one `PUT`.
    pub chunk_size: Option<u64>,
    /// Only find out what is missing.
    pub dry_run: bool,
}

impl Default for PushOptions {
    fn default() -> Self {
        PushOptions {
            jobs: 4,
            chunk_size: None,
            dry_run: false,
        }
    }
}

/// What a push did (or, with `dry_run`, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushReport {
    /// Blobs uploaded.
    pub blobs_pushed: usize,
    /// Bytes uploaded.
    pub bytes_pushed: u64,
    /// Blobs already present.
    pub blobs_skipped: usize,
    /// Blobs mounted from another repository.
    pub blobs_mounted: usize,
    /// Manifests stored.
    pub manifests_pushed: usize,
    /// Manifests already present.
    pub manifests_skipped: usize,
    /// Tags set or moved.
    pub tags_set: usize,
    /// Tags already right.
    pub tags_unchanged: usize,
    /// Digests of the blobs that were (or would be) sent.
    pub missing: Vec<Digest>,
}

/// The scopes a push to `repo` needs.
pub fn push_scopes(repo: &str) -> Vec<String> {
    vec![format!("repository:{repo}:pull,push")]
}

/// Run `f` over `items` on up to `jobs` threads; the first error wins.
fn parallel<T: Sync, R: Send>(
    jobs: usize,
    items: &[T],
    f: &(dyn Fn(&T) -> Result<R, RegistryError> + Sync),
) -> Result<Vec<R>, RegistryError> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    let failed: Mutex<Option<RegistryError>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..jobs.clamp(1, items.len().max(1)) {
            s.spawn(|| {
                loop {
                    if failed.lock().unwrap_or_else(|e| e.into_inner()).is_some() {
                        return;
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { return };
                    match f(item) {
                        Ok(r) => results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(r),
                        Err(e) => {
                            failed
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .get_or_insert(e);
                            return;
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = failed.into_inner().unwrap_or_else(|e| e.into_inner()) {
        return Err(e);
    }
    Ok(results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .flatten()
        .collect())
}

/// Execute `plan`: blobs, then manifests, then tags.
pub fn push(
    client: &Client,
    plan: &Plan,
    opts: &PushOptions,
    state: &mut MountState,
    shell: &Shell,
) -> Result<PushReport, RegistryError> {
    let repo = plan.repository.as_str();
    let scopes = push_scopes(repo);
    let mut report = PushReport::default();

    // 1. Which blobs are missing.
    let present = parallel(opts.jobs, &plan.blobs, &|b| {
        client.blob_exists(repo, &b.descriptor.digest, &scopes)
    })?;
    let mut missing: Vec<&PlanBlob> = plan
        .blobs
        .iter()
        .zip(&present)
        .filter(|(_, p)| !**p)
        .map(|(b, _)| b)
        .collect();
    report.blobs_skipped = plan.blobs.len() - missing.len();
    missing.sort_by_key(|b| std::cmp::Reverse(b.descriptor.size));
    report.missing = missing
        .iter()
        .map(|b| b.descriptor.digest.clone())
        .collect();
    if opts.dry_run {
        report.blobs_pushed = missing.len();
        report.bytes_pushed = missing.iter().map(|b| b.descriptor.size).sum();
        for m in &plan.manifests {
            if client
                .manifest_digest(repo, m.digest.as_str(), &scopes)?
                .is_some()
            {
                report.manifests_skipped += 1;
            } else {
                report.manifests_pushed += 1;
            }
        }
        for (tag, d) in &plan.tags {
            if client.manifest_digest(repo, tag, &scopes)?.as_ref() == Some(d) {
                report.tags_unchanged += 1;
            } else {
                report.tags_set += 1;
            }
        }
        return Ok(report);
    }

    // 2. Upload or mount them.
    let total: u64 = missing.iter().map(|b| b.descriptor.size).sum();
    let bar = shell.bytes_bar(Some(total), "Pushing");
    let sources: Vec<Option<String>> = missing
        .iter()
        .map(|b| {
            state
                .source_for(&b.descriptor.digest, repo)
                .map(str::to_string)
        })
        .collect();
    let work: Vec<(&PlanBlob, Option<String>)> = missing.iter().copied().zip(sources).collect();
    let outcomes = parallel(opts.jobs, &work, &|(b, from)| {
        let r = upload_one(client, repo, b, from.as_deref(), opts.chunk_size)?;
        bar.inc(b.descriptor.size);
        shell.verbose(format!(
            "{} {} ({} bytes)",
            if r { "mounted" } else { "pushed" },
            b.descriptor.digest,
            b.descriptor.size
        ));
        Ok(r)
    })?;
    bar.finish_and_clear();
    for (b, mounted) in missing.iter().zip(&outcomes) {
        if *mounted {
            report.blobs_mounted += 1;
        } else {
            report.blobs_pushed += 1;
            report.bytes_pushed += b.descriptor.size;
        }
    }

    // 3. Manifests, children first.
    for m in &plan.manifests {
        if client
            .manifest_digest(repo, m.digest.as_str(), &scopes)?
            .is_some()
        {
            report.manifests_skipped += 1;
        } else {
            client.put_manifest(repo, m.digest.as_str(), &m.media_type, &m.bytes, &scopes)?;
            report.manifests_pushed += 1;
        }
    }

    // 4. Tags, last.
    for (tag, d) in &plan.tags {
        let m = plan.manifest(d).ok_or_else(|| {
            RegistryError::Invalid(format!("tag {tag} names {d}, which the plan does not push"))
        })?;
        if client.manifest_digest(repo, tag, &scopes)?.as_ref() == Some(d) {
            report.tags_unchanged += 1;
        } else {
            client.put_manifest(repo, tag, &m.media_type, &m.bytes, &scopes)?;
            report.tags_set += 1;
        }
    }
    for b in &plan.blobs {
        state.record(&b.descriptor.digest, repo);
    }
    Ok(report)
}

fn read_range(src: &BlobSource, offset: u64, len: usize) -> Result<Vec<u8>, RegistryError> {
    match src {
        BlobSource::Bytes(b) => Ok(b[offset as usize..offset as usize + len].to_vec()),
        BlobSource::File(p) => {
            use std::io::{Read, Seek, SeekFrom};
            let io = |source| RegistryError::Io {
                what: "reading",
                path: p.clone(),
                source,
            };
            let mut f = std::fs::File::open(p).map_err(io)?;
            f.seek(SeekFrom::Start(offset)).map_err(io)?;
            let mut buf = vec![0u8; len];
            f.read_exact(&mut buf).map_err(io)?;
            Ok(buf)
        }
    }
}

/// The blob's bytes when small enough to send in one write (reqwest
/// streams a reader in 8 KiB pieces, which costs about a quarter of the
/// throughput on loopback); `None` for blobs streamed from their file.
fn whole(src: &BlobSource, size: u64) -> Result<Option<bytes::Bytes>, RegistryError> {
    match src {
        BlobSource::Bytes(b) => Ok(Some(bytes::Bytes::copy_from_slice(b))),
        BlobSource::File(_) if size <= IN_MEMORY_MAX => {
            Ok(Some(bytes::Bytes::from(read_range(src, 0, size as usize)?)))
        }
        BlobSource::File(_) => Ok(None),
    }
}

/// Upload (or mount) one blob, retrying from a fresh session on transient
/// failures. Returns whether it was mounted.
fn upload_one(
    client: &Client,
    repo: &str,
    b: &PlanBlob,
    from: Option<&str>,
    chunk: Option<u64>,
) -> Result<bool, RegistryError> {
    let d = &b.descriptor.digest;
    let size = b.descriptor.size;
    let scopes = push_scopes(repo);
    let mut mount_scopes = scopes.clone();
    if let Some(f) = from {
        mount_scopes.push(format!("repository:{f}:pull"));
    }
    let attempts = client.options().attempts;
    let mut last = None;
    for attempt in 0..attempts {
        if attempt > 0 {
            std::thread::sleep(
                client
                    .options()
                    .backoff
                    .saturating_mul(1 << (attempt - 1).min(4)),
            );
            // It may have landed before the connection dropped.
            if client.blob_exists(repo, d, &scopes)? {
                return Ok(false);
            }
        }
        let result = (|| -> Result<bool, RegistryError> {
            let session = match from.filter(|_| attempt == 0) {
                Some(f) => match client.mount(repo, d, f, &mount_scopes) {
                    Ok(Mount::Mounted) => return Ok(true),
                    Ok(Mount::Session(s)) => s,
                    // No pull access to the source (or mounts refused):
                    // upload it instead, with the push scope only.
                    Err(RegistryError::Unauthorized { .. })
                    | Err(RegistryError::Status {
                        status: 401 | 403 | 404 | 405,
                        ..
                    }) => client.start_upload(repo, &scopes)?,
                    Err(e) => return Err(e),
                },
                None => client.start_upload(repo, &scopes)?,
            };
            if let Some(c) = chunk {
                client.put_blob_chunked(
                    &session,
                    d,
                    &mut |o, n| read_range(&b.source, o, n),
                    size,
                    c.max(1),
                    &scopes,
                )?;
                return Ok(false);
            }
            let data = whole(&b.source, size)?;
            let body = || match (&data, &b.source) {
                (Some(v), _) => Ok(Body::from(v.clone())),
                (None, BlobSource::File(p)) => std::fs::File::open(p)
                    .map(|f| Body::sized(f, size))
                    .map_err(|source| RegistryError::Io {
                        what: "opening",
                        path: p.clone(),
                        source,
                    }),
                (None, BlobSource::Bytes(v)) => Ok(Body::from(v.as_ref().clone())),
            };
            match client.put_blob(&session, d, size, &body, &scopes) {
                Ok(()) => Ok(false),
                // Some registries refuse large monolithic PUTs (413) or
                // want chunks; retry the same blob chunked.
                Err(RegistryError::Status {
                    status: 400 | 405 | 413 | 416,
                    ..
                }) => {
                    client.cancel_upload(&session, &scopes);
                    let s = client.start_upload(repo, &scopes)?;
                    client.put_blob_chunked(
                        &s,
                        d,
                        &mut |o, n| read_range(&b.source, o, n),
                        size,
                        16 << 20,
                        &scopes,
                    )?;
                    Ok(false)
                }
                Err(e) => Err(e),
            }
        })();
        match result {
            Ok(m) => return Ok(m),
            Err(e) if e.is_transient() => {
                tracing::debug!("upload of {d} failed, will retry: {e}");
                last = Some(e);
            }
            Err(e) => return Err(e),
        }
    }
    Err(RegistryError::GaveUp {
        what: format!("uploading blob {d}"),
        attempts,
        source: Box::new(last.unwrap_or_else(|| RegistryError::Invalid("no attempt made".into()))),
    })
}

/// Digests of every blob in `plan` (for reports).
pub fn blob_set(plan: &Plan) -> BTreeSet<Digest> {
    plan.blobs
        .iter()
        .map(|b| b.descriptor.digest.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::{Descriptor, Digest};
    use crate::registry::client::tests::{CLOSE, scripted_server, single_try_client};

    #[test]
    fn a_refused_mount_falls_back_to_an_upload() {
        let (host, log) = scripted_server(vec![
            format!("HTTP/1.1 401 Unauthorized\r\n{CLOSE}"),
            format!("HTTP/1.1 202 Accepted\r\nLocation: /v2/a/blobs/uploads/u1\r\n{CLOSE}"),
            format!("HTTP/1.1 201 Created\r\n{CLOSE}"),
        ]);
        let c = single_try_client(&host);
        let bytes = std::sync::Arc::new(b"blob".to_vec());
        let b = PlanBlob {
            descriptor: Descriptor::for_bytes("application/octet-stream", &bytes),
            source: BlobSource::Bytes(bytes),
        };
        assert!(!upload_one(&c, "a", &b, Some("other"), None).unwrap());
        let log = log.log();
        assert!(
            log[0].starts_with("POST /v2/a/blobs/uploads/?mount=sha256:"),
            "{log:?}"
        );
        assert!(log[1].starts_with("POST /v2/a/blobs/uploads/ "), "{log:?}");
        assert!(
            log[2].starts_with(&format!(
                "PUT /v2/a/blobs/uploads/u1?digest={}",
                b.descriptor.digest
            )),
            "{log:?}"
        );
    }

    /// A blob too large to hold in memory whose file cannot be opened is an
    /// error naming the file, never an empty body.
    #[test]
    fn an_unreadable_blob_is_an_error_not_an_empty_body() {
        let (host, log) = scripted_server(vec![
            format!("HTTP/1.1 202 Accepted\r\nLocation: /v2/a/blobs/uploads/u1\r\n{CLOSE}"),
            format!("HTTP/1.1 201 Created\r\n{CLOSE}"),
        ]);
        let c = single_try_client(&host);
        let gone = std::path::PathBuf::from("/nonexistent/forge-test/layer.tar.gz");
        let b = PlanBlob {
            descriptor: Descriptor {
                media_type: "application/octet-stream".into(),
                digest: Digest::of(b"whatever"),
                size: IN_MEMORY_MAX + 1,
                platform: None,
                annotations: Default::default(),
            },
            source: BlobSource::File(gone.clone()),
        };
        let err = upload_one(&c, "a", &b, None, None).unwrap_err();
        assert!(
            matches!(&err, RegistryError::Io { path, .. } if *path == gone),
            "{err}"
        );
        let log = log.log();
        assert!(
            !log.iter().any(|l| l.starts_with("PUT")),
            "a body was sent: {log:?}"
        );
    }
}
