//! `clone` filter: one copy of each event per name in `clones`, placed right after the
//! original. Legacy mode sets the copy's `type`; ECS mode (the default) adds the name
//! to its `tags`, as Logstash 8 does.

use super::common::CommonOptions;
use super::Filter;
use crate::config::Error;
use crate::event::{Event, Value};
use crate::plugin::ecs::Ecs;
use crate::plugin::Options;

pub struct Clone {
    clones: Vec<String>,
    ecs: Ecs,
    common: CommonOptions,
}

impl Clone {
    pub fn build(opts: &mut Options) -> Result<Clone, Error> {
        let common = CommonOptions::from_options(opts)?;
        let ecs = Ecs::from_options(opts)?;
        if !opts.has("clones") {
            return Err(opts.error("clone filter requires option `clones`"));
        }
        let clones = opts.string_list("clones")?.unwrap_or_default();
        if clones.is_empty() {
            tracing::warn!("clone: `clones` is empty, so no clones will be created");
        }
        Ok(Clone {
            clones,
            ecs,
            common,
        })
    }
}

impl Filter for Clone {
    fn filter(&self, events: &mut Vec<Event>) {
        if self.clones.is_empty() {
            return;
        }
        let mut out = Vec::with_capacity(events.len() * (1 + self.clones.len()));
        for e in events.drain(..) {
            let copies: Vec<Event> = self
                .clones
                .iter()
                .map(|name| {
                    let mut c = e.clone();
                    if self.ecs.enabled() {
                        // Logstash appends even when the tag is present already.
                        match c.fields_mut().get_mut("tags") {
                            Some(Value::Array(tags)) => tags.push(Value::from(name.as_str())),
                            Some(other) => {
                                let prev = std::mem::take(other);
                                *other = Value::Array(vec![prev, Value::from(name.as_str())]);
                            }
                            None => c.insert_field(
                                "tags",
                                Value::Array(vec![Value::from(name.as_str())]),
                            ),
                        }
                    } else {
                        c.insert_field("type", name.as_str());
                    }
                    if !self.common.is_empty() {
                        self.common.apply(&mut c);
                    }
                    c
                })
                .collect();
            out.push(e);
            out.extend(copies);
        }
        *events = out;
    }
}
