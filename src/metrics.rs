//! Every Prometheus metric Sluice records, named once, in one process-wide registry.
//!
//! Names start with `sluice_` and follow Prometheus conventions (`_total` for counters,
//! `_seconds` and `_bytes` for units). [`encode_text`] renders the registry in the text
//! exposition format, for the HTTP API's `/metrics`.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::LazyLock;

/// Label sets are small lists of `(name, value)` pairs.
pub type Labels = Vec<(&'static str, String)>;

/// Counters by label set.
pub type CounterFamily = Family<Labels, Counter>;

/// Histograms by label set, every one with [`latency_buckets`].
pub type HistogramFamily = Family<Labels, Histogram, fn() -> Histogram>;

/// 1 ms to about 2 minutes, doubling.
pub fn latency_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 18))
}

/// What the delivery engine records per output (label `plugin_id`), for every output
/// alike: the outputs themselves record only their transport's own figures.
pub struct Outputs {
    /// Events the destination accepted.
    pub delivered: CounterFamily,
    /// Events the destination refused for good (then dead-lettered).
    pub rejected: CounterFamily,
    /// Rejects by reason (`plugin_id`, `reason`).
    pub rejects: CounterFamily,
    /// Events sent again after a retryable failure.
    pub retried: CounterFamily,
    /// Retried events by reason (`plugin_id`, `reason`: `http_503`, `connect`, ...).
    pub retries: CounterFamily,
    /// Rejected events written to the dead letter queue.
    pub dead_lettered: CounterFamily,
    /// Rejected events lost because the dead letter queue could not be written.
    pub dead_letter_lost: CounterFamily,
    /// Events given up at the shutdown deadline or on an output error (batch failed).
    pub undelivered: CounterFamily,
    /// Time of one attempt (`send`), by output.
    pub send_duration: HistogramFamily,
}

/// The Elasticsearch output's transport: what the delivery engine cannot see.
pub struct Elasticsearch {
    /// Bulk response items by HTTP status.
    pub items: Family<Labels, Counter>,
    /// Bulk requests that failed as a whole, by reason (`connect`, `timeout`, `http_401`, ...).
    pub request_failures: Family<Labels, Counter>,
    /// Bulk request latency, from sending to a fully read response.
    pub bulk_duration: Histogram,
    /// Bytes of bulk request bodies put on the wire (after compression).
    pub sent_bytes: Counter,
}

/// The dead letter queue's metrics.
pub struct DeadLetterQueue {
    /// Entries appended.
    pub written: Counter,
    /// Entries lost to the size cap, by policy (`drop_newer`, `drop_older`).
    pub dropped: Family<Labels, Counter>,
    /// Bytes on disk across segments.
    pub size: Gauge,
}

pub struct Metrics {
    registry: Registry,
    pub outputs: Outputs,
    pub elasticsearch: Elasticsearch,
    pub dead_letter_queue: DeadLetterQueue,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let mut registry = Registry::with_prefix("sluice");
    let outputs = Outputs {
        delivered: Family::default(),
        rejected: Family::default(),
        rejects: Family::default(),
        retried: Family::default(),
        retries: Family::default(),
        dead_lettered: Family::default(),
        dead_letter_lost: Family::default(),
        undelivered: Family::default(),
        send_duration: Family::new_with_constructor(latency_buckets),
    };
    for (name, help, family) in [
        (
            "output_events_delivered",
            "Events the destination accepted",
            &outputs.delivered,
        ),
        (
            "output_events_rejected",
            "Events the destination refused for good",
            &outputs.rejected,
        ),
        (
            "output_rejects",
            "Rejected events by reason",
            &outputs.rejects,
        ),
        (
            "output_events_retried",
            "Events sent again after a retryable failure",
            &outputs.retried,
        ),
        (
            "output_retries",
            "Retried events by reason",
            &outputs.retries,
        ),
        (
            "output_events_dead_lettered",
            "Rejected events written to the dead letter queue",
            &outputs.dead_lettered,
        ),
        (
            "output_dead_letter_lost",
            "Rejected events lost because the dead letter queue could not be written",
            &outputs.dead_letter_lost,
        ),
        (
            "output_events_undelivered",
            "Events given up at the shutdown deadline or on an output error",
            &outputs.undelivered,
        ),
    ] {
        registry.register(name, help, family.clone());
    }
    registry.register(
        "output_send_duration_seconds",
        "Time of one delivery attempt",
        outputs.send_duration.clone(),
    );
    let elasticsearch = Elasticsearch {
        items: Family::default(),
        request_failures: Family::default(),
        bulk_duration: Histogram::new(exponential_buckets(0.001, 2.0, 18)),
        sent_bytes: Counter::default(),
    };
    // prometheus-client appends `_total` to counters itself.
    registry.register(
        "elasticsearch_bulk_items",
        "Bulk response items by HTTP status",
        elasticsearch.items.clone(),
    );
    registry.register(
        "elasticsearch_bulk_request_failures",
        "Bulk requests that failed as a whole, by reason",
        elasticsearch.request_failures.clone(),
    );
    registry.register(
        "elasticsearch_bulk_duration_seconds",
        "Bulk request latency",
        elasticsearch.bulk_duration.clone(),
    );
    registry.register(
        "elasticsearch_bulk_sent_bytes",
        "Bytes of bulk request bodies sent (after compression)",
        elasticsearch.sent_bytes.clone(),
    );
    let dead_letter_queue = DeadLetterQueue {
        written: Counter::default(),
        dropped: Family::default(),
        size: Gauge::default(),
    };
    registry.register(
        "dead_letter_queue_written",
        "Entries appended to the dead letter queue",
        dead_letter_queue.written.clone(),
    );
    registry.register(
        "dead_letter_queue_dropped",
        "Dead letter queue entries lost to the size cap, by policy",
        dead_letter_queue.dropped.clone(),
    );
    registry.register(
        "dead_letter_queue_size_bytes",
        "Bytes of the dead letter queue on disk",
        dead_letter_queue.size.clone(),
    );
    Metrics {
        registry,
        outputs,
        elasticsearch,
        dead_letter_queue,
    }
});

/// The process-wide metrics.
pub fn get() -> &'static Metrics {
    &METRICS
}

/// The registry in the Prometheus text exposition format.
pub fn encode_text() -> String {
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = encode(&mut out, &METRICS.registry);
    out
}

/// A label set of one pair.
pub fn label(name: &'static str, value: impl Into<String>) -> Labels {
    vec![(name, value.into())]
}

/// The label set of one plugin instance.
pub fn plugin(id: &str) -> Labels {
    label("plugin_id", id)
}

/// The label set of one plugin instance and a reason.
pub fn plugin_reason(id: &str, reason: &str) -> Labels {
    vec![
        ("plugin_id", id.to_string()),
        ("reason", reason.to_string()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_conventions() {
        get()
            .outputs
            .delivered
            .get_or_create(&plugin("es-1"))
            .inc_by(3);
        get()
            .elasticsearch
            .items
            .get_or_create(&label("status", "201"))
            .inc();
        get().elasticsearch.bulk_duration.observe(0.01);
        let text = encode_text();
        assert!(text.contains("sluice_output_events_delivered_total{plugin_id=\"es-1\"} 3"));
        assert!(text.contains("sluice_elasticsearch_bulk_items_total{status=\"201\"}"));
        assert!(text.contains("sluice_elasticsearch_bulk_duration_seconds_bucket"));
        assert!(text.contains("sluice_elasticsearch_bulk_sent_bytes_total"));
        assert!(text.contains("sluice_dead_letter_queue_size_bytes"));
    }
}
