//! Crash helpers for fault tests: run a command in its own process group,
//! SIGKILL the whole group at a chosen moment (forge and every child it
//! started: bwrap, the build's shell, compressors), and list the temporary
//! files a crash may have left in an output tree.
#![allow(dead_code)]

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Start `cmd` in a new process group with its output discarded.
pub fn spawn_group(cmd: &mut Command) -> Child {
    cmd.process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawning the command under test")
}

/// SIGKILL the whole process group of `child` and reap `child`. Returns
/// whether it was still running when killed (false: it had finished first).
pub fn kill_group(child: &mut Child) -> bool {
    let running = matches!(child.try_wait(), Ok(None));
    let pgid = child.id();
    // The group may be gone already; kill's status says nothing useful.
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pgid}")])
        .stderr(Stdio::null())
        .status()
        .expect("running kill");
    let _ = child.wait();
    running
}

/// Run `cmd` in its own group and SIGKILL the group after `delay`.
/// Returns whether the kill hit a running process.
pub fn run_and_kill(cmd: &mut Command, delay: Duration) -> bool {
    let mut child = spawn_group(cmd);
    std::thread::sleep(delay);
    kill_group(&mut child)
}

/// Whether a file name is one of the temporary names forge writes before a
/// rename (`.tmp-*`, `.tmpXXXXXX`, `.NAME.tmp-*`, `*.tmp`, `*.part`,
/// `.part-*`) or its staging folder (`.staging`).
pub fn is_temp_name(name: &str) -> bool {
    name.starts_with(".tmp")
        || name == ".staging"
        || name.contains(".tmp-")
        || name.ends_with(".tmp")
        || name.ends_with(".part")
        || name.starts_with(".part")
}

/// Every file or folder below `dir` whose name is a temporary name.
pub fn temp_leftovers(dir: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| is_temp_name(&e.file_name().to_string_lossy()))
        .map(|e| e.into_path())
        .collect()
}
