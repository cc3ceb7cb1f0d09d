//! A real registry for tests and benches: Debian's `docker-registry` (CNCF
//! distribution 2.8) on a free loopback port, with filesystem storage in its
//! own temporary folder.
//!
//! Tests publish to it, pull from it, and kill it part-way through (fault
//! tests) and start it again on the same port and storage. It is killed when
//! dropped. Callers gate on `require_tool("docker-registry")` first (the one
//! tool gate, `tests/support/tools.rs`); a registry that cannot start is a
//! panic naming its log, never a skip.
#![allow(dead_code)]

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a registry may take to answer `GET /v2/` after it is started.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// A running `docker-registry` with its own port and storage.
pub struct Registry {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

impl Registry {
    /// Start a registry without authentication, storage under the system
    /// temp folder.
    pub fn start() -> Registry {
        Self::start_with(None, None)
    }

    /// Start a registry whose storage lives under `parent` (benches keep
    /// hundreds of MiB off a small /tmp).
    pub fn start_in(parent: &Path) -> Registry {
        Self::start_with(None, Some(parent))
    }

    /// Start a registry that demands HTTP basic authentication; `htpasswd` is
    /// the whole file (`user:BCRYPT-HASH` lines).
    pub fn start_with_htpasswd(htpasswd: &str) -> Registry {
        Self::start_with(Some(htpasswd), None)
    }

    fn start_with(htpasswd: Option<&str>, parent: Option<&Path>) -> Registry {
        let mut builder = tempfile::Builder::new();
        builder.prefix("forge-registry-");
        let dir = match parent {
            Some(p) => builder.tempdir_in(p),
            None => builder.tempdir(),
        }
        .expect("registry folder");
        if let Some(text) = htpasswd {
            std::fs::write(dir.path().join("htpasswd"), text).expect("htpasswd");
        }
        let mut reg = Registry {
            dir,
            port: 0,
            child: None,
        };
        // A free port can be taken by someone else before the registry binds
        // it; try a few.
        for _ in 0..5 {
            reg.port = free_port();
            reg.write_config(htpasswd.is_some());
            if reg.try_spawn().is_ok() {
                return reg;
            }
        }
        panic!("docker-registry did not start:\n{}", reg.log());
    }

    fn write_config(&self, auth: bool) {
        let mut cfg = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
             http:\n  addr: 127.0.0.1:{}\n",
            self.storage().display(),
            self.port
        );
        if auth {
            cfg.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: forge-test\n    path: {}\n",
                self.dir.path().join("htpasswd").display()
            ));
        }
        std::fs::write(self.dir.path().join("config.yml"), cfg).expect("registry config");
    }

    /// Spawn the process and wait until it answers; `Err` when it exited.
    fn try_spawn(&mut self) -> Result<(), ()> {
        let log = std::fs::File::create(self.dir.path().join("log")).expect("registry log");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(self.dir.path().join("config.yml"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting docker-registry (gate the test on require_tool first)");
        self.child = Some(child);
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let child = self.child.as_mut().expect("child");
            if child.try_wait().expect("registry status").is_some() {
                self.child = None;
                return Err(());
            }
            if answers(self.port) {
                return Ok(());
            }
            assert!(
                Instant::now() < deadline,
                "docker-registry did not answer within {READY_TIMEOUT:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Start the process again on the same port and storage (after
    /// [`Registry::kill`]).
    pub fn restart(&mut self) {
        self.kill();
        if self.try_spawn().is_err() {
            panic!(
                "docker-registry did not restart on port {}:\n{}",
                self.port,
                self.log()
            );
        }
    }

    /// Kill the process, empty its storage and start it again on the same
    /// port: a fresh registry for the next trial of a fault test.
    pub fn reset(&mut self) {
        self.kill();
        match std::fs::remove_dir_all(self.storage()) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => panic!("{}: {e}", self.storage().display()),
        }
        self.restart();
    }

    /// SIGKILL the process and reap it; the storage stays.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Whether the process is running (not killed, not exited).
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The storage root (`docker/registry/v2/...` below it).
    pub fn storage(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Files of the blob store with their modification times, so a test can
    /// tell which blobs a run wrote.
    pub fn stored_blobs(&self) -> std::collections::BTreeMap<PathBuf, std::time::SystemTime> {
        walkdir::WalkDir::new(self.storage().join("docker/registry/v2/blobs"))
            .into_iter()
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_file())
            .map(|e| {
                let mtime = e.metadata().expect("blob metadata").modified();
                (e.path().to_path_buf(), mtime.expect("blob mtime"))
            })
            .collect()
    }

    /// What the registry wrote to stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A loopback port nobody listens on right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Whether an HTTP server on `port` answers `GET /v2/` as a registry does
/// (200, or 401 when it demands credentials).
fn answers(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let req = format!("GET /v2/ HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    if s.read_exact(&mut head).is_err() {
        return false;
    }
    head.starts_with(b"HTTP/1.") && (head.ends_with(b"200") || head.ends_with(b"401"))
}
