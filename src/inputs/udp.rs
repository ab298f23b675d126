//! `udp` input: one datagram socket, read by one task, decoded by `workers` tasks.
//!
//! UDP has no back-pressure: a sender never waits. So the reader never waits either. It
//! hands each datagram to a bounded hand-off of `queue_size` datagrams; when the workers
//! (which wait on the pipeline queue) fall that far behind, the datagram is dropped,
//! counted in [`UdpStats::dropped`] and in `/metrics` as
//! `sluice_input_datagrams_dropped_total{plugin_id, reason="queue_full"}`, and logged (at most once per [`DROP_LOG_EVERY`], with
//! the count since the last line). What the input holds outside the pipeline queue is
//! thus bounded by `queue_size × buffer_size` bytes plus one batch per worker.
//!
//! As in Logstash, a datagram is one unit for the codec: `plain` (the default) and `json`
//! make one event of the whole datagram, `line` and `json_lines` one event per line. The
//! sender's address goes into `source_ip_fieldname` (`host` with `ecs_compatibility =>
//! disabled`, `[host][ip]` otherwise) unless the codec already set that field.

use super::{Input, InputContext, InputError};
use crate::batch::{Ack, Batch};
use crate::codecs::Decoder;
use crate::config::Error;
use crate::event::field_ref::FieldRef;
use crate::event::{Timestamp, Value};
use crate::plugin::ecs::Ecs;
use crate::plugin::Options;
use bytes::Bytes;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

/// The least time between two log lines about dropped datagrams.
pub const DROP_LOG_EVERY: Duration = Duration::from_secs(10);

pub struct UdpInput {
    host: String,
    port: u16,
    buffer_size: usize,
    receive_buffer_bytes: Option<usize>,
    workers: usize,
    queue_size: usize,
    source_ip_field: FieldRef,
    decoder: Decoder,
    /// `line` and `json_lines` split a datagram into lines; `plain` and `json` do not.
    split_lines: bool,
    batch_size: usize,
    stats: Arc<UdpStats>,
}

/// Counters of one udp input.
#[derive(Debug, Default)]
pub struct UdpStats {
    /// Datagrams read from the socket.
    pub datagrams: AtomicU64,
    /// Datagrams dropped because `queue_size` datagrams were already waiting.
    pub dropped: AtomicU64,
    /// Datagrams that filled `buffer_size` bytes (the kernel cut anything longer).
    pub truncated: AtomicU64,
    /// Events pushed to the pipeline queue.
    pub events: AtomicU64,
    /// The socket's receive buffer size as the kernel granted it.
    pub receive_buffer_bytes: AtomicU64,
    /// The port the socket is bound to (useful with `port => 0`).
    pub bound_port: AtomicU64,
}

impl UdpInput {
    pub fn build(opts: &mut Options) -> Result<UdpInput, Error> {
        let host = opts.string_or("host", "0.0.0.0")?;
        let pos = opts.value_pos("port");
        let port = opts
            .int("port")?
            .ok_or_else(|| opts.error("udp input requires option `port`"))?;
        let port = u16::try_from(port)
            .map_err(|_| opts.option_error("port", &pos, format!("{port} is not a UDP port")))?;
        let buffer_size = positive(opts, "buffer_size", 65536)?;
        let receive_buffer_bytes = match opts.int("receive_buffer_bytes")? {
            None => None,
            Some(n) if n > 0 => Some(n as usize),
            Some(_) => {
                let pos = opts.value_pos("receive_buffer_bytes");
                return Err(opts.option_error("receive_buffer_bytes", &pos, "must be positive"));
            }
        };
        let workers = positive(opts, "workers", 2)?;
        let queue_size = positive(opts, "queue_size", 2000)?;
        let ecs = Ecs::from_options(opts)?;
        let default_field = if ecs.enabled() { "[host][ip]" } else { "host" };
        let source_ip_field = match opts.field_ref("source_ip_fieldname")? {
            Some(r) => r,
            None => FieldRef::parse(default_field)
                .map_err(|e| Error::Empty(format!("built-in field name: {e}")))?,
        };
        let codec = opts.codec()?;
        let split_lines = codec
            .as_ref()
            .is_some_and(|c| c.name == "line" || c.name == "json_lines");
        let decoder = Decoder::build(codec, "plain")?;
        let batch_size = opts.context().batch_size.max(1);
        Ok(UdpInput {
            host,
            port,
            buffer_size,
            receive_buffer_bytes,
            workers,
            queue_size,
            source_ip_field,
            decoder,
            split_lines,
            batch_size,
            stats: Arc::default(),
        })
    }

    /// This input's counters (shared with its running tasks).
    pub fn stats(&self) -> Arc<UdpStats> {
        self.stats.clone()
    }

    fn bind(&self) -> std::io::Result<UdpSocket> {
        let ip: IpAddr = self.host.parse().map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("`{}` is not an IP address", self.host),
            )
        })?;
        let addr = SocketAddr::new(ip, self.port);
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(addr),
            socket2::Type::DGRAM,
            Some(socket2::Protocol::UDP),
        )?;
        if let Some(size) = self.receive_buffer_bytes {
            socket.set_recv_buffer_size(size)?;
        }
        socket.set_nonblocking(true)?;
        socket.bind(&addr.into())?;
        UdpSocket::from_std(socket.into())
    }
}

fn positive(opts: &mut Options, name: &str, default: usize) -> Result<usize, Error> {
    let pos = opts.value_pos(name);
    let n = opts.usize_or(name, default)?;
    if n == 0 {
        return Err(opts.option_error(name, &pos, "must be at least 1"));
    }
    Ok(n)
}

/// One datagram waiting for a worker.
struct Datagram {
    payload: Bytes,
    from: IpAddr,
}

#[async_trait::async_trait]
impl Input for UdpInput {
    async fn run(self: Box<Self>, ctx: InputContext) -> Result<(), InputError> {
        let address = format!("{}:{}", self.host, self.port);
        let socket = self.bind().map_err(|source| InputError::Io {
            context: format!("udp input cannot listen on {address}"),
            source,
        })?;
        let granted = socket2::SockRef::from(&socket)
            .recv_buffer_size()
            .unwrap_or(0);
        self.stats
            .receive_buffer_bytes
            .store(granted as u64, Ordering::Relaxed);
        if let Some(asked) = self.receive_buffer_bytes {
            // Linux reports twice what was set (its bookkeeping overhead).
            if granted < asked {
                tracing::warn!(
                    input = ctx.id(),
                    requested = asked,
                    obtained = granted,
                    "udp receive_buffer_bytes not granted in full; raise net.core.rmem_max"
                );
            }
        }
        if let Ok(local) = socket.local_addr() {
            self.stats
                .bound_port
                .store(u64::from(local.port()), Ordering::Relaxed);
        }
        tracing::info!(input = ctx.id(), address = %address, receive_buffer_bytes = granted, queue_size = self.queue_size, workers = self.workers, "input listening");

        let this = Arc::new(*self);
        let (tx, rx) = mpsc::channel::<Datagram>(this.queue_size);
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        let mut workers = tokio::task::JoinSet::new();
        for _ in 0..this.workers {
            let (this, rx, ctx) = (this.clone(), rx.clone(), ctx.clone());
            workers.spawn(async move { this.work(rx, ctx).await });
        }
        this.receive(&socket, tx, &ctx).await;
        // The hand-off is closed: workers finish what it holds, then stop.
        while workers.join_next().await.is_some() {}
        Ok(())
    }
}

impl UdpInput {
    /// Reads datagrams until shutdown, never waiting for the workers.
    async fn receive(&self, socket: &UdpSocket, tx: mpsc::Sender<Datagram>, ctx: &InputContext) {
        // A datagram longer than the buffer is cut by the kernel; one that fills it
        // exactly is counted as (probably) cut.
        let mut buf = vec![0u8; self.buffer_size];
        let mut last_log: Option<Instant> = None;
        let mut dropped_since_log = 0u64;
        let dropped_metric = crate::metrics::get()
            .inputs
            .datagrams_dropped
            .get_or_create(&crate::metrics::plugin_reason(ctx.id(), "queue_full"))
            .clone();
        loop {
            let received = tokio::select! {
                _ = ctx.shutdown().cancelled() => break,
                r = socket.recv_from(&mut buf) => r,
            };
            let (n, from) = match received {
                Ok(r) => r,
                Err(e) => {
                    // ICMP errors and the like: the socket stays usable.
                    tracing::debug!(input = ctx.id(), error = %e, "udp receive failed");
                    continue;
                }
            };
            self.stats.datagrams.fetch_add(1, Ordering::Relaxed);
            if n == self.buffer_size {
                self.stats.truncated.fetch_add(1, Ordering::Relaxed);
            }
            let datagram = Datagram {
                payload: Bytes::copy_from_slice(&buf[..n]),
                from: from.ip(),
            };
            match tx.try_send(datagram) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                    dropped_metric.inc();
                    dropped_since_log += 1;
                    if last_log.is_none_or(|t| t.elapsed() >= DROP_LOG_EVERY) {
                        tracing::warn!(
                            input = ctx.id(),
                            dropped = dropped_since_log,
                            dropped_total = self.stats.dropped.load(Ordering::Relaxed),
                            queue_size = self.queue_size,
                            "udp datagrams dropped: queue_size datagrams already wait for the pipeline"
                        );
                        last_log = Some(Instant::now());
                        dropped_since_log = 0;
                    }
                }
                Err(mpsc::error::TrySendError::Closed(_)) => break,
            }
        }
        if dropped_since_log > 0 {
            tracing::warn!(
                input = ctx.id(),
                dropped = dropped_since_log,
                "udp datagrams dropped: queue_size datagrams already wait for the pipeline"
            );
        }
    }

    /// Decodes datagrams and pushes them in batches: what is waiting (up to a batch)
    /// goes together, so a busy input pushes full batches and an idle one no delay.
    async fn work(&self, rx: Arc<tokio::sync::Mutex<mpsc::Receiver<Datagram>>>, ctx: InputContext) {
        let mut datagrams = Vec::with_capacity(self.batch_size);
        loop {
            {
                let mut rx = rx.lock().await;
                if rx.recv_many(&mut datagrams, self.batch_size).await == 0 {
                    return;
                }
            }
            let now = Timestamp::now();
            let mut events = Vec::with_capacity(datagrams.len());
            let mut bytes = 0;
            for d in datagrams.drain(..) {
                bytes += d.payload.len();
                let before = events.len();
                if self.split_lines {
                    let body = d.payload.strip_suffix(b"\n").unwrap_or(&d.payload);
                    for line in body.split(|b| *b == b'\n') {
                        self.decoder.decode(line, now, &mut events);
                    }
                } else {
                    self.decoder.decode(&d.payload, now, &mut events);
                }
                let ip = d.from.to_string();
                for e in &mut events[before..] {
                    if e.get(&self.source_ip_field).is_none() {
                        e.insert(&self.source_ip_field, Value::String(ip.clone()));
                    }
                }
            }
            let count = events.len() as u64;
            if ctx
                .push(Batch::with_bytes(events, Ack::none(), bytes))
                .await
                .is_err()
            {
                return;
            }
            self.stats.events.fetch_add(count, Ordering::Relaxed);
        }
    }
}
