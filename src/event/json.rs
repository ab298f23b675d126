//! JSON straight into and out of [`Value`]: the one JSON parser of the event model,
//! used by the json codecs, the json filter, the Beats and http inputs and the
//! persisted queue.
//!
//! Parsing is a hand-written recursive descent rather than a serde visitor because the
//! cost of an event is mostly its allocations: here the fields of the maps being read
//! wait on a per-thread stack, and each map (and array) is allocated once, when it is
//! complete, with exactly the room it needs (plus what the caller says will be added:
//! `@timestamp`, `@version`, tags). Parsed the generic way, a map is sized before its
//! length is known and grows by doubling, and a Filebeat document's dozen small nested
//! maps carried several KiB of room never used.
//!
//! It accepts exactly what `serde_json` accepts, with the same meaning, so no pipeline
//! sees a change: a repeated key keeps its first place and its last value (as Logstash's
//! parser does); an integer beyond `i64` becomes a float; `-0` is the float `-0.0`;
//! a float beyond `f64`'s range, invalid UTF-8 in a string, an unpaired surrogate
//! escape, a control character in a string and nesting deeper than 127 levels are
//! errors; the error says what and where, in `serde_json`'s words.

use super::{map_with_capacity, Event, Map, Timestamp, Value, TIMESTAMP};
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use std::cell::Cell;
use std::fmt;

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Int(i) => s.serialize_i64(*i),
            Value::Float(f) => s.serialize_f64(*f),
            Value::String(v) => s.serialize_str(v),
            Value::Timestamp(t) => s.serialize_str(&t.to_iso8601()),
            Value::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Value::Map(m) => {
                let mut map = s.serialize_map(Some(m.len()))?;
                for (k, v) in m {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

/// `Value` through serde, for formats other than JSON text (YAML, embedded documents).
/// JSON text goes through [`parse_value`], which is faster and sizes maps exactly.
struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(i64::try_from(v).map_or(Value::Float(v as f64), Value::Int))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(v) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map: Map = map_with_capacity(access.size_hint().unwrap_or(8).min(64));
        while let Some((k, v)) = access.next_entry::<String, Value>()? {
            map.insert(k, v);
        }
        Ok(Value::Map(map))
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

/// Why a JSON text did not parse, and where (1-based line and column, as `serde_json`
/// reports them).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason} at line {line} column {column}")]
pub struct JsonError {
    reason: &'static str,
    line: usize,
    column: usize,
}

impl JsonError {
    /// What was wrong, without the position.
    pub fn reason(&self) -> &'static str {
        self.reason
    }
}

/// Why a JSON document did not become events.
#[derive(Debug, thiserror::Error)]
pub enum JsonEventError {
    #[error("invalid JSON: {0}")]
    Syntax(#[from] JsonError),
    #[error("JSON value is not an object")]
    NotAnObject,
}

/// Fields an event decoded from JSON gets after decoding, reserved in its top-level map
/// so that they do not reallocate it: `@timestamp` and `@version` when the document
/// lacks them, `tags`, and one field a filter adds.
pub const EVENT_ROOM: usize = 4;

/// Decodes one JSON document into events: an object is one event, an array of objects
/// one event per element, as Logstash's json codecs do.
pub fn events_from_json_slice(
    bytes: &[u8],
    now: Timestamp,
    out: &mut Vec<Event>,
) -> Result<(), JsonEventError> {
    let value = with_stacks(|stacks| {
        let mut p = Parser::new(bytes, stacks);
        p.skip_whitespace();
        let value = match p.peek() {
            // The elements of a top-level array are events: they get an event's room.
            Some(b'[') => p.array(EVENT_ROOM)?,
            _ => p.value(EVENT_ROOM)?,
        };
        p.end()?;
        Ok::<_, JsonError>(value)
    })?;
    match value {
        Value::Map(m) => {
            out.push(Event::from_map(m, now));
            Ok(())
        }
        Value::Array(items) if items.iter().all(|v| matches!(v, Value::Map(_))) => {
            out.reserve(items.len());
            for item in items {
                if let Value::Map(m) = item {
                    out.push(Event::from_map(m, now));
                }
            }
            Ok(())
        }
        _ => Err(JsonEventError::NotAnObject),
    }
}

/// Parses one JSON text (any value; whitespace around it is allowed, nothing else).
pub fn parse_value(bytes: &[u8]) -> Result<Value, JsonError> {
    with_stacks(|stacks| {
        let mut p = Parser::new(bytes, stacks);
        let value = p.value(0)?;
        p.end()?;
        Ok(value)
    })
}

/// How [`parse_object`] shapes the top-level object of a document.
#[derive(Debug, Clone, Copy)]
pub struct ObjectShape {
    /// Spare room in the top-level map for fields added later.
    pub room: usize,
    /// Set `@metadata` apart (an event's metadata travels beside its fields), its map
    /// with this much spare room.
    pub metadata_room: Option<usize>,
}

/// A document's fields, with a string `@timestamp` that parses already a
/// [`Value::Timestamp`] (one that does not is left a string, for [`Event::from_map`] to
/// keep as `_@timestamp` and tag), and its `@metadata` when set apart.
#[derive(Debug)]
pub struct JsonObject {
    pub fields: Map,
    pub metadata: Option<Value>,
}

/// Parses one JSON text that must be an object: a Beats document.
pub fn parse_object(bytes: &[u8], shape: ObjectShape) -> Result<JsonObject, JsonError> {
    with_stacks(|stacks| {
        let mut p = Parser::new(bytes, stacks);
        let object = p.top_object(shape)?;
        p.end()?;
        Ok(object)
    })
}

/// Nesting `serde_json` accepts: 127 levels of arrays and objects; the 128th is an error.
const MAX_DEPTH: usize = 128;
/// Entries (pending on the stacks) a thread keeps room for between documents: a hostile
/// document with a million keys does not keep its stacks' memory after it is parsed.
const KEEP_PENDING: usize = 1024;

/// The fields and array items of the maps and arrays being read, innermost last.
#[derive(Default)]
struct Stacks {
    fields: Vec<(String, Value)>,
    items: Vec<Value>,
}

thread_local! {
    static STACKS: Cell<Stacks> = const {
        Cell::new(Stacks {
            fields: Vec::new(),
            items: Vec::new(),
        })
    };
}

/// Runs `parse` with this thread's stacks (empty ones when a parse within a parse has
/// them, or the thread is exiting), and leaves them empty and not too large.
fn with_stacks<T>(parse: impl FnOnce(&mut Stacks) -> T) -> T {
    let mut stacks = STACKS.try_with(Cell::take).unwrap_or_default();
    let result = parse(&mut stacks);
    // Left over by an error.
    stacks.fields.clear();
    stacks.items.clear();
    if stacks.fields.capacity() > KEEP_PENDING {
        stacks.fields = Vec::new();
    }
    if stacks.items.capacity() > KEEP_PENDING {
        stacks.items = Vec::new();
    }
    let _ = STACKS.try_with(|cell| cell.set(stacks));
    result
}

/// Bytes that end the fast scan of a string: `"`, `\` and control characters.
const fn string_special_table() -> [bool; 256] {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        t[b] = true;
        b += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
}
static STRING_SPECIAL: [bool; 256] = string_special_table();

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// A mask whose lowest set high bit marks the first byte of `word` (little-endian) that
/// is `"`, `\` or below 0x20; 0 when none is. Bits above the first match may be set
/// wrongly (a borrow), never below it.
#[inline]
fn special_bytes(word: u64) -> u64 {
    let below_space = word.wrapping_sub(ONES * 0x20) & !word;
    let quote = word ^ (ONES * u64::from(b'"'));
    let backslash = word ^ (ONES * u64::from(b'\\'));
    (below_space
        | (quote.wrapping_sub(ONES) & !quote)
        | (backslash.wrapping_sub(ONES) & !backslash))
        & HIGHS
}

struct Parser<'a, 's> {
    bytes: &'a [u8],
    pos: usize,
    depth: usize,
    stacks: &'s mut Stacks,
}

type Parsed<T> = Result<T, JsonError>;

impl<'a, 's> Parser<'a, 's> {
    fn new(bytes: &'a [u8], stacks: &'s mut Stacks) -> Self {
        Parser {
            bytes,
            pos: 0,
            depth: 0,
            stacks,
        }
    }

    /// An error at the current position.
    fn error(&self, reason: &'static str) -> JsonError {
        self.error_at(self.pos, reason)
    }

    /// An error at byte `at` (its column counts bytes, as `serde_json`'s does).
    fn error_at(&self, at: usize, reason: &'static str) -> JsonError {
        let before = &self.bytes[..at.min(self.bytes.len())];
        let line = 1 + memchr::memchr_iter(b'\n', before).count();
        let column = match memchr::memrchr(b'\n', before) {
            Some(nl) => at - nl - 1,
            None => at,
        };
        JsonError {
            reason,
            line,
            column,
        }
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    #[inline]
    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.pos += 1;
        }
    }

    /// Only whitespace may follow the document.
    fn end(&mut self) -> Parsed<()> {
        self.skip_whitespace();
        if self.pos < self.bytes.len() {
            self.pos += 1;
            return Err(self.error("trailing characters"));
        }
        Ok(())
    }

    /// One value; a map gets `room` spare entries (its nested maps none).
    fn value(&mut self, room: usize) -> Parsed<Value> {
        self.skip_whitespace();
        let Some(b) = self.peek() else {
            return Err(self.error("EOF while parsing a value"));
        };
        match b {
            b'"' => {
                self.pos += 1;
                self.string().map(Value::String)
            }
            b'{' => self.object(room),
            b'[' => self.array(0),
            b't' => self.literal(b"true", Value::Bool(true)),
            b'f' => self.literal(b"false", Value::Bool(false)),
            b'n' => self.literal(b"null", Value::Null),
            b'-' | b'0'..=b'9' => self.number(),
            _ => {
                self.pos += 1;
                Err(self.error("expected value"))
            }
        }
    }

    fn literal(&mut self, word: &'static [u8], value: Value) -> Parsed<Value> {
        for &expected in word {
            match self.peek() {
                Some(b) if b == expected => self.pos += 1,
                Some(_) => {
                    self.pos += 1;
                    return Err(self.error("expected ident"));
                }
                None => return Err(self.error("EOF while parsing a value")),
            }
        }
        Ok(value)
    }

    fn enter(&mut self) -> Parsed<()> {
        self.depth += 1;
        if self.depth >= MAX_DEPTH {
            self.pos += 1;
            return Err(self.error("recursion limit exceeded"));
        }
        Ok(())
    }

    /// An array (at `[`); its elements that are maps get `room` spare entries.
    fn array(&mut self, room: usize) -> Parsed<Value> {
        self.enter()?;
        self.pos += 1;
        let base = self.stacks.items.len();
        self.skip_whitespace();
        if self.peek() == Some(b']') {
            self.pos += 1;
        } else {
            loop {
                let item = self.value(room)?;
                self.stacks.items.push(item);
                self.skip_whitespace();
                match self.peek() {
                    Some(b',') => {
                        self.pos += 1;
                        self.skip_whitespace();
                        if self.peek() == Some(b']') {
                            self.pos += 1;
                            return Err(self.error("trailing comma"));
                        }
                    }
                    Some(b']') => {
                        self.pos += 1;
                        break;
                    }
                    Some(_) => {
                        self.pos += 1;
                        return Err(self.error("expected `,` or `]`"));
                    }
                    None => return Err(self.error("EOF while parsing a list")),
                }
            }
        }
        self.depth -= 1;
        Ok(Value::Array(self.stacks.items.drain(base..).collect()))
    }

    /// An object (at `{`) whose map gets `room` spare entries.
    fn object(&mut self, room: usize) -> Parsed<Value> {
        self.enter()?;
        self.pos += 1;
        let base = self.stacks.fields.len();
        let mut first = true;
        while let Some(key) = self.next_key(first)? {
            first = false;
            let value = self.value(0)?;
            self.stacks.fields.push((key, value));
        }
        self.depth -= 1;
        Ok(Value::Map(self.collect(base, room)))
    }

    /// The top-level object of a document, shaped as `shape` says.
    fn top_object(&mut self, shape: ObjectShape) -> Parsed<JsonObject> {
        self.skip_whitespace();
        match self.peek() {
            Some(b'{') => {}
            Some(_) => {
                self.pos += 1;
                return Err(self.error("expected a JSON object"));
            }
            None => return Err(self.error("EOF while parsing a value")),
        }
        self.enter()?;
        self.pos += 1;
        let base = self.stacks.fields.len();
        let mut metadata = None;
        let mut first = true;
        while let Some(key) = self.next_key(first)? {
            first = false;
            if let (Some(room), "@metadata") = (shape.metadata_room, key.as_str()) {
                metadata = Some(self.value(room)?);
                continue;
            }
            let value = match self.value(0)? {
                Value::String(s) if key == TIMESTAMP => match Timestamp::parse_iso8601(&s) {
                    Some(ts) => Value::Timestamp(ts),
                    None => Value::String(s),
                },
                other => other,
            };
            self.stacks.fields.push((key, value));
        }
        self.depth -= 1;
        Ok(JsonObject {
            fields: self.collect(base, shape.room),
            metadata,
        })
    }

    /// The fields pushed since `base`, as a map with `room` to spare. A repeated key
    /// keeps its first place and takes its last value.
    fn collect(&mut self, base: usize, room: usize) -> Map {
        let mut map = map_with_capacity(self.stacks.fields.len() - base + room);
        map.extend(self.stacks.fields.drain(base..));
        map
    }

    /// In an object, after `{` (`first`) or a value: the next key (and its `:`), or `None` at
    /// the closing `}`.
    fn next_key(&mut self, first: bool) -> Parsed<Option<String>> {
        self.skip_whitespace();
        match self.peek() {
            Some(b'}') => {
                self.pos += 1;
                return Ok(None);
            }
            Some(b',') if !first => {
                self.pos += 1;
                self.skip_whitespace();
                if self.peek() == Some(b'}') {
                    self.pos += 1;
                    return Err(self.error("trailing comma"));
                }
            }
            Some(_) if !first => {
                self.pos += 1;
                return Err(self.error("expected `,` or `}`"));
            }
            Some(_) => {}
            None => return Err(self.error("EOF while parsing an object")),
        }
        match self.peek() {
            Some(b'"') => self.pos += 1,
            Some(_) => {
                self.pos += 1;
                return Err(self.error("key must be a string"));
            }
            None => return Err(self.error("EOF while parsing an object")),
        }
        let key = self.string()?;
        self.skip_whitespace();
        match self.peek() {
            Some(b':') => self.pos += 1,
            Some(_) => {
                self.pos += 1;
                return Err(self.error("expected `:`"));
            }
            None => return Err(self.error("EOF while parsing an object")),
        }
        Ok(Some(key))
    }

    /// The rest of a string (after its opening `"`).
    fn string(&mut self) -> Parsed<String> {
        let start = self.pos;
        let (end, ascii) = self.scan_plain();
        if self.bytes.get(end) == Some(&b'"') {
            self.pos = end + 1;
            return self.text(start, end, ascii).map(str::to_owned);
        }
        // Escapes (or an error): build the string piece by piece.
        let mut out = String::with_capacity(end - start + 16);
        let (mut from, mut at, mut ascii) = (start, end, ascii);
        loop {
            out.push_str(self.text(from, at, ascii)?);
            self.pos = at;
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    self.escape(&mut out)?;
                }
                Some(_) => {
                    self.pos += 1;
                    return Err(self.error(
                        "control character (\\u0000-\\u001F) found while parsing a string",
                    ));
                }
                None => return Err(self.error("EOF while parsing a string")),
            }
            from = self.pos;
            (at, ascii) = self.scan_plain();
        }
    }

    /// Where the run of plain string bytes starting at `self.pos` ends (the index of
    /// the first `"`, `\` or control character, or the end of the input), and whether
    /// the run is all ASCII, which needs no UTF-8 check.
    #[inline]
    fn scan_plain(&self) -> (usize, bool) {
        let bytes = self.bytes;
        let mut i = self.pos;
        let mut seen = 0u64;
        while let Some(chunk) = bytes.get(i..i + 8) {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            let word = u64::from_le_bytes(word);
            let mask = special_bytes(word);
            if mask != 0 {
                let before = mask.trailing_zeros() / 8;
                // The bytes before the first special one (`before` < 8).
                seen |= word & ((1u64 << (before * 8)) - 1);
                return (i + before as usize, seen & HIGHS == 0);
            }
            seen |= word;
            i += 8;
        }
        while i < bytes.len() && !STRING_SPECIAL[usize::from(bytes[i])] {
            seen |= u64::from(bytes[i]);
            i += 1;
        }
        (i, seen & HIGHS == 0)
    }

    /// The string `from..to` of the input, `ascii` when [`Parser::scan_plain`] saw only
    /// ASCII there.
    #[inline]
    fn text(&self, from: usize, to: usize, ascii: bool) -> Parsed<&'a str> {
        let bytes: &'a [u8] = self.bytes;
        if ascii {
            // SAFETY: every byte of the range is below 0x80 (`scan_plain` checked their
            // high bits), and a run of ASCII bytes is valid UTF-8.
            return Ok(unsafe { std::str::from_utf8_unchecked(&bytes[from..to]) });
        }
        self.utf8(from, to)
    }

    fn utf8(&self, from: usize, to: usize) -> Parsed<&'a str> {
        let bytes: &'a [u8] = self.bytes;
        std::str::from_utf8(&bytes[from..to])
            .map_err(|e| self.error_at(from + e.valid_up_to() + 1, "invalid unicode code point"))
    }

    /// One escape (after its `\`).
    fn escape(&mut self, out: &mut String) -> Parsed<()> {
        let Some(b) = self.peek() else {
            return Err(self.error("EOF while parsing a string"));
        };
        self.pos += 1;
        let c = match b {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => self.unicode_escape()?,
            _ => return Err(self.error("invalid escape")),
        };
        out.push(c);
        Ok(())
    }

    /// The character of a `\uXXXX` escape (after its `u`), with the low half of a
    /// surrogate pair when it is the high half.
    fn unicode_escape(&mut self) -> Parsed<char> {
        let first = self.hex4()?;
        let code = match first {
            0xDC00..=0xDFFF => return Err(self.error("lone leading surrogate in hex escape")),
            0xD800..=0xDBFF => {
                if self.bytes.get(self.pos..self.pos + 2) != Some(b"\\u") {
                    if self.pos + 2 > self.bytes.len() {
                        self.pos = self.bytes.len();
                        return Err(self.error("unexpected end of hex escape"));
                    }
                    self.pos += 1;
                    return Err(self.error("unexpected end of hex escape"));
                }
                self.pos += 2;
                let second = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&second) {
                    return Err(self.error("lone leading surrogate in hex escape"));
                }
                0x10000 + ((u32::from(first) - 0xD800) << 10) + (u32::from(second) - 0xDC00)
            }
            other => u32::from(other),
        };
        char::from_u32(code).ok_or_else(|| self.error("invalid unicode code point"))
    }

    fn hex4(&mut self) -> Parsed<u16> {
        let mut n: u16 = 0;
        for _ in 0..4 {
            let Some(b) = self.peek() else {
                return Err(self.error("EOF while parsing a string"));
            };
            self.pos += 1;
            let digit = match b {
                b'0'..=b'9' => b - b'0',
                b'a'..=b'f' => b - b'a' + 10,
                b'A'..=b'F' => b - b'A' + 10,
                _ => return Err(self.error("invalid escape")),
            };
            n = (n << 4) | u16::from(digit);
        }
        Ok(n)
    }

    /// A number (at `-` or a digit). Integers that fit are [`Value::Int`]; the rest,
    /// and anything with a fraction or exponent, [`Value::Float`], rounded correctly.
    fn number(&mut self) -> Parsed<Value> {
        let start = self.pos;
        let negative = self.peek() == Some(b'-');
        if negative {
            self.pos += 1;
        }
        let digits = self.pos;
        match self.peek() {
            Some(b'0') => {
                self.pos += 1;
                if let Some(b'0'..=b'9') = self.peek() {
                    self.pos += 1;
                    return Err(self.error("invalid number"));
                }
            }
            Some(b'1'..=b'9') => {
                while let Some(b'0'..=b'9') = self.peek() {
                    self.pos += 1;
                }
            }
            Some(_) => {
                self.pos += 1;
                return Err(self.error("invalid number"));
            }
            None => return Err(self.error("EOF while parsing a value")),
        }
        let int_end = self.pos;
        let mut float = false;
        if self.peek() == Some(b'.') {
            float = true;
            self.pos += 1;
            self.digits()?;
        }
        if let Some(b'e' | b'E') = self.peek() {
            float = true;
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            self.digits()?;
        }
        if !float {
            // At most 19 digits always fit a u64; longer runs are checked.
            let mut n: u64 = 0;
            let mut fits = true;
            for &d in &self.bytes[digits..int_end] {
                match n
                    .checked_mul(10)
                    .and_then(|n| n.checked_add(u64::from(d - b'0')))
                {
                    Some(next) => n = next,
                    None => {
                        fits = false;
                        break;
                    }
                }
            }
            if fits {
                if !negative {
                    return Ok(i64::try_from(n).map_or(Value::Float(n as f64), Value::Int));
                }
                if n == 0 {
                    return Ok(Value::Float(-0.0));
                }
                if n <= 1 << 63 {
                    return Ok(Value::Int((n as i64).wrapping_neg()));
                }
            }
        }
        let text = std::str::from_utf8(&self.bytes[start..self.pos])
            .map_err(|_| self.error("invalid number"))?;
        match text.parse::<f64>() {
            Ok(f) if f.is_finite() => Ok(Value::Float(f)),
            _ => Err(self.error_at(start + 1, "number out of range")),
        }
    }

    /// One or more digits (of a fraction or an exponent).
    fn digits(&mut self) -> Parsed<()> {
        match self.peek() {
            Some(b'0'..=b'9') => {}
            Some(_) => {
                self.pos += 1;
                return Err(self.error("invalid number"));
            }
            None => return Err(self.error("EOF while parsing a value")),
        }
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_order_and_types() {
        let line = br#"{"@timestamp":"2026-11-21T10:30:00.123Z","level":"ERROR","n":3,"f":1.5,"ok":true,"nil":null,"a":[1,"x"],"m":{"z":1,"a":2}}"#;
        let mut out = Vec::new();
        events_from_json_slice(line, Timestamp::now(), &mut out).unwrap();
        let e = &out[0];
        assert_eq!(e.get_field("n"), Some(&Value::Int(3)));
        assert!(matches!(
            e.get_field("@timestamp"),
            Some(Value::Timestamp(_))
        ));
        let json = e.to_json_string();
        assert_eq!(
            json,
            r#"{"@timestamp":"2026-11-21T10:30:00.123Z","level":"ERROR","n":3,"f":1.5,"ok":true,"nil":null,"a":[1,"x"],"m":{"z":1,"a":2},"@version":"1"}"#
        );
    }

    #[test]
    fn arrays_of_objects_make_several_events() {
        let mut out = Vec::new();
        events_from_json_slice(br#"[{"a":1},{"a":2}]"#, Timestamp::now(), &mut out).unwrap();
        assert_eq!(out.len(), 2);
        assert!(out
            .iter()
            .all(|e| e.fields().capacity() >= 3 + EVENT_ROOM - 2));
        assert!(events_from_json_slice(b"42", Timestamp::now(), &mut out).is_err());
        assert!(events_from_json_slice(b"{bad", Timestamp::now(), &mut out).is_err());
        assert!(events_from_json_slice(b"[{},1]", Timestamp::now(), &mut out).is_err());
    }

    /// What `serde_json` makes of `text` through `Value`'s serde impl, as JSON text
    /// (which shows key order, unlike `Map`'s equality), or its error.
    fn serde_reference(text: &[u8]) -> Result<String, String> {
        serde_json::from_slice::<Value>(text)
            .map(|v| serde_json::to_string(&v).unwrap())
            .map_err(|e| e.to_string())
    }

    fn ours(text: &[u8]) -> Result<String, String> {
        parse_value(text)
            .map(|v| serde_json::to_string(&v).unwrap())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn accepts_and_refuses_what_serde_json_does_with_the_same_values() {
        let cases: &[&[u8]] = &[
            b"{}",
            b"[]",
            b" { \"a\" : [ 1 , 2.5 , -3 , true , false , null ] } \n",
            b"0",
            b"-0",
            b"-0.0",
            b"1e3",
            b"1E+3",
            b"2.5e-3",
            b"9223372036854775807",
            b"9223372036854775808",
            b"-9223372036854775808",
            b"-9223372036854775809",
            b"18446744073709551615",
            b"18446744073709551616",
            b"123456789012345678901234567890",
            b"-123456789012345678901234567890",
            b"1e308",
            b"1e309",
            b"-1e309",
            b"1e-400",
            b"0.1",
            b"3.141592653589793",
            b"01",
            b"-",
            b"1.",
            b".5",
            b"1e",
            b"1e+",
            b"+1",
            b"\"plain\"",
            b"\"esc \\\" \\\\ \\/ \\b \\f \\n \\r \\t\"",
            b"\"\\u00e9\\u4e2d\\ud83d\\ude00\"",
            b"\"\\ud83d\"",
            b"\"\\ud83d\\u0041\"",
            b"\"\\ude00\"",
            b"\"\\u12\"",
            b"\"\\x\"",
            b"\"tab\there\"",
            b"\"caf\xc3\xa9\"",
            b"\"bad \xff utf8\"",
            b"\"cut \xc3\"",
            b"\"unterminated",
            b"\"a long string with no escapes at all, longer than a word\"",
            b"{\"k\":1,\"j\":2,\"k\":3}",
            b"{\"a\":1,}",
            b"[1,]",
            b"[1 2]",
            b"{\"a\" 1}",
            b"{\"a\":1 \"b\":2}",
            b"{1:2}",
            b"{",
            b"[",
            b"{\"a\":",
            b"{\"a\"",
            b"tru",
            b"trux",
            b"nul",
            b"null x",
            b"{} {}",
            b"",
            b"   ",
            b"\xef\xbb\xbf{}",
        ];
        for &case in cases {
            let (expected, got) = (serde_reference(case), ours(case));
            let shown = String::from_utf8_lossy(case);
            match (&expected, &got) {
                (Ok(e), Ok(g)) => assert_eq!(e, g, "{shown}"),
                (Err(_), Err(_)) => {}
                _ => panic!("{shown}: serde_json {expected:?}, ours {got:?}"),
            }
        }
    }

    #[test]
    fn invalid_utf8_is_refused_wherever_it_is_in_a_string() {
        for len in [1, 7, 8, 9, 15, 16, 17, 23] {
            for at in 0..len {
                let mut text = b"\"".to_vec();
                text.extend((0..len).map(|i| if i == at { 0xff } else { b'a' }));
                text.extend_from_slice(b"\\n\"");
                assert!(parse_value(&text).is_err(), "{len} {at}");
                // And a valid two-byte character there is kept.
                let mut text = b"\"".to_vec();
                text.extend((0..len).map(|i| if i == at { 0xc3 } else { b'a' }));
                text.insert(at + 2, 0xa9);
                text.push(b'"');
                let expected = serde_reference(&text);
                assert!(expected.is_ok());
                assert_eq!(ours(&text), expected, "{len} {at}");
            }
        }
    }

    #[test]
    fn errors_say_what_and_where_as_serde_json_does() {
        for case in [
            &b"{\"a\":1,}"[..],
            b"[1 2]",
            b"{\n  \"a\": tx\n}",
            b"{\"a\":1",
            b"x",
        ] {
            assert_eq!(
                ours(case),
                serde_reference(case),
                "{}",
                String::from_utf8_lossy(case)
            );
        }
    }

    #[test]
    fn nesting_stops_where_serde_json_stops() {
        for depth in [126, 127, 128, 129, 10_000] {
            let text = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
            assert_eq!(
                parse_value(text.as_bytes()).is_ok(),
                serde_json::from_str::<Value>(&text).is_ok(),
                "depth {depth}"
            );
            let text = format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth));
            assert_eq!(
                parse_value(text.as_bytes()).is_ok(),
                serde_json::from_str::<Value>(&text).is_ok(),
                "depth {depth}"
            );
        }
    }

    #[test]
    fn maps_get_exactly_their_room() {
        let doc = parse_object(
            br#"{"@timestamp":"2024-01-02T03:04:05.678Z","@metadata":{"beat":"filebeat"},"a":{"x":1,"y":[true,null,1.5,{"z":"q"}]},"d":{"k":1,"j":0,"k":2},"n":18446744073709551615}"#,
            ObjectShape {
                room: 2,
                metadata_room: Some(3),
            },
        )
        .unwrap();
        assert!(matches!(doc.fields["@timestamp"], Value::Timestamp(_)));
        let keys: Vec<&str> = doc.fields.keys().map(String::as_str).collect();
        assert_eq!(keys, ["@timestamp", "a", "d", "n"]);
        assert_eq!(doc.fields.capacity(), 4 + 2);
        let Some(Value::Map(a)) = doc.fields.get("a") else {
            panic!("a is not a map")
        };
        assert_eq!(a.capacity(), 2);
        let Some(Value::Array(y)) = a.get("y") else {
            panic!("y is not an array")
        };
        assert_eq!(y.capacity(), 4);
        let Some(Value::Map(d)) = doc.fields.get("d") else {
            panic!("d is not a map")
        };
        assert_eq!(d.keys().collect::<Vec<_>>(), ["k", "j"]);
        assert_eq!(d["k"], Value::Int(2));
        let Some(Value::Map(meta)) = doc.metadata else {
            panic!("no @metadata")
        };
        assert_eq!(meta.capacity(), 1 + 3);
        // Without `metadata_room`, `@metadata` is a field like any other.
        let doc = parse_object(
            br#"{"@metadata":{"a":1}}"#,
            ObjectShape {
                room: 0,
                metadata_room: None,
            },
        )
        .unwrap();
        assert!(doc.metadata.is_none() && doc.fields.contains_key("@metadata"));
    }

    #[test]
    fn errors_leave_nothing_pending_and_huge_documents_do_not_keep_their_stacks() {
        let shape = ObjectShape {
            room: 0,
            metadata_room: None,
        };
        for bad in [
            &b"[1]"[..],
            b"\"text\"",
            b"{\"a\":{\"b\":[1,2",
            b"{\"a\":1} {}",
        ] {
            assert!(parse_object(bad, shape).is_err());
            let stacks = STACKS.with(Cell::take);
            assert!(stacks.fields.is_empty() && stacks.items.is_empty());
        }
        let mut doc = String::from("{\"list\":[");
        for i in 0..5000 {
            doc.push_str(&format!("{i},"));
        }
        doc.push_str("0],");
        for i in 0..5000 {
            doc.push_str(&format!("\"k{i}\":{i},"));
        }
        doc.push_str("\"end\":0}");
        assert_eq!(
            parse_object(doc.as_bytes(), shape).unwrap().fields.len(),
            5002
        );
        let stacks = STACKS.with(Cell::take);
        assert!(stacks.fields.capacity() <= KEEP_PENDING);
        assert!(stacks.items.capacity() <= KEEP_PENDING);
    }

    /// Same values, keys in the same order; floats may differ in their last bit, where
    /// `serde_json` (without its `float_roundtrip` feature) does not round correctly.
    fn same(a: &Value, b: &Value) -> bool {
        match (a, b) {
            (Value::Float(x), Value::Float(y)) => {
                x == y || (x - y).abs() <= f64::EPSILON * x.abs().max(y.abs())
            }
            (Value::Array(x), Value::Array(y)) => {
                x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
            }
            (Value::Map(x), Value::Map(y)) => {
                x.len() == y.len()
                    && x.iter()
                        .zip(y)
                        .all(|((kx, vx), (ky, vy))| kx == ky && same(vx, vy))
            }
            _ => a == b,
        }
    }

    /// A `serde_json` value as the event model holds it.
    fn from_serde(v: &serde_json::Value) -> Value {
        match v {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => match (n.as_i64(), n.as_f64()) {
                (Some(i), _) => Value::Int(i),
                (None, Some(f)) => Value::Float(f),
                (None, None) => Value::Null,
            },
            serde_json::Value::String(s) => Value::String(s.clone()),
            serde_json::Value::Array(a) => Value::Array(a.iter().map(from_serde).collect()),
            serde_json::Value::Object(m) => {
                Value::Map(m.iter().map(|(k, v)| (k.clone(), from_serde(v))).collect())
            }
        }
    }

    #[test]
    fn floats_are_rounded_correctly() {
        for f in [
            940490.5003716819,
            0.1,
            2.2250738585072014e-308,
            1.7976931348623157e308,
        ] {
            assert_eq!(parse_value(f.to_string().as_bytes()), Ok(Value::Float(f)));
            assert_eq!(
                parse_value(format!("{f:e}").as_bytes()),
                Ok(Value::Float(f))
            );
        }
    }

    proptest::proptest! {
        /// Any text built from JSON's own pieces (valid or not) is accepted or refused
        /// as `serde_json` does, with the same value.
        #[test]
        fn agrees_with_serde_json_on_arbitrary_texts(
            pieces in proptest::collection::vec(
                proptest::sample::select(vec![
                    "{", "}", "[", "]", ",", ":", " ", "\n", "\"", "\"k\"", "\"v\\n\"",
                    "\\u00e9", "\\ud83d", "\\ude00", "0", "1", "-", "12", ".", "5", "e",
                    "E+", "9223372036854775808", "true", "false", "null", "\u{e9}",
                    "\u{1F600}", "\t", "x",
                ]),
                0..24,
            )
        ) {
            let text = pieces.concat();
            let expected = serde_json::from_slice::<Value>(text.as_bytes());
            let got = parse_value(text.as_bytes());
            match (&expected, &got) {
                (Ok(e), Ok(g)) => proptest::prop_assert!(same(e, g), "{text:?}: {e:?} != {g:?}"),
                (Err(_), Err(_)) => {}
                _ => proptest::prop_assert!(false, "{text:?}: serde_json {expected:?}, ours {got:?}"),
            }
        }

        /// Documents of random structure parse back to the values they were written
        /// from, every float to the very same bits.
        #[test]
        fn documents_parse_back_to_their_values(value in arbitrary_json()) {
            let text = value.to_string();
            let got = parse_value(text.as_bytes());
            proptest::prop_assert_eq!(
                got.map(|v| serde_json::to_string(&v).unwrap()),
                Ok(serde_json::to_string(&from_serde(&value)).unwrap())
            );
        }
    }

    fn arbitrary_json() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<u64>().prop_map(serde_json::Value::from),
            (-1e6f64..1e6).prop_map(serde_json::Value::from),
            ".*".prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..8).prop_map(serde_json::Value::Array),
                proptest::collection::vec(("[a-c]{1,2}", inner), 0..8)
                    .prop_map(|pairs| { serde_json::Value::Object(pairs.into_iter().collect()) }),
            ]
        })
    }
}
