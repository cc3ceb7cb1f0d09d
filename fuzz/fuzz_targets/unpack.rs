//! Fuzz target: `forge::fuzzing::unpack`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| forge::fuzzing::unpack(data));
