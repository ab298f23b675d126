//! `correlation` filter: gives every event a correlation id, so logs of one request can
//! be followed across services. It takes the first present of several source fields (a
//! W3C `traceparent` contributes its trace-id) and otherwise generates a UUID.

use super::{EventFilter, Outcome};
use crate::config::Error;
use crate::event::field_ref::FieldRef;
use crate::event::{Event, Value};
use crate::plugin::Options;

pub const DEFAULT_SOURCES: &[&str] = &[
    "correlation_id",
    "[trace][id]",
    "[http][request][id]",
    "traceparent",
];

pub struct Correlation {
    sources: Vec<FieldRef>,
    target: FieldRef,
    generate: bool,
}

impl Correlation {
    pub fn build(opts: &mut Options) -> Result<Correlation, Error> {
        let pos = opts.value_pos("source");
        let sources = opts
            .string_list("source")?
            .unwrap_or_else(|| DEFAULT_SOURCES.iter().map(|s| s.to_string()).collect());
        let sources = sources
            .iter()
            .map(|s| FieldRef::parse(s).map_err(|e| opts.option_error("source", &pos, e)))
            .collect::<Result<Vec<_>, _>>()?;
        let target = opts
            .field_ref("target")?
            .unwrap_or_else(|| FieldRef::top("correlation_id"));
        Ok(Correlation {
            sources,
            target,
            generate: opts.bool_or("generate", true)?,
        })
    }

    fn find(&self, event: &Event) -> Option<String> {
        for source in &self.sources {
            let Some(value) = event.get(source) else {
                continue;
            };
            let text = match value {
                Value::String(s) => s.trim().to_string(),
                Value::Int(_) | Value::Float(_) => value.to_display_string(),
                _ => continue,
            };
            if text.is_empty() {
                continue;
            }
            if source.path().last().map(String::as_str) == Some("traceparent") {
                match trace_id_of(&text) {
                    Some(id) => return Some(id.to_string()),
                    None => continue,
                }
            }
            return Some(text);
        }
        None
    }
}

/// The trace-id of a W3C `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`), unless it is
/// malformed or all zeros (invalid per the spec).
pub fn trace_id_of(traceparent: &str) -> Option<&str> {
    let mut parts = traceparent.split('-');
    let version = parts.next()?;
    let trace_id = parts.next()?;
    let parent_id = parts.next()?;
    let flags = parts.next()?;
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    if !hex(version, 2) || version.eq_ignore_ascii_case("ff") {
        return None;
    }
    if !hex(trace_id, 32) || !hex(parent_id, 16) || !hex(flags, 2) {
        return None;
    }
    if trace_id.bytes().all(|b| b == b'0') {
        return None;
    }
    Some(trace_id)
}

/// A fresh random (v4) UUID in its lowercase hyphenated form.
pub fn new_uuid() -> String {
    let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
    uuid::Uuid::new_v4()
        .hyphenated()
        .encode_lower(&mut buf)
        .to_string()
}

impl EventFilter for Correlation {
    fn apply(&self, event: &mut Event) -> Outcome {
        let id = match self.find(event) {
            Some(id) => id,
            None if self.generate => new_uuid(),
            None => return Outcome::Failure,
        };
        let unchanged = matches!(event.get(&self.target), Some(Value::String(s)) if *s == id);
        if !unchanged {
            event.insert(&self.target, Value::String(id));
        }
        Outcome::Success
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter() -> Correlation {
        Correlation {
            sources: DEFAULT_SOURCES
                .iter()
                .map(|s| FieldRef::parse(s).unwrap())
                .collect(),
            target: FieldRef::top("correlation_id"),
            generate: true,
        }
    }

    #[test]
    fn keeps_an_existing_id() {
        let mut e = Event::new();
        e.insert_field("correlation_id", "abc");
        filter().apply(&mut e);
        assert_eq!(e.get_str("correlation_id"), Some("abc"));
    }

    #[test]
    fn takes_the_trace_id_of_a_traceparent() {
        let mut e = Event::new();
        e.insert_field(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        );
        filter().apply(&mut e);
        assert_eq!(
            e.get_str("correlation_id"),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        assert_eq!(
            trace_id_of("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
            None
        );
        assert_eq!(trace_id_of("garbage"), None);
    }

    #[test]
    fn prefers_nested_sources_in_order_and_generates_otherwise() {
        let mut e = Event::new();
        e.insert(
            &FieldRef::parse("[http][request][id]").unwrap(),
            "req-1".into(),
        );
        filter().apply(&mut e);
        assert_eq!(e.get_str("correlation_id"), Some("req-1"));

        let mut a = Event::new();
        let mut b = Event::new();
        filter().apply(&mut a);
        filter().apply(&mut b);
        let ida = a.get_str("correlation_id").unwrap();
        let idb = b.get_str("correlation_id").unwrap();
        assert_ne!(ida, idb);
        assert!(uuid::Uuid::parse_str(ida).is_ok());
    }
}
