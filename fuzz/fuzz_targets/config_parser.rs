//! The configuration parser on arbitrary text: an AST or an error with a position,
//! never a panic, and a syntax error never quotes a secret option's value.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    sluice::inputs::fuzzing::config_parser(data);
});
