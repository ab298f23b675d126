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

/// The Elasticsearch output's metrics.
pub struct Elasticsearch {
    /// Documents the server accepted (2xx, or 409 on `create`).
    pub documents_indexed: Counter,
    /// Documents sent again after a retryable failure (item or whole request).
    pub documents_retried: Counter,
    /// Documents written to the dead letter queue.
    pub documents_dead_lettered: Counter,
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

/// The persisted queue's metrics.
pub struct PersistedQueue {
    /// Records found damaged (at start or while reading) and not delivered.
    pub damaged_records: Counter,
    /// Writes the disk refused (full, I/O error); each is retried while the input waits.
    pub write_errors: Counter,
    /// Bytes of pages on disk.
    pub size: Gauge,
}

pub struct Metrics {
    registry: Registry,
    pub elasticsearch: Elasticsearch,
    pub dead_letter_queue: DeadLetterQueue,
    pub persisted_queue: PersistedQueue,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let mut registry = Registry::with_prefix("sluice");
    let elasticsearch = Elasticsearch {
        documents_indexed: Counter::default(),
        documents_retried: Counter::default(),
        documents_dead_lettered: Counter::default(),
        items: Family::default(),
        request_failures: Family::default(),
        bulk_duration: Histogram::new(exponential_buckets(0.001, 2.0, 18)),
        sent_bytes: Counter::default(),
    };
    // prometheus-client appends `_total` to counters itself.
    registry.register(
        "elasticsearch_documents_indexed",
        "Documents accepted by Elasticsearch",
        elasticsearch.documents_indexed.clone(),
    );
    registry.register(
        "elasticsearch_documents_retried",
        "Documents sent again after a retryable failure",
        elasticsearch.documents_retried.clone(),
    );
    registry.register(
        "elasticsearch_documents_dead_lettered",
        "Documents written to the dead letter queue",
        elasticsearch.documents_dead_lettered.clone(),
    );
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
    let persisted_queue = PersistedQueue {
        damaged_records: Counter::default(),
        write_errors: Counter::default(),
        size: Gauge::default(),
    };
    registry.register(
        "queue_damaged_records",
        "Persisted queue records found damaged and not delivered",
        persisted_queue.damaged_records.clone(),
    );
    registry.register(
        "queue_write_errors",
        "Persisted queue writes the disk refused (retried while inputs wait)",
        persisted_queue.write_errors.clone(),
    );
    registry.register(
        "queue_size_bytes",
        "Bytes of persisted queue pages on disk",
        persisted_queue.size.clone(),
    );
    Metrics {
        registry,
        elasticsearch,
        dead_letter_queue,
        persisted_queue,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_conventions() {
        get().elasticsearch.documents_indexed.inc();
        get()
            .elasticsearch
            .items
            .get_or_create(&label("status", "201"))
            .inc();
        get().elasticsearch.bulk_duration.observe(0.01);
        let text = encode_text();
        assert!(text.contains("sluice_elasticsearch_documents_indexed_total "));
        assert!(text.contains("sluice_elasticsearch_bulk_items_total{status=\"201\"}"));
        assert!(text.contains("sluice_elasticsearch_bulk_duration_seconds_bucket"));
        assert!(text.contains("sluice_elasticsearch_bulk_sent_bytes_total"));
        assert!(text.contains("sluice_dead_letter_queue_size_bytes"));
    }
}
