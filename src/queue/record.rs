//! How a batch of events is written into one persisted queue record (the payload that
//! [`segment`](super::segment) frames with its length and CRC).
//!
//! Two payload formats, told apart by the first byte:
//!
//! - **binary** (written by this version), first byte [`BINARY_V1`]: a compact,
//!   typed encoding of the events (see [`encode_events`]). Decoding it costs little more
//!   than the allocations of the events themselves, which matters when workers read
//!   records back from disk (a restart, or a backlog past the memory window), and it
//!   keeps every value's type (a timestamp in a field stays a timestamp).
//! - **JSON lines** (written by earlier versions), first byte `{` or `[`: one event per
//!   line, `[fields, metadata]` when the event carries metadata. Still read, so pages
//!   left by an earlier version replay after an upgrade.
//!
//! A record that decodes in neither format is damage: the caller logs and counts it.

use crate::event::{map_with_capacity, Event, Map, Timestamp, Value};

/// First byte of a binary payload. Never the first byte of a JSON line.
pub const BINARY_V1: u8 = 0x01;

/// Values nested deeper than this are refused (a damaged record, never a stack
/// overflow). Well above what a JSON input accepts.
const MAX_DEPTH: usize = 256;

const NULL: u8 = 0;
const FALSE: u8 = 1;
const TRUE: u8 = 2;
const INT: u8 = 3;
const FLOAT: u8 = 4;
const STRING: u8 = 5;
const TIMESTAMP: u8 = 6;
const ARRAY: u8 = 7;
const MAP: u8 = 8;

/// Encodes events as one record payload:
///
/// ```text
/// BINARY_V1, count: varint, then per event: fields (map), metadata (map, empty if none)
/// map:   entries: varint, then per entry: key (string), value
/// value: tag byte, then: Int zigzag varint | Float f64 LE | String string
///        | Timestamp seconds i64 LE, nanoseconds u32 LE | Array len: varint, values
///        | Map map | nothing for Null, False, True
/// string: length: varint, UTF-8 bytes
/// ```
pub fn encode_events(events: &[Event], out: &mut Vec<u8>) {
    out.push(BINARY_V1);
    put_varint(out, events.len() as u64);
    for e in events {
        put_map(out, e.fields());
        match e.metadata() {
            Some(meta) => put_map(out, meta),
            None => put_varint(out, 0),
        }
    }
}

/// Decodes what [`encode_events`] (or an earlier version's JSON lines) wrote, appending
/// the events to `out`. On error `out` may hold some of the record's events.
pub fn decode_events(payload: &[u8], out: &mut Vec<Event>) -> Result<(), String> {
    match payload.first() {
        Some(&BINARY_V1) => decode_binary(&payload[1..], out),
        Some(b'{' | b'[') => decode_json_lines(payload, out),
        Some(b) => Err(format!("unknown record format {b:#04x}")),
        None => Err("empty record".into()),
    }
}

fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push(n as u8 | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

fn put_map(out: &mut Vec<u8>, map: &Map) {
    put_varint(out, map.len() as u64);
    for (k, v) in map {
        put_str(out, k);
        put_value(out, v);
    }
}

fn put_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => out.push(NULL),
        Value::Bool(false) => out.push(FALSE),
        Value::Bool(true) => out.push(TRUE),
        Value::Int(i) => {
            out.push(INT);
            put_varint(out, ((i << 1) ^ (i >> 63)) as u64);
        }
        Value::Float(f) => {
            out.push(FLOAT);
            out.extend_from_slice(&f.to_le_bytes());
        }
        Value::String(s) => {
            out.push(STRING);
            put_str(out, s);
        }
        Value::Timestamp(ts) => {
            out.push(TIMESTAMP);
            let dt = ts.datetime();
            out.extend_from_slice(&dt.timestamp().to_le_bytes());
            out.extend_from_slice(&dt.timestamp_subsec_nanos().to_le_bytes());
        }
        Value::Array(items) => {
            out.push(ARRAY);
            put_varint(out, items.len() as u64);
            for item in items {
                put_value(out, item);
            }
        }
        Value::Map(m) => {
            out.push(MAP);
            put_map(out, m);
        }
    }
}

fn decode_binary(bytes: &[u8], out: &mut Vec<Event>) -> Result<(), String> {
    let mut r = Reader { bytes, at: 0 };
    let count = r.varint()?;
    let now = Timestamp::now();
    // Each event takes at least two bytes: a count cannot reserve more than that.
    out.reserve(count.min(bytes.len() as u64 / 2) as usize);
    for _ in 0..count {
        let fields = r.map(0)?;
        let meta = r.map(0)?;
        let mut e = Event::from_map(fields, now);
        if !meta.is_empty() {
            e.metadata_mut().extend(meta);
        }
        out.push(e);
    }
    if r.at != bytes.len() {
        return Err(format!("{} bytes after the last event", bytes.len() - r.at));
    }
    Ok(())
}

/// A cursor over a binary payload; every read checks the bounds.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8, String> {
        let b = *self.bytes.get(self.at).ok_or("record ends early")?;
        self.at += 1;
        Ok(b)
    }

    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len())
            .ok_or("record ends early")?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            n |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(n);
            }
        }
        Err("varint too long".into())
    }

    /// A length or count, at most what the rest of the record could hold.
    fn len(&mut self) -> Result<usize, String> {
        let n = self.varint()?;
        let left = (self.bytes.len() - self.at) as u64;
        if n > left {
            return Err(format!("length {n} past the end of the record"));
        }
        Ok(n as usize)
    }

    fn string(&mut self) -> Result<String, String> {
        let n = self.len()?;
        let raw = self.take(n)?;
        std::str::from_utf8(raw)
            .map(str::to_owned)
            .map_err(|e| format!("a string is not UTF-8: {e}"))
    }

    fn map(&mut self, depth: usize) -> Result<Map, String> {
        let n = self.len()?;
        let mut m = map_with_capacity(n);
        for _ in 0..n {
            let k = self.string()?;
            let v = self.value(depth + 1)?;
            m.insert(k, v);
        }
        Ok(m)
    }

    fn value(&mut self, depth: usize) -> Result<Value, String> {
        if depth > MAX_DEPTH {
            return Err("values nested too deep".into());
        }
        Ok(match self.byte()? {
            NULL => Value::Null,
            FALSE => Value::Bool(false),
            TRUE => Value::Bool(true),
            INT => {
                let z = self.varint()?;
                Value::Int(((z >> 1) as i64) ^ -((z & 1) as i64))
            }
            FLOAT => {
                let b = self.take(8)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                Value::Float(f64::from_le_bytes(a))
            }
            STRING => Value::String(self.string()?),
            TIMESTAMP => {
                let b = self.take(12)?;
                let mut secs = [0u8; 8];
                secs.copy_from_slice(&b[..8]);
                let mut nanos = [0u8; 4];
                nanos.copy_from_slice(&b[8..]);
                let (secs, nanos) = (i64::from_le_bytes(secs), u32::from_le_bytes(nanos));
                Value::Timestamp(
                    Timestamp::from_unix(secs, nanos)
                        .ok_or_else(|| format!("timestamp {secs}.{nanos} out of range"))?,
                )
            }
            ARRAY => {
                let n = self.len()?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.value(depth + 1)?);
                }
                Value::Array(items)
            }
            MAP => Value::Map(self.map(depth)?),
            tag => return Err(format!("unknown value tag {tag}")),
        })
    }
}

/// The format of earlier versions: a JSON line per event, `[fields, metadata]` when
/// the event carries metadata.
fn decode_json_lines(payload: &[u8], out: &mut Vec<Event>) -> Result<(), String> {
    let now = Timestamp::now();
    for line in payload.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let value = crate::event::parse_value(line).map_err(|e| e.to_string())?;
        match value {
            Value::Map(fields) => out.push(Event::from_map(fields, now)),
            Value::Array(mut parts) if parts.len() == 2 => {
                let meta = parts.pop();
                let fields = parts.pop();
                let (Some(Value::Map(fields)), Some(Value::Map(meta))) = (fields, meta) else {
                    return Err("an event with metadata is not [object, object]".into());
                };
                let mut e = Event::from_map(fields, now);
                e.metadata_mut().extend(meta);
                out.push(e);
            }
            _ => return Err("a queued event is not a JSON object".into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Event> {
        let mut a = Event::at(Timestamp::from_unix(1_700_000_000, 123_456_789).unwrap());
        a.insert_field("message", Value::from("héllo \"world\"\n"));
        a.insert_field("n", Value::Int(-42));
        a.insert_field("big", Value::Int(i64::MIN));
        a.insert_field("f", Value::Float(1.5e-300));
        a.insert_field("ok", Value::Bool(true));
        a.insert_field("no", Value::Bool(false));
        a.insert_field("nothing", Value::Null);
        a.insert_field(
            "seen",
            Value::Timestamp(Timestamp::from_unix(0, 1).unwrap()),
        );
        let mut inner = map_with_capacity(2);
        inner.insert(
            "list".into(),
            Value::Array(vec![Value::Int(1), Value::from("x")]),
        );
        inner.insert("empty".into(), Value::Map(map_with_capacity(0)));
        a.insert_field("nested", Value::Map(inner));
        a.metadata_mut().insert("kept".into(), Value::from("meta"));
        let mut b = Event::at(Timestamp::from_unix(1, 0).unwrap());
        b.insert_field("message", Value::from(""));
        vec![a, b]
    }

    #[test]
    fn events_come_back_exactly_with_their_types_and_metadata() {
        let events = sample();
        let mut payload = Vec::new();
        encode_events(&events, &mut payload);
        assert_eq!(payload[0], BINARY_V1);
        let mut back = Vec::new();
        decode_events(&payload, &mut back).unwrap();
        assert_eq!(back.len(), 2);
        for (a, b) in events.iter().zip(&back) {
            assert_eq!(a.fields(), b.fields());
            assert_eq!(
                a.metadata().filter(|m| !m.is_empty()),
                b.metadata().filter(|m| !m.is_empty())
            );
        }
        // A timestamp in a field stays a timestamp (JSON lines made it a string).
        assert!(matches!(
            back[0].get_field("seen"),
            Some(Value::Timestamp(_))
        ));
    }

    #[test]
    fn json_lines_of_earlier_versions_still_decode() {
        let payload = concat!(
            r#"{"@timestamp":"2026-11-21T10:30:00.123Z","@version":"1","message":"old"}"#,
            "\n",
            r#"[{"@timestamp":"2026-11-21T10:30:01.000Z","@version":"1","n":2},{"kept":1}]"#,
            "\n"
        );
        let mut back = Vec::new();
        decode_events(payload.as_bytes(), &mut back).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[0].get_field("message"), Some(&Value::from("old")));
        assert_eq!(back[1].get_field("n"), Some(&Value::Int(2)));
        assert_eq!(
            back[1].metadata().and_then(|m| m.get("kept")),
            Some(&Value::Int(1))
        );
    }

    #[test]
    fn every_truncation_and_any_garbage_is_an_error_never_a_panic() {
        let mut payload = Vec::new();
        encode_events(&sample(), &mut payload);
        for cut in 0..payload.len() {
            let mut out = Vec::new();
            assert!(
                decode_events(&payload[..cut], &mut out).is_err(),
                "a record cut at {cut} of {} decoded",
                payload.len()
            );
        }
        // Trailing bytes, unknown tags and formats, absurd lengths, deep nesting.
        let mut trailing = payload.clone();
        trailing.push(0);
        let bad_tag = vec![BINARY_V1, 1, 1, 1, b'k', 99, 0];
        let mut huge = vec![BINARY_V1, 1];
        huge.extend_from_slice(&[0xff; 9]);
        huge.push(0x01);
        let mut deep = vec![BINARY_V1, 1, 1, 1, b'k'];
        for _ in 0..10_000 {
            deep.extend_from_slice(&[ARRAY, 1]);
        }
        deep.push(NULL);
        deep.push(0);
        for bad in [&trailing, &bad_tag, &huge, &deep, &vec![0x7f, 0, 0]] {
            assert!(decode_events(bad, &mut Vec::new()).is_err(), "{bad:?}");
        }
    }
}
