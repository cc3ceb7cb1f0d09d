//! Fuzz target: `forge::fuzzing::apk`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| forge::fuzzing::apk(data));
