//! The one integration test binary: drives the real `forge` executable.
//!
//! Tests that need an outside tool call [`support::require_tool`]: locally they
//! skip when the tool is missing; with `FORGE_TEST_REQUIRE_TOOLS=1` (set by
//! `.ci/run`) a missing tool fails the test.

mod apk;
mod base;
mod build;
mod cache;
mod ci;
mod ci_arch;
mod ci_loop;
mod crio;
mod examples;
mod faults;
mod fuzz_regressions;
mod graph;
mod graphgen;
mod hermetic;
mod image;
mod os;
mod os_apply;
mod os_boot;
mod os_boot_arm64;
mod os_pi;
mod os_plan;
mod pin;
mod plan;
mod recipe;
mod registry;
mod registry_faults;
mod seed;
mod source;
mod support;
mod update;
mod update_ci;
mod update_prebuild;
