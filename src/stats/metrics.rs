//! Metrics read at scrape time rather than counted on the hot path: the `error_stats`
//! counters (from the store's running totals, so the filter pays one lock per batch and
//! no label hashing per event) and the process's own resource use from `/proc`.
//!
//! They live in a registry of their own; the HTTP API appends it to
//! [`crate::metrics::encode_text`]'s output.

use super::store::{Level, LEVELS};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use std::sync::LazyLock;

type Labels = Vec<(&'static str, String)>;

/// The `error_stats` store's counters.
#[derive(Debug)]
struct ErrorStatsCollector;

impl Collector for ErrorStatsCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let store = super::global();
        let (events, errors, outside, services) = {
            let inner = store.lock();
            let events: Family<Labels, prometheus_client::metrics::counter::Counter> =
                Family::default();
            let errors: Family<Labels, prometheus_client::metrics::counter::Counter> =
                Family::default();
            for (id, totals) in inner.totals.iter().enumerate() {
                let service = inner.services[id].to_string();
                for l in Level::ALL {
                    let n = totals.get(l as usize).copied().unwrap_or(0);
                    if n > 0 {
                        events
                            .get_or_create(&vec![
                                ("service", service.clone()),
                                ("level", l.name().to_string()),
                            ])
                            .inc_by(n);
                    }
                }
                for (p, name) in inner.patterns.iter().enumerate() {
                    let n = totals.get(LEVELS + p).copied().unwrap_or(0);
                    if n > 0 {
                        errors
                            .get_or_create(&vec![
                                ("service", service.clone()),
                                ("pattern", name.to_string()),
                            ])
                            .inc_by(n);
                    }
                }
            }
            (
                events,
                errors,
                inner.outside_retention,
                inner.services.len() as i64,
            )
        };
        let m = encoder.encode_descriptor(
            "sluice_error_stats_events",
            "Events seen by error_stats filters, by service and level",
            None,
            events.metric_type(),
        )?;
        events.encode(m)?;
        let m = encoder.encode_descriptor(
            "sluice_error_stats_errors",
            "Error events seen by error_stats filters, by service and pattern",
            None,
            errors.metric_type(),
        )?;
        errors.encode(m)?;
        let c = ConstCounter::new(outside);
        let m = encoder.encode_descriptor(
            "sluice_error_stats_outside_retention",
            "Events older than the error_stats retention when they arrived (counted in totals, not kept in buckets)",
            None,
            c.metric_type(),
        )?;
        c.encode(m)?;
        let g = ConstGauge::new(services);
        let m = encoder.encode_descriptor(
            "sluice_error_stats_services",
            "Services tracked by the error statistics store (at most max_services + 1)",
            None,
            g.metric_type(),
        )?;
        g.encode(m)?;
        Ok(())
    }
}

/// The process's resource use, named as Prometheus client libraries name it, so
/// existing dashboards and alerts on `process_*` work unchanged.
#[derive(Debug)]
struct ProcessCollector;

/// What `/proc/self` says about this process.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct ProcessStats {
    pub cpu_seconds: f64,
    pub resident_memory_bytes: u64,
    pub virtual_memory_bytes: u64,
    pub open_fds: u64,
    pub max_fds: u64,
    pub start_time_seconds: f64,
}

/// Reads `/proc/self`; fields it cannot read stay 0 (other systems than Linux).
pub fn process_stats() -> ProcessStats {
    let mut s = ProcessStats::default();
    let page = 4096u64;
    let ticks = 100.0; // USER_HZ, 100 on every Linux architecture Sluice targets
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
        // Fields after the command name, which is in parentheses and may hold spaces.
        if let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) {
            let f: Vec<&str> = rest.split_whitespace().collect();
            let num = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
            // stat(5): utime is field 14, stime 15, starttime 22, vsize 23, rss 24;
            // `rest` starts at field 3.
            s.cpu_seconds = (num(11) + num(12)) / ticks;
            s.virtual_memory_bytes = num(20) as u64;
            s.resident_memory_bytes = num(21) as u64 * page;
            if let Some(boot) = boot_time() {
                s.start_time_seconds = boot + num(19) / ticks;
            }
        }
    }
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        s.open_fds = dir.count() as u64;
    }
    if let Ok(limits) = std::fs::read_to_string("/proc/self/limits") {
        s.max_fds = limits
            .lines()
            .find(|l| l.starts_with("Max open files"))
            .and_then(|l| l.split_whitespace().nth(3))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
    }
    s
}

fn boot_time() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let p = process_stats();
        let cpu = ConstCounter::new(p.cpu_seconds);
        let m = encoder.encode_descriptor(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds",
            None,
            cpu.metric_type(),
        )?;
        cpu.encode(m)?;
        for (name, help, value) in [
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes",
                p.resident_memory_bytes as f64,
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes",
                p.virtual_memory_bytes as f64,
            ),
            (
                "process_open_fds",
                "Number of open file descriptors",
                p.open_fds as f64,
            ),
            (
                "process_max_fds",
                "Maximum number of open file descriptors",
                p.max_fds as f64,
            ),
            (
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds",
                p.start_time_seconds,
            ),
        ] {
            let g = ConstGauge::new(value);
            let m = encoder.encode_descriptor(name, help, None, g.metric_type())?;
            g.encode(m)?;
        }
        Ok(())
    }
}

static REGISTRY: LazyLock<Registry> = LazyLock::new(|| {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(ErrorStatsCollector));
    registry.register_collector(Box::new(ProcessCollector));
    registry
});

/// This registry in the text exposition format (ends with `# EOF`).
pub fn encode_text() -> String {
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, &REGISTRY);
    out
}

/// Every metric Sluice exports: the main registry followed by this one, as one
/// exposition (the first one's `# EOF` removed).
pub fn exposition() -> String {
    let main = crate::metrics::encode_text();
    let mut out = main
        .strip_suffix("# EOF\n")
        .map(str::to_string)
        .unwrap_or(main);
    out.push_str(&encode_text());
    out
}
