//! A Beats document parsed straight into the parts of an event: its fields (with a
//! string `@timestamp` already parsed) and its `@metadata`, set apart while parsing
//! rather than removed from the map afterwards, every map allocated once at its size.
//!
//! A Filebeat document is a dozen small nested maps (`host`, `agent`, `ecs`,
//! `log.file`, `@metadata`, ...); maps sized before their length is known carried about
//! 10 KiB of room never used per event, paid by every connection's open window and
//! every queued batch. The parser ([`crate::event::parse_object`]) sizes each map
//! exactly; here is only the room the mapping will need.

use crate::event::{parse_object, JsonError, JsonObject, ObjectShape};

/// Fields the mapping may add to the top level (`@version`, `tags`).
const TOP_LEVEL_ROOM: usize = 2;
/// Fields the mapping may add to `@metadata` (`input`, `tls_peer`).
const METADATA_ROOM: usize = 2;

/// Parses one document, which must be a JSON object.
pub fn parse(payload: &[u8]) -> Result<JsonObject, JsonError> {
    parse_object(
        payload,
        ObjectShape {
            room: TOP_LEVEL_ROOM,
            metadata_room: Some(METADATA_ROOM),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Value;

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
    fn what_is_not_one_object_is_an_error() {
        for bad in [
            &b"[1]"[..],
            b"\"text\"",
            b"{\"a\":{\"b\":1}",
            b"{\"a\":1} {}",
            b"{'a':1}",
        ] {
            assert!(parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
