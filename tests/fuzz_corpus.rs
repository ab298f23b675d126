//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/`) through the same
//! harnesses the cargo-fuzz targets run, on the stable toolchain: every input a fuzzer
//! found interesting stays a regression test.

use sluice::inputs::fuzzing;

fn replay(target: &str, harness: fn(&[u8])) {
    let dir = format!("{}/fuzz/corpus/{target}", env!("CARGO_MANIFEST_DIR"));
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{dir}: {e}")) {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let outcome = std::panic::catch_unwind(|| harness(&data));
        assert!(outcome.is_ok(), "{} fails {target}", path.display());
        n += 1;
    }
    assert!(n >= 5, "the {target} corpus lost its inputs ({n})");
}

#[test]
fn beats_decoder_corpus() {
    replay("beats_decoder", fuzzing::beats_decoder);
}

#[test]
fn line_framing_corpus() {
    replay("line_framing", fuzzing::line_framing);
}

#[test]
fn config_parser_corpus() {
    replay("config_parser", fuzzing::config_parser);
}
