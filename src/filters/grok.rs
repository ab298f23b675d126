//! `grok` filter: parses unstructured text into fields with named patterns, with
//! Logstash's options and semantics.
//!
//! ```text
//! grok {
//!   match => { "message" => "%{TIMESTAMP_ISO8601:timestamp} %{LOGLEVEL:level} %{GREEDYDATA:msg}" }
//! }
//! ```
//!
//! The matching itself is [`crate::grok`]'s; this module reads the options and applies
//! the common filter options on success.

use super::common::CommonOptions;
use super::{EventFilter, Filter, Outcome};
use crate::config::Error;
use crate::grok::library::PatternLibrary;
use crate::grok::{CompileSettings, GrokConfig, GrokError, Pattern, PatternStatsSnapshot, Work};
use crate::grok::{GROK_FAILURE, GROK_TIMEOUT};
use crate::plugin::Options;
use std::path::Path;
use std::time::Duration;

/// The `grok` filter.
pub struct Grok {
    engine: crate::grok::Grok,
    common: CommonOptions,
}

impl Grok {
    /// Builds the filter; the common options are applied on success.
    pub fn build(opts: &mut Options, common: CommonOptions) -> Result<Grok, Error> {
        let match_pos = opts.value_pos("match");
        let entries = opts
            .string_list_map("match")?
            .ok_or_else(|| opts.error("grok filter requires option `match`"))?;
        let mut library = PatternLibrary::bundled();
        let glob = opts.string_or("patterns_files_glob", "*")?;
        let dirs_pos = opts.value_pos("patterns_dir");
        for dir in opts.string_list("patterns_dir")?.unwrap_or_default() {
            library
                .add_dir(Path::new(&dir), &glob)
                .map_err(|e| opts.option_error("patterns_dir", &dirs_pos, e))?;
        }
        for (name, def) in opts.string_map("pattern_definitions")?.unwrap_or_default() {
            library.insert(name, def);
        }
        let ecs_pos = opts.value_pos("ecs_compatibility");
        match opts.string("ecs_compatibility")?.as_deref() {
            None | Some("disabled") => {}
            Some(other) => {
                return Err(opts.option_error(
                    "ecs_compatibility",
                    &ecs_pos,
                    format!(
                        "`{other}` is not supported yet; use `disabled` (the legacy pattern forms)"
                    ),
                ))
            }
        }
        let timeout_ms = opts.int_or("timeout_millis", 30_000)?;
        let scope_pos = opts.value_pos("timeout_scope");
        let timeout_per_event = match opts.string_or("timeout_scope", "pattern")?.as_str() {
            "pattern" => false,
            "event" => true,
            other => {
                return Err(opts.option_error(
                    "timeout_scope",
                    &scope_pos,
                    format!("expected pattern or event, got `{other}`"),
                ))
            }
        };
        // 0 disables the timeout in Logstash; a very large budget stands for it.
        let timeout = if timeout_ms <= 0 {
            Duration::from_secs(3600)
        } else {
            Duration::from_millis(timeout_ms as u64)
        };
        let config = GrokConfig {
            matches: entries,
            library,
            settings: CompileSettings {
                named_captures_only: opts.bool_or("named_captures_only", true)?,
                target: opts.string("target")?,
                overwrite: opts.string_list("overwrite")?.unwrap_or_default(),
                timeout,
            },
            break_on_match: opts.bool_or("break_on_match", true)?,
            keep_empty_captures: opts.bool_or("keep_empty_captures", false)?,
            tag_on_failure: opts
                .string_list("tag_on_failure")?
                .unwrap_or_else(|| vec![GROK_FAILURE.to_string()]),
            tag_on_timeout: opts.string_or("tag_on_timeout", GROK_TIMEOUT)?,
            timeout_per_event,
            export_stats: true,
        };
        let engine = crate::grok::Grok::new(config).map_err(|e| match e {
            GrokError::Source { source, .. } => opts.option_error("match", &match_pos, source),
            e @ GrokError::Pattern { .. } => opts.option_error("match", &match_pos, e),
        })?;
        Ok(Grok { engine, common })
    }

    /// This filter's per-pattern counters.
    pub fn stats(&self) -> Vec<PatternStatsSnapshot> {
        self.engine.stats()
    }

    /// The compiled patterns, in order.
    pub fn patterns(&self) -> impl Iterator<Item = &Pattern> {
        self.engine.patterns()
    }

    fn apply_with(&self, event: &mut crate::event::Event, work: &mut Work) -> Outcome {
        if self.engine.apply_with(event, work) {
            if !self.common.is_empty() {
                self.common.apply(event);
            }
            Outcome::Success
        } else {
            Outcome::Failure
        }
    }
}

impl EventFilter for Grok {
    fn apply(&self, event: &mut crate::event::Event) -> Outcome {
        self.apply_with(event, &mut Work::default())
    }
}

impl Filter for Grok {
    fn filter(&self, events: &mut Vec<crate::event::Event>) {
        let mut work = Work::default();
        for e in events.iter_mut() {
            let _ = self.apply_with(e, &mut work);
        }
    }
}

#[cfg(test)]
mod tests;
