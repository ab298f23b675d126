//! What a running pipeline publishes about itself for `/_node/stats`: its settings, its
//! plugins (kind, id, name), its queue, and where per-plugin event counts come from.
//!
//! The pipeline calls [`publish`] when it starts; the API reads [`pipelines`]. Per-plugin
//! counts are read through [`PluginCounts`], which the runtime supplies; until it does,
//! they read as zero.

use crate::queue::Queue;
use std::sync::{Arc, RwLock};

/// Logstash's per-plugin `events` object.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Events {
    #[serde(rename = "in")]
    pub in_: u64,
    pub out: u64,
    pub duration_in_millis: u64,
}

/// A plugin's counts and, for an output, its delivery state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PluginStatus {
    pub events: Events,
    /// Outputs: `ok`, `retrying` or `failing` (`None` reads as `ok`).
    pub state: Option<&'static str>,
    /// When the output entered that state (ISO 8601).
    pub state_since: Option<String>,
}

/// Reads the status of a plugin by id; given the pipeline's own id, the pipeline's
/// totals (`in`: events its inputs pushed, `out`: events that left its filters).
pub type PluginCounts = Arc<dyn Fn(&str) -> PluginStatus + Send + Sync>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plugin {
    /// `inputs`, `filters` or `outputs` (Logstash's keys).
    pub kind: &'static str,
    pub id: String,
    pub name: String,
}

/// A running pipeline, as `/_node/stats/pipelines` shows it.
pub struct Pipeline {
    pub id: String,
    pub workers: usize,
    pub batch_size: usize,
    pub batch_delay_millis: u64,
    pub plugins: Vec<Plugin>,
    pub queue: Option<Arc<Queue>>,
    pub queue_max_events: usize,
    pub queue_max_bytes: usize,
    pub counts: Option<PluginCounts>,
    pub started: std::time::SystemTime,
}

static PIPELINES: RwLock<Vec<Arc<Pipeline>>> = RwLock::new(Vec::new());

/// Makes a pipeline visible to the API (replacing one of the same id).
pub fn publish(pipeline: Pipeline) {
    let mut all = PIPELINES.write().unwrap_or_else(|p| p.into_inner());
    all.retain(|p| p.id != pipeline.id);
    all.push(Arc::new(pipeline));
}

/// The published pipelines.
pub fn pipelines() -> Vec<Arc<Pipeline>> {
    PIPELINES.read().unwrap_or_else(|p| p.into_inner()).clone()
}
