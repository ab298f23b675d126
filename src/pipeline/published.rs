//! Tells the HTTP API about a starting pipeline: its plugins, settings and queue, and
//! where its per-plugin counts come from.

use super::build::CompiledInput;
use super::deliver::State;
use super::tree::FilterNode;
use super::workers::Stages;
use crate::metrics::PluginFlow;
use crate::queue::Queue;
use crate::settings::Settings;
use crate::stats::node::{self, Events, Pipeline, Plugin, PluginCounts, PluginStatus};
use std::collections::HashMap;
use std::sync::{Arc, Weak};

/// Logstash's default pipeline id.
pub const PIPELINE_ID: &str = crate::settings::DEFAULT_PIPELINE_ID;

fn filters(nodes: &[FilterNode], out: &mut Vec<Plugin>) {
    for n in nodes {
        match n {
            FilterNode::Plugin { id, name, .. } => out.push(Plugin {
                kind: "filters",
                id: id.clone(),
                name: name.clone(),
            }),
            FilterNode::Branch { cases, otherwise } => {
                for (_, branch) in cases {
                    filters(branch, out);
                }
                filters(otherwise, out);
            }
        }
    }
}

/// Publishes a pipeline's plugins for `/_node/stats`, with their counts read from the
/// counters the runtime keeps per plugin id (the same ones `/metrics` exports).
pub(super) fn publish(
    inputs: &[CompiledInput],
    stages: &Arc<Stages>,
    settings: &Settings,
    queue: Arc<Queue>,
) {
    let mut plugins: Vec<Plugin> = inputs
        .iter()
        .map(|i| Plugin {
            kind: "inputs",
            id: i.id.clone(),
            name: i.name.clone(),
        })
        .collect();
    filters(&stages.filters, &mut plugins);
    plugins.extend(stages.outputs.iter().map(|o| Plugin {
        kind: "outputs",
        id: o.id.clone(),
        name: o.name.clone(),
    }));
    let counts = counts(&settings.pipeline_id, &plugins, Arc::downgrade(stages));
    node::publish(Pipeline {
        id: settings.pipeline_id.clone(),
        workers: settings.workers,
        batch_size: settings.batch_size,
        batch_delay_millis: settings.batch_delay.as_millis() as u64,
        plugins,
        queue: Some(queue),
        queue_max_events: settings.queue_max_events,
        queue_max_bytes: settings.queue_max_bytes,
        counts: Some(counts),
        started: std::time::SystemTime::now(),
    });
}

fn millis(seconds: f64) -> u64 {
    (seconds * 1000.0) as u64
}

fn events_of(flow: &PluginFlow) -> Events {
    Events {
        in_: flow.events_in.get(),
        out: flow.events_out.get(),
        duration_in_millis: millis(flow.duration.get()),
    }
}

/// Reads each plugin's counters by id; the pipeline's own id reads its totals. The
/// outputs' states (and the pipeline's `out`) are read through `stages`, held weakly so
/// a stopped pipeline's outputs are not kept alive by the API.
fn counts(pipeline_id: &str, plugins: &[Plugin], stages: Weak<Stages>) -> PluginCounts {
    let pipeline_id = pipeline_id.to_string();
    // A clone shares the count, and outlives the pipeline for the API.
    let events_out = stages
        .upgrade()
        .map(|s| s.events_out.clone())
        .unwrap_or_default();
    let flows: HashMap<String, (&'static str, PluginFlow)> = plugins
        .iter()
        .map(|p| {
            let flow = match p.kind {
                "inputs" => PluginFlow::of_input(&p.id),
                _ => PluginFlow::of(&p.id),
            };
            (p.id.clone(), (p.kind, flow))
        })
        .collect();
    Arc::new(move |id: &str| {
        if id == pipeline_id && !flows.contains_key(id) {
            let pushed = flows
                .values()
                .filter(|(kind, _)| *kind == "inputs")
                .map(|(_, f)| f.events_out.get())
                .sum();
            let busy: f64 = flows
                .values()
                .filter(|(kind, _)| *kind != "inputs")
                .map(|(_, f)| f.duration.get())
                .sum();
            return PluginStatus {
                events: Events {
                    in_: pushed,
                    out: events_out.get(),
                    duration_in_millis: millis(busy),
                },
                ..PluginStatus::default()
            };
        }
        let Some((kind, flow)) = flows.get(id) else {
            return PluginStatus::default();
        };
        let mut status = PluginStatus {
            events: events_of(flow),
            ..PluginStatus::default()
        };
        if *kind == "outputs" {
            let state = stages
                .upgrade()
                .and_then(|s| s.outputs.iter().find(|o| o.id == id).map(|o| o.state()));
            let (name, since) = match state {
                Some(State::Retrying(t)) => ("retrying", Some(t)),
                Some(State::Failing(t)) => ("failing", Some(t)),
                _ => ("ok", None),
            };
            status.state = Some(name);
            status.state_since = since.map(|t| {
                chrono::DateTime::<chrono::Utc>::from(t)
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            });
        }
        status
    })
}
