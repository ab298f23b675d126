//! Sluice: a streaming log pipeline processor that runs pipelines written in the
//! Logstash configuration language.
//!
//! Data flows one way: inputs push [`batch::Batch`]es into a bounded queue, pipeline
//! workers apply filters and hand the batch to every output, and each batch's
//! [`batch::Ack`] fires back to its input once the events are safe.

pub mod api;
pub mod batch;
pub mod codecs;
pub mod config;
pub mod event;
pub mod filters;
pub mod grok;
pub mod inputs;
#[cfg(feature = "kafka")]
pub mod kafka;
pub mod metrics;
pub mod outputs;
pub mod pipeline;
pub mod plugin;
pub mod queue;
pub mod recycle;
pub mod settings;
pub mod stats;

pub use pipeline::run;
