//! The Lumberjack v2 (Beats) wire protocol: frames, their codec, and the window rules.
//!
//! Every frame is a version byte, a type byte and a payload; integers are u32 big-endian.
//!
//! | frame      | layout                                                      | direction        |
//! |------------|-------------------------------------------------------------|------------------|
//! | window     | `'2' 'W' size`                                              | client → server  |
//! | JSON data  | `'2' 'J' seq len <len bytes of JSON>`                       | client → server  |
//! | compressed | `'2' 'C' len <len bytes of zlib>` inflating to whole frames | client → server  |
//! | v1 data    | `'1' 'D' seq pairs (klen key vlen value)*`                  | old forwarders   |
//! | ACK        | `'2' 'A' seq`                                               | server → client  |
//!
//! A client announces a window of N events, sends them (Filebeat: one compressed frame
//! holding N JSON frames), and waits for an ACK carrying the highest sequence number of
//! the window. The decoder here checks every length against a limit before it buffers
//! anything, inflates compressed frames with a hard cap on the inflated size, and
//! flattens nested compressed frames, so the server only ever sees window, data and ACK
//! frames. [`WindowTracker`] enforces the window rules on top of the decoded frames.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use flate2::Compression;
use std::collections::VecDeque;
use std::io::{Read, Write};
use tokio_util::codec::{Decoder, Encoder};

/// Version byte of protocol v1 (logstash-forwarder).
pub const V1: u8 = b'1';
/// Version byte of protocol v2 (every Beat).
pub const V2: u8 = b'2';

const WINDOW: u8 = b'W';
const JSON: u8 = b'J';
const COMPRESSED: u8 = b'C';
const DATA_V1: u8 = b'D';
const ACK: u8 = b'A';

/// go-lumber's largest accepted window.
pub const DEFAULT_MAX_WINDOW: u32 = 10_000;
/// Largest frame (or compressed payload) accepted off the wire by default.
pub const DEFAULT_MAX_FRAME_BYTES: usize = 32 * 1024 * 1024;
/// Largest inflated size of one compressed frame (nested ones included) by default.
pub const DEFAULT_MAX_DECOMPRESSED_BYTES: usize = 128 * 1024 * 1024;
/// Compressed frames nested deeper than this are refused (Filebeat never nests).
pub const MAX_NESTING: usize = 4;

/// Why a peer's bytes are not the Beats protocol. The connection is closed, without ACK.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    #[error("bad version byte {0:#04x}")]
    BadVersion(u8),
    #[error("unknown frame type {0:#04x}")]
    UnknownFrameType(u8),
    #[error("{what} length {len} out of range (limit {limit})")]
    Length {
        what: &'static str,
        len: u64,
        limit: usize,
    },
    #[error("compressed payload inflates past the limit of {limit} bytes")]
    DecompressedTooLarge { limit: usize },
    #[error("bad zlib: {0}")]
    Zlib(String),
    #[error("compressed frames nested deeper than {MAX_NESTING}")]
    TooDeep,
    #[error("truncated frame inside a compressed frame: need {need} bytes, have {have}")]
    TruncatedInner { need: usize, have: usize },
    #[error("connection closed in the middle of a frame ({buffered} bytes buffered)")]
    Truncated { buffered: usize },
    #[error("expected a window frame, got {0:#04x}")]
    ExpectedWindow(u8),
    #[error("window {size} larger than {max}")]
    WindowTooLarge { size: u32, max: u32 },
    #[error("new window before the previous one was complete ({received} of {size} events)")]
    UnfinishedWindow { received: u32, size: u32 },
    #[error("more events than the window of {0}")]
    WindowOverflow(u32),
    #[error("invalid json in event {seq}: {message}")]
    InvalidJson { seq: u32, message: String },
    #[error("unexpected {0} frame from a client")]
    Unexpected(&'static str),
    #[error("read failed: {0}")]
    Io(#[from] std::io::Error),
}

/// The reason of a [`ProtocolError`] (or of another close), as counted and logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseReason {
    BadVersion,
    UnknownFrameType,
    FrameTooLarge,
    DecompressedTooLarge,
    BadZlib,
    Truncated,
    WindowViolation,
    InvalidJson,
    Io,
    InactivityTimeout,
    TlsHandshake,
    AckFailed,
}

impl CloseReason {
    pub const ALL: [CloseReason; 12] = [
        CloseReason::BadVersion,
        CloseReason::UnknownFrameType,
        CloseReason::FrameTooLarge,
        CloseReason::DecompressedTooLarge,
        CloseReason::BadZlib,
        CloseReason::Truncated,
        CloseReason::WindowViolation,
        CloseReason::InvalidJson,
        CloseReason::Io,
        CloseReason::InactivityTimeout,
        CloseReason::TlsHandshake,
        CloseReason::AckFailed,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            CloseReason::BadVersion => "bad_version",
            CloseReason::UnknownFrameType => "unknown_frame_type",
            CloseReason::FrameTooLarge => "frame_too_large",
            CloseReason::DecompressedTooLarge => "decompressed_too_large",
            CloseReason::BadZlib => "bad_zlib",
            CloseReason::Truncated => "truncated",
            CloseReason::WindowViolation => "window_violation",
            CloseReason::InvalidJson => "invalid_json",
            CloseReason::Io => "io",
            CloseReason::InactivityTimeout => "inactivity_timeout",
            CloseReason::TlsHandshake => "tls_handshake",
            CloseReason::AckFailed => "ack_failed",
        }
    }

    pub(crate) fn index(&self) -> usize {
        CloseReason::ALL
            .iter()
            .position(|r| r == self)
            .unwrap_or_default()
    }
}

impl ProtocolError {
    pub fn reason(&self) -> CloseReason {
        match self {
            ProtocolError::BadVersion(_) => CloseReason::BadVersion,
            ProtocolError::UnknownFrameType(_) | ProtocolError::Unexpected(_) => {
                CloseReason::UnknownFrameType
            }
            ProtocolError::Length { .. } => CloseReason::FrameTooLarge,
            ProtocolError::DecompressedTooLarge { .. } | ProtocolError::TooDeep => {
                CloseReason::DecompressedTooLarge
            }
            ProtocolError::Zlib(_) => CloseReason::BadZlib,
            ProtocolError::TruncatedInner { .. } | ProtocolError::Truncated { .. } => {
                CloseReason::Truncated
            }
            ProtocolError::ExpectedWindow(_)
            | ProtocolError::WindowTooLarge { .. }
            | ProtocolError::UnfinishedWindow { .. }
            | ProtocolError::WindowOverflow(_) => CloseReason::WindowViolation,
            ProtocolError::InvalidJson { .. } => CloseReason::InvalidJson,
            ProtocolError::Io(_) => CloseReason::Io,
        }
    }
}

/// One protocol frame. The decoder never yields [`Frame::Compressed`]: it inflates it
/// and yields the frames inside; the encoder compresses the frames it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// The number of events the client sends before it waits for an ACK.
    Window { version: u8, size: u32 },
    /// One event as a JSON document (v2).
    Json { seq: u32, payload: Bytes },
    /// One event as string pairs (v1).
    Data {
        seq: u32,
        pairs: Vec<(Bytes, Bytes)>,
    },
    /// Frames sent zlib-compressed (encoding only).
    Compressed(Vec<Frame>),
    /// Acknowledges every event up to `seq` (server → client).
    Ack { version: u8, seq: u32 },
}

impl Frame {
    pub fn json(seq: u32, payload: impl Into<Bytes>) -> Frame {
        Frame::Json {
            seq,
            payload: payload.into(),
        }
    }

    pub fn ack(seq: u32) -> Frame {
        Frame::Ack { version: V2, seq }
    }
}

/// The limits a decoder enforces.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_frame_bytes: usize,
    pub max_decompressed_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            max_decompressed_bytes: DEFAULT_MAX_DECOMPRESSED_BYTES,
        }
    }
}

/// The frame codec: decodes what clients send (and ACKs, for clients), encodes any frame.
#[derive(Debug)]
pub struct BeatsCodec {
    limits: Limits,
    /// Frames inflated from a compressed frame, not handed out yet.
    pending: VecDeque<Frame>,
    /// Compression level for [`Frame::Compressed`] when encoding.
    level: Compression,
}

impl Default for BeatsCodec {
    fn default() -> Self {
        BeatsCodec::new(Limits::default())
    }
}

impl BeatsCodec {
    pub fn new(limits: Limits) -> BeatsCodec {
        BeatsCodec {
            limits,
            pending: VecDeque::new(),
            level: Compression::new(3),
        }
    }

    /// The next frame already inflated from a compressed frame, if any.
    pub fn next_buffered(&self) -> Option<&Frame> {
        self.pending.front()
    }

    /// The zlib level used to encode compressed frames (Filebeat's default is 3).
    pub fn with_compression_level(mut self, level: u32) -> BeatsCodec {
        self.level = Compression::new(level.min(9));
        self
    }
}

fn read_u32(buf: &[u8], at: usize) -> Option<u32> {
    let b = buf.get(at..at + 4)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// What the header of the frame at the start of `buf` says.
enum Header {
    /// More bytes are needed to know the frame's length.
    Incomplete,
    /// The whole frame is `len` bytes long.
    Len(usize),
}

/// Reads the header of the frame at the start of `buf`, checking version, type and
/// every length against the limits, without needing the whole frame.
fn frame_len(buf: &[u8], limits: &Limits) -> Result<Header, ProtocolError> {
    let Some(&version) = buf.first() else {
        return Ok(Header::Incomplete);
    };
    if version != V1 && version != V2 {
        return Err(ProtocolError::BadVersion(version));
    }
    let Some(&kind) = buf.get(1) else {
        return Ok(Header::Incomplete);
    };
    let checked = |what: &'static str, len: u32, min: u32| {
        if len < min || len as usize > limits.max_frame_bytes {
            Err(ProtocolError::Length {
                what,
                len: len as u64,
                limit: limits.max_frame_bytes,
            })
        } else {
            Ok(len as usize)
        }
    };
    match (version, kind) {
        (_, WINDOW) | (_, ACK) => Ok(Header::Len(6)),
        (V2, JSON) => match read_u32(buf, 6) {
            None => Ok(Header::Incomplete),
            Some(len) => Ok(Header::Len(10 + checked("json", len, 1)?)),
        },
        (V2, COMPRESSED) => match read_u32(buf, 2) {
            None => Ok(Header::Incomplete),
            Some(len) => Ok(Header::Len(6 + checked("compressed", len, 1)?)),
        },
        (V1, DATA_V1) => {
            let Some(pairs) = read_u32(buf, 6) else {
                return Ok(Header::Incomplete);
            };
            // Every pair takes at least 8 bytes: refuse a count no frame could hold.
            if pairs as usize > limits.max_frame_bytes / 8 {
                return Err(ProtocolError::Length {
                    what: "v1 pair count",
                    len: pairs as u64,
                    limit: limits.max_frame_bytes / 8,
                });
            }
            let mut at = 10usize;
            for _ in 0..pairs {
                for what in ["v1 key", "v1 value"] {
                    let Some(len) = read_u32(buf, at) else {
                        return Ok(Header::Incomplete);
                    };
                    at += 4 + checked(what, len, 0)?;
                    if at > limits.max_frame_bytes {
                        return Err(ProtocolError::Length {
                            what: "v1 data frame",
                            len: at as u64,
                            limit: limits.max_frame_bytes,
                        });
                    }
                }
            }
            Ok(Header::Len(at))
        }
        (_, other) => Err(ProtocolError::UnknownFrameType(other)),
    }
}

/// Parses one whole frame (`frame` holds exactly its bytes, as [`frame_len`] measured).
/// Compressed frames are inflated into `out`; everything else is pushed as is.
fn parse_frame(
    frame: Bytes,
    limits: &Limits,
    budget: &mut usize,
    depth: usize,
    out: &mut VecDeque<Frame>,
) -> Result<(), ProtocolError> {
    let version = frame[0];
    let u32_at = |at| read_u32(&frame, at).unwrap_or_default();
    match frame[1] {
        WINDOW => out.push_back(Frame::Window {
            version,
            size: u32_at(2),
        }),
        ACK => out.push_back(Frame::Ack {
            version,
            seq: u32_at(2),
        }),
        JSON => out.push_back(Frame::Json {
            seq: u32_at(2),
            payload: frame.slice(10..),
        }),
        COMPRESSED => {
            if depth >= MAX_NESTING {
                return Err(ProtocolError::TooDeep);
            }
            let inflated = inflate(&frame[6..], *budget, limits.max_decompressed_bytes)?;
            *budget -= inflated.len();
            let mut rest = Bytes::from(inflated);
            while !rest.is_empty() {
                match frame_len(&rest, limits)? {
                    Header::Len(len) if len <= rest.len() => {
                        let inner = rest.split_to(len);
                        parse_frame(inner, limits, budget, depth + 1, out)?;
                    }
                    Header::Len(len) => {
                        return Err(ProtocolError::TruncatedInner {
                            need: len,
                            have: rest.len(),
                        })
                    }
                    Header::Incomplete => {
                        return Err(ProtocolError::TruncatedInner {
                            need: 10.max(rest.len() + 1),
                            have: rest.len(),
                        })
                    }
                }
            }
        }
        DATA_V1 => {
            let pairs = u32_at(6) as usize;
            let mut list = Vec::with_capacity(pairs.min(64));
            let mut at = 10;
            for _ in 0..pairs {
                let klen = u32_at(at) as usize;
                let key = frame.slice(at + 4..at + 4 + klen);
                at += 4 + klen;
                let vlen = u32_at(at) as usize;
                let value = frame.slice(at + 4..at + 4 + vlen);
                at += 4 + vlen;
                list.push((key, value));
            }
            out.push_back(Frame::Data {
                seq: u32_at(2),
                pairs: list,
            });
        }
        // frame_len refused every other type.
        other => return Err(ProtocolError::UnknownFrameType(other)),
    }
    Ok(())
}

/// Inflates a zlib stream, refusing to produce more than `budget` bytes.
fn inflate(compressed: &[u8], budget: usize, limit: usize) -> Result<Vec<u8>, ProtocolError> {
    let mut out = Vec::with_capacity(compressed.len().saturating_mul(4).min(budget));
    let mut decoder = flate2::read::ZlibDecoder::new(compressed).take(budget as u64 + 1);
    decoder
        .read_to_end(&mut out)
        .map_err(|e| ProtocolError::Zlib(e.to_string()))?;
    if out.len() > budget {
        return Err(ProtocolError::DecompressedTooLarge { limit });
    }
    Ok(out)
}

impl Decoder for BeatsCodec {
    type Item = Frame;
    type Error = ProtocolError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, ProtocolError> {
        loop {
            if let Some(frame) = self.pending.pop_front() {
                return Ok(Some(frame));
            }
            let len = match frame_len(src, &self.limits)? {
                Header::Incomplete => {
                    src.reserve(16);
                    return Ok(None);
                }
                Header::Len(len) => len,
            };
            if src.len() < len {
                // The length is within the limit: make room for the rest at once.
                src.reserve(len - src.len());
                return Ok(None);
            }
            let frame = src.split_to(len).freeze();
            let mut budget = self.limits.max_decompressed_bytes;
            parse_frame(frame, &self.limits, &mut budget, 0, &mut self.pending)?;
        }
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, ProtocolError> {
        match self.decode(src)? {
            Some(frame) => Ok(Some(frame)),
            None if src.is_empty() => Ok(None),
            None => Err(ProtocolError::Truncated {
                buffered: src.len(),
            }),
        }
    }
}

impl Encoder<Frame> for BeatsCodec {
    type Error = std::io::Error;

    fn encode(&mut self, frame: Frame, dst: &mut BytesMut) -> Result<(), std::io::Error> {
        encode_frame(&frame, self.level, dst)
    }
}

fn too_long(what: &str) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        format!("{what} longer than 4 GiB"),
    )
}

fn put_len(dst: &mut BytesMut, len: usize, what: &str) -> Result<(), std::io::Error> {
    dst.put_u32(u32::try_from(len).map_err(|_| too_long(what))?);
    Ok(())
}

/// Appends the wire form of `frame` to `dst`.
pub fn encode_frame(
    frame: &Frame,
    level: Compression,
    dst: &mut BytesMut,
) -> Result<(), std::io::Error> {
    match frame {
        Frame::Window { version, size } => {
            dst.put_slice(&[*version, WINDOW]);
            dst.put_u32(*size);
        }
        Frame::Ack { version, seq } => {
            dst.put_slice(&[*version, ACK]);
            dst.put_u32(*seq);
        }
        Frame::Json { seq, payload } => {
            dst.reserve(10 + payload.len());
            dst.put_slice(&[V2, JSON]);
            dst.put_u32(*seq);
            put_len(dst, payload.len(), "json payload")?;
            dst.put_slice(payload);
        }
        Frame::Data { seq, pairs } => {
            dst.put_slice(&[V1, DATA_V1]);
            dst.put_u32(*seq);
            put_len(dst, pairs.len(), "pair list")?;
            for (k, v) in pairs {
                put_len(dst, k.len(), "key")?;
                dst.put_slice(k);
                put_len(dst, v.len(), "value")?;
                dst.put_slice(v);
            }
        }
        Frame::Compressed(frames) => {
            let mut plain = BytesMut::new();
            for f in frames {
                encode_frame(f, level, &mut plain)?;
            }
            let mut z =
                flate2::write::ZlibEncoder::new(Vec::with_capacity(plain.len() / 4 + 64), level);
            z.write_all(&plain)?;
            let compressed = z.finish()?;
            dst.put_slice(&[V2, COMPRESSED]);
            put_len(dst, compressed.len(), "compressed payload")?;
            dst.put_slice(&compressed);
        }
    }
    Ok(())
}

/// Decodes the frames a server sends (ACKs) and nothing else, for clients.
pub fn decode_ack(src: &mut BytesMut) -> Result<Option<(u8, u32)>, ProtocolError> {
    if src.len() < 6 {
        return Ok(None);
    }
    let (version, kind) = (src[0], src[1]);
    if version != V1 && version != V2 {
        return Err(ProtocolError::BadVersion(version));
    }
    if kind != ACK {
        return Err(ProtocolError::UnknownFrameType(kind));
    }
    src.advance(2);
    Ok(Some((version, src.get_u32())))
}

/// What a data frame did to the current window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowProgress {
    /// More events are due in this window.
    Open,
    /// The window is complete: ACK `seq` (the highest sequence number) once it is safe.
    Complete { version: u8, seq: u32 },
}

#[derive(Debug, Clone, Copy)]
struct OpenWindow {
    version: u8,
    size: u32,
    received: u32,
    highest: u32,
}

/// The window rules: a window frame first, then exactly that many events; the ACK
/// carries the highest sequence number seen (Filebeat restarts at 1 in every window,
/// pylogbeat counts on across windows, and both accept that).
#[derive(Debug, Clone)]
pub struct WindowTracker {
    max_window: u32,
    open: Option<OpenWindow>,
    /// The size of the window that completed last, while no new window began.
    closed: Option<u32>,
}

impl WindowTracker {
    pub fn new(max_window: u32) -> WindowTracker {
        WindowTracker {
            max_window,
            open: None,
            closed: None,
        }
    }

    /// The number of events still due in the open window.
    pub fn outstanding(&self) -> u32 {
        self.open.map_or(0, |w| w.size - w.received)
    }

    /// A window frame. A window of 0 is complete at once (answered with `ACK 0`).
    pub fn window(&mut self, version: u8, size: u32) -> Result<WindowProgress, ProtocolError> {
        if let Some(w) = self.open {
            return Err(ProtocolError::UnfinishedWindow {
                received: w.received,
                size: w.size,
            });
        }
        if size > self.max_window {
            return Err(ProtocolError::WindowTooLarge {
                size,
                max: self.max_window,
            });
        }
        self.closed = None;
        if size == 0 {
            return Ok(WindowProgress::Complete { version, seq: 0 });
        }
        self.open = Some(OpenWindow {
            version,
            size,
            received: 0,
            highest: 0,
        });
        Ok(WindowProgress::Open)
    }

    /// A data frame with sequence number `seq`; `kind` is its type byte, for errors.
    pub fn event(&mut self, seq: u32, kind: u8) -> Result<WindowProgress, ProtocolError> {
        let Some(w) = self.open.as_mut() else {
            return Err(match self.closed {
                Some(size) => ProtocolError::WindowOverflow(size),
                None => ProtocolError::ExpectedWindow(kind),
            });
        };
        w.received += 1;
        w.highest = w.highest.max(seq);
        if w.received == w.size {
            let done = *w;
            self.open = None;
            self.closed = Some(done.size);
            return Ok(WindowProgress::Complete {
                version: done.version,
                seq: done.highest,
            });
        }
        Ok(WindowProgress::Open)
    }
}

impl WindowTracker {
    /// Called when a window completes: data frames already decoded past its end (more
    /// events than the window inside one compressed frame) break the protocol, and the
    /// window must not be ACKed.
    pub fn check_no_excess(&self, codec: &BeatsCodec) -> Result<(), ProtocolError> {
        match (codec.next_buffered(), self.closed) {
            (Some(Frame::Json { .. } | Frame::Data { .. }), Some(size)) => {
                Err(ProtocolError::WindowOverflow(size))
            }
            _ => Ok(()),
        }
    }
}

/// The type byte of a data frame, for [`WindowTracker::event`].
pub fn frame_kind(frame: &Frame) -> u8 {
    match frame {
        Frame::Window { .. } => WINDOW,
        Frame::Json { .. } => JSON,
        Frame::Data { .. } => DATA_V1,
        Frame::Compressed(_) => COMPRESSED,
        Frame::Ack { .. } => ACK,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(codec: &mut BeatsCodec, bytes: &[u8]) -> Result<Vec<Frame>, ProtocolError> {
        let mut buf = BytesMut::from(bytes);
        let mut out = Vec::new();
        while let Some(f) = codec.decode_eof(&mut buf)? {
            out.push(f);
        }
        Ok(out)
    }

    #[test]
    fn window_json_and_ack_round_trip() {
        let frames = vec![
            Frame::Window {
                version: V2,
                size: 2,
            },
            Frame::json(1, &b"{\"a\":1}"[..]),
            Frame::Compressed(vec![
                Frame::json(2, &b"{\"b\":2}"[..]),
                Frame::Compressed(vec![Frame::ack(7)]),
            ]),
        ];
        let mut codec = BeatsCodec::default();
        let mut buf = BytesMut::new();
        for f in frames {
            codec.encode(f, &mut buf).unwrap();
        }
        let got = decode_all(&mut codec, &buf).unwrap();
        assert_eq!(
            got,
            vec![
                Frame::Window {
                    version: V2,
                    size: 2
                },
                Frame::json(1, &b"{\"a\":1}"[..]),
                Frame::json(2, &b"{\"b\":2}"[..]),
                Frame::ack(7),
            ]
        );
    }

    #[test]
    fn lengths_are_checked_before_buffering() {
        let mut codec = BeatsCodec::default();
        let mut buf = BytesMut::from(&b"2J\x00\x00\x00\x01\xff\xff\xff\xff"[..]);
        let err = codec.decode(&mut buf).unwrap_err();
        assert!(
            matches!(err, ProtocolError::Length { what: "json", .. }),
            "{err}"
        );
        assert!(buf.capacity() < 1024);
    }

    #[test]
    fn a_zlib_bomb_is_refused_at_the_cap() {
        let limits = Limits {
            max_frame_bytes: 1 << 20,
            max_decompressed_bytes: 1 << 20,
        };
        let zeros = vec![b'0'; 8 << 20];
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), Compression::best());
        z.write_all(&zeros).unwrap();
        let bomb = z.finish().unwrap();
        let mut wire = BytesMut::new();
        wire.put_slice(b"2C");
        wire.put_u32(bomb.len() as u32);
        wire.put_slice(&bomb);
        let err = BeatsCodec::new(limits).decode(&mut wire).unwrap_err();
        assert!(
            matches!(err, ProtocolError::DecompressedTooLarge { .. }),
            "{err}"
        );
    }

    #[test]
    fn nesting_is_bounded() {
        let mut frame = Frame::ack(1);
        for _ in 0..=MAX_NESTING {
            frame = Frame::Compressed(vec![frame]);
        }
        let mut buf = BytesMut::new();
        BeatsCodec::default().encode(frame, &mut buf).unwrap();
        let err = BeatsCodec::default().decode(&mut buf).unwrap_err();
        assert!(matches!(err, ProtocolError::TooDeep), "{err}");
    }

    #[test]
    fn v1_data_frames_decode() {
        let bytes = b"1W\x00\x00\x00\x011D\x00\x00\x00\x01\x00\x00\x00\x02\x00\x00\x00\x04line\x00\x00\x00\x02hi\x00\x00\x00\x04host\x00\x00\x00\x01h";
        let got = decode_all(&mut BeatsCodec::default(), bytes).unwrap();
        assert_eq!(
            got[1],
            Frame::Data {
                seq: 1,
                pairs: vec![
                    (Bytes::from_static(b"line"), Bytes::from_static(b"hi")),
                    (Bytes::from_static(b"host"), Bytes::from_static(b"h")),
                ]
            }
        );
    }

    #[test]
    fn windows_ack_the_highest_sequence_number() {
        let mut t = WindowTracker::new(10);
        assert_eq!(t.window(V2, 2).unwrap(), WindowProgress::Open);
        assert_eq!(t.event(3, JSON).unwrap(), WindowProgress::Open);
        assert_eq!(
            t.event(4, JSON).unwrap(),
            WindowProgress::Complete {
                version: V2,
                seq: 4
            }
        );
        assert!(matches!(
            t.event(5, JSON),
            Err(ProtocolError::WindowOverflow(2))
        ));
        assert!(matches!(
            WindowTracker::new(10).event(1, JSON),
            Err(ProtocolError::ExpectedWindow(b'J'))
        ));
        assert_eq!(
            t.window(V2, 0).unwrap(),
            WindowProgress::Complete {
                version: V2,
                seq: 0
            }
        );
        assert!(t.window(V2, 11).is_err());
    }
}
