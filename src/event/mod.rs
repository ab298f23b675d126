//! The event: an ordered map of fields, `@timestamp`, `tags`, and `@metadata` that
//! travels with the event but never reaches an output.

pub mod date_parse;
pub mod field_ref;
pub mod joda;
mod json;
pub mod map;
pub mod ruby_number;
pub mod sprintf;
pub mod timestamp;
mod value;

pub use json::{
    events_from_json_slice, parse_object, parse_value, JsonError, JsonEventError, JsonObject,
    ObjectShape, EVENT_ROOM,
};
pub use timestamp::Timestamp;
pub use value::{map_with_capacity, new_map, Map, Value};

use field_ref::{FieldRef, Root};

pub const TIMESTAMP: &str = "@timestamp";
pub const VERSION: &str = "@version";
pub const MESSAGE: &str = "message";
pub const TAGS: &str = "tags";

/// One log event.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Event {
    fields: Map,
    /// Allocated on first use: most events never carry metadata.
    metadata: Option<Box<Map>>,
}

impl Event {
    /// An empty event stamped with the current time, as Logstash creates them.
    pub fn new() -> Event {
        Event::at(Timestamp::now())
    }

    /// An empty event stamped with `ts`.
    pub fn at(ts: Timestamp) -> Event {
        let mut fields = map_with_capacity(8);
        fields.insert(TIMESTAMP.to_string(), Value::Timestamp(ts));
        fields.insert(VERSION.to_string(), Value::String("1".to_string()));
        Event {
            fields,
            metadata: None,
        }
    }

    /// An event with `message` set, stamped with `ts`.
    pub fn with_message(message: String, ts: Timestamp) -> Event {
        let mut e = Event::at(ts);
        e.fields.insert(MESSAGE.to_string(), Value::String(message));
        e
    }

    /// Builds an event from a decoded JSON object. A string `@timestamp` is parsed; one
    /// that does not parse is kept as `_@timestamp` with tag `_timestampparsefailure`,
    /// as Logstash does.
    pub fn from_map(mut fields: Map, now: Timestamp) -> Event {
        let mut failed_ts = None;
        match fields.get(TIMESTAMP) {
            Some(Value::Timestamp(_)) => {}
            Some(Value::String(s)) => match Timestamp::parse_iso8601(s) {
                Some(ts) => {
                    fields.insert(TIMESTAMP.to_string(), Value::Timestamp(ts));
                }
                None => failed_ts = fields.swap_remove(TIMESTAMP),
            },
            Some(_) => failed_ts = fields.swap_remove(TIMESTAMP),
            None => {}
        }
        if !fields.contains_key(TIMESTAMP) {
            fields.insert(TIMESTAMP.to_string(), Value::Timestamp(now));
            // Keep @timestamp first, as people expect to read it first.
            let last = fields.len() - 1;
            fields.move_index(last, 0);
        }
        if !fields.contains_key(VERSION) {
            fields.insert(VERSION.to_string(), Value::String("1".to_string()));
        }
        let mut event = Event {
            fields,
            metadata: None,
        };
        if let Some(bad) = failed_ts {
            event.fields.insert("_@timestamp".to_string(), bad);
            event.add_tag("_timestampparsefailure");
        }
        event
    }

    pub fn fields(&self) -> &Map {
        &self.fields
    }

    pub fn fields_mut(&mut self) -> &mut Map {
        &mut self.fields
    }

    pub fn metadata(&self) -> Option<&Map> {
        self.metadata.as_deref()
    }

    pub fn metadata_mut(&mut self) -> &mut Map {
        self.metadata.get_or_insert_with(|| Box::new(new_map()))
    }

    pub fn timestamp(&self) -> Option<Timestamp> {
        match self.fields.get(TIMESTAMP) {
            Some(Value::Timestamp(t)) => Some(*t),
            _ => None,
        }
    }

    pub fn set_timestamp(&mut self, ts: Timestamp) {
        self.fields
            .insert(TIMESTAMP.to_string(), Value::Timestamp(ts));
    }

    /// A top-level field by name.
    pub fn get_field(&self, name: &str) -> Option<&Value> {
        self.fields.get(name)
    }

    /// A top-level string field by name.
    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.fields.get(name).and_then(Value::as_str)
    }

    /// Sets a top-level field.
    pub fn insert_field(&mut self, name: impl Into<String>, value: impl Into<Value>) {
        self.fields.insert(name.into(), value.into());
    }

    /// The value a reference points at.
    pub fn get(&self, r: &FieldRef) -> Option<&Value> {
        let (first, rest) = match r.root() {
            Root::Fields => {
                let (first, rest) = r.path().split_first()?;
                (self.fields.get(first.as_str())?, rest)
            }
            Root::Metadata => {
                let meta = self.metadata.as_deref()?;
                let (first, rest) = r.path().split_first()?;
                (meta.get(first.as_str())?, rest)
            }
        };
        let mut cur = first;
        for seg in rest {
            cur = child(cur, seg)?;
        }
        Some(cur)
    }

    /// Mutable access to the value a reference points at.
    pub fn get_mut(&mut self, r: &FieldRef) -> Option<&mut Value> {
        let (first, rest) = r.path().split_first()?;
        let root = match r.root() {
            Root::Fields => &mut self.fields,
            Root::Metadata => self.metadata.as_deref_mut()?,
        };
        let mut cur = root.get_mut(first.as_str())?;
        for seg in rest {
            cur = child_mut(cur, seg)?;
        }
        Some(cur)
    }

    pub fn contains(&self, r: &FieldRef) -> bool {
        self.get(r).is_some()
    }

    /// Adds `value` at `r` the Logstash way (`add_field`): a field that exists already
    /// becomes an array holding both.
    pub fn add_value(&mut self, r: &FieldRef, value: Value) {
        match self.get_mut(r) {
            Some(Value::Array(items)) => items.push(value),
            Some(existing) => {
                let old = std::mem::take(existing);
                *existing = Value::Array(vec![old, value]);
            }
            None => {
                self.insert(r, value);
            }
        }
    }

    /// Sets the value at `r`, creating intermediate maps. Returns false, changing
    /// nothing, when a parent on the path is a scalar or the reference is the bare
    /// `[@metadata]` root with a non-map value.
    pub fn insert(&mut self, r: &FieldRef, value: Value) -> bool {
        let root: &mut Map = match r.root() {
            Root::Fields => &mut self.fields,
            Root::Metadata => {
                if r.path().is_empty() {
                    return match value {
                        Value::Map(m) => {
                            self.metadata = Some(Box::new(m));
                            true
                        }
                        _ => false,
                    };
                }
                self.metadata.get_or_insert_with(|| Box::new(new_map()))
            }
        };
        let Some((last, parents)) = r.path().split_last() else {
            return false;
        };
        let Some(map) = parent_map(root, parents) else {
            return false;
        };
        let value = if r.root() == Root::Fields && parents.is_empty() && last == TIMESTAMP {
            coerce_timestamp(value)
        } else {
            value
        };
        *slot_in(map, last) = value;
        true
    }

    /// The value at `r` for changing in place, created as `Null` (with its parent maps)
    /// when missing: one lookup per level where `get_mut` then `insert` took three.
    /// `None` when a parent on the path is a scalar or `r` is a bare root. Unlike
    /// [`Event::insert`], a string written to `@timestamp` through it is not parsed.
    pub fn slot(&mut self, r: &FieldRef) -> Option<&mut Value> {
        let (last, parents) = r.path().split_last()?;
        let root: &mut Map = match r.root() {
            Root::Fields => &mut self.fields,
            Root::Metadata => self.metadata.get_or_insert_with(|| Box::new(new_map())),
        };
        Some(slot_in(parent_map(root, parents)?, last))
    }

    /// Removes the value at `r`, keeping the order of the remaining fields.
    pub fn remove(&mut self, r: &FieldRef) -> Option<Value> {
        let (last, parents) = r.path().split_last()?;
        let root = match r.root() {
            Root::Fields => &mut self.fields,
            Root::Metadata => self.metadata.as_deref_mut()?,
        };
        let mut cur: &mut Map = root;
        for seg in parents {
            cur = match cur.get_mut(seg.as_str())? {
                Value::Map(m) => m,
                _ => return None,
            };
        }
        cur.shift_remove(last.as_str())
    }

    /// True when `tags` holds `tag`.
    pub fn has_tag(&self, tag: &str) -> bool {
        match self.fields.get(TAGS) {
            Some(Value::Array(items)) => items.iter().any(|v| v.as_str() == Some(tag)),
            Some(Value::String(s)) => s == tag,
            _ => false,
        }
    }

    /// Adds `tag` to `tags` unless it is there already.
    pub fn add_tag(&mut self, tag: &str) {
        let entry = self
            .fields
            .entry(TAGS.to_string())
            .or_insert_with(|| Value::Array(Vec::with_capacity(1)));
        match entry {
            Value::Array(items) => {
                if !items.iter().any(|v| v.as_str() == Some(tag)) {
                    items.push(Value::String(tag.to_string()));
                }
            }
            other => {
                let previous = std::mem::take(other);
                let mut items = vec![previous];
                if items[0].as_str() != Some(tag) {
                    items.push(Value::String(tag.to_string()));
                }
                *other = Value::Array(items);
            }
        }
    }

    /// Removes `tag` from `tags`.
    pub fn remove_tag(&mut self, tag: &str) {
        if let Some(Value::Array(items)) = self.fields.get_mut(TAGS) {
            items.retain(|v| v.as_str() != Some(tag));
        } else if self.get_str(TAGS) == Some(tag) {
            self.fields.shift_remove(TAGS);
        }
    }

    /// A rough size in bytes, for the queue's byte limit.
    pub fn approx_size(&self) -> usize {
        let meta = self
            .metadata
            .as_deref()
            .map(|m| m.iter().map(|(k, v)| k.len() + v.approx_size()).sum())
            .unwrap_or(0);
        64 + meta
            + self
                .fields
                .iter()
                .map(|(k, v)| k.len() + 24 + v.approx_size())
                .sum::<usize>()
    }

    /// The event as one line of JSON (without `@metadata`).
    pub fn to_json_string(&self) -> String {
        let mut buf = Vec::with_capacity(256);
        self.write_json(&mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }

    /// Appends the event as JSON (without `@metadata`).
    pub fn write_json(&self, buf: &mut Vec<u8>) {
        // Writing a map of our own values into a Vec cannot fail: keys are strings and
        // every Value variant serializes.
        let _ = serde_json::to_writer(&mut *buf, &self.fields);
    }
}

/// The map at `parents` under `root`, creating missing maps; `None` when one on the
/// way is not a map. Present keys are found without cloning them.
fn parent_map<'a>(root: &'a mut Map, parents: &[String]) -> Option<&'a mut Map> {
    let mut map = root;
    for seg in parents {
        let value = map.get_or_insert_with(seg, || Value::Map(new_map()));
        match value {
            Value::Map(m) => map = m,
            _ => return None,
        }
    }
    Some(map)
}

/// The value under `key`, inserted as `Null` when missing, with one hash of the key
/// (and a copy of it only when it is new).
fn slot_in<'a>(map: &'a mut Map, key: &str) -> &'a mut Value {
    map.get_or_insert_with(key, || Value::Null)
}

fn coerce_timestamp(value: Value) -> Value {
    match &value {
        Value::String(s) => match Timestamp::parse_iso8601(s) {
            Some(ts) => Value::Timestamp(ts),
            None => value,
        },
        _ => value,
    }
}

fn child<'a>(v: &'a Value, seg: &str) -> Option<&'a Value> {
    match v {
        Value::Map(m) => m.get(seg),
        Value::Array(a) => index(a.len(), seg).and_then(|i| a.get(i)),
        _ => None,
    }
}

fn child_mut<'a>(v: &'a mut Value, seg: &str) -> Option<&'a mut Value> {
    match v {
        Value::Map(m) => m.get_mut(seg),
        Value::Array(a) => index(a.len(), seg).and_then(move |i| a.get_mut(i)),
        _ => None,
    }
}

/// Array index segments, including Logstash's negative indices from the end.
fn index(len: usize, seg: &str) -> Option<usize> {
    let i: i64 = seg.parse().ok()?;
    if i < 0 {
        let back = i.unsigned_abs() as usize;
        len.checked_sub(back)
    } else {
        Some(i as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> FieldRef {
        FieldRef::parse(s).unwrap()
    }

    #[test]
    fn nested_insert_get_remove() {
        let mut e = Event::new();
        assert!(e.insert(&r("[http][request][id]"), Value::from("abc")));
        assert_eq!(
            e.get(&r("[http][request][id]")).unwrap().as_str(),
            Some("abc")
        );
        assert!(!e.insert(&r("[http][request][id][x]"), Value::from(1)));
        assert_eq!(
            e.remove(&r("[http][request][id]")),
            Some(Value::from("abc"))
        );
        assert!(e.get(&r("[http][request][id]")).is_none());
        assert!(e.get(&r("[http][request]")).is_some());
    }

    #[test]
    fn metadata_is_separate() {
        let mut e = Event::new();
        e.insert(&r("[@metadata][beat]"), Value::from("filebeat"));
        assert_eq!(
            e.get(&r("[@metadata][beat]")).unwrap().as_str(),
            Some("filebeat")
        );
        assert!(!e.to_json_string().contains("filebeat"));
    }

    #[test]
    fn array_indices() {
        let mut e = Event::new();
        e.insert_field("a", Value::Array(vec![Value::from(1), Value::from(2)]));
        assert_eq!(e.get(&r("[a][0]")), Some(&Value::Int(1)));
        assert_eq!(e.get(&r("[a][-1]")), Some(&Value::Int(2)));
        assert_eq!(e.get(&r("[a][5]")), None);
    }

    #[test]
    fn tags_are_a_set() {
        let mut e = Event::new();
        e.add_tag("a");
        e.add_tag("a");
        e.add_tag("b");
        assert!(e.has_tag("a"));
        e.remove_tag("a");
        assert!(!e.has_tag("a"));
        assert_eq!(
            e.get_field("tags"),
            Some(&Value::Array(vec![Value::from("b")]))
        );
    }

    #[test]
    fn bad_timestamp_is_kept_and_tagged() {
        let mut m = new_map();
        m.insert("@timestamp".into(), Value::from("not a time"));
        let e = Event::from_map(m, Timestamp::now());
        assert!(e.has_tag("_timestampparsefailure"));
        assert_eq!(e.get_str("_@timestamp"), Some("not a time"));
        assert!(e.timestamp().is_some());
    }
}
