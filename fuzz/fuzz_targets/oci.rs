//! Fuzz target: `forge::fuzzing::oci`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| forge::fuzzing::oci(data));
