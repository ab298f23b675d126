//! `tcp` input: a server that reads newline-delimited events from many clients at once.
//! Each connection is framed with a hard line cap and batches whatever is ready.
//! With `ssl_enabled => true` connections are TLS (see [`super::tls`]).
//!
//! Peers are bounded: at most `max_connections` at once, idle ones closed after
//! `client_inactivity_timeout` (when set), and what a connection holds outside the queue
//! (its read buffer, decoded events waiting for a full queue) counted in the input
//! memory budget ([`super::budget`]) before it is allocated. Nothing read is dropped
//! silently: an over-long line keeps its head tagged `_linetoolong` (counted, logged),
//! and the last line without a newline becomes an event when the client leaves or at
//! shutdown.
//!
//! tcp has no acknowledgement: a client learns its events were received only from an
//! orderly close. So a connection pushes batch after batch without waiting for the
//! persisted queue's sync (they share syncs), and waits for the last one before it
//! closes.

use super::budget::{wait_watching_peer, Cut, Holding, MemoryBudget, ReadBuffer, Watched};
use super::tls::TlsServer;
use super::{Input, InputContext, InputError};
use crate::batch::{Ack, Batch};
use crate::codecs::line::LineFramer;
use crate::codecs::{StreamCodec, StreamDecoder};
use crate::config::Error;
use crate::event::{Event, Timestamp, Value};
use crate::plugin::Options;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::Semaphore;
use tokio_util::codec::Decoder as _;

pub struct TcpInput {
    host: String,
    port: u16,
    codec: StreamCodec,
    max_line_bytes: usize,
    batch_size: usize,
    tls: Option<TlsServer>,
    max_connections: usize,
    /// `client_inactivity_timeout`: `None` (0, the default) keeps idle clients, as
    /// Logstash's tcp input does.
    inactivity: Option<Duration>,
    budget: Arc<MemoryBudget>,
    stats: Arc<TcpStats>,
}

/// Counters of one tcp input.
#[derive(Debug, Default)]
pub struct TcpStats {
    pub connections_accepted: AtomicU64,
    /// Refused because `max_connections` were open.
    pub connections_rejected: AtomicU64,
    /// Closed by `client_inactivity_timeout`.
    pub connections_timed_out: AtomicU64,
    /// Lines cut at `max_line_bytes` (their events are tagged `_linetoolong`).
    pub lines_truncated: AtomicU64,
    /// Bytes of over-long lines that were not kept.
    pub bytes_discarded: AtomicU64,
    /// Last lines without a newline, made events when the client left or at shutdown.
    pub unterminated_lines: AtomicU64,
    /// Times a connection waited for memory (the input budget was spent).
    pub memory_waits: AtomicU64,
    /// Partial lines cut short to give back input memory (the budget was stuck on
    /// lines no peer finished; see `inputs::budget`); tagged `_linetoolong`.
    pub lines_cut_for_memory: AtomicU64,
}

/// The default of `max_connections`, as the beats input.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;

impl TcpInput {
    pub fn build(opts: &mut Options) -> Result<TcpInput, Error> {
        let host = opts.string_or("host", "0.0.0.0")?;
        let pos = opts.value_pos("port");
        let port = opts
            .int("port")?
            .ok_or_else(|| opts.error("tcp input requires option `port`"))?;
        let port = u16::try_from(port)
            .map_err(|_| opts.option_error("port", &pos, format!("{port} is not a TCP port")))?;
        let mode = opts.string_or("mode", "server")?;
        if mode != "server" {
            let pos = opts.pos().clone();
            return Err(opts.option_error("mode", &pos, "only `server` mode is supported"));
        }
        let _ = opts.bool("tcp_keep_alive")?;
        let codec = StreamCodec::build(opts.codec()?, "line")?;
        let max_line_bytes = opts.usize_or("max_line_bytes", 1024 * 1024)?;
        let batch_size = opts.context().batch_size.max(1);
        let tls = TlsServer::from_options(opts)?;
        let pos = opts.value_pos("max_connections");
        let max_connections = opts.usize_or("max_connections", DEFAULT_MAX_CONNECTIONS)?;
        if max_connections == 0 {
            return Err(opts.option_error("max_connections", &pos, "must be at least 1"));
        }
        let pos = opts.value_pos("client_inactivity_timeout");
        let inactivity = opts.int_or("client_inactivity_timeout", 0)?;
        if inactivity < 0 {
            return Err(opts.option_error(
                "client_inactivity_timeout",
                &pos,
                "must be a number of seconds (0: never)",
            ));
        }
        Ok(TcpInput {
            host,
            port,
            codec,
            max_line_bytes,
            batch_size,
            tls,
            max_connections,
            inactivity: (inactivity > 0).then(|| Duration::from_secs(inactivity as u64)),
            budget: MemoryBudget::shared(opts.context()),
            stats: Arc::default(),
        })
    }

    /// This input's counters (shared with its running server).
    pub fn stats(&self) -> Arc<TcpStats> {
        self.stats.clone()
    }
}

#[async_trait::async_trait]
impl Input for TcpInput {
    async fn run(self: Box<Self>, ctx: InputContext) -> Result<(), InputError> {
        let addr = format!("{}:{}", self.host, self.port);
        let tls = self.tls.is_some();
        let this = Arc::new(*self);
        let slots = Arc::new(Semaphore::new(this.max_connections));
        super::listener::serve_connections("tcp", &addr, tls, &ctx, |stream, peer| {
            let Ok(permit) = slots.clone().try_acquire_owned() else {
                this.stats.connections_rejected.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(input = ctx.id(), peer = %peer, max_connections = this.max_connections, "tcp connection refused: too many connections");
                return None;
            };
            this.stats.connections_accepted.fetch_add(1, Ordering::Relaxed);
            let this = this.clone();
            let ctx = ctx.clone();
            Some(async move {
                match &this.tls {
                    None => this.serve(stream, peer, ctx).await,
                    Some(tls) => match tls.accept(stream).await {
                        Ok(stream) => this.serve(stream, peer, ctx).await,
                        Err(e) => tracing::warn!(input = ctx.id(), peer = %peer, error = %e, "tls handshake failed"),
                    },
                }
                drop(permit);
            })
        })
        .await
    }
}

/// What a decoded event is counted as beyond its line (its fields).
const EVENT_OVERHEAD_BYTES: usize = 256;

/// How a connection's read loop ended.
enum End {
    /// The client closed (or shutdown): the last line without a newline is kept.
    Flush,
    /// Read error, timeout, or the queue closed: nothing more to do.
    Stop,
}

impl TcpInput {
    async fn serve<S: AsyncRead + Unpin>(
        &self,
        mut stream: S,
        peer: SocketAddr,
        ctx: InputContext,
    ) {
        tracing::debug!(input = ctx.id(), peer = %peer, "tcp connection opened");
        let mut memory = Holding::new(self.budget.clone());
        let mut framer = LineFramer::new(self.max_line_bytes);
        let mut buffer = ReadBuffer::default();
        // Bytes read while waiting for memory, ahead of the socket.
        let mut early: Vec<u8> = Vec::new();
        let mut pending = Pending::default();
        // Per connection: `multiline` joins the lines of this client only.
        let mut decoder = self.codec.stream();
        let host = peer.ip().to_string();
        let end = loop {
            // Every complete line already read, batch by batch.
            let mut queue_closed = false;
            loop {
                let line = match framer.decode(&mut buffer.buf) {
                    Ok(Some(line)) => line,
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(input = ctx.id(), peer = %peer, error = %e, "tcp read failed");
                        break;
                    }
                };
                self.note_over_long(&line, &peer, &ctx);
                self.add_line(line, &mut decoder, &host, &peer, &mut pending, &mut memory);
                if pending.events.len() >= self.batch_size
                    && !self.flush(&mut pending, &mut memory, &ctx).await
                {
                    queue_closed = true;
                    break;
                }
            }
            buffer.recount(&mut memory);
            self.count_discarded(&mut framer);
            if queue_closed || !self.flush(&mut pending, &mut memory, &ctx).await {
                break End::Stop;
            }
            let waited = wait_watching_peer(
                buffer.make_room(&mut memory),
                &mut stream,
                &mut early,
                ctx.shutdown().cancelled(),
            )
            .await;
            match waited {
                Watched::Ready(Err(Cut)) => {
                    self.cut_line(
                        &mut framer,
                        &mut buffer,
                        &mut decoder,
                        &host,
                        &peer,
                        &ctx,
                        &mut pending,
                        &mut memory,
                    );
                    continue;
                }
                Watched::Ready(Ok(room)) => {
                    if !room {
                        self.stats.memory_waits.fetch_add(1, Ordering::Relaxed);
                    }
                    if !early.is_empty() {
                        // Read while waiting: framed before the socket is read again.
                        buffer.take_early(&mut early, &mut memory);
                        continue;
                    }
                }
                Watched::Stopped => break End::Flush,
                Watched::PeerClosed => {
                    self.stats.memory_waits.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(input = ctx.id(), peer = %peer, "tcp peer closed while its connection waited for memory");
                    buffer.take_early(&mut early, &mut memory);
                    break End::Flush;
                }
            }
            let read = async {
                match self.inactivity {
                    None => Ok(stream.read_buf(&mut buffer.buf).await),
                    Some(t) => tokio::time::timeout(t, stream.read_buf(&mut buffer.buf)).await,
                }
            };
            // `auto_flush_interval`: lines a multiline event waits for more with.
            let due = decoder.flush_due();
            let flush_timer = async move {
                match due {
                    Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
                    None => std::future::pending().await,
                }
            };
            let read = tokio::select! {
                _ = ctx.shutdown().cancelled() => break End::Flush,
                () = memory.cut_requested() => {
                    self.cut_line(&mut framer, &mut buffer, &mut decoder, &host, &peer, &ctx, &mut pending, &mut memory);
                    continue;
                }
                () = flush_timer => {
                    let before = pending.events.len();
                    decoder.flush_if_due(Timestamp::now(), &mut pending.events);
                    decorate(&mut pending.events[before..], &host, &peer);
                    continue;
                }
                r = read => r,
            };
            match read {
                Err(_) => {
                    self.stats
                        .connections_timed_out
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::info!(input = ctx.id(), peer = %peer, timeout_s = self.inactivity.map(|d| d.as_secs()), buffered = buffer.buf.len(), "tcp connection closed: client inactive");
                    break End::Flush;
                }
                Ok(Err(e)) => {
                    tracing::warn!(input = ctx.id(), peer = %peer, error = %e, "tcp read failed");
                    break End::Flush;
                }
                Ok(Ok(0)) => break End::Flush,
                Ok(Ok(_)) => {}
            }
        };
        if let End::Flush = end {
            // The rest of what was read, the last line even without its newline.
            while let Ok(Some(line)) = framer.decode_eof(&mut buffer.buf) {
                if framer.was_unterminated() {
                    self.stats
                        .unterminated_lines
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(input = ctx.id(), peer = %peer, bytes = line.bytes.len(), "tcp last line had no newline; kept");
                }
                self.note_over_long(&line, &peer, &ctx);
                self.add_line(line, &mut decoder, &host, &peer, &mut pending, &mut memory);
            }
            // Lines a multiline event still waited for: never lost.
            let before = pending.events.len();
            decoder.flush(Timestamp::now(), &mut pending.events);
            decorate(&mut pending.events[before..], &host, &peer);
            self.count_discarded(&mut framer);
            // At shutdown the queue still takes batches until inputs have stopped.
            self.flush(&mut pending, &mut memory, &ctx).await;
        }
        // A client takes an orderly close as "all received": what it sent must be as
        // safe as the queue makes it before the stream is dropped. The last push's sync
        // covers the earlier ones.
        if let Some(durable) = pending.durable.take() {
            if durable.wait().await.is_err() {
                tracing::warn!(input = ctx.id(), peer = %peer, "tcp connection closed before the queue synced its last events");
            }
        }
        tracing::debug!(input = ctx.id(), peer = %peer, "tcp connection closed");
    }

    /// Cuts the line this connection is reading short, to give back the memory it
    /// holds (see `inputs::budget`): its head becomes an event tagged `_linetoolong`,
    /// and the rest is skipped up to its newline.
    #[allow(clippy::too_many_arguments)]
    fn cut_line(
        &self,
        framer: &mut LineFramer,
        buffer: &mut ReadBuffer,
        decoder: &mut StreamDecoder,
        host: &str,
        peer: &SocketAddr,
        ctx: &InputContext,
        pending: &mut Pending,
        memory: &mut Holding,
    ) {
        let Some(line) = framer.cut(&mut buffer.buf) else {
            return;
        };
        self.stats
            .lines_cut_for_memory
            .fetch_add(1, Ordering::Relaxed);
        tracing::warn!(input = ctx.id(), peer = %peer, kept_bytes = line.bytes.len(), "tcp line cut short to give back input memory: the budget was spent on lines no peer finished and this connection held the most; its head is kept, tagged _linetoolong, and the rest skipped");
        self.add_line(line, decoder, host, peer, pending, memory);
        buffer.recount(memory);
    }

    /// Counts and logs a line the framer cut at `max_line_bytes`.
    fn note_over_long(
        &self,
        line: &crate::codecs::line::Line,
        peer: &SocketAddr,
        ctx: &InputContext,
    ) {
        if line.truncated {
            self.stats.lines_truncated.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(input = ctx.id(), peer = %peer, max_line_bytes = self.max_line_bytes, "tcp line longer than max_line_bytes; its head is kept, tagged _linetoolong");
        }
    }

    fn count_discarded(&self, framer: &mut LineFramer) {
        let n = framer.take_discarded();
        if n > 0 {
            self.stats.bytes_discarded.fetch_add(n, Ordering::Relaxed);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn add_line(
        &self,
        line: crate::codecs::line::Line,
        decoder: &mut StreamDecoder,
        host: &str,
        peer: &SocketAddr,
        pending: &mut Pending,
        memory: &mut Holding,
    ) {
        let now = Timestamp::now();
        // Already allocated (it is the line's bytes): counted without waiting; the
        // next read waits if this spent the budget.
        let cost = line.bytes.len() + EVENT_OVERHEAD_BYTES;
        memory.set_unchecked(memory.held() + cost);
        pending.held += cost;
        pending.bytes += line.bytes.len();
        let before = pending.events.len();
        decoder.line(&line.bytes, line.truncated, now, &mut pending.events);
        decorate(&mut pending.events[before..], host, peer);
    }

    /// Queues the pending events (waiting while the queue is full, their bytes still
    /// counted). False when the queue is closed.
    async fn flush(&self, pending: &mut Pending, memory: &mut Holding, ctx: &InputContext) -> bool {
        if pending.events.is_empty() {
            memory.shrink(std::mem::take(&mut pending.held));
            pending.bytes = 0;
            return true;
        }
        let batch = Batch::with_bytes(
            std::mem::take(&mut pending.events),
            Ack::none(),
            std::mem::take(&mut pending.bytes),
        );
        let pushed = match memory.waiting_for_pipeline(ctx.push_pipelined(batch)).await {
            Ok(durable) => {
                pending.durable = Some(durable);
                true
            }
            Err(_) => false,
        };
        memory.shrink(std::mem::take(&mut pending.held));
        pending.events = Vec::with_capacity(16);
        pushed
    }
}

/// Sets `host` and `port` (the client's) where the event has none.
fn decorate(events: &mut [Event], host: &str, peer: &SocketAddr) {
    for e in events {
        if e.get_field("host").is_none() {
            e.insert_field("host", Value::String(host.to_string()));
        }
        if e.get_field("port").is_none() {
            e.insert_field("port", Value::Int(peer.port() as i64));
        }
    }
}

/// Events decoded and not queued yet, with what they are counted as.
#[derive(Default)]
struct Pending {
    events: Vec<Event>,
    bytes: usize,
    held: usize,
    /// The sync that makes the last pushed batch durable (pushes do not wait for it).
    durable: Option<crate::queue::Durable>,
}
