//! What a plugin is told about the pipeline it is built for.

use crate::settings::Settings;
use std::path::PathBuf;

/// What a plugin may need to know about the pipeline it is built for.
#[derive(Debug, Clone)]
pub struct PluginContext {
    /// `--path.data`: where plugins keep state (dead letter queue, sincedb, ...).
    pub data_dir: PathBuf,
    /// `-b`: events per batch.
    pub batch_size: usize,
    /// `-w`: pipeline workers.
    pub workers: usize,
    /// `--dead_letter_queue.max_bytes`: the dead letter queue's size cap.
    pub dlq_max_bytes: u64,
    /// `--dead_letter_queue.storage_policy`: `drop_newer` or `drop_older`.
    pub dlq_storage_policy: crate::queue::dlq::StoragePolicy,
    /// `--input.memory.max_bytes`: what network inputs may hold outside the queue, in total.
    pub input_memory_max_bytes: usize,
    /// `--input.memory.per_connection`: what each connection may hold of its own.
    pub input_memory_per_connection: usize,
    /// `pipeline.id`: the pipeline the plugin belongs to (`main` unless pipelines.yml
    /// names it).
    pub pipeline_id: String,
    /// The process's pipeline-to-pipeline addresses (the `pipeline` input and output).
    /// Every pipeline of one run must share one bus; [`PluginContext::from_settings`]
    /// starts a fresh one, which the runtime replaces with the run's.
    pub bus: super::PipelineBus,
}

impl PluginContext {
    /// The context of a pipeline run with `settings`: defaults come from [`Settings`]
    /// alone, so a flag's default is written once.
    pub fn from_settings(settings: &Settings) -> PluginContext {
        PluginContext {
            data_dir: settings.data_dir.clone(),
            batch_size: settings.batch_size,
            workers: settings.workers,
            dlq_max_bytes: settings.dlq_max_bytes,
            dlq_storage_policy: settings.dlq_storage_policy,
            input_memory_max_bytes: settings.input_memory_max_bytes,
            input_memory_per_connection: settings.input_memory_per_connection,
            pipeline_id: settings.pipeline_id.clone(),
            bus: super::PipelineBus::new(),
        }
    }
}

impl Default for PluginContext {
    /// The context under default settings (tests, tools, `Options::from_text`).
    fn default() -> Self {
        PluginContext::from_settings(&Settings::default())
    }
}
