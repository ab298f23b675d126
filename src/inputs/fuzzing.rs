//! Harnesses shared by the fuzz targets (`fuzz/`, cargo-fuzz on the nightly toolchain)
//! and the test that replays their committed corpus on stable (`tests/fuzz_corpus.rs`):
//! each feeds arbitrary bytes to code that faces peers or users and checks what must
//! hold whatever the bytes are. A violated property panics, which is what a fuzzer
//! reports.

use crate::codecs::line::LineFramer;
use crate::inputs::beats::protocol::{BeatsCodec, Limits};
use bytes::BytesMut;
use tokio_util::codec::Decoder;

/// The Beats decoder, fed `data` in two pieces split where its first byte says: frames
/// or an error, never a panic, and never more memory counted than the limits allow.
pub fn beats_decoder(data: &[u8]) {
    let limits = Limits {
        max_frame_bytes: 64 * 1024,
        max_decompressed_bytes: 256 * 1024,
    };
    let split = data.first().map_or(0, |b| *b as usize).min(data.len());
    let mut codec = BeatsCodec::new(limits);
    let mut buf = BytesMut::new();
    for piece in [&data[..split], &data[split..]] {
        buf.extend_from_slice(piece);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
            let held = codec.memory().held();
            assert!(
                held <= data.len() + 2 * limits.max_frame_bytes + 64 * 1024,
                "the decoder holds {held} bytes for {} bytes of input",
                data.len()
            );
        }
    }
    let _ = codec.decode_eof(&mut buf);
}

/// The line framing with a small cap, fed `data` in pieces of 7 bytes: no line longer
/// than the cap, and every byte is in a line, a newline, discarded, or left at the end.
pub fn line_framing(data: &[u8]) {
    const CAP: usize = 16;
    let mut framer = LineFramer::new(CAP);
    let mut buf = BytesMut::new();
    let mut accounted = 0u64;
    let check = |line: &crate::codecs::line::Line| {
        assert!(
            line.bytes.len() <= CAP,
            "line of {} bytes",
            line.bytes.len()
        );
    };
    for piece in data.chunks(7) {
        buf.extend_from_slice(piece);
        while let Ok(Some(line)) = framer.decode(&mut buf) {
            check(&line);
            accounted += line.bytes.len() as u64;
        }
    }
    while let Ok(Some(line)) = framer.decode_eof(&mut buf) {
        check(&line);
        accounted += line.bytes.len() as u64;
    }
    accounted += framer.take_discarded();
    // Newlines and the `\r` before them are the only bytes not in a line.
    let separators = data.iter().filter(|b| matches!(b, b'\n' | b'\r')).count() as u64;
    assert!(
        accounted + separators >= data.len() as u64,
        "{} bytes in, {accounted} in lines or discarded, {separators} separators",
        data.len()
    );
}

/// The configuration parser on `data` as text: an AST or an error, never a panic, and
/// a syntax error never shows the value of a `password` option.
pub fn config_parser(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = crate::config::parse(text, "fuzz", false);
    let secret = "Zq9SecretValue";
    let with_secret = format!("output {{ x {{ password => \"{secret}\" {text}");
    if let Err(e) = crate::config::parse(&with_secret, "fuzz", false) {
        assert!(!e.to_string().contains(secret), "{e}");
    }
}
