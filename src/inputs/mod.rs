//! Inputs: where events come from. Each input runs as its own task, pushes batches into
//! the queue through its [`InputContext`], and stops when the context's shutdown token
//! fires (or when its source ends, like stdin at EOF).

pub mod beats;
pub mod budget;
pub mod dead_letter_queue;
pub mod file;
pub mod fuzzing;
pub mod gelf;
pub mod generator;
pub mod http;
#[cfg(feature = "kafka")]
pub mod kafka;
pub mod listener;
pub mod pipeline;
pub mod stdin;
pub mod syslog;
pub mod tcp;
pub mod tls;
pub mod udp;

use crate::batch::Batch;
use crate::config::Error as ConfigError;
use crate::event::sprintf::Template;
use crate::event::{Event, Value};
use crate::plugin::{Options, Registry};
use crate::queue::{Durable, Queue, QueueClosed};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Why an input stopped before its source ended.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Other(String),
}

/// A running input.
#[async_trait::async_trait]
pub trait Input: Send {
    /// Reads from the source until it ends or `ctx.shutdown()` fires.
    async fn run(self: Box<Self>, ctx: InputContext) -> Result<(), InputError>;
}

/// The common input options (`type`, `tags`, `add_field`), applied to every event.
#[derive(Debug, Clone, Default)]
pub struct Decorator {
    kind: Option<String>,
    tags: Vec<String>,
    add_field: Vec<(Template, Template)>,
}

impl Decorator {
    pub fn from_options(opts: &mut Options) -> Result<Decorator, ConfigError> {
        let kind = opts.string("type")?;
        let tags = opts.string_list("tags")?.unwrap_or_default();
        let pos = opts.value_pos("add_field");
        let mut add_field = Vec::new();
        for (k, v) in opts.string_map("add_field")?.unwrap_or_default() {
            let key = Template::parse(&k).map_err(|e| opts.option_error("add_field", &pos, e))?;
            let value = Template::parse(&v).map_err(|e| opts.option_error("add_field", &pos, e))?;
            add_field.push((key, value));
        }
        Ok(Decorator {
            kind,
            tags,
            add_field,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.kind.is_none() && self.tags.is_empty() && self.add_field.is_empty()
    }

    /// Applies the options. `type` is only set when the event has none, as in Logstash.
    pub fn apply(&self, event: &mut Event) {
        if let Some(kind) = &self.kind {
            if event.get_field("type").is_none() {
                event.insert_field("type", Value::String(kind.clone()));
            }
        }
        for tag in &self.tags {
            event.add_tag(tag);
        }
        for (k, v) in &self.add_field {
            let key = k.render(event).into_owned();
            let value = v.render(event).into_owned();
            if let Ok(r) = crate::event::field_ref::FieldRef::parse(&key) {
                event.add_value(&r, Value::String(value));
            }
        }
    }
}

/// What a running input is handed: the queue, the shutdown signal, and its decorator.
#[derive(Clone)]
pub struct InputContext {
    id: Arc<str>,
    queue: Arc<Queue>,
    shutdown: CancellationToken,
    decorator: Arc<Decorator>,
    /// Events this input pushed and the time it waited to push them (back-pressure).
    flow: crate::metrics::PluginFlow,
}

impl InputContext {
    pub fn new(
        id: &str,
        queue: Arc<Queue>,
        shutdown: CancellationToken,
        decorator: Decorator,
    ) -> InputContext {
        InputContext {
            id: Arc::from(id),
            queue,
            shutdown,
            decorator: Arc::new(decorator),
            flow: crate::metrics::PluginFlow::of_input(id),
        }
    }

    /// The plugin id, for logs.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Fires when the pipeline asks inputs to stop.
    pub fn shutdown(&self) -> &CancellationToken {
        &self.shutdown
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutdown.is_cancelled()
    }

    /// Applies `type`, `tags` and `add_field` to the events, then queues them, waiting
    /// while the queue is full (back-pressure).
    pub async fn push(&self, mut batch: Batch) -> Result<(), QueueClosed> {
        self.decorate(&mut batch);
        let events = batch.events.len();
        let started = std::time::Instant::now();
        let pushed = self.queue.push(batch).await;
        if pushed.is_ok() {
            self.flow.record(0, events, started.elapsed());
        }
        pushed
    }

    /// As [`InputContext::push`], but returns before the persisted queue synced the
    /// batch (its acks still wait for the sync): the input may read and push more
    /// meanwhile, and must wait for the returned [`Durable`] before it tells its client
    /// anything in another way (a tcp connection's orderly close).
    pub async fn push_pipelined(&self, mut batch: Batch) -> Result<Durable, QueueClosed> {
        self.decorate(&mut batch);
        let events = batch.events.len();
        let started = std::time::Instant::now();
        let pushed = self.queue.push_pipelined(batch).await;
        if pushed.is_ok() {
            self.flow.record(0, events, started.elapsed());
        }
        pushed
    }

    fn decorate(&self, batch: &mut Batch) {
        if !self.decorator.is_empty() {
            for e in batch.events.iter_mut() {
                self.decorator.apply(e);
            }
        }
    }
}

/// Every input plugin: name → constructor.
pub static REGISTRY: Registry<Box<dyn Input>> = Registry {
    kind: "input",
    entries: &[
        ("beats", |o| Ok(Box::new(beats::BeatsInput::build(o)?))),
        ("dead_letter_queue", |o| {
            Ok(Box::new(dead_letter_queue::DeadLetterQueueInput::build(o)?))
        }),
        ("file", |o| Ok(Box::new(file::FileInput::build(o)?))),
        ("gelf", |o| Ok(Box::new(gelf::GelfInput::build(o)?))),
        ("generator", |o| {
            Ok(Box::new(generator::GeneratorInput::build(o)?))
        }),
        ("http", |o| Ok(Box::new(http::HttpInput::build(o)?))),
        #[cfg(feature = "kafka")]
        ("kafka", |o| Ok(Box::new(kafka::KafkaInput::build(o)?))),
        #[cfg(not(feature = "kafka"))]
        ("kafka", |o| Err(crate::plugin::without_kafka(o))),
        ("pipeline", |o| {
            Ok(Box::new(pipeline::PipelineInput::build(o)?))
        }),
        ("stdin", |o| Ok(Box::new(stdin::StdinInput::build(o)?))),
        ("syslog", |o| Ok(Box::new(syslog::SyslogInput::build(o)?))),
        ("tcp", |o| Ok(Box::new(tcp::TcpInput::build(o)?))),
        ("udp", |o| Ok(Box::new(udp::UdpInput::build(o)?))),
    ],
};

/// Builds the input plugin `name` from its options.
pub fn build(name: &str, opts: &mut Options) -> Result<Box<dyn Input>, ConfigError> {
    REGISTRY.build(name, opts)
}
