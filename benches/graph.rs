//! Benchmark: a no-op `forge build` over a 1,000-recipe graph beside `ninja`
//! on an equivalent 1,000-target no-op build, in the same run; plus the CPU
//! utilisation of a full build of the graph.
//!
//! Run: `cargo bench --bench graph` (add `-- --units N --runs R` to change
//! the size or repetitions). Needs `ninja` on PATH for the comparison.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

#[path = "../tests/cli/graphgen.rs"]
mod graphgen;
#[path = "../tests/support/project.rs"]
mod project;
/// What graphgen (written for the integration tests) calls `crate::support`.
mod support {
    pub use super::project::*;
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn forge(root: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_forge"));
    cmd.current_dir(root)
        .env("FORGE_CACHE_DIR", root.join(".cache"))
        .env_remove("SOURCE_DATE_EPOCH")
        .args(["-q", "--sandbox", "none", "build", "--no-images"]);
    cmd
}

fn must(cmd: &mut Command) {
    let out = cmd.output().expect("spawn");
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn time_runs(runs: usize, mut f: impl FnMut()) -> Duration {
    median(
        (0..runs)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed()
            })
            .collect(),
    )
}

/// CPU seconds (user + system) used by finished children so far.
fn children_cpu() -> Duration {
    let mut ru = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a full rusage into the pointer we pass.
    let ru = unsafe {
        libc::getrusage(libc::RUSAGE_CHILDREN, ru.as_mut_ptr());
        ru.assume_init()
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, (t.tv_usec as u32) * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn write_ninja(dir: &Path, n: usize) {
    let mut s = String::from("rule cp\n  command = cp $in $out\n\n");
    for i in 0..n {
        let deps: Vec<String> = graphgen::deps_of(i)
            .into_iter()
            .map(|d| format!("out/{}.done", graphgen::name(d)))
            .collect();
        let order_only = if deps.is_empty() {
            String::new()
        } else {
            format!(" || {}", deps.join(" "))
        };
        s.push_str(&format!(
            "build out/{name}.done: cp recipes/{name}/data.txt{order_only}\n",
            name = graphgen::name(i)
        ));
    }
    std::fs::write(dir.join("build.ninja"), s).unwrap();
}

fn main() {
    let n = arg("--units", 1000);
    let runs = arg("--runs", 7);
    let jobs = std::thread::available_parallelism().map_or(1, |j| j.get());
    let project = project::Project::new();
    let root = project.path();
    graphgen::write_graph(root, n);
    // The test suite's fixed keys: no key generation in the measurement.
    project.key().commit();

    println!("graph: {n} recipes, {jobs} cores");
    let cpu0 = children_cpu();
    let t = Instant::now();
    must(&mut forge(root));
    let wall = t.elapsed();
    let cpu = children_cpu() - cpu0;
    println!(
        "full build:        {:>8.2} s wall, {:>8.2} s CPU, utilisation {:.0}% of {jobs} cores",
        wall.as_secs_f64(),
        cpu.as_secs_f64(),
        100.0 * cpu.as_secs_f64() / (wall.as_secs_f64() * jobs as f64)
    );

    let forge_noop = time_runs(runs, || must(&mut forge(root)));
    println!(
        "forge no-op:       {:>8.1} ms (median of {runs})",
        forge_noop.as_secs_f64() * 1e3
    );

    let has_ninja = Command::new("ninja").arg("--version").output().is_ok();
    if !has_ninja {
        println!("ninja not found: no comparison");
        return;
    }
    write_ninja(root, n);
    must(
        Command::new("ninja")
            .args(["-C"])
            .arg(root)
            .arg("-j")
            .arg(jobs.to_string())
            .arg("-n"),
    );
    must(Command::new("ninja").arg("-C").arg(root).arg("--quiet"));
    let ninja_noop = time_runs(runs, || {
        must(Command::new("ninja").arg("-C").arg(root).arg("--quiet"))
    });
    println!(
        "ninja no-op:       {:>8.1} ms (median of {runs})",
        ninja_noop.as_secs_f64() * 1e3
    );
    println!(
        "ratio forge/ninja: {:>8.2}x (target: under 100 ms and within 3x)",
        forge_noop.as_secs_f64() / ninja_noop.as_secs_f64()
    );
}
