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
use std::sync::atomic::AtomicU64;
use std::sync::LazyLock;

/// Label sets are small lists of `(name, value)` pairs.
pub type Labels = Vec<(&'static str, String)>;

/// Counters by label set.
pub type CounterFamily = Family<Labels, Counter>;

/// Gauges by label set.
pub type GaugeFamily = Family<Labels, Gauge>;

/// Second counters (fractional) by label set.
pub type SecondsFamily = Family<Labels, Counter<f64, AtomicU64>>;

/// Histograms by label set, every one with [`latency_buckets`].
pub type HistogramFamily = Family<Labels, Histogram, fn() -> Histogram>;

/// 1 ms to about 2 minutes, doubling.
pub fn latency_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 18))
}

/// What the pipeline runtime records about the flow of events.
pub struct Pipeline {
    /// Events an input put in the queue, by `plugin_id` (recorded where inputs push).
    pub input_events: CounterFamily,
    /// Events workers took from the queue into the filters, by `pipeline`.
    pub filter_events_in: CounterFamily,
    /// Events that left the filters for the outputs (drops and clones change the
    /// count), by `pipeline`.
    pub filter_events_out: CounterFamily,
    /// Events in the queue, sampled when a worker takes a batch, by `pipeline`.
    pub queue_events: GaugeFamily,
    /// Bytes (approximate) in the queue, sampled likewise, by `pipeline`.
    pub queue_bytes: GaugeFamily,
    /// Batches failed back to their inputs (not acknowledged), by `pipeline`.
    pub batches_failed: CounterFamily,
    /// Events a filter or output received, by `plugin_id` (recorded by the runtime around
    /// each plugin, never by the plugin).
    pub plugin_events_in: CounterFamily,
    /// Events a filter passed on (drops and clones change the count) or an output
    /// settled (delivered or rejected to the dead letter queue), by `plugin_id`.
    pub plugin_events_out: CounterFamily,
    /// Time spent in a plugin, by `plugin_id`: a filter's work, an output's attempts,
    /// an input's waits to push into the queue.
    pub plugin_duration: SecondsFamily,
}

/// One pipeline's runtime metrics (label `pipeline`), looked up once when its workers
/// start so the hot path only adds to atomics. Pipelines of one process (pipelines.yml)
/// each have their own.
#[derive(Clone, Debug)]
pub struct PipelineFlow {
    pub filter_events_in: Counter,
    pub filter_events_out: Counter,
    pub queue_events: Gauge,
    pub queue_bytes: Gauge,
    pub batches_failed: Counter,
}

impl PipelineFlow {
    pub fn of(pipeline_id: &str) -> PipelineFlow {
        let m = &get().pipeline;
        let labels = pipeline(pipeline_id);
        PipelineFlow {
            filter_events_in: m.filter_events_in.get_or_create(&labels).clone(),
            filter_events_out: m.filter_events_out.get_or_create(&labels).clone(),
            queue_events: m.queue_events.get_or_create(&labels).clone(),
            queue_bytes: m.queue_bytes.get_or_create(&labels).clone(),
            batches_failed: m.batches_failed.get_or_create(&labels).clone(),
        }
    }
}

/// One plugin's flow counters, looked up once when the plugin is built so the hot path
/// only adds to atomics.
#[derive(Clone, Debug, Default)]
pub struct PluginFlow {
    pub events_in: Counter,
    pub events_out: Counter,
    pub duration: Counter<f64, AtomicU64>,
}

impl PluginFlow {
    /// The counters of plugin `id`.
    pub fn of(id: &str) -> PluginFlow {
        let m = &get().pipeline;
        let labels = plugin(id);
        PluginFlow {
            events_in: m.plugin_events_in.get_or_create(&labels).clone(),
            events_out: m.plugin_events_out.get_or_create(&labels).clone(),
            duration: m.plugin_duration.get_or_create(&labels).clone(),
        }
    }

    /// The counters of input `id`: what it emits is counted in `input_events`, like
    /// Logstash's inputs that report only `out`.
    pub fn of_input(id: &str) -> PluginFlow {
        let m = &get().pipeline;
        let labels = plugin(id);
        PluginFlow {
            events_in: Counter::default(),
            events_out: m.input_events.get_or_create(&labels).clone(),
            duration: m.plugin_duration.get_or_create(&labels).clone(),
        }
    }

    /// Records one pass of `events_in` events that left as `events_out` after `took`.
    pub fn record(&self, events_in: usize, events_out: usize, took: std::time::Duration) {
        self.events_in.inc_by(events_in as u64);
        self.events_out.inc_by(events_out as u64);
        self.duration.inc_by(took.as_secs_f64());
    }
}

/// The Beats input's connections.
pub struct Beats {
    /// Connections open now.
    pub connections: Gauge,
    /// Connections accepted, in total.
    pub connections_accepted: Counter,
    /// Connections refused because `max_connections` were open.
    pub connections_refused: Counter,
}

/// What inputs lose on purpose, where their protocol has no back-pressure, and how
/// their connections fare against the input memory budget.
pub struct Inputs {
    /// Times a connection waited for the input memory budget (`--input.memory.max_bytes`).
    pub memory_waits: Counter,
    /// Connections cut because the budget was stuck on lines or frames no peer finished
    /// (a tcp or syslog line kept as its head, a Beats connection closed, an HTTP
    /// request answered 429).
    pub memory_cuts: Counter,
    /// Datagrams (or datagram chunks) an input dropped, by `plugin_id` and `reason`:
    /// `queue_full` (a udp-based input's hand-off to the pipeline was full),
    /// `chunk_timeout`, `chunk_memory_limit`, `chunk_invalid` (chunked GELF messages
    /// that never completed, did not fit the reassembly budget, or were malformed),
    /// `message_too_large` (a GELF message over its size cap).
    pub datagrams_dropped: CounterFamily,
}

/// Grok, by `pattern` (the pattern text as configured; a handful per pipeline).
pub struct Grok {
    pub matches: CounterFamily,
    pub failures: CounterFamily,
    pub timeouts: CounterFamily,
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
    /// Events a `pipeline` output with `ensure_delivery => false` dropped because no
    /// pipeline listened on the address (`plugin_id`, `address`).
    pub pipeline_dropped: CounterFamily,
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

/// The dead letter queue's metrics, by `pipeline` (each pipeline has its own queue).
pub struct DeadLetterQueue {
    /// Entries appended.
    pub written: CounterFamily,
    /// Entries lost to the size cap, by `pipeline` and `policy` (`drop_newer`,
    /// `drop_older`).
    pub dropped: CounterFamily,
    /// Bytes on disk across segments.
    pub size: GaugeFamily,
}

/// The persisted queue's metrics, by `pipeline`.
pub struct PersistedQueue {
    /// Records found damaged (at start or while reading) and not delivered.
    pub damaged_records: CounterFamily,
    /// Writes the disk refused (full, I/O error); each is retried while the input waits.
    pub write_errors: CounterFamily,
    /// Bytes of pages on disk.
    pub size: GaugeFamily,
}

pub struct Metrics {
    registry: Registry,
    pub pipeline: Pipeline,
    pub beats: Beats,
    pub inputs: Inputs,
    pub grok: Grok,
    pub outputs: Outputs,
    pub elasticsearch: Elasticsearch,
    pub dead_letter_queue: DeadLetterQueue,
    pub persisted_queue: PersistedQueue,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let mut registry = Registry::with_prefix("sluice");
    let pipeline = Pipeline {
        input_events: Family::default(),
        filter_events_in: Family::default(),
        filter_events_out: Family::default(),
        queue_events: Family::default(),
        queue_bytes: Family::default(),
        batches_failed: Family::default(),
        plugin_events_in: Family::default(),
        plugin_events_out: Family::default(),
        plugin_duration: Family::default(),
    };
    registry.register(
        "input_events",
        "Events inputs put in the queue",
        pipeline.input_events.clone(),
    );
    registry.register(
        "pipeline_filter_events_in",
        "Events workers took from the queue",
        pipeline.filter_events_in.clone(),
    );
    registry.register(
        "pipeline_filter_events_out",
        "Events that left the filters for the outputs",
        pipeline.filter_events_out.clone(),
    );
    registry.register(
        "queue_events",
        "Events in the queue",
        pipeline.queue_events.clone(),
    );
    registry.register(
        "queue_size_bytes",
        "Approximate bytes in the queue",
        pipeline.queue_bytes.clone(),
    );
    registry.register(
        "pipeline_batches_failed",
        "Batches failed back to their inputs",
        pipeline.batches_failed.clone(),
    );
    registry.register(
        "plugin_events_in",
        "Events a filter or output received, by plugin",
        pipeline.plugin_events_in.clone(),
    );
    registry.register(
        "plugin_events_out",
        "Events a filter passed on or an output settled, by plugin",
        pipeline.plugin_events_out.clone(),
    );
    registry.register(
        "plugin_duration_seconds",
        "Time spent in a plugin (inputs: waiting to push into the queue)",
        pipeline.plugin_duration.clone(),
    );
    let beats = Beats {
        connections: Gauge::default(),
        connections_accepted: Counter::default(),
        connections_refused: Counter::default(),
    };
    registry.register(
        "beats_connections",
        "Beats connections open",
        beats.connections.clone(),
    );
    registry.register(
        "beats_connections_accepted",
        "Beats connections accepted",
        beats.connections_accepted.clone(),
    );
    registry.register(
        "beats_connections_refused",
        "Beats connections refused because max_connections were open",
        beats.connections_refused.clone(),
    );
    let inputs = Inputs {
        memory_waits: Counter::default(),
        memory_cuts: Counter::default(),
        datagrams_dropped: Family::default(),
    };
    registry.register(
        "input_memory_waits",
        "Times an input connection waited for the input memory budget",
        inputs.memory_waits.clone(),
    );
    registry.register(
        "input_memory_cuts",
        "Input connections cut because the memory budget was stuck on unfinished lines or frames",
        inputs.memory_cuts.clone(),
    );
    registry.register(
        "input_datagrams_dropped",
        "Datagrams an input dropped, by plugin and reason",
        inputs.datagrams_dropped.clone(),
    );
    let grok = Grok {
        matches: Family::default(),
        failures: Family::default(),
        timeouts: Family::default(),
    };
    registry.register(
        "grok_matches",
        "Grok matches by pattern",
        grok.matches.clone(),
    );
    registry.register(
        "grok_failures",
        "Grok events no pattern matched, by pattern",
        grok.failures.clone(),
    );
    registry.register(
        "grok_timeouts",
        "Grok matches cut off by timeout_millis, by pattern",
        grok.timeouts.clone(),
    );
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
        pipeline_dropped: Family::default(),
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
        (
            "pipeline_output_events_dropped",
            "Events a pipeline output without ensure_delivery dropped: no pipeline listened on the address",
            &outputs.pipeline_dropped,
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
        written: Family::default(),
        dropped: Family::default(),
        size: Family::default(),
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
        damaged_records: Family::default(),
        write_errors: Family::default(),
        size: Family::default(),
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
        "persisted_queue_disk_bytes",
        "Bytes of persisted queue pages on disk",
        persisted_queue.size.clone(),
    );
    Metrics {
        registry,
        pipeline,
        beats,
        inputs,
        grok,
        outputs,
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

/// The label set of one pipeline.
pub fn pipeline(id: &str) -> Labels {
    label("pipeline", id)
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

    #[test]
    fn a_plugin_flow_shares_the_exported_counters() {
        let flow = PluginFlow::of("flow-1");
        flow.record(10, 7, std::time::Duration::from_millis(1500));
        // Looked up again (as the node stats do), the same counters.
        let again = PluginFlow::of("flow-1");
        assert_eq!((again.events_in.get(), again.events_out.get()), (10, 7));
        assert!((again.duration.get() - 1.5).abs() < 1e-9);
        let input = PluginFlow::of_input("flow-in");
        input.record(0, 4, std::time::Duration::ZERO);
        let text = encode_text();
        for line in [
            "sluice_plugin_events_in_total{plugin_id=\"flow-1\"} 10",
            "sluice_plugin_events_out_total{plugin_id=\"flow-1\"} 7",
            "sluice_plugin_duration_seconds_total{plugin_id=\"flow-1\"} 1.5",
            "sluice_input_events_total{plugin_id=\"flow-in\"} 4",
        ] {
            assert!(text.contains(line), "missing `{line}` in\n{text}");
        }
    }

    #[test]
    fn every_internal_event_is_exported_under_its_name() {
        let m = get();
        m.pipeline.input_events.get_or_create(&plugin("in-1")).inc();
        let flow = PipelineFlow::of("metrics-test");
        flow.filter_events_in.inc();
        flow.queue_events.set(7);
        m.grok
            .matches
            .get_or_create(&label("pattern", "%{WORD:metrics_test}"))
            .inc();
        m.outputs
            .retries
            .get_or_create(&plugin_reason("out-1", "http_503"))
            .inc_by(4);
        m.outputs
            .send_duration
            .get_or_create(&plugin("out-1"))
            .observe(0.02);
        let text = encode_text();
        for line in [
            "sluice_input_events_total{plugin_id=\"in-1\"} 1",
            "sluice_queue_events{pipeline=\"metrics-test\"} 7",
            "sluice_pipeline_filter_events_in_total{pipeline=\"metrics-test\"} 1",
            "sluice_grok_matches_total{pattern=\"%{WORD:metrics_test}\"} 1",
            "sluice_output_retries_total{plugin_id=\"out-1\",reason=\"http_503\"} 4",
        ] {
            assert!(text.contains(line), "missing `{line}` in\n{text}");
        }
        // Registered even before their first sample.
        for name in [
            "sluice_pipeline_filter_events_in",
            "sluice_pipeline_filter_events_out",
            "sluice_queue_size_bytes",
            "sluice_pipeline_batches_failed",
            "sluice_beats_connections",
            "sluice_beats_connections_accepted",
            "sluice_beats_connections_refused",
            "sluice_input_datagrams_dropped",
            "sluice_plugin_events_in",
            "sluice_plugin_events_out",
            "sluice_plugin_duration_seconds",
            "sluice_grok_failures",
            "sluice_grok_timeouts",
            "sluice_output_events_delivered",
            "sluice_output_events_dead_lettered",
            "sluice_output_dead_letter_lost",
            "sluice_output_events_undelivered",
            "sluice_output_send_duration_seconds",
        ] {
            assert!(text.contains(&format!("# TYPE {name} ")), "missing {name}");
        }
    }
}
