//! Assembling one architecture's image from verified packages: conflict
//! check → layer plan → image files → layers (in parallel) → config →
//! manifest.
//!
//! Package layers hold only their packages' entries, mtimes clamped to the
//! image epoch, so they are byte-stable while those packages are. The final
//! layer holds what depends on the whole package set: `/etc/passwd`,
//! `/etc/group`, the apk database and the definition's extra paths.

use std::collections::{BTreeMap, BTreeSet};

use super::ImageError;
use super::accounts;
use super::apkdb;
use super::def::{ExtraKind, ImageDef};
use super::layer::{LayerBlob, write_layer};
use super::plan::{PlanInput, PlannedLayer, plan};
use super::rootfs::{Entry, EntryKind, InstalledPackage};
use crate::oci::layout::Layout;
use crate::oci::{
    Descriptor, History, ImageConfig, MEDIA_CONFIG, MEDIA_MANIFEST, Manifest, Platform, RunConfig,
    rfc3339,
};

/// The `PATH` set when the definition does not set one.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// One architecture's input.
#[derive(Debug, Clone)]
pub struct ArchInput {
    /// apk architecture.
    pub arch: String,
    /// Verified packages in install order.
    pub packages: Vec<InstalledPackage>,
    /// Resolved dependencies (indices into `packages`).
    pub deps: Vec<BTreeSet<usize>>,
}

/// One written layer and what went into it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltLayer {
    /// History title (`origin hello`, `image files`).
    pub title: String,
    /// Package names in the layer.
    pub packages: Vec<String>,
    /// The blob.
    pub blob: LayerBlob,
}

/// One architecture's written image.
#[derive(Debug, Clone)]
pub struct ArchImage {
    /// apk architecture.
    pub arch: String,
    /// The manifest descriptor (with platform) for the image index.
    pub manifest: Descriptor,
    /// The config descriptor.
    pub config: Descriptor,
    /// Layers, base first.
    pub layers: Vec<BuiltLayer>,
}

/// Build-wide values shared by every architecture.
#[derive(Debug, Clone)]
pub struct Common<'a> {
    /// The definition.
    pub def: &'a ImageDef,
    /// SOURCE_DATE_EPOCH.
    pub epoch: u64,
    /// Manifest/index annotations.
    pub annotations: &'a BTreeMap<String, String>,
    /// Parallel layer writers.
    pub jobs: usize,
}

/// Fail on two packages installing different things at one path.
fn check_conflicts(packages: &[InstalledPackage]) -> Result<(), ImageError> {
    let mut seen: BTreeMap<&str, (usize, &Entry)> = BTreeMap::new();
    for (i, p) in packages.iter().enumerate() {
        for e in &p.entries {
            let Some(&(j, other)) = seen.get(e.path.as_str()) else {
                seen.insert(&e.path, (i, e));
                continue;
            };
            // Folders may repeat; anything else must be identical.
            let clash = match (other.is_dir(), e.is_dir()) {
                (true, true) => false,
                (false, false) => {
                    other.kind != e.kind
                        || other.mode != e.mode
                        || (other.uid, other.gid) != (e.uid, e.gid)
                }
                _ => true,
            };
            if j != i && clash {
                return Err(ImageError::FileConflict {
                    path: e.path.clone(),
                    first: packages[j].meta.name.clone(),
                    second: p.meta.name.clone(),
                });
            }
        }
    }
    Ok(())
}

/// The entries of the final layer (also carried by a single layer).
fn image_files(def: &ImageDef, input: &ArchInput, epoch: u64) -> Vec<Entry> {
    let pkg_entry = |path: &str| {
        input
            .packages
            .iter()
            .flat_map(|p| &p.entries)
            .find(|e| e.path == path)
    };
    let has_sh = pkg_entry("bin/sh").is_some_and(|e| !e.is_dir());
    let mut files: BTreeMap<String, Entry> = BTreeMap::new();
    let mut put = |e: Entry| {
        files.insert(e.path.clone(), e);
    };
    put(Entry::file(
        "etc/passwd",
        0o644,
        accounts::passwd(
            &def.accounts,
            if has_sh { "/bin/sh" } else { "/sbin/nologin" },
        ),
    ));
    put(Entry::file(
        "etc/group",
        0o644,
        accounts::group(&def.groups),
    ));
    let pkgs: Vec<&InstalledPackage> = input.packages.iter().collect();
    put(Entry::file(
        "lib/apk/db/installed",
        0o644,
        apkdb::installed(&pkgs),
    ));
    put(Entry::file("lib/apk/db/triggers", 0o644, Vec::new()));
    put(Entry::file(
        "etc/apk/world",
        0o644,
        apkdb::world(
            &def.packages
                .iter()
                .map(|d| crate::resolve::Dep::parse(d).name)
                .collect::<Vec<_>>(),
        ),
    ));
    put(Entry::file(
        "etc/apk/arch",
        0o644,
        format!("{}\n", input.arch),
    ));
    for a in &def.accounts {
        let home = a.home.trim_start_matches('/');
        if !home.is_empty() && home != "nonexistent" && pkg_entry(home).is_none() {
            let mut d = Entry::dir(home, 0o755);
            d.uid = a.uid;
            d.gid = a.gid;
            put(d);
        }
    }
    for p in &def.paths {
        let kind = match &p.kind {
            ExtraKind::Dir => EntryKind::Dir,
            ExtraKind::File(c) => EntryKind::File(c.clone().into_bytes()),
            ExtraKind::Symlink(t) => EntryKind::Symlink(t.clone()),
        };
        let mut e = Entry::dir(&p.path, p.mode);
        e.kind = kind;
        e.uid = p.uid;
        e.gid = p.gid;
        put(e);
    }
    // Parent folders: as the packages ship them, else root 0755.
    let parents: BTreeSet<String> = files
        .keys()
        .flat_map(|p| {
            let parts: Vec<&str> = p.split('/').collect();
            (1..parts.len())
                .map(move |n| parts[..n].join("/"))
                .collect::<Vec<_>>()
        })
        .collect();
    for dir in parents {
        if let std::collections::btree_map::Entry::Vacant(slot) = files.entry(dir) {
            let e = pkg_entry(slot.key())
                .filter(|e| e.is_dir())
                .cloned()
                .unwrap_or_else(|| Entry::dir(slot.key(), 0o755));
            slot.insert(e);
        }
    }
    files
        .into_values()
        .map(|mut e| {
            e.mtime = epoch;
            e
        })
        .collect()
}

/// Entries of one planned layer, deduplicated by path (image files win, then
/// the first package in name order).
fn layer_entries<'a>(
    input: &'a ArchInput,
    layer: &PlannedLayer,
    extra: &'a [Entry],
) -> Vec<&'a Entry> {
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    let mut out = Vec::new();
    let first: &[Entry] = if layer.with_image_files { extra } else { &[] };
    let pkgs = layer
        .packages
        .iter()
        .flat_map(|&i| input.packages[i].entries.iter());
    for e in first.iter().chain(pkgs) {
        if seen.insert(&e.path) {
            out.push(e);
        }
    }
    out
}

/// Write one architecture's layers, config and manifest into `layout`.
pub fn assemble(
    layout: &Layout,
    common: &Common<'_>,
    input: &ArchInput,
) -> Result<ArchImage, ImageError> {
    let def = common.def;
    let platform = Platform::from_apk_arch(&input.arch)
        .ok_or_else(|| ImageError::UnknownArch(input.arch.clone()))?;
    check_conflicts(&input.packages)?;
    let plan_in: Vec<PlanInput> = input
        .packages
        .iter()
        .enumerate()
        .map(|(i, p)| PlanInput {
            name: p.meta.name.clone(),
            origin: if p.meta.origin.is_empty() {
                p.meta.name.clone()
            } else {
                p.meta.origin.clone()
            },
            size: p.content_size(),
            deps: input.deps.get(i).cloned().unwrap_or_default(),
        })
        .collect();
    let mut planned = plan(&plan_in, def.layering);
    if !planned.iter().any(|l| l.with_image_files) {
        planned.push(PlannedLayer {
            title: "image files".into(),
            packages: Vec::new(),
            with_image_files: true,
        });
    }
    let extra = image_files(def, input, common.epoch);
    let entries: Vec<Vec<&Entry>> = planned
        .iter()
        .map(|l| layer_entries(input, l, &extra))
        .collect();

    // One layer at a time, each compressed on all cores (see `pgzip`), so
    // one big layer does not leave cores idle.
    let mut layers = Vec::new();
    for (l, layer_entries) in planned.iter().zip(&entries) {
        let blob = write_layer(layout, layer_entries, common.epoch, common.jobs)?;
        let packages = l
            .packages
            .iter()
            .map(|&i| input.packages[i].meta.name.clone())
            .collect();
        layers.push(BuiltLayer {
            title: l.title.clone(),
            packages,
            blob,
        });
    }

    let mut env: Vec<String> = def.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    if !def.env.contains_key("PATH") {
        env.insert(0, format!("PATH={DEFAULT_PATH}"));
    }
    let config = ImageConfig {
        platform: platform.clone(),
        created: rfc3339(common.epoch),
        config: RunConfig {
            env,
            entrypoint: def.entrypoint.clone(),
            cmd: def.cmd.clone(),
            workdir: def.workdir.clone(),
            user: def.user.clone(),
            labels: def.labels.clone(),
        },
        diff_ids: layers.iter().map(|l| l.blob.diff_id.clone()).collect(),
        history: layers
            .iter()
            .map(|l| History {
                created_by: format!("forge image {}: {}", def.name, l.title),
                comment: l.packages.join(" "),
            })
            .collect(),
    };
    let config_desc = layout.write_json_blob(MEDIA_CONFIG, &config.to_json())?;
    let manifest = Manifest {
        config: config_desc.clone(),
        layers: layers.iter().map(|l| l.blob.descriptor.clone()).collect(),
        annotations: common.annotations.clone(),
    };
    let mut manifest_desc = layout.write_json_blob(MEDIA_MANIFEST, &manifest.to_json())?;
    manifest_desc.platform = Some(platform);
    Ok(ArchImage {
        arch: input.arch.clone(),
        manifest: manifest_desc,
        config: config_desc,
        layers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::rootfs::PackageMeta;

    fn pkg(name: &str, entries: Vec<Entry>) -> InstalledPackage {
        InstalledPackage {
            meta: PackageMeta {
                name: name.into(),
                ..Default::default()
            },
            entries,
        }
    }

    fn def(extra: &str) -> ImageDef {
        let text =
            format!("schema = 1\npackages = [\"app\"]\nentrypoint = [\"/bin/app\"]\n{extra}");
        crate::image::def::parse("t", std::path::Path::new("t.toml"), &text).unwrap()
    }

    fn input(lib: &str) -> ArchInput {
        let mut a = pkg(
            "app",
            vec![
                Entry::dir("bin", 0o755),
                Entry::file("bin/app", 0o755, "app"),
            ],
        );
        a.meta.origin = "app".into();
        let mut sh = pkg(
            "sh",
            vec![
                Entry::dir("bin", 0o755),
                Entry::symlink("bin/sh", "busybox"),
            ],
        );
        sh.meta.origin = "busybox".into();
        let mut l = pkg(
            "libx",
            vec![
                Entry::dir("etc", 0o700),
                Entry::file("lib/libx.so", 0o644, lib),
            ],
        );
        l.meta.origin = "libx".into();
        ArchInput {
            arch: "x86_64".into(),
            packages: vec![l, sh, a],
            deps: vec![BTreeSet::new(), BTreeSet::new(), BTreeSet::from([0, 1])],
        }
    }

    #[test]
    fn image_files_carry_accounts_db_and_parents() {
        let d = def(
            "[[accounts]]\nname = \"app\"\nuid = 10\n[[paths]]\npath = \"/var/x/y\"\ntype = \"file\"\ncontent = \"z\"\n",
        );
        let files = image_files(&d, &input("v1"), 77);
        let paths: Vec<&str> = files.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "etc",
                "etc/apk",
                "etc/apk/arch",
                "etc/apk/world",
                "etc/group",
                "etc/passwd",
                "home",
                "home/app",
                "lib",
                "lib/apk",
                "lib/apk/db",
                "lib/apk/db/installed",
                "lib/apk/db/triggers",
                "var",
                "var/x",
                "var/x/y"
            ]
        );
        assert!(files.iter().all(|e| e.mtime == 77));
        // A folder a package ships keeps its metadata.
        assert_eq!(files[0].mode, 0o700);
        let passwd = files.iter().find(|e| e.path == "etc/passwd").unwrap();
        assert_eq!(
            passwd.kind,
            EntryKind::File(
                b"root:x:0:0:root:/root:/bin/sh\napp:x:10:10:app:/home/app:/sbin/nologin\n"
                    .to_vec()
            )
        );
        let home = files.iter().find(|e| e.path == "home/app").unwrap();
        assert_eq!((home.uid, home.gid), (10, 10));
    }

    #[test]
    fn assemble_is_stable_and_one_package_changes_one_layer() {
        let tmp = tempfile::tempdir().unwrap();
        let layout = Layout::create(tmp.path()).unwrap();
        let d = def("");
        let ann = BTreeMap::new();
        let common = Common {
            def: &d,
            epoch: 1000,
            annotations: &ann,
            jobs: 2,
        };
        let a = assemble(&layout, &common, &input("v1")).unwrap();
        let b = assemble(&layout, &common, &input("v1")).unwrap();
        assert_eq!(a.manifest, b.manifest);
        let titles: Vec<&str> = a.layers.iter().map(|l| l.title.as_str()).collect();
        assert_eq!(
            titles,
            ["origin busybox", "origin libx", "origin app", "image files"]
        );
        let c = assemble(&layout, &common, &input("v2")).unwrap();
        let changed: Vec<&str> = a
            .layers
            .iter()
            .zip(&c.layers)
            .filter(|(x, y)| x.blob != y.blob)
            .map(|(x, _)| x.title.as_str())
            .collect();
        assert_eq!(changed, ["origin libx", "image files"]);
        assert_eq!(a.manifest.platform.as_ref().unwrap().architecture, "amd64");
    }

    #[test]
    fn conflicts_table() {
        let f = |c: &str| Entry::file("usr/x", 0o644, c.as_bytes().to_vec());
        let cases = [
            (
                vec![Entry::dir("usr", 0o755)],
                vec![Entry::dir("usr", 0o700)],
                false,
            ),
            (vec![f("a")], vec![f("a")], false),
            (vec![f("a")], vec![f("b")], true),
            (vec![Entry::dir("usr/x", 0o755)], vec![f("a")], true),
            (vec![f("a")], vec![Entry::symlink("usr/x", "a")], true),
        ];
        for (a, b, clash) in cases {
            let r = check_conflicts(&[pkg("a", a.clone()), pkg("b", b.clone())]);
            assert_eq!(r.is_err(), clash, "{a:?} vs {b:?}");
            if let Err(e) = r {
                assert_eq!(
                    e.to_string(),
                    "packages `a` and `b` both install `/usr/x` with different content"
                );
            }
        }
    }
}
