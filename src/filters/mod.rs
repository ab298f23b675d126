//! Filters: synchronous, batch-in-place transformations. Most filters work one event
//! at a time; they implement [`EventFilter`] and [`PerEvent`] turns them into a
//! [`Filter`] with the common options applied on success.

pub mod common;
pub mod correlation;
pub mod date;
pub mod dissect;
pub mod drop;
pub mod grok;
pub mod json;
pub mod kv;
pub mod mutate;
pub mod sleep;

use crate::config::options::Options;
use crate::config::Error;
use crate::event::Event;
use common::CommonOptions;

/// A filter over a batch of events. It may change, drop or add events.
pub trait Filter: Send + Sync {
    fn filter(&self, events: &mut Vec<Event>);
}

/// What a per-event filter did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Worked: the common options (`add_field`, `add_tag`, ...) apply.
    Success,
    /// Did not apply (e.g. no match); the filter tagged the event itself if it should.
    Failure,
    /// Remove the event from the batch.
    Drop,
}

/// A filter that looks at one event at a time.
pub trait EventFilter: Send + Sync {
    fn apply(&self, event: &mut Event) -> Outcome;
}

/// Adapts an [`EventFilter`] to [`Filter`], applying the common options on success.
pub struct PerEvent<F> {
    inner: F,
    common: CommonOptions,
}

impl<F: EventFilter> PerEvent<F> {
    pub fn new(inner: F, common: CommonOptions) -> PerEvent<F> {
        PerEvent { inner, common }
    }
}

impl<F: EventFilter> Filter for PerEvent<F> {
    fn filter(&self, events: &mut Vec<Event>) {
        events.retain_mut(|e| match self.inner.apply(e) {
            Outcome::Success => {
                if !self.common.is_empty() {
                    self.common.apply(e);
                }
                true
            }
            Outcome::Failure => true,
            Outcome::Drop => false,
        });
    }
}

fn per_event<F: EventFilter + 'static>(f: F, common: CommonOptions) -> Box<dyn Filter> {
    Box::new(PerEvent::new(f, common))
}

/// Builds the filter plugin `name` from its options (common options included).
pub fn build(name: &str, opts: &mut Options) -> Result<Box<dyn Filter>, Error> {
    let common = CommonOptions::from_options(opts)?;
    // Accepted for compatibility; Sluice flushes filters that hold events on its own.
    let _ = opts.bool("periodic_flush")?;
    Ok(match name {
        "correlation" => per_event(correlation::Correlation::build(opts)?, common),
        "date" => per_event(date::Date::build(opts)?, common),
        "dissect" => per_event(dissect::Dissect::build(opts)?, common),
        "drop" => per_event(drop::Drop::build(opts)?, common),
        "grok" => Box::new(grok::Grok::build(opts, common)?),
        "json" => per_event(json::Json::build(opts)?, common),
        "kv" => per_event(kv::Kv::build(opts)?, common),
        "mutate" => per_event(mutate::Mutate::build(opts)?, common),
        "sleep" => per_event(sleep::Sleep::build(opts)?, common),
        other => {
            return Err(opts.error(format!(
                "unknown filter plugin `{other}` (known: {})",
                KNOWN.join(", ")
            )))
        }
    })
}

/// Filter plugin names, for messages.
pub const KNOWN: &[&str] = &[
    "correlation",
    "date",
    "dissect",
    "drop",
    "grok",
    "json",
    "kv",
    "mutate",
    "sleep",
];
