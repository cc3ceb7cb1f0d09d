//! One wrapper for running external commands (bwrap, strip, mkfs, qemu, …).
//!
//! Every outside program forge starts goes through [`Cmd`], so they all behave
//! the same way:
//!
//! - stdin is `/dev/null` unless a caller asks otherwise, so a tool that
//!   unexpectedly prompts fails instead of hanging;
//! - the shell-quoted command line is logged at `debug` level (`forge -v` with
//!   `RUST_LOG=debug`), so a failure can be reproduced by pasting it;
//! - a failed run becomes a [`ProcessError`] holding the exit status and the
//!   last [`STDERR_TAIL`] bytes of stderr, never a bare "exit status 1".
//!
//! - secrets stay home: the child starts without any variable of forge's
//!   environment whose name, upper-cased, contains `PASSWORD`, `PASSWD`,
//!   `PASSPHRASE`, `TOKEN`, `SECRET` or `CREDENTIAL` (so
//!   `FORGE_REGISTRY_PASSWORD`, `COSIGN_PASSWORD`, `GITHUB_TOKEN`,
//!   `AWS_SECRET_ACCESS_KEY` never reach bwrap, strip, cc or a build
//!   script). A caller that means to hand one over sets it explicitly with
//!   [`Cmd::env`] ([`is_secret_name`]).
//!
//! Each running method documents which streams it captures and which it
//! inherits or redirects.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::path::Path;
use std::process::{Command, ExitStatus, Output, Stdio};

/// How many bytes of stderr a [`ProcessError`] keeps (the end of it).
pub const STDERR_TAIL: usize = 1024;

/// Why an external command did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The program could not be started at all (missing, not executable).
    #[error("could not start `{program}`")]
    Spawn {
        /// The program as given.
        program: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The program ran and exited unsuccessfully.
    #[error("`{command}` failed ({status}){}", render_tail(stderr))]
    Failed {
        /// The shell-quoted command line.
        command: String,
        /// How it exited.
        status: ExitStatus,
        /// The last [`STDERR_TAIL`] bytes of stderr (empty when stderr went
        /// elsewhere, e.g. into a log file).
        stderr: String,
    },
    /// The program succeeded but its output did not parse.
    #[error("parsing the output of `{command}`")]
    Parse {
        /// The shell-quoted command line.
        command: String,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
}

impl ProcessError {
    /// The exit status, when the program ran.
    pub fn status(&self) -> Option<ExitStatus> {
        match self {
            ProcessError::Spawn { .. } => None,
            ProcessError::Failed { status, .. } => Some(*status),
            ProcessError::Parse { .. } => None,
        }
    }
}

fn render_tail(stderr: &str) -> String {
    let t = stderr.trim_end();
    if t.is_empty() {
        String::new()
    } else {
        format!("\n--- stderr (end)\n{t}")
    }
}

/// Whether an environment variable named `name` holds a secret that outside
/// commands must not inherit (see the module docs).
pub fn is_secret_name(name: &OsStr) -> bool {
    let n = name.to_string_lossy().to_ascii_uppercase();
    [
        "PASSWORD",
        "PASSWD",
        "PASSPHRASE",
        "TOKEN",
        "SECRET",
        "CREDENTIAL",
    ]
    .iter()
    .any(|w| n.contains(w))
}

/// A command to run; build it like [`std::process::Command`].
#[derive(Debug)]
pub struct Cmd {
    inner: Command,
    program: OsString,
    args: Vec<OsString>,
    stdin_inherit: bool,
}

impl Cmd {
    /// A command running `program` (looked up on `PATH` when it has no `/`).
    pub fn new(program: impl AsRef<OsStr>) -> Cmd {
        let mut inner = Command::new(program.as_ref());
        for (k, _) in std::env::vars_os() {
            if is_secret_name(&k) {
                inner.env_remove(&k);
            }
        }
        Cmd {
            inner,
            program: program.as_ref().to_os_string(),
            args: Vec::new(),
            stdin_inherit: false,
        }
    }

    /// Append one argument.
    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Cmd {
        self.inner.arg(arg.as_ref());
        self.args.push(arg.as_ref().to_os_string());
        self
    }

    /// Append several arguments.
    pub fn args<I, S>(&mut self, args: I) -> &mut Cmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        for a in args {
            self.arg(a);
        }
        self
    }

    /// Set one environment variable.
    pub fn env(&mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> &mut Cmd {
        self.inner.env(key, value);
        self
    }

    /// Start from an empty environment.
    pub fn env_clear(&mut self) -> &mut Cmd {
        self.inner.env_clear();
        self
    }

    /// Run in `dir`.
    pub fn current_dir(&mut self, dir: impl AsRef<Path>) -> &mut Cmd {
        self.inner.current_dir(dir);
        self
    }

    /// Let the child read the caller's stdin (default: `/dev/null`).
    pub fn inherit_stdin(&mut self) -> &mut Cmd {
        self.stdin_inherit = true;
        self
    }

    /// The command line, shell-quoted, for logs and error messages.
    pub fn display(&self) -> String {
        let mut s = quote(&self.program.to_string_lossy());
        for a in &self.args {
            s.push(' ');
            s.push_str(&quote(&a.to_string_lossy()));
        }
        s
    }

    fn prepare(&mut self) {
        tracing::debug!(command = %self.display(), "running");
        if !self.stdin_inherit {
            self.inner.stdin(Stdio::null());
        }
    }

    fn spawn_error(&self, source: std::io::Error) -> ProcessError {
        ProcessError::Spawn {
            program: self.program.to_string_lossy().into_owned(),
            source,
        }
    }

    /// Run to completion capturing stdout and stderr; fail unless it exits 0.
    pub fn run(&mut self) -> Result<Output, ProcessError> {
        self.prepare();
        self.inner.stdout(Stdio::piped()).stderr(Stdio::piped());
        let out = self.inner.output().map_err(|e| self.spawn_error(e))?;
        if !out.status.success() {
            return Err(ProcessError::Failed {
                command: self.display(),
                status: out.status,
                stderr: tail_utf8(&out.stderr, STDERR_TAIL),
            });
        }
        Ok(out)
    }

    /// Run to completion and return stdout as text (stderr captured for the
    /// error only).
    pub fn run_stdout(&mut self) -> Result<String, ProcessError> {
        let out = self.run()?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Run to completion and parse stdout as JSON (for tools with a JSON
    /// output mode, e.g. `skopeo inspect`); stderr is captured for the error.
    pub fn run_json<T: serde::de::DeserializeOwned>(&mut self) -> Result<T, ProcessError> {
        let out = self.run()?;
        serde_json::from_slice(&out.stdout).map_err(|source| ProcessError::Parse {
            command: self.display(),
            source,
        })
    }

    /// Run to completion with stdout and stderr both appended to `log`; fail
    /// unless it exits 0. The error's `stderr` is empty: read the log.
    pub fn run_logged(&mut self, log: &File) -> Result<(), ProcessError> {
        self.prepare();
        let out = log.try_clone().map_err(|e| self.spawn_error(e))?;
        let err = log.try_clone().map_err(|e| self.spawn_error(e))?;
        self.inner.stdout(out).stderr(err);
        let status = self.inner.status().map_err(|e| self.spawn_error(e))?;
        if !status.success() {
            return Err(ProcessError::Failed {
                command: self.display(),
                status,
                stderr: String::new(),
            });
        }
        Ok(())
    }
    /// Start the command with stdout and stderr both appended to `log` and
    /// return the running child, for a caller that watches it (a VM boot)
    /// and kills it when done.
    pub fn spawn_logged(&mut self, log: &File) -> Result<std::process::Child, ProcessError> {
        self.prepare();
        let out = log.try_clone().map_err(|e| self.spawn_error(e))?;
        let err = log.try_clone().map_err(|e| self.spawn_error(e))?;
        self.inner.stdout(out).stderr(err);
        self.inner.spawn().map_err(|e| self.spawn_error(e))
    }
}

/// The last `max` bytes of `bytes` as text, starting at a line or character
/// boundary where possible.
pub fn tail_utf8(bytes: &[u8], max: usize) -> String {
    let start = bytes.len().saturating_sub(max);
    let text = String::from_utf8_lossy(&bytes[start..]);
    if start > 0
        && let Some(nl) = text.find('\n')
    {
        return text[nl + 1..].to_string();
    }
    text.into_owned()
}

/// Quote one word for a POSIX shell, only when needed.
pub fn quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
    if plain {
        return word.to_string();
    }
    let mut s = String::with_capacity(word.len() + 2);
    s.push('\'');
    for c in word.chars() {
        if c == '\'' {
            s.push_str("'\\''");
        } else {
            s.push(c);
        }
    }
    s.push('\'');
    s
}

/// Find `tool` in the `:`-separated `path` list (or use it as is when it holds
/// a `/`); `None` when no executable file is found.
pub fn find_in_path(tool: &str, path: &OsStr) -> Option<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;
    let is_exe = |p: &Path| {
        p.metadata()
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    if tool.contains('/') {
        let p = Path::new(tool);
        return is_exe(p).then(|| p.to_path_buf());
    }
    std::env::split_paths(path)
        .map(|d| d.join(tool))
        .find(|p| is_exe(p))
}

/// Render a list of words as one shell-quoted line.
pub fn quote_all<I, S>(words: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut s = String::new();
    for (i, w) in words.into_iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(&quote(w.as_ref()));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        let cases = [
            ("abc", "abc"),
            ("/usr/bin/x", "/usr/bin/x"),
            ("", "''"),
            ("a b", "'a b'"),
            ("it's", "'it'\\''s'"),
            ("$HOME", "'$HOME'"),
            ("--opt=1", "--opt=1"),
        ];
        for (input, want) in cases {
            assert_eq!(quote(input), want, "quote({input:?})");
        }
        assert_eq!(quote_all(["echo", "a b"]), "echo 'a b'");
    }

    #[test]
    fn tail_cuts_at_line_boundary() {
        assert_eq!(tail_utf8(b"short", 1024), "short");
        let long = format!("{}\nlast line\n", "x".repeat(2000));
        assert_eq!(tail_utf8(long.as_bytes(), 20), "last line\n");
    }

    #[test]
    fn stdin_is_null_and_success_captures_stdout() {
        let out = Cmd::new("sh")
            .args(["-c", "cat; echo done"])
            .run_stdout()
            .unwrap();
        assert_eq!(out, "done\n");
    }

    #[test]
    fn failure_keeps_stderr_tail_and_status() {
        let err = Cmd::new("sh")
            .args(["-c", "echo first >&2; echo oops >&2; exit 3"])
            .run()
            .unwrap_err();
        assert_eq!(err.status().and_then(|s| s.code()), Some(3));
        let text = err.to_string();
        assert!(
            text.starts_with("`sh -c 'echo first >&2; echo oops >&2; exit 3'` failed"),
            "{text}"
        );
        assert!(text.ends_with("first\noops"), "{text}");
    }

    #[test]
    fn json_output_is_parsed() {
        let v: serde_json::Value = Cmd::new("echo").arg(r#"{"a": [1, 2]}"#).run_json().unwrap();
        assert_eq!(v, serde_json::json!({"a": [1, 2]}));
        let err = Cmd::new("echo")
            .arg("not json")
            .run_json::<serde_json::Value>()
            .unwrap_err();
        assert_eq!(err.to_string(), "parsing the output of `echo 'not json'`");
        assert_eq!(err.status(), None);
    }

    #[test]
    fn missing_program_is_a_spawn_error() {
        let err = Cmd::new("/nonexistent/forge-tool").run().unwrap_err();
        assert!(matches!(err, ProcessError::Spawn { .. }));
        assert_eq!(err.to_string(), "could not start `/nonexistent/forge-tool`");
    }

    #[test]
    fn logged_run_writes_both_streams_to_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let log = File::create(&path).unwrap();
        Cmd::new("sh")
            .args(["-c", "echo out; echo err >&2"])
            .run_logged(&log)
            .unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "out\nerr\n");
        let err = Cmd::new("false").run_logged(&log).unwrap_err();
        assert_eq!(err.status().and_then(|s| s.code()), Some(1));
    }

    #[test]
    fn finds_tools_on_a_path() {
        let path = OsStr::new("/nonexistent:/usr/bin:/bin");
        assert!(find_in_path("sh", path).is_some());
        assert!(find_in_path("forge-no-such-tool", path).is_none());
        assert_eq!(
            find_in_path("/bin/sh", path).as_deref(),
            Some(Path::new("/bin/sh"))
        );
    }

    #[test]
    fn secrets_are_not_inherited_by_outside_commands() {
        // The environment is process-wide, so the check runs in a child
        // test process started with the secrets set.
        let out = Command::new(std::env::current_exe().unwrap())
            .args(["--ignored", "--exact", "--nocapture"])
            .arg("process::tests::child_environment_probe")
            .env("FORGE_REGISTRY_PASSWORD", "reg-pw")
            .env("COSIGN_PASSWORD", "cosign-pw")
            .env("MY_API_TOKEN", "tok")
            .env("FORGE_PROBE_KEEP", "kept")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{text}");
        assert!(text.contains("1 passed"), "{text}");
        assert!(is_secret_name(OsStr::new("aws_secret_access_key")));
        assert!(!is_secret_name(OsStr::new("FORGE_REGISTRY_USER")));
    }

    #[test]
    #[ignore = "run as a child process by secrets_are_not_inherited_by_outside_commands"]
    fn child_environment_probe() {
        let env = Cmd::new("/bin/sh")
            .args(["-c", "env"])
            .run_stdout()
            .unwrap();
        assert!(env.contains("FORGE_PROBE_KEEP=kept"), "{env}");
        for secret in ["FORGE_REGISTRY_PASSWORD", "COSIGN_PASSWORD", "MY_API_TOKEN"] {
            assert!(!env.contains(&format!("{secret}=")), "{secret} inherited");
        }
    }
}
