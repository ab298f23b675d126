//! `json` filter: parses a field holding JSON into the event (or into `target`).

use super::{EventFilter, Outcome};
use crate::codecs::JSON_PARSE_FAILURE;
use crate::config::Error;
use crate::event::field_ref::FieldRef;
use crate::event::{Event, Timestamp, Value, TIMESTAMP};
use crate::plugin::Options;

pub struct Json {
    source: FieldRef,
    target: Option<FieldRef>,
    skip_on_invalid_json: bool,
    tag_on_failure: Vec<String>,
}

impl Json {
    pub fn build(opts: &mut Options) -> Result<Json, Error> {
        let source = opts
            .field_ref("source")?
            .ok_or_else(|| opts.error("json filter requires option `source`"))?;
        let ecs = crate::plugin::ecs::Ecs::from_options(opts)?;
        let target = opts.field_ref("target")?;
        if ecs.enabled() && target.is_none() {
            tracing::info!(source = %source, "json without `target` writes the parsed keys at the top level, where they may clash with ECS fields");
        }
        Ok(Json {
            source,
            target,
            skip_on_invalid_json: opts.bool_or("skip_on_invalid_json", false)?,
            tag_on_failure: opts
                .string_list("tag_on_failure")?
                .unwrap_or_else(|| vec![JSON_PARSE_FAILURE.to_string()]),
        })
    }

    fn fail(&self, event: &mut Event) -> Outcome {
        if !self.skip_on_invalid_json {
            for t in &self.tag_on_failure {
                event.add_tag(t);
            }
        }
        Outcome::Failure
    }
}

impl EventFilter for Json {
    fn apply(&self, event: &mut Event) -> Outcome {
        let Some(Value::String(text)) = event.get(&self.source) else {
            return Outcome::Failure;
        };
        if text.trim().is_empty() {
            return Outcome::Failure;
        }
        let parsed = match crate::event::parse_value(text.as_bytes()) {
            Ok(v) => v,
            Err(e) => {
                tracing::debug!(error = %e, source = %self.source, "json filter could not parse field");
                return self.fail(event);
            }
        };
        if let Some(target) = &self.target {
            event.insert(target, parsed);
            return Outcome::Success;
        }
        let Value::Map(map) = parsed else {
            // Without a target only an object can be merged into the event.
            return self.fail(event);
        };
        let mut parsed_timestamp = None;
        for (k, v) in map {
            if k == TIMESTAMP {
                parsed_timestamp = Some(v);
                continue;
            }
            event.insert_field(k, v);
        }
        // As Logstash: a `@timestamp` that does not parse leaves the current time, its
        // text in `_@timestamp` and the event tagged.
        if let Some(v) = parsed_timestamp {
            match v.as_str().and_then(Timestamp::parse_iso8601) {
                Some(ts) => event.set_timestamp(ts),
                None => {
                    tracing::debug!(value = %v.to_display_string(), "json: unrecognized @timestamp; current time set, original in _@timestamp");
                    event.set_timestamp(Timestamp::now());
                    event.add_tag("_timestampparsefailure");
                    event.insert_field("_@timestamp", Value::String(v.to_display_string()));
                }
            }
        }
        Outcome::Success
    }
}
