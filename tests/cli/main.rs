//! The one integration test binary: drives the real `forge` executable.
//!
//! Tests that need an outside tool call [`support::require_tool`]: locally they
//! skip when the tool is missing; with `FORGE_TEST_REQUIRE_TOOLS=1` (set by
//! `.ci/run`) a missing tool fails the test.

mod support;
mod apk;
mod crun;
mod build;
mod image;
mod source;
mod recipe;
mod graphgen;
mod graph;
mod registry;
mod examples;
