//! The aggregation store: counts per service and level in one-minute buckets, error
//! counts per pattern, and the most frequent error messages per service and hour.
//!
//! Memory has a bound whatever the input: at most `max_services` services (later ones
//! are counted as [`OTHER_SERVICE`]), at most [`MAX_PATTERNS`] pattern names, one row per
//! (service, minute) with data for `retention` minutes, and per (service, hour) one
//! Space-Saving table of `top_messages` entries whose messages are cut to the filter's
//! `message_length`. The worst case is therefore
//! `(max_services + 1) × retention_minutes × (5 + patterns) × 4 bytes` for counts plus
//! `(max_services + 1) × retention_hours × top_messages × message_length` for messages.

use super::topk::SpaceSaving;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// Where services beyond `max_services` are counted.
pub const OTHER_SERVICE: &str = "_other";
/// The pattern of an error no configured pattern matched.
pub const OTHER_PATTERN: &str = "other";
/// Distinct pattern names the store keeps (across every `error_stats` filter).
pub const MAX_PATTERNS: usize = 64;
/// Longest service name kept; longer ones are cut.
pub const MAX_SERVICE_LEN: usize = 128;

/// A log level, folded into the classes the API reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Level {
    Error = 0,
    Warning = 1,
    Info = 2,
    Debug = 3,
    Other = 4,
}

pub const LEVELS: usize = 5;

impl Level {
    pub const ALL: [Level; LEVELS] = [
        Level::Error,
        Level::Warning,
        Level::Info,
        Level::Debug,
        Level::Other,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warning => "warning",
            Level::Info => "info",
            Level::Debug => "debug",
            Level::Other => "other",
        }
    }
}

/// How big the store may grow. Several filters may configure it; each setting only grows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub retention_minutes: i64,
    pub max_services: usize,
    pub top_messages: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            retention_minutes: 7 * 24 * 60,
            max_services: 100,
            top_messages: 20,
        }
    }
}

/// One event, as the filter classified it.
#[derive(Debug, Clone)]
pub struct Observation<'a> {
    pub service: &'a str,
    pub level: Level,
    /// Unix minute of the event's `@timestamp`.
    pub minute: i64,
    /// For errors: the pattern index (from [`Store::pattern`]) and the grouped message.
    pub error: Option<(u32, &'a str)>,
}

/// Counts of one service in one minute: the levels, then one per pattern.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Row {
    pub service: u32,
    pub counts: Vec<u64>,
}

impl Row {
    pub fn level(&self, l: Level) -> u64 {
        self.counts[l as usize]
    }

    fn add(&mut self, index: usize) {
        if self.counts.len() <= index {
            self.counts.resize(index + 1, 0);
        }
        self.counts[index] += 1;
    }
}

/// The store's state; [`super::Store`] wraps it in a lock.
#[derive(Debug, Default)]
pub(crate) struct Inner {
    pub limits: Limits,
    pub services: Vec<Box<str>>,
    service_index: HashMap<Box<str>, u32>,
    pub patterns: Vec<Box<str>>,
    /// Minute → rows, one per service with events in that minute.
    pub minutes: BTreeMap<i64, Vec<Row>>,
    /// Hour → per service, its most frequent error messages.
    pub hours: BTreeMap<i64, Vec<(u32, SpaceSaving)>>,
    /// Since start, per service: levels then patterns (for `/metrics` counters).
    pub totals: Vec<Vec<u64>>,
    /// Events older than the retention when they arrived; not kept.
    pub outside_retention: u64,
    last_prune: i64,
}

impl Inner {
    pub fn new(limits: Limits) -> Inner {
        let mut inner = Inner {
            limits,
            ..Inner::default()
        };
        inner.pattern(OTHER_PATTERN);
        inner
    }

    /// The index of pattern `name`, registered if new (beyond [`MAX_PATTERNS`], `other`).
    pub fn pattern(&mut self, name: &str) -> u32 {
        if let Some(i) = self.patterns.iter().position(|p| &**p == name) {
            return i as u32;
        }
        if self.patterns.len() >= MAX_PATTERNS {
            tracing::warn!(
                pattern = name,
                max = MAX_PATTERNS,
                "too many error_stats patterns; counting it as other"
            );
            return 0;
        }
        self.patterns.push(name.into());
        (self.patterns.len() - 1) as u32
    }

    /// The index of service `name`: a new one while under the cap, else `_other`.
    pub fn service(&mut self, name: &str) -> u32 {
        let name = cut(name, MAX_SERVICE_LEN);
        if let Some(&i) = self.service_index.get(name) {
            return i;
        }
        let tracked =
            self.services.len() - usize::from(self.service_index.contains_key(OTHER_SERVICE));
        let name = if tracked >= self.limits.max_services {
            OTHER_SERVICE
        } else {
            name
        };
        if let Some(&i) = self.service_index.get(name) {
            return i;
        }
        let i = self.services.len() as u32;
        self.services.push(name.into());
        self.service_index.insert(name.into(), i);
        self.totals.push(vec![0; LEVELS]);
        i
    }

    pub fn service_id(&self, name: &str) -> Option<u32> {
        self.service_index.get(name).copied()
    }

    /// Records one event; `now_minute` bounds it (older than the retention: not kept;
    /// in the future: counted now).
    pub fn record(&mut self, obs: &Observation, now_minute: i64) {
        if now_minute != self.last_prune {
            self.prune(now_minute);
        }
        let service = self.service(obs.service);
        let totals = &mut self.totals[service as usize];
        bump(totals, obs.level as usize);
        if let Some((p, _)) = obs.error {
            bump(totals, LEVELS + p as usize);
        }
        let minute = obs.minute.min(now_minute);
        if minute <= now_minute - self.limits.retention_minutes {
            self.outside_retention += 1;
            return;
        }
        let rows = self.minutes.entry(minute).or_default();
        let row = match rows.iter().position(|r| r.service == service) {
            Some(i) => &mut rows[i],
            None => {
                rows.push(Row {
                    service,
                    counts: vec![0; LEVELS],
                });
                let last = rows.len() - 1;
                &mut rows[last]
            }
        };
        row.add(obs.level as usize);
        if let Some((p, message)) = obs.error {
            row.add(LEVELS + p as usize);
            let capacity = self.limits.top_messages;
            let tops = self.hours.entry(minute.div_euclid(60)).or_default();
            let top = match tops.iter().position(|(s, _)| *s == service) {
                Some(i) => &mut tops[i].1,
                None => {
                    tops.push((service, SpaceSaving::new(capacity)));
                    let last = tops.len() - 1;
                    &mut tops[last].1
                }
            };
            top.add(message, 1);
        }
    }

    /// Forgets minutes and hours past the retention.
    pub fn prune(&mut self, now_minute: i64) {
        self.last_prune = now_minute;
        let first_kept = now_minute - self.limits.retention_minutes + 1;
        self.minutes = self.minutes.split_off(&first_kept);
        self.hours = self.hours.split_off(&first_kept.div_euclid(60));
    }

    /// Entry counts, to show that memory stays bounded.
    pub fn sizes(&self) -> Sizes {
        Sizes {
            services: self.services.len(),
            patterns: self.patterns.len(),
            minute_buckets: self.minutes.len(),
            minute_rows: self.minutes.values().map(Vec::len).sum(),
            hour_buckets: self.hours.len(),
            top_messages: self
                .hours
                .values()
                .flat_map(|v| v.iter().map(|(_, t)| t.len()))
                .sum(),
            message_bytes: self
                .hours
                .values()
                .flat_map(|v| v.iter())
                .flat_map(|(_, t)| t.entries().iter().map(|e| e.message.len()))
                .sum(),
        }
    }
}

fn bump(counts: &mut Vec<u64>, index: usize) {
    if counts.len() <= index {
        counts.resize(index + 1, 0);
    }
    counts[index] += 1;
}

/// The first `max` characters of `s`.
pub fn cut(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// How many entries the store holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Sizes {
    pub services: usize,
    pub patterns: usize,
    pub minute_buckets: usize,
    pub minute_rows: usize,
    pub hour_buckets: usize,
    pub top_messages: usize,
    pub message_bytes: usize,
}
