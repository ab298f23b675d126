//! Filters: synchronous, batch-in-place transformations. Most filters work one event
//! at a time; they implement [`EventFilter`] and [`PerEvent`] turns them into a
//! [`Filter`] with the common options applied on success.

pub mod cidr;
pub mod clone;
pub mod common;
pub mod correlation;
pub mod csv;
pub mod date;
pub mod dissect;
pub mod dns;
pub mod drop;
pub mod error_stats;
pub mod fingerprint;
pub mod geoip;
pub mod grok;
pub mod json;
pub mod kv;
pub mod lru;
pub mod mutate;
pub mod prune;
pub mod ruby;
pub mod sleep;
pub mod split;
pub mod syslog_pri;
pub mod translate;
pub mod truncate;
pub mod urldecode;
pub mod useragent;
pub mod uuid;

use crate::config::Error;
use crate::event::Event;
use crate::plugin::{Options, Registry};
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

/// A per-event filter's constructor, with the common options taken first.
fn simple<F: EventFilter + 'static>(
    opts: &mut Options,
    build: fn(&mut Options) -> Result<F, Error>,
) -> Result<Box<dyn Filter>, Error> {
    let common = CommonOptions::from_options(opts)?;
    Ok(per_event(build(opts)?, common))
}

/// Every filter plugin: name → constructor (common options included).
pub static REGISTRY: Registry<Box<dyn Filter>> = Registry {
    kind: "filter",
    entries: &[
        ("cidr", |o| Ok(Box::new(cidr::Cidr::build(o)?))),
        ("clone", |o| Ok(Box::new(clone::Clone::build(o)?))),
        ("correlation", |o| {
            simple(o, correlation::Correlation::build)
        }),
        ("csv", |o| simple(o, csv::Csv::build)),
        ("date", |o| simple(o, date::Date::build)),
        ("dissect", |o| simple(o, dissect::Dissect::build)),
        ("dns", |o| simple(o, dns::Dns::build)),
        ("drop", |o| simple(o, drop::Drop::build)),
        ("error_stats", |o| {
            Ok(Box::new(error_stats::ErrorStats::build(o)?))
        }),
        ("fingerprint", |o| {
            simple(o, fingerprint::Fingerprint::build)
        }),
        ("geoip", |o| simple(o, geoip::GeoIp::build)),
        ("grok", |o| {
            let common = CommonOptions::from_options(o)?;
            Ok(Box::new(grok::Grok::build(o, common)?))
        }),
        ("json", |o| simple(o, json::Json::build)),
        ("kv", |o| simple(o, kv::Kv::build)),
        ("mutate", mutate::Mutate::build_filter),
        ("prune", |o| simple(o, prune::Prune::build)),
        ("ruby", ruby::build),
        ("sleep", |o| simple(o, sleep::Sleep::build)),
        ("split", |o| Ok(Box::new(split::Split::build(o)?))),
        ("syslog_pri", |o| simple(o, syslog_pri::SyslogPri::build)),
        ("translate", |o| {
            Ok(Box::new(translate::Translate::build(o)?))
        }),
        ("truncate", |o| simple(o, truncate::Truncate::build)),
        ("urldecode", |o| simple(o, urldecode::Urldecode::build)),
        ("useragent", |o| simple(o, useragent::UserAgent::build)),
        ("uuid", |o| simple(o, uuid::Uuid::build)),
    ],
};

/// Builds the filter plugin `name` from its options (common options included).
pub fn build(name: &str, opts: &mut Options) -> Result<Box<dyn Filter>, Error> {
    // Accepted for compatibility; Sluice flushes filters that hold events on its own.
    let _ = opts.bool("periodic_flush")?;
    REGISTRY.build(name, opts)
}
