//! The Beats frame decoder on arbitrary bytes, split at an arbitrary point: it returns
//! frames or an error, never panics, and never holds more than its limits allow.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    sluice::inputs::fuzzing::beats_decoder(data);
});
