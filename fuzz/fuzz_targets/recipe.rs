//! Fuzz target: `forge::fuzzing::recipe`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| forge::fuzzing::recipe(data));
