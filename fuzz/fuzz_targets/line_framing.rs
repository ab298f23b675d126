//! The tcp line framing on arbitrary bytes: every byte is in a line, counted as
//! discarded, or still buffered, and no line is longer than the cap.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    sluice::inputs::fuzzing::line_framing(data);
});
