//! Outputs: async sinks that take a batch and return once every event is safe
//! (delivered or dead-lettered). Retryable failures are retried inside the output,
//! with back-off, for as long as it takes: back-pressure then holds the inputs.

pub mod elasticsearch;
pub mod file;
pub mod null;
pub mod stdout;

use crate::config::Error;
use crate::event::Event;
use crate::plugin::{Options, Registry};

/// Why an output could not make a batch safe.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Fatal(String),
    /// The destination went away for good (stdout closed by the reader): the pipeline
    /// stops its inputs instead of failing batch after batch.
    #[error("{0}")]
    Closed(String),
}

/// A running output, shared by every pipeline worker.
#[async_trait::async_trait]
pub trait Output: Send + Sync {
    /// Delivers `events`. Returns `Ok` once each one is delivered or dead-lettered; an
    /// error means they were not made safe and the batch's inputs must not confirm them.
    async fn send(&self, events: &[&Event]) -> Result<(), OutputError>;

    /// Flushes and releases resources at shutdown, after the last `send`.
    async fn close(&self) -> Result<(), OutputError> {
        Ok(())
    }
}

/// Every output plugin: name → constructor.
pub static REGISTRY: Registry<Box<dyn Output>> = Registry {
    kind: "output",
    entries: &[
        ("elasticsearch", |o| {
            Ok(Box::new(elasticsearch::ElasticsearchOutput::build(o)?))
        }),
        ("file", |o| Ok(Box::new(file::FileOutput::build(o)?))),
        ("null", |o| Ok(Box::new(null::NullOutput::build(o)?))),
        ("stdout", |o| Ok(Box::new(stdout::StdoutOutput::build(o)?))),
    ],
};

/// Builds the output plugin `name` from its options.
pub fn build(name: &str, opts: &mut Options) -> Result<Box<dyn Output>, Error> {
    REGISTRY.build(name, opts)
}
