//! The one output channel.
//!
//! Every line a user sees goes through [`Shell`]: status lines with a
//! right-aligned verb on stderr (cargo style), warnings, errors with hints, and
//! progress bars that hide themselves when stderr is not a terminal, in quiet
//! mode, or in `--json` mode. stdout carries only data meant for pipes
//! (`forge graph`, `forge inspect`, `--json` events).
//!
//! Library code never prints: it takes a `&Shell` (cheap to clone) and reports
//! through it.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How much to say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    /// Errors only.
    Quiet,
    /// Status lines and warnings.
    Normal,
    /// Also debug detail.
    Verbose,
}

/// When to use colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum ColorChoice {
    /// Colour when stderr is a terminal and `NO_COLOR` is unset.
    #[default]
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

#[derive(Debug)]
struct Inner {
    verbosity: Verbosity,
    color: bool,
    json: bool,
    progress: bool,
    multi: MultiProgress,
    lock: Mutex<()>,
}

/// The output channel; clone it freely.
#[derive(Debug, Clone)]
pub struct Shell {
    inner: Arc<Inner>,
}

impl Default for Shell {
    fn default() -> Self {
        Shell::new(Verbosity::Normal, ColorChoice::Never, false)
    }
}

impl Shell {
    /// A shell writing to the process's stderr/stdout.
    pub fn new(verbosity: Verbosity, color: ColorChoice, json: bool) -> Shell {
        let tty = std::io::stderr().is_terminal();
        let color = match color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => tty && std::env::var_os("NO_COLOR").is_none(),
        };
        let progress = tty && !json && verbosity == Verbosity::Normal;
        let multi = MultiProgress::new();
        if !progress {
            multi.set_draw_target(ProgressDrawTarget::hidden());
        }
        Shell {
            inner: Arc::new(Inner {
                verbosity,
                color,
                json,
                progress,
                multi,
                lock: Mutex::new(()),
            }),
        }
    }

    /// A shell that prints nothing (tests, library use).
    pub fn silent() -> Shell {
        Shell::new(Verbosity::Quiet, ColorChoice::Never, false)
    }

    /// Whether `--json` is on.
    pub fn is_json(&self) -> bool {
        self.inner.json
    }

    /// Whether verbose output is on.
    pub fn is_verbose(&self) -> bool {
        self.inner.verbosity >= Verbosity::Verbose
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.inner.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    fn emit_err(&self, line: &str) {
        let _guard = self.inner.lock.lock().unwrap_or_else(|e| e.into_inner());
        if self.inner.progress {
            self.inner.multi.suspend(|| eprintln_raw(line));
        } else {
            eprintln_raw(line);
        }
    }

    /// A status line: `   Compiling hello 1.0-r0` (verb right-aligned to 12).
    pub fn status(&self, verb: &str, msg: impl AsRef<str>) {
        if self.inner.verbosity < Verbosity::Normal || self.inner.json {
            return;
        }
        let verb = self.paint("1;32", &format!("{verb:>12}"));
        self.emit_err(&format!("{verb} {}", msg.as_ref()));
    }

    /// A detail line shown only with `-v`.
    pub fn verbose(&self, msg: impl AsRef<str>) {
        if self.inner.verbosity >= Verbosity::Verbose && !self.inner.json {
            self.emit_err(&format!("{:>12} {}", "", msg.as_ref()));
        }
    }

    /// A warning (shown unless quiet).
    pub fn warn(&self, msg: impl AsRef<str>) {
        if self.inner.verbosity < Verbosity::Normal {
            return;
        }
        let label = self.paint("1;33", "warning");
        self.emit_err(&format!("{label}: {}", msg.as_ref()));
    }

    /// A note (shown unless quiet).
    pub fn note(&self, msg: impl AsRef<str>) {
        if self.inner.verbosity < Verbosity::Normal {
            return;
        }
        let label = self.paint("1;36", "note");
        self.emit_err(&format!("{label}: {}", msg.as_ref()));
    }

    /// An error line (always shown).
    pub fn error(&self, msg: impl AsRef<str>) {
        let label = self.paint("1;31", "error");
        self.emit_err(&format!("{label}: {}", msg.as_ref()));
    }

    /// Raw lines on stderr (e.g. the tail of a failed build log); always shown.
    pub fn block(&self, text: impl AsRef<str>) {
        self.emit_err(text.as_ref().trim_end_matches('\n'));
    }

    /// Pipeable data on stdout.
    pub fn data(&self, text: impl AsRef<str>) {
        let _guard = self.inner.lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}", text.as_ref());
    }

    /// A machine-readable event (only in `--json` mode), one JSON object per line on stdout.
    pub fn event(&self, value: &serde_json::Value) {
        if self.inner.json {
            self.data(value.to_string());
        }
    }

    /// A byte-count progress bar (hidden when progress is off).
    pub fn bytes_bar(&self, len: Option<u64>, msg: impl Into<String>) -> ProgressBar {
        let bar = match len {
            Some(n) => ProgressBar::new(n),
            None => ProgressBar::new_spinner(),
        };
        let style = ProgressStyle::with_template(
            "{msg:>12.cyan.bold} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_message(msg.into());
        self.attach(bar)
    }

    /// A spinner for one running unit (hidden when progress is off).
    pub fn spinner(&self, msg: impl Into<String>) -> ProgressBar {
        let bar = ProgressBar::new_spinner();
        let style = ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        bar.set_style(style);
        bar.set_message(msg.into());
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        self.attach(bar)
    }

    fn attach(&self, bar: ProgressBar) -> ProgressBar {
        if self.inner.progress {
            self.inner.multi.add(bar)
        } else {
            bar.set_draw_target(ProgressDrawTarget::hidden());
            bar
        }
    }
}

#[allow(clippy::print_stderr)]
fn eprintln_raw(line: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{line}");
}
