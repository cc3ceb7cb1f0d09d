//! forge: source recipes → sandboxed builds → signed apk packages and
//! repositories → OCI and OS images → signed and published.
//!
//! Architecture map (see `docs/architecture.md` for the data flow):
//!
//! | module | stage it owns |
//! |---|---|
//! | [`cli`] | flags, dispatch, exit status |
//! | [`output`] | the one output channel (status lines, progress, `--json`) |
//! | [`settings`] | run-wide settings: root, out, cache, mirrors, jobs |
//! | [`version`] | apk version grammar and ordering (pure) |
//! | [`epoch`] | the one `SOURCE_DATE_EPOCH` rule for packages and images (pure) |
//! | [`recipe`] | recipe TOML → validated [`recipe::Recipe`] |
//! | [`graph`] | recipes → [`graph::UnitGraph`]: build order, cycles, closures |
//! | [`plan`] | unit keys, fresh/dirty verdicts and why |
//! | [`cache`] | the registry-backed build cache: signed entries per unit key |
//! | [`jobs`] | the parallel job queue (dependency order, -j, keep-going) |
//! | [`pipeline`] | `forge build`: plan, build deps from the repo, run units, images, no-op stamp |
//! | [`ci`] | the plan as a GitLab child pipeline; checks on CI documents; `forge pin` |
//! | [`source`] | fetching, verifying, caching and unpacking sources |
//! | [`apk`] | apk v2 packages: writer, reader, verification, APKINDEX format |
//! | [`resolve`] | dependency resolution with apk's rules, for build roots and images (pure) |
//! | [`repo`] | `out/repo/<arch>/`: packages and the signed index, updated atomically |
//! | [`sign`] | RSA signing keys: generation, loading, trust |
//! | [`oci`] | OCI documents, canonical JSON, image layout writer |
//! | [`image`] | `images/NAME.toml` → OCI image layout + SPDX SBOMs |
//! | [`os`] | `kind = "os"` images → raw GPT disks: erofs `/usr` + dm-verity, FAT ESP/OEM |
//! | [`build`] | sandboxed build steps → staged package trees (`out/stage/`) |
//! | [`process`] | the one wrapper for running external commands |
//! | [`registry`] | OCI distribution client: push layouts and artifacts, pull them back |
//! | [`imagesign`] | cosign-format image signatures, SBOM and provenance attestations |
//! | [`update`] | `forge update`: release feeds → recipe bumps on branches, prebuilds |
//! | [`util`] | atomic writes and error chains (std and tempfile only) |
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod apk;
pub mod build;
pub mod cache;
pub mod ci;
pub mod cli;
pub mod epoch;
pub mod graph;
pub mod image;
pub mod imagesign;
pub mod jobs;
pub mod oci;
pub mod os;
pub mod output;
pub mod pipeline;
pub mod plan;
pub mod process;
pub mod recipe;
pub mod registry;
pub mod repo;
pub mod resolve;
pub mod settings;
pub mod sign;
pub mod source;
pub mod update;
pub mod util;
pub mod version;

#[cfg(test)]
#[path = "../tests/support/tools.rs"]
pub(crate) mod test_tools;

#[cfg(test)]
#[path = "../tests/support/http.rs"]
pub(crate) mod test_http;

#[cfg(test)]
#[path = "../tests/support/project.rs"]
pub(crate) mod test_project;

#[doc(hidden)]
pub mod fuzzing;
