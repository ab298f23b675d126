//! Logstash's node info and node stats documents (`/_node`, `/_node/stats`,
//! `/_node/stats/pipelines`), with the field names Logstash uses, so scripts and
//! dashboards written for Logstash's monitoring API read Sluice unchanged.

use super::State;
use crate::stats::metrics::process_stats;
use crate::stats::node::{self, Events, Pipeline, PluginStatus};
use axum::extract::State as Shared;
use axum::Json;
use serde_json::{json, Map, Value};
use std::sync::Arc;

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

/// The fields every node document starts with.
fn header(state: &State) -> Map<String, Value> {
    let host = hostname();
    let s = &state.settings;
    let mut m = Map::new();
    m.insert("host".into(), json!(host));
    m.insert("version".into(), json!(env!("CARGO_PKG_VERSION")));
    m.insert("http_address".into(), json!(state.http_address));
    m.insert("id".into(), json!(state.node_id));
    m.insert("name".into(), json!(host));
    m.insert("ephemeral_id".into(), json!(state.node_id));
    m.insert("status".into(), json!("green"));
    m.insert("snapshot".into(), json!(false));
    m.insert(
        "pipeline".into(),
        json!({
            "workers": s.workers,
            "batch_size": s.batch_size,
            "batch_delay": s.batch_delay.as_millis() as u64,
        }),
    );
    m
}

pub(crate) async fn info(Shared(state): Shared<Arc<State>>) -> Json<Value> {
    Json(Value::Object(header(&state)))
}

fn status_of(p: &Pipeline, id: &str) -> PluginStatus {
    p.counts.as_ref().map(|c| c(id)).unwrap_or_default()
}

fn plugin_json(p: &Pipeline, kind: &str) -> Vec<Value> {
    p.plugins
        .iter()
        .filter(|pl| pl.kind == kind)
        .map(|pl| {
            let s = status_of(p, &pl.id);
            let events = match kind {
                // An input only emits: Logstash reports `out` and its push time.
                "inputs" => json!({"out": s.events.out, "queue_push_duration_in_millis": s.events.duration_in_millis}),
                _ => serde_json::to_value(s.events).unwrap_or_default(),
            };
            let mut v = json!({"id": pl.id, "name": pl.name, "events": events});
            if kind == "outputs" {
                v["state"] = json!(s.state.unwrap_or("ok"));
                v["state_since"] = json!(s.state_since);
            }
            v
        })
        .collect()
}

fn pipeline_json(p: &Pipeline) -> Value {
    let totals = status_of(p, &p.id).events;
    let (events, bytes) = p
        .queue
        .as_ref()
        .map(|q| {
            let s = q.fill();
            (s.events, s.bytes as usize)
        })
        .unwrap_or_default();
    // Logstash's names for `queue.type`; "memory" while the queue is not built yet.
    let queue_type = match p.queue.as_deref() {
        Some(crate::queue::Queue::Persisted(_)) => "persisted",
        _ => "memory",
    };
    let uptime_ms = p
        .started
        .elapsed()
        .map_or(0, |d| d.as_millis() as u64)
        .max(1);
    let busy: u64 = p
        .plugins
        .iter()
        .filter(|pl| pl.kind != "inputs")
        .map(|pl| status_of(p, &pl.id).events.duration_in_millis)
        .sum();
    let utilization =
        (busy as f64 * 100.0 / (uptime_ms as f64 * p.workers.max(1) as f64)).min(100.0);
    json!({
        "events": {
            "in": totals.in_,
            "filtered": totals.out,
            "out": totals.out,
            "duration_in_millis": totals.duration_in_millis,
            "queue_push_duration_in_millis": 0,
        },
        "flow": {
            "worker_utilization": {"current": utilization, "lifetime": utilization},
        },
        "plugins": {
            "inputs": plugin_json(p, "inputs"),
            "codecs": [],
            "filters": plugin_json(p, "filters"),
            "outputs": plugin_json(p, "outputs"),
        },
        "reloads": {
            "last_error": null,
            "successes": 0,
            "last_success_timestamp": null,
            "last_failure_timestamp": null,
            "failures": 0,
        },
        "queue": {
            "type": queue_type,
            "events_count": events,
            "queue_size_in_bytes": bytes,
            "max_queue_size_in_bytes": p.queue_max_bytes,
            "max_queue_events": p.queue_max_events,
        },
        "workers": p.workers,
        "batch_size": p.batch_size,
        "batch_delay": p.batch_delay_millis,
    })
}

fn pipelines_json() -> (Value, Events, usize) {
    let mut all = Map::new();
    let mut totals = Events::default();
    let mut queued = 0;
    for p in node::pipelines() {
        let t = status_of(&p, &p.id).events;
        totals.in_ += t.in_;
        totals.out += t.out;
        totals.duration_in_millis += t.duration_in_millis;
        queued += p.queue.as_ref().map_or(0, |q| q.fill().events);
        all.insert(p.id.clone(), pipeline_json(&p));
    }
    (Value::Object(all), totals, queued)
}

pub(crate) async fn pipelines(Shared(state): Shared<Arc<State>>) -> Json<Value> {
    let mut m = header(&state);
    m.insert("pipelines".into(), pipelines_json().0);
    Json(Value::Object(m))
}

pub(crate) async fn stats(Shared(state): Shared<Arc<State>>) -> Json<Value> {
    let mut m = header(&state);
    let p = process_stats();
    let (pipelines, totals, queued) = pipelines_json();
    m.insert(
        "process".into(),
        json!({
            "open_file_descriptors": p.open_fds,
            "max_file_descriptors": p.max_fds,
            "cpu": {"total_in_millis": (p.cpu_seconds * 1000.0) as u64},
            "mem": {
                "total_virtual_in_bytes": p.virtual_memory_bytes,
                "resident_in_bytes": p.resident_memory_bytes,
            },
        }),
    );
    m.insert(
        "events".into(),
        json!({
            "in": totals.in_,
            "filtered": totals.out,
            "out": totals.out,
            "duration_in_millis": totals.duration_in_millis,
            "queue_push_duration_in_millis": 0,
        }),
    );
    m.insert("pipelines".into(), pipelines);
    m.insert("reloads".into(), json!({"successes": 0, "failures": 0}));
    m.insert("queue".into(), json!({"events_count": queued}));
    Json(Value::Object(m))
}
