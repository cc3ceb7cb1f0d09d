//! Fuzz target: `forge::fuzzing::apkindex`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| forge::fuzzing::apkindex(data));
