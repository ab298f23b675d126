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

use crate::inputs::budget::{Holding, MemoryBudget};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use flate2::Compression;
use std::io::Write;
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
    /// Cut to give back input memory: the budget was stuck on unfinished frames and
    /// this connection held the most (see `inputs::budget`).
    MemoryBudget,
}

impl CloseReason {
    pub const ALL: [CloseReason; 13] = [
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
        CloseReason::MemoryBudget,
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
            CloseReason::MemoryBudget => "memory_budget",
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

/// Inflated bytes produced at a time while reading a compressed frame: frames inside it
/// are parsed one at a time out of a buffer about this large, however much the whole
/// frame inflates to.
pub const INFLATE_CHUNK: usize = 32 * 1024;

/// What [`BeatsCodec::decode_next`] found.
#[derive(Debug)]
pub enum Decoded {
    /// The next frame (never [`Frame::Compressed`]: the frames inside come one by one).
    Frame(Frame),
    /// The buffer ends in the middle of a frame: read more bytes.
    NeedBytes,
    /// Going on needs `n` more bytes of memory than the connection's [`Holding`] could
    /// get: wait for them ([`Holding::grow`]), hand them over with
    /// [`BeatsCodec::prepaid`], and decode again.
    NeedMemory(usize),
}

/// A compressed frame being read: inflated a chunk at a time, its frames parsed lazily.
struct Inflating {
    compressed: Bytes,
    zlib: flate2::Decompress,
    /// Inflated bytes not parsed yet.
    out: BytesMut,
    /// Progress through the header of the frame at the start of `out`.
    scan: Scan,
    /// The capacity of `out` counted in the connection's holding.
    out_counted: usize,
    /// The zlib stream ended.
    done: bool,
}

/// The frame codec: decodes what clients send (and ACKs, for clients), encodes any frame.
///
/// Memory: the decoder holds at most the compressed frames being read (each within
/// `max_frame_bytes`) and, for each, one inflated chunk or one inner frame. Every byte
/// of that is counted in the connection's [`Holding`] before it is allocated.
pub struct BeatsCodec {
    limits: Limits,
    /// Compressed frames being read, outermost first (at most [`MAX_NESTING`]).
    stack: Vec<Inflating>,
    /// Progress through the header of the frame at the start of the read buffer.
    scan: Scan,
    /// Bytes inflated so far from the outermost compressed frame (nested ones included).
    inflated: usize,
    /// Bytes counted in `memory` for the stack, and bytes prepaid but not used yet.
    counted: usize,
    prepaid: usize,
    memory: Holding,
    /// Compression level for [`Frame::Compressed`] when encoding.
    level: Compression,
}

impl std::fmt::Debug for BeatsCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BeatsCodec")
            .field("limits", &self.limits)
            .field("depth", &self.stack.len())
            .field("held", &self.memory.held())
            .finish()
    }
}

impl Default for BeatsCodec {
    fn default() -> Self {
        BeatsCodec::new(Limits::default())
    }
}

impl BeatsCodec {
    /// A codec whose memory is not limited beyond `limits` (clients, tests).
    pub fn new(limits: Limits) -> BeatsCodec {
        BeatsCodec::with_memory(limits, Holding::new(MemoryBudget::unlimited()))
    }

    /// A codec that counts what it holds in `memory`, the connection's account.
    pub fn with_memory(limits: Limits, memory: Holding) -> BeatsCodec {
        BeatsCodec {
            limits,
            stack: Vec::new(),
            scan: Scan::default(),
            inflated: 0,
            counted: 0,
            prepaid: 0,
            memory,
            level: Compression::new(3),
        }
    }

    /// The connection's memory account, which the server also uses for its read buffer
    /// and the events it holds.
    pub fn memory(&mut self) -> &mut Holding {
        &mut self.memory
    }

    /// Hands over `n` bytes already counted in [`BeatsCodec::memory`] (after
    /// [`Decoded::NeedMemory`]).
    pub fn prepaid(&mut self, n: usize) {
        self.prepaid += n;
        self.counted += n;
    }

    /// The zlib level used to encode compressed frames (Filebeat's default is 3).
    pub fn with_compression_level(mut self, level: u32) -> BeatsCodec {
        self.level = Compression::new(level.min(9));
        self
    }

    /// Whether the decoder is inside a compressed frame.
    pub fn in_compressed_frame(&self) -> bool {
        !self.stack.is_empty()
    }

    /// Counts `n` more bytes for the stack, from the prepaid bytes or the holding.
    fn take_memory(&mut self, n: usize) -> Result<(), usize> {
        if self.prepaid >= n {
            self.prepaid -= n;
            return Ok(());
        }
        let short = n - self.prepaid;
        if !self.memory.try_grow(short) {
            return Err(short);
        }
        self.prepaid = 0;
        self.counted += short;
        Ok(())
    }

    /// Gives back what a finished compressed frame held.
    fn release(&mut self, n: usize) {
        let n = n.min(self.counted - self.prepaid);
        self.counted -= n;
        self.memory.shrink(n);
    }

    /// Decodes the next frame from `src` (or from the compressed frame being read).
    /// Never reserves memory for bytes that have not arrived.
    pub fn decode_next(&mut self, src: &mut BytesMut) -> Result<Decoded, ProtocolError> {
        loop {
            if !self.stack.is_empty() {
                match self.next_inner()? {
                    Some(decoded) => return Ok(decoded),
                    None => continue,
                }
            }
            let len = match frame_len(src, &self.limits, &mut self.scan)? {
                Header::Len(len) if len <= src.len() => len,
                _ => return Ok(Decoded::NeedBytes),
            };
            self.scan = Scan::default();
            let bytes = src.split_to(len).freeze();
            match parse_frame(bytes)? {
                Parsed::Frame(frame) => return Ok(Decoded::Frame(frame)),
                Parsed::Compressed(compressed) => {
                    // Counted from now on: the read buffer no longer holds these bytes.
                    self.inflated = 0;
                    if let Err(short) = self.take_memory(compressed.len()) {
                        // Cannot happen in practice (the read buffer gave them up), but
                        // count them regardless: they are already allocated.
                        self.memory.set_unchecked(self.memory.held() + short);
                        self.counted += short;
                        self.prepaid = 0;
                    }
                    self.push_level(compressed);
                }
            }
        }
    }

    fn push_level(&mut self, compressed: Bytes) {
        self.stack.push(Inflating {
            compressed,
            zlib: flate2::Decompress::new(true),
            out: BytesMut::new(),
            scan: Scan::default(),
            out_counted: 0,
            done: false,
        });
    }

    /// One step inside the innermost compressed frame: a frame, a need, or `None` when
    /// the level changed (a nested frame began, a finished one was dropped, or more
    /// bytes were inflated).
    fn next_inner(&mut self) -> Result<Option<Decoded>, ProtocolError> {
        let depth = self.stack.len();
        let limits = self.limits;
        let Some(top) = self.stack.last_mut() else {
            return Ok(None);
        };
        let header = frame_len(&top.out, &limits, &mut top.scan)?;
        if let Header::Len(len) = header {
            if len <= top.out.len() {
                top.scan = Scan::default();
                let bytes = top.out.split_to(len).freeze();
                self.recount_top();
                return match parse_frame(bytes)? {
                    Parsed::Frame(frame) => Ok(Some(Decoded::Frame(frame))),
                    Parsed::Compressed(compressed) => {
                        if depth >= MAX_NESTING {
                            return Err(ProtocolError::TooDeep);
                        }
                        // Split off the parent's buffer, so no longer counted there.
                        if let Err(short) = self.take_memory(compressed.len()) {
                            self.memory.set_unchecked(self.memory.held() + short);
                            self.counted += short;
                            self.prepaid = 0;
                        }
                        self.push_level(compressed);
                        Ok(None)
                    }
                };
            }
        }
        if top.done {
            if top.out.is_empty() {
                if let Some(level) = self.stack.pop() {
                    self.release(level.compressed.len() + level.out_counted);
                }
                return Ok(None);
            }
            let need = match header {
                Header::Len(len) => len,
                Header::Incomplete => top.out.len() + 1,
            };
            return Err(ProtocolError::TruncatedInner {
                need,
                have: top.out.len(),
            });
        }
        // Inflate more: what the header asks for, a chunk when it is not known yet.
        let want = match header {
            Header::Len(len) => len.max(top.out.len() + INFLATE_CHUNK),
            Header::Incomplete => top.out.len() + INFLATE_CHUNK,
        };
        if top.out.capacity() < want {
            let grow = want - top.out.capacity();
            if let Err(short) = self.take_memory(grow) {
                return Ok(Some(Decoded::NeedMemory(short)));
            }
            let Some(top) = self.stack.last_mut() else {
                return Ok(None);
            };
            top.out_counted += grow;
            top.out.reserve(want - top.out.len());
            self.recount_top();
        }
        let Some(top) = self.stack.last_mut() else {
            return Ok(None);
        };
        let budget = limits.max_decompressed_bytes.saturating_sub(self.inflated);
        let produced = inflate_some(top, want, budget, limits.max_decompressed_bytes)?;
        self.inflated += produced;
        Ok(None)
    }

    /// Brings the count of the innermost level's buffer to its capacity: less after
    /// frames were split off it, maybe a little more after the allocator rounded up.
    fn recount_top(&mut self) {
        let Some(top) = self.stack.last_mut() else {
            return;
        };
        let cap = top.out.capacity();
        let counted = top.out_counted;
        top.out_counted = cap;
        if cap < counted {
            self.release(counted - cap);
        } else if cap > counted {
            // Already allocated, so counted as is.
            self.memory
                .set_unchecked(self.memory.held() + (cap - counted));
            self.counted += cap - counted;
        }
    }

    /// Called when a window completes: whether the next frame inside the compressed
    /// frame being read is a data frame (more events than the window announced).
    pub fn next_is_data(&mut self) -> Result<bool, ProtocolError> {
        loop {
            let Some(top) = self.stack.last_mut() else {
                return Ok(false);
            };
            if top.out.len() >= 2 {
                return Ok(matches!(top.out[1], JSON | DATA_V1));
            }
            if top.done {
                if !top.out.is_empty() {
                    return Ok(false); // truncated: the next decode says so
                }
                if let Some(level) = self.stack.pop() {
                    self.release(level.compressed.len() + level.out_counted);
                }
                // The parent's next frame decides; peeking there is safe because the
                // level just dropped was the whole of the parent's previous frame.
                continue;
            }
            match self.next_inner()? {
                Some(Decoded::Frame(_)) => return Ok(false), // unreachable: out < 2 bytes
                Some(_) => return Ok(false),
                None => {}
            }
        }
    }
}

/// Inflates from `level` until its buffer holds `want` bytes or the stream ends.
/// Returns the bytes produced; more than `budget` in total is refused.
fn inflate_some(
    level: &mut Inflating,
    want: usize,
    budget: usize,
    limit: usize,
) -> Result<usize, ProtocolError> {
    let mut produced = 0usize;
    while level.out.len() < want && !level.done {
        let start = level.out.len();
        let room = (want - start).min(budget.saturating_sub(produced) + 1);
        level.out.resize(start + room, 0);
        let consumed = level.zlib.total_in() as usize;
        let input = level.compressed.get(consumed..).unwrap_or_default();
        let (in_before, out_before) = (level.zlib.total_in(), level.zlib.total_out());
        let status = level
            .zlib
            .decompress(
                input,
                &mut level.out[start..],
                flate2::FlushDecompress::None,
            )
            .map_err(|e| ProtocolError::Zlib(e.to_string()));
        let made = (level.zlib.total_out() - out_before) as usize;
        level.out.truncate(start + made);
        produced += made;
        if produced > budget {
            return Err(ProtocolError::DecompressedTooLarge { limit });
        }
        match status? {
            flate2::Status::StreamEnd => level.done = true,
            _ if made == 0 && level.zlib.total_in() == in_before => {
                return Err(ProtocolError::Zlib(
                    "compressed stream ends before its end marker".into(),
                ))
            }
            _ => {}
        }
    }
    Ok(produced)
}

fn read_u32(buf: &[u8], at: usize) -> Option<u32> {
    let b = buf.get(at..at + 4)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// What the header of the frame at the start of a buffer says.
enum Header {
    /// More bytes are needed to know the frame's length.
    Incomplete,
    /// The whole frame is `len` bytes long.
    Len(usize),
}

/// How far the length of the frame at the start of a buffer is known, so that a v1 data
/// frame (a list of length-prefixed pairs) arriving in pieces is scanned once, not again
/// from its start on every read.
#[derive(Debug, Default, Clone, Copy)]
struct Scan {
    /// Offset of the next length prefix of a v1 data frame.
    at: usize,
    /// Length-prefixed fields (keys and values) still to skip; `None` before the pair
    /// count was read.
    fields_left: Option<u64>,
}

/// Reads the header of the frame at the start of `buf`, checking version, type and
/// every length against the limits, without needing the whole frame.
fn frame_len(buf: &[u8], limits: &Limits, scan: &mut Scan) -> Result<Header, ProtocolError> {
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
            if scan.fields_left.is_none() {
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
                *scan = Scan {
                    at: 10,
                    fields_left: Some(u64::from(pairs) * 2),
                };
            }
            while let Some(left) = scan.fields_left.filter(|n| *n > 0) {
                let what = if left % 2 == 0 { "v1 key" } else { "v1 value" };
                let Some(len) = read_u32(buf, scan.at) else {
                    return Ok(Header::Incomplete);
                };
                scan.at += 4 + checked(what, len, 0)?;
                scan.fields_left = Some(left - 1);
                if scan.at > limits.max_frame_bytes {
                    return Err(ProtocolError::Length {
                        what: "v1 data frame",
                        len: scan.at as u64,
                        limit: limits.max_frame_bytes,
                    });
                }
            }
            Ok(Header::Len(scan.at))
        }
        (_, other) => Err(ProtocolError::UnknownFrameType(other)),
    }
}

/// A whole frame, parsed.
enum Parsed {
    Frame(Frame),
    /// The zlib payload of a compressed frame, read lazily by the codec.
    Compressed(Bytes),
}

/// Parses one whole frame (`frame` holds exactly its bytes, as [`frame_len`] measured).
fn parse_frame(frame: Bytes) -> Result<Parsed, ProtocolError> {
    let version = frame[0];
    let u32_at = |at| read_u32(&frame, at).unwrap_or_default();
    let parsed = match frame[1] {
        WINDOW => Frame::Window {
            version,
            size: u32_at(2),
        },
        ACK => Frame::Ack {
            version,
            seq: u32_at(2),
        },
        JSON => Frame::Json {
            seq: u32_at(2),
            payload: frame.slice(10..),
        },
        COMPRESSED => return Ok(Parsed::Compressed(frame.slice(6..))),
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
            Frame::Data {
                seq: u32_at(2),
                pairs: list,
            }
        }
        // frame_len refused every other type.
        other => return Err(ProtocolError::UnknownFrameType(other)),
    };
    Ok(Parsed::Frame(parsed))
}

impl Decoder for BeatsCodec {
    type Item = Frame;
    type Error = ProtocolError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, ProtocolError> {
        loop {
            match self.decode_next(src)? {
                Decoded::Frame(frame) => return Ok(Some(frame)),
                Decoded::NeedBytes => return Ok(None),
                // Only a codec built with a limited holding asks; it is used without
                // this trait. Here, count the bytes regardless and go on.
                Decoded::NeedMemory(n) => {
                    self.memory.set_unchecked(self.memory.held() + n);
                    self.prepaid(n);
                }
            }
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
    /// Called when a window completes: data frames already sent past its end (more
    /// events than the window inside one compressed frame) break the protocol, and the
    /// window must not be ACKed.
    pub fn check_no_excess(&self, codec: &mut BeatsCodec) -> Result<(), ProtocolError> {
        match self.closed {
            Some(size) if codec.next_is_data()? => Err(ProtocolError::WindowOverflow(size)),
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
    use std::sync::Arc;

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
        // One big JSON frame whose payload inflates past the cap.
        let mut plain = BytesMut::new();
        plain.put_slice(b"2J\x00\x00\x00\x01");
        plain.put_u32(8 << 20);
        plain.put_slice(&vec![b'0'; 8 << 20]);
        let wire = compressed(&plain);
        let err = BeatsCodec::new(limits)
            .decode(&mut BytesMut::from(&wire[..]))
            .unwrap_err();
        assert!(matches!(err, ProtocolError::Length { .. }), "{err}");
        // Many small frames: handed out one by one until the cap.
        let mut plain = BytesMut::new();
        for _ in 0..(8 << 20) / 6 {
            plain.put_slice(b"2W\x00\x00\x00\x00");
        }
        let wire = compressed(&plain);
        let mut codec = BeatsCodec::new(limits);
        let mut buf = BytesMut::from(&wire[..]);
        let mut frames = 0;
        let err = loop {
            match codec.decode(&mut buf) {
                Ok(Some(_)) => frames += 1,
                Ok(None) => panic!("the bomb decoded whole"),
                Err(e) => break e,
            }
            assert!(codec.memory().held() < 2 * INFLATE_CHUNK + wire.len());
        };
        assert!(
            matches!(err, ProtocolError::DecompressedTooLarge { .. }),
            "{err}"
        );
        assert!(frames > 100_000 && frames <= (1 << 20) / 6, "{frames}");
    }

    fn compressed(plain: &[u8]) -> Vec<u8> {
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), Compression::best());
        z.write_all(plain).unwrap();
        let body = z.finish().unwrap();
        let mut wire = b"2C".to_vec();
        wire.extend_from_slice(&(body.len() as u32).to_be_bytes());
        wire.extend_from_slice(&body);
        wire
    }

    #[test]
    fn a_compressed_frame_is_read_one_frame_at_a_time() {
        let mut plain = BytesMut::new();
        for seq in 0..50_000u32 {
            encode_frame(
                &Frame::json(seq, &b"{}"[..]),
                Compression::none(),
                &mut plain,
            )
            .unwrap();
        }
        let wire = compressed(&plain);
        let budget = Arc::new(MemoryBudget::new(wire.len() + 4 * INFLATE_CHUNK));
        let holding = Holding::with_allowance(budget.clone(), 0);
        let mut codec = BeatsCodec::with_memory(Limits::default(), holding);
        let mut buf = BytesMut::from(&wire[..]);
        let mut seen = 0u32;
        let mut peak = 0;
        loop {
            match codec.decode_next(&mut buf).unwrap() {
                Decoded::Frame(Frame::Json { seq, .. }) => {
                    assert_eq!(seq, seen);
                    seen += 1;
                }
                Decoded::Frame(other) => panic!("{other:?}"),
                Decoded::NeedBytes => break,
                Decoded::NeedMemory(n) => panic!("needed {n} more bytes"),
            }
            peak = peak.max(budget.used());
        }
        assert_eq!(seen, 50_000);
        assert!(peak <= wire.len() + 2 * INFLATE_CHUNK, "{peak}");
        assert_eq!(codec.memory().held(), 0, "memory not given back");
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn a_spent_budget_pauses_inflation() {
        let mut plain = BytesMut::new();
        for seq in 0..10_000u32 {
            encode_frame(
                &Frame::json(seq, &b"{}"[..]),
                Compression::none(),
                &mut plain,
            )
            .unwrap();
        }
        let wire = compressed(&plain);
        let budget = Arc::new(MemoryBudget::new(wire.len() + 16));
        let holding = Holding::with_allowance(budget.clone(), 0);
        let mut codec = BeatsCodec::with_memory(Limits::default(), holding);
        let mut buf = BytesMut::from(&wire[..]);
        match codec.decode_next(&mut buf).unwrap() {
            Decoded::NeedMemory(n) => assert!(n > 0 && n <= 2 * INFLATE_CHUNK, "{n}"),
            other => panic!("{other:?}"),
        }
        let held = codec.memory().held();
        codec.memory().set_unchecked(held + 2 * INFLATE_CHUNK);
        codec.prepaid(2 * INFLATE_CHUNK);
        assert!(matches!(
            codec.decode_next(&mut buf).unwrap(),
            Decoded::Frame(Frame::Json { seq: 0, .. })
        ));
    }

    #[test]
    fn a_frame_header_reserves_nothing() {
        let mut codec = BeatsCodec::default();
        let mut buf = BytesMut::from(&b"2J\x00\x00\x00\x01\x01\xff\xff\xff"[..]);
        assert!(matches!(
            codec.decode_next(&mut buf).unwrap(),
            Decoded::NeedBytes
        ));
        assert!(buf.capacity() < 1024, "{}", buf.capacity());
        assert_eq!(codec.memory().held(), 0);
    }

    #[test]
    fn a_v1_frame_arriving_in_pieces_is_scanned_once() {
        // 20,000 pairs sent a few bytes at a time: a re-scan from the start on every
        // piece would read ~10^9 length prefixes; resuming reads each one once.
        let pairs: Vec<(Bytes, Bytes)> = (0..20_000)
            .map(|i| (Bytes::from(format!("k{i}")), Bytes::from_static(b"v")))
            .collect();
        let mut wire = BytesMut::new();
        encode_frame(
            &Frame::Data {
                seq: 1,
                pairs: pairs.clone(),
            },
            Compression::none(),
            &mut wire,
        )
        .unwrap();
        let mut limits = Limits::default();
        let mut scan = Scan::default();
        limits.max_frame_bytes = 1 << 20;
        let mut steps = 0usize;
        for end in (1..wire.len()).step_by(7) {
            let before = scan.at;
            match frame_len(&wire[..end], &limits, &mut scan).unwrap() {
                Header::Incomplete => {}
                Header::Len(len) => panic!("complete at {end} of {len}"),
            }
            steps += (scan.at - before) / 4;
        }
        assert!(steps <= wire.len(), "{steps}");
        let mut codec = BeatsCodec::default();
        let mut buf = BytesMut::new();
        let mut got = None;
        for piece in wire.chunks(7) {
            buf.extend_from_slice(piece);
            if let Some(f) = codec.decode(&mut buf).unwrap() {
                got = Some(f);
            }
        }
        assert_eq!(got, Some(Frame::Data { seq: 1, pairs }));
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
