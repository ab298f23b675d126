//! Tells the HTTP API about a starting pipeline: its plugins, settings and queue.

use super::build::{CompiledInput, CompiledOutput};
use super::tree::FilterNode;
use crate::queue::Queue;
use crate::settings::Settings;
use crate::stats::node::{self, Pipeline, Plugin, PluginCounts};
use std::sync::Arc;

/// Logstash's default pipeline id.
pub const PIPELINE_ID: &str = "main";

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

/// Publishes a pipeline's plugins for `/_node/stats`. `counts` reads per-plugin event
/// counts (`None`: they read as zero).
pub fn publish(
    inputs: &[CompiledInput],
    filter_nodes: &[FilterNode],
    outputs: &[CompiledOutput],
    settings: &Settings,
    queue: Arc<Queue>,
    counts: Option<PluginCounts>,
) {
    let mut plugins: Vec<Plugin> = inputs
        .iter()
        .map(|i| Plugin {
            kind: "inputs",
            id: i.id.clone(),
            name: i.name.clone(),
        })
        .collect();
    filters(filter_nodes, &mut plugins);
    plugins.extend(outputs.iter().map(|o| Plugin {
        kind: "outputs",
        id: o.id.clone(),
        name: o.name.clone(),
    }));
    node::publish(Pipeline {
        id: PIPELINE_ID.into(),
        workers: settings.workers,
        batch_size: settings.batch_size,
        batch_delay_millis: settings.batch_delay.as_millis() as u64,
        plugins,
        queue: Some(queue),
        queue_max_events: settings.queue_max_events,
        queue_max_bytes: settings.queue_max_bytes,
        counts,
        started: std::time::SystemTime::now(),
    });
}
