//! `beats` input: a Lumberjack v2 server that Filebeat (and every other Beat) cannot
//! tell from Logstash's beats input.
//!
//! [`protocol`] is the frame codec and the window rules, [`server`] the connection
//! handling (ACK only once a window's batch is safe, keep-alives under back-pressure),
//! [`mapping`] turns documents into events the way Logstash does (`document` parses
//! them).

mod document;
pub mod mapping;
pub mod protocol;
pub mod server;

pub use protocol::{BeatsCodec, CloseReason, Frame, Limits, ProtocolError, WindowTracker};

use super::budget::MemoryBudget;
use super::tls::TlsServer;
use super::{Input, InputContext, InputError};
use crate::config::Error;
use crate::plugin::Options;
use mapping::{Enrich, Mapper, MessageCodec};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How often a connection whose window is held up (back-pressure, or the ack has not
/// fired yet) is sent a keep-alive `ACK 0`, as Logstash does.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);

/// Counters of one beats input. Plain atomics read through [`BeatsInput::stats`].
#[derive(Debug, Default)]
pub struct BeatsStats {
    pub connections_accepted: AtomicU64,
    pub connections_rejected: AtomicU64,
    pub connections_active: AtomicU64,
    pub windows: AtomicU64,
    pub events: AtomicU64,
    pub acks: AtomicU64,
    pub keepalives: AtomicU64,
    /// Times a connection waited for memory (the input budget was spent).
    pub memory_waits: AtomicU64,
    /// Pieces of open windows queued before the window was complete (a pipeline batch
    /// of events, or [`server::WINDOW_FLUSH_BYTES`]).
    pub partial_windows: AtomicU64,
    closed: [AtomicU64; CloseReason::ALL.len()],
}

impl BeatsStats {
    /// Connections closed for `reason` so far.
    pub fn closed(&self, reason: CloseReason) -> u64 {
        self.closed[reason.index()].load(Ordering::Relaxed)
    }

    /// Every close reason with its count.
    pub fn closed_by_reason(&self) -> Vec<(CloseReason, u64)> {
        CloseReason::ALL
            .iter()
            .map(|r| (*r, self.closed(*r)))
            .collect()
    }

    pub(crate) fn count_close(&self, reason: CloseReason) {
        self.closed[reason.index()].fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// The `beats` input's configuration.
#[derive(Debug)]
pub struct BeatsInput {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) inactivity: Duration,
    pub(crate) mapper: Mapper,
    pub(crate) tls: Option<TlsServer>,
    pub(crate) max_connections: usize,
    pub(crate) max_window: u32,
    pub(crate) limits: Limits,
    /// Events of an open window queued at a time: the pipeline's batch size.
    pub(crate) flush_events: usize,
    pub(crate) stats: Arc<BeatsStats>,
    /// What connections hold outside the queue is drawn from this budget.
    pub(crate) budget: Arc<MemoryBudget>,
}

impl BeatsInput {
    pub fn build(opts: &mut Options) -> Result<BeatsInput, Error> {
        let host = opts.string_or("host", "0.0.0.0")?;
        let pos = opts.value_pos("port");
        let port = opts
            .int("port")?
            .ok_or_else(|| opts.error("beats input requires option `port`"))?;
        let port = u16::try_from(port)
            .map_err(|_| opts.option_error("port", &pos, format!("{port} is not a TCP port")))?;
        let pos = opts.value_pos("client_inactivity_timeout");
        let inactivity = opts.int_or("client_inactivity_timeout", 60)?;
        if inactivity <= 0 {
            return Err(opts.option_error(
                "client_inactivity_timeout",
                &pos,
                "must be a positive number of seconds",
            ));
        }
        let include_codec_tag = opts.bool_or("include_codec_tag", true)?;
        let enrich = enrich_option(opts)?;
        let add_hostname = opts.bool_or("add_hostname", false)?;
        let spec = opts.codec()?;
        let (codec_name, codec) = match &spec {
            None => ("plain".to_string(), MessageCodec::Plain),
            Some(s) => {
                let codec = match s.name.as_str() {
                    "plain" | "line" => MessageCodec::Plain,
                    "json" | "json_lines" => MessageCodec::Json,
                    other => {
                        return Err(s.options.error(format!(
                            "the beats input supports codecs plain and json, not `{other}`"
                        )))
                    }
                };
                (s.name.clone(), codec)
            }
        };
        // Checks the codec's own options (charset, ...).
        crate::codecs::Decoder::build(spec, "plain")?;
        let tls = TlsServer::from_options(opts)?;
        let max_connections = opts.usize_or("max_connections", 10_000)?.max(1);
        let limits = Limits {
            max_frame_bytes: opts
                .usize_or("max_frame_bytes", protocol::DEFAULT_MAX_FRAME_BYTES)?
                .max(64),
            max_decompressed_bytes: opts
                .usize_or(
                    "max_decompressed_bytes",
                    protocol::DEFAULT_MAX_DECOMPRESSED_BYTES,
                )?
                .max(64),
        };
        // Accepted for compatibility with Logstash configurations; Sluice sizes its own
        // runtime.
        let _ = opts.int("executor_threads")?;
        let _ = opts.string("ecs_compatibility")?;
        Ok(BeatsInput {
            host,
            port,
            inactivity: Duration::from_secs(inactivity as u64),
            mapper: Mapper {
                codec,
                codec_tag: format!("beats_input_codec_{codec_name}_applied"),
                enrich: Enrich {
                    codec_metadata: enrich.codec_metadata && include_codec_tag,
                    ..enrich
                },
                add_hostname,
            },
            tls,
            max_connections,
            max_window: protocol::DEFAULT_MAX_WINDOW,
            limits,
            flush_events: opts.context().batch_size.max(1),
            stats: Arc::new(BeatsStats::default()),
            budget: MemoryBudget::shared(opts.context()),
        })
    }

    /// This input's counters (shared with its running server).
    pub fn stats(&self) -> Arc<BeatsStats> {
        self.stats.clone()
    }
}

/// `enrich`: `none`, `all`, or a list of `codec_metadata`, `source_metadata`,
/// `ssl_peer_metadata` (Logstash 8; default codec and source metadata).
fn enrich_option(opts: &mut Options) -> Result<Enrich, Error> {
    let pos = opts.value_pos("enrich");
    let Some(list) = opts.string_list("enrich")? else {
        return Ok(Enrich {
            codec_metadata: true,
            source_metadata: true,
            ssl_peer_metadata: false,
        });
    };
    let mut enrich = Enrich::default();
    for item in list {
        match item.as_str() {
            "none" => {}
            "all" => {
                enrich = Enrich {
                    codec_metadata: true,
                    source_metadata: true,
                    ssl_peer_metadata: true,
                }
            }
            "codec_metadata" => enrich.codec_metadata = true,
            "source_metadata" => enrich.source_metadata = true,
            "ssl_peer_metadata" => enrich.ssl_peer_metadata = true,
            other => {
                return Err(opts.option_error(
                    "enrich",
                    &pos,
                    format!(
                        "unknown value `{other}` (none, all, codec_metadata, source_metadata, ssl_peer_metadata)"
                    ),
                ))
            }
        }
    }
    Ok(enrich)
}

#[async_trait::async_trait]
impl Input for BeatsInput {
    async fn run(self: Box<Self>, ctx: InputContext) -> Result<(), InputError> {
        server::run(Arc::new(*self), ctx).await
    }
}
