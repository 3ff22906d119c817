//! Fuzz target: `cdc_decode` must never panic and must keep its properties (see the check).
#![no_main]

#[path = "../../tests/src/fuzz_checks.rs"]
mod fuzz_checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_checks::cdc_decode(data));
