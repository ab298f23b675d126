//! `split` filter: one event per line of a string (or per element of an array), each
//! a copy of the original with the piece in `target` (default: the field itself).
//! The original is replaced by its pieces in the batch, so later filters see them in
//! order and they share the batch's acknowledgement.

use super::common::CommonOptions;
use super::Filter;
use crate::config::Error;
use crate::event::field_ref::FieldRef;
use crate::event::{Event, Value};
use crate::plugin::Options;

pub const TYPE_FAILURE: &str = "_split_type_failure";

pub struct Split {
    field: FieldRef,
    target: Option<FieldRef>,
    terminator: String,
    common: CommonOptions,
}

impl Split {
    pub fn build(opts: &mut Options) -> Result<Split, Error> {
        let common = CommonOptions::from_options(opts)?;
        let pos = opts.value_pos("terminator");
        let terminator = opts
            .string_or("terminator", "\n")?
            .replace("\\n", "\n")
            .replace("\\t", "\t");
        if terminator.is_empty() {
            return Err(opts.option_error("terminator", &pos, "must not be empty"));
        }
        Ok(Split {
            field: opts
                .field_ref("field")?
                .unwrap_or_else(|| FieldRef::top("message")),
            target: opts.field_ref("target")?,
            terminator,
            common,
        })
    }

    /// The pieces of `event`, or `None` to keep it as it is.
    fn split(&self, event: &mut Event) -> Option<Vec<Event>> {
        let pieces: Vec<Value> = match event.get(&self.field) {
            Some(Value::Array(_)) => {
                let items = if self.target.is_none() {
                    event.remove(&self.field)
                } else {
                    event.get(&self.field).cloned()
                };
                match items {
                    Some(Value::Array(items)) => items,
                    _ => return None,
                }
            }
            Some(Value::String(s)) => {
                let parts: Vec<&str> = s.split(self.terminator.as_str()).collect();
                if parts.len() == 1 {
                    return None;
                }
                parts.into_iter().map(Value::from).collect()
            }
            other => {
                tracing::warn!(field = %self.field, kind = ?other.map(std::mem::discriminant), "split: only strings and arrays can be split");
                event.add_tag(TYPE_FAILURE);
                return None;
            }
        };
        let target = self.target.as_ref().unwrap_or(&self.field);
        let mut out = Vec::with_capacity(pieces.len());
        for piece in pieces {
            if matches!(&piece, Value::Null) || matches!(&piece, Value::String(s) if s.is_empty()) {
                continue;
            }
            let mut e = event.clone();
            e.insert(target, piece);
            if !self.common.is_empty() {
                self.common.apply(&mut e);
            }
            out.push(e);
        }
        Some(out)
    }
}

impl Filter for Split {
    fn filter(&self, events: &mut Vec<Event>) {
        let mut out = Vec::with_capacity(events.len());
        for mut e in events.drain(..) {
            match self.split(&mut e) {
                Some(pieces) => out.extend(pieces),
                None => out.push(e),
            }
        }
        *events = out;
    }
}
