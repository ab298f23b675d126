//! `truncate` filter: cuts string fields to at most `length_bytes` bytes, never in
//! the middle of a UTF-8 character. Without `fields`, every top-level field; arrays and
//! maps are walked. Succeeds (and applies `add_tag` etc.) only when something was cut.

use super::{EventFilter, Outcome};
use crate::config::Error;
use crate::event::field_ref::FieldRef;
use crate::event::{Event, Value};
use crate::plugin::Options;

pub struct Truncate {
    fields: Option<Vec<FieldRef>>,
    length: usize,
}

impl Truncate {
    pub fn build(opts: &mut Options) -> Result<Truncate, Error> {
        let pos = opts.value_pos("fields");
        let fields = match opts.string_list("fields")? {
            None => None,
            Some(list) => Some(
                list.iter()
                    .map(|f| FieldRef::parse(f).map_err(|e| opts.option_error("fields", &pos, e)))
                    .collect::<Result<Vec<_>, _>>()?,
            ),
        };
        if !opts.has("length_bytes") {
            return Err(opts.error("truncate filter requires option `length_bytes`"));
        }
        Ok(Truncate {
            fields,
            length: opts.usize_or("length_bytes", 0)?,
        })
    }
}

/// Cuts `s` to at most `len` bytes on a character boundary; true when it changed.
fn trim(s: &mut String, len: usize) -> bool {
    if s.len() <= len {
        return false;
    }
    let mut cut = len;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    s.truncate(cut);
    true
}

fn truncate_value(v: &mut Value, len: usize) -> bool {
    match v {
        Value::String(s) => trim(s, len),
        Value::Array(items) => items.iter_mut().fold(false, |acc, i| match i {
            Value::String(s) => trim(s, len) | acc,
            _ => acc,
        }),
        Value::Map(m) => m
            .values_mut()
            .fold(false, |acc, i| truncate_value(i, len) | acc),
        _ => false,
    }
}

impl EventFilter for Truncate {
    fn apply(&self, event: &mut Event) -> Outcome {
        let mut changed = false;
        match &self.fields {
            Some(fields) => {
                for f in fields {
                    if let Some(v) = event.get_mut(f) {
                        changed |= truncate_value(v, self.length);
                    }
                }
            }
            None => {
                for v in event.fields_mut().values_mut() {
                    if !matches!(v, Value::Timestamp(_)) {
                        changed |= truncate_value(v, self.length);
                    }
                }
            }
        }
        if changed {
            Outcome::Success
        } else {
            Outcome::Failure
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_cuts_inside_a_character() {
        let mut s = String::from("hé🙂");
        assert!(trim(&mut s, 5));
        assert_eq!(s, "hé");
        let mut s = String::from("abc");
        assert!(!trim(&mut s, 3));
    }
}
