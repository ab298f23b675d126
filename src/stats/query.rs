//! The answers of the error API, computed from the store over a window of minutes.
//! Field names here are the API's: they are documented in the README and kept stable.

use super::store::{Inner, Level, LEVELS};
use super::topk::SpaceSaving;
use crate::event::timestamp::Timestamp;
use serde::Serialize;
use std::collections::HashMap;

/// The minutes a query covers: `[first, last]`, both inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub first: i64,
    pub last: i64,
    pub hours: u32,
}

impl Window {
    /// The `hours` hours up to and including minute `now`.
    pub fn last_hours(now: i64, hours: u32) -> Window {
        Window {
            first: now - i64::from(hours) * 60 + 1,
            last: now,
            hours,
        }
    }

    fn period(&self) -> Period {
        Period {
            hours: self.hours,
            start: minute_iso(self.first),
            end: minute_iso(self.last + 1),
        }
    }
}

fn minute_iso(minute: i64) -> String {
    Timestamp::from_unix(minute * 60, 0)
        .map(|t| t.to_iso8601())
        .unwrap_or_default()
}

#[derive(Debug, Serialize)]
pub struct Period {
    pub hours: u32,
    pub start: String,
    pub end: String,
}

#[derive(Debug, Serialize)]
pub struct MessageCount {
    pub message: String,
    pub count: u64,
}

#[derive(Debug, Serialize)]
pub struct ServiceErrors {
    pub count: u64,
    pub rate_per_hour: f64,
    pub top_messages: Vec<MessageCount>,
}

#[derive(Debug, Serialize)]
pub struct TopError {
    pub service: String,
    pub message: String,
    pub count: u64,
}

#[derive(Debug, Serialize)]
pub struct Summary {
    pub period: Period,
    pub total_errors: u64,
    pub errors_by_service: indexmap::IndexMap<String, ServiceErrors>,
    pub error_patterns: indexmap::IndexMap<String, u64>,
    pub top_errors: Vec<TopError>,
}

#[derive(Debug, Serialize)]
pub struct ServiceHealth {
    pub health_score: f64,
    pub total_logs: u64,
    pub error_count: u64,
    pub error_rate: f64,
    pub status: &'static str,
}

#[derive(Debug, Serialize)]
pub struct Health {
    pub period: Period,
    pub services: indexmap::IndexMap<String, ServiceHealth>,
}

#[derive(Debug, Serialize)]
pub struct ServiceCounts {
    pub logs: u64,
    pub errors: u64,
}

#[derive(Debug, Serialize)]
pub struct TrendBucket {
    pub start: String,
    pub levels: indexmap::IndexMap<&'static str, u64>,
    pub services: indexmap::IndexMap<String, ServiceCounts>,
}

#[derive(Debug, Serialize)]
pub struct Trends {
    pub period: Period,
    pub bucket_seconds: i64,
    pub buckets: Vec<TrendBucket>,
}

/// Sorted by count (descending), then name, so answers do not depend on hash order.
fn by_count<T>(items: &mut [(String, T)], count: impl Fn(&T) -> u64) {
    items.sort_by(|a, b| count(&b.1).cmp(&count(&a.1)).then_with(|| a.0.cmp(&b.0)));
}

/// The status of a health score: `healthy` above 80, `degraded` above 60.
pub fn status_of(score: f64) -> &'static str {
    if score > 80.0 {
        "healthy"
    } else if score > 60.0 {
        "degraded"
    } else {
        "unhealthy"
    }
}

impl Inner {
    /// Per service: counts per level and pattern over the window.
    fn totals(&self, w: Window) -> HashMap<u32, Vec<u64>> {
        let mut per: HashMap<u32, Vec<u64>> = HashMap::new();
        for rows in self.minutes.range(w.first..=w.last).map(|(_, r)| r) {
            for row in rows {
                let acc = per.entry(row.service).or_default();
                if acc.len() < row.counts.len() {
                    acc.resize(row.counts.len(), 0);
                }
                for (a, c) in acc.iter_mut().zip(&row.counts) {
                    *a += c;
                }
            }
        }
        per
    }

    /// Per service: the merged top-message tables of the hours the window touches.
    fn top_messages(&self, w: Window) -> HashMap<u32, HashMap<Box<str>, u64>> {
        let mut per: HashMap<u32, HashMap<Box<str>, u64>> = HashMap::new();
        let hours = w.first.div_euclid(60)..=w.last.div_euclid(60);
        for tops in self.hours.range(hours).map(|(_, t)| t) {
            for (service, table) in tops {
                let merged = per.entry(*service).or_default();
                merge(merged, table);
            }
        }
        per
    }

    pub fn summary(&self, w: Window, service: Option<u32>, top: usize) -> Summary {
        let totals = self.totals(w);
        let tops = self.top_messages(w);
        let mut patterns = vec![0u64; self.patterns.len()];
        let mut services = Vec::new();
        let mut top_errors = Vec::new();
        for (&id, counts) in &totals {
            if service.is_some_and(|s| s != id) {
                continue;
            }
            let errors = counts[Level::Error as usize];
            if errors == 0 {
                continue;
            }
            for (p, total) in patterns.iter_mut().enumerate() {
                *total += counts.get(LEVELS + p).copied().unwrap_or(0);
            }
            let name = self.services[id as usize].to_string();
            let mut messages: Vec<(String, u64)> = tops
                .get(&id)
                .map(|m| m.iter().map(|(k, v)| (k.to_string(), *v)).collect())
                .unwrap_or_default();
            by_count(&mut messages, |c| *c);
            for (message, count) in &messages {
                top_errors.push((
                    format!("{name}\u{0}{message}"),
                    (name.clone(), message.clone(), *count),
                ));
            }
            let top_messages = messages
                .into_iter()
                .take(top)
                .map(|(message, count)| MessageCount { message, count })
                .collect();
            services.push((
                name,
                ServiceErrors {
                    count: errors,
                    rate_per_hour: round2(errors as f64 / f64::from(w.hours.max(1))),
                    top_messages,
                },
            ));
        }
        by_count(&mut services, |s| s.count);
        by_count(&mut top_errors, |t| t.2);
        let total_errors = services.iter().map(|(_, s)| s.count).sum();
        Summary {
            period: w.period(),
            total_errors,
            errors_by_service: services.into_iter().collect(),
            error_patterns: self
                .patterns
                .iter()
                .zip(patterns)
                .map(|(n, c)| (n.to_string(), c))
                .collect(),
            top_errors: top_errors
                .into_iter()
                .take(10)
                .map(|(_, (service, message, count))| TopError {
                    service,
                    message,
                    count,
                })
                .collect(),
        }
    }

    pub fn health(&self, w: Window) -> Health {
        let mut services: Vec<(String, ServiceHealth)> = self
            .totals(w)
            .into_iter()
            .filter_map(|(id, counts)| {
                let total: u64 = counts[..LEVELS].iter().sum();
                if total == 0 {
                    return None;
                }
                let errors = counts[Level::Error as usize];
                let rate = errors as f64 / total as f64;
                let score = round2(100.0 - rate * 100.0);
                Some((
                    self.services[id as usize].to_string(),
                    ServiceHealth {
                        health_score: score,
                        total_logs: total,
                        error_count: errors,
                        error_rate: round4(rate),
                        status: status_of(score),
                    },
                ))
            })
            .collect();
        services.sort_by(|a, b| a.0.cmp(&b.0));
        Health {
            period: w.period(),
            services: services.into_iter().collect(),
        }
    }

    /// Buckets of `bucket_minutes`, aligned to the epoch; the first is the one holding
    /// the window's first minute.
    pub fn trends(&self, w: Window, bucket_minutes: i64) -> Trends {
        let first = w.first.div_euclid(bucket_minutes) * bucket_minutes;
        let mut buckets = Vec::new();
        let mut start = first;
        while start <= w.last {
            let end = start + bucket_minutes - 1;
            let mut levels = [0u64; LEVELS];
            let mut per: HashMap<u32, (u64, u64)> = HashMap::new();
            for rows in self.minutes.range(start..=end).map(|(_, r)| r) {
                for row in rows {
                    let logs: u64 = row.counts[..LEVELS].iter().sum();
                    for l in Level::ALL {
                        levels[l as usize] += row.level(l);
                    }
                    let e = per.entry(row.service).or_default();
                    e.0 += logs;
                    e.1 += row.level(Level::Error);
                }
            }
            let mut services: Vec<(String, ServiceCounts)> = per
                .into_iter()
                .map(|(id, (logs, errors))| {
                    (
                        self.services[id as usize].to_string(),
                        ServiceCounts { logs, errors },
                    )
                })
                .collect();
            services.sort_by(|a, b| a.0.cmp(&b.0));
            buckets.push(TrendBucket {
                start: minute_iso(start),
                levels: Level::ALL
                    .iter()
                    .map(|l| (l.name(), levels[*l as usize]))
                    .collect(),
                services: services.into_iter().collect(),
            });
            start += bucket_minutes;
        }
        Trends {
            period: Period {
                start: minute_iso(first),
                ..w.period()
            },
            bucket_seconds: bucket_minutes * 60,
            buckets,
        }
    }
}

fn merge(into: &mut HashMap<Box<str>, u64>, table: &SpaceSaving) {
    for e in table.entries() {
        *into.entry(e.message.clone()).or_default() += e.count;
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}
