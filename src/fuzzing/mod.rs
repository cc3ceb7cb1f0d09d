//! Fuzzing entry points: one function per parser that reads hostile input.
//!
//! Every function takes raw bytes, feeds them to the real parser (no copy of
//! its logic), checks cheap invariants, and must never panic: errors are the
//! expected outcome for most inputs. The `cargo fuzz` targets in `fuzz/`
//! call these, and so does the regression test (`tests/cli/fuzz_regressions.rs`)
//! that replays the inputs under `tests/fuzz/<target>/` in CI. Keeping one
//! entry point for both means a crash found by the fuzzer is replayed by the
//! exact code that found it. Hidden from docs: this is not a stable API.

mod disk;
mod pure;

pub use disk::{apk, oci, unpack};
pub use pure::{apkindex, auth, recipe};

/// One fuzz entry point.
pub type Target = fn(&[u8]);

/// The fuzz targets by name, as in `fuzz/fuzz_targets/<name>.rs` and
/// `tests/fuzz/<name>/`.
pub const TARGETS: &[(&str, Target)] = &[
    ("recipe", recipe),
    ("apk", apk),
    ("apkindex", apkindex),
    ("oci", oci),
    ("auth", auth),
    ("unpack", unpack),
];

/// Split `data` into parts at every `0xff` byte (never part of UTF-8 text, so
/// a structured input such as several JSON documents splits cleanly).
fn parts(data: &[u8]) -> Vec<&[u8]> {
    data.split(|b| *b == 0xff).collect()
}
