//! Registry push benchmark: `cargo run --release --bin push-bench [WORKDIR]`.
//!
//! Writes an OCI layout of 8 incompressible, uncompressed-tar layers of
//! 32 MiB (256 MiB), then, in the same run and each against a fresh
//! `docker-registry` (filesystem storage, loopback):
//! - forge's push (the library path `forge publish` uses: HEAD, parallel
//!   monolithic uploads, manifest, tag) and a no-op re-push;
//! - `forge publish --no-sign` as a process, when the forge binary sits next
//!   to this one (no-op, process start included);
//! - `skopeo copy --preserve-digests oci:… docker://…` and its no-op re-run.
//!
//! Results go to stdout as a table.
#![allow(clippy::print_stdout)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use forge::oci::layout::Layout;
use forge::oci::{ANNOTATION_REF_NAME, Index, MEDIA_CONFIG, MEDIA_MANIFEST, Manifest};
use forge::output::Shell;
use forge::registry::push::{PushOptions, plan_layout, push};
use forge::registry::state::MountState;
use forge::registry::{Client, ClientOptions};

const LAYERS: usize = 8;
const LAYER_MIB: usize = 32;

#[path = "../../tests/support/registry.rs"]
mod registry;
#[path = "../../tests/support/rng.rs"]
mod rng;
#[path = "../../tests/support/tools.rs"]
mod tools;

use registry::Registry;
use rng::noise;

/// The layout (reused when present).
fn layout(dir: &Path) -> PathBuf {
    let out = dir.join("project/out/images/bench");
    if out.join("index.json").is_file() {
        return out;
    }
    std::fs::create_dir_all(dir.join("project/recipes")).expect("project");
    let layout = Layout::create(&out).expect("layout");
    let mut layers = Vec::new();
    for i in 0..LAYERS {
        let mut w = layout.blob_writer().expect("blob");
        w.write_all(&noise(i as u64 + 1, LAYER_MIB << 20))
            .expect("blob");
        layers.push(
            w.finish("application/vnd.oci.image.layer.v1.tar")
                .expect("blob"),
        );
    }
    let ids: Vec<&str> = layers.iter().map(|d| d.digest.as_str()).collect();
    let config = serde_json::json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": ids}, "config": {}});
    let config = layout
        .write_json_blob(MEDIA_CONFIG, &config)
        .expect("config");
    let m = Manifest {
        config,
        layers,
        annotations: Default::default(),
    };
    let mut d = layout
        .write_json_blob(MEDIA_MANIFEST, &m.to_json())
        .expect("manifest");
    d.annotations
        .insert(ANNOTATION_REF_NAME.into(), "latest".into());
    layout
        .write_index_json(&Index {
            manifests: vec![d],
            annotations: Default::default(),
        })
        .expect("index");
    out
}

fn forge_push(layout: &Path, host: &str) -> (Duration, u64) {
    let t = Instant::now();
    let client = Client::new(
        host,
        ClientOptions {
            insecure: true,
            ..Default::default()
        },
    )
    .expect("client");
    client.ping().expect("ping");
    let lp = plan_layout(layout, "bench/bench").expect("plan");
    let mut plan = lp.plan;
    plan.tags = lp.tags;
    let r = push(
        &client,
        &plan,
        &PushOptions::default(),
        &mut MountState::default(),
        &Shell::silent(),
    )
    .expect("push");
    (t.elapsed(), r.bytes_pushed)
}

fn skopeo(layout: &Path, host: &str) -> Duration {
    let t = Instant::now();
    let st = Command::new("skopeo")
        .args([
            "copy",
            "-q",
            "--preserve-digests",
            "--dest-tls-verify=false",
        ])
        .arg(format!("oci:{}:latest", layout.display()))
        .arg(format!("docker://{host}/bench/bench:latest"))
        .status()
        .expect("skopeo");
    assert!(st.success(), "skopeo copy failed");
    t.elapsed()
}

fn forge_cli(layout: &Path, host: &str) -> Option<Duration> {
    let exe = std::env::current_exe().ok()?.with_file_name("forge");
    if !exe.is_file() {
        return None;
    }
    let project = layout.parent()?.parent()?.parent()?;
    let t = Instant::now();
    let st = Command::new(exe)
        .current_dir(project)
        .args([
            "-q",
            "publish",
            "--insecure",
            "--no-sign",
            "bench",
            "--registry",
        ])
        .arg(format!("{host}/bench"))
        .env("FORGE_OUT", project.join("out"))
        .stdout(Stdio::null())
        .status()
        .ok()?;
    st.success().then(|| t.elapsed())
}

fn main() {
    let work = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("forge-push-bench"));
    if !tools::require_tools(&["docker-registry", "skopeo"]) {
        return;
    }
    let layout = layout(&work);
    let total = (LAYERS * LAYER_MIB) as f64;
    let mibs = |d: Duration| total / d.as_secs_f64();

    let reg = Registry::start_in(&work);
    let (fresh, bytes) = forge_push(&layout, &reg.host());
    assert!(bytes >= ((LAYERS * LAYER_MIB) << 20) as u64);
    let (noop, nbytes) = forge_push(&layout, &reg.host());
    assert_eq!(nbytes, 0);
    let cli_noop = forge_cli(&layout, &reg.host());
    drop(reg);

    let reg = Registry::start_in(&work);
    let s_fresh = skopeo(&layout, &reg.host());
    let s_noop = skopeo(&layout, &reg.host());
    drop(reg);

    println!(
        "push of {LAYERS} x {LAYER_MIB} MiB incompressible layers to a fresh docker-registry on loopback"
    );
    println!("{:<44} {:>9} {:>10}", "tool", "seconds", "MiB/s");
    println!(
        "{:<44} {:>9.3} {:>10.1}",
        "forge push (4 parallel uploads)",
        fresh.as_secs_f64(),
        mibs(fresh)
    );
    println!(
        "{:<44} {:>9.3} {:>10.1}",
        "skopeo copy --preserve-digests",
        s_fresh.as_secs_f64(),
        mibs(s_fresh)
    );
    println!(
        "{:<44} {:>9.3}",
        "forge no-op re-push (library)",
        noop.as_secs_f64()
    );
    if let Some(d) = cli_noop {
        println!(
            "{:<44} {:>9.3}",
            "forge publish no-op (process)",
            d.as_secs_f64()
        );
    }
    println!(
        "{:<44} {:>9.3}",
        "skopeo copy no-op (process)",
        s_noop.as_secs_f64()
    );
    println!(
        "throughput ratio forge/skopeo: {:.2}x",
        s_fresh.as_secs_f64() / fresh.as_secs_f64()
    );
}
