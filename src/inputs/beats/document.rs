//! A Beats document parsed straight into the parts of an event, every map allocated
//! once at its size.
//!
//! Parsed the generic way, a map is sized before its length is known: room for 8
//! fields of 128 bytes each. A Filebeat document is a dozen small nested maps
//! (`host`, `agent`, `ecs`, `log.file`, `@metadata`, ...), so most of an event's memory
//! was room never used, about 10 KiB an event, and every connection's open window and
//! every queued batch paid for it. Here the fields of the maps being read wait on a
//! per-thread stack, and each map is allocated when it is complete, with exactly the
//! room it needs (plus the fields the mapping adds to the top level and `@metadata`).

use crate::event::{map_with_capacity, Map, Timestamp, Value, TIMESTAMP};
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use std::cell::RefCell;
use std::fmt;

/// A document's fields (with a string `@timestamp` already parsed) and its
/// `@metadata`, set apart while parsing rather than removed from the map afterwards.
#[derive(Debug)]
pub struct Document {
    pub fields: Map,
    pub metadata: Option<Value>,
}

/// Fields the mapping may add to the top level (`@version`, `tags`).
const TOP_LEVEL_ROOM: usize = 2;
/// Fields the mapping may add to `@metadata` (`input`, `tls_peer`).
const METADATA_ROOM: usize = 2;
/// Fields (pending on the stack) a thread keeps room for between documents: a hostile
/// document with a million keys does not keep its stack's memory after it is parsed.
const KEEP_PENDING: usize = 1024;

type Pending = Vec<(String, Value)>;

thread_local! {
    static PENDING: RefCell<Pending> = const { RefCell::new(Vec::new()) };
}

/// Parses one document, which must be a JSON object.
pub fn parse(payload: &[u8]) -> Result<Document, serde_json::Error> {
    let parsed = PENDING.try_with(|cell| match cell.try_borrow_mut() {
        Ok(mut pending) => {
            let parsed = parse_with(payload, &mut pending);
            // Left over by an error.
            pending.clear();
            if pending.capacity() > KEEP_PENDING {
                *pending = Vec::new();
            }
            parsed
        }
        Err(_) => parse_with(payload, &mut Vec::new()),
    });
    match parsed {
        Ok(parsed) => parsed,
        // The thread is exiting.
        Err(_) => parse_with(payload, &mut Vec::new()),
    }
}

fn parse_with(payload: &[u8], pending: &mut Pending) -> Result<Document, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(payload);
    let doc = DocumentSeed(pending).deserialize(&mut de)?;
    de.end()?;
    Ok(doc)
}

/// The fields pushed on `pending` since `base`, as a map with `room` to spare.
fn collect(pending: &mut Pending, base: usize, room: usize) -> Map {
    let mut map = map_with_capacity(pending.len() - base + room);
    map.extend(pending.drain(base..));
    map
}

struct DocumentSeed<'a>(&'a mut Pending);

impl<'de> DeserializeSeed<'de> for DocumentSeed<'_> {
    type Value = Document;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Document, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for DocumentSeed<'_> {
    type Value = Document;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object (a Beats document)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Document, A::Error> {
        let pending = self.0;
        let base = pending.len();
        let mut metadata = None;
        while let Some(key) = access.next_key::<String>()? {
            if key == "@metadata" {
                metadata = Some(access.next_value_seed(ValueSeed {
                    pending: &mut *pending,
                    room: METADATA_ROOM,
                })?);
                continue;
            }
            let value = access.next_value_seed(ValueSeed {
                pending: &mut *pending,
                room: 0,
            })?;
            let value = match value {
                Value::String(s) if key == TIMESTAMP => match Timestamp::parse_iso8601(&s) {
                    Some(ts) => Value::Timestamp(ts),
                    // Event::from_map keeps it as `_@timestamp` and tags the event.
                    None => Value::String(s),
                },
                other => other,
            };
            pending.push((key, value));
        }
        Ok(Document {
            fields: collect(pending, base, TOP_LEVEL_ROOM),
            metadata,
        })
    }
}

/// Any JSON value; a map gets `room` for fields added later (its nested maps none).
struct ValueSeed<'a> {
    pending: &'a mut Pending,
    room: usize,
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_> {
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
        let mut items = Vec::new();
        while let Some(v) = seq.next_element_seed(ValueSeed {
            pending: &mut *self.pending,
            room: 0,
        })? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let base = self.pending.len();
        while let Some(key) = access.next_key::<String>()? {
            let value = access.next_value_seed(ValueSeed {
                pending: &mut *self.pending,
                room: 0,
            })?;
            self.pending.push((key, value));
        }
        Ok(Value::Map(collect(self.pending, base, self.room)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_keep_order_and_values_and_get_exactly_their_room() {
        let doc = parse(
            br#"{"@timestamp":"2024-01-02T03:04:05.678Z","@metadata":{"beat":"filebeat"},"a":{"x":1,"y":[true,null,1.5,{"z":"q"}]},"d":{"k":1,"j":0,"k":2},"n":18446744073709551615}"#,
        )
        .unwrap();
        assert!(matches!(doc.fields["@timestamp"], Value::Timestamp(_)));
        let keys: Vec<&str> = doc.fields.keys().map(String::as_str).collect();
        assert_eq!(keys, ["@timestamp", "a", "d", "n"]);
        assert_eq!(doc.fields.capacity(), 4 + TOP_LEVEL_ROOM);
        let Some(Value::Map(a)) = doc.fields.get("a") else {
            panic!("a is not a map")
        };
        assert_eq!(a.capacity(), 2);
        // Generic parsing gives the same values.
        let generic: Value =
            serde_json::from_slice(br#"{"x":1,"y":[true,null,1.5,{"z":"q"}]}"#).unwrap();
        assert_eq!(Value::Map(a.clone()), generic);
        // A repeated key keeps its first place and its last value, as with generic
        // parsing.
        let Some(Value::Map(d)) = doc.fields.get("d") else {
            panic!("d is not a map")
        };
        assert_eq!(d.keys().collect::<Vec<_>>(), ["k", "j"]);
        assert_eq!(d["k"], Value::Int(2));
        assert_eq!(doc.fields["n"], Value::Float(18446744073709551615.0));
        let Some(Value::Map(meta)) = doc.metadata else {
            panic!("no @metadata")
        };
        assert_eq!(meta.capacity(), 1 + METADATA_ROOM);
    }

    #[test]
    fn what_is_not_one_object_is_an_error_and_leaves_nothing_pending() {
        for bad in [
            &b"[1]"[..],
            b"\"text\"",
            b"{\"a\":{\"b\":1}",
            b"{\"a\":1} {}",
            b"{'a':1}",
        ] {
            assert!(parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
            PENDING.with(|p| assert!(p.borrow().is_empty()));
        }
    }

    #[test]
    fn a_huge_document_does_not_keep_its_stack() {
        let mut doc = String::from("{");
        for i in 0..5000 {
            doc.push_str(&format!("\"k{i}\":{i},"));
        }
        doc.push_str("\"end\":0}");
        assert_eq!(parse(doc.as_bytes()).unwrap().fields.len(), 5001);
        PENDING.with(|p| assert!(p.borrow().capacity() <= KEEP_PENDING));
    }
}
