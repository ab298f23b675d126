//! JSON (de)serialisation straight into and out of [`Value`], without an intermediate
//! `serde_json::Value` tree: the hot path of every json codec.

use super::{map_with_capacity, Event, Map, Timestamp, Value};
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
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

/// Why a JSON document did not become events.
#[derive(Debug, thiserror::Error)]
pub enum JsonEventError {
    #[error("invalid JSON: {0}")]
    Syntax(#[from] serde_json::Error),
    #[error("JSON value is not an object")]
    NotAnObject,
}

/// Decodes one JSON document into events: an object is one event, an array of objects
/// one event per element, as Logstash's json codecs do.
pub fn events_from_json_slice(
    bytes: &[u8],
    now: Timestamp,
    out: &mut Vec<Event>,
) -> Result<(), JsonEventError> {
    let value: Value = serde_json::from_slice(bytes)?;
    match value {
        Value::Map(m) => {
            out.push(Event::from_map(m, now));
            Ok(())
        }
        Value::Array(items) if items.iter().all(|v| matches!(v, Value::Map(_))) => {
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
        assert!(events_from_json_slice(b"42", Timestamp::now(), &mut out).is_err());
        assert!(events_from_json_slice(b"{bad", Timestamp::now(), &mut out).is_err());
    }
}
