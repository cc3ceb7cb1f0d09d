//! Fuzz target: `forge::fuzzing::auth`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| forge::fuzzing::auth(data));
