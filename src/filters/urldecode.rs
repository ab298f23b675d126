//! `urldecode` filter: decodes `%XX` escapes in one field or in all of them. `+` stays
//! a `+`, as in Logstash. Bytes that do not form UTF-8 are replaced and the event is
//! tagged `_urldecodefailure`, so nothing is silently mangled.

use super::{EventFilter, Outcome};
use crate::config::Error;
use crate::event::field_ref::FieldRef;
use crate::event::{Event, Value};
use crate::plugin::Options;

pub const FAILURE: &str = "_urldecodefailure";

pub struct Urldecode {
    field: FieldRef,
    all_fields: bool,
    tag_on_failure: Vec<String>,
}

impl Urldecode {
    pub fn build(opts: &mut Options) -> Result<Urldecode, Error> {
        let pos = opts.value_pos("charset");
        match opts.string("charset")?.as_deref() {
            None | Some("UTF-8") | Some("utf-8") | Some("US-ASCII") => {}
            Some(other) => {
                return Err(opts.option_error(
                    "charset",
                    &pos,
                    format!("`{other}` is not supported; Sluice decodes UTF-8"),
                ))
            }
        }
        Ok(Urldecode {
            field: opts
                .field_ref("field")?
                .unwrap_or_else(|| FieldRef::top("message")),
            all_fields: opts.bool_or("all_fields", false)?,
            tag_on_failure: opts
                .string_list("tag_on_failure")?
                .unwrap_or_else(|| vec![FAILURE.to_string()]),
        })
    }
}

/// Decodes `value` in place; false when the decoded bytes were not UTF-8.
fn decode(value: &mut Value) -> bool {
    match value {
        Value::String(s) => {
            if !s.contains('%') {
                return true;
            }
            let bytes: Vec<u8> = percent_encoding::percent_decode_str(s).collect();
            match String::from_utf8(bytes) {
                Ok(d) => {
                    *s = d;
                    true
                }
                Err(e) => {
                    *s = String::from_utf8_lossy(e.as_bytes()).into_owned();
                    false
                }
            }
        }
        Value::Array(items) => decode_all(items.iter_mut()),
        Value::Map(m) => decode_all(m.values_mut()),
        _ => true,
    }
}

/// Decodes every value (none is skipped after a failure); false if any failed.
fn decode_all<'a>(values: impl Iterator<Item = &'a mut Value>) -> bool {
    let mut ok = true;
    for v in values {
        ok &= decode(v);
    }
    ok
}

impl EventFilter for Urldecode {
    fn apply(&self, event: &mut Event) -> Outcome {
        let ok = if self.all_fields {
            decode_all(event.fields_mut().values_mut())
        } else {
            match event.get_mut(&self.field) {
                Some(v) => decode(v),
                None => true,
            }
        };
        if !ok {
            for t in &self.tag_on_failure {
                event.add_tag(t);
            }
        }
        // Logstash counts the filter as matched even after tagging a failure.
        Outcome::Success
    }
}
