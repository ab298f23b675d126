//! The beats frame decoder against the protocol's test vectors (every recorded session
//! with the server behaviour it must produce), and property tests: arbitrary bytes never
//! panic it, and every encodable frame sequence decodes back, however it is split.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use sluice::event::Timestamp;
use sluice::inputs::beats::mapping::{Enrich, Mapper, MessageCodec, Peer};
use sluice::inputs::beats::protocol::{
    frame_kind, BeatsCodec, Frame, Limits, ProtocolError, WindowProgress, WindowTracker,
    DEFAULT_MAX_WINDOW, V1, V2,
};
use tokio_util::codec::{Decoder, Encoder};

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn mapper() -> Mapper {
    Mapper {
        codec: MessageCodec::Plain,
        codec_tag: "beats_input_codec_plain_applied".into(),
        enrich: Enrich::default(),
        add_hostname: false,
    }
}

/// What the server does with a session's bytes.
#[derive(Debug, Default)]
struct Outcome {
    result: &'static str,
    acks: Vec<String>,
    seqs: Vec<u32>,
    error: Option<String>,
}

/// Runs `bytes` through the same decoder, window rules and mapping the server uses.
/// ACKs are the ones the server sends once each window's events are safe.
fn replay(bytes: &[u8]) -> Outcome {
    let mut codec = BeatsCodec::default();
    let mut tracker = WindowTracker::new(DEFAULT_MAX_WINDOW);
    let mapper = mapper();
    let peer = Peer::new("127.0.0.1", None);
    let mut buf = BytesMut::from(bytes);
    let mut out = Outcome::default();
    let step = |frame: &Frame, tracker: &mut WindowTracker, out: &mut Outcome| match frame {
        Frame::Window { version, size } => tracker.window(*version, *size),
        Frame::Json { seq, payload } => {
            let p = tracker.event(*seq, frame_kind(frame))?;
            mapper.json_event(*seq, payload, &peer, Timestamp::now())?;
            out.seqs.push(*seq);
            Ok(p)
        }
        Frame::Data { seq, pairs } => {
            let p = tracker.event(*seq, frame_kind(frame))?;
            mapper.v1_event(pairs, &peer, Timestamp::now());
            out.seqs.push(*seq);
            Ok(p)
        }
        _ => Err(ProtocolError::Unexpected("server")),
    };
    loop {
        match codec.decode(&mut buf) {
            Ok(Some(frame)) => match step(&frame, &mut tracker, &mut out).and_then(|p| {
                tracker.check_no_excess(&mut codec)?;
                Ok(p)
            }) {
                Ok(WindowProgress::Complete { version, seq }) => {
                    let mut ack = BytesMut::new();
                    codec.encode(Frame::Ack { version, seq }, &mut ack).unwrap();
                    out.acks.push(hex(&ack));
                }
                Ok(WindowProgress::Open) => {}
                Err(e) => {
                    out.result = "protocol_error";
                    out.error = Some(e.to_string());
                    return out;
                }
            },
            Ok(None) => break,
            Err(e) => {
                out.result = "protocol_error";
                out.error = Some(e.to_string());
                return out;
            }
        }
    }
    out.result = if buf.is_empty() { "ok" } else { "need_more" };
    out
}

#[test]
fn every_vector_session_has_its_expected_outcome() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/lumberjack-v2-vectors.json"
    ))
    .unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    let vectors = doc["vectors"].as_array().unwrap();
    assert!(vectors.len() >= 20, "the vectors file lost sessions");
    for v in vectors {
        let name = v["name"].as_str().unwrap();
        let got = replay(&unhex(v["hex"].as_str().unwrap()));
        let expect = &v["expect"];
        assert_eq!(
            got.result,
            expect["result"].as_str().unwrap(),
            "{name}: {:?}",
            got.error
        );
        let want_acks: Vec<String> = expect["acks"]
            .as_array()
            .map(|a| a.iter().map(|x| x.as_str().unwrap().to_string()).collect())
            .unwrap_or_default();
        if got.result == "ok" {
            assert_eq!(got.acks, want_acks, "{name}");
        } else {
            // Never an ACK for the window a session broke or left unfinished.
            assert!(got.acks.len() <= want_acks.len(), "{name}: {:?}", got.acks);
        }
        if let Some(seqs) = v["decoder_said"]["seqs"].as_array() {
            let want: Vec<u32> = seqs.iter().map(|s| s.as_u64().unwrap() as u32).collect();
            assert_eq!(got.seqs, want, "{name}");
        }
    }
}

#[test]
fn server_frame_vectors_match_the_encoder() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/lumberjack-v2-vectors.json"
    ))
    .unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    let frames = &doc["server_frames"];
    let mut codec = BeatsCodec::default();
    let mut buf = BytesMut::new();
    codec.encode(Frame::ack(2), &mut buf).unwrap();
    assert_eq!(hex(&buf), frames["ack_seq2"].as_str().unwrap());
    buf.clear();
    codec.encode(Frame::ack(0), &mut buf).unwrap();
    assert_eq!(hex(&buf), frames["keepalive_ack0"].as_str().unwrap());
    // The v1 example decodes to a window of 1 and one event that is ACKed.
    let got = replay(&unhex(frames["v1_data_frame_example"].as_str().unwrap()));
    assert_eq!(got.result, "ok", "{:?}", got.error);
    assert_eq!(got.acks, vec!["314100000001".to_string()]);
}

/// Decodes `wire` fed in pieces of the given sizes, as a socket would deliver it.
fn decode_split(
    codec: &mut BeatsCodec,
    wire: &[u8],
    cuts: &[usize],
) -> Result<Vec<Frame>, ProtocolError> {
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut at = 0;
    let mut cuts = cuts.iter().cycle();
    while at < wire.len() {
        let n = (*cuts.next().unwrap_or(&wire.len())).clamp(1, wire.len() - at);
        buf.extend_from_slice(&wire[at..at + n]);
        at += n;
        while let Some(f) = codec.decode(&mut buf)? {
            out.push(f);
        }
    }
    while let Some(f) = codec.decode_eof(&mut buf)? {
        out.push(f);
    }
    Ok(out)
}

fn leaf_frame() -> impl Strategy<Value = Frame> {
    let bytes = || proptest::collection::vec(any::<u8>(), 0..40).prop_map(Bytes::from);
    prop_oneof![
        (any::<u32>()).prop_map(|size| Frame::Window { version: V2, size }),
        (any::<u32>()).prop_map(|size| Frame::Window { version: V1, size }),
        (any::<u32>()).prop_map(Frame::ack),
        (
            any::<u32>(),
            proptest::collection::vec(any::<u8>(), 1..200).prop_map(Bytes::from)
        )
            .prop_map(|(seq, payload)| Frame::Json { seq, payload }),
        (
            any::<u32>(),
            proptest::collection::vec((bytes(), bytes()), 0..4)
        )
            .prop_map(|(seq, pairs)| Frame::Data { seq, pairs }),
    ]
}

fn frame() -> impl Strategy<Value = Frame> {
    leaf_frame().prop_recursive(2, 24, 6, |inner| {
        proptest::collection::vec(inner, 0..6).prop_map(Frame::Compressed)
    })
}

fn flatten(frames: Vec<Frame>, out: &mut Vec<Frame>) {
    for f in frames {
        match f {
            Frame::Compressed(inner) => flatten(inner, out),
            other => out.push(other),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn encoded_frames_decode_back(
        frames in proptest::collection::vec(frame(), 0..8),
        cuts in proptest::collection::vec(1usize..64, 1..8),
        level in 0u32..10,
    ) {
        let mut codec = BeatsCodec::default().with_compression_level(level);
        let mut wire = BytesMut::new();
        for f in frames.clone() {
            codec.encode(f, &mut wire).unwrap();
        }
        let got = decode_split(&mut codec, &wire, &cuts).unwrap();
        let mut want = Vec::new();
        flatten(frames, &mut want);
        prop_assert_eq!(got, want);
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        prefix in prop_oneof![
            Just(Vec::new()),
            Just(b"2W\x00\x00\x00\x02".to_vec()),
            Just(b"2C".to_vec()),
            Just(b"2J\x00\x00\x00\x01".to_vec()),
            Just(b"1D\x00\x00\x00\x01".to_vec()),
            Just(b"2C\x00\x00\x00\x10x\x9c".to_vec()),
        ],
        junk in proptest::collection::vec(any::<u8>(), 0..512),
        cuts in proptest::collection::vec(1usize..64, 1..8),
    ) {
        let limits = Limits { max_frame_bytes: 4096, max_decompressed_bytes: 16384 };
        let mut wire = prefix;
        wire.extend_from_slice(&junk);
        let _ = decode_split(&mut BeatsCodec::new(limits), &wire, &cuts);
        let _ = replay(&wire);
    }

    #[test]
    fn compressed_junk_never_panics(
        junk in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        // Valid zlib around arbitrary inner bytes reaches the inner frame parser.
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut z, &junk).unwrap();
        let body = z.finish().unwrap();
        let mut wire = b"2C".to_vec();
        wire.extend_from_slice(&(body.len() as u32).to_be_bytes());
        wire.extend_from_slice(&body);
        let limits = Limits { max_frame_bytes: 4096, max_decompressed_bytes: 16384 };
        let _ = decode_split(&mut BeatsCodec::new(limits), &wire, &[7]);
    }
}
